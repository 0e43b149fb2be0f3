//! The launch panel: placements accepted, shed (503) and rate-limited (429) per second and region,
//! work in flight against its limit, time from placement to known outcome, and what the SKUs
//! selling fastest have left in each region. From the same scrapes as the charts. Pure: the poller
//! passes time in.
use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::prom::Sample;
use crate::series::{bucket_deltas, counter_delta, quantile};

/// How far back "selling fastest" looks.
const SELLING_WINDOW_MS: i64 = 60_000;
/// How many SKUs the panel lists.
const TOP_SKUS: usize = 5;

/// What one scrape of one service says about the launch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `orders_placed_total`, every durability.
    pub accepted: Option<f64>,
    /// `orders_admission_refused_total{reason="overloaded"}`.
    pub shed: Option<f64>,
    /// `orders_admission_refused_total{reason="rate_limited"}`.
    pub rate_limited: Option<f64>,
    pub in_flight: Option<f64>,
    pub in_flight_limit: Option<f64>,
    /// Cumulative buckets of `orders_placed_to_processed_seconds` (the worker's).
    pub outcome: Vec<(f64, f64)>,
    /// `orders_allotment_available{sku}`: units left in the region.
    pub allotments: BTreeMap<String, f64>,
}

fn add(slot: &mut Option<f64>, value: f64) {
    *slot.get_or_insert(0.0) += value;
}

impl Scrape {
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut scrape = Scrape::default();
        for sample in samples {
            match (sample.name.as_str(), sample.label("reason")) {
                ("orders_placed_total", _) => add(&mut scrape.accepted, sample.value),
                ("orders_admission_refused_total", Some("overloaded")) => add(&mut scrape.shed, sample.value),
                ("orders_admission_refused_total", Some("rate_limited")) => {
                    add(&mut scrape.rate_limited, sample.value);
                }
                ("orders_admission_in_flight", _) => add(&mut scrape.in_flight, sample.value),
                ("orders_admission_in_flight_limit", _) => add(&mut scrape.in_flight_limit, sample.value),
                ("orders_placed_to_processed_seconds_bucket", _) => {
                    if let Some(le) = sample.label("le").and_then(|le| le.parse::<f64>().ok()) {
                        match scrape.outcome.iter_mut().find(|(bound, _)| *bound == le) {
                            Some(bucket) => bucket.1 += sample.value,
                            None => scrape.outcome.push((le, sample.value)),
                        }
                    }
                }
                ("orders_allotment_available", _) => {
                    if let Some(sku) = sample.label("sku") {
                        *scrape.allotments.entry(sku.to_string()).or_default() += sample.value;
                    }
                }
                _ => {}
            }
        }
        scrape.outcome.sort_by(|a, b| a.0.total_cmp(&b.0));
        scrape
    }
}

/// A region's launch figures for one scrape round: rates over the interval, totals and gauges now.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RegionLaunch {
    pub accepted_per_second: Option<f64>,
    pub shed_per_second: Option<f64>,
    pub rate_limited_per_second: Option<f64>,
    /// Counter totals across the region's services as scraped: they only rise (until a restart).
    pub accepted_total: f64,
    pub shed_total: f64,
    pub rate_limited_total: f64,
    pub in_flight: Option<f64>,
    pub in_flight_limit: Option<f64>,
    /// Seconds from placement to the final event, over the interval.
    pub outcome_p50: Option<f64>,
    pub outcome_p99: Option<f64>,
}

/// One service's scrape with the one before it, `seconds` apart (no previous: just started).
pub struct Pair<'a> {
    pub previous: Option<&'a Scrape>,
    pub current: &'a Scrape,
    pub seconds: f64,
}

