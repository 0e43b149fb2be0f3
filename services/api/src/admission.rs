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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Detects a standing queue, CoDel's signal: `WINDOWS` windows in a row in which even the fastest
/// answer took longer than `target`. A burst passes through the in-flight bound and drains, and a
/// pause of the database holds every answer up once; a standing queue only grows latency, so while
/// one shows (and for `hold` after the last request it made the API shed) fewer requests are
/// admitted at once. Pure: the caller passes the clock.
#[derive(Debug)]
pub struct Pressure {
    target: Duration,
    window: Duration,
    hold: Duration,
    window_start: Option<Instant>,
    fastest: Option<Duration>,
    /// Windows in a row whose fastest answer was slower than `target`.
    slow_windows: u32,
    tight_until: Option<Instant>,
}

impl Pressure {
    /// Slow windows in a row that make a standing queue.
    pub const WINDOWS: u32 = 3;

    pub fn new(target: Duration, window: Duration, hold: Duration) -> Self {
        Pressure {
            target,
            window,
            hold,
            window_start: None,
            fastest: None,
            slow_windows: 0,
            tight_until: None,
        }
    }

    /// An admitted request was answered `took` after it was admitted.
    pub fn answered(&mut self, took: Duration, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let fastest = self.fastest.map_or(took, |f| f.min(took));
        self.fastest = Some(fastest);
        if now.saturating_duration_since(start) >= self.window {
            self.slow_windows = match fastest > self.target {
                true => self.slow_windows + 1,
                false => 0,
            };
            if self.slow_windows >= Self::WINDOWS {
                self.tight_until = Some(now + self.hold);
            }
            self.window_start = Some(now);
            self.fastest = None;
        }
    }

    /// A request was shed while tight: demand still exceeds what is admitted, so stay tight.
    pub fn shed(&mut self, now: Instant) {
        if self.is_tight(now) {
            self.tight_until = Some(now + self.hold);
        }
    }

    pub fn is_tight(&self, now: Instant) -> bool {
        self.tight_until.is_some_and(|until| now < until)
    }
}

/// How many requests may do database work at once: `limit` normally, enough for any burst;
/// `tight` while a standing queue shows (`Pressure`), so an overload is shed at once instead of
/// queueing in the database until every answer is slow and the workers fall behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub limit: usize,
    pub tight: usize,
}

/// A standing queue is three windows of 100 ms in a row whose fastest answer took more than 100 ms
/// (quiet answers take under 10, and a placement slower than 100 ms at p99 is what the benchmarks
/// call broken); the tight bound holds for a second after the last request it shed.
pub const PRESSURE_TARGET: Duration = Duration::from_millis(100);
const PRESSURE_WINDOW: Duration = Duration::from_millis(100);
const PRESSURE_HOLD: Duration = Duration::from_secs(1);

/// At most `bounds.limit` requests doing database work at once (`bounds.tight` under pressure); a
/// request finding none free waits at most `wait`, then is shed.
#[derive(Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    bounds: Bounds,
    wait: Duration,
    shed: AtomicU64,
    admitted: Arc<AtomicUsize>,
    pressure: Mutex<Pressure>,
}

/// A request admitted past the in-flight bound: holds its slot until dropped.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    gauge: IntGauge,
    admitted: Arc<AtomicUsize>,
    since: Instant,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.gauge.dec();
        self.admitted.fetch_sub(1, Ordering::Relaxed);
    }
}

impl InFlight {
    pub fn new(bounds: Bounds, wait: Duration) -> Self {
        InFlight {
            permits: Arc::new(Semaphore::new(bounds.limit)),
            bounds,
            wait,
            shed: AtomicU64::new(0),
            admitted: Arc::new(AtomicUsize::new(0)),
            pressure: Mutex::new(Pressure::new(PRESSURE_TARGET, PRESSURE_WINDOW, PRESSURE_HOLD)),
        }
    }

    /// The bound in force now: `tight` under pressure, else `limit`.
    pub fn limit(&self) -> usize {
        match self
            .pressure
            .lock()
            .expect("pressure lock")
            .is_tight(Instant::now())
        {
            true => self.bounds.tight,
            false => self.bounds.limit,
        }
    }

    /// Requests shed since start.
    pub fn shed_total(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// A slot, or `None` (counted as shed): at once when the API is under pressure and `tight`
    /// requests are in flight, else once `wait` passed without a slot. The semaphore is fair, so
    /// the short wait smooths a burst without letting a queue build up.
    pub async fn enter(&self, gauge: &IntGauge) -> Option<Admitted> {
        let now = Instant::now();
        let tight = self.pressure.lock().expect("pressure lock").is_tight(now);
        let permit = if tight && self.admitted.load(Ordering::Relaxed) >= self.bounds.tight {
            None
        } else {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) if self.wait.is_zero() => None,
                Err(_) => tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok),
            }
        };
        match permit {
            Some(permit) => {
                gauge.inc();
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Some(Admitted {
                    _permit: permit,
                    gauge: gauge.clone(),
                    admitted: self.admitted.clone(),
                    since: Instant::now(),
                })
            }
            None => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                self.pressure.lock().expect("pressure lock").shed(Instant::now());
                None
            }
        }
    }

    /// An admitted request was answered: its time feeds the pressure signal, and its slot is free.
    pub fn answered(&self, admitted: Admitted) {
        let now = Instant::now();
        let took = now.saturating_duration_since(admitted.since);
        drop(admitted);
        self.pressure.lock().expect("pressure lock").answered(took, now);
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
    state.admission.in_flight.answered(admitted);
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
