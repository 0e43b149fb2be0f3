//! The drill's verdicts and its Markdown sections.
use std::collections::HashSet;

use uuid::Uuid;

use super::DevCommand;
use super::after::Replication;
use super::stock::Allotment;
use crate::cli::{DrillArgs, Scenario};
use crate::ctx::Ctx;
use crate::failover::{self, EdgeSummary};
use crate::report::{Check, Section, Table};

/// What the drill measured after the heal.
pub(super) struct Aftermath<'a> {
    /// Per edge, summarized from the end of the heal as the others are from the fault.
    pub after_heal: &'a [EdgeSummary],
    pub allotments: &'a [Allotment],
    pub replication: &'a Replication,
    /// Per region, placements its API acknowledged locally during the drill (`None`: unreadable).
    pub degraded: &'a [(String, Option<f64>)],
    pub load_end_s: f64,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn render(
    ctx: &Ctx,
    args: &DrillArgs,
    summaries: &[EdgeSummary],
    commands: &[DevCommand],
    rpo: &failover::Rpo,
    lost: &[Uuid],
    doubled: usize,
    pending: &HashSet<Uuid>,
    early_pending: usize,
    converge_s: Option<f64>,
    acked: usize,
    unknown: usize,
    payment_unknown: usize,
    fault_s: f64,
    heal_done_s: f64,
    check_started_s: f64,
    outage: Option<&super::Outage>,
    aftermath: &Aftermath,
) -> (Vec<Check>, Vec<Section>) {
    let mut checks = Vec::new();
    for s in summaries {
        checks.push(Check::new(
            &format!("first success through edge {} after the fault", s.edge),
            "within 10 s",
            match s.rto_s {
                Some(r) => format!("{r:.2} s ({} failed in failover)", s.failover_errors),
                None => "never".into(),
            },
            Some(s.rto_s.is_some_and(|r| r < 10.0)),
        ));
    }
    for s in aftermath.after_heal {
        let measured = aftermath.load_end_s > heal_done_s;
        checks.push(Check::new(
            &format!("first success through edge {} after the heal", s.edge),
            "within 10 s",
            match s.rto_s {
                Some(r) => format!("{r:.2} s ({} errors after the heal)", s.errors_after_fault),
                None if measured => "never".into(),
                None => "not measured: the load ended before the heal finished".into(),
            },
            measured.then_some(s.rto_s.is_some_and(|r| r < 10.0)),
        ));
    }
    let loss_allowed =
        args.scenario == Scenario::RegionEu && ctx.durability == orders_store::Durability::Local;
    checks.push(
        Check::new(
            "acknowledged orders lost",
            if loss_allowed {
                "any (local durability: RPO = cross-DC lag)"
            } else {
                "0"
            },
            format!(
                "{} of {acked} (RPO {:.2} s of acknowledgements); {unknown} unknown",
                rpo.orders, rpo.seconds
            ),
            if loss_allowed {
                None
            } else {
                Some(lost.is_empty() && unknown == 0)
            },
        )
        .must_pass(),
    );
    if let Some(o) = outage {
        let global = ctx.durability == orders_store::Durability::Global;
        checks.push(Check::new(
            &format!(
                "orders {} acknowledged before the fault, visible elsewhere while it was down",
                o.dead
            ),
            if global {
                "all (global durability)"
            } else {
                "all but the cross-DC lag before the fault (local durability: the RPO if it never returned)"
            },
            format!(
                "{} of {} missing{}; {} look-ups failed",
                o.missing.len(),
                o.checked,
                o.oldest_missing_before_fault_s
                    .map(|s| format!(", the oldest acknowledged {s:.2} s before the fault"))
                    .unwrap_or_default(),
                o.failed
            ),
            global.then_some(o.missing.is_empty() && o.failed == 0),
        ));
    }
    checks.push(
        Check::new(
            "doubled effects",
            "0",
            format!("{doubled} ({payment_unknown} payment look-ups failed)"),
            Some(doubled == 0 && payment_unknown == 0),
        )
        .must_pass(),
    );
    checks.push(
        Check::new(
            "convergence after heal",
            "every acknowledged order identical in all regions",
            match converge_s {
                Some(s) => format!(
                    "{s:.1} s after the heal finished; at the end {} of {acked} still differ",
                    pending.len()
                ),
                None => format!(
                    "{early_pending} orders acknowledged until the heal still differ after {} s",
                    args.converge_timeout
                ),
            },
            Some(converge_s.is_some() && pending.is_empty()),
        )
        .must_pass(),
    );
    let r = aftermath.replication;
    checks.push(Check::new(
        "replication healthy again after the heal (every worker's kafka:replicationFreshness and cassandra:crossDcLag pass)",
        &format!("within --converge-timeout ({} s)", args.converge_timeout),
        match r.resumed_after_heal_s {
            Some(s) => format!("{s:.1} s after the heal finished"),
            None => format!(
                "not yet: {}",
                r.last
                    .iter()
                    .filter(|(_, _, st)| st != "pass")
                    .map(|(region, check, st)| format!("{region} {check} {st}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Some(r.resumed_after_heal_s.is_some()),
    ));
    let unsound: Vec<&Allotment> = aftermath.allotments.iter().filter(|a| !a.sound()).collect();
    checks.push(Check::new(
        "stock allocations never negative (every region's allotment of the drill's SKUs, read in every datacenter)",
        "available >= 0 and reserved units <= allotted, everywhere",
        if unsound.is_empty() {
            format!("all {} sound", aftermath.allotments.len())
        } else {
            format!(
                "{} of {} not: {}",
                unsound.len(),
                aftermath.allotments.len(),
                unsound
                    .iter()
                    .take(5)
                    .map(|a| format!(
                        "{} of {} in {}: available {}, reserved {} of {}{}",
                        a.sku,
                        a.region,
                        a.read_in,
                        a.available.map_or("unknown".into(), |v| v.to_string()),
                        a.reserved_units,
                        a.allotted,
                        a.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        },
        Some(!aftermath.allotments.is_empty() && unsound.is_empty()),
    )
    .must_pass());
    let mut cmds = Table::new(&["t (s)", "command", "took (s)", "exit", "last output"]);
    for c in commands {
        cmds.row(vec![
            format!("{:.1}", c.started_s),
            format!("`{}`", c.command),
            format!("{:.1}", c.finished_s - c.started_s),
            c.exit_code.map_or("–".into(), |e| e.to_string()),
            c.output_tail.last().cloned().unwrap_or_default(),
        ]);
    }
    let mut edges = Table::new(&[
        "edge",
        "placements",
        "ok",
        "errors",
        "RTO (s)",
        "failover errors",
        "failover error rate",
        "errors after fault",
        "longest gap (s)",
        "served by",
        "error kinds",
        "first success after heal (s)",
        "errors after heal",
    ]);
    for (s, h) in summaries.iter().zip(aftermath.after_heal) {
        edges.row(vec![
            s.edge.clone(),
            s.attempts.to_string(),
            s.ok.to_string(),
            s.errors.to_string(),
            s.rto_s.map_or("never".into(), |r| format!("{r:.2}")),
            s.failover_errors.to_string(),
            format!("{:.1}%", s.failover_error_rate * 100.0),
            s.errors_after_fault.to_string(),
            format!("{:.2}", s.longest_gap_s),
            s.served_by
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.error_kinds
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            h.rto_s.map_or("never".into(), |r| format!("{r:.2}")),
            h.errors_after_fault.to_string(),
        ]);
    }
    let mut stock = Table::new(&[
        "sku",
        "allotment of",
        "read in",
        "allotted",
        "available",
        "reservations",
        "reserved units",
        "available + reserved",
        "sound",
    ]);
    for a in aftermath.allotments {
        stock.row(vec![
            a.sku.clone(),
            a.region.clone(),
            a.read_in.clone(),
            a.allotted.to_string(),
            a.available.map_or("–".into(), |v| v.to_string()),
            a.reservations.to_string(),
            a.reserved_units.to_string(),
            a.available
                .map_or("–".into(), |v| (v + a.reserved_units).to_string()),
            if a.sound() {
                "yes".into()
            } else {
                format!(
                    "**no**{}",
                    a.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
                )
            },
        ]);
    }
    let mut per_second = Table::new(
        &std::iter::once("second".to_string())
            .chain(summaries.iter().map(|s| format!("{} ok/err", s.edge)))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let last = summaries
        .iter()
        .flat_map(|s| s.per_second.last().map(|p| p[0]))
        .max()
        .unwrap_or(0);
    for sec in 0..=last {
        let mut row = vec![sec.to_string()];
        for s in summaries {
            let cell = s
                .per_second
                .iter()
                .find(|p| p[0] == sec)
                .map_or("0/0".into(), |p| format!("{}/{}", p[1], p[2]));
            row.push(cell);
        }
        per_second.row(row);
    }
    let sections = vec![
        Section {
            title: format!("Scenario {}{}", args.scenario.name(), if args.dry_run { " (dry run: no fault made)" } else { "" }),
            lines: vec![
                format!("- fault at {fault_s:.1} s, heal finished at {heal_done_s:.1} s, order checks from {check_started_s:.1} s"),
                "- RTO: from the fault to the acknowledgement of the first placement issued after it that succeeded.".into(),
                "- Convergence: the orders acknowledged until the heal finished are polled once a second from then on (load still running) until identical in every region and final; every acknowledged order is checked again after the load.".into(),
            ],
            table: Some(cmds),
        },
        Section {
            title: "Edges".into(),
            lines: vec![],
            table: Some(edges),
        },
        Section {
            title: "Loss, doubled effects, convergence".into(),
            lines: vec![
                format!("- acknowledged: {acked}; lost (404 in every region): {}; unknown (a region did not answer): {unknown}", rpo.orders),
                format!(
                    "- RPO: {} orders, {:.2} s of acknowledgements before the fault{}",
                    rpo.orders,
                    rpo.seconds,
                    rpo.acknowledged_between_s.map_or(String::new(), |(a, b)| format!(" (acknowledged between {a:.1} s and {b:.1} s)"))
                ),
                format!("- doubled effects (two StockReserved or PaymentAuthorized, or two sandbox authorizations): {doubled}"),
                format!(
                    "- converged: {}",
                    converge_s.map_or(format!("no, {early_pending} orders acknowledged until the heal differ"), |s| format!("{s:.1} s after the heal; {} of {acked} differ at the end", pending.len()))
                ),
            ],
            table: None,
        },
        Section {
            title: "After the heal".into(),
            lines: vec![
                format!(
                    "- replication healthy again (every worker's {}): {}",
                    super::after::REPLICATION_CHECKS.join(" and "),
                    r.resumed_after_heal_s.map_or("not within --converge-timeout".into(), |s| format!("{s:.1} s after the heal finished"))
                ),
                format!(
                    "- acknowledged locally while the other datacenters were unreachable (`orders_placed_total{{durability=\"global_degraded\"}}` during the drill, every placement of the region, not only the drill's): {}",
                    aftermath
                        .degraded
                        .iter()
                        .map(|(region, n)| format!("{region} {}", n.map_or("unknown".into(), |n| format!("{n:.0}"))))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "- Stock allotments: every region's allotment of every SKU the drill bought, read at LOCAL_QUORUM in every datacenter after the checks above. Sound: available >= 0 and the units held by reservation rows at most the catalog's allotment (available + reserved may be below it: orders cancelled or operator moves).".into(),
            ],
            table: Some(stock),
        },
        Section {
            title: "Placements per second".into(),
            lines: vec![],
            table: Some(per_second),
        },
    ];
    (checks, sections)
}
