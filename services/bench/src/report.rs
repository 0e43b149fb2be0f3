//! Result files: `bench/results/<timestamp>-<kind>.json` for machines and `.md` for people, both
//! carrying the machine, versions, command line and build profile.
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::machine::Environment;
use crate::stats::{LatencySummary, fmt_ms};
use crate::step::StepResult;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `raw`, `api`, `compare`, `e2e`, `replication`, `drill-<scenario>`.
    pub kind: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub environment: Environment,
    pub settings: serde_json::Value,
    /// The targets (docs/architecture.md section 9) this run measured, with their verdicts.
    pub checks: Vec<Check>,
    pub results: serde_json::Value,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub sections: Vec<Section>,
}

/// One target and what this run measured against it; `pass` is `None` when it could not be judged.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub pass: Option<bool>,
    /// A failure of this check fails the run (non-zero exit), after the report is written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub must_pass: bool,
}

impl Check {
    pub fn new(what: &str, target: &str, measured: String, pass: Option<bool>) -> Check {
        Check {
            what: what.into(),
            target: target.into(),
            measured,
            pass,
            must_pass: false,
        }
    }

    /// Marks the check as one whose failure fails the run.
    pub fn must_pass(mut self) -> Check {
        self.must_pass = true;
        self
    }
}

/// The first check that must pass and failed, if any.
pub fn failed_must_pass(r: &Report) -> Option<&Check> {
    r.checks.iter().find(|c| c.must_pass && c.pass == Some(false))
}

/// A part of the Markdown report: a title, lines of prose, and an optional table.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
    pub table: Option<Table>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len(), "a row has one cell per column");
        self.rows.push(cells);
    }
    fn render(&self, out: &mut String) {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.headers));
        out.push_str(&line(&vec!["---".to_string(); self.headers.len()]));
        for r in &self.rows {
            out.push_str(&line(
                &r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>(),
            ));
        }
    }
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "pass",
        Some(false) => "**FAIL**",
        None => "n/a",
    }
}

