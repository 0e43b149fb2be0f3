//! The open-loop driver: starts each operation at its intended time whatever the earlier ones are
//! doing, and measures from that intended time (see `schedule`).
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::schedule::Schedule;
use crate::step::StepRecord;

/// A finished operation: when a client would have had its acknowledgement. The driver takes the
/// end of the whole operation (which may include background work such as the Kafka produce) as
/// the moment the future completes.
#[derive(Debug, Clone, Copy)]
pub struct Done {
    pub ack: Instant,
}

/// A failed operation, labelled by a short, low-cardinality kind ("http 503", "cql: append").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError(pub String);

impl OpError {
    pub fn new(kind: impl Into<String>) -> Self {
        OpError(kind.into())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Operations outstanding at once; an operation due while this many are outstanding is not
    /// sent and counts as an error (the offered load stays what the schedule says).
    pub max_in_flight: usize,
    /// How long to wait for outstanding operations after the last one was due.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 4096,
            drain: Duration::from_secs(15),
        }
    }
}

/// Runs `op(i)` for every request of `schedule`, each at its intended start time.
pub async fn run<F, Fut>(schedule: Schedule, limits: Limits, op: F) -> StepRecord
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<Done, OpError>> + Send + 'static,
{
    run_timed(schedule, limits, |i, _| op(i)).await
}

/// As `run`, and `op` also gets the request's intended start, so it can time its own phases from
/// there (the launch crowd times the poll for its outcome from the placement's intended start).
pub async fn run_timed<F, Fut>(schedule: Schedule, limits: Limits, op: F) -> StepRecord
where
    F: Fn(u64, Instant) -> Fut,
    Fut: Future<Output = Result<Done, OpError>> + Send + 'static,
{
    let record = Arc::new(Mutex::new(StepRecord::new(schedule.rate())));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let last_end = Arc::new(Mutex::new(None::<Instant>));
    let mut tasks = JoinSet::new();
    let start = Instant::now() + Duration::from_millis(2);
    for (i, offset) in schedule.offsets().enumerate() {
        let intended = start + offset;
        tokio::time::sleep_until(tokio::time::Instant::from_std(intended)).await;
        while tasks.try_join_next().is_some() {}
        {
            let mut r = record.lock().expect("step lock");
            r.issued += 1;
            r.issue_lag
                .record(Instant::now().saturating_duration_since(intended));
            if in_flight.load(Ordering::Relaxed) >= limits.max_in_flight {
                r.error("client: in-flight limit reached");
                continue;
            }
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (record, in_flight, last_end) = (record.clone(), in_flight.clone(), last_end.clone());
        let fut = op(i as u64, intended);
        tasks.spawn(async move {
            let result = fut.await;
            let end = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let mut r = record.lock().expect("step lock");
            match result {
                Ok(done) => {
                    r.ok += 1;
                    r.latency.record(done.ack.saturating_duration_since(intended));
                    r.completion.record(end.saturating_duration_since(intended));
                }
                Err(OpError(kind)) => r.error(kind),
            }
            let mut last = last_end.lock().expect("end lock");
            *last = Some(last.map_or(end, |l: Instant| l.max(end)));
        });
    }
    let deadline = tokio::time::Instant::now() + limits.drain;
    while !tasks.is_empty() {
        if tokio::time::timeout_at(deadline, tasks.join_next())
            .await
            .is_err()
        {
            break;
        }
    }
    let abandoned = tasks.len();
    tasks.abort_all();
    let mut r = record.lock().expect("step lock").clone();
    for _ in 0..abandoned {
        r.error("client: no answer before the drain deadline");
    }
    let end = if abandoned > 0 {
        Some(deadline.into_std())
    } else {
        *last_end.lock().expect("end lock")
    };
    r.scheduled = schedule.duration();
    r.elapsed = end.map_or(schedule.duration(), |e| e.saturating_duration_since(start));
    r.runs = 1;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_scheduled_operation_is_issued_and_answered() {
        let schedule = Schedule::new(200.0, Duration::from_millis(250));
        let r = run(schedule, Limits::default(), |_| async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            Ok(Done { ack: Instant::now() })
        })
        .await;
        assert_eq!((r.issued, r.ok, r.error_count()), (50, 50, 0));
        assert!(r.latency.summary().p50_ms.unwrap() >= 2.0);
    }

    #[tokio::test]
    async fn a_stall_shows_as_latency_of_every_request_due_during_it() {
        // One request in ten stalls for 100 ms; the open loop keeps offering the others on time,
        // so only the stalled ones are slow, and nothing is silently not offered.
        let schedule = Schedule::new(100.0, Duration::from_millis(500));
        let r = run(schedule, Limits::default(), |i| async move {
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Done { ack: Instant::now() })
        })
        .await;
        assert_eq!(r.ok, 50);
        let s = r.latency.summary();
        assert!(s.p50_ms.unwrap() < 50.0, "{s:?}");
        assert!(s.p99_ms.unwrap() >= 100.0, "{s:?}");
    }

    #[tokio::test]
    async fn operations_over_the_in_flight_limit_count_as_errors() {
        let schedule = Schedule::new(1000.0, Duration::from_millis(20));
        let limits = Limits {
            max_in_flight: 5,
            drain: Duration::from_secs(5),
        };
        let r = run(schedule, limits, |_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(Done { ack: Instant::now() })
        })
        .await;
        assert_eq!(r.issued, 20);
        assert_eq!(r.ok, 5);
        assert_eq!(r.errors.get("client: in-flight limit reached"), Some(&15));
    }

    #[tokio::test]
    async fn operations_still_running_at_the_drain_deadline_are_errors() {
        let schedule = Schedule::new(10.0, Duration::from_millis(100));
        let limits = Limits {
            max_in_flight: 100,
            drain: Duration::from_millis(50),
        };
        let r = run(schedule, limits, |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Done { ack: Instant::now() })
        })
        .await;
        assert_eq!(r.ok, 0);
        assert_eq!(r.error_count(), 1);
    }
}
