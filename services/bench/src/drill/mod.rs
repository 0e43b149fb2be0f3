//! `drill <scenario>`: open-loop placements through every edge, a fault and its heal made with
//! `./dev` at chosen times, then the verdicts: recovery per edge after the fault and after the
//! heal, acknowledged orders lost, doubled effects, the time until every region shows the same
//! events for every order, replication healthy again, and stock allocations never negative.
mod after;
mod render;
mod stock;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::api::ApiPlacer;
use crate::cli::DrillArgs;
use crate::ctx::{Ctx, name, progress};
use crate::failover::{self, Attempt, EdgeSummary, Fetched};
use crate::load::{self, Done, Limits};
use crate::report::Report;
use crate::schedule::Schedule;
use crate::stack::Region;

/// A `./dev` invocation as it ran, seconds from the start of the drill.
#[derive(Debug, Clone, Serialize)]
pub struct DevCommand {
    pub command: String,
    pub started_s: f64,
    pub finished_s: f64,
    /// `None` when skipped (`--dry-run`) or not started.
    pub exit_code: Option<i32>,
    pub output_tail: Vec<String>,
}

async fn dev(ctx: &Ctx, args: &[&str], dry_run: bool, t0: Instant) -> DevCommand {
    let command = format!("./dev {}", args.join(" "));
    let started_s = t0.elapsed().as_secs_f64();
    if dry_run {
        progress(format!("{command} (skipped: --dry-run)"));
        return DevCommand {
            command,
            started_s,
            finished_s: started_s,
            exit_code: None,
            output_tail: vec!["skipped (--dry-run)".into()],
        };
    }
    progress(format!("running {command}"));
    let run = tokio::process::Command::new(ctx.stack.dev_script())
        .args(args)
        .current_dir(&ctx.stack.root)
        .kill_on_drop(true)
        .output();
    let (exit_code, output) = match tokio::time::timeout(Duration::from_secs(300), run).await {
        Ok(Ok(out)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.code(), text)
        }
        Ok(Err(e)) => (None, format!("could not run: {e}")),
        Err(_) => (None, "timed out after 300 s".into()),
    };
    let lines: Vec<String> = output.lines().map(str::to_string).collect();
    let output_tail = lines[lines.len().saturating_sub(6)..].to_vec();
    let finished_s = t0.elapsed().as_secs_f64();
    progress(format!(
        "{command}: exit {exit_code:?} after {:.1} s",
        finished_s - started_s
    ));
    DevCommand {
        command,
        started_s,
        finished_s,
        exit_code,
        output_tail,
    }
}

/// Runs `commands` from `at` seconds after `t0`; returns each as it ran.
async fn run_at(
    ctx: &Ctx,
    commands: Vec<Vec<&'static str>>,
    at: f64,
    dry_run: bool,
    t0: Instant,
) -> Vec<DevCommand> {
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(at)).into()).await;
    let mut out = Vec::new();
    for cmd in commands {
        out.push(dev(ctx, &cmd, dry_run, t0).await);
    }
    out
}

/// What the surviving regions showed, while the dead datacenter was down, of the orders it had
/// acknowledged before the fault: with global durability every one; with local, all but those
/// within the cross-DC lag of the fault (the RPO were that datacenter never to come back).
#[derive(Debug, Clone, Serialize)]
pub struct Outage {
    pub dead: String,
    pub checked: usize,
    pub missing: Vec<Uuid>,
    /// How long before the fault the oldest missing order was acknowledged.
    pub oldest_missing_before_fault_s: Option<f64>,
    /// Look-ups that failed (neither found nor 404).
    pub failed: usize,
}

