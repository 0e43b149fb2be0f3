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
        let answer = self.attempt().await;
        match (answer.status, answer.order_id) {
            (Some(201), Some(order_id)) => Ok(Placed {
                order_id,
                at: answer.at,
                at_unix_ms: answer.at_unix_ms,
                served_by: answer.served_by,
            }),
            (Some(201), None) => Err(OpError::new("201 without an order id")),
            (Some(status), _) => Err(OpError(format!("http {status}"))),
            (None, _) => Err(OpError::new(answer.transport.unwrap_or("http: transport"))),
        }
    }

    /// One placement with a fresh idempotency key, whatever the answer: the status, whether a
    /// refusal said when to come back, and the problem type of an error.
    pub async fn attempt(&self) -> Answer {
        let key = format!("{}{}", self.key_prefix, Uuid::new_v4());
        let sent = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", key)
            .json(&self.body(Uuid::new_v4()))
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Answer::transport(transport_kind(&e)),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (served_by, retry_after) = (header("x-served-by"), header("retry-after"));
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::transport(transport_kind(&e)),
        };
        let (at, at_unix_ms) = (Instant::now(), chrono::Utc::now().timestamp_millis());
        let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
        let field = |name: &str| json.as_ref().and_then(|v| v[name].as_str()).map(str::to_string);
        Answer {
            status: Some(status),
            transport: None,
            retry_after: retry_after.is_some(),
            problem_type: (status >= 400).then(|| field("type")).flatten(),
            order_id: (status == 201)
                .then(|| field("id").and_then(|s| Uuid::parse_str(&s).ok()))
                .flatten(),
            origin_region: field("origin_region"),
            served_by,
            at,
            at_unix_ms,
        }
    }

    /// `GET /v1/orders/{id}`: the order's status and origin region, or a label of why not.
    pub async fn order_status(&self, id: Uuid) -> Result<(String, String), String> {
        let response = self
            .http
            .get(format!("{}/v1/orders/{id}", self.base))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| transport_kind(&e).to_string())?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("http {status}"));
        }
        let v: serde_json::Value = response
            .json()
            .await
            .map_err(|e| transport_kind(&e).to_string())?;
        match (v["status"].as_str(), v["origin_region"].as_str()) {
            (Some(s), Some(r)) => Ok((s.to_string(), r.to_string())),
            _ => Err("200 without status or origin_region".into()),
        }
    }
}

/// What one placement attempt got back.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `None` when no HTTP answer came (see `transport`).
    pub status: Option<u16>,
    pub transport: Option<&'static str>,
    /// Whether the answer carried `Retry-After`.
    pub retry_after: bool,
    /// The RFC 9457 `type` of an error answer.
    pub problem_type: Option<String>,
    pub order_id: Option<Uuid>,
    pub origin_region: Option<String>,
    pub served_by: Option<String>,
    pub at: Instant,
    pub at_unix_ms: i64,
}

impl Answer {
    fn transport(kind: &'static str) -> Answer {
        Answer {
            status: None,
            transport: Some(kind),
            retry_after: false,
            problem_type: None,
            order_id: None,
            origin_region: None,
            served_by: None,
            at: Instant::now(),
            at_unix_ms: chrono::Utc::now().timestamp_millis(),
        }
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
