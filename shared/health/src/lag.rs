//! Consumer lag judged by its trend, after LinkedIn Burrow, and lag converted to seconds. Pure: `now` is passed in.
//!
//! # Why a trend and not a threshold
//! The same offset lag is 50 ms for one group and minutes for another, and it changes with traffic.
//! Burrow instead looks at the last N commits of a partition and asks whether the consumer is moving.
//!
//! # Burrow's rules, and how they map to sampled data
//! Burrow reads every commit from `__consumer_offsets`, so its window holds *commits*, each with the
//! commit time and the lag at that moment. We poll instead: every sample is what the admin API said at
//! `sampled_at` (committed offset and log-end offset), so a sample is not a commit and repeated samples
//! of the same offset do not tell whether the consumer re-committed it. The caller may add
//! `last_commit_at` when it knows it (the worker knows when it last stored offsets; an outside
//! observer usually does not). With `lag = max(0, log_end - committed)` per sample, oldest first:
//!
//! 1. **OK** if the lag is 0 in any sample, the newest included (the consumer caught up recently).
//! 2. **REWIND** if a committed offset is lower than the one before it (a reset or a replay).
//!
//!    The remaining rules need evidence: at least two samples spanning at least `min_span`
//!    (Burrow only spaces commits by a minimum distance; two polls a second apart prove nothing).
//!    Too little evidence is **OK**.
//! 3. **STOP**, Burrow: "time since the last commit is longer than the window's span". With
//!    `last_commit_at` known: `now - last_commit_at > newest.sampled_at - oldest.sampled_at`.
//!    Without it the last commit is only known to be no later than the first sample showing the
//!    current offset; if the committed offset did not change across the whole window, the consumer
//!    made no visible progress for the whole span while data waits: STOP. So a dead consumer under
//!    a growing log end is STOP whether or not commit times are known.
//! 4. **STALL**, Burrow: "all offsets in the window are equal" while the consumer keeps committing.
//!    Only distinguishable from STOP with `last_commit_at`: the offset did not move across the
//!    window, yet the last commit is recent (a consumer alive but stuck, e.g. on a poison record
//!    it keeps retrying).
//! 5. **WARN** if the lag never decreased from one sample to the next across the window (the
//!    consumer moves, but slower than producers).
//! 6. Otherwise **OK**.
//!
//! A group's status is its worst partition's; STOP, STALL and REWIND are errors (Burrow's ERR).
//!
//! # Backlog is not death
//! Health follows progress, not size: a consumer behind but moving (OK or WARN with records
//! waiting, or REWIND, a replay it is working through) warns however long its lag in seconds;
//! only no progress (STALL, STOP) fails. A readiness that failed on backlog alone would take a busy
//! region out of rotation and push its load onto the others: `lag_health` is the one rule.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::report::Status;

pub const DEFAULT_CAPACITY: usize = 10;
pub const DEFAULT_MIN_SPAN: Duration = Duration::from_secs(10);

/// One poll of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    pub committed_offset: i64,
    pub log_end_offset: i64,
    pub sampled_at: DateTime<Utc>,
    /// Lag in seconds as the caller measured it (see `lag_seconds_since`, `interpolated_lag_seconds`);
    /// carried for reporting, the rules above use offsets.
    pub lag_seconds: f64,
    /// When the consumer last committed this partition, if the caller knows.
    pub last_commit_at: Option<DateTime<Utc>>,
}

impl LagSample {
    /// Offsets waiting to be consumed; never negative (the two offsets are read at slightly different moments).
    pub fn lag(&self) -> i64 {
        self.log_end_offset.saturating_sub(self.committed_offset).max(0)
    }
}

/// Ordered from healthy to worst, so `max` gives a group's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LagStatus {
    Ok,
    Warn,
    Rewind,
    Stall,
    Stop,
}

impl LagStatus {
    /// Burrow reports these three as ERR.
    pub fn is_error(self) -> bool {
        matches!(self, LagStatus::Rewind | LagStatus::Stall | LagStatus::Stop)
    }

    /// The trend alone as health: only no progress fails (see "Backlog is not death").
    pub fn health_status(self) -> Status {
        match self {
            LagStatus::Ok => Status::Pass,
            LagStatus::Warn | LagStatus::Rewind => Status::Warn,
            LagStatus::Stall | LagStatus::Stop => Status::Fail,
        }
    }
}

/// A group's health from its trend and from its lag in seconds judged against the thresholds
/// (`by_seconds`): the seconds can make a consumer that moves warn, never fail; only the trend
/// (STALL, STOP) fails.
pub fn lag_health(trend: LagStatus, by_seconds: Status) -> Status {
    trend.health_status().max(by_seconds.min(Status::Warn))
}

#[derive(Debug, thiserror::Error)]
pub enum LagError {
    #[error("sample taken at {sampled_at} is not after the newest one, taken at {newest}")]
    OutOfOrder {
        sampled_at: DateTime<Utc>,
        newest: DateTime<Utc>,
    },
}

/// The last `capacity` samples of one partition.
#[derive(Debug, Clone)]
pub struct PartitionWindow {
    capacity: usize,
    min_span: TimeDelta,
    samples: VecDeque<LagSample>,
}

