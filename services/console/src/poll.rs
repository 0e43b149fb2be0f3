//! The pollers: every service's readiness every 2 s (1 s timeout) and its metrics every 5 s.
use std::error::Error;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::join_all;
use orders_health::HealthReport;
use orders_health::model::ServiceObservation;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::series::{self, Reading};
use crate::{Console, Target, launch, observations_of, prom};

/// A metrics page is larger than a readiness answer and nothing waits on it.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn health_loop(console: Arc<Console>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(console.config.health_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // `run` has just polled: the first tick, which fires at once, is skipped.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            _ = console.poll_now.notified() => ticker.reset(),
        }
        health_round(&console).await;
    }
}

/// Asks every service at once, so one slow region never delays the verdict on the others.
pub(crate) async fn health_round(console: &Console) {
    let timeout = console.config.health_timeout;
    let targets = &console.config.targets;
    let answers = join_all(targets.iter().map(|t| ready(&console.client, t, timeout))).await;
    console.observe(observations_of(targets.iter().zip(answers)));
}

async fn ready(client: &reqwest::Client, target: &Target, timeout: Duration) -> ServiceObservation {
    let url = format!("{}/health/ready", target.url);
    let unreachable = |reason: String| {
        tracing::debug!(region = %target.region, service = %target.service, %reason, "service unreachable");
        ServiceObservation::Unreachable { reason }
    };
    let response = match client.get(&url).timeout(timeout).send().await {
        Ok(response) => response,
        Err(error) => return unreachable(describe(&error, timeout)),
    };
    let status = response.status();
    // 503 is an answer too: a failing or draining service still sends its report.
    match response.json::<HealthReport>().await {
        Ok(report) => ServiceObservation::Answered(report),
        Err(error) if error.is_timeout() => unreachable(describe(&error, timeout)),
        Err(_) => unreachable(format!("answered {status} without a health report")),
    }
}

/// A short reason for the page: the timeout, or the innermost cause of a failed connection.
pub(crate) fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut cause: &dyn Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    if error.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        cause.to_string()
    }
}

pub(crate) async fn metrics_loop(console: Arc<Console>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(console.config.metrics_interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        metrics_round(&console).await;
    }
}

/// Scrapes every service, then turns each region's scrapes into one point per series.
async fn metrics_round(console: &Console) {
    let targets = &console.config.targets;
    let scrapes = join_all(targets.iter().map(|t| scrape(&console.client, t))).await;
    let scraped: Vec<(&Target, Option<Reading>)> = targets.iter().zip(scrapes).collect();
    let (now, at_ms) = (Instant::now(), Utc::now().timestamp_millis());
    let regions = console.config.regions();
    let mut previous = console.readings.lock().unwrap_or_else(PoisonError::into_inner);
    let mut store = console.series.lock().unwrap_or_else(PoisonError::into_inner);
    for region in &regions {
        let mut deltas = Vec::new();
        let mut readings = Vec::new();
        let mut launch_pairs = Vec::new();
        for (target, reading) in scraped.iter().filter(|(t, _)| t.region == *region) {
            // A service that did not answer keeps its last scrape: the next delta spans the gap.
            let Some(reading) = reading else { continue };
            let key = (target.region.clone(), target.service.clone());
            let before = previous.get(&key);
            if let Some((then, before)) = before
                && let Some(delta) = series::delta(before, reading, now.duration_since(*then).as_secs_f64())
            {
                deltas.push(delta);
            }
            launch_pairs.push((
                before.map(|(_, r)| r.launch.clone()),
                reading.launch.clone(),
                before.map_or(0.0, |(then, _)| now.duration_since(*then).as_secs_f64()),
            ));
            previous.insert(key, (now, reading.clone()));
            readings.push(reading);
        }
        let traffic = series::combine(&deltas);
        store.record_region(region, &regions, at_ms, traffic.as_ref(), &readings);
        let pairs: Vec<launch::Pair> = launch_pairs
            .iter()
            .map(|(previous, current, seconds)| launch::Pair {
                previous: previous.as_ref(),
                current,
                seconds: *seconds,
            })
            .collect();
        let figures = launch::region_launch(&pairs);
        store.record_launch(region, at_ms, &figures);
        let mut allotments = std::collections::BTreeMap::new();
        for (_, current, _) in &launch_pairs {
            allotments.extend(current.allotments.iter().map(|(k, v)| (k.clone(), *v)));
        }
        console
            .launch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(region, at_ms, figures, &allotments);
    }
}

async fn scrape(client: &reqwest::Client, target: &Target) -> Option<Reading> {
    let url = format!("{}/metrics", target.url);
    let result = async {
        let response = client.get(&url).timeout(SCRAPE_TIMEOUT).send().await?;
        response.error_for_status()?.text().await
    }
    .await;
    match result {
        Ok(text) => Some(Reading::from_samples(&prom::parse(&text))),
        Err(error) => {
            let reason = describe(&error, SCRAPE_TIMEOUT);
            tracing::debug!(region = %target.region, service = %target.service, %reason, "scrape failed");
            None
        }
    }
}
