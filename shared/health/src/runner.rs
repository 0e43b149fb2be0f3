//! The check registry: each check runs on its own timer in the background and requests read only the cache.
//!
//! Every edge and every probe asks for readiness about once a second; running checks per request would
//! multiply that load onto Kafka and the database exactly when they are struggling. So a check runs on
//! its interval whatever the request rate, and `report` builds the answer from the latest results.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::report::{CheckResult, HealthReport, ServiceInfo, Status};

/// What a check reports until it has finished once: readiness must not pass before anything was checked.
pub const NOT_YET_CHECKED: &str = "not yet checked";

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("check name {name:?} is not `component:measurement` with one colon and no empty part")]
    BadName { name: String },
    #[error("check {name:?} is already registered")]
    Duplicate { name: String },
    #[error("check {name:?} needs a non-zero interval and timeout")]
    ZeroDuration { name: String },
}

/// The registry and its cache. Cloning is cheap and every clone sees the same checks.
#[derive(Clone)]
pub struct HealthChecks {
    inner: Arc<Inner>,
}

struct Inner {
    info: ServiceInfo,
    shutdown: CancellationToken,
    draining: AtomicBool,
    entries: RwLock<BTreeMap<String, Entry>>,
}

struct Entry {
    results: Vec<CheckResult>,
    runs: u64,
}

impl HealthChecks {
    /// Check tasks stop when `shutdown` is cancelled (or when the last clone is dropped).
    pub fn new(info: ServiceInfo, shutdown: CancellationToken) -> Self {
        Self {
            inner: Arc::new(Inner {
                info,
                shutdown,
                draining: AtomicBool::new(false),
                entries: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Registers a check and starts its task at once (so this must run inside a tokio runtime).
    /// The first run starts immediately, then one every `interval` after the previous one ended.
    /// A run that takes longer than `timeout` is abandoned and recorded as fail.
    /// The check returns one result per node it looked at (the draft's array); it must not block
    /// the thread, or the timeout cannot fire.
    pub fn register<F, Fut>(
        &self,
        name: &str,
        interval: Duration,
        timeout: Duration,
        check: F,
    ) -> Result<(), RegisterError>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<CheckResult>> + Send + 'static,
    {
        if !is_check_key(name) {
            return Err(RegisterError::BadName {
                name: name.to_owned(),
            });
        }
        if interval.is_zero() || timeout.is_zero() {
            return Err(RegisterError::ZeroDuration {
                name: name.to_owned(),
            });
        }
        {
            let mut entries = self.inner.entries.write().unwrap_or_else(PoisonError::into_inner);
            if entries.contains_key(name) {
                return Err(RegisterError::Duplicate {
                    name: name.to_owned(),
                });
            }
            let placeholder = CheckResult::now(Status::Fail).with_output(NOT_YET_CHECKED);
            entries.insert(
                name.to_owned(),
                Entry {
                    results: vec![placeholder],
                    runs: 0,
                },
            );
        }
        tokio::spawn(run_check(
            Arc::downgrade(&self.inner),
            self.inner.shutdown.clone(),
            name.to_owned(),
            interval,
            timeout,
            check,
        ));
        Ok(())
    }

    /// The latest result of every check, rolled up. Never calls a check.
    pub fn report(&self) -> HealthReport {
        let checks = self
            .inner
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, entry)| (name.clone(), entry.results.clone()))
            .collect();
        HealthReport::from_checks(&self.inner.info, checks, self.is_draining())
    }

    /// Takes the instance out of rotation: readiness fails with output `draining` until `undrain`.
    pub fn drain(&self) {
        if !self.inner.draining.swap(true, Ordering::SeqCst) {
            info!(service_id = %self.inner.info.service_id, "draining");
        }
    }

    pub fn undrain(&self) {
        if self.inner.draining.swap(false, Ordering::SeqCst) {
            info!(service_id = %self.inner.info.service_id, "undrained");
        }
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// How many times the check finished (including timeouts); 0 for an unknown name.
    pub fn runs(&self, name: &str) -> u64 {
        let entries = self.inner.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(name).map_or(0, |entry| entry.runs)
    }
}

impl Inner {
    fn store(&self, name: &str, results: Vec<CheckResult>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get_mut(name) else {
            return;
        };
        let previous = worst(&entry.results);
        let current = worst(&results);
        // Log transitions only, so a check that stays failing does not flood the log.
        if entry.runs > 0 && previous != current || entry.runs == 0 && current != Status::Pass {
            let output = results
                .iter()
                .find_map(|result| result.output.as_deref())
                .unwrap_or("");
            if current == Status::Pass {
                info!(check = name, "health check recovered");
            } else {
                warn!(check = name, status = ?current, output, "health check changed status");
            }
        }
        entry.results = results;
        entry.runs += 1;
    }
}

/// The task behind one check. It holds the registry weakly so a dropped registry ends it too.
async fn run_check<F, Fut>(
    inner: Weak<Inner>,
    shutdown: CancellationToken,
    name: String,
    interval: Duration,
    timeout: Duration,
    check: F,
) where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<CheckResult>> + Send + 'static,
{
    let mut ticker = tokio::time::interval(interval);
    // A slow run must not cause a burst of catch-up runs against a dependency that is already slow.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let results = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            results = run_once(&check, timeout) => results,
        };
        let Some(inner) = inner.upgrade() else { break };
        inner.store(&name, results);
    }
}

async fn run_once<F, Fut>(check: &F, timeout: Duration) -> Vec<CheckResult>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<CheckResult>>,
{
    // A panicking check must turn into a failed reading, not a task that died with a stale cache.
    let attempt = AssertUnwindSafe(async { check().await }).catch_unwind();
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(results)) if !results.is_empty() => results,
        Ok(Ok(_)) => vec![CheckResult::now(Status::Fail).with_output("check returned no results")],
        Ok(Err(_)) => vec![CheckResult::now(Status::Fail).with_output("check panicked")],
        Err(_) => vec![
            CheckResult::now(Status::Fail).with_output(format!("timed out after {}ms", timeout.as_millis())),
        ],
    }
}

fn worst(results: &[CheckResult]) -> Status {
    results
        .iter()
        .map(|result| result.status)
        .max()
        .unwrap_or(Status::Pass)
}

/// `component:measurement`, neither part empty nor containing a colon, as the draft requires.
pub(crate) fn is_check_key(name: &str) -> bool {
    match name.split_once(':') {
        Some((component, measurement)) => {
            !component.is_empty() && !measurement.is_empty() && !measurement.contains(':')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
