//! The console's time series: what a scrape says, rates and percentiles from counter and bucket
//! deltas between two scrapes, and the bounded store the page reads. Pure: the poller passes time in.
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::prom::Sample;
use crate::ring::{Point, Ring};

/// The route and method whose requests are placements.
const PLACEMENT: (&str, &str) = ("/v1/orders", "POST");

/// One chart. The order here is the order on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    PlacementRate,
    ErrorRate,
    LatencyP50,
    LatencyP99,
    ConsumerLag,
    ReplicationFreshness,
    CrossDcLag,
    OutboxBacklog,
    DeadLetterRate,
    DeadLettered,
    AcceptedRate,
    ShedRate,
    RateLimitedRate,
    InFlight,
    OutcomeP50,
    OutcomeP99,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::PlacementRate,
        Kind::ErrorRate,
        Kind::LatencyP50,
        Kind::LatencyP99,
        Kind::ConsumerLag,
        Kind::ReplicationFreshness,
        Kind::CrossDcLag,
        Kind::OutboxBacklog,
        Kind::DeadLetterRate,
        Kind::DeadLettered,
        Kind::AcceptedRate,
        Kind::ShedRate,
        Kind::RateLimitedRate,
        Kind::InFlight,
        Kind::OutcomeP50,
        Kind::OutcomeP99,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Kind::PlacementRate => "Placement rate",
            Kind::ErrorRate => "Error rate (5xx share of /v1 requests)",
            Kind::LatencyP50 => "Placement latency p50",
            Kind::LatencyP99 => "Placement latency p99",
            Kind::ConsumerLag => "Consumer lag",
            Kind::ReplicationFreshness => "Log replication freshness",
            Kind::CrossDcLag => "Database cross-DC lag",
            Kind::OutboxBacklog => "Outbox backlog",
            Kind::DeadLetterRate => "Dead-letter rate",
            Kind::DeadLettered => "Dead-lettered records (total)",
            Kind::AcceptedRate => "Placements accepted",
            Kind::ShedRate => "Shed (503 overloaded)",
            Kind::RateLimitedRate => "Rate-limited (429)",
            Kind::InFlight => "In flight against the limit",
            Kind::OutcomeP50 => "Placement to outcome p50",
            Kind::OutcomeP99 => "Placement to outcome p99",
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Kind::PlacementRate => "per_second",
            Kind::ErrorRate => "ratio",
            Kind::LatencyP50 | Kind::LatencyP99 => "s",
            Kind::ConsumerLag | Kind::ReplicationFreshness | Kind::CrossDcLag => "s",
            Kind::OutboxBacklog => "events",
            Kind::DeadLetterRate => "per_minute",
            Kind::DeadLettered => "records",
            Kind::AcceptedRate | Kind::ShedRate | Kind::RateLimitedRate => "per_second",
            Kind::InFlight => "requests",
            Kind::OutcomeP50 | Kind::OutcomeP99 => "s",
        }
    }

    /// The series a health check's observed value feeds, by the check keys the services use.
    fn of_check(check: &str) -> Option<Kind> {
        Some(match check {
            "worker:consumerLag" => Kind::ConsumerLag,
            "kafka:replicationFreshness" => Kind::ReplicationFreshness,
            "cassandra:crossDcLag" => Kind::CrossDcLag,
            "outbox:backlog" => Kind::OutboxBacklog,
            "worker:deadLetterRate" => Kind::DeadLetterRate,
            _ => return None,
        })
    }

    /// Replication is measured per direction: the line is `source→region`.
    fn per_direction(self) -> bool {
        matches!(self, Kind::ReplicationFreshness | Kind::CrossDcLag)
    }
}

/// A watched `orders_health_observed` gauge.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub kind: Kind,
    pub component: String,
    pub value: f64,
}

/// What one scrape of one service says, reduced to what the charts need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Whether the service exports `orders_http_requests_total` at all (the API does).
    pub serves_http: bool,
    pub placements: f64,
    /// Requests to `/v1/...` routes: probes and scrapes would dilute the error share.
    pub requests: f64,
    pub errors: f64,
    /// Cumulative `(le, count)` of placement latency, sorted by bound.
    pub latency: Vec<(f64, f64)>,
    pub dead_lettered: Option<f64>,
    pub observed: Vec<Observed>,
    /// What the launch panel reads from the same scrape.
    pub launch: crate::launch::Scrape,
}

