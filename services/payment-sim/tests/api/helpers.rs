//! The shared harness: starts the production app through `build` and `run`, and speaks its API.

use std::sync::Once;
use std::time::Duration;

use orders_payment_sim::{Behaviour, Config, Rate, build, run};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
}

/// A sandbox without latency, declines or failures, so tests are fast and deterministic.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Behaviour {
        latency_ms: 0,
        latency_jitter_ms: 0,
        decline_rate: Rate::ZERO,
        failure_rate: Rate::ZERO,
    })
    .await
}

pub async fn spawn_app_with(behaviour: Behaviour) -> TestApp {
    init_test_log();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let app = build(Config {
        behaviour,
        ..Config::default()
    });
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(run(app, listener, shutdown.clone()));
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown,
        server,
    }
}

/// Logs stay silent unless `TEST_LOG` is set.
fn init_test_log() {
    static INIT: Once = Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        INIT.call_once(|| {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
                .with_test_writer()
                .init();
        });
    }
}

/// An authorization request for a fresh order.
pub fn new_order(amount_minor: i64) -> Value {
    json!({"order_id": Uuid::new_v4(), "amount_minor": amount_minor, "currency": "EUR"})
}

pub fn fresh_key() -> String {
    format!("test-{}", Uuid::new_v4())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn authorize(&self, key: &str, body: &Value) -> Response {
        let request = self.client.post(self.url("/v1/authorizations"));
        request
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn void(&self, id: &str, key: &str) -> Response {
        let request = self
            .client
            .post(self.url(&format!("/v1/authorizations/{id}/void")));
        request.header("Idempotency-Key", key).send().await.unwrap()
    }

    /// Authorizes a fresh order and returns the created authorization.
    pub async fn authorized(&self, amount_minor: i64) -> Value {
        let response = self.authorize(&fresh_key(), &new_order(amount_minor)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn list(&self, order_id: &Value) -> Vec<Value> {
        let url = self.url(&format!(
            "/v1/authorizations?order_id={}",
            order_id.as_str().unwrap()
        ));
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        let response = self.client.get(self.url("/sim/stats")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub async fn configure(&self, change: Value) -> Response {
        self.client
            .put(self.url("/sim/config"))
            .json(&change)
            .send()
            .await
            .unwrap()
    }

    /// Requests shutdown and waits for the server to finish.
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("server stops within 5 s")
            .expect("server task does not panic")
    }
}

pub fn is_replay(response: &Response) -> bool {
    response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// Checks a problem+json answer and returns its body.
pub async fn problem(response: Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:orders:payment-sim:problem:{kind}"));
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string());
    body
}

/// The problem's `detail`, for asserting that it names what was wrong.
pub fn detail(problem: &Value) -> &str {
    problem["detail"].as_str().unwrap()
}
