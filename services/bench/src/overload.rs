//! `overload`: half the sustainable limit as a quiet baseline, then a multiple of the limit through
//! one edge, then half the limit again. Verdicts: only successes, 429s and 503s with `Retry-After`;
//! shed answers fast; accepted ones not much slower than quiet; the region's worker lag (read from
//! its readiness every second) small; and how soon after the spike both were back to normal.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use serde_json::json;

use crate::api::ApiPlacer;
use crate::cli::OverloadArgs;
use crate::ctx::{Ctx, name, progress};
use crate::launch::{shed_section, status_section};
use crate::load::Limits;
use crate::offer::{self, Offer, Sink};
use crate::report::{Check, Report, Section, Table};
use crate::spike::{self, Attempt, Sample, Window};
use crate::stats::{LatencySummary, fmt_ms};

/// The worker's `worker:consumerLag` as its readiness showed it at `t_s`.
#[derive(Debug, Clone, Serialize)]
pub struct LagReading {
    pub t_s: f64,
    /// Seconds, the largest observed value; `None` when it could not be read.
    pub lag_s: Option<f64>,
    pub status: Option<String>,
}

/// The lag figure of a health+json document: the largest `observedValue` of `worker:consumerLag`.
pub fn consumer_lag(health: &serde_json::Value) -> Option<(f64, String)> {
    let entries = health["checks"]["worker:consumerLag"].as_array()?;
    let lag = entries
        .iter()
        .filter_map(|e| e["observedValue"].as_f64())
        .reduce(f64::max)?;
    let status = entries
        .iter()
        .filter_map(|e| e["status"].as_str())
        .max_by_key(|s| match *s {
            "fail" => 2,
            "warn" => 1,
            _ => 0,
        })
        .unwrap_or("?");
    Some((lag, status.to_string()))
}

async fn read_lag(http: &reqwest::Client, worker: &str, t_s: f64) -> LagReading {
    let v = match http.get(format!("{worker}/health/ready")).send().await {
        Ok(r) => r.json::<serde_json::Value>().await.ok(),
        Err(_) => None,
    };
    let found = v.as_ref().and_then(consumer_lag);
    LagReading {
        t_s,
        lag_s: found.as_ref().map(|(l, _)| *l),
        status: found.map(|(_, s)| s),
    }
}

struct Phase {
    name: &'static str,
    rate: f64,
    start_s: f64,
    secs: f64,
}

