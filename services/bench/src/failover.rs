//! The pure side of a drill: what the attempts through one edge say about the failover, and what
//! the regions' copies of an order say about loss, doubled effects and convergence.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::e2e::FINAL_EVENTS;

/// One placement attempted through an edge; times in seconds from the start of the drill.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub edge: String,
    pub issued_s: f64,
    pub done_s: f64,
    pub error: Option<String>,
    pub order_id: Option<Uuid>,
    pub served_by: Option<String>,
}

impl Attempt {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeSummary {
    pub edge: String,
    pub attempts: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// From the fault to the acknowledgement of the first placement issued after it that succeeded.
    pub rto_s: Option<f64>,
    /// Placements issued between the fault and that first acknowledgement.
    pub failover_attempts: u64,
    pub failover_errors: u64,
    pub failover_error_rate: f64,
    pub errors_after_fault: u64,
    /// The longest time between two consecutive acknowledgements.
    pub longest_gap_s: f64,
    pub served_by: BTreeMap<String, u64>,
    /// `[second, ok, errors]` by the second the placement was issued in.
    pub per_second: Vec<[u64; 3]>,
}

pub fn summarize(edge: &str, attempts: &[Attempt], fault_s: f64) -> EdgeSummary {
    let mut s = EdgeSummary {
        edge: edge.to_string(),
        ..EdgeSummary::default()
    };
    let mut per_second: BTreeMap<u64, [u64; 3]> = BTreeMap::new();
    for a in attempts {
        s.attempts += 1;
        let sec = a.issued_s.max(0.0).floor() as u64;
        let slot = per_second.entry(sec).or_insert([sec, 0, 0]);
        match &a.error {
            None => {
                s.ok += 1;
                slot[1] += 1;
                if let Some(by) = &a.served_by {
                    *s.served_by.entry(by.clone()).or_default() += 1;
                }
            }
            Some(kind) => {
                s.errors += 1;
                slot[2] += 1;
                *s.error_kinds.entry(kind.clone()).or_default() += 1;
                if a.issued_s >= fault_s {
                    s.errors_after_fault += 1;
                }
            }
        }
    }
    s.per_second = per_second.into_values().collect();
    let first_success = attempts
        .iter()
        .filter(|a| a.ok() && a.issued_s >= fault_s)
        .min_by(|a, b| a.done_s.total_cmp(&b.done_s));
    s.rto_s = first_success.map(|a| a.done_s - fault_s);
    let window_end = first_success.map_or(f64::INFINITY, |a| a.done_s);
    for a in attempts
        .iter()
        .filter(|a| a.issued_s >= fault_s && a.issued_s <= window_end)
    {
        s.failover_attempts += 1;
        if !a.ok() {
            s.failover_errors += 1;
        }
    }
    if s.failover_attempts > 0 {
        s.failover_error_rate = s.failover_errors as f64 / s.failover_attempts as f64;
    }
    let mut acks: Vec<f64> = attempts.iter().filter(|a| a.ok()).map(|a| a.done_s).collect();
    acks.sort_by(f64::total_cmp);
    s.longest_gap_s = acks.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    s
}

/// One region's answer for an order's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Fetched {
    Events(Vec<Value>),
    NotFound,
    Failed(String),
}

fn event_type(e: &Value) -> &str {
    e["type"]
        .as_str()
        .or_else(|| e["payload"]["type"].as_str())
        .unwrap_or("")
}

/// How many times an event type occurs in an event list.
pub fn count_type(events: &[Value], name: &str) -> usize {
    events.iter().filter(|e| event_type(e) == name).count()
}

/// Identical event lists in every region, ending in a final event.
pub fn converged(views: &[Fetched]) -> bool {
    let Some(Fetched::Events(first)) = views.first() else {
        return false;
    };
    let ends_final = first
        .last()
        .is_some_and(|e| FINAL_EVENTS.contains(&event_type(e)));
    ends_final && views.iter().all(|v| v == &views[0])
}

/// Not found in any region.
pub fn lost(views: &[Fetched]) -> bool {
    !views.is_empty() && views.iter().all(|v| *v == Fetched::NotFound)
}

/// A stock reservation or payment authorization recorded more than once in some region's stream.
pub fn doubled_in_stream(views: &[Fetched]) -> bool {
    views.iter().any(|v| match v {
        Fetched::Events(events) => {
            count_type(events, "StockReserved") > 1 || count_type(events, "PaymentAuthorized") > 1
        }
        _ => false,
    })
}

/// The recovery point: how many acknowledged orders were lost and how far before the fault the
/// oldest of them was acknowledged (0 when none was, or all were acknowledged after the fault).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rpo {
    pub orders: u64,
    pub seconds: f64,
    /// First and last acknowledgement of a lost order, seconds from the start of the drill.
    pub acknowledged_between_s: Option<(f64, f64)>,
}