async fn outage_visibility(
    http: &reqwest::Client,
    key: &str,
    survivors: &[Region],
    acked: Vec<(Uuid, f64)>,
    dead: &str,
    fault_s: f64,
) -> Outage {
    let views: Vec<(Uuid, f64, Vec<Fetched>)> = futures::stream::iter(acked)
        .map(|(id, done_s)| async move {
            let mut views = Vec::new();
            for region in survivors {
                views.push(fetch(http, key, region, id).await);
            }
            (id, done_s, views)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let missing: Vec<(Uuid, f64)> = views
        .iter()
        .filter(|(_, _, v)| v.iter().all(|f| matches!(f, Fetched::NotFound)))
        .map(|(id, done_s, _)| (*id, *done_s))
        .collect();
    Outage {
        dead: dead.to_string(),
        checked: views.len(),
        oldest_missing_before_fault_s: missing.iter().map(|(_, s)| fault_s - s).reduce(f64::max),
        missing: missing.into_iter().map(|(id, _)| id).collect(),
        failed: views
            .iter()
            .filter(|(_, _, v)| v.iter().any(|f| matches!(f, Fetched::Failed(_))))
            .count(),
    }
}

async fn fetch(http: &reqwest::Client, key: &str, region: &Region, id: Uuid) -> Fetched {
    let url = format!("{}/v1/orders/{id}/events", region.api_url());
    match http.get(url).bearer_auth(key).send().await {
        Ok(r) if r.status() == 404 => Fetched::NotFound,
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
            Ok(v) => Fetched::Events(v["events"].as_array().cloned().unwrap_or_default()),
            Err(e) => Fetched::Failed(format!("body: {e}")),
        },
        Ok(r) => Fetched::Failed(format!("http {}", r.status().as_u16())),
        Err(e) => Fetched::Failed(crate::api::transport_kind(&e).into()),
    }
}

async fn authorizations(http: &reqwest::Client, payment: &str, id: Uuid) -> Option<usize> {
    let url = format!("http://{payment}/v1/authorizations?order_id={id}");
    let v: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
    v.as_array().map(Vec::len)
}

/// Where a set of orders stands in every region.
struct Convergence {
    views: HashMap<Uuid, Vec<Fetched>>,
    /// Orders not yet identical everywhere (with a final event) when polling stopped.
    pending: HashSet<Uuid>,
    /// How long polling took until none was pending; `None` when time ran out.
    took: Option<Duration>,
}

/// Polls every region for `ids` once a second until each order is identical everywhere and
/// final, or `timeout` passes.
async fn converge(
    http: &reqwest::Client,
    key: &str,
    regions: &[Region],
    ids: Vec<Uuid>,
    timeout: Duration,
) -> Convergence {
    let started = Instant::now();
    let mut views = HashMap::new();
    let mut pending: HashSet<Uuid> = ids.into_iter().collect();
    loop {
        let ids: Vec<Uuid> = pending.iter().copied().collect();
        let fetched: Vec<(Uuid, Vec<Fetched>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let mut v = Vec::with_capacity(regions.len());
                for r in regions {
                    v.push(fetch(http, key, r, id).await);
                }
                (id, v)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, v) in fetched {
            if failover::converged(&v) {
                pending.remove(&id);
            }
            views.insert(id, v);
        }
        if pending.is_empty() {
            return Convergence {
                views,
                pending,
                took: Some(started.elapsed()),
            };
        }
        if started.elapsed() > timeout {
            return Convergence {
                views,
                pending,
                took: None,
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Seconds of load after the heal finished, at least.
const AFTER_HEAL_S: f64 = 10.0;

pub async fn run(ctx: &Ctx, args: &DrillArgs) -> anyhow::Result<Report> {
    let (duration, fault_at, heal_at) = args.timing(ctx.quick);
    if !(fault_at < heal_at && fault_at < duration) {
        bail!("need --fault-at < --heal-at and --fault-at < --duration");
    }
    let scenario = args.scenario;
    let key = ctx.stack.api_key()?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let edges: Vec<(Region, ApiPlacer)> = ctx
        .stack
        .regions
        .iter()
        .map(|r| {
            let placer = ApiPlacer::new(
                &r.edge_url(),
                key.clone(),
                ctx.stack.skus.clone(),
                &format!("drill-{}-", r.name),
                timeout,
            )?;
            Ok((r.clone(), placer))
        })
        .collect::<anyhow::Result<_>>()?;
    let http = edges[0].1.http().clone();
    let payment = ctx.stack.dev_version("PAYMENT_ADDR", "127.0.0.1:8099");
    progress(format!(
        "drill {}{}: {}/s through each of {} edges for {duration} s, fault at {fault_at} s, heal at {heal_at} s",
        scenario.name(),
        if args.dry_run { " (dry run)" } else { "" },
        args.rate,
        edges.len()
    ));

    let mut degraded_before = Vec::new();
    for r in &ctx.stack.regions {
        degraded_before.push(after::degraded_total(&http, r).await);
    }
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let t0 = Instant::now();
    let limits = Limits {
        max_in_flight: ctx.limits.max_in_flight,
        drain: timeout + Duration::from_secs(2),
    };
    let load_for = |seconds: f64| {
        futures::future::join_all(edges.iter().map(|(region, placer)| {
            let (attempts, edge) = (attempts.clone(), region.name.clone());
            load::run(
                Schedule::new(args.rate, Duration::from_secs_f64(seconds)),
                limits,
                move |_| {
                    let (placer, attempts, edge) = (placer.clone(), attempts.clone(), edge.clone());
                    async move {
                        let issued_s = t0.elapsed().as_secs_f64();
                        let result = placer.place().await;
                        let done_s = t0.elapsed().as_secs_f64();
                        let (error, order_id, served_by) = match &result {
                            Ok(p) => (None, Some(p.order_id), p.served_by.clone()),
                            Err(e) => (Some(e.0.clone()), None, None),
                        };
                        attempts.lock().expect("attempts lock").push(Attempt {
                            edge,
                            issued_s,
                            done_s,
                            error,
                            order_id,
                            served_by,
                        });
                        result.map(|p| Done { ack: p.at })
                    }
                },
            )
        }))
    };
    let (healed_tx, mut healed_rx) = tokio::sync::oneshot::channel::<f64>();
    // The load runs for --duration, then on, a second at a time, until the heal has finished, and
    // until AFTER_HEAL_S after that: recovery after the heal is measured however long it took,
    // with no gap in the load.
    let loads = async {
        load_for(duration).await;
        let healed_s = loop {
            match healed_rx.try_recv() {
                Ok(s) => break Some(s),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => break None,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {
                    load_for(1.0).await;
                }
            }
        };
        if let Some(healed_s) = healed_s {
            let until = healed_s + AFTER_HEAL_S;
            let from = t0.elapsed().as_secs_f64();
            if until > from {
                progress(format!(
                    "load goes on until {until:.0} s, {AFTER_HEAL_S} s after the heal"
                ));
                load_for(until - from).await;
            }
        }
    };
    let ticker = {
        let attempts = attempts.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let a = attempts.lock().expect("attempts lock");
                let errors = a.iter().filter(|a| !a.ok()).count();
                progress(format!(
                    "t={:.0}s: {} placements, {errors} failed",
                    t0.elapsed().as_secs_f64(),
                    a.len()
                ));
            }
        })
    };
    let regions = ctx.stack.regions.clone();
    let converge_timeout = Duration::from_secs_f64(args.converge_timeout);
    // As soon as the heal has finished, the orders acknowledged until then (those the fault could
    // touch) are polled until identical everywhere, while the load goes on.
    let after_heal = async {
        let mut commands = run_at(ctx, scenario.fault(), fault_at, args.dry_run, t0).await;
        // Just before the heal: can the survivors see what the dead datacenter acknowledged?
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(heal_at - 1.0)).into()).await;
        let outage = match scenario.dead_datacenter() {
            Some(dead) if !args.dry_run => {
                let fault_s = commands.first().map_or(fault_at, |c| c.started_s);
                let served_by_dead = format!("api-{dead}");
                let acked: Vec<(Uuid, f64)> = attempts
                    .lock()
                    .expect("attempts lock")
                    .iter()
                    .filter(|a| {
                        a.done_s <= fault_s && a.served_by.as_deref() == Some(served_by_dead.as_str())
                    })
                    .filter_map(|a| a.order_id.map(|id| (id, a.done_s)))
                    .collect();
                let survivors: Vec<Region> = regions.iter().filter(|r| r.name != dead).cloned().collect();
                progress(format!(
                    "outage: checking the {} orders {dead} acknowledged before the fault in {}",
                    acked.len(),
                    survivors
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                Some(outage_visibility(&http, &key, &survivors, acked, dead, fault_s).await)
            }
            _ => None,
        };
        commands.extend(run_at(ctx, scenario.heal(), heal_at, args.dry_run, t0).await);
        let heal_done_s = commands.last().map_or(heal_at, |c| c.finished_s);
        let _ = healed_tx.send(heal_done_s);
        let ids: Vec<Uuid> = attempts
            .lock()
            .expect("attempts lock")
            .iter()
            .filter(|a| a.done_s <= heal_done_s)
            .filter_map(|a| a.order_id)
            .collect();
        progress(format!(
            "heal done: polling the {} orders acknowledged so far until every region agrees",
            ids.len()
        ));
        let c = converge(&http, &key, &regions, ids, converge_timeout).await;
        (commands, outage, c)
    };
    let drive = async { tokio::join!(loads, after_heal) };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (_, (commands, outage, early)) = tokio::select! {
        done = drive => done,
        _ = async { tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = terminate.recv() => {} } } => {
            ticker.abort();
            // Leave the stack as it was found: heal whatever the fault may have broken.
            if t0.elapsed().as_secs_f64() >= fault_at {
                progress("interrupted after the fault: healing before exiting");
                for cmd in scenario.heal() {
                    dev(ctx, &cmd, args.dry_run, t0).await;
                }
            }
            bail!("drill interrupted");
        }
    };
    ticker.abort();
    let attempts = attempts.lock().expect("attempts lock").clone();
    let fault_s = commands.first().map_or(fault_at, |c| c.started_s);
    let heal_done_s = commands.last().map_or(heal_at, |c| c.finished_s);

    let summaries: Vec<EdgeSummary> = edges
        .iter()
        .map(|(r, _)| {
            let mine: Vec<Attempt> = attempts.iter().filter(|a| a.edge == r.name).cloned().collect();
            failover::summarize(&r.name, &mine, fault_s)
        })
        .collect();

    // Every acknowledged order, checked in every region until all agree or the time is up.
    let acked: Vec<(Uuid, String, f64)> = attempts
        .iter()
        .filter_map(|a| a.order_id.map(|id| (id, a.edge.clone(), a.done_s)))
        .collect();
    progress(format!(
        "checking {} acknowledged orders in {} regions",
        acked.len(),
        ctx.stack.regions.len()
    ));
    let check_started_s = t0.elapsed().as_secs_f64();
    let all = converge(
        &http,
        &key,
        &regions,
        acked.iter().map(|(id, _, _)| *id).collect(),
        converge_timeout,
    )
    .await;
    let converge_s = early.took.map(|d| d.as_secs_f64());
    progress(match converge_s {
        Some(s) => format!("orders acknowledged until the heal converged {s:.1} s after it"),
        None => format!(
            "{} orders acknowledged until the heal still differ after {} s",
            early.pending.len(),
            args.converge_timeout
        ),
    });
    progress(format!(
        "all {} acknowledged orders: {} still differ {:.1} s after the load",
        acked.len(),
        all.pending.len(),
        t0.elapsed().as_secs_f64() - check_started_s
    ));
    let (views, pending) = (all.views, all.pending);
    let ack_of: HashMap<Uuid, (String, f64)> =
        acked.iter().map(|(id, e, s)| (*id, (e.clone(), *s))).collect();
    let lost: Vec<Uuid> = views
        .iter()
        .filter(|(_, v)| failover::lost(v))
        .map(|(id, _)| *id)
        .collect();
    let lost_acks: Vec<f64> = lost
        .iter()
        .filter_map(|id| ack_of.get(id).map(|(_, s)| *s))
        .collect();
    let rpo = failover::rpo(&lost_acks, fault_s);
    let unknown = views
        .values()
        .filter(|v| !failover::lost(v) && v.iter().any(|f| matches!(f, Fetched::Failed(_))))
        .count();
    let mut doubled: Vec<Uuid> = views
        .iter()
        .filter(|(_, v)| failover::doubled_in_stream(v))
        .map(|(id, _)| *id)
        .collect();
    let auth_counts: Vec<(Uuid, Option<usize>)> = futures::stream::iter(acked.iter().map(|(id, _, _)| *id))
        .map(|id| {
            let (http, payment) = (&http, &payment);
            async move { (id, authorizations(http, payment, id).await) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let doubled_payments: Vec<Uuid> = auth_counts
        .iter()
        .filter(|(_, n)| n.is_some_and(|n| n > 1))
        .map(|(id, _)| *id)
        .collect();
    let payment_unknown = auth_counts.iter().filter(|(_, n)| n.is_none()).count();
    for id in &doubled_payments {
        if !doubled.contains(id) {
            doubled.push(*id);
        }
    }

    // Recovery measured from the heal as from the fault: the first placement issued after the
    // heal that succeeded, and the errors after it (a partition may refuse until it heals).
    let after_heal: Vec<EdgeSummary> = edges
        .iter()
        .map(|(r, _)| {
            let mine: Vec<Attempt> = attempts.iter().filter(|a| a.edge == r.name).cloned().collect();
            failover::summarize(&r.name, &mine, heal_done_s)
        })
        .collect();
    progress("reading every region's stock allotments in every datacenter");
    let allotments = stock::read(&ctx.stack.regions, &ctx.stack.skus).await;
    progress("waiting until every region's worker sees replication healthy");
    let since_heal = Duration::from_secs_f64((t0.elapsed().as_secs_f64() - heal_done_s).max(0.0));
    let replication = after::replication(&http, &regions, since_heal, converge_timeout).await;
    let mut degraded = Vec::new();
    for (r, before) in ctx.stack.regions.iter().zip(&degraded_before) {
        let now = after::degraded_total(&http, r).await;
        degraded.push((r.name.clone(), now.zip(*before).map(|(n, b)| n - b)));
    }
    let aftermath = render::Aftermath {
        after_heal: &after_heal,
        allotments: &allotments,
        replication: &replication,
        degraded: &degraded,
        load_end_s: attempts.iter().map(|a| a.issued_s).fold(0.0, f64::max),
    };

    let (checks, sections) = render::render(
        ctx,
        args,
        &summaries,
        &commands,
        &rpo,
        &lost,
        doubled.len(),
        &pending,
        early.pending.len(),
        converge_s,
        acked.len(),
        unknown,
        payment_unknown,
        fault_s,
        heal_done_s,
        check_started_s,
        outage.as_ref(),
        &aftermath,
    );
    Ok(ctx.report(
        &format!("drill-{}", scenario.name()),
        json!({
            "scenario": scenario, "dry_run": args.dry_run, "durability": name(ctx.durability), "quick": ctx.quick,
            "rate_per_edge": args.rate, "duration_s": duration, "fault_at_s": fault_at, "heal_at_s": heal_at,
            "converge_timeout_s": args.converge_timeout, "client_timeout_s": args.timeout,
            "edges": edges.iter().map(|(r, _)| r.edge_url()).collect::<Vec<_>>(),
            "fault_commands": scenario.fault(), "heal_commands": scenario.heal(),
        }),
        checks,
        json!({
            "fault_s": fault_s, "heal_done_s": heal_done_s, "commands": commands, "edges": summaries,
            "acknowledged": acked.len(),
            "lost": { "orders": lost, "rpo": rpo },
            "outage_visibility": outage,
            "unknown_orders": unknown,
            "doubled_effects": { "orders": doubled, "payment_authorizations_over_one": doubled_payments, "payment_unknown": payment_unknown },
            "convergence": { "converged": converge_s.is_some() && pending.is_empty(), "seconds_after_heal": converge_s,
                             "acknowledged_until_heal_not_converged": early.pending.len(), "checking_started_s": check_started_s,
                             "not_converged": pending.iter().take(50).collect::<Vec<_>>(), "not_converged_count": pending.len() },
            "after_heal": after_heal.iter().map(|s| json!({
                "edge": s.edge, "first_success_after_heal_s": s.rto_s, "errors_after_heal": s.errors_after_fault,
                "attempts_after_heal": attempts.iter().filter(|a| a.edge == s.edge && a.issued_s >= heal_done_s).count(),
            })).collect::<Vec<_>>(),
            "replication": replication,
            "acknowledged_degraded": degraded.iter().map(|(r, n)| (r.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
            "stock": { "never_negative": !allotments.is_empty() && allotments.iter().all(stock::Allotment::sound), "allotments": allotments },
        }),
        sections,
    ))
}
