//! Admission control: a token bucket per client (`429`) and a bound on the work in flight (`503`),
//! both decided before a handler runs, so an overloaded region refuses at once what it cannot serve
//! instead of queueing it until clients time out and retry into the queue.
//!
//! Nothing is written for a refused request: the decision is taken before the handler, so a
//! refused placement never claims its Idempotency-Key nor appends an event, and a retry with the
//! same key is safe.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::IntGauge;
use tokio::sync::Notify;

use crate::AppState;
use crate::auth::Client;
use crate::problem::ApiError;

/// The name of the one quota policy, as the RateLimit fields spell it.
const POLICY: &str = "per-client";
/// A shed request is told to come back after this long: in-flight work drains in milliseconds.
const SHED_RETRY_AFTER_SECONDS: u64 = 1;

/// A token bucket's shape: refilled at `per_second`, holding at most `burst` requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    /// Seconds to refill an empty bucket: the window the `RateLimit-Policy` field announces.
    fn window_seconds(&self) -> u64 {
        (f64::from(self.burst) / self.per_second).ceil().max(1.0) as u64
    }
}

/// `RATE/s,BURST` (e.g. `100/s,200`), or `RATE/s` with a burst of one second's worth.
impl FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not RATE/s,BURST (e.g. 100/s,200)");
        let (rate, burst) = match s.trim().split_once(',') {
            Some((rate, burst)) => (rate, Some(burst.trim())),
            None => (s.trim(), None),
        };
        let per_second: f64 = rate
            .trim()
            .strip_suffix("/s")
            .and_then(|r| r.trim().parse().ok())
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(bad)?;
        let burst = match burst {
            Some(b) => b.parse::<u32>().ok().filter(|b| *b > 0).ok_or_else(bad)?,
            None => per_second.ceil().min(f64::from(u32::MAX)) as u32,
        };
        Ok(RateLimit { per_second, burst })
    }
}

/// Per-client overrides: `client=RATE/s,BURST;client=RATE/s,BURST`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateLimits(pub BTreeMap<String, RateLimit>);

impl FromStr for RateLimits {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = BTreeMap::new();
        for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (client, limit) = entry
                .split_once('=')
                .filter(|(c, _)| !c.trim().is_empty())
                .ok_or_else(|| format!("{entry:?} is not client=RATE/s,BURST"))?;
            out.insert(client.trim().to_string(), limit.parse()?);
        }
        Ok(RateLimits(out))
    }
}

/// What a client has left: written as the `RateLimit-Policy` and `RateLimit` fields
/// (draft-ietf-httpapi-ratelimit-headers: `q` quota over `w` seconds; `r` remaining, `t` seconds
/// until more quota is available).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub limit: RateLimit,
    pub remaining: u64,
    /// Seconds until at least one more request is allowed (0 when the bucket is full).
    pub next_in_seconds: u64,
}

impl Quota {
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let policy = format!(
            "\"{POLICY}\";q={};w={}",
            self.limit.burst,
            self.limit.window_seconds()
        );
        let now = format!("\"{POLICY}\";r={};t={}", self.remaining, self.next_in_seconds);
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", now)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per authenticated client. Clients are registered API keys, so the map stays
/// as small as the list of storefronts.
#[derive(Debug)]
pub struct RateLimiter {
    default: RateLimit,
    overrides: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(default: RateLimit, overrides: RateLimits) -> Self {
        RateLimiter {
            default,
            overrides,
            buckets: Mutex::default(),
        }
    }

    pub fn limit_for(&self, client: &str) -> RateLimit {
        self.overrides.0.get(client).copied().unwrap_or(self.default)
    }

