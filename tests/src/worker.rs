//! Helpers of the worker tests: a thin orders API client, the payment sandbox, stock rows read in
//! the datacenter that writes them, worker metrics, an order's records on Kafka, and an in-process
//! worker to drive `handle_record` with.
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use scylla::client::session::Session;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Region, eventually, region, regions, session};

/// How long an order may take to reach a final state, or an effect to become visible.
pub const FINAL_WAIT: Duration = Duration::from_secs(30);

/// A client of one region's orders API that checks only what the worker tests need (the API's
/// contract is `api_contract`'s concern).
#[derive(Clone)]
pub struct Orders {
    pub region: String,
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl Orders {
    pub fn new(region_name: &str) -> Self {
        let (api_key, http) = crate::api::storefront();
        Orders {
            region: region_name.to_string(),
            base: region(region_name).api_url(),
            api_key,
            http,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the {} API does not answer ({e}): run ./dev up", self.region));
        let status = response.status().as_u16();
        let text = response.text().await.expect("reply body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Places an order of `(sku, quantity)` items for a fresh customer; returns the order body.
    pub async fn place(&self, key: &str, items: &[(&str, u32)]) -> Value {
        let items: Vec<Value> = items
            .iter()
            .map(|(sku, quantity)| json!({ "sku": sku, "quantity": quantity }))
            .collect();
        let body = json!({
            "customer_id": Uuid::new_v4(),
            "items": items,
            "shipping_address": {
                "name": "Grace Hopper", "line1": "1 Test Street", "city": "Berlin",
                "postal_code": "10115", "country": "DE",
            },
        });
        let request = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .header("idempotency-key", key)
            .json(&body);
        let (status, order) = self.call(request).await;
        assert_eq!(status, 201, "placing in {}: {order}", self.region);
        order
    }

    /// The order as this region sees it, or None while it does not know it.
    pub async fn order(&self, id: Uuid) -> Option<Value> {
        let (status, order) = self
            .call(self.http.get(format!("{}/v1/orders/{id}", self.base)))
            .await;
        (status == 200).then_some(order)
    }

    /// The order's events in canonical order (empty while this region does not know the order).
    pub async fn events(&self, id: Uuid) -> Vec<Value> {
        let url = format!("{}/v1/orders/{id}/events", self.base);
        let (status, body) = self.call(self.http.get(url)).await;
        match status {
            200 => body["events"].as_array().cloned().expect("an events array"),
            _ => Vec::new(),
        }
    }

    pub async fn cancel(&self, id: Uuid) -> (u16, Value) {
        let url = format!("{}/v1/orders/{id}/cancel", self.base);
        self.call(self.http.post(url).json(&json!({ "reason": "worker test" })))
            .await
    }

    /// Polls until `accept` holds for the order; panics with its last state after `FINAL_WAIT`.
    pub async fn wait_for(&self, id: Uuid, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let found = eventually(FINAL_WAIT, || async {
            self.order(id).await.filter(|o| accept(o))
        })
        .await;
        found
            .map(|(order, _)| order)
            .unwrap_or_else(|| panic!("order {id} not {what} in {} after {FINAL_WAIT:?}", self.region))
    }

    /// Waits until the saga has nothing left to do for the order.
    pub async fn wait_final(&self, id: Uuid) -> Value {
        self.wait_for(id, "final", is_final).await
    }
}

/// The order id of an order body.
pub fn id_of(order: &Value) -> Uuid {
    order["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an order: {order}"))
}

/// Confirmed, or rejected or cancelled with nothing left to give back.
pub fn is_final(order: &Value) -> bool {
    let holds = order["stock"] == "reserved" || order["payment"] == "authorized";
    match order["status"].as_str() {
        Some("confirmed") => true,
        Some("rejected" | "cancelled") => !holds,
        _ => false,
    }
}

/// How many of `events` are of type `kind`.
pub fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

/// One text field of every event: `field(&events, "type")`, `field(&events, "event_id")`.
pub fn field(events: &[Value], name: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| e[name].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The payment provider's sandbox.
#[derive(Clone)]
pub struct Sandbox {
    base: String,
    http: reqwest::Client,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            base: std::env::var("ORDERS_PAYMENT_URL").unwrap_or_else(|_| "http://127.0.0.1:8099".into()),
            http: reqwest::Client::new(),
        }
    }
}

impl Sandbox {
    async fn json(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("the payment sandbox at {} does not answer: {e}", self.base));
        assert!(response.status().is_success(), "sandbox: {}", response.status());
        response.json().await.expect("sandbox json")
    }

    /// Every authorization the sandbox holds for the order.
    pub async fn authorizations(&self, order_id: Uuid) -> Vec<Value> {
        let url = format!("{}/v1/authorizations?order_id={order_id}", self.base);
        let body = self.json(self.http.get(url)).await;
        body.as_array().cloned().expect("an array of authorizations")
    }

    pub async fn config(&self) -> Value {
        self.json(self.http.get(format!("{}/sim/config", self.base)))
            .await
    }

    /// Changes only the fields in `change`; the rest stay as they are.
    pub async fn set_config(&self, change: &Value) {
        let url = format!("{}/sim/config", self.base);
        self.json(self.http.put(url).json(change)).await;
    }
}

/// Runs `body` in its own task, then `restore` whether it passed or panicked, then passes the
/// body's panic on: shared settings go back even when an assertion fails.
pub async fn restoring<T: Send + 'static>(
    body: impl Future<Output = T> + Send + 'static,
    restore: impl Future<Output = ()>,
) -> T {
    let outcome = tokio::spawn(body).await;
    restore.await;
    match outcome {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test body did not finish: {e}"),
        },
    }
}

