//! Tests of the lag rules, one case per rule, and properties over arbitrary windows and offset tables.

use proptest::prelude::*;

use super::*;

fn at(second: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::seconds(second)
}

/// A window sampled every 5 s from second 0, one `(committed, log_end)` pair per sample.
fn window(offsets: &[(i64, i64)], last_commit_at: Option<i64>) -> PartitionWindow {
    let mut window = PartitionWindow::default();
    for (index, &(committed, log_end)) in offsets.iter().enumerate() {
        let sample = LagSample {
            committed_offset: committed,
            log_end_offset: log_end,
            sampled_at: at(index as i64 * 5),
            lag_seconds: 0.0,
            last_commit_at: last_commit_at.map(at),
        };
        window.push(sample).unwrap();
    }
    window
}

/// `now` right after the newest sample of `window`.
fn just_after(window: &PartitionWindow) -> DateTime<Utc> {
    window.latest().unwrap().sampled_at + TimeDelta::milliseconds(100)
}

fn status(offsets: &[(i64, i64)], last_commit_at: Option<i64>) -> LagStatus {
    let window = window(offsets, last_commit_at);
    evaluate(&window, just_after(&window))
}

#[test]
fn an_empty_window_is_ok() {
    assert_eq!(evaluate(&PartitionWindow::default(), at(0)), LagStatus::Ok);
}

#[test]
fn a_zero_lag_anywhere_in_the_window_is_ok_even_if_the_consumer_stopped_since() {
    assert_eq!(
        status(&[(10, 10), (10, 20), (10, 30), (10, 40)], None),
        LagStatus::Ok
    );
}

#[test]
fn a_committed_offset_going_backwards_is_a_rewind() {
    assert_eq!(
        status(&[(100, 120), (110, 130), (50, 140), (60, 150)], None),
        LagStatus::Rewind
    );
}

#[test]
fn a_stopped_consumer_under_a_growing_log_end_is_stop() {
    assert_eq!(
        status(&[(10, 20), (10, 40), (10, 60), (10, 80)], None),
        LagStatus::Stop
    );
}

#[test]
fn a_consumer_whose_last_commit_is_older_than_the_window_span_is_stop() {
    // Last commit at second -30, window spans 15 s: no commit for longer than the window.
    assert_eq!(
        status(&[(10, 20), (10, 40), (10, 60), (10, 80)], Some(-30)),
        LagStatus::Stop
    );
}

#[test]
fn a_consumer_committing_the_same_offset_while_lag_waits_is_stall() {
    // The worker reports a commit 1 s before the newest sample, yet the offset never moves.
    assert_eq!(
        status(&[(10, 20), (10, 20), (10, 20), (10, 20)], Some(14)),
        LagStatus::Stall
    );
}

#[test]
fn a_consumer_that_moves_but_never_reduces_its_lag_is_warn() {
    assert_eq!(
        status(&[(10, 20), (20, 35), (30, 50), (40, 65)], None),
        LagStatus::Warn
    );
    assert_eq!(
        status(&[(10, 20), (20, 30), (30, 40), (40, 50)], None),
        LagStatus::Warn
    );
}

#[test]
fn a_consumer_reducing_its_lag_somewhere_in_the_window_is_ok() {
    assert_eq!(
        status(&[(10, 20), (20, 35), (34, 40), (40, 60)], None),
        LagStatus::Ok
    );
}

#[test]
fn trend_rules_wait_for_a_window_spanning_the_minimum_span() {
    // Two samples 5 s apart, minimum span 10 s: a stop is not yet proven.
    assert_eq!(status(&[(10, 20), (10, 40)], None), LagStatus::Ok);
    // Rewind needs no trend and is reported at once.
    assert_eq!(status(&[(10, 20), (5, 40)], None), LagStatus::Rewind);
}

#[test]
fn the_window_keeps_only_the_newest_samples() {
    let offsets: Vec<(i64, i64)> = (0..15).map(|i| (100 + i, 200 + i)).collect();
    let window = window(&offsets, None);
    assert_eq!(window.len(), DEFAULT_CAPACITY);
    assert_eq!(window.samples().next().unwrap().committed_offset, 105);
    assert_eq!(window.span(), TimeDelta::seconds(45));
}

