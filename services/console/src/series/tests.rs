//! Unit tests of the series arithmetic: rates, shares and percentiles from two scrapes.
use std::time::Duration;

use super::*;
use crate::prom;

const API_SCRAPE: &str = r#"
orders_http_requests_total{method="POST",route="/v1/orders",status="201",region="eu"} 100
orders_http_requests_total{method="POST",route="/v1/orders",status="503",region="eu"} 10
orders_http_requests_total{method="GET",route="/v1/orders/{id}",status="200",region="eu"} 90
orders_http_requests_total{method="GET",route="/health/ready",status="503",region="eu"} 500
orders_http_request_duration_seconds_bucket{method="POST",route="/v1/orders",region="eu",le="0.01"} 50
orders_http_request_duration_seconds_bucket{method="POST",route="/v1/orders",region="eu",le="0.1"} 100
orders_http_request_duration_seconds_bucket{method="POST",route="/v1/orders",region="eu",le="+Inf"} 110
orders_http_request_duration_seconds_bucket{method="GET",route="/v1/orders/{id}",region="eu",le="+Inf"} 90
orders_health_observed{service="api-eu",check="kafka:responseTime",component="k",unit="ms"} 4
"#;

fn reading(text: &str) -> Reading {
    Reading::from_samples(&prom::parse(text))
}

#[test]
fn a_scrape_counts_placements_v1_requests_and_5xx_but_not_probes() {
    let r = reading(API_SCRAPE);
    assert!(r.serves_http);
    assert_eq!((r.placements, r.requests, r.errors), (110.0, 200.0, 10.0));
    assert_eq!(r.latency, [(0.01, 50.0), (0.1, 100.0), (f64::INFINITY, 110.0)]);
    assert!(r.observed.is_empty(), "only watched checks are kept");
    assert_eq!(r.dead_lettered, None);
}

#[test]
fn the_placement_rate_is_the_counter_increase_per_second() {
    let before = reading(API_SCRAPE);
    let mut after = before.clone();
    after.placements += 50.0;
    let d = delta(&before, &after, 5.0).unwrap();
    assert_eq!(combine(&[d]).unwrap().placement_rate, 10.0);
}

#[test]
fn a_counter_that_went_down_counts_from_zero_after_the_restart() {
    assert_eq!(counter_delta(100.0, 130.0), 30.0);
    assert_eq!(counter_delta(100.0, 7.0), 7.0);
}

#[test]
fn the_error_rate_is_the_5xx_share_of_the_interval_and_absent_without_requests() {
    let before = reading(API_SCRAPE);
    let mut after = before.clone();
    after.requests += 40.0;
    after.errors += 10.0;
    let traffic = combine(&[delta(&before, &after, 5.0).unwrap()]).unwrap();
    assert_eq!(traffic.error_share, Some(0.25));
    let idle = combine(&[delta(&before, &before, 5.0).unwrap()]).unwrap();
    assert_eq!(idle.error_share, None);
    assert_eq!((idle.p50, idle.p99), (None, None));
}

#[test]
fn percentiles_interpolate_inside_the_bucket_they_fall_in() {
    // 100 observations: 50 up to 10 ms, 40 more up to 100 ms, 10 beyond 1 s.
    let buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 90.0), (f64::INFINITY, 100.0)];
    assert_eq!(quantile(0.5, &buckets), Some(0.01));
    let p70 = quantile(0.7, &buckets).unwrap();
    assert!((p70 - 0.055).abs() < 1e-9, "{p70}");
    assert_eq!(
        quantile(0.99, &buckets),
        Some(1.0),
        "the +Inf bucket answers the highest finite bound"
    );
    assert_eq!(
        quantile(0.25, &buckets),
        Some(0.005),
        "the first bucket starts at zero"
    );
    assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
    assert_eq!(quantile(0.5, &[]), None);
}

#[test]
fn latency_percentiles_use_only_the_buckets_filled_during_the_interval() {
    let before = vec![(0.01, 1000.0), (0.1, 1000.0), (f64::INFINITY, 1000.0)];
    let after = vec![(0.01, 1000.0), (0.1, 1010.0), (f64::INFINITY, 1010.0)];
    let buckets = bucket_deltas(&before, &after);
    assert_eq!(buckets, [(0.01, 0.0), (0.1, 10.0), (f64::INFINITY, 10.0)]);
    let p50 = quantile(0.5, &buckets).unwrap();
    assert!(
        (p50 - 0.055).abs() < 1e-9,
        "old fast requests must not hide the slow interval: {p50}"
    );
    let restarted = vec![(0.01, 3.0), (0.1, 4.0), (f64::INFINITY, 4.0)];
    assert_eq!(bucket_deltas(&before, &restarted), restarted);
}