/// `orders.stock`, each (sku, region) partition read in the datacenter of the region that writes it.
#[derive(Clone)]
pub struct StockRows {
    sessions: Vec<(String, Arc<Session>)>,
}

impl StockRows {
    pub async fn connect() -> Self {
        let mut sessions = Vec::new();
        for r in regions() {
            sessions.push((r.name.clone(), session(&r).await));
        }
        StockRows { sessions }
    }

    fn session(&self, region: &str) -> &Session {
        &self
            .sessions
            .iter()
            .find(|(r, _)| r == region)
            .expect("known region")
            .1
    }

    /// The regions whose allocation of `sku` holds a reservation row of `order_id`, one entry per row.
    pub async fn holders(&self, sku: &str, order_id: Uuid) -> Vec<String> {
        let mut found = Vec::new();
        for (region, session) in &self.sessions {
            let cql = "SELECT region FROM orders.stock WHERE sku = ? AND region = ? AND order_id = ?";
            let rows = session
                .query_unpaged(cql, (sku, region.as_str(), order_id))
                .await
                .expect("read reservation rows")
                .into_rows_result()
                .expect("rows");
            for row in rows.rows::<(String,)>().expect("typed rows") {
                found.push(row.expect("a region").0);
            }
        }
        found
    }

    pub async fn available(&self, sku: &str, region: &str) -> i64 {
        let cql = "SELECT available FROM orders.stock WHERE sku = ? AND region = ? LIMIT 1";
        let rows = self
            .session(region)
            .query_unpaged(cql, (sku, region))
            .await
            .expect("read available")
            .into_rows_result()
            .expect("rows");
        rows.maybe_first_row::<(Option<i64>,)>()
            .expect("typed row")
            .and_then(|(a,)| a)
            .unwrap_or(0)
    }

    pub async fn set_available(&self, sku: &str, region: &str, available: i64) {
        let cql = "UPDATE orders.stock SET available = ? WHERE sku = ? AND region = ?";
        self.session(region)
            .query_unpaged(cql, (available, sku, region))
            .await
            .expect("set available");
    }
}

/// The sum of every series of counter `name` on the region's worker `/metrics`.
pub async fn worker_counter(region: &Region, name: &str) -> f64 {
    let url = format!("http://127.0.0.1:{}/metrics", region.worker_port);
    let text = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("worker metrics of {} ({url}): {e}", region.name))
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Reads `topic` from `from` on, collecting the records keyed `key`, until `enough` says so or
/// `FINAL_WAIT` passes; returns those found, detached.
pub async fn records_with_key(
    bootstrap: &str,
    topic: &str,
    from: Vec<(i32, i64)>,
    key: &str,
    enough: impl Fn(&[OwnedMessage]) -> bool + Send + 'static,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "orders-tests-inspector")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut partitions = TopicPartitionList::new();
    for (p, o) in from {
        partitions
            .add_partition_offset(topic, p, Offset::Offset(o))
            .expect("partition");
    }
    consumer.assign(&partitions).expect("assign");
    let key = key.as_bytes().to_vec();
    // librdkafka's poll blocks: keep it off the test's runtime threads.
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + FINAL_WAIT;
        let mut found = Vec::new();
        while !enough(&found) && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100))
                && m.key() == Some(key.as_slice())
            {
                found.push(m.detach());
            }
        }
        found
    })
    .await
    .expect("reading records")
}

/// The value of header `name` of `record`, as text.
pub fn header(record: &OwnedMessage, name: &str) -> Option<String> {
    let headers = record.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A worker of `region_name` built in this process from the production code. It is never `run`, so
/// it joins no consumer group: tests hand it records through `Worker::handle_record`.
pub async fn in_process_worker(region_name: &str) -> (orders_worker::App, CancellationToken) {
    let r = region(region_name);
    let all: Vec<String> = regions().into_iter().map(|r| r.name).collect();
    let config = orders_worker::Config::from_lookup(|k| match k {
        "ORDERS_REGION" => Some(r.name.clone()),
        "ORDERS_REGIONS" => Some(all.join(",")),
        "ORDERS_CASSANDRA" => Some(r.cql_contact()),
        "ORDERS_KAFKA" => Some(r.kafka.clone()),
        "ORDERS_PAYMENT_URL" => std::env::var("ORDERS_PAYMENT_URL").ok(),
        "ORDERS_LISTEN" => Some("127.0.0.1:0".into()),
        _ => None,
    })
    .expect("worker config");
    let shutdown = CancellationToken::new();
    let app = orders_worker::build(config, shutdown.clone())
        .await
        .expect("build an in-process worker");
    (app, shutdown)
}
