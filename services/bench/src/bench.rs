//! `raw`, `api` and `compare`: open-loop steps up a rate ladder until p99, errors or the achieved
//! rate break, and (compare) the API's limit and latency as ratios of the raw backend's in one run.
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::api::ApiPlacer;
use crate::cli::{LoadArgs, LoadPlan};
use crate::ctx::{Ctx, name, progress};
use crate::limit::{Limit, LimitSearch};
use crate::load::{self, Done, Limits};
use crate::raw::RawBackend;
use crate::report::{Check, Report, Section, latency_row, latency_table, steps_table};
use crate::schedule::Schedule;
use crate::stats::fmt_ms;
use crate::step::{StepRecord, StepResult};

/// What takes the load.
#[derive(Clone)]
pub enum Target {
    Raw(Arc<RawBackend>),
    Api(ApiPlacer),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Raw(_) => "raw",
            Target::Api(_) => "api",
        }
    }

    pub async fn run(&self, rate: f64, duration: Duration, limits: Limits) -> StepRecord {
        let schedule = Schedule::new(rate, duration);
        match self {
            Target::Raw(backend) => load::run(schedule, limits, |_| backend.clone().place()).await,
            Target::Api(placer) => {
                load::run(schedule, limits, |_| {
                    let placer = placer.clone();
                    async move { placer.place().await.map(|p| Done { ack: p.at }) }
                })
                .await
            }
        }
    }
}

async fn raw_target(ctx: &Ctx) -> anyhow::Result<Target> {
    let backend = RawBackend::connect(&ctx.region, ctx.durability, ctx.stack.skus.clone()).await?;
    Ok(Target::Raw(backend))
}

pub fn api_target(ctx: &Ctx, args: &LoadArgs) -> anyhow::Result<Target> {
    let base = args.api_url.clone().unwrap_or_else(|| ctx.region.api_url());
    let placer = ApiPlacer::new(
        &base,
        ctx.stack.api_key()?,
        ctx.stack.skus.clone(),
        "bench-",
        Duration::from_secs(10),
    )?;
    Ok(Target::Api(placer))
}

fn describe(r: &StepResult) -> String {
    format!(
        "{} at {}/s: achieved {:.1}/s, {} errors, p50 {} ms, p99 {} ms{}",
        r.kind,
        r.target_rate,
        r.achieved_rate,
        r.errors,
        fmt_ms(r.latency.p50_ms),
        fmt_ms(r.latency.p99_ms),
        if r.sustainable {
            String::new()
        } else {
            format!(" -> broke ({})", r.breaks.join("; "))
        }
    )
}

async fn warm_up(targets: &[Target], plan: &LoadPlan, limits: Limits) {
    if plan.warmup.is_zero() {
        return;
    }
    let rate = plan
        .fixed_rate
        .unwrap_or(plan.ladder.start)
        .min(plan.ladder.start)
        .max(1.0);
    for t in targets {
        progress(format!(
            "warming up {} at {rate}/s for {:?}",
            t.kind(),
            plan.warmup
        ));
        t.run(rate, plan.warmup, limits).await;
    }
    tokio::time::sleep(plan.pause).await;
}

/// One round: every (target, rate) `repeats` times, interleaved (A-B-A-B), each kind's runs merged.
async fn round(plan: &LoadPlan, limits: Limits, runs: &[(Target, f64)], repeats: u32) -> Vec<StepResult> {
    let mut merged: Vec<StepRecord> = runs.iter().map(|(_, rate)| StepRecord::new(*rate)).collect();
    for _ in 0..repeats {
        for (i, (target, rate)) in runs.iter().enumerate() {
            let record = target.run(*rate, plan.step, limits).await;
            merged[i].merge(&record);
            tokio::time::sleep(plan.pause).await;
        }
    }
    runs.iter()
        .zip(merged)
        .map(|((t, _), m)| {
            let r = m.result(t.kind(), &plan.rule);
            progress(describe(&r));
            r
        })
        .collect()
}

