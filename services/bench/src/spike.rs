//! The pure parts of `launch` and `overload`: every attempt's answer labelled and tallied, the shed
//! answers (503 and 429) and whether they said when to come back, units sold beyond stock, and how
//! long after a spike latency and lag were back to normal.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::stats::{Latencies, LatencySummary};

/// One placement attempt as the bench saw it. Times are seconds from the start of the run; the
/// latency is from the attempt's intended start (open loop) to its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub edge: String,
    pub intended_s: f64,
    pub latency_ms: f64,
    /// HTTP status, `None` when no answer came.
    pub status: Option<u16>,
    /// `label(...)`: "201", "409 /problems/sold-out", "503 with Retry-After", "http: timeout".
    pub label: String,
    pub retry_after: bool,
    pub order_id: Option<Uuid>,
    /// For an accepted launch order: what polling it found.
    pub outcome: Option<Outcome>,
}

/// Where an accepted order ended, as `GET /v1/orders/{id}` showed it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `confirmed`, `rejected`, `cancelled`, or the last status seen when polling gave up.
    pub status: String,
    pub origin_region: Option<String>,
    /// From the placement's intended start to the poll that showed the final status.
    pub known_ms: Option<f64>,
    pub polls: u32,
    pub poll_errors: u32,
}

pub const FINAL_STATUSES: [&str; 3] = ["confirmed", "rejected", "cancelled"];

impl Outcome {
    pub fn is_final(&self) -> bool {
        FINAL_STATUSES.contains(&self.status.as_str())
    }
}

impl Attempt {
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// Refused at placement: any HTTP answer that is not a success.
    pub fn refused(&self) -> bool {
        self.status.is_some_and(|s| s >= 300)
    }

    pub fn shed(&self) -> bool {
        self.status.is_some_and(is_shed)
    }

    /// When the buyer knew the outcome: at once for a refusal, at the poll that showed the final
    /// status for an acceptance; `None` while unknown (no answer, or polling gave up).
    pub fn outcome_known_ms(&self) -> Option<f64> {
        if self.refused() {
            return Some(self.latency_ms);
        }
        self.outcome.as_ref().and_then(|o| o.known_ms)
    }
}

/// 503 (overloaded) and 429 (over the key's rate): answers that say "not now".
pub fn is_shed(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// A short label for tables: the status, and what distinguishes answers of the same status.
pub fn label(
    status: Option<u16>,
    transport: Option<&str>,
    retry_after: bool,
    problem_type: Option<&str>,
) -> String {
    match status {
        None => transport.unwrap_or("http: transport").to_string(),
        Some(s) if is_shed(s) && retry_after => format!("{s} with Retry-After"),
        Some(s) if is_shed(s) => format!("{s} without Retry-After"),
        Some(s) if s >= 400 => match problem_type {
            Some(t) => format!("{s} {t}"),
            None => s.to_string(),
        },
        Some(s) => s.to_string(),
    }
}

/// Answers the overload target allows: a success, a 429, or a 503 that says when to come back.
pub fn allowed_under_overload(a: &Attempt) -> bool {
    match a.status {
        Some(s) if (200..300).contains(&s) => true,
        Some(429) => true,
        Some(503) => a.retry_after,
        _ => false,
    }
}

/// Count of attempts per label.
pub fn tally<'a>(attempts: impl IntoIterator<Item = &'a Attempt>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for a in attempts {
        *out.entry(a.label.clone()).or_default() += 1;
    }
    out
}

/// Latency percentiles of the attempts that pass `keep`.
pub fn latency<'a>(
    attempts: impl IntoIterator<Item = &'a Attempt>,
    keep: impl Fn(&Attempt) -> bool,
) -> LatencySummary {
    let mut l = Latencies::default();
    for a in attempts.into_iter().filter(|a| keep(a)) {
        l.record(Duration::from_secs_f64(a.latency_ms.max(0.0) / 1000.0));
    }
    l.summary()
}

/// Percentiles of the time to a known outcome of the attempts that pass `keep` and have one.
pub fn outcome_latency<'a>(
    attempts: impl IntoIterator<Item = &'a Attempt>,
    keep: impl Fn(&Attempt) -> bool,
) -> LatencySummary {
    let mut l = Latencies::default();
    for ms in attempts
        .into_iter()
        .filter(|a| keep(a))
        .filter_map(Attempt::outcome_known_ms)
    {
        l.record(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    l.summary()
}

/// The shed answers of a set of attempts: how many, how fast, and how many said when to retry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Shed {
    pub count: u64,
    pub with_retry_after: u64,
    pub without_retry_after: u64,
    pub latency: LatencySummary,
}

pub fn shed<'a>(attempts: impl IntoIterator<Item = &'a Attempt> + Clone) -> Shed {
    let mut s = Shed {
        latency: latency(attempts.clone(), Attempt::shed),
        ..Shed::default()
    };
    for a in attempts.into_iter().filter(|a| a.shed()) {
        s.count += 1;
        if a.retry_after {
            s.with_retry_after += 1;
        } else {
            s.without_retry_after += 1;
        }
    }
    s
}