pub async fn run(ctx: &Ctx, args: &OverloadArgs) -> anyhow::Result<Report> {
    if !(args.limit > 0.0 && args.multiple > 0.0) {
        bail!("--limit and --multiple must be positive");
    }
    let (baseline, spike_secs, after) = args.phases(ctx.quick);
    let url = args.url.clone().unwrap_or_else(|| ctx.region.edge_url());
    let timeout = Duration::from_secs_f64(args.timeout);
    let placer = ApiPlacer::new(
        &url,
        ctx.stack.api_key()?,
        ctx.stack.skus.clone(),
        "overload-",
        timeout,
    )?;
    let half = args.limit / 2.0;
    let phases = [
        Phase {
            name: "baseline",
            rate: half,
            start_s: 0.0,
            secs: baseline,
        },
        Phase {
            name: "spike",
            rate: args.limit * args.multiple,
            start_s: baseline,
            secs: spike_secs,
        },
        Phase {
            name: "after",
            rate: half,
            start_s: baseline + spike_secs,
            secs: after,
        },
    ];
    let spike_end_s = baseline + spike_secs;
    let worker = ctx.region.worker_url();
    progress(format!(
        "overload through {url}: {half}/s for {baseline} s, {}/s for {spike_secs} s, {half}/s for {after} s; lag from {worker}",
        args.limit * args.multiple
    ));

    let limits = Limits {
        max_in_flight: ctx.limits.max_in_flight,
        drain: timeout + Duration::from_secs(2),
    };
    let sinks: Vec<Sink> = phases.iter().map(|_| Sink::default()).collect();
    let t0 = Instant::now();
    let lags: Arc<Mutex<Vec<LagReading>>> = Arc::default();
    let monitor = {
        let (lags, http) = (lags.clone(), placer.http().clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let reading = read_lag(&http, &worker, t0.elapsed().as_secs_f64()).await;
                lags.lock().expect("lag lock").push(reading);
            }
        })
    };
    let ticker = {
        let sinks = sinks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let (mut n, mut ok) = (0, 0);
                for s in &sinks {
                    let a = s.lock().expect("attempts lock");
                    n += a.len();
                    ok += a.iter().filter(|a| a.accepted()).count();
                }
                progress(format!(
                    "t={:.0}s: {n} attempts answered, {ok} accepted",
                    t0.elapsed().as_secs_f64()
                ));
            }
        })
    };
    let runs = phases.iter().zip(&sinks).map(|(p, sink)| {
        let offer = Offer {
            placer: placer.clone(),
            edge: ctx.region.name.clone(),
            rate: p.rate,
            duration: Duration::from_secs_f64(p.secs),
            delay: Duration::from_secs_f64(p.start_s),
            poll: None,
        };
        offer::run(offer, t0, limits, sink.clone())
    });
    futures::future::join_all(runs).await;
    // One more reading after the last answer, so a lag still high at the end shows.
    tokio::time::sleep(Duration::from_secs(1)).await;
    monitor.abort();
    ticker.abort();
    let lags = std::mem::take(&mut *lags.lock().expect("lag lock"));
    let by_phase: Vec<Vec<Attempt>> = sinks
        .iter()
        .map(|s| std::mem::take(&mut *s.lock().expect("attempts lock")))
        .collect();
    let all: Vec<Attempt> = by_phase.iter().flatten().cloned().collect();

    let accepted = |a: &[Attempt]| spike::latency(a, Attempt::accepted);
    let quiet = accepted(&by_phase[0]);
    let spike_accepted = accepted(&by_phase[1]);
    let threshold_ms = quiet.p99_ms.map(|p| p * args.normal_factor);
    let windows = spike::latency_windows(&all, threshold_ms.unwrap_or(f64::INFINITY));
    let latency_samples: Vec<Sample> = windows.iter().map(Window::sample).collect();
    let lag_samples: Vec<Sample> = lags
        .iter()
        .map(|l| Sample {
            t_s: l.t_s,
            normal: l.lag_s.is_some_and(|s| s < args.normal_lag),
        })
        .collect();
    let latency_back = spike::back_to_normal(&latency_samples, spike_end_s);
    let lag_back = spike::back_to_normal(&lag_samples, spike_end_s);
    let both_back = latency_back.zip(lag_back).map(|(a, b)| a.max(b));
    let max_lag = |from: f64, to: f64| {
        lags.iter()
            .filter(|l| l.t_s >= from && l.t_s < to)
            .filter_map(|l| l.lag_s)
            .reduce(f64::max)
    };
    let lag_during = max_lag(baseline, spike_end_s);
    let lag_after = max_lag(spike_end_s, f64::INFINITY);
    let lag_max = lag_during.into_iter().chain(lag_after).reduce(f64::max);
    let unread_lag = lags.iter().filter(|l| l.lag_s.is_none()).count();
    let disallowed = spike::tally(all.iter().filter(|a| !spike::allowed_under_overload(a)));
    let shed = spike::shed(&all);
    let ratio = spike::ratio(spike_accepted.p99_ms, quiet.p99_ms);

    let checks = vec![
        Check::new(
            "answers other than 2xx, 429, 503 with Retry-After",
            "0",
            if disallowed.is_empty() {
                "0".into()
            } else {
                disallowed
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            Some(disallowed.is_empty()),
        ),
        Check::new(
            "shed answers (503, 429) p99",
            "< 50 ms",
            format!("{} ms ({} shed)", fmt_ms(shed.latency.p99_ms), shed.count),
            shed.latency.p99_ms.map(|p| p < 50.0),
        ),
        Check::new(
            "accepted placements p99 during the spike",
            "≤ 2 × quiet p99",
            format!(
                "{} ms vs quiet {} ms (× {})",
                fmt_ms(spike_accepted.p99_ms),
                fmt_ms(quiet.p99_ms),
                ratio.map_or("–".into(), |r| format!("{r:.2}"))
            ),
            ratio.map(|r| r <= 2.0),
        ),
        Check::new(
            "worker lag during and after the spike",
            "< 5 s",
            format!(
                "max {} s (during {}, after {}){}",
                opt_s(lag_max),
                opt_s(lag_during),
                opt_s(lag_after),
                if unread_lag > 0 {
                    format!("; {unread_lag} readings failed")
                } else {
                    String::new()
                }
            ),
            lag_max.map(|l| l < 5.0),
        ),
        Check::new(
            "placement p99 and worker lag back to normal after the spike",
            "≤ 10 s",
            format!(
                "{} (latency {}, lag {}; normal: 1 s window p99 ≤ {} ms, lag < {} s)",
                opt_secs(both_back),
                opt_secs(latency_back),
                opt_secs(lag_back),
                fmt_ms(threshold_ms),
                args.normal_lag
            ),
            Some(both_back.is_some_and(|s| s <= 10.0)),
        ),
    ];

    let phase_rows: Vec<(String, f64, f64, &[Attempt])> = phases
        .iter()
        .zip(&by_phase)
        .map(|(p, a)| (p.name.to_string(), p.rate, p.secs, a.as_slice()))
        .collect();
    let tallies: Vec<(&str, BTreeMap<String, u64>)> = phases
        .iter()
        .zip(&by_phase)
        .map(|(p, a)| (p.name, spike::tally(a)))
        .collect();
    let mut sections = vec![phase_section(&phase_rows)];
    sections.push(status_section(&tallies));
    sections.push(shed_section(&shed));
    sections.push(timeline_section(&windows, &lags, spike_end_s, threshold_ms));
    Ok(ctx.report(
        "overload",
        json!({
            "url": url, "limit": args.limit, "multiple": args.multiple, "baseline_s": baseline, "spike_s": spike_secs,
            "after_s": after, "baseline_rate": half, "spike_rate": args.limit * args.multiple,
            "normal_factor": args.normal_factor, "normal_lag_s": args.normal_lag, "client_timeout_s": args.timeout,
            "worker": ctx.region.worker_url(), "durability": name(ctx.durability), "quick": ctx.quick,
        }),
        checks,
        json!({
            "phases": phase_rows.iter().map(|(n, rate, secs, a)| json!({
                "phase": n, "rate": rate, "seconds": secs, "attempts": a.len(),
                "accepted": accepted(a), "status_codes": spike::tally(*a), "shed": spike::shed(*a),
            })).collect::<Vec<_>>(),
            "disallowed_answers": disallowed,
            "shed": shed,
            "quiet_p99_ms": quiet.p99_ms, "spike_accepted_p99_ms": spike_accepted.p99_ms, "p99_ratio": ratio,
            "back_to_normal_s": { "latency": latency_back, "lag": lag_back, "both": both_back },
            "normal_p99_threshold_ms": threshold_ms,
            "worker_lag_s": { "max": lag_max, "during": lag_during, "after": lag_after, "failed_readings": unread_lag },
            "windows": windows, "lag_readings": lags,
        }),
        sections,
    ))
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

fn opt_secs(v: Option<f64>) -> String {
    v.map_or("not within the run".into(), |v| format!("{v:.0} s"))
}

fn phase_section(phases: &[(String, f64, f64, &[Attempt])]) -> Section {
    let mut t = Table::new(&[
        "phase",
        "rate/s",
        "seconds",
        "attempts",
        "accepted",
        "shed",
        "other",
        "accepted p50 ms",
        "accepted p99 ms",
        "shed p99 ms",
    ]);
    for (name, rate, secs, a) in phases {
        let acc: LatencySummary = spike::latency(*a, Attempt::accepted);
        let shed = spike::shed(*a);
        t.row(vec![
            name.clone(),
            format!("{rate}"),
            format!("{secs}"),
            a.len().to_string(),
            acc.count.to_string(),
            shed.count.to_string(),
            (a.len() as u64 - acc.count - shed.count).to_string(),
            fmt_ms(acc.p50_ms),
            fmt_ms(acc.p99_ms),
            fmt_ms(shed.latency.p99_ms),
        ]);
    }
    Section {
        title: "Phases".into(),
        lines: vec!["Open loop through one edge; latency from each placement's intended start.".into()],
        table: Some(t),
    }
}

fn timeline_section(
    windows: &[Window],
    lags: &[LagReading],
    spike_end_s: f64,
    threshold: Option<f64>,
) -> Section {
    let mut t = Table::new(&[
        "second",
        "attempts",
        "accepted",
        "accepted p99 ms",
        "worker lag s",
        "lag status",
    ]);
    for w in windows {
        let lag = lags
            .iter()
            .rfind(|l| l.t_s >= w.second as f64 && l.t_s < w.second as f64 + 1.0);
        t.row(vec![
            format!(
                "{}{}",
                w.second,
                if w.second as f64 == spike_end_s.floor() {
                    " (spike ends)"
                } else {
                    ""
                }
            ),
            w.attempts.to_string(),
            w.accepted.to_string(),
            format!("{}{}", fmt_ms(w.p99_ms), if w.normal { "" } else { " *" }),
            lag.map_or("–".into(), |l| opt_s(l.lag_s)),
            lag.and_then(|l| l.status.clone()).unwrap_or_else(|| "–".into()),
        ]);
    }
    Section {
        title: "Per second".into(),
        lines: vec![format!(
            "By intended start; `*` marks a window above the normal p99 ({} ms) or with nothing accepted. \
             Lag: the worker's `worker:consumerLag` observed value (its check samples every 2 s).",
            fmt_ms(threshold)
        )],
        table: Some(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_largest_observed_value_with_the_worst_status() {
        let health = json!({"status": "warn", "checks": {"worker:consumerLag": [
            {"componentId": "orders", "observedValue": 0.4, "status": "pass"},
            {"componentId": "eu.orders", "observedValue": 2.5, "status": "warn"},
        ]}});
        assert_eq!(consumer_lag(&health), Some((2.5, "warn".to_string())));
        assert_eq!(consumer_lag(&json!({"checks": {}})), None);
    }
}
