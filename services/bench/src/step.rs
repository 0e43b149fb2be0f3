//! One measured step: what was offered, what came back, and whether the system kept up.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::stats::{Latencies, LatencySummary};

/// The raw counts and histograms of one run at one rate; runs of the same kind merge.
#[derive(Debug, Clone, Default)]
pub struct StepRecord {
    pub target_rate: f64,
    /// Scheduled time, summed over merged runs.
    pub scheduled: Duration,
    /// From the first intended start to the last answer, summed over merged runs.
    pub elapsed: Duration,
    pub issued: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// From the intended start to the acknowledgement a client would get.
    pub latency: Latencies,
    /// From the intended start to the end of all work of the operation (raw: the Kafka produce too).
    pub completion: Latencies,
    /// How late the generator itself issued requests (a loaded bench machine shows here).
    pub issue_lag: Latencies,
    pub runs: u32,
}

impl StepRecord {
    pub fn new(target_rate: f64) -> Self {
        StepRecord {
            target_rate,
            ..StepRecord::default()
        }
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn merge(&mut self, other: &StepRecord) {
        self.scheduled += other.scheduled;
        self.elapsed += other.elapsed;
        self.issued += other.issued;
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.latency.add(&other.latency);
        self.completion.add(&other.completion);
        self.issue_lag.add(&other.issue_lag);
        self.runs += other.runs;
    }

    /// Successful operations per second of wall time, drain included.
    pub fn achieved_rate(&self) -> f64 {
        let secs = self.elapsed.max(self.scheduled).as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    pub fn error_rate(&self) -> f64 {
        if self.issued == 0 {
            0.0
        } else {
            self.error_count() as f64 / self.issued as f64
        }
    }

    pub fn result(&self, kind: &str, rule: &BreakRule) -> StepResult {
        let latency = self.latency.summary();
        let breaks = rule.reasons(
            self.target_rate,
            self.achieved_rate(),
            self.error_rate(),
            &latency,
        );
        StepResult {
            kind: kind.to_string(),
            target_rate: self.target_rate,
            achieved_rate: round2(self.achieved_rate()),
            issued: self.issued,
            ok: self.ok,
            errors: self.error_count(),
            error_rate: self.error_rate(),
            error_kinds: self.errors.clone(),
            runs: self.runs,
            seconds: round2(self.scheduled.as_secs_f64()),
            latency,
            completion: self.completion.summary(),
            issue_lag: self.issue_lag.summary(),
            sustainable: breaks.is_empty(),
            breaks,
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A step as reports show it.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub kind: String,
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub issued: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub error_kinds: BTreeMap<String, u64>,
    pub runs: u32,
    pub seconds: f64,
    pub latency: LatencySummary,
    pub completion: LatencySummary,
    pub issue_lag: LatencySummary,
    pub sustainable: bool,
    /// Why the step broke; empty when it is sustainable.
    pub breaks: Vec<String>,
}

impl StepResult {
    /// A step with nothing measured, for verdicts that could not be reached.
    pub fn empty(kind: &str) -> StepResult {
        StepRecord::default().result(kind, &BreakRule::default())
    }
}

/// When a rate counts as broken: too many errors, too slow, or not kept up with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakRule {
    pub max_error_rate: f64,
    pub max_p99_ms: f64,
    pub min_achieved_ratio: f64,
}

impl Default for BreakRule {
    fn default() -> Self {
        BreakRule {
            max_error_rate: 0.01,
            max_p99_ms: 100.0,
            min_achieved_ratio: 0.95,
        }
    }
}

impl BreakRule {
    /// Every reason the step broke; empty when it is sustainable. A step with no answer at all breaks.
    pub fn reasons(
        &self,
        target_rate: f64,
        achieved_rate: f64,
        error_rate: f64,
        latency: &LatencySummary,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if error_rate > self.max_error_rate {
            out.push(format!(
                "error rate {:.2}% > {:.2}%",
                error_rate * 100.0,
                self.max_error_rate * 100.0
            ));
        }
        match latency.p99_ms {
            Some(p99) if p99 > self.max_p99_ms => {
                out.push(format!("p99 {p99:.1} ms > {:.0} ms", self.max_p99_ms))
            }
            Some(_) => {}
            None => out.push("no successful request".into()),
        }
        if achieved_rate < self.min_achieved_ratio * target_rate {
            out.push(format!(
                "achieved {achieved_rate:.1}/s < {:.0}% of {target_rate}/s",
                self.min_achieved_ratio * 100.0
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, ok: u64, errors: u64, latency_ms: u64, secs: u64) -> StepRecord {
        let mut s = StepRecord::new(rate);
        s.scheduled = Duration::from_secs(secs);
        s.elapsed = Duration::from_secs(secs);
        s.issued = ok + errors;
        s.ok = ok;
        s.runs = 1;
        for _ in 0..errors {
            s.error("http 503");
        }
        for _ in 0..ok {
            s.latency.record(Duration::from_millis(latency_ms));
        }
        s
    }

    #[test]
    fn a_step_that_keeps_up_fast_and_clean_is_sustainable() {
        let r = step(100.0, 1000, 5, 20, 10).result("raw", &BreakRule::default());
        assert!(r.sustainable, "{:?}", r.breaks);
        assert!((r.achieved_rate - 100.0).abs() < 0.01);
    }

    #[test]
    fn more_than_one_percent_errors_breaks_a_step() {
        let r = step(100.0, 980, 20, 20, 10).result("raw", &BreakRule::default());
        assert!(!r.sustainable);
        assert!(r.breaks[0].starts_with("error rate 2.00%"), "{:?}", r.breaks);
    }

    #[test]
    fn a_p99_over_100_ms_breaks_a_step() {
        let r = step(100.0, 1000, 0, 150, 10).result("api", &BreakRule::default());
        assert_eq!(r.breaks.len(), 1);
        assert!(r.breaks[0].starts_with("p99 15"), "{:?}", r.breaks);
    }

    #[test]
    fn falling_below_95_percent_of_the_target_rate_breaks_a_step() {
        let mut s = step(100.0, 1000, 0, 10, 10);
        s.elapsed = Duration::from_secs(11); // the backlog took a second to drain
        let r = s.result("raw", &BreakRule::default());
        assert!(!r.sustainable);
        assert!(r.breaks[0].starts_with("achieved 90.9/s"), "{:?}", r.breaks);
    }

    #[test]
    fn a_step_without_any_success_breaks() {
        let r = step(50.0, 0, 0, 0, 2).result("api", &BreakRule::default());
        assert!(r.breaks.iter().any(|b| b == "no successful request"));
    }

    #[test]
    fn merged_runs_add_their_counts_and_time() {
        let mut a = step(100.0, 1000, 0, 10, 10);
        a.merge(&step(100.0, 990, 10, 30, 10));
        assert_eq!((a.issued, a.ok, a.error_count(), a.runs), (2000, 1990, 10, 2));
        assert!((a.achieved_rate() - 99.5).abs() < 1e-9);
        assert_eq!(a.latency.count(), 1990);
    }
}
