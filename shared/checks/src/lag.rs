//! `worker:consumerLag`: a worker group's lag in seconds and its Burrow-style trend, read from
//! outside the group (committed offsets against log ends and record timestamps), so a dead or
//! stuck worker still shows.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_health::lag::{
    LagSample, LagStatus, PartitionWindow, evaluate, group_status, lag_health, lag_seconds_since,
};
use orders_health::{ComponentType, HealthChecks, Status};

use crate::{RegisterError, Thresholds};

/// Samples every 2 s; a window of 10 samples spans 18 s, enough to tell a stop from a pause.
const EVERY: Duration = Duration::from_secs(2);

/// Registers the check. A worker behind but moving warns, only no progress fails (`lag_health`).
/// With `outside_view` (another service watching the worker group) the status is capped at warn
/// even then: a stuck worker must not take the watcher, an API that still places orders, out of
/// rotation. Positions that cannot be read (Kafka down) fail: that is a dead dependency.
pub fn consumer_lag(
    checks: &HealthChecks,
    thresholds: &Thresholds,
    bootstrap: &str,
    group: &str,
    topics: Vec<String>,
    outside_view: bool,
) -> Result<(), RegisterError> {
    let key = "worker:consumerLag";
    let judge = thresholds.judge(key);
    let windows: Arc<Mutex<HashMap<(String, i32), PartitionWindow>>> = Arc::default();
    let (bootstrap, group) = (bootstrap.to_string(), group.to_string());
    checks.register(key, EVERY, Duration::from_secs(5), move || {
        let (bootstrap, group, topics, judge, windows) = (
            bootstrap.clone(),
            group.clone(),
            topics.clone(),
            judge.clone(),
            windows.clone(),
        );
        async move {
            let positions = match orders_log::lag::group_positions(
                &bootstrap,
                &group,
                &topics,
                Duration::from_millis(1500),
            )
            .await
            {
                Ok(p) => p,
                Err(e) => return vec![judge.failed(format!("cannot read the positions of {group}: {e}"))],
            };
            let now = Utc::now();
            let mut windows = windows.lock().expect("lag windows lock");
            let mut lag_seconds = 0.0_f64;
            let mut statuses = Vec::new();
            for p in &positions {
                let next_at = p.next_record_ms.and_then(DateTime::<Utc>::from_timestamp_millis);
                let seconds = lag_seconds_since(next_at, now);
                lag_seconds = lag_seconds.max(seconds);
                let window = windows
                    .entry((p.topic.clone(), p.partition))
                    .or_insert_with(|| PartitionWindow::new(10, Duration::from_secs(10)));
                let _ = window.push(LagSample {
                    committed_offset: p.committed,
                    log_end_offset: p.log_end,
                    sampled_at: now,
                    lag_seconds: seconds,
                    last_commit_at: None,
                });
                statuses.push(evaluate(window, now));
            }
            let trend = group_status(statuses);
            let mut check = judge.observe((lag_seconds * 1000.0).round() / 1000.0);
            // Backlog is not death: the seconds warn at most, only no progress fails.
            check.status = lag_health(trend, check.status);
            if outside_view && check.status == Status::Fail {
                check.status = Status::Warn;
            }
            let waiting: i64 = positions.iter().map(|p| (p.log_end - p.committed).max(0)).sum();
            let output = format!("burrow: {}; {waiting} records waiting", trend_name(trend));
            vec![
                check
                    .with_output(output)
                    .with_component_id(group)
                    .with_component_type(ComponentType::Component),
            ]
        }
    })
}

fn trend_name(s: LagStatus) -> &'static str {
    match s {
        LagStatus::Ok => "OK",
        LagStatus::Warn => "WARN",
        LagStatus::Rewind => "REWIND",
        LagStatus::Stall => "STALL",
        LagStatus::Stop => "STOP",
    }
}
