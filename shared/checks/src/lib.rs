//! The dependency checks every service registers on its `HealthChecks`: each runs in the
//! background on its interval and readiness only reads the last result.
mod lag;
mod replication;

use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_health::model::ModelConfig;
use orders_health::{CheckResult, ComponentType, HealthChecks, Status};
use scylla::client::session::Session;
use uuid::Uuid;

pub use lag::consumer_lag;
pub use orders_health::runner::RegisterError;
pub use replication::{db_lag, log_freshness, write_db_heartbeats};

/// The shipped health model (deploy/health-model.yaml): the one place thresholds live. Services
/// judge their own checks by it, and the console colors the model by it.
const SHIPPED_MODEL: &str = include_str!("../../../deploy/health-model.yaml");

/// The yellow and red bounds of every measured check.
#[derive(Debug, Clone)]
pub struct Thresholds(ModelConfig);

impl Thresholds {
    /// The shipped thresholds, or those of the file `ORDERS_HEALTH_MODEL` names.
    pub fn load() -> Result<Self, String> {
        match std::env::var("ORDERS_HEALTH_MODEL") {
            Ok(path) => ModelConfig::load(std::path::Path::new(&path))
                .map(Thresholds)
                .map_err(|e| format!("{path}: {e}")),
            Err(_) => ModelConfig::from_yaml(SHIPPED_MODEL)
                .map(Thresholds)
                .map_err(|e| e.to_string()),
        }
    }

    pub fn judge(&self, key: &str) -> Judge {
        let t = self.0.thresholds.get(key);
        Judge {
            yellow: t.map_or(f64::INFINITY, |t| t.yellow),
            red: t.map_or(f64::INFINITY, |t| t.red),
            unit: t.and_then(|t| t.unit.clone()).unwrap_or_default(),
        }
    }
}

/// Turns a measurement into a check result: at or above yellow warns, at or above red fails.
#[derive(Debug, Clone)]
pub struct Judge {
    yellow: f64,
    red: f64,
    unit: String,
}

impl Judge {
    pub fn observe(&self, value: f64) -> CheckResult {
        let status = if value >= self.red {
            Status::Fail
        } else if value >= self.yellow {
            Status::Warn
        } else {
            Status::Pass
        };
        CheckResult::now(status).with_observed(value, self.unit.clone())
    }

    pub fn failed(&self, output: String) -> CheckResult {
        CheckResult::now(Status::Fail).with_output(output)
    }
}

const EVERY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(2);

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

/// `kafka:responseTime`: a metadata call to the region's Kafka.
pub fn kafka(checks: &HealthChecks, bootstrap: &str) -> Result<(), RegisterError> {
    let bootstrap = bootstrap.to_string();
    checks.register("kafka:responseTime", EVERY, TIMEOUT, move || {
        let bootstrap = bootstrap.clone();
        async move {
            let start = Instant::now();
            let result = orders_log::metadata_ready(&bootstrap, Duration::from_millis(1500)).await;
            let check = match result {
                Ok(()) => CheckResult::now(Status::Pass).with_observed(millis(start.elapsed()), "ms"),
                Err(e) => CheckResult::now(Status::Fail)
                    .with_output(format!("kafka at {bootstrap} unreachable: {e}")),
            };
            vec![
                check
                    .with_component_id(bootstrap)
                    .with_component_type(ComponentType::Datastore),
            ]
        }
    })
}

/// `payment:responseTime`: the payment provider answers its health endpoint.
pub fn payment(checks: &HealthChecks, base_url: &str) -> Result<(), RegisterError> {
    let url = format!("{}/health/ready", base_url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .expect("static client");
    checks.register(
        "payment:responseTime",
        Duration::from_secs(2),
        TIMEOUT,
        move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let start = Instant::now();
                let check = match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        CheckResult::now(Status::Pass).with_observed(millis(start.elapsed()), "ms")
                    }
                    Ok(r) => CheckResult::now(Status::Fail)
                        .with_output(format!("payment provider answered {}", r.status())),
                    Err(e) => CheckResult::now(Status::Fail)
                        .with_output(format!("payment provider unreachable: {e}")),
                };
                vec![
                    check
                        .with_component_id(url)
                        .with_component_type(ComponentType::System),
                ]
            }
        },
    )
}