/// Searches each target's limit; all targets step together, alternating, while each still searches.
async fn search(
    plan: &LoadPlan,
    limits: Limits,
    targets: &[Target],
    repeats: u32,
) -> (Vec<StepResult>, Vec<Limit>) {
    let mut searches: Vec<LimitSearch> = targets.iter().map(|_| LimitSearch::new(plan.ladder)).collect();
    let mut steps = Vec::new();
    if let Some(rate) = plan.fixed_rate {
        let runs: Vec<_> = targets.iter().map(|t| (t.clone(), rate)).collect();
        for (i, r) in round(plan, limits, &runs, repeats).await.into_iter().enumerate() {
            searches[i].record(rate, r.sustainable);
            steps.push(r);
        }
        return (steps, searches.iter().map(LimitSearch::limit).collect());
    }
    loop {
        let (idx, runs): (Vec<usize>, Vec<(Target, f64)>) = targets
            .iter()
            .zip(&searches)
            .enumerate()
            .filter_map(|(i, (t, s))| s.next_rate().map(|rate| (i, (t.clone(), rate))))
            .unzip();
        if runs.is_empty() {
            break;
        }
        let results = round(plan, limits, &runs, repeats).await;
        for (i, r) in idx.into_iter().zip(results) {
            searches[i].record(r.target_rate, r.sustainable);
            steps.push(r);
        }
    }
    (steps, searches.iter().map(LimitSearch::limit).collect())
}

fn settings(ctx: &Ctx, plan: &LoadPlan, api_url: Option<String>) -> serde_json::Value {
    json!({
        "region": ctx.region.name,
        "durability": name(ctx.durability),
        "quick": ctx.quick,
        "plan": plan,
        "max_in_flight": ctx.limits.max_in_flight,
        "api_url": api_url,
    })
}

/// `raw` or `api` alone.
pub async fn single(ctx: &Ctx, args: &LoadArgs, raw: bool) -> anyhow::Result<Report> {
    let plan = args.plan(ctx.quick);
    let target = if raw {
        raw_target(ctx).await?
    } else {
        api_target(ctx, args)?
    };
    let kind = target.kind();
    warm_up(std::slice::from_ref(&target), &plan, ctx.limits).await;
    let (steps, limits) = search(&plan, ctx.limits, std::slice::from_ref(&target), 1).await;
    let limit = &limits[0];
    let mut notes = Vec::new();
    if let Target::Raw(b) = &target
        && b.degraded() > 0
    {
        notes.push(format!(
            "{} appends were acknowledged degraded (global durability impossible)",
            b.degraded()
        ));
    }
    let sections = vec![Section {
        title: format!("{kind}: sustainable limit {}", limit.describe()),
        lines: notes,
        table: Some(steps_table(&steps)),
    }];
    let api_url = (!raw).then(|| args.api_url.clone().unwrap_or_else(|| ctx.region.api_url()));
    Ok(ctx.report(
        kind,
        settings(ctx, &plan, api_url),
        vec![],
        json!({ "limit": limit, "steps": steps }),
        sections,
    ))
}

/// The verdict on the throughput ratio: judged only where the limits allow it.
pub fn throughput_check(raw: &Limit, api: &Limit) -> Check {
    let target = "API limit ≥ 0.8 × raw limit";
    let (Some(r), Some(a)) = (raw.sustainable, api.sustainable) else {
        let measured = format!("raw {}, api {}", raw.describe(), api.describe());
        let pass = match (raw.sustainable, api.sustainable) {
            (Some(_), None) => Some(false),
            _ => None,
        };
        return Check::new("placement throughput", target, measured, pass);
    };
    let ratio = a / r;
    let measured = format!("{ratio:.2} (api {a}/s, raw {r}/s)");
    let pass = match (raw.first_break, api.first_break) {
        (Some(_), _) => Some(ratio >= 0.8),
        (None, Some(_)) if ratio < 0.8 => Some(false),
        _ => None,
    };
    Check::new("placement throughput", target, measured, pass)
}

/// The latency verdicts at half the raw limit.
pub fn latency_checks(raw: &StepResult, api: &StepResult) -> Vec<Check> {
    let (rl, al) = (&raw.latency, &api.latency);
    let p50 = match (rl.p50_ms, al.p50_ms) {
        (Some(r), Some(a)) => Check::new(
            "placement p50 at half load",
            "api p50 ≤ raw p50 + 2 ms",
            format!("api {a:.2} ms, raw {r:.2} ms (+{:.2} ms)", a - r),
            Some(a <= r + 2.0),
        ),
        _ => Check::new(
            "placement p50 at half load",
            "api p50 ≤ raw p50 + 2 ms",
            "no data".into(),
            None,
        ),
    };
    let p99 = match (rl.p99_ms, al.p99_ms) {
        (Some(r), Some(a)) => Check::new(
            "placement p99 at half load",
            "api p99 ≤ 2 × raw p99",
            format!("api {a:.2} ms, raw {r:.2} ms (× {:.2})", a / r),
            Some(a <= 2.0 * r),
        ),
        _ => Check::new(
            "placement p99 at half load",
            "api p99 ≤ 2 × raw p99",
            "no data".into(),
            None,
        ),
    };
    vec![p50, p99]
}

