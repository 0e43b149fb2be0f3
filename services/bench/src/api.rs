//! Placements through the orders API over HTTP: the storefront's view, with a pooled client.
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::load::OpError;
use crate::stack::Sku;

/// An acknowledged placement.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order_id: Uuid,
    pub at: Instant,
    /// Wall-clock time of the acknowledgement, in Unix milliseconds (comparable to Kafka timestamps).
    pub at_unix_ms: i64,
    /// The edge's `X-Served-By` header, when going through an edge.
    pub served_by: Option<String>,
}

#[derive(Clone)]
pub struct ApiPlacer {
    http: reqwest::Client,
    base: String,
    api_key: String,
    skus: Vec<Sku>,
    key_prefix: String,
}

impl ApiPlacer {
    pub fn new(
        base: &str,
        api_key: String,
        skus: Vec<Sku>,
        key_prefix: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(4096)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(ApiPlacer {
            http,
            base: base.trim_end_matches('/').to_string(),
            api_key,
            skus,
            key_prefix: key_prefix.to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A valid body: one plentiful SKU, quantity 1, a random customer.
    pub fn body(&self, customer_id: Uuid) -> serde_json::Value {
        let sku = &self.skus[(customer_id.as_u128() % self.skus.len() as u128) as usize];
        json!({
            "customer_id": customer_id,
            "items": [{ "sku": sku.sku, "quantity": 1 }],
            "shipping_address": {
                "name": "Bench Customer",
                "line1": "1 Load Street",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        })
    }

    /// One placement with a fresh idempotency key.
    pub async fn place(&self) -> Result<Placed, OpError> {
        let key = format!("{}{}", self.key_prefix, Uuid::new_v4());
        let response = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", key)
            .json(&self.body(Uuid::new_v4()))
            .send()
            .await
            .map_err(|e| OpError::new(transport_kind(&e)))?;
        let status = response.status();
        let served_by = response
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|e| OpError::new(transport_kind(&e)))?;
        let (at, at_unix_ms) = (Instant::now(), chrono::Utc::now().timestamp_millis());
        if status.as_u16() != 201 {
            return Err(OpError(format!("http {}", status.as_u16())));
        }
        let order_id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .ok_or_else(|| OpError::new("201 without an order id"))?;
        Ok(Placed {
            order_id,
            at,
            at_unix_ms,
            served_by,
        })
    }
}

/// A low-cardinality label for a failed request.
pub fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "http: timeout"
    } else if e.is_connect() {
        "http: connect"
    } else if e.is_body() || e.is_decode() {
        "http: body"
    } else {
        "http: transport"
    }
}