/// Adds up every service of a region.
pub fn region_launch(pairs: &[Pair]) -> RegionLaunch {
    let mut launch = RegionLaunch::default();
    let mut outcome: Vec<(f64, f64)> = Vec::new();
    for pair in pairs {
        let current = pair.current;
        launch.accepted_total += current.accepted.unwrap_or(0.0);
        launch.shed_total += current.shed.unwrap_or(0.0);
        launch.rate_limited_total += current.rate_limited.unwrap_or(0.0);
        if let Some(v) = current.in_flight {
            add(&mut launch.in_flight, v);
        }
        if let Some(v) = current.in_flight_limit {
            add(&mut launch.in_flight_limit, v);
        }
        let Some(previous) = pair.previous.filter(|_| pair.seconds > 0.0) else {
            continue;
        };
        let rate = |before: Option<f64>, now: Option<f64>, into: &mut Option<f64>| {
            if let (Some(before), Some(now)) = (before, now) {
                add(into, counter_delta(before, now) / pair.seconds);
            }
        };
        rate(
            previous.accepted,
            current.accepted,
            &mut launch.accepted_per_second,
        );
        rate(previous.shed, current.shed, &mut launch.shed_per_second);
        rate(
            previous.rate_limited,
            current.rate_limited,
            &mut launch.rate_limited_per_second,
        );
        for (le, count) in bucket_deltas(&previous.outcome, &current.outcome) {
            match outcome.iter_mut().find(|(bound, _)| *bound == le) {
                Some(bucket) => bucket.1 += count,
                None => outcome.push((le, count)),
            }
        }
    }
    outcome.sort_by(|a, b| a.0.total_cmp(&b.0));
    launch.outcome_p50 = quantile(0.5, &outcome);
    launch.outcome_p99 = quantile(0.99, &outcome);
    launch
}

/// Each region's allotment per SKU over the last minute, for "selling fastest".
#[derive(Default)]
pub struct Allotments {
    seen: BTreeMap<(String, String), VecDeque<(i64, f64)>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuView {
    pub sku: String,
    /// Units sold per minute over the last minute, every region added up.
    pub sold_per_minute: f64,
    /// Region → units left.
    pub remaining: BTreeMap<String, f64>,
}

impl Allotments {
    pub fn record(&mut self, region: &str, at_ms: i64, allotments: &BTreeMap<String, f64>) {
        for (sku, left) in allotments {
            let points = self.seen.entry((region.to_string(), sku.clone())).or_default();
            points.push_back((at_ms, *left));
            while points.front().is_some_and(|(t, _)| at_ms - t > SELLING_WINDOW_MS) {
                points.pop_front();
            }
        }
    }

    /// The SKUs with the most sold over the last minute (then the least left), each region's remainder.
    pub fn fastest(&self, now_ms: i64) -> Vec<SkuView> {
        let mut skus: BTreeMap<&str, SkuView> = BTreeMap::new();
        for ((region, sku), points) in &self.seen {
            let recent: Vec<&(i64, f64)> = points
                .iter()
                .filter(|(t, _)| now_ms - t <= SELLING_WINDOW_MS)
                .collect();
            let (Some(first), Some(last)) = (recent.first(), recent.last()) else {
                continue;
            };
            let view = skus.entry(sku).or_insert_with(|| SkuView {
                sku: sku.clone(),
                sold_per_minute: 0.0,
                remaining: BTreeMap::new(),
            });
            let minutes = (last.0 - first.0) as f64 / 60_000.0;
            if minutes > 0.0 {
                // A restock (the count going up) is not a negative sale.
                view.sold_per_minute += (first.1 - last.1).max(0.0) / minutes;
            }
            view.remaining.insert(region.clone(), last.1);
        }
        let mut skus: Vec<SkuView> = skus.into_values().collect();
        let least_left = |s: &SkuView| s.remaining.values().copied().fold(f64::INFINITY, f64::min);
        skus.sort_by(|a, b| {
            b.sold_per_minute
                .total_cmp(&a.sold_per_minute)
                .then_with(|| least_left(a).total_cmp(&least_left(b)))
        });
        skus.truncate(TOP_SKUS);
        skus
    }
}

/// What `/api/launch` answers.
#[derive(Debug, Serialize)]
pub struct LaunchView {
    /// Unix ms of the scrape round the figures are from; `None` before the first.
    pub at: Option<i64>,
    pub regions: BTreeMap<String, RegionLaunch>,
    pub skus: Vec<SkuView>,
}

/// The latest figures of every region plus the allotment history.
#[derive(Default)]
pub struct LaunchStore {
    at: Option<i64>,
    regions: BTreeMap<String, RegionLaunch>,
    allotments: Allotments,
}

impl LaunchStore {
    pub fn record(
        &mut self,
        region: &str,
        at_ms: i64,
        launch: RegionLaunch,
        allotments: &BTreeMap<String, f64>,
    ) {
        self.at = Some(at_ms);
        self.regions.insert(region.to_string(), launch);
        self.allotments.record(region, at_ms, allotments);
    }

    pub fn view(&self, now_ms: i64) -> LaunchView {
        LaunchView {
            at: self.at,
            regions: self.regions.clone(),
            skus: self.allotments.fastest(now_ms),
        }
    }
}

#[cfg(test)]
mod tests;
