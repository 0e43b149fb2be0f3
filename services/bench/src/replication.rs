//! `replication`: under placement load, how fresh the mirrored log is in the other region (age of
//! each mirrored `orders` record and MirrorMaker 2 heartbeat on arrival) and how far the other
//! datacenter lags (a probe row written at LOCAL_QUORUM here, polled at LOCAL_ONE there every 1 ms).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::message::Message;
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use serde_json::json;
use uuid::Uuid;

use crate::api::ApiPlacer;
use crate::cli::ReplicationArgs;
use crate::ctx::{Ctx, name, progress};
use crate::kafka;
use crate::load::{self, Done, OpError};
use crate::report::{Check, Report, Section, latency_row, latency_table, steps_table};
use crate::schedule::Schedule;
use crate::stats::{Latencies, LatencySummary};
use crate::step::BreakRule;

/// A probe row not seen in the other datacenter within this long counts as an error.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

struct Probe {
    write_session: Arc<Session>,
    read_session: Arc<Session>,
    write: PreparedStatement,
    read: PreparedStatement,
    region: String,
    lag: Mutex<Latencies>,
}

impl Probe {
    /// One probe: write, then poll the other datacenter until the row shows; the lag is recorded.
    async fn once(self: Arc<Self>) -> Result<Done, OpError> {
        let id = Uuid::new_v4();
        self.write_session
            .execute_unpaged(&self.write, (id, &self.region, "orders-bench replication probe"))
            .await
            .map_err(|_| OpError::new("cql: probe write"))?;
        let acked = Instant::now();
        while acked.elapsed() < PROBE_TIMEOUT {
            let found = self
                .read_session
                .execute_unpaged(&self.read, (id,))
                .await
                .ok()
                .and_then(|r| r.into_rows_result().ok())
                .is_some_and(|r| r.rows_num() > 0);
            if found {
                self.lag.lock().expect("lag lock").record(acked.elapsed());
                return Ok(Done { ack: acked });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(OpError::new(
            "probe not visible in the other datacenter within 5 s",
        ))
    }
}

async fn probe(ctx: &Ctx, to: &crate::stack::Region) -> anyhow::Result<Arc<Probe>> {
    use orders_store::StoreConfig;
    let here = &ctx.region;
    let write_session = orders_store::connect(&StoreConfig::new(here.cql_contact(), here.name.as_str()))
        .await
        .with_context(|| format!("CQL of {}", here.name))?;
    let read_session = orders_store::session::connect_with(
        &StoreConfig::new(to.cql_contact(), to.name.as_str()),
        Consistency::LocalOne,
    )
    .await
    .with_context(|| format!("CQL of {}", to.name))?;
    // Probe rows expire by themselves: the table is scratch space, not a log of every run.
    let mut write = write_session
        .prepare("INSERT INTO orders.probes (id, region, value) VALUES (?, ?, ?) USING TTL 3600")
        .await?;
    write.set_consistency(Consistency::LocalQuorum);
    let mut read = read_session
        .prepare("SELECT value FROM orders.probes WHERE id = ?")
        .await?;
    read.set_consistency(Consistency::LocalOne);
    Ok(Arc::new(Probe {
        write_session,
        read_session,
        write,
        read,
        region: here.name.clone(),
        lag: Mutex::default(),
    }))
}

/// Records the age (receipt time minus record timestamp) of every record of `topic` from now on.
fn ages(
    bootstrap: &str,
    topic: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Arc<Mutex<Latencies>>, std::thread::JoinHandle<u64>)> {
    let consumer = kafka::at_end(bootstrap, topic)?;
    let ages: Arc<Mutex<Latencies>> = Arc::default();
    let sink = ages.clone();
    let reader = kafka::read_until(consumer, stop, move |m, now_ms| {
        if let Some(ts) = m.timestamp().to_millis() {
            sink.lock().expect("ages lock").record_ms(now_ms - ts);
        }
    });
    Ok((ages, reader))
}

pub async fn run(ctx: &Ctx, args: &ReplicationArgs) -> anyhow::Result<Report> {
    let to = ctx.other_region(args.to.as_deref())?;
    let from = ctx.region.clone();
    let duration = Duration::from_secs_f64(args.duration.unwrap_or(if ctx.quick { 15.0 } else { 30.0 }));
    let base = args.api_url.clone().unwrap_or_else(|| from.api_url());
    let placer = ApiPlacer::new(
        &base,
        ctx.stack.api_key()?,
        ctx.stack.skus.clone(),
        "bench-repl-",
        Duration::from_secs(10),
    )?;
    let mirrored_orders = orders_log::mirrored(&from.name, orders_log::ORDERS_TOPIC);
    let mirrored_heartbeats = orders_log::mirrored(&from.name, "heartbeats");

    let stop = Arc::new(AtomicBool::new(false));
    let (order_ages, orders_reader) = ages(&to.kafka, &mirrored_orders, stop.clone())?;
    let (heartbeat_ages, heartbeats_reader) = ages(&to.kafka, &mirrored_heartbeats, stop.clone())?;
    let probe = probe(ctx, &to).await?;

    progress(format!(
        "replication {} -> {}: {}/s placements, {}/s database probes, {duration:?}",
        from.name, to.name, args.rate, args.probe_rate
    ));
    let load = load::run(Schedule::new(args.rate, duration), ctx.limits, |_| {
        let placer = placer.clone();
        async move { placer.place().await.map(|p| Done { ack: p.at }) }
    });
    let probes = load::run(Schedule::new(args.probe_rate, duration), ctx.limits, |_| {
        probe.clone().once()
    });
    let (load, probes) = tokio::join!(load, probes);
    // Records produced at the end of the load still have to cross.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let join = |h: std::thread::JoinHandle<u64>| tokio::task::spawn_blocking(move || h.join().unwrap_or(0));
    let _ = join(orders_reader).await;
    let _ = join(heartbeats_reader).await;

    let orders = order_ages.lock().expect("ages lock").summary();
    let heartbeats = heartbeat_ages.lock().expect("ages lock").summary();
    let db = probe.lag.lock().expect("lag lock").summary();
    let freshness: &LatencySummary = if orders.count > 0 { &orders } else { &heartbeats };
    let checks = vec![
        Check::new(
            "log replication freshness p99",
            "< 1.5 s under load",
            match freshness.p99_ms {
                Some(p) => format!(
                    "{p:.0} ms ({} {})",
                    freshness.count,
                    if orders.count > 0 {
                        "mirrored order records"
                    } else {
                        "heartbeats"
                    }
                ),
                None => "no mirrored record arrived".into(),
            },
            freshness.p99_ms.map(|p| p < 1500.0),
        ),
        Check::new(
            "database cross-DC lag p99",
            "< 100 ms",
            match db.p99_ms {
                Some(p) => format!(
                    "{p:.1} ms ({} probes, {} not seen)",
                    db.count,
                    probes.error_count()
                ),
                None => "no probe became visible".into(),
            },
            db.p99_ms.map(|p| p < 100.0 && probes.error_count() == 0),
        ),
    ];
    let mut t = latency_table();
    t.row(latency_row(
        &format!("age of {mirrored_orders} records in {}", to.name),
        &orders,
    ));
    t.row(latency_row(
        &format!("age of {mirrored_heartbeats} (MM2 heartbeats) in {}", to.name),
        &heartbeats,
    ));
    t.row(latency_row(
        &format!(
            "probe row: LOCAL_QUORUM ack in {} to visible at LOCAL_ONE in {}",
            from.name, to.name
        ),
        &db,
    ));
    let mut lines = vec![
        "- Ages are receipt time minus the record's timestamp (CreateTime, kept by MirrorMaker 2), in ms; the mirrored topic carries every client's orders, not only this run's.".to_string(),
        "- The probe is polled every 1 ms, so the database lag resolution is about 1 ms plus one read.".to_string(),
    ];
    if heartbeats.count == 0 {
        lines.push(format!(
            "- **No MirrorMaker 2 heartbeat arrived in {mirrored_heartbeats} at {}**: heartbeats flow every second, so that mirror is stalled.",
            to.name
        ));
    }
    let load_result = load.result("api", &BreakRule::default());
    let probe_result = probes.result("probe-write", &BreakRule::default());
    let sections = vec![
        Section {
            title: format!("Replication {} -> {}", from.name, to.name),
            lines,
            table: Some(t),
        },
        Section {
            title: "Load".into(),
            lines: vec![],
            table: Some(steps_table(&[load_result.clone(), probe_result.clone()])),
        },
    ];
    Ok(ctx.report(
        "replication",
        json!({
            "from": from.name, "to": to.name, "durability": name(ctx.durability), "quick": ctx.quick,
            "rate": args.rate, "probe_rate": args.probe_rate, "duration_s": duration.as_secs_f64(), "api_url": base,
        }),
        checks,
        json!({
            "mirrored_orders_age": orders, "heartbeat_age": heartbeats, "db_cross_dc_lag": db,
            "probes_not_seen": probes.error_count(), "load": load_result, "probe_writes": probe_result,
        }),
        sections,
    ))
}