#[test]
fn a_sample_not_newer_than_the_last_is_rejected() {
    let mut window = window(&[(1, 2)], None);
    let stale = LagSample {
        committed_offset: 1,
        log_end_offset: 2,
        sampled_at: at(0),
        lag_seconds: 0.0,
        last_commit_at: None,
    };
    assert!(matches!(window.push(stale), Err(LagError::OutOfOrder { .. })));
}

#[test]
fn a_group_is_as_bad_as_its_worst_partition() {
    assert_eq!(group_status([]), LagStatus::Ok);
    assert_eq!(
        group_status([LagStatus::Ok, LagStatus::Warn, LagStatus::Ok]),
        LagStatus::Warn
    );
    assert_eq!(
        group_status([LagStatus::Warn, LagStatus::Stall]),
        LagStatus::Stall
    );
    assert!(LagStatus::Stop.is_error() && !LagStatus::Warn.is_error());
    assert_eq!(serde_json::to_string(&LagStatus::Stall).unwrap(), r#""STALL""#);
}

#[test]
fn a_consumer_behind_but_catching_up_warns_however_long_its_lag_and_never_fails() {
    // Given a consumer thousands of records behind, its lag past the red bound in seconds
    let trend = status(&[(0, 4000), (500, 4100), (1000, 4100), (1600, 4200)], None);
    assert_eq!(trend, LagStatus::Ok);
    // When its health is judged from the trend and the seconds
    let health = lag_health(trend, Status::Fail);
    // Then it warns: backlog is not death
    assert_eq!(health, Status::Warn);
}

#[test]
fn a_consumer_moving_slower_than_its_producers_warns() {
    // Given a consumer that moves but never reduces its lag
    let trend = status(&[(0, 100), (10, 120), (20, 140)], None);
    assert_eq!(trend, LagStatus::Warn);
    // When its health is judged, whatever the seconds say
    // Then it warns, never fails
    for by_seconds in [Status::Pass, Status::Warn, Status::Fail] {
        assert_eq!(lag_health(trend, by_seconds), Status::Warn);
    }
}

#[test]
fn a_consumer_replaying_after_a_rewind_warns() {
    // Given a committed offset that went back (a reset or a replay being worked through)
    let trend = status(&[(100, 200), (50, 200), (80, 210)], None);
    assert_eq!(trend, LagStatus::Rewind);
    // When its health is judged
    // Then it warns: it is moving
    assert_eq!(lag_health(trend, Status::Pass), Status::Warn);
}

#[test]
fn only_a_consumer_making_no_progress_fails() {
    // Given a stopped consumer and a stalled one, both with little lag in seconds
    let stopped = status(&[(10, 20), (10, 30), (10, 40)], None);
    let stalled = status(&[(10, 20), (10, 20), (10, 20)], Some(10));
    assert_eq!((stopped, stalled), (LagStatus::Stop, LagStatus::Stall));
    // When their health is judged
    // Then both fail
    assert_eq!(lag_health(stopped, Status::Pass), Status::Fail);
    assert_eq!(lag_health(stalled, Status::Pass), Status::Fail);
}

#[test]
fn a_consumer_caught_up_passes_and_one_behind_by_seconds_only_warns() {
    let trend = status(&[(10, 10), (20, 25)], None);
    assert_eq!(trend, LagStatus::Ok);
    assert_eq!(lag_health(trend, Status::Pass), Status::Pass);
    assert_eq!(lag_health(trend, Status::Warn), Status::Warn);
}

#[test]
fn lag_seconds_from_the_next_records_timestamp_is_its_age() {
    assert_eq!(lag_seconds_since(Some(at(10)), at(12)), 2.0);
    assert_eq!(lag_seconds_since(None, at(12)), 0.0);
    assert_eq!(
        lag_seconds_since(Some(at(13)), at(12)),
        0.0,
        "clock skew is clamped"
    );
}

#[test]
fn interpolated_lag_places_the_committed_record_between_two_polls() {
    let points = [(100, at(0)), (200, at(10)), (300, at(20))];
    // Offset 150 appeared half way between second 0 and 10: at second 5, so 25 s before second 30.
    assert_eq!(interpolated_lag_seconds(150, &points, at(30)), Some(25.0));
    assert_eq!(interpolated_lag_seconds(200, &points, at(30)), Some(20.0));
    assert_eq!(
        interpolated_lag_seconds(300, &points, at(30)),
        Some(0.0),
        "caught up"
    );
    // Older than every poll: 100 offsets per 10 s, so offset 50 is 5 s older than the first poll.
    assert_eq!(interpolated_lag_seconds(50, &points, at(30)), Some(35.0));
    assert_eq!(interpolated_lag_seconds(50, &[], at(30)), None);
    assert_eq!(interpolated_lag_seconds(50, &[(100, at(0))], at(30)), Some(30.0));
}

/// A window from `(committed advance, lag, seconds since the previous sample)` steps.
fn build(steps: &[(i64, i64, i64)], last_commit_at: Option<i64>) -> PartitionWindow {
    let mut window = PartitionWindow::default();
    let (mut committed, mut second) = (1_000i64, 0i64);
    for &(advance, lag, gap) in steps {
        committed += advance;
        second += gap;
        let sample = LagSample {
            committed_offset: committed,
            log_end_offset: committed + lag,
            sampled_at: at(second),
            lag_seconds: 0.0,
            last_commit_at: last_commit_at.map(at),
        };
        window.push(sample).unwrap();
    }
    window
}

fn steps(
    advance: std::ops::Range<i64>,
    lag: std::ops::Range<i64>,
) -> impl Strategy<Value = Vec<(i64, i64, i64)>> {
    prop::collection::vec((advance, lag, 1i64..10), 2..10)
}

proptest! {
    #[test]
    fn a_window_with_zero_lag_somewhere_is_always_ok(
        mut steps in steps(-5..20, 0..50),
        zero_at in any::<prop::sample::Index>(),
        commit in prop::option::of(-100i64..200),
        extra in 0i64..100,
    ) {
        let index = zero_at.index(steps.len());
        steps[index].1 = 0;
        let window = build(&steps, commit);
        prop_assert_eq!(evaluate(&window, just_after(&window) + TimeDelta::seconds(extra)), LagStatus::Ok);
    }

    #[test]
    fn a_window_with_lag_everywhere_and_a_backward_commit_is_a_rewind(
        mut steps in steps(0..20, 1..50),
        back_at in any::<prop::sample::Index>(),
        back in 1i64..10,
        commit in prop::option::of(-100i64..200),
    ) {
        let index = 1 + back_at.index(steps.len() - 1);
        steps[index].0 = -back;
        let window = build(&steps, commit);
        prop_assert_eq!(evaluate(&window, just_after(&window)), LagStatus::Rewind);
    }

    #[test]
    fn a_lagging_consumer_that_moves_forward_and_shrinks_its_lag_once_is_ok(
        mut steps in steps(0..20, 1..50),
        shrink_at in any::<prop::sample::Index>(),
        shrink in 1i64..10,
    ) {
        let index = 1 + shrink_at.index(steps.len() - 1);
        steps[index].0 = steps[index].0.max(1);
        steps[index - 1].1 = steps[index].1 + shrink;
        let window = build(&steps, None);
        prop_assert_eq!(evaluate(&window, just_after(&window)), LagStatus::Ok);
    }

    #[test]
    fn a_group_status_is_one_of_its_partitions_and_no_better_than_any(
        statuses in prop::collection::vec(
            prop::sample::select(vec![LagStatus::Ok, LagStatus::Warn, LagStatus::Rewind, LagStatus::Stall, LagStatus::Stop]),
            1..20,
        )
    ) {
        let group = group_status(statuses.clone());
        prop_assert!(statuses.contains(&group));
        prop_assert!(statuses.iter().all(|status| *status <= group));
    }

    #[test]
    fn interpolated_lag_is_never_negative_and_shrinks_as_the_consumer_advances(
        increments in prop::collection::vec((0i64..1_000, 1i64..60), 1..20),
        committed in 0i64..30_000,
        later in 0i64..600,
    ) {
        let mut points = Vec::new();
        let (mut offset, mut second) = (0i64, 0i64);
        for (produced, gap) in increments {
            offset += produced;
            second += gap;
            points.push((offset, at(second)));
        }
        let now = at(second + later);
        let lag = interpolated_lag_seconds(committed, &points, now).unwrap();
        let lag_further = interpolated_lag_seconds(committed + 1, &points, now).unwrap();
        prop_assert!(lag >= 0.0);
        prop_assert!(lag_further <= lag + 1e-9);
        if committed >= points[0].0 && committed < offset {
            // Inside the table the record appeared between the first poll and now.
            prop_assert!(lag <= (second + later - points[0].1.timestamp()) as f64 + 1e-9);
        }
    }
}