impl Reading {
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut reading = Reading {
            launch: crate::launch::Scrape::from_samples(samples),
            ..Reading::default()
        };
        for sample in samples {
            match sample.name.as_str() {
                "orders_http_requests_total" => {
                    reading.serves_http = true;
                    let route = sample.label("route").unwrap_or("");
                    if (route, sample.label("method").unwrap_or("")) == PLACEMENT {
                        reading.placements += sample.value;
                    }
                    if route.starts_with("/v1/") {
                        reading.requests += sample.value;
                        if sample.label("status").is_some_and(|s| s.starts_with('5')) {
                            reading.errors += sample.value;
                        }
                    }
                }
                "orders_http_request_duration_seconds_bucket"
                    if (
                        sample.label("route").unwrap_or(""),
                        sample.label("method").unwrap_or(""),
                    ) == PLACEMENT =>
                {
                    if let Some(le) = sample.label("le").and_then(|le| le.parse().ok()) {
                        add_bucket(&mut reading.latency, le, sample.value);
                    }
                }
                "orders_worker_dead_lettered_total" => {
                    *reading.dead_lettered.get_or_insert(0.0) += sample.value;
                }
                "orders_health_observed" => {
                    if let Some(kind) = sample.label("check").and_then(Kind::of_check) {
                        reading.observed.push(Observed {
                            kind,
                            component: sample.label("component").unwrap_or("").to_string(),
                            value: sample.value,
                        });
                    }
                }
                _ => {}
            }
        }
        reading
    }
}

/// Adds `count` to the bucket bounded by `le`, keeping the buckets sorted by bound.
fn add_bucket(buckets: &mut Vec<(f64, f64)>, le: f64, count: f64) {
    match buckets.iter().position(|(bound, _)| *bound >= le) {
        Some(i) if buckets[i].0 == le => buckets[i].1 += count,
        Some(i) => buckets.insert(i, (le, count)),
        None => buckets.push((le, count)),
    }
}

/// What happened on one API between two scrapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delta {
    pub seconds: f64,
    pub placements: f64,
    pub requests: f64,
    pub errors: f64,
    pub latency: Vec<(f64, f64)>,
}

/// `None` unless both scrapes came from a service that serves HTTP and time moved forward.
pub fn delta(previous: &Reading, current: &Reading, seconds: f64) -> Option<Delta> {
    if seconds <= 0.0 || !previous.serves_http || !current.serves_http {
        return None;
    }
    Some(Delta {
        seconds,
        placements: counter_delta(previous.placements, current.placements),
        requests: counter_delta(previous.requests, current.requests),
        errors: counter_delta(previous.errors, current.errors),
        latency: bucket_deltas(&previous.latency, &current.latency),
    })
}

/// A counter that went down was reset by a restart: everything it counts now happened since.
pub fn counter_delta(previous: f64, current: f64) -> f64 {
    if current >= previous {
        current - previous
    } else {
        current
    }
}

