//! `launch`: a crowd buying one unit each of a limited SKU through every edge, beside ordinary
//! shoppers, after a quiet run of the shoppers alone. The stock is set first; every accepted crowd
//! order is polled until final. Verdicts: nothing sold beyond stock in any region, how soon a buyer
//! knew the outcome, and what the crowd did to the ordinary shoppers.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use orders_store::StoreConfig;
use orders_store::stock::Stock;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::api::ApiPlacer;
use crate::cli::LaunchArgs;
use crate::ctx::{Ctx, name, progress};
use crate::load::Limits;
use crate::offer::{self, Offer, Poll, Sink};
use crate::report::{Check, Report, Section, Table, latency_row, latency_table};
use crate::spike::{self, Attempt, Shed};
use crate::stack::{Region, Sku};
use crate::stats::{LatencySummary, fmt_ms};

/// What one region sold of the limited SKU.
#[derive(Debug, Clone, Serialize)]
pub struct RegionSales {
    pub region: String,
    pub available_before: i64,
    pub stock: u64,
    pub confirmed: u64,
    pub rejected: u64,
    pub cancelled: u64,
    /// Accepted crowd orders of this origin not final when polling gave up.
    pub unresolved: u64,
    /// Crowd orders of this run holding a reservation in this region's stock partition.
    pub held: Option<u64>,
    pub available_after: Option<i64>,
    pub oversold: u64,
}

fn placers(
    ctx: &Ctx,
    key: &str,
    skus: &[Sku],
    prefix: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<(Region, ApiPlacer)>> {
    ctx.stack
        .regions
        .iter()
        .map(|r| {
            let p = ApiPlacer::new(
                &r.edge_url(),
                key.to_string(),
                skus.to_vec(),
                &format!("{prefix}-{}-", r.name),
                timeout,
            )?;
            Ok((r.clone(), p))
        })
        .collect()
}

/// One offer per edge, the rate split evenly.
fn offers(placers: &[(Region, ApiPlacer)], rate: f64, duration: f64, poll: Option<Poll>) -> Vec<Offer> {
    placers
        .iter()
        .map(|(r, p)| Offer {
            placer: p.clone(),
            edge: r.name.clone(),
            rate: rate / placers.len() as f64,
            duration: Duration::from_secs_f64(duration),
            delay: Duration::ZERO,
            poll,
        })
        .collect()
}

async fn drive(offers: Vec<Offer>, limits: Limits, sink: &Sink, what: &'static str) {
    let t0 = Instant::now();
    let ticker = {
        let sink = sink.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let a = sink.lock().expect("attempts lock");
                progress(format!(
                    "{what}: t={:.0}s, {} attempts done, {} accepted",
                    t0.elapsed().as_secs_f64(),
                    a.len(),
                    a.iter().filter(|a| a.accepted()).count()
                ));
            }
        })
    };
    futures::future::join_all(
        offers
            .into_iter()
            .map(|o| offer::run(o, t0, limits, sink.clone())),
    )
    .await;
    ticker.abort();
}

