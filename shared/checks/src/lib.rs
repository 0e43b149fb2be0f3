//! The dependency checks every service registers on its `HealthChecks`: each runs in the
//! background on its interval and readiness only reads the last result.
use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_health::{CheckResult, ComponentType, HealthChecks, Status};
use scylla::client::session::Session;
use uuid::Uuid;

pub use orders_health::runner::RegisterError;

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

async fn probe(session: &Session, region: &str) -> Result<(), String> {
    // One probe row per region, overwritten each time: no growth, no tombstones.
    let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("health-probe-{region}").as_bytes());
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
