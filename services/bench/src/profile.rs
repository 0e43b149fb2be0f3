//! `profile`: where the work of a placement goes. The same open-loop API load as `api --rate`,
//! measured three ways: each stack process's CPU time (from `/proc`, the idle rate of an equal quiet
//! window subtracted), the Cassandra reads and writes per table (`./dev nodetool <region>
//! tablestats`, idle rate subtracted the same way), and with `--perf` a `perf record` of the
//! region's API, whose hottest symbols go into the report.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;

use crate::bench::{Target, api_target};
use crate::cli::ProfileArgs;
use crate::ctx::{Ctx, progress};
use crate::report::{Report, Section, Table, steps_table};

/// CPU time of one process, in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Reads and writes per table from `nodetool tablestats` output: `keyspace.table -> (reads, writes)`.
pub fn table_counts(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let (mut keyspace, mut table, mut reads) = (String::new(), String::new(), 0);
    for line in text.lines().map(str::trim) {
        if let Some(k) = line
            .strip_prefix("Keyspace :")
            .or_else(|| line.strip_prefix("Keyspace:"))
        {
            keyspace = k.trim().to_string();
        } else if let Some(t) = line.strip_prefix("Table:") {
            table = t.trim().to_string();
        } else if let Some(n) = line.strip_prefix("Local read count:") {
            reads = n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("Local write count:") {
            let writes = n.trim().parse().unwrap_or(0);
            out.insert(format!("{keyspace}.{table}"), (reads, writes));
        }
    }
    out
}

/// What a load window cost beyond idling: `loaded - idle_rate × loaded_secs`, per placement.
pub fn per_placement(idle: f64, idle_secs: f64, loaded: f64, loaded_secs: f64, placements: u64) -> f64 {
    if placements == 0 || idle_secs <= 0.0 {
        return 0.0;
    }
    (loaded - idle / idle_secs * loaded_secs).max(0.0) / placements as f64
}

/// CPU ticks of every process `./dev` recorded in `.dev/pids` that is still alive.
fn cpu_snapshot(root: &Path) -> anyhow::Result<BTreeMap<String, u64>> {
    let dir = root.join(".dev/pids");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
        else {
            continue;
        };
        if let Some(ticks) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(cpu_ticks)
        {
            out.insert(name.to_string(), ticks);
        }
    }
    if out.is_empty() {
        bail!(
            "no live process in {}: is the stack up (./dev up)?",
            dir.display()
        );
    }
    Ok(out)
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Table counts of every region's node, keyed `region/keyspace.table`.
fn statement_snapshot(ctx: &Ctx) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let mut out = BTreeMap::new();
    for region in &ctx.stack.regions {
        let output = Command::new(ctx.stack.root.join("dev"))
            .args(["nodetool", &region.name, "tablestats", "orders", "system.paxos"])
            .output()
            .context("running ./dev nodetool")?;
        if !output.status.success() {
            bail!(
                "./dev nodetool {} tablestats failed: {}",
                region.name,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        for (table, counts) in table_counts(&String::from_utf8_lossy(&output.stdout)) {
            out.insert(format!("{}/{table}", region.name), counts);
        }
    }
    Ok(out)
}

/// `b - a` per key present in both (counters only grow; a restarted process shows as 0).
fn diff<T: Copy>(
    a: &BTreeMap<String, T>,
    b: &BTreeMap<String, T>,
    sub: impl Fn(T, T) -> T,
) -> BTreeMap<String, T> {
    b.iter()
        .filter_map(|(k, v)| a.get(k).map(|old| (k.clone(), sub(*v, *old))))
        .collect()
}

#[derive(Debug, Serialize)]
struct ProcessCost {
    process: String,
    idle_cpu_per_sec: f64,
    cpu_ms_per_placement: f64,
    share: f64,
}

#[derive(Debug, Serialize)]
struct TableCost {
    node_table: String,
    reads_per_placement: f64,
    writes_per_placement: f64,
}

/// `perf record` of one process for `secs`, then its hottest symbols.
struct Perf {
    child: std::process::Child,
    data: PathBuf,
}

impl Perf {
    fn start(pid: &str, secs: f64, data: PathBuf) -> anyhow::Result<Perf> {
        let child = Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", pid, "-o"])
            .arg(&data)
            .args(["--", "sleep", &format!("{secs:.0}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("--perf needs `perf` (Debian package linux-perf) on the PATH")?;
        Ok(Perf { child, data })
    }

    fn top(mut self) -> anyhow::Result<Vec<String>> {
        self.child.wait().context("waiting for perf record")?;
        let report = Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--sort",
                "dso,sym",
                "--stdio",
                "-g",
                "none",
                "-i",
            ])
            .arg(&self.data)
            .output()
            .context("perf report")?;
        Ok(String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .take(25)
            .map(|l| l.trim().to_string())
            .collect())
    }
}

pub async fn run(ctx: &Ctx, args: &ProfileArgs) -> anyhow::Result<Report> {
    let root = ctx.stack.root.clone();
    let secs = args.duration_secs.unwrap_or(if ctx.quick { 15.0 } else { 30.0 });
    let window = Duration::from_secs_f64(secs);
    let rate = args.load.rate.unwrap_or(8.0);
    let target = api_target(ctx, &args.load)?;
    let tick = clock_ticks_per_sec();

    progress("warming up");
    target.run(rate, Duration::from_secs(3), ctx.limits).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    progress(format!("idle window of {secs:.0} s"));
    let s0 = statement_snapshot(ctx)?;
    let t_s0 = Instant::now();
    let c0 = cpu_snapshot(&root)?;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let c1 = cpu_snapshot(&root)?;
    let idle_secs = t0.elapsed().as_secs_f64();
    let s1 = statement_snapshot(ctx)?;
    let idle_stmt_secs = t_s0.elapsed().as_secs_f64();

    progress(format!("load window: {}/s for {secs:.0} s", rate));
    let api_pid = std::fs::read_to_string(root.join(format!(".dev/pids/{}-api.pid", ctx.region.name)))
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string));
    let stem = crate::report::file_stem(ctx.started_at, "profile");
    let perf = match (args.perf, &api_pid) {
        (true, Some(pid)) => Some(Perf::start(
            pid,
            secs,
            ctx.out.join(format!("{stem}-api.perf.data")),
        )?),
        (true, None) => bail!("--perf: no pid recorded for the {} API", ctx.region.name),
        (false, _) => None,
    };
    let t_s1 = Instant::now();
    let c2 = cpu_snapshot(&root)?;
    let t2 = Instant::now();
    let record = target.run(rate, window, ctx.limits).await;
    let c3 = cpu_snapshot(&root)?;
    let loaded_secs = t2.elapsed().as_secs_f64();
    let s2 = statement_snapshot(ctx)?;
    let loaded_stmt_secs = t_s1.elapsed().as_secs_f64();
    let step = record.result(Target::kind(&target), &args.load.plan(ctx.quick).rule);
    let placements = step.ok;
    let hottest = match perf {
        Some(p) => p.top()?,
        None => Vec::new(),
    };

    let ticks = |b: u64, a: u64| b.saturating_sub(a);
    let (idle_cpu, loaded_cpu) = (diff(&c0, &c1, ticks), diff(&c2, &c3, ticks));
    let mut processes: Vec<ProcessCost> = loaded_cpu
        .iter()
        .map(|(name, &ticks)| {
            let idle = idle_cpu.get(name).copied().unwrap_or(0) as f64 / tick;
            ProcessCost {
                process: name.clone(),
                idle_cpu_per_sec: idle / idle_secs,
                cpu_ms_per_placement: 1000.0
                    * per_placement(idle, idle_secs, ticks as f64 / tick, loaded_secs, placements),
                share: 0.0,
            }
        })
        .collect();
    let total: f64 = processes.iter().map(|p| p.cpu_ms_per_placement).sum();
    for p in &mut processes {
        p.share = if total > 0.0 {
            p.cpu_ms_per_placement / total
        } else {
            0.0
        };
    }
    processes.sort_by(|a, b| b.cpu_ms_per_placement.total_cmp(&a.cpu_ms_per_placement));

    let counts = |b: (u64, u64), a: (u64, u64)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1));
    let (idle_stmt, loaded_stmt) = (diff(&s0, &s1, counts), diff(&s1, &s2, counts));
    let per = |idle: u64, loaded: u64| {
        per_placement(
            idle as f64,
            idle_stmt_secs,
            loaded as f64,
            loaded_stmt_secs,
            placements,
        )
    };
    let tables: Vec<TableCost> = loaded_stmt
        .iter()
        .map(|(name, &(r, w))| {
            let (ir, iw) = idle_stmt.get(name).copied().unwrap_or_default();
            TableCost {
                node_table: name.clone(),
                reads_per_placement: per(ir, r),
                writes_per_placement: per(iw, w),
            }
        })
        .filter(|t| t.reads_per_placement >= 0.05 || t.writes_per_placement >= 0.05)
        .collect();

    let mut cpu = Table::new(&["process", "idle CPU (cores)", "CPU ms per placement", "share"]);
    for p in &processes {
        cpu.row(vec![
            p.process.clone(),
            format!("{:.3}", p.idle_cpu_per_sec),
            format!("{:.2}", p.cpu_ms_per_placement),
            format!("{:.0} %", 100.0 * p.share),
        ]);
    }
    let mut stmts = Table::new(&["node/table", "reads per placement", "writes per placement"]);
    for t in &tables {
        stmts.row(vec![
            t.node_table.clone(),
            format!("{:.2}", t.reads_per_placement),
            format!("{:.2}", t.writes_per_placement),
        ]);
    }
    let mut sections = vec![
        Section {
            title: format!("load: {}/s through the {} API for {secs:.0} s", rate, ctx.region.name),
            lines: vec![],
            table: Some(steps_table(std::slice::from_ref(&step))),
        },
        Section {
            title: format!("CPU per placement by process (total {total:.1} ms)"),
            lines: vec![format!(
                "CPU time from /proc/<pid>/stat over the load window, minus each process's rate in an idle window of {idle_secs:.0} s just before, divided by the {placements} acknowledged placements."
            )],
            table: Some(cpu),
        },
        Section {
            title: "Cassandra reads and writes per placement, per node and table".into(),
            lines: vec![
                "From `nodetool tablestats` (local read/write counts of each node) before and after, idle rate subtracted; system.paxos counts the Paxos state of lightweight transactions.".into(),
            ],
            table: Some(stmts),
        },
    ];
    if !hottest.is_empty() {
        sections.push(Section {
            title: format!(
                "perf: hottest symbols of the {} API under the load",
                ctx.region.name
            ),
            lines: hottest.iter().map(|l| format!("`{l}`")).collect(),
            table: None,
        });
    }
    Ok(ctx.report(
        "profile",
        json!({ "region": ctx.region.name, "rate": rate, "window_secs": secs, "perf": args.perf }),
        vec![],
        json!({ "step": step, "processes": processes, "tables": tables, "perf_top": hottest }),
        sections,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_even_with_a_name_holding_spaces() {
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 750 250 0 0 20 0 8 0 12345";
        assert_eq!(cpu_ticks(stat), Some(1000));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn tablestats_counts_are_keyed_by_keyspace_and_table() {
        let text = "Keyspace : orders\n\tRead Count: 9\n\t\tTable: outbox\n\t\tLocal read count: 12\n\t\tLocal write count: 34\n\
                    \t\tTable: stock\n\t\tLocal read count: 1\n\t\tLocal write count: 2\nKeyspace : system\n\t\tTable: paxos\n\
                    \t\tLocal read count: 5\n\t\tLocal write count: 6\n";
        let counts = table_counts(text);
        assert_eq!(counts["orders.outbox"], (12, 34));
        assert_eq!(counts["orders.stock"], (1, 2));
        assert_eq!(counts["system.paxos"], (5, 6));
    }

    #[test]
    fn the_idle_rate_is_subtracted_before_dividing_by_placements() {
        // 2 s of CPU idle over 10 s; 5 s over a 10 s load window of 100 placements: 3 s of work.
        assert!((per_placement(2.0, 10.0, 5.0, 10.0, 100) - 0.03).abs() < 1e-9);
        assert_eq!(per_placement(2.0, 10.0, 1.0, 10.0, 100), 0.0, "never negative");
        assert_eq!(
            per_placement(2.0, 10.0, 5.0, 10.0, 0),
            0.0,
            "no placements, no cost"
        );
    }
}
