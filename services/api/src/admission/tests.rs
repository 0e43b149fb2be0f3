use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use prometheus::IntGauge;

use super::*;

fn limit(per_second: f64, burst: u32) -> RateLimit {
    RateLimit { per_second, burst }
}

#[test]
fn a_rate_limit_reads_rate_per_second_and_burst() {
    assert_eq!("100/s,200".parse::<RateLimit>(), Ok(limit(100.0, 200)));
    assert_eq!(" 0.5/s , 3 ".parse::<RateLimit>(), Ok(limit(0.5, 3)));
    assert_eq!("20/s".parse::<RateLimit>(), Ok(limit(20.0, 20)));
    for bad in [
        "", "100", "100/m,2", "0/s,1", "-1/s,2", "10/s,0", "10/s,x", "nan/s,1",
    ] {
        assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn per_client_overrides_read_client_equals_limit_separated_by_semicolons() {
    let overrides: RateLimits = "storefront-a=5/s,10; storefront-b=1/s,1;".parse().unwrap();
    assert_eq!(overrides.0["storefront-a"], limit(5.0, 10));
    assert_eq!(overrides.0["storefront-b"], limit(1.0, 1));
    assert_eq!("".parse::<RateLimits>(), Ok(RateLimits::default()));
    assert!("storefront-a".parse::<RateLimits>().is_err());
    assert!("=5/s,10".parse::<RateLimits>().is_err());
    assert!("a=5".parse::<RateLimits>().is_err());
}

#[test]
fn a_client_gets_its_burst_then_is_refused_until_the_bucket_refills() {
    // Given a bucket of 2 refilled at 1 per second
    let limiter = RateLimiter::new(limit(1.0, 2), RateLimits::default());
    let start = Instant::now();
    // When the client sends three requests at once
    let first = limiter.take("c", start).unwrap();
    let second = limiter.take("c", start).unwrap();
    let third = limiter.take("c", start);
    // Then two pass, the third is refused and told when a token comes back
    assert_eq!((first.remaining, first.next_in_seconds), (1, 1));
    assert_eq!(second.remaining, 0);
    let refused = third.unwrap_err();
    assert_eq!((refused.remaining, refused.next_in_seconds), (0, 1));
    // And a second later one more passes
    assert!(limiter.take("c", start + Duration::from_secs(1)).is_ok());
    assert!(limiter.take("c", start + Duration::from_secs(1)).is_err());
}

#[test]
fn clients_have_their_own_buckets_and_overrides_replace_the_default() {
    // Given a default of 1 request and an override of 3 for client "big"
    let overrides: RateLimits = "big=1/s,3".parse().unwrap();
    let limiter = RateLimiter::new(limit(1.0, 1), overrides);
    let now = Instant::now();
    // When both spend their buckets
    assert!(limiter.take("small", now).is_ok());
    assert!(limiter.take("small", now).is_err());
    // Then the other client is untouched and gets its own burst
    for _ in 0..3 {
        assert!(limiter.take("big", now).is_ok());
    }
    assert!(limiter.take("big", now).is_err());
}

#[test]
fn a_bucket_never_holds_more_than_its_burst() {
    let limiter = RateLimiter::new(limit(10.0, 2), RateLimits::default());
    let start = Instant::now();
    assert!(limiter.take("c", start).is_ok());
    let later = start + Duration::from_secs(60);
    assert_eq!(limiter.take("c", later).unwrap().remaining, 1);
    assert!(limiter.take("c", later).is_ok());
    assert!(limiter.take("c", later).is_err());
}

#[test]
fn the_ratelimit_fields_follow_the_ietf_draft_syntax() {
    let quota = Quota {
        limit: limit(10.0, 50),
        remaining: 7,
        next_in_seconds: 1,
    };
    let mut headers = HeaderMap::new();
    quota.write_headers(&mut headers);
    assert_eq!(headers["ratelimit-policy"], "\"per-client\";q=50;w=5");
    assert_eq!(headers["ratelimit"], "\"per-client\";r=7;t=1");
}

#[tokio::test]
async fn beyond_the_in_flight_limit_a_request_is_shed_after_the_short_wait() {
    // Given a limit of one with a 5 ms wait, and one request holding the slot
    let gauge = IntGauge::new("g", "g").unwrap();
    let in_flight = InFlight::new(Bounds { limit: 1, tight: 1 }, Duration::from_millis(5));
    let held = in_flight.enter(&gauge).await.expect("a free slot");
    assert_eq!(gauge.get(), 1);
    // When another request arrives
    let start = Instant::now();
    let shed = in_flight.enter(&gauge).await;
    // Then it is shed at once (the wait, not a queue) and counted
    assert!(shed.is_none());
    assert!(
        start.elapsed() < Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(in_flight.shed_total(), 1);
    // And once the slot is released the next one is admitted
    drop(held);
    assert_eq!(gauge.get(), 0);
    assert!(in_flight.enter(&gauge).await.is_some());
}

#[tokio::test]
async fn a_request_waiting_briefly_gets_a_slot_freed_within_the_wait() {
    let gauge = IntGauge::new("g", "g").unwrap();
    let in_flight = Arc::new(InFlight::new(
        Bounds { limit: 1, tight: 1 },
        Duration::from_millis(40),
    ));
    let held = in_flight.enter(&gauge).await.expect("a free slot");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(held);
    });
    assert!(in_flight.enter(&gauge).await.is_some());
    assert_eq!(in_flight.shed_total(), 0);
}

#[test]
fn the_shed_rate_is_per_second_over_the_window_and_forgets_older_sheds() {
    // Given samples every second of a running total
    let mut rate = ShedRate::new(Duration::from_secs(10));
    let start = Instant::now();
    let at = |s: u64| start + Duration::from_secs(s);
    assert_eq!(rate.observe(at(0), 0), 0.0);
    // When 20 requests are shed over 2 s
    rate.observe(at(1), 0);
    assert_eq!(rate.observe(at(2), 20), 10.0);
    // Then the rate over the window counts them
    assert_eq!(rate.observe(at(10), 20), 2.0);
    // And once they are older than the window they are forgotten
    assert_eq!(rate.observe(at(13), 20), 0.0);
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_burst_that_drains_is_no_pressure() {
    // Given answers over two windows, slow ones among them but the fastest of each under the target
    let mut pressure = Pressure::new(ms(50), ms(100), ms(1000));
    let t0 = Instant::now();
    for (at, took) in [(0, 5), (40, 180), (90, 120), (110, 30), (150, 400), (230, 8)] {
        pressure.answered(ms(took), t0 + ms(at));
    }
    // Then the bound is never tightened
    assert!(!pressure.is_tight(t0 + ms(230)));
}

#[test]
fn a_window_whose_fastest_answer_is_slow_tightens_until_a_second_passes_without_shedding() {
    let mut pressure = Pressure::new(ms(50), ms(100), ms(1000));
    let t0 = Instant::now();
    // Given windows of 100 ms in which every answer took longer than 50 ms
    let slow = [(0, 70), (50, 90), (100, 60), (150, 80), (200, 75), (250, 90)];
    for (at, took) in slow {
        pressure.answered(ms(took), t0 + ms(at));
    }
    // Then two such windows are not yet a standing queue (a pause of the database looks alike)
    assert!(!pressure.is_tight(t0 + ms(250)));
    // And the third one is
    pressure.answered(ms(70), t0 + ms(300));
    assert!(pressure.is_tight(t0 + ms(300)));
    // And requests shed meanwhile keep it tight a second beyond the last of them
    pressure.shed(t0 + ms(900));
    assert!(pressure.is_tight(t0 + ms(1800)));
    // And a second with nothing shed loosens it, whatever the answers took
    assert!(!pressure.is_tight(t0 + ms(1901)));
    // And a shed while loose (a burst over the full bound) does not tighten it
    pressure.shed(t0 + ms(2000));
    assert!(!pressure.is_tight(t0 + ms(2001)));
}

#[tokio::test]
async fn under_pressure_a_request_beyond_the_tight_bound_is_shed_at_once() {
    // Given a bound of 4, tightened to 1, with a long queue wait
    let gauge = IntGauge::new("g", "g").unwrap();
    let in_flight = InFlight::new(Bounds { limit: 4, tight: 1 }, ms(40));
    assert_eq!(in_flight.limit(), 4);
    // When windows pass in which the fastest answer took longer than the target
    for _ in 0..=Pressure::WINDOWS {
        let admitted = in_flight.enter(&gauge).await.expect("a free slot");
        tokio::time::sleep(PRESSURE_TARGET + ms(60)).await;
        in_flight.answered(admitted);
    }
    assert_eq!(in_flight.limit(), 1);
    // Then one request is admitted and the next is shed without waiting, though slots are free
    let held = in_flight.enter(&gauge).await.expect("the tight bound's slot");
    let start = Instant::now();
    assert!(in_flight.enter(&gauge).await.is_none());
    assert!(start.elapsed() < ms(20), "{:?}", start.elapsed());
    assert_eq!(in_flight.shed_total(), 1);
    drop(held);
}