pub fn render_markdown(r: &Report) -> String {
    let mut out = format!(
        "# orders-bench {}: {}\n\n",
        r.kind,
        r.started_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    let env = &r.environment;
    let m = &env.machine;
    out.push_str(&format!(
        "- command: `{}`\n- machine: {} cores ({}), {} GiB memory, {} (kernel {})\n\
         - versions: {}, Apache Kafka {}, Apache Cassandra {}\n\
         - build profile: bench {}, services {}\n- duration: {:.0} s\n",
        env.command_line,
        m.cores,
        m.cpu_model,
        m.memory_gib,
        m.hostname,
        m.kernel,
        env.versions.rustc,
        env.versions.kafka,
        env.versions.cassandra,
        env.build_profile,
        env.services_profile,
        (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0,
    ));
    if !r.checks.is_empty() {
        out.push_str("\n## Targets\n\n");
        let mut t = Table::new(&["what", "target", "measured", "verdict"]);
        for c in &r.checks {
            t.row(vec![
                c.what.clone(),
                c.target.clone(),
                c.measured.clone(),
                verdict(c.pass).into(),
            ]);
        }
        t.render(&mut out);
    }
    for s in &r.sections {
        out.push_str(&format!("\n## {}\n\n", s.title));
        for l in &s.lines {
            out.push_str(l);
            out.push('\n');
        }
        if let Some(t) = &s.table {
            if !s.lines.is_empty() {
                out.push('\n');
            }
            t.render(&mut out);
        }
    }
    if !r.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &r.notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

/// `20260102T030405Z-compare`
pub fn file_stem(started_at: DateTime<Utc>, kind: &str) -> String {
    format!("{}-{kind}", started_at.format("%Y%m%dT%H%M%SZ"))
}

/// Writes both files into `dir` and returns their paths.
pub fn write(dir: &Path, report: &Report) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = file_stem(report.started_at, &report.kind);
    let json = dir.join(format!("{stem}.json"));
    let md = dir.join(format!("{stem}.md"));
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&md, render_markdown(report)).with_context(|| format!("writing {}", md.display()))?;
    Ok((json, md))
}

/// The table of measured steps every load report shows.
pub fn steps_table(steps: &[StepResult]) -> Table {
    let mut t = Table::new(&[
        "kind",
        "target/s",
        "achieved/s",
        "ok",
        "errors",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "verdict",
    ]);
    for s in steps {
        t.row(vec![
            s.kind.clone(),
            format!("{}", s.target_rate),
            format!("{:.1}", s.achieved_rate),
            s.ok.to_string(),
            if s.errors == 0 {
                "0".into()
            } else {
                format!(
                    "{} ({})",
                    s.errors,
                    s.error_kinds
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            fmt_ms(s.latency.p50_ms),
            fmt_ms(s.latency.p99_ms),
            fmt_ms(s.latency.p999_ms),
            fmt_ms(s.latency.max_ms),
            if s.sustainable {
                "ok".into()
            } else {
                format!("broke: {}", s.breaks.join("; "))
            },
        ]);
    }
    t
}

/// One row of percentiles for a latency summary.
pub fn latency_row(name: &str, s: &LatencySummary) -> Vec<String> {
    vec![
        name.to_string(),
        s.count.to_string(),
        fmt_ms(s.p50_ms),
        fmt_ms(s.p90_ms),
        fmt_ms(s.p99_ms),
        fmt_ms(s.max_ms),
    ]
}

pub fn latency_table() -> Table {
    Table::new(&["what", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Machine, Versions};
    use chrono::TimeZone;

    fn report() -> Report {
        Report {
            kind: "compare".into(),
            started_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            finished_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, 5).unwrap(),
            environment: Environment {
                machine: Machine {
                    cores: 2,
                    memory_gib: 23.4,
                    cpu_model: "Test CPU".into(),
                    hostname: "box".into(),
                    kernel: "6.1".into(),
                },
                versions: Versions {
                    rustc: "rustc 1.95.0".into(),
                    kafka: "4.3.1".into(),
                    cassandra: "5.0.6".into(),
                    orders_bench: "0.1.0".into(),
                },
                command_line: "orders-bench compare --quick".into(),
                build_profile: "release (opt-level 3)".into(),
                services_profile: "debug".into(),
            },
            settings: serde_json::json!({"quick": true}),
            checks: vec![Check::new("throughput ratio", "≥ 0.8", "0.91".into(), Some(true))],
            results: serde_json::json!({"ratio": 0.91}),
            notes: vec!["smoke run".into()],
            sections: vec![Section {
                title: "Steps".into(),
                lines: vec!["A-B-A-B at each rate.".into()],
                table: Some(Table {
                    headers: vec!["a".into(), "b".into()],
                    rows: vec![vec!["1".into(), "x|y".into()]],
                }),
            }],
        }
    }

    #[test]
    fn the_markdown_report_names_machine_versions_command_and_profile() {
        let md = render_markdown(&report());
        assert!(md.starts_with("# orders-bench compare: 2026-01-02 03:04:05 UTC\n"));
        assert!(md.contains("- command: `orders-bench compare --quick`"));
        assert!(md.contains("2 cores (Test CPU), 23.4 GiB memory"));
        assert!(md.contains("Apache Kafka 4.3.1, Apache Cassandra 5.0.6"));
        assert!(md.contains("bench release (opt-level 3), services debug"));
        assert!(md.contains("- duration: 60 s"));
    }

    #[test]
    fn targets_sections_and_notes_render_as_markdown_tables_and_lists() {
        let md = render_markdown(&report());
        assert!(md.contains("| throughput ratio | ≥ 0.8 | 0.91 | pass |"));
        assert!(
            md.contains("## Steps\n\nA-B-A-B at each rate.\n\n| a | b |\n| --- | --- |\n| 1 | x\\|y |\n")
        );
        assert!(md.ends_with("## Notes\n\n- smoke run\n"));
    }

    #[test]
    fn the_json_report_carries_the_same_facts() {
        let v = serde_json::to_value(report()).unwrap();
        assert_eq!(v["environment"]["machine"]["cores"], 2);
        assert_eq!(v["environment"]["versions"]["kafka"], "4.3.1");
        assert_eq!(v["environment"]["build_profile"], "release (opt-level 3)");
        assert_eq!(v["checks"][0]["pass"], true);
        assert!(v.get("sections").is_none());
    }

    #[test]
    fn only_a_failed_check_that_must_pass_fails_the_run() {
        let mut r = report();
        r.checks
            .push(Check::new("p99", "< 1 s", "2 s".into(), Some(false)));
        r.checks
            .push(Check::new("oversold", "0", "n/a".into(), None).must_pass());
        assert!(failed_must_pass(&r).is_none());
        r.checks
            .push(Check::new("oversold", "0", "3".into(), Some(false)).must_pass());
        assert_eq!(failed_must_pass(&r).map(|c| c.measured.as_str()), Some("3"));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["checks"][0].get("must_pass"), None);
        assert_eq!(v["checks"][3]["must_pass"], true);
    }

    #[test]
    fn result_files_are_named_by_start_time_and_kind() {
        assert_eq!(
            file_stem(report().started_at, "drill-region-eu"),
            "20260102T030405Z-drill-region-eu"
        );
        let dir = std::env::temp_dir().join(format!("orders-bench-test-{}", uuid::Uuid::new_v4()));
        let (json, md) = write(&dir, &report()).unwrap();
        assert!(json.ends_with("20260102T030405Z-compare.json"));
        assert!(std::fs::read_to_string(md).unwrap().contains("## Targets"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