pub async fn compare(ctx: &Ctx, args: &LoadArgs) -> anyhow::Result<Report> {
    let plan = args.plan(ctx.quick);
    let raw = raw_target(ctx).await?;
    let api = api_target(ctx, args)?;
    let targets = [raw.clone(), api.clone()];
    warm_up(&targets, &plan, ctx.limits).await;
    let (steps, limits) = search(&plan, ctx.limits, &targets, 2).await;
    let (raw_limit, api_limit) = (&limits[0], &limits[1]);
    progress(format!(
        "limits: raw {}, api {}",
        raw_limit.describe(),
        api_limit.describe()
    ));
    let mut checks = vec![throughput_check(raw_limit, api_limit)];
    let mut sections = vec![Section {
        title: "Limit search (A-B-A-B at each rate)".into(),
        lines: vec![
            format!("- raw limit: {}", raw_limit.describe()),
            format!("- api limit: {}", api_limit.describe()),
            format!(
                "- break: error rate > {:.0}%, p99 > {} ms, or achieved < {:.0}% of target; each row merges two runs of {:?}",
                plan.rule.max_error_rate * 100.0,
                plan.rule.max_p99_ms,
                plan.rule.min_achieved_ratio * 100.0,
                plan.step
            ),
        ],
        table: Some(steps_table(&steps)),
    }];
    let mut half = serde_json::Value::Null;
    if let Some(raw_rate) = raw_limit.sustainable {
        let rate = (raw_rate / 2.0).round().max(1.0);
        progress(format!("latency at half the raw limit: {rate}/s, A-B-A-B"));
        let results = round(&plan, ctx.limits, &[(raw.clone(), rate), (api.clone(), rate)], 2).await;
        checks.extend(latency_checks(&results[0], &results[1]));
        let mut t = latency_table();
        t.row(latency_row("raw", &results[0].latency));
        t.row(latency_row("api", &results[1].latency));
        sections.push(Section {
            title: format!("Latency at half the raw limit ({rate}/s)"),
            lines: vec![],
            table: Some(t),
        });
        half = json!({ "rate": rate, "raw": results[0], "api": results[1] });
    } else {
        checks.extend(latency_checks(
            &StepResult::empty("raw"),
            &StepResult::empty("api"),
        ));
    }
    let mut notes = Vec::new();
    if let Target::Raw(b) = &raw
        && b.degraded() > 0
    {
        notes.push(format!("{} raw appends were acknowledged degraded", b.degraded()));
    }
    if let Some(s) = sections.first_mut() {
        s.lines.extend(notes);
    }
    let api_url = Some(args.api_url.clone().unwrap_or_else(|| ctx.region.api_url()));
    Ok(ctx.report(
        "compare",
        settings(ctx, &plan, api_url),
        checks,
        json!({
            "limits": { "raw": raw_limit, "api": api_limit },
            "throughput_ratio": raw_limit.sustainable.zip(api_limit.sustainable).map(|(r, a)| a / r),
            "half_load": half,
            "steps": steps,
        }),
        sections,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(s: Option<f64>, b: Option<f64>) -> Limit {
        Limit {
            sustainable: s,
            first_break: b,
        }
    }

    #[test]
    fn the_throughput_ratio_is_judged_against_a_real_raw_limit() {
        let c = throughput_check(&limit(Some(400.0), Some(600.0)), &limit(Some(300.0), Some(450.0)));
        assert_eq!(c.pass, Some(false));
        assert!(c.measured.starts_with("0.75"), "{}", c.measured);
        let c = throughput_check(&limit(Some(400.0), Some(600.0)), &limit(Some(350.0), Some(400.0)));
        assert_eq!(c.pass, Some(true));
    }

    #[test]
    fn a_raw_limit_that_never_broke_only_proves_a_failure() {
        let unbroken = limit(Some(200.0), None);
        assert_eq!(throughput_check(&unbroken, &limit(Some(200.0), None)).pass, None);
        assert_eq!(
            throughput_check(&unbroken, &limit(Some(100.0), Some(150.0))).pass,
            Some(false)
        );
        assert_eq!(
            throughput_check(&unbroken, &limit(None, Some(25.0))).pass,
            Some(false)
        );
    }

    #[test]
    fn latency_targets_compare_api_with_raw() {
        let mut raw = StepResult::empty("raw");
        let mut api = StepResult::empty("api");
        raw.latency.p50_ms = Some(4.0);
        raw.latency.p99_ms = Some(10.0);
        api.latency.p50_ms = Some(5.5);
        api.latency.p99_ms = Some(21.0);
        let checks = latency_checks(&raw, &api);
        assert_eq!(checks[0].pass, Some(true));
        assert_eq!(checks[1].pass, Some(false));
        assert!(checks[1].measured.contains("× 2.10"));
    }
}