#[test]
fn a_region_adds_up_its_apis_and_merges_their_buckets() {
    let one = Delta {
        seconds: 5.0,
        placements: 10.0,
        requests: 10.0,
        errors: 0.0,
        latency: vec![(0.01, 10.0), (f64::INFINITY, 10.0)],
    };
    let two = Delta {
        seconds: 2.0,
        placements: 10.0,
        requests: 10.0,
        errors: 5.0,
        latency: vec![(0.01, 0.0), (0.1, 10.0), (f64::INFINITY, 10.0)],
    };
    let traffic = combine(&[one, two]).unwrap();
    assert_eq!(traffic.placement_rate, 7.0);
    assert_eq!(traffic.error_share, Some(0.25));
    assert_eq!(traffic.p50, Some(0.01));
    assert!(combine(&[]).is_none());
}

#[test]
fn no_delta_without_two_scrapes_of_an_api_or_without_elapsed_time() {
    let api = reading(API_SCRAPE);
    let worker = reading("orders_worker_dead_lettered_total{region=\"eu\"} 3\n");
    assert!(delta(&worker, &worker, 5.0).is_none());
    assert!(delta(&api, &api, 0.0).is_none());
    assert_eq!(worker.dead_lettered, Some(3.0));
}

#[test]
fn replication_gauges_become_one_line_per_direction_and_the_worst_value_wins() {
    let worker = reading(
        r#"
orders_health_observed{service="worker-us",check="kafka:replicationFreshness",component="eu.heartbeats",unit="s"} 1.5
orders_health_observed{service="worker-us",check="cassandra:crossDcLag",component="eu->us",unit="s"} 0.2
orders_health_observed{service="worker-us",check="kafka:replicationFreshness",component="euro",unit="s"} 9
orders_health_observed{service="worker-us",check="worker:consumerLag",component="orders-0",unit="s"} 2
orders_health_observed{service="worker-us",check="worker:consumerLag",component="orders-1",unit="s"} 4
orders_worker_dead_lettered_total{region="us"} 2
"#,
    );
    let api = reading(
        r#"orders_health_observed{service="api-us",check="cassandra:crossDcLag",component="from eu",unit="s"} 0.7"#,
    );
    let mut store = SeriesStore::new(Duration::from_secs(900), Duration::from_secs(5));
    store.record_region("us", &["eu", "us"], 1_000, None, &[&worker, &api]);
    let view = store.view(1_000);
    let line = |kind: Kind, name: &str| {
        let series = view.series.iter().find(|s| s.key == kind).unwrap();
        series.lines.get(name).cloned().unwrap_or_default()
    };
    assert_eq!(line(Kind::ReplicationFreshness, "eu→us"), [Point(1_000, 1.5)]);
    assert_eq!(line(Kind::CrossDcLag, "eu→us"), [Point(1_000, 0.7)]);
    assert_eq!(
        line(Kind::ReplicationFreshness, "us euro"),
        [Point(1_000, 9.0)],
        "a word, not a prefix"
    );
    assert_eq!(line(Kind::ConsumerLag, "us"), [Point(1_000, 4.0)]);
    assert_eq!(line(Kind::DeadLettered, "us"), [Point(1_000, 2.0)]);
    assert!(line(Kind::PlacementRate, "us").is_empty());
    assert_eq!(
        view.series.len(),
        Kind::ALL.len(),
        "absent series are listed empty"
    );
}

#[test]
fn the_store_keeps_each_line_bounded_in_points_and_in_time() {
    // A minute at one point per 5 s: room for 12 points plus 16 of slack.
    let mut store = SeriesStore::new(Duration::from_secs(60), Duration::from_secs(5));
    for i in 0..1_000 {
        store.record(Kind::ConsumerLag, "eu", i * 1_000, 1.0);
    }
    store.record(Kind::ConsumerLag, "eu", 2_000_000, f64::NAN);
    let consumer_lag = |view: &SeriesView| view.series[4].lines["eu"].clone();
    let points = consumer_lag(&store.view(999_000));
    assert_eq!(points.len(), 28);
    assert_eq!(points.first().unwrap().0, 972_000);
    let points = consumer_lag(&store.view(1_050_000));
    assert_eq!(
        points.len(),
        10,
        "points older than the window age out without new ones"
    );
    assert_eq!(store.view(0).window_seconds, 60);
}