impl Default for PartitionWindow {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY, DEFAULT_MIN_SPAN)
    }
}

impl PartitionWindow {
    /// `capacity` is raised to 2, the least that shows a trend.
    pub fn new(capacity: usize, min_span: Duration) -> Self {
        let capacity = capacity.max(2);
        Self {
            capacity,
            min_span: TimeDelta::from_std(min_span).unwrap_or(TimeDelta::MAX),
            samples: VecDeque::with_capacity(capacity),
        }
    }

    /// Appends a sample, dropping the oldest when full. Samples must arrive in time order, or
    /// "lag never decreased" and "offset went backwards" would compare the wrong neighbours.
    pub fn push(&mut self, sample: LagSample) -> Result<(), LagError> {
        if let Some(newest) = self.samples.back()
            && sample.sampled_at <= newest.sampled_at
        {
            return Err(LagError::OutOfOrder {
                sampled_at: sample.sampled_at,
                newest: newest.sampled_at,
            });
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        Ok(())
    }

    pub fn samples(&self) -> impl Iterator<Item = &LagSample> {
        self.samples.iter()
    }

    pub fn latest(&self) -> Option<&LagSample> {
        self.samples.back()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Time between the oldest and the newest sample.
    pub fn span(&self) -> TimeDelta {
        match (self.samples.front(), self.samples.back()) {
            (Some(oldest), Some(newest)) => newest.sampled_at - oldest.sampled_at,
            _ => TimeDelta::zero(),
        }
    }
}

/// Applies the rules of the module documentation, in order. An empty window is OK: nothing is known.
pub fn evaluate(window: &PartitionWindow, now: DateTime<Utc>) -> LagStatus {
    let samples = &window.samples;
    let Some(newest) = samples.back() else {
        return LagStatus::Ok;
    };
    let pairs = || samples.iter().zip(samples.iter().skip(1));

    if samples.iter().any(|sample| sample.lag() == 0) {
        return LagStatus::Ok;
    }
    if pairs().any(|(before, after)| after.committed_offset < before.committed_offset) {
        return LagStatus::Rewind;
    }
    let span = window.span();
    if samples.len() < 2 || span < window.min_span {
        return LagStatus::Ok;
    }
    let unchanged = samples
        .iter()
        .all(|sample| sample.committed_offset == newest.committed_offset);
    let stopped = match newest.last_commit_at {
        Some(last_commit_at) => now - last_commit_at > span,
        None => unchanged,
    };
    if stopped {
        return LagStatus::Stop;
    }
    if unchanged {
        return LagStatus::Stall;
    }
    if pairs().all(|(before, after)| after.lag() >= before.lag()) {
        return LagStatus::Warn;
    }
    LagStatus::Ok
}

/// A group is as healthy as its worst partition; a group without partitions is OK.
pub fn group_status(partitions: impl IntoIterator<Item = LagStatus>) -> LagStatus {
    partitions.into_iter().max().unwrap_or(LagStatus::Ok)
}

/// Lag in seconds from the timestamp of the record at the committed offset (the next one the group
/// will read): how long it has waited. `None` means there is no such record yet: caught up, 0.
/// Clamped at 0 because producer and observer clocks may disagree slightly.
pub fn lag_seconds_since(next_record_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    next_record_at.map_or(0.0, |at| seconds(now - at).max(0.0))
}

/// Lag in seconds without reading records, as kafka-lag-exporter does: `points` are
/// `(log_end_offset, wall_time)` polls in time order. The record at `committed_offset` appeared
/// between the last poll whose log end was at or below it and the next poll; its time is
/// interpolated linearly on that segment. Older than every poll: extrapolated at the table's
/// average produce rate, never less than the age of the oldest poll. `None` without points.
pub fn interpolated_lag_seconds(
    committed_offset: i64,
    points: &[(i64, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Option<f64> {
    let &(newest_offset, newest_at) = points.last()?;
    if committed_offset >= newest_offset {
        return Some(0.0);
    }
    let lag = match points.iter().rposition(|&(offset, _)| offset <= committed_offset) {
        Some(index) => {
            // `index` is not the last point (that one is above the committed offset), and the next
            // point is above it too, so the segment is not flat.
            let (from_offset, from_at) = points[index];
            let (to_offset, to_at) = points[index + 1];
            let fraction =
                (committed_offset as f64 - from_offset as f64) / (to_offset as f64 - from_offset as f64);
            seconds(now - from_at) - fraction * seconds(to_at - from_at)
        }
        None => {
            let (oldest_offset, oldest_at) = points[0];
            let at_least = seconds(now - oldest_at);
            let rate = (newest_offset as f64 - oldest_offset as f64) / seconds(newest_at - oldest_at);
            if rate.is_finite() && rate > 0.0 {
                at_least + (oldest_offset as f64 - committed_offset as f64) / rate
            } else {
                at_least
            }
        }
    };
    Some(lag.max(0.0))
}

fn seconds(delta: TimeDelta) -> f64 {
    delta.num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests;