    /// Takes one token for `client` at `now`: `Ok` with what is left, or `Err` when the bucket is
    /// empty (nothing is taken then).
    pub fn take(&self, client: &str, now: Instant) -> Result<Quota, Quota> {
        let limit = self.limit_for(client);
        let burst = f64::from(limit.burst);
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refill = now.saturating_duration_since(bucket.at).as_secs_f64() * limit.per_second;
        bucket.tokens = (bucket.tokens + refill).min(burst);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = if bucket.tokens >= burst {
            0.0
        } else {
            1.0 - bucket.tokens.fract()
        };
        let quota = Quota {
            limit,
            remaining: bucket.tokens.floor() as u64,
            next_in_seconds: (missing / limit.per_second).ceil() as u64,
        };
        if allowed { Ok(quota) } else { Err(quota) }
    }
}

/// The in-flight bound, adapted to the latency requests get (the gradient rule of Netflix's
/// concurrency-limits). While recent latency stays near the long-run latency and the bound is in
/// use, it grows by about its square root; when recent latency climbs (the database queues, a GC
/// pause, the other datacenter slows) it shrinks in proportion, so the excess of a spike is shed
/// at once instead of queueing behind a stall. An idle bound (less than half in use) says nothing
/// about capacity and stays where it is. Pure: the caller feeds it samples.
#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    min: f64,
    max: f64,
    limit: f64,
    /// Latency averaged over about the last 600 requests, in seconds.
    long: Option<f64>,
    /// Latency averaged over about the last 10 requests, in seconds.
    short: Option<f64>,
}

/// Recent latency may be this much above the long-run latency before the bound shrinks.
const TOLERANCE: f64 = 1.5;

impl AdaptiveLimit {
    /// A bound between `min(4, max)` and `max`, starting at `min(8, max)`.
    pub fn new(max: usize) -> Self {
        let max = max.max(1) as f64;
        AdaptiveLimit {
            min: max.min(4.0),
            max,
            limit: max.min(8.0),
            long: None,
            short: None,
        }
    }

    pub fn current(&self) -> usize {
        self.limit.floor() as usize
    }

    /// One request finished after `latency`, with `in_flight` requests admitted when it started;
    /// returns the new bound.
    pub fn on_sample(&mut self, latency: Duration, in_flight: usize) -> usize {
        let rtt = latency.as_secs_f64().max(1e-6);
        let long = ewma(self.long, rtt, 1.0 / 600.0);
        let short = ewma(self.short, rtt, 1.0 / 10.0);
        (self.long, self.short) = (Some(long), Some(short));
        if (in_flight as f64) < self.limit / 2.0 {
            return self.current();
        }
        let gradient = (TOLERANCE * long / short).clamp(0.5, 1.0);
        let target = self.limit * gradient + self.limit.sqrt();
        self.limit = (self.limit * 0.8 + target * 0.2).clamp(self.min, self.max);
        self.current()
    }
}

fn ewma(average: Option<f64>, sample: f64, weight: f64) -> f64 {
    average.map_or(sample, |a| a + (sample - a) * weight)
}

/// At most the adaptive bound of requests doing database work at once; a request finding none
/// free waits at most `wait`, then is shed.
#[derive(Debug)]
pub struct InFlight {
    shared: Arc<Shared>,
    wait: Duration,
    shed: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    admitted: AtomicUsize,
    bound: AtomicUsize,
    limit: Mutex<AdaptiveLimit>,
    freed: Notify,
    /// `orders_admission_in_flight_limit`, kept equal to the bound.
    limit_gauge: IntGauge,
}

/// A request admitted past the in-flight bound: holds its slot until dropped, then reports its
/// latency to the bound.
pub struct Admitted {
    shared: Arc<Shared>,
    started: Instant,
    in_flight_at_start: usize,
    gauge: IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gauge.dec();
        let bound = self
            .shared
            .limit
            .lock()
            .expect("in-flight bound lock")
            .on_sample(self.started.elapsed(), self.in_flight_at_start);
        self.shared.bound.store(bound, Ordering::Relaxed);
        self.shared.limit_gauge.set(bound as i64);
        self.shared.admitted.fetch_sub(1, Ordering::AcqRel);
        self.shared.freed.notify_one();
    }
}

