//! The launch panel's arithmetic from two scrapes, without a stack.
use super::*;
use crate::prom;

const API: &str = r#"
orders_placed_total{durability="global",region="eu"} 100
orders_placed_total{durability="global_degraded",region="eu"} 20
orders_admission_refused_total{reason="overloaded",region="eu"} 5
orders_admission_refused_total{reason="rate_limited",region="eu"} 7
orders_admission_in_flight{region="eu"} 12
orders_admission_in_flight_limit{region="eu"} 64
orders_allotment_available{sku="MUG-LOGO",region="eu"} 900
orders_allotment_available{sku="CAP",region="eu"} 50
"#;

const WORKER: &str = r#"
orders_placed_to_processed_seconds_bucket{region="eu",le="0.1"} 10
orders_placed_to_processed_seconds_bucket{region="eu",le="1"} 10
orders_placed_to_processed_seconds_bucket{region="eu",le="+Inf"} 10
"#;

fn scrape(text: &str) -> Scrape {
    Scrape::from_samples(&prom::parse(text))
}

#[test]
fn a_scrape_reads_accepted_refused_in_flight_outcomes_and_allotments() {
    let api = scrape(API);
    assert_eq!(api.accepted, Some(120.0));
    assert_eq!((api.shed, api.rate_limited), (Some(5.0), Some(7.0)));
    assert_eq!((api.in_flight, api.in_flight_limit), (Some(12.0), Some(64.0)));
    assert_eq!(api.allotments["MUG-LOGO"], 900.0);
    let worker = scrape(WORKER);
    assert_eq!(worker.accepted, None);
    assert_eq!(worker.outcome, [(0.1, 10.0), (1.0, 10.0), (f64::INFINITY, 10.0)]);
}

#[test]
fn a_region_adds_its_services_rates_over_the_interval_and_totals_as_scraped() {
    // Given an api that accepted 50, shed 20 and rate-limited 10 in 5 s, and a worker that saw
    // 10 outcomes between 0.1 and 1 s
    let (api_before, worker_before) = (scrape(API), scrape(WORKER));
    let mut api_now = api_before.clone();
    api_now.accepted = Some(170.0);
    api_now.shed = Some(25.0);
    api_now.rate_limited = Some(17.0);
    let mut worker_now = worker_before.clone();
    worker_now.outcome = vec![(0.1, 10.0), (1.0, 20.0), (f64::INFINITY, 20.0)];

    // When the region is added up
    let launch = region_launch(&[
        Pair {
            previous: Some(&api_before),
            current: &api_now,
            seconds: 5.0,
        },
        Pair {
            previous: Some(&worker_before),
            current: &worker_now,
            seconds: 5.0,
        },
    ]);

    // Then the rates are per second, the totals as scraped, the percentiles of the interval only
    assert_eq!(launch.accepted_per_second, Some(10.0));
    assert_eq!(launch.shed_per_second, Some(4.0));
    assert_eq!(launch.rate_limited_per_second, Some(2.0));
    assert_eq!((launch.shed_total, launch.rate_limited_total), (25.0, 17.0));
    assert_eq!(
        (launch.in_flight, launch.in_flight_limit),
        (Some(12.0), Some(64.0))
    );
    assert!((launch.outcome_p50.unwrap() - 0.55).abs() < 1e-9, "{launch:?}");

    // and a service seen for the first time gives totals but no rate yet
    let first = region_launch(&[Pair {
        previous: None,
        current: &api_now,
        seconds: 0.0,
    }]);
    assert_eq!(first.accepted_per_second, None);
    assert_eq!(first.shed_total, 25.0);
}

#[test]
fn the_fastest_selling_skus_come_first_with_each_regions_remainder() {
    let mut allotments = Allotments::default();
    let left = |mug: f64, cap: f64| BTreeMap::from([("MUG".to_string(), mug), ("CAP".to_string(), cap)]);
    allotments.record("eu", 0, &left(1000.0, 50.0));
    allotments.record("us", 0, &left(1000.0, 50.0));
    allotments.record("eu", 30_000, &left(700.0, 50.0));
    allotments.record("us", 30_000, &left(900.0, 60.0));
    let top = allotments.fastest(30_000);
    assert_eq!(top[0].sku, "MUG");
    assert_eq!(top[0].sold_per_minute, 800.0);
    assert_eq!(top[0].remaining["eu"], 700.0);
    assert_eq!(top[0].remaining["us"], 900.0);
    assert_eq!(top[1].sold_per_minute, 0.0, "a restock is no negative sale");
    // older than a minute, a reading no longer counts
    allotments.record("eu", 120_000, &left(700.0, 50.0));
    assert_eq!(allotments.fastest(120_000)[0].remaining.get("us"), None);
}