pub async fn run(ctx: &Ctx, args: &LaunchArgs) -> anyhow::Result<Report> {
    let (crowd_rate, duration, shoppers_rate, stock_total) = args.resolve(ctx.quick);
    let key = ctx.stack.api_key()?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let limited = [Sku {
        sku: args.sku.clone(),
        price_minor: 0,
        currency: String::new(),
        stock_per_region: 0,
    }];
    let crowd = placers(ctx, &key, &limited, "launch-crowd", timeout)?;
    let shoppers = placers(ctx, &key, &ctx.stack.skus, "launch-shopper", timeout)?;
    let regions: Vec<String> = crowd.iter().map(|(r, _)| r.name.clone()).collect();

    let session = orders_store::connect(&StoreConfig::new(
        ctx.region.cql_contact(),
        ctx.region.name.as_str(),
    ))
    .await
    .with_context(|| format!("connecting to CQL of region {}", ctx.region.name))?;
    let stock = Arc::new(Stock::new(session).await?);
    let split = spike::split_stock(stock_total, regions.len());
    let mut before = Vec::new();
    for (region, units) in regions.iter().zip(&split) {
        before.push(stock.available(&args.sku, region).await?);
        stock.set_available(&args.sku, region, *units as i64).await?;
    }
    progress(format!(
        "stock of {} set to {} (was {})",
        args.sku,
        regions
            .iter()
            .zip(&split)
            .map(|(r, u)| format!("{r} {u}"))
            .collect::<Vec<_>>()
            .join(", "),
        regions
            .iter()
            .zip(&before)
            .map(|(r, u)| format!("{r} {u}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));

    let shopper_limits = Limits {
        max_in_flight: ctx.limits.max_in_flight,
        drain: timeout + Duration::from_secs(2),
    };
    let poll = Poll {
        first: Duration::from_millis(args.poll_ms.max(1)),
        timeout: Duration::from_secs_f64(args.outcome_timeout),
    };
    let crowd_limits = Limits {
        max_in_flight: ctx.limits.max_in_flight,
        drain: timeout + poll.timeout + Duration::from_secs(5),
    };

    let (quiet, crowd_sink, shopper_sink): (Sink, Sink, Sink) = Default::default();
    let runs = async {
        progress(format!(
            "quiet run: shoppers alone at {shoppers_rate}/s for {duration} s"
        ));
        drive(
            offers(&shoppers, shoppers_rate, duration, None),
            shopper_limits,
            &quiet,
            "quiet",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        progress(format!(
            "launch: crowd at {crowd_rate}/s for {} and shoppers at {shoppers_rate}/s, {duration} s through {} edges",
            args.sku,
            crowd.len()
        ));
        tokio::join!(
            drive(
                offers(&crowd, crowd_rate, duration, Some(poll)),
                crowd_limits,
                &crowd_sink,
                "crowd"
            ),
            drive(
                offers(&shoppers, shoppers_rate, duration, None),
                shopper_limits,
                &shopper_sink,
                "shoppers"
            ),
        );
    };
    tokio::select! {
        () = runs => {}
        _ = tokio::signal::ctrl_c() => {
            if !args.keep_stock {
                restore(&stock, &args.sku, &regions, &before).await?;
            }
            anyhow::bail!("launch interrupted");
        }
    }
    let take = |s: &Sink| std::mem::take(&mut *s.lock().expect("attempts lock"));
    let (quiet, crowd_attempts, shopper_attempts) = (take(&quiet), take(&crowd_sink), take(&shopper_sink));

    progress("reading the stock table");
    let accepted: Vec<Uuid> = crowd_attempts.iter().filter_map(|a| a.order_id).collect();
    let mut sales = Vec::new();
    for ((region, units), was) in regions.iter().zip(&split).zip(&before) {
        let held = held(&stock, &args.sku, region, &accepted).await;
        let available_after = stock.available(&args.sku, region).await.ok();
        sales.push(region_sales(
            region,
            *units,
            *was,
            &crowd_attempts,
            held,
            available_after,
        ));
    }
    let oversold: u64 = sales.iter().map(|s| s.oversold).sum();
    if !args.keep_stock
        && let Err(error) = restore(&stock, &args.sku, &regions, &before).await
    {
        // A region killed beside the launch (a drill) may still be down: the report counts more.
        progress(format!(
            "warning: the stock of {} was not set back ({error:#}); it was {:?} in {:?} before the run",
            args.sku, before, regions
        ));
    }

    let known = spike::outcome_latency(&crowd_attempts, |_| true);
    let mut known_all = crate::stats::Latencies::default();
    let unknown_as = Duration::from_secs_f64(args.timeout + args.outcome_timeout);
    for a in &crowd_attempts {
        known_all.record(
            a.outcome_known_ms()
                .map_or(unknown_as, |ms| Duration::from_secs_f64(ms / 1000.0)),
        );
    }
    let known_all = known_all.summary();
    let known_accepted = spike::latency(&crowd_attempts, |a| {
        a.accepted() && a.outcome_known_ms().is_some()
    });
    let known_refused = spike::latency(&crowd_attempts, Attempt::refused);
    let unknown = crowd_attempts
        .iter()
        .filter(|a| a.outcome_known_ms().is_none())
        .count();
    let polls: u64 = crowd_attempts
        .iter()
        .filter_map(|a| a.outcome.as_ref())
        .map(|o| u64::from(o.polls))
        .sum();

    let quiet_lat = spike::latency(&quiet, Attempt::accepted);
    let launch_lat = spike::latency(&shopper_attempts, Attempt::accepted);
    let shopper_ratio = spike::ratio(launch_lat.p99_ms, quiet_lat.p99_ms);
    let all: Vec<&Attempt> = crowd_attempts.iter().chain(&shopper_attempts).collect();
    let shed = spike::shed(all.iter().copied());
    let tallies = [
        ("crowd", spike::tally(&crowd_attempts)),
        ("shoppers", spike::tally(&shopper_attempts)),
        ("shoppers (quiet)", spike::tally(&quiet)),
    ];

    let checks = vec![
        Check::new(
            "oversold (all regions)",
            "0",
            format!(
                "{oversold} (stock {stock_total}, confirmed {})",
                sales.iter().map(|s| s.confirmed).sum::<u64>()
            ),
            Some(oversold == 0),
        )
        .must_pass(),
        Check::new(
            "outcome known, p99 of every crowd attempt",
            "≤ 1000 ms",
            format!(
                "{} ms (p50 {} ms; {unknown} never known, counted as {:.0} s)",
                fmt_ms(known_all.p99_ms),
                fmt_ms(known_all.p50_ms),
                unknown_as.as_secs_f64()
            ),
            known_all.p99_ms.map(|p| p <= 1000.0),
        ),
        Check::new(
            "ordinary shoppers p99 during the launch",
            "≤ 2 × quiet p99",
            format!(
                "{} ms vs quiet {} ms (× {})",
                fmt_ms(launch_lat.p99_ms),
                fmt_ms(quiet_lat.p99_ms),
                shopper_ratio.map_or("–".into(), |r| format!("{r:.2}"))
            ),
            shopper_ratio.map(|r| r <= 2.0),
        ),
        Check::new(
            "every 503 and 429 carries Retry-After",
            "all",
            format!("{} of {}", shed.with_retry_after, shed.count),
            (shed.count > 0).then_some(shed.without_retry_after == 0),
        ),
    ];
    let sections = sections(
        &sales,
        &[
            ("every crowd attempt (unknown as the timeout)", &known_all),
            ("crowd, outcome known", &known),
            ("crowd accepted, placement to final status", &known_accepted),
            ("crowd refused at placement", &known_refused),
        ],
        &[
            ("shoppers, quiet run", &quiet_lat),
            ("shoppers, during the launch", &launch_lat),
        ],
        &tallies,
        &shed,
        polls,
        unknown,
    );
    Ok(ctx.report(
        "launch",
        json!({
            "sku": args.sku, "stock_total": stock_total, "stock_per_region": regions.iter().zip(&split).collect::<BTreeMap<_, _>>(),
            "crowd_rate": crowd_rate, "shoppers_rate": shoppers_rate, "duration_s": duration, "quick": ctx.quick,
            "durability": name(ctx.durability), "edges": crowd.iter().map(|(r, _)| r.edge_url()).collect::<Vec<_>>(),
            "stock_restored_after": !args.keep_stock, "poll_first_ms": args.poll_ms, "outcome_timeout_s": args.outcome_timeout, "client_timeout_s": args.timeout,
        }),
        checks,
        json!({
            "sales": sales, "oversold": oversold,
            "outcome_known": { "every_attempt": known_all, "known": known, "accepted": known_accepted,
                               "refused_at_placement": known_refused, "never_known": unknown, "polls": polls },
            "shoppers": { "quiet": quiet_lat, "launch": launch_lat, "p99_ratio": shopper_ratio },
            "status_codes": tallies.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
            "shed": shed,
        }),
        sections,
    ))
}

/// Sets the SKU's stock back to what it was before the run.
async fn restore(stock: &Stock, sku: &str, regions: &[String], before: &[i64]) -> anyhow::Result<()> {
    for (region, was) in regions.iter().zip(before) {
        stock.set_available(sku, region, *was).await?;
    }
    progress(format!("stock of {sku} set back to what it was before the run"));
    Ok(())
}

/// How many of `orders` hold a reservation of `sku` in `region`; `None` if the table could not be read.
async fn held(stock: &Stock, sku: &str, region: &str, orders: &[Uuid]) -> Option<u64> {
    let found: Vec<Option<bool>> = futures::stream::iter(orders)
        .map(|id| async move { stock.holds(sku, region, *id).await.ok() })
        .buffer_unordered(16)
        .collect()
        .await;
    found.iter().try_fold(0, |n, h| h.map(|h| n + u64::from(h)))
}

fn region_sales(
    region: &str,
    stock: u64,
    available_before: i64,
    crowd: &[Attempt],
    held: Option<u64>,
    available_after: Option<i64>,
) -> RegionSales {
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for o in crowd.iter().filter_map(|a| a.outcome.as_ref()) {
        if o.origin_region.as_deref() == Some(region) {
            let s = if o.is_final() {
                o.status.as_str()
            } else {
                "unresolved"
            };
            *by_status.entry(s).or_default() += 1;
        }
    }
    let n = |s: &str| by_status.get(s).copied().unwrap_or(0);
    RegionSales {
        region: region.to_string(),
        available_before,
        stock,
        confirmed: n("confirmed"),
        rejected: n("rejected"),
        cancelled: n("cancelled"),
        unresolved: n("unresolved"),
        held,
        available_after,
        oversold: spike::oversold(stock, n("confirmed"), held, available_after),
    }
}

#[allow(clippy::too_many_arguments)]
fn sections(
    sales: &[RegionSales],
    outcome: &[(&str, &LatencySummary)],
    shoppers: &[(&str, &LatencySummary)],
    tallies: &[(&str, BTreeMap<String, u64>)],
    shed: &Shed,
    polls: u64,
    unknown: usize,
) -> Vec<Section> {
    let mut t = Table::new(&[
        "region",
        "stock was",
        "stock set",
        "confirmed",
        "rejected",
        "cancelled",
        "unresolved",
        "held in stock table",
        "available after",
        "oversold",
    ]);
    for s in sales {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
        t.row(vec![
            s.region.clone(),
            s.available_before.to_string(),
            s.stock.to_string(),
            s.confirmed.to_string(),
            s.rejected.to_string(),
            s.cancelled.to_string(),
            s.unresolved.to_string(),
            opt(s.held.map(|h| h.to_string())),
            opt(s.available_after.map(|a| a.to_string())),
            s.oversold.to_string(),
        ]);
    }
    let mut out = vec![Section {
        title: "Sold versus stock".into(),
        lines: vec![
            "Per region of origin (`origin_region` of each accepted crowd order, as polled). Held: crowd orders \
             of this run with a reservation row in the region's stock partition. Oversold: the most of \
             confirmed − stock, held − stock, and −available."
                .into(),
        ],
        table: Some(t),
    }];
    let mut t = latency_table();
    for (what, s) in outcome {
        t.row(latency_row(what, s));
    }
    out.push(Section {
        title: "Time from placement to a known outcome".into(),
        lines: vec![format!(
            "From each placement's intended start to its refusal, or to the poll of `GET /v1/orders/{{id}}` \
             (through the same edge) that showed it confirmed, rejected or cancelled. {polls} polls in all; \
             {unknown} attempts never had a known outcome (no answer, or not final before the timeout)."
        )],
        table: Some(t),
    });
    let mut t = latency_table();
    for (what, s) in shoppers {
        t.row(latency_row(what, s));
    }
    out.push(Section {
        title: "Ordinary shoppers".into(),
        lines: vec![
            "Accepted placements of plentiful SKUs, the quiet run first, then beside the crowd.".into(),
        ],
        table: Some(t),
    });
    out.push(status_section(tallies));
    out.push(shed_section(shed));
    out
}

/// Every answer label with its count, one column per stream of attempts.
pub fn status_section(tallies: &[(&str, BTreeMap<String, u64>)]) -> Section {
    let mut headers = vec!["answer"];
    headers.extend(tallies.iter().map(|(k, _)| *k));
    let mut t = Table::new(&headers);
    let mut labels: Vec<&String> = tallies.iter().flat_map(|(_, m)| m.keys()).collect();
    labels.sort();
    labels.dedup();
    for l in labels {
        let mut row = vec![l.clone()];
        row.extend(
            tallies
                .iter()
                .map(|(_, m)| m.get(l).copied().unwrap_or(0).to_string()),
        );
        t.row(row);
    }
    Section {
        title: "Status codes".into(),
        lines: vec![],
        table: Some(t),
    }
}

pub fn shed_section(shed: &Shed) -> Section {
    let mut t = latency_table();
    t.row(latency_row("503 and 429 answers", &shed.latency));
    Section {
        title: "Shed answers".into(),
        lines: vec![format!(
            "{} answers 503 or 429: {} with `Retry-After`, {} without.",
            shed.count, shed.with_retry_after, shed.without_retry_after
        )],
        table: Some(t),
    }
}