/// `total` units split over `regions` as evenly as whole units allow, the first regions taking
/// the remainder (100 over two regions: 50 each, as the seed catalog has it).
pub fn split_stock(total: u64, regions: usize) -> Vec<u64> {
    if regions == 0 {
        return Vec::new();
    }
    let (each, rest) = (total / regions as u64, total % regions as u64);
    (0..regions as u64).map(|i| each + u64::from(i < rest)).collect()
}

/// Units sold beyond the stock set in one region, by every evidence there is: confirmed orders,
/// reservations held in the stock table, and an `available` count below zero.
pub fn oversold(stock: u64, confirmed: u64, held: Option<u64>, available_after: Option<i64>) -> u64 {
    let beyond = |n: u64| n.saturating_sub(stock);
    let negative = available_after.map_or(0, |a| a.min(0).unsigned_abs());
    beyond(confirmed).max(held.map_or(0, beyond)).max(negative)
}

/// A measurement at time `t_s` (seconds from the start) and whether it was normal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub normal: bool,
}

/// Seconds after `from_s` (the end of a spike) from which every later sample was normal:
/// 0 when none after `from_s` was abnormal, `None` when the last one still was (or there is none).
pub fn back_to_normal(samples: &[Sample], from_s: f64) -> Option<f64> {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= from_s).collect();
    let last = after.last()?;
    if !last.normal {
        return None;
    }
    match after.iter().rposition(|s| !s.normal) {
        None => Some(0.0),
        Some(i) => Some(after[i + 1].t_s - from_s),
    }
}