impl InFlight {
    /// `max` is the ceiling of the adaptive bound (`ORDERS_MAX_IN_FLIGHT`).
    pub fn new(max: usize, wait: Duration, limit_gauge: IntGauge) -> Self {
        let limit = AdaptiveLimit::new(max);
        limit_gauge.set(limit.current() as i64);
        InFlight {
            shared: Arc::new(Shared {
                admitted: AtomicUsize::new(0),
                bound: AtomicUsize::new(limit.current()),
                limit: Mutex::new(limit),
                freed: Notify::new(),
                limit_gauge,
            }),
            wait,
            shed: AtomicU64::new(0),
        }
    }

    /// The bound as it stands.
    pub fn limit(&self) -> usize {
        self.shared.bound.load(Ordering::Relaxed)
    }

    /// Requests shed since start.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// A slot, or `None` once `wait` passed without one (counted as shed): the short wait smooths
    /// a burst without letting a queue build up.
    pub async fn enter(&self, gauge: &IntGauge) -> Option<Admitted> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // Register for a release before looking, so one between the look and the wait counts.
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(in_flight) = self.try_take() {
                gauge.inc();
                return Some(Admitted {
                    shared: self.shared.clone(),
                    started: Instant::now(),
                    in_flight_at_start: in_flight,
                    gauge: gauge.clone(),
                });
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
    }

    /// Takes a slot if one is free under the bound; returns how many are then in flight.
    fn try_take(&self) -> Option<usize> {
        let bound = self.limit();
        self.shared
            .admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < bound).then_some(n + 1)
            })
            .ok()
            .map(|before| before + 1)
    }
}

/// The rate limiter and the in-flight bound of one API instance.
#[derive(Debug)]
pub struct Admission {
    pub rate: RateLimiter,
    pub in_flight: InFlight,
}

/// Middleware on the `/v1` routes: authenticates, takes a token from the client's bucket (else
/// 429), takes an in-flight slot (else 503), runs the handler, and adds the RateLimit fields.
pub async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = match Client::from_request_parts(&mut parts, &state).await {
        Ok(client) => client,
        Err(refused) => return refused.into_response(),
    };
    let metrics = &state.metrics;
    let quota = match state.admission.rate.take(&client.0, Instant::now()) {
        Ok(quota) => quota,
        Err(quota) => {
            metrics.refused.with_label_values(&["rate_limited"]).inc();
            let mut response = ApiError::RateLimited {
                client: client.0,
                retry_after_seconds: quota.next_in_seconds.max(1),
            }
            .into_response();
            quota.write_headers(response.headers_mut());
            return response;
        }
    };
    let Some(admitted) = state.admission.in_flight.enter(&metrics.in_flight).await else {
        metrics.refused.with_label_values(&["overloaded"]).inc();
        return ApiError::Overloaded {
            retry_after_seconds: SHED_RETRY_AFTER_SECONDS,
        }
        .into_response();
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    drop(admitted);
    quota.write_headers(response.headers_mut());
    response
}

/// Shed requests per second over the last `window`, from the running total sampled by the
/// `api:shedding` check.
#[derive(Debug)]
pub struct ShedRate {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl ShedRate {
    pub fn new(window: Duration) -> Self {
        ShedRate {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records the total at `now` and returns the rate since the oldest sample within the window
    /// (0 until there are two samples).
    pub fn observe(&mut self, now: Instant, total: u64) -> f64 {
        self.samples.push_back((now, total));
        while let Some(&(at, _)) = self.samples.front()
            && now.saturating_duration_since(at) > self.window
        {
            self.samples.pop_front();
        }
        let &(oldest_at, oldest) = self.samples.front().expect("just pushed");
        let span = now.saturating_duration_since(oldest_at).as_secs_f64();
        if span <= 0.0 {
            return 0.0;
        }
        total.saturating_sub(oldest) as f64 / span
    }
}

#[cfg(test)]
mod tests;
