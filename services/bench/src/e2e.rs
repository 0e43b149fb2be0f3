//! `e2e`: placements through the API, then their final events (OrderConfirmed or OrderRejected)
//! read from every region's `orders` topic: placed-to-processed is the final record's timestamp
//! minus the moment the 201 arrived. Every worker's own histogram is reported beside it.
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use serde_json::json;
use uuid::Uuid;

use crate::api::ApiPlacer;
use crate::cli::E2eArgs;
use crate::ctx::{Ctx, name, progress};
use crate::kafka;
use crate::load::{self, Done};
use crate::prom::Buckets;
use crate::report::{Check, Report, Section, Table, latency_row, latency_table, steps_table};
use crate::schedule::Schedule;
use crate::stack::Region;
use crate::stats::{Latencies, fmt_ms};
use crate::step::BreakRule;

pub const FINAL_EVENTS: [&str; 2] = ["OrderConfirmed", "OrderRejected"];
const WORKER_HISTOGRAM: &str = "orders_placed_to_processed_seconds";

/// The final event of an order as seen on a topic.
#[derive(Debug, Clone)]
struct Final {
    event_type: String,
    produced_unix_ms: i64,
    /// Whose `orders` topic carried it: the region that processed the order.
    region: String,
}

type Finals = Arc<Mutex<HashMap<Uuid, Final>>>;

/// Reads every region's `orders` from its end: an order is processed by its origin region, or by
/// the region that took the origin's orders over, and the final event goes to that region's topic.
fn read_finals(
    regions: &[Region],
    finals: &Finals,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<JoinHandle<u64>>> {
    let mut readers = Vec::new();
    for region in regions {
        let consumer = kafka::at_end(&region.kafka, orders_log::ORDERS_TOPIC)?;
        let (finals, name) = (finals.clone(), region.name.clone());
        readers.push(kafka::read_until(consumer, stop.clone(), move |m, _| {
            let Some(event_type) = kafka::header(m, orders_journal::HEADER_EVENT_TYPE) else {
                return;
            };
            if !FINAL_EVENTS.contains(&event_type) {
                return;
            }
            let key = m.key().and_then(|k| std::str::from_utf8(k).ok());
            let (Some(order_id), Some(ts)) = (
                key.and_then(|k| Uuid::parse_str(k).ok()),
                m.timestamp().to_millis(),
            ) else {
                return;
            };
            finals
                .lock()
                .expect("finals lock")
                .entry(order_id)
                .or_insert(Final {
                    event_type: event_type.to_string(),
                    produced_unix_ms: ts,
                    region: name.clone(),
                });
        }));
    }
    Ok(readers)
}

async fn scrape(http: &reqwest::Client, url: &str) -> Option<Buckets> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(Buckets::parse(&text, WORKER_HISTOGRAM))
}

/// What the placed orders' final events say.
#[derive(Debug, Default)]
struct Outcomes {
    latency: Latencies,
    confirmed: u64,
    rejected: u64,
    missing: u64,
    before_ack: u64,
    processed_in: BTreeMap<String, u64>,
}

fn outcomes(placed: &HashMap<Uuid, i64>, finals: &HashMap<Uuid, Final>) -> Outcomes {
    let mut o = Outcomes::default();
    for (id, acked_ms) in placed {
        let Some(f) = finals.get(id) else {
            o.missing += 1;
            continue;
        };
        if f.event_type == "OrderConfirmed" {
            o.confirmed += 1;
        } else {
            o.rejected += 1;
        }
        *o.processed_in.entry(f.region.clone()).or_default() += 1;
        let ms = f.produced_unix_ms - acked_ms;
        if ms < 0 {
            o.before_ack += 1;
        }
        o.latency.record_ms(ms);
    }
    o
}