/// Accepted placements' p99 per one-second window of intended start, and whether each window was
/// normal (p99 at most `threshold_ms`). A window whose attempts were all refused or unanswered is
/// not normal: nothing there was served.
pub fn latency_windows(attempts: &[Attempt], threshold_ms: f64) -> Vec<Window> {
    let mut by_second: BTreeMap<i64, (Latencies, u64)> = BTreeMap::new();
    for a in attempts {
        let entry = by_second.entry(a.intended_s.floor() as i64).or_default();
        entry.1 += 1;
        if a.accepted() {
            entry
                .0
                .record(Duration::from_secs_f64(a.latency_ms.max(0.0) / 1000.0));
        }
    }
    by_second
        .into_iter()
        .map(|(second, (l, attempts))| {
            let s = l.summary();
            Window {
                second,
                attempts,
                accepted: s.count,
                p99_ms: s.p99_ms,
                normal: s.p99_ms.is_some_and(|p| p <= threshold_ms),
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub second: i64,
    pub attempts: u64,
    pub accepted: u64,
    pub p99_ms: Option<f64>,
    pub normal: bool,
}

impl Window {
    pub fn sample(&self) -> Sample {
        Sample {
            t_s: self.second as f64,
            normal: self.normal,
        }
    }
}

/// `a / b`, when both are there and `b` is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(intended_s: f64, latency_ms: f64, status: Option<u16>, retry_after: bool) -> Attempt {
        Attempt {
            edge: "eu".into(),
            intended_s,
            latency_ms,
            status,
            label: label(status, Some("http: timeout"), retry_after, None),
            retry_after,
            order_id: None,
            outcome: None,
        }
    }

    #[test]
    fn answers_are_labelled_by_status_retry_after_and_problem_type() {
        assert_eq!(label(Some(201), None, false, None), "201");
        assert_eq!(label(Some(503), None, true, None), "503 with Retry-After");
        assert_eq!(label(Some(429), None, false, None), "429 without Retry-After");
        assert_eq!(
            label(Some(409), None, false, Some("/problems/sold-out")),
            "409 /problems/sold-out"
        );
        assert_eq!(label(Some(500), None, true, None), "500");
        assert_eq!(label(None, Some("http: timeout"), false, None), "http: timeout");
    }

    #[test]
    fn statuses_are_tallied_per_label() {
        let attempts = [
            attempt(0.0, 5.0, Some(201), false),
            attempt(0.1, 5.0, Some(201), false),
            attempt(0.2, 1.0, Some(503), true),
            attempt(0.3, 5000.0, None, false),
        ];
        let t = tally(&attempts);
        assert_eq!(t.get("201"), Some(&2));
        assert_eq!(t.get("503 with Retry-After"), Some(&1));
        assert_eq!(t.get("http: timeout"), Some(&1));
        assert_eq!(t.values().sum::<u64>(), 4);
    }

    #[test]
    fn only_successes_429s_and_503s_with_retry_after_are_allowed_under_overload() {
        assert!(allowed_under_overload(&attempt(0.0, 1.0, Some(201), false)));
        assert!(allowed_under_overload(&attempt(0.0, 1.0, Some(429), false)));
        assert!(allowed_under_overload(&attempt(0.0, 1.0, Some(503), true)));
        assert!(!allowed_under_overload(&attempt(0.0, 1.0, Some(503), false)));
        assert!(!allowed_under_overload(&attempt(0.0, 1.0, Some(500), true)));
        assert!(!allowed_under_overload(&attempt(0.0, 1.0, None, false)));
    }

    #[test]
    fn shed_answers_are_counted_with_and_without_retry_after() {
        let attempts = [
            attempt(0.0, 2.0, Some(503), true),
            attempt(0.0, 4.0, Some(429), true),
            attempt(0.0, 8.0, Some(503), false),
            attempt(0.0, 900.0, Some(201), false),
        ];
        let s = shed(&attempts);
        assert_eq!((s.count, s.with_retry_after, s.without_retry_after), (3, 2, 1));
        assert!(s.latency.max_ms.unwrap() < 9.0);
    }

    #[test]
    fn a_refusal_is_an_outcome_known_at_once_an_acceptance_when_polling_saw_it_final() {
        let refused = attempt(0.0, 12.0, Some(409), false);
        assert_eq!(refused.outcome_known_ms(), Some(12.0));
        let mut accepted = attempt(0.0, 30.0, Some(201), false);
        assert_eq!(accepted.outcome_known_ms(), None);
        accepted.outcome = Some(Outcome {
            status: "confirmed".into(),
            origin_region: Some("eu".into()),
            known_ms: Some(640.0),
            polls: 4,
            poll_errors: 0,
        });
        assert_eq!(accepted.outcome_known_ms(), Some(640.0));
        assert_eq!(attempt(0.0, 5000.0, None, false).outcome_known_ms(), None);
        let both = [refused, accepted];
        let s = outcome_latency(&both, Attempt::accepted);
        assert_eq!(s.count, 1);
        assert!(
            s.max_ms.unwrap() > 600.0,
            "the outcome's time, not the placement's: {s:?}"
        );
        assert_eq!(outcome_latency(&both, |_| true).count, 2);
    }

    #[test]
    fn stock_is_split_evenly_the_first_regions_taking_the_remainder() {
        assert_eq!(split_stock(100, 2), vec![50, 50]);
        assert_eq!(split_stock(101, 2), vec![51, 50]);
        assert_eq!(split_stock(7, 3), vec![3, 2, 2]);
        assert!(split_stock(10, 0).is_empty());
    }

    #[test]
    fn nothing_is_oversold_when_sales_stay_within_stock() {
        assert_eq!(oversold(50, 50, Some(50), Some(0)), 0);
        assert_eq!(oversold(50, 12, None, None), 0);
    }

    #[test]
    fn any_evidence_of_selling_beyond_stock_counts_as_oversold() {
        assert_eq!(oversold(50, 53, Some(50), Some(0)), 3, "confirmed orders");
        assert_eq!(oversold(50, 50, Some(52), Some(0)), 2, "reservations held");
        assert_eq!(oversold(50, 50, Some(50), Some(-4)), 4, "available below zero");
    }

    fn samples(normal: &[bool]) -> Vec<Sample> {
        normal
            .iter()
            .enumerate()
            .map(|(i, n)| Sample {
                t_s: i as f64,
                normal: *n,
            })
            .collect()
    }

    #[test]
    fn back_to_normal_is_the_first_second_after_which_everything_stays_normal() {
        // Spike ends at 3 s; 3 and 4 still slow, 5 normal, 6 slow again, normal from 7 on.
        let s = samples(&[true, false, false, false, false, true, false, true, true, true]);
        assert_eq!(back_to_normal(&s, 3.0), Some(4.0));
    }

    #[test]
    fn a_run_normal_right_after_the_spike_recovers_in_zero_seconds() {
        let s = samples(&[true, false, false, true, true]);
        assert_eq!(back_to_normal(&s, 3.0), Some(0.0));
    }

    #[test]
    fn a_run_still_abnormal_at_its_end_never_recovered() {
        let s = samples(&[true, false, true, false]);
        assert_eq!(back_to_normal(&s, 1.0), None);
        assert_eq!(back_to_normal(&s, 9.0), None, "no sample after the spike");
    }

    #[test]
    fn latency_windows_judge_accepted_answers_and_count_an_all_refused_second_as_abnormal() {
        let attempts = [
            attempt(0.1, 10.0, Some(201), false),
            attempt(0.5, 12.0, Some(201), false),
            attempt(1.2, 300.0, Some(201), false),
            attempt(2.0, 1.0, Some(503), true),
            attempt(3.9, 11.0, Some(201), false),
        ];
        let w = latency_windows(&attempts, 20.0);
        let normal: Vec<(i64, bool)> = w.iter().map(|w| (w.second, w.normal)).collect();
        assert_eq!(normal, vec![(0, true), (1, false), (2, false), (3, true)]);
        assert_eq!((w[2].attempts, w[2].accepted), (1, 0));
        let samples: Vec<Sample> = w.iter().map(Window::sample).collect();
        assert_eq!(back_to_normal(&samples, 1.0), Some(2.0));
    }

    #[test]
    fn ratios_need_both_figures_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(6.0), Some(3.0)), Some(2.0));
        assert_eq!(ratio(Some(6.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(3.0)), None);
    }
}
