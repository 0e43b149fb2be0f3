//! Helpers of the poison test: the eu worker that parks (the stack's own when it serves
//! `/admin/parked`, else a worker of this build started on its own topic and consumer group so the
//! stack's older workers never see the poison), its admin API, and a group's committed offset.
use std::process::Child;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use uuid::Uuid;

use crate::extra::{comes_up, service_command};
use crate::{Region, credentials, regions};

/// The port of the worker a test starts itself (the stack's workers use 9181, 9182, 9191, ...).
pub const OWN_WORKER_PORT: u16 = 19_281;

/// The eu worker under test, where the poison goes and where it is parked.
pub struct ParkingWorker {
    pub base: String,
    pub topic: String,
    pub group: String,
    pub bootstrap: String,
    token: String,
    http: reqwest::Client,
    /// Our own process, killed on drop; None when the stack's worker is under test.
    own: Option<Child>,
}

impl Drop for ParkingWorker {
    fn drop(&mut self) {
        if let Some(child) = self.own.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl ParkingWorker {
    /// The stack's worker of `region` if it parks; otherwise a worker of this build reading a fresh
    /// one-partition topic in its own consumer group.
    pub async fn of(region: &Region) -> ParkingWorker {
        let token = credentials()
            .remove("OPS_TOKEN")
            .expect("OPS_TOKEN in .dev/credentials.env: run ./dev up");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let stack = region.worker_url();
        let answer = http
            .get(format!("{stack}/admin/parked"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the {} worker at {stack} does not answer ({e}): run ./dev up",
                    region.name
                )
            });
        // ORDERS_TEST_OWN_WORKER=1 tests a worker of this build even when the stack's parks.
        let own = std::env::var("ORDERS_TEST_OWN_WORKER").is_ok_and(|v| v == "1");
        if answer.status().is_success() && !own {
            return ParkingWorker {
                base: stack,
                topic: orders_log::ORDERS_TOPIC.to_string(),
                group: format!("orders-worker-{}", region.name),
                bootstrap: region.kafka.clone(),
                token,
                http,
                own: None,
            };
        }
        eprintln!(
            "testing a worker of this build on its own topic (the stack's {} worker answered {})",
            region.name,
            answer.status()
        );
        let suffix = Uuid::new_v4().simple().to_string();
        let (topic, group) = (format!("poison-test-{suffix}"), format!("poison-test-{suffix}"));
        orders_log::create_topics(&region.kafka, &[(topic.as_str(), 1)])
            .await
            .expect("create the poison test's topic");
        let all: Vec<String> = regions().into_iter().map(|r| r.name).collect();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{topic}.log"))).expect("log file");
        let payment = std::env::var("ORDERS_PAYMENT_URL").unwrap_or_else(|_| "http://127.0.0.1:8099".into());
        let child = service_command("orders-worker", region, &format!("127.0.0.1:{OWN_WORKER_PORT}"))
            .env("ORDERS_REGIONS", all.join(","))
            .env("ORDERS_PAYMENT_URL", payment)
            .env("ORDERS_OPS_TOKEN", &token)
            .env("ORDERS_WORKER_GROUP", &group)
            .env("ORDERS_WORKER_TOPICS", &topic)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start a worker of this build: {e}"));
        let worker = ParkingWorker {
            base: format!("http://127.0.0.1:{OWN_WORKER_PORT}"),
            topic,
            group,
            bootstrap: region.kafka.clone(),
            token,
            http,
            own: Some(child),
        };
        assert!(
            comes_up(&worker.base).await,
            "our own {} worker never came up on {}",
            region.name,
            worker.base
        );
        worker
    }

    /// `GET /admin/parked` with the operator token: the answer's status and body.
    pub async fn parked(&self) -> (u16, Value) {
        self.call(
            self.http
                .get(format!("{}/admin/parked", self.base))
                .bearer_auth(&self.token),
        )
        .await
    }

    /// `POST /admin/parked/replay`, of one order or all, with or without the operator token.
    pub async fn replay(&self, order_id: Option<Uuid>, with_token: bool) -> (u16, Option<String>, Value) {
        let query = order_id.map(|id| format!("?order_id={id}")).unwrap_or_default();
        let mut request = self
            .http
            .post(format!("{}/admin/parked/replay{query}", self.base));
        if with_token {
            request = request.bearer_auth(&self.token);
        }
        let response = request.send().await.expect("replay answered");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.expect("replay body");
        (
            status,
            content_type,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("worker answered");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The offset the worker's group committed on a partition of its topic (-1 when none).
    pub fn committed(&self, partition: i32) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .expect("committed offsets");
        committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(-1)
    }
}