pub async fn run(ctx: &Ctx, args: &E2eArgs) -> anyhow::Result<Report> {
    let duration = Duration::from_secs_f64(args.duration.unwrap_or(if ctx.quick { 15.0 } else { 30.0 }));
    let drain = Duration::from_secs_f64(args.drain.unwrap_or(if ctx.quick { 15.0 } else { 30.0 }));
    let base = args.api_url.clone().unwrap_or_else(|| ctx.region.api_url());
    let placer = ApiPlacer::new(
        &base,
        ctx.stack.api_key()?,
        ctx.stack.skus.clone(),
        "bench-e2e-",
        Duration::from_secs(10),
    )?;

    let finals: Finals = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = read_finals(&ctx.stack.regions, &finals, &stop)?;
    let workers: Vec<String> = ctx.stack.regions.iter().map(Region::worker_url).collect();
    let mut before = Vec::new();
    for url in &workers {
        before.push(scrape(placer.http(), url).await);
    }

    let placed: Arc<Mutex<HashMap<Uuid, i64>>> = Arc::default();
    progress(format!("e2e: {}/s through {base} for {duration:?}", args.rate));
    let step = load::run(Schedule::new(args.rate, duration), ctx.limits, |_| {
        let (placer, placed) = (placer.clone(), placed.clone());
        async move {
            let p = placer.place().await?;
            placed
                .lock()
                .expect("placed lock")
                .insert(p.order_id, p.at_unix_ms);
            Ok(Done { ack: p.at })
        }
    })
    .await;
    let placed = placed.lock().expect("placed lock").clone();
    progress(format!(
        "e2e: {} placed; waiting up to {drain:?} for their final events",
        placed.len()
    ));
    let deadline = Instant::now() + drain;
    loop {
        let missing = {
            let f = finals.lock().expect("finals lock");
            placed.keys().filter(|id| !f.contains_key(id)).count()
        };
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut consumer_errors = 0;
    for reader in readers {
        consumer_errors += tokio::task::spawn_blocking(move || reader.join().unwrap_or(0))
            .await
            .unwrap_or(0);
    }
    let o = outcomes(&placed, &finals.lock().expect("finals lock"));
    let e2e = o.latency.summary();

    let mut worker_table = Table::new(&[
        "worker histogram (delta over the run)",
        "observations",
        "p50 ms",
        "p99 ms",
    ]);
    let mut worker_json = serde_json::Map::new();
    let mut busiest: Option<(f64, Option<f64>)> = None;
    for ((region, url), before) in ctx.stack.regions.iter().zip(&workers).zip(&before) {
        let after = scrape(placer.http(), url).await;
        let delta = before.as_ref().zip(after.as_ref()).map(|(b, a)| a.since(b));
        let q = |q: f64| delta.as_ref().and_then(|d| d.quantile(q)).map(|s| s * 1000.0);
        let count = delta.as_ref().map_or(0.0, Buckets::total);
        if count > 0.0 && busiest.is_none_or(|(c, _)| count > c) {
            busiest = Some((count, q(0.99)));
        }
        worker_table.row(vec![
            format!("{WORKER_HISTOGRAM} at {url}"),
            format!("{count:.0}"),
            fmt_ms(q(0.5)),
            fmt_ms(q(0.99)),
        ]);
        worker_json.insert(
            region.name.clone(),
            json!({ "observations": count, "p50_ms": q(0.5), "p99_ms": q(0.99), "scraped": delta.is_some() }),
        );
    }

    let placement = step.result("api", &BreakRule::default());
    let check = Check::new(
        "placed to processed p99",
        "< 100 ms at half load",
        match e2e.p99_ms {
            Some(p) => format!(
                "{p:.1} ms at {}/s, {} of {} final (busiest worker's histogram p99 ≈ {} ms)",
                args.rate,
                o.confirmed + o.rejected,
                placed.len(),
                fmt_ms(busiest.and_then(|(_, p)| p))
            ),
            None => "no order reached a final event".into(),
        },
        e2e.p99_ms.map(|p| p < 100.0 && o.missing == 0),
    );
    let mut latencies = latency_table();
    latencies.row(latency_row(
        "placement (intended start to 201)",
        &placement.latency,
    ));
    latencies.row(latency_row(
        "placed to processed (201 to final event produced)",
        &e2e,
    ));
    let sections = vec![
        Section {
            title: "Placed to processed".into(),
            lines: vec![
                format!(
                    "- {} placed: {} confirmed, {} rejected, {} without a final event after {drain:?}",
                    placed.len(),
                    o.confirmed,
                    o.rejected,
                    o.missing
                ),
                format!("- processed in (whose `orders` topic carried the final event): {:?}", o.processed_in),
                format!("- {} final events carried a timestamp before the 201 arrived (counted as 0 ms)", o.before_ack),
                "- Kafka timestamps have millisecond resolution; both clocks are this machine's.".into(),
            ],
            table: Some(latencies),
        },
        Section {
            title: "Workers' own histograms".into(),
            lines: vec![
                "Bucketed (10, 25, 50, 75, 100, 150, 250 ms ...), interpolated like histogram_quantile; they count every order a worker finished during the run, other clients' too.".into(),
            ],
            table: Some(worker_table),
        },
        Section {
            title: "Placement load".into(),
            lines: vec![],
            table: Some(steps_table(std::slice::from_ref(&placement))),
        },
    ];
    Ok(ctx.report(
        "e2e",
        json!({
            "region": ctx.region.name, "durability": name(ctx.durability), "quick": ctx.quick,
            "rate": args.rate, "duration_s": duration.as_secs_f64(), "drain_s": drain.as_secs_f64(), "api_url": base,
        }),
        vec![check],
        json!({
            "placed": placed.len(), "confirmed": o.confirmed, "rejected": o.rejected, "missing": o.missing,
            "final_before_ack": o.before_ack, "processed_in": o.processed_in, "consumer_errors": consumer_errors,
            "placed_to_processed": e2e,
            "worker_histograms": worker_json,
            "placement": placement,
        }),
        sections,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placed_to_processed_runs_from_the_201_to_the_final_event_wherever_it_was_processed() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let placed = HashMap::from([(a, 1_000), (b, 1_000), (c, 1_000)]);
        let fin = |t: &str, ms, r: &str| Final {
            event_type: t.into(),
            produced_unix_ms: ms,
            region: r.into(),
        };
        let finals = HashMap::from([
            (a, fin("OrderConfirmed", 1_040, "eu")),
            (b, fin("OrderRejected", 990, "us")),
        ]);
        let o = outcomes(&placed, &finals);
        assert_eq!((o.confirmed, o.rejected, o.missing, o.before_ack), (1, 1, 1, 1));
        assert_eq!(
            o.processed_in,
            BTreeMap::from([("eu".into(), 1), ("us".into(), 1)])
        );
        let s = o.latency.summary();
        assert_eq!(s.count, 2);
        assert!((s.max_ms.unwrap() - 40.0).abs() < 0.1);
    }
}