/// `cassandra:responseTime`: a LOCAL_QUORUM write and read of a probe row in this datacenter.
pub fn cassandra(checks: &HealthChecks, session: Arc<Session>, region: &str) -> Result<(), RegisterError> {
    let region = region.to_string();
    checks.register("cassandra:responseTime", EVERY, TIMEOUT, move || {
        let (session, region) = (session.clone(), region.clone());
        async move {
            let start = Instant::now();
            let check = match probe(&session, &region).await {
                Ok(()) => CheckResult::now(Status::Pass).with_observed(millis(start.elapsed()), "ms"),
                Err(e) => CheckResult::now(Status::Fail)
                    .with_output(format!("cql probe in datacenter {region} failed: {e}")),
            };
            vec![
                check
                    .with_component_id(format!("datacenter {region}"))
                    .with_component_type(ComponentType::Datastore),
            ]
        }
    })
}

/// `outbox:backlog`: outbox rows of this region not yet relayed. A backlog warns (processing is
/// late) but never fails readiness: placing orders still works.
pub fn outbox_backlog(
    checks: &HealthChecks,
    thresholds: &Thresholds,
    session: Arc<Session>,
    region: &str,
) -> Result<(), RegisterError> {
    let key = "outbox:backlog";
    let (judge, region) = (thresholds.judge(key), region.to_string());
    let outbox: Arc<tokio::sync::OnceCell<orders_store::outbox::Outbox>> = Arc::default();
    checks.register(key, Duration::from_secs(2), TIMEOUT, move || {
        let (session, region, judge, outbox) =
            (session.clone(), region.clone(), judge.clone(), outbox.clone());
        async move {
            let outbox = outbox
                .get_or_try_init(|| orders_store::outbox::Outbox::new(session, &region))
                .await;
            let check = match outbox {
                Ok(o) => match o.backlog().await {
                    Ok(n) => {
                        let mut c = judge.observe(n as f64);
                        if c.status == Status::Fail {
                            c.status = Status::Warn;
                        }
                        c
                    }
                    Err(e) => judge.failed(format!("cannot count the outbox: {e}")),
                },
                Err(e) => judge.failed(format!("cannot prepare the outbox count: {e}")),
            };
            vec![
                check
                    .with_component_id(format!("outbox {region}"))
                    .with_component_type(ComponentType::Component),
            ]
        }
    })
}

async fn probe(session: &Session, region: &str) -> Result<(), String> {
    // One probe row per region and process, overwritten each time: no growth, no tombstones, and
    // no other process of the region overwriting it between our write and our read.
    static PROCESS: std::sync::OnceLock<Uuid> = std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(Uuid::new_v4);
    let id = Uuid::new_v5(process, format!("health-probe-{region}").as_bytes());
    let value = Uuid::new_v4().to_string();
    session
        .query_unpaged(
            "INSERT INTO orders.probes (id, region, value) VALUES (?, ?, ?)",
            (id, region, &value),
        )
        .await
        .map_err(|e| format!("write: {e}"))?;
    let rows = session
        .query_unpaged("SELECT value FROM orders.probes WHERE id = ?", (id,))
        .await
        .map_err(|e| format!("read: {e}"))?
        .into_rows_result()
        .map_err(|e| format!("read: {e}"))?;
    match rows.maybe_first_row::<(String,)>() {
        Ok(Some((v,))) if v == value => Ok(()),
        Ok(_) => Err("read did not return the value just written".into()),
        Err(e) => Err(format!("read: {e}")),
    }
}
