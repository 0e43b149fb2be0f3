//! Cross-region replication signals: how fresh the log mirrored from each other region is, and how
//! far behind this datacenter's copy of each other region's database heartbeat row is.
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orders_health::{ComponentType, HealthChecks};
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::unprepared::Statement;
use tokio_util::sync::CancellationToken;

use crate::{RegisterError, Thresholds};

/// `kafka:replicationFreshness`: age of the newest MirrorMaker 2 heartbeat mirrored from each
/// other region into this region's Kafka. Heartbeats flow every second even without orders.
pub fn log_freshness(
    checks: &HealthChecks,
    thresholds: &Thresholds,
    bootstrap: &str,
    here: &str,
    sources: Vec<String>,
) -> Result<(), RegisterError> {
    let key = "kafka:replicationFreshness";
    let (bootstrap, here, judge) = (bootstrap.to_string(), here.to_string(), thresholds.judge(key));
    checks.register(key, Duration::from_secs(1), Duration::from_secs(3), move || {
        let (bootstrap, here, sources, judge) =
            (bootstrap.clone(), here.clone(), sources.clone(), judge.clone());
        async move {
            let mut out = Vec::new();
            for source in sources {
                let topic = orders_log::mirrored(&source, "heartbeats");
                let result = orders_log::latest_record(&bootstrap, &topic, Duration::from_millis(1500)).await;
                let check = match result {
                    Ok(Some(r)) => judge.observe(r.age().as_secs_f64()),
                    Ok(None) => {
                        judge.failed(format!("no heartbeat from {source} has ever arrived in {here}"))
                    }
                    Err(e) => judge.failed(format!("cannot read {topic} in {here}: {e}")),
                };
                out.push(
                    check
                        .with_component_id(format!("{source}->{here}"))
                        .with_component_type(ComponentType::System),
                );
            }
            out
        }
    })
}

/// Writes this region's heartbeat row every `every` until shutdown: what the other regions read.
pub async fn write_db_heartbeats(
    session: Arc<Session>,
    region: String,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let _ = session
            .query_unpaged(
                "INSERT INTO orders.heartbeats (region, written_at) VALUES (?, ?)",
                (&region, Utc::now()),
            )
            .await;
    }
}

/// `cassandra:crossDcLag`: age of each other region's heartbeat row as this datacenter has it
/// (LOCAL_ONE: exactly this datacenter's replica). Heartbeats are written every 200 ms, so the age
/// is the replication lag plus at most that.
pub fn db_lag(
    checks: &HealthChecks,
    thresholds: &Thresholds,
    session: Arc<Session>,
    here: &str,
    sources: Vec<String>,
) -> Result<(), RegisterError> {
    let key = "cassandra:crossDcLag";
    let (here, judge) = (here.to_string(), thresholds.judge(key));
    checks.register(key, Duration::from_secs(1), Duration::from_secs(2), move || {
        let (session, here, sources, judge) = (session.clone(), here.clone(), sources.clone(), judge.clone());
        async move {
            let mut out = Vec::new();
            for source in sources {
                let mut read = Statement::new("SELECT written_at FROM orders.heartbeats WHERE region = ?");
                read.set_consistency(Consistency::LocalOne);
                let row = match session.query_unpaged(read, (&source,)).await {
                    Ok(r) => r
                        .into_rows_result()
                        .ok()
                        .and_then(|r| r.maybe_first_row::<(chrono::DateTime<Utc>,)>().ok().flatten()),
                    Err(e) => {
                        out.push(
                            judge
                                .failed(format!("cannot read heartbeats in {here}: {e}"))
                                .with_component_id(format!("{source}->{here}")),
                        );
                        continue;
                    }
                };
                let check = match row {
                    Some((at,)) => {
                        judge.observe(((Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0)
                    }
                    None => judge.failed(format!("no heartbeat row from {source} in {here} yet")),
                };
                out.push(
                    check
                        .with_component_id(format!("{source}->{here}"))
                        .with_component_type(ComponentType::Datastore),
                );
            }
            out
        }
    })
}