/// Per-bucket increase; if any bucket went down the histogram restarted and counts from zero.
pub fn bucket_deltas(previous: &[(f64, f64)], current: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let before = |le: f64| previous.iter().find(|(b, _)| *b == le).map(|(_, c)| *c);
    let reset = current
        .iter()
        .any(|(le, count)| before(*le).is_some_and(|b| *count < b));
    current
        .iter()
        .map(|(le, count)| {
            let base = if reset { 0.0 } else { before(*le).unwrap_or(0.0) };
            (*le, count - base)
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside the bucket it falls in
/// (as Prometheus' `histogram_quantile`); in the `+Inf` bucket it is the highest finite bound.
/// `None` when the buckets count nothing.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let inside = count - below;
            if inside <= 0.0 {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / inside);
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

/// A region's traffic over the last interval: every API of the region added up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub placement_rate: f64,
    /// `None` when nothing was requested: no share of nothing.
    pub error_share: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

pub fn combine(deltas: &[Delta]) -> Option<Traffic> {
    if deltas.is_empty() {
        return None;
    }
    let placement_rate = deltas.iter().map(|d| d.placements / d.seconds).sum();
    let requests: f64 = deltas.iter().map(|d| d.requests).sum();
    let errors: f64 = deltas.iter().map(|d| d.errors).sum();
    let mut latency = Vec::new();
    for (le, count) in deltas.iter().flat_map(|d| d.latency.iter()) {
        add_bucket(&mut latency, *le, *count);
    }
    Some(Traffic {
        placement_rate,
        error_share: (requests > 0.0).then(|| errors / requests),
        p50: quantile(0.5, &latency),
        p99: quantile(0.99, &latency),
    })
}

/// The line of a replication series: `eu→us` when the component names another region (the
/// source), as in `eu->us`, `from eu` or `eu.heartbeats`.
fn line_of(kind: Kind, region: &str, component: &str, regions: &[&str]) -> String {
    if !kind.per_direction() {
        return region.to_string();
    }
    let source = regions
        .iter()
        .filter(|r| **r != region)
        .find(|r| names_word(component, r));
    match source {
        Some(source) => format!("{source}→{region}"),
        None if component.is_empty() => region.to_string(),
        None => format!("{region} {component}"),
    }
}

/// Whether `word` occurs in `text` with no letter or digit right before or after it.
fn names_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// Every series, each line a bounded ring.
pub struct SeriesStore {
    capacity: usize,
    window_ms: i64,
    lines: BTreeMap<Kind, BTreeMap<String, Ring>>,
}

#[derive(Debug, Serialize)]
pub struct SeriesView {
    pub window_seconds: u64,
    pub now: i64,
    pub series: Vec<SeriesJson>,
}

#[derive(Debug, Serialize)]
pub struct SeriesJson {
    pub key: Kind,
    pub title: &'static str,
    pub unit: &'static str,
    /// Line name (region, or `source→region`) to `[unix ms, value]` points, oldest first.
    pub lines: BTreeMap<String, Vec<Point>>,
}

impl SeriesStore {
    /// Room for one point per `interval` over `window`, plus slack for scrapes that come early.
    pub fn new(window: Duration, interval: Duration) -> Self {
        let per_window = window.as_millis() / interval.as_millis().max(1);
        Self {
            capacity: usize::try_from(per_window).unwrap_or(usize::MAX / 2) + 16,
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2),
            lines: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, kind: Kind, line: &str, at_ms: i64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let (capacity, window_ms) = (self.capacity, self.window_ms);
        self.lines
            .entry(kind)
            .or_default()
            .entry(line.to_string())
            .or_insert_with(|| Ring::new(capacity, window_ms))
            .push(Point(at_ms, value));
    }

    /// Records what one scrape round learned about `region`: its traffic (if its API answered
    /// twice in a row), the watched gauges (the worst one per line) and its dead-letter total.
    pub fn record_region(
        &mut self,
        region: &str,
        regions: &[&str],
        at_ms: i64,
        traffic: Option<&Traffic>,
        readings: &[&Reading],
    ) {
        if let Some(traffic) = traffic {
            self.record(Kind::PlacementRate, region, at_ms, traffic.placement_rate);
            let optional = [
                (Kind::ErrorRate, traffic.error_share),
                (Kind::LatencyP50, traffic.p50),
                (Kind::LatencyP99, traffic.p99),
            ];
            for (kind, value) in optional {
                if let Some(value) = value {
                    self.record(kind, region, at_ms, value);
                }
            }
        }
        let mut worst: BTreeMap<(Kind, String), f64> = BTreeMap::new();
        for observed in readings.iter().flat_map(|r| r.observed.iter()) {
            let line = line_of(observed.kind, region, &observed.component, regions);
            let value = worst.entry((observed.kind, line)).or_insert(f64::NEG_INFINITY);
            *value = value.max(observed.value);
        }
        for ((kind, line), value) in worst {
            self.record(kind, &line, at_ms, value);
        }
        let dead: Vec<f64> = readings.iter().filter_map(|r| r.dead_lettered).collect();
        if !dead.is_empty() {
            self.record(Kind::DeadLettered, region, at_ms, dead.iter().sum());
        }
    }

    /// Records a region's launch figures: rates, in flight (and its limit as a line of its own),
    /// placement-to-outcome percentiles.
    pub fn record_launch(&mut self, region: &str, at_ms: i64, launch: &crate::launch::RegionLaunch) {
        let limit = format!("{region} limit");
        let values = [
            (Kind::AcceptedRate, region, launch.accepted_per_second),
            (Kind::ShedRate, region, launch.shed_per_second),
            (Kind::RateLimitedRate, region, launch.rate_limited_per_second),
            (Kind::InFlight, region, launch.in_flight),
            (Kind::InFlight, limit.as_str(), launch.in_flight_limit),
            (Kind::OutcomeP50, region, launch.outcome_p50),
            (Kind::OutcomeP99, region, launch.outcome_p99),
        ];
        for (kind, line, value) in values {
            if let Some(value) = value {
                self.record(kind, line, at_ms, value);
            }
        }
    }

    /// Every series as of `now_ms` (points that aged out are dropped first); absent series are
    /// listed empty so the page draws the same charts whatever the services export.
    pub fn view(&mut self, now_ms: i64) -> SeriesView {
        let series = Kind::ALL
            .iter()
            .map(|kind| {
                let lines = self
                    .lines
                    .get_mut(kind)
                    .map(|lines| {
                        lines
                            .iter_mut()
                            .map(|(name, ring)| {
                                ring.prune(now_ms);
                                (name.clone(), ring.points().collect())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                SeriesJson {
                    key: *kind,
                    title: kind.title(),
                    unit: kind.unit(),
                    lines,
                }
            })
            .collect();
        SeriesView {
            window_seconds: u64::try_from(self.window_ms / 1000).unwrap_or(0),
            now: now_ms,
            series,
        }
    }
}

#[cfg(test)]
mod tests;
