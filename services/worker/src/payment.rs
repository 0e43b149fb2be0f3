//! The payment provider client: authorizations and voids, idempotent per (order, step).
use std::time::Duration;

use orders_domain::Money;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// What the provider said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Authorized { id: String },
    Declined { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// Worth retrying with the same idempotency key: timeouts, 5xx, connection failures.
    #[error("payment provider unavailable: {0}")]
    Transient(String),
    /// The provider refused the request itself; retrying will not help.
    #[error("payment provider refused the request: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct PaymentClient {
    http: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct AuthorizationBody {
    id: String,
    status: String,
    decline_reason: Option<String>,
}

impl PaymentClient {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .pool_max_idle_per_host(64)
            .build()
            .expect("a static client configuration");
        PaymentClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// Authorizes the order's total; the key `<order>:authorize` makes retries return the first answer.
    pub async fn authorize(&self, order_id: Uuid, amount: &Money) -> Result<Authorization, PaymentError> {
        let response = self
            .http
            .post(format!("{}/v1/authorizations", self.base))
            .header("Idempotency-Key", format!("{order_id}:authorize"))
            .json(&json!({ "order_id": order_id, "amount_minor": amount.amount_minor, "currency": amount.currency }))
            .send()
            .await
            .map_err(|e| PaymentError::Transient(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(PaymentError::Transient(format!("status {status}")));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(PaymentError::Permanent(format!("status {status}: {body}")));
        }
        let body: AuthorizationBody = response
            .json()
            .await
            .map_err(|e| PaymentError::Transient(e.to_string()))?;
        Ok(match body.status.as_str() {
            "authorized" => Authorization::Authorized { id: body.id },
            _ => Authorization::Declined {
                reason: body.decline_reason.unwrap_or_else(|| "declined".into()),
            },
        })
    }

    /// Voids an authorization; voiding twice is harmless.
    pub async fn void(&self, order_id: Uuid, authorization_id: &str) -> Result<(), PaymentError> {
        let response = self
            .http
            .post(format!("{}/v1/authorizations/{authorization_id}/void", self.base))
            .header("Idempotency-Key", format!("{order_id}:void"))
            .send()
            .await
            .map_err(|e| PaymentError::Transient(e.to_string()))?;
        let status = response.status();
        match status.as_u16() {
            200..=299 | 409 => Ok(()),
            429 | 500..=599 => Err(PaymentError::Transient(format!("status {status}"))),
            _ => Err(PaymentError::Permanent(format!("status {status}"))),
        }
    }
}