pub fn rpo(lost_ack_s: &[f64], fault_s: f64) -> Rpo {
    let first = lost_ack_s.iter().copied().fold(f64::INFINITY, f64::min);
    let last = lost_ack_s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lost_ack_s.is_empty() {
        return Rpo::default();
    }
    Rpo {
        orders: lost_ack_s.len() as u64,
        seconds: (fault_s - first).max(0.0),
        acknowledged_between_s: Some((first, last)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attempt(issued_s: f64, done_s: f64, ok: bool) -> Attempt {
        Attempt {
            edge: "eu".into(),
            issued_s,
            done_s,
            error: (!ok).then(|| "http 503".to_string()),
            order_id: ok.then(Uuid::new_v4),
            served_by: ok.then(|| if issued_s < 10.0 { "api-eu" } else { "api-us" }.to_string()),
        }
    }

    #[test]
    fn the_rto_runs_from_the_fault_to_the_first_success_issued_after_it() {
        let attempts = vec![
            attempt(9.0, 9.1, true),
            attempt(9.9, 10.6, true), // issued before the fault: does not count as recovery
            attempt(10.2, 12.0, false),
            attempt(11.0, 13.0, false),
            attempt(12.0, 14.5, true),
            attempt(13.0, 13.2, true),
        ];
        let s = summarize("eu", &attempts, 10.0);
        assert!((s.rto_s.unwrap() - 3.2).abs() < 1e-9, "{:?}", s.rto_s);
        assert_eq!((s.failover_attempts, s.failover_errors), (4, 2));
        assert!((s.failover_error_rate - 0.5).abs() < 1e-9);
        assert_eq!((s.attempts, s.ok, s.errors, s.errors_after_fault), (6, 4, 2, 2));
        assert!((s.longest_gap_s - 2.6).abs() < 1e-9, "{}", s.longest_gap_s);
        assert_eq!(s.served_by.get("api-us"), Some(&2));
        assert_eq!(s.per_second[0], [9, 2, 0]);
    }

    #[test]
    fn an_edge_that_never_recovers_has_no_rto_and_every_later_attempt_in_its_failover() {
        let attempts = vec![
            attempt(1.0, 1.1, true),
            attempt(5.0, 6.0, false),
            attempt(6.0, 7.0, false),
        ];
        let s = summarize("eu", &attempts, 2.0);
        assert_eq!(s.rto_s, None);
        assert_eq!((s.failover_attempts, s.failover_errors), (2, 2));
    }

    #[test]
    fn an_order_converges_when_every_region_has_the_same_events_ending_final() {
        let events = vec![json!({"type": "OrderPlaced"}), json!({"type": "OrderConfirmed"})];
        let same = vec![Fetched::Events(events.clone()), Fetched::Events(events.clone())];
        assert!(converged(&same));
        let behind = vec![
            Fetched::Events(events.clone()),
            Fetched::Events(events[..1].to_vec()),
        ];
        assert!(!converged(&behind));
        let unfinished = vec![
            Fetched::Events(events[..1].to_vec()),
            Fetched::Events(events[..1].to_vec()),
        ];
        assert!(!converged(&unfinished));
        assert!(!converged(&[
            Fetched::Events(events),
            Fetched::Failed("connect".into())
        ]));
    }

    #[test]
    fn an_order_is_lost_only_when_no_region_has_it() {
        assert!(lost(&[Fetched::NotFound, Fetched::NotFound]));
        assert!(!lost(&[Fetched::NotFound, Fetched::Failed("connect".into())]));
        assert!(!lost(&[]));
    }

    #[test]
    fn a_second_reservation_or_authorization_is_a_doubled_effect() {
        let once = vec![
            json!({"type": "StockReserved"}),
            json!({"payload": {"type": "PaymentAuthorized"}}),
        ];
        let mut twice = once.clone();
        twice.push(json!({"payload": {"type": "PaymentAuthorized"}}));
        assert!(!doubled_in_stream(&[
            Fetched::Events(once.clone()),
            Fetched::NotFound
        ]));
        assert!(doubled_in_stream(&[
            Fetched::Events(once),
            Fetched::Events(twice)
        ]));
    }

    #[test]
    fn the_rpo_reaches_back_to_the_oldest_lost_acknowledgement() {
        assert_eq!(rpo(&[], 20.0), Rpo::default());
        let r = rpo(&[19.5, 18.0, 19.9], 20.0);
        assert_eq!(r.orders, 3);
        assert!((r.seconds - 2.0).abs() < 1e-9);
        assert_eq!(r.acknowledged_between_s, Some((18.0, 19.9)));
    }
}
