//! Open-loop placements through one edge with every attempt recorded, answer and all: the driver
//! of `launch` and `overload`. An accepted launch order is then polled until it is final.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::api::ApiPlacer;
use crate::load::{self, Done, Limits, OpError};
use crate::schedule::Schedule;
use crate::spike::{Attempt, Outcome, label};
use crate::step::StepRecord;

pub type Sink = Arc<Mutex<Vec<Attempt>>>;

/// Polling an accepted order for its outcome: the first poll `first` after the answer, then every
/// fifth of the time waited so far (at least `first`, at most 1 s), so an outcome is timed to
/// within about 20 % without a long wait costing many requests; given up after `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    pub first: Duration,
    pub timeout: Duration,
}

/// One stream of placements.
#[derive(Clone)]
pub struct Offer {
    pub placer: ApiPlacer,
    /// The edge's region, recorded with each attempt.
    pub edge: String,
    pub rate: f64,
    pub duration: Duration,
    /// Starts this long after the run's `t0`.
    pub delay: Duration,
    pub poll: Option<Poll>,
}

/// Runs one offer to its end (outstanding attempts and their polls included, within
/// `limits.drain`), recording every attempt in `sink` with times from `t0`.
pub async fn run(offer: Offer, t0: Instant, limits: Limits, sink: Sink) -> StepRecord {
    tokio::time::sleep_until((t0 + offer.delay).into()).await;
    let Offer {
        placer,
        edge,
        rate,
        duration,
        poll,
        ..
    } = offer;
    load::run_timed(Schedule::new(rate, duration), limits, move |_, intended| {
        let (placer, edge, sink) = (placer.clone(), edge.clone(), sink.clone());
        async move {
            let answer = placer.attempt().await;
            let outcome = match (poll, answer.order_id) {
                (Some(p), Some(id)) => Some(poll_outcome(&placer, id, intended, p).await),
                _ => None,
            };
            let attempt = Attempt {
                edge,
                intended_s: intended.saturating_duration_since(t0).as_secs_f64(),
                latency_ms: ms(answer.at.saturating_duration_since(intended)),
                status: answer.status,
                label: label(
                    answer.status,
                    answer.transport,
                    answer.retry_after,
                    answer.problem_type.as_deref(),
                ),
                retry_after: answer.retry_after,
                order_id: answer.order_id,
                outcome,
            };
            let result = if attempt.accepted() {
                Ok(Done { ack: answer.at })
            } else {
                Err(OpError(attempt.label.clone()))
            };
            sink.lock().expect("attempts lock").push(attempt);
            result
        }
    })
    .await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn poll_outcome(placer: &ApiPlacer, id: Uuid, intended: Instant, poll: Poll) -> Outcome {
    let answered = Instant::now();
    let mut outcome = Outcome {
        status: "placed".into(),
        origin_region: None,
        known_ms: None,
        polls: 0,
        poll_errors: 0,
    };
    while answered.elapsed() < poll.timeout {
        let wait = (answered.elapsed() / 5).clamp(poll.first, Duration::from_secs(1).max(poll.first));
        tokio::time::sleep(wait).await;
        outcome.polls += 1;
        match placer.order_status(id).await {
            Ok((status, region)) => {
                outcome.status = status;
                outcome.origin_region = Some(region);
                if outcome.is_final() {
                    outcome.known_ms = Some(ms(intended.elapsed()));
                    break;
                }
            }
            Err(_) => outcome.poll_errors += 1,
        }
    }
    outcome
}
