//! Tests of `OrderStream`: lanes, dedupe, refusal of impossible envelopes, canonical order, gaps.

mod common;

use common::*;
use orders_domain::{DomainError, OrderEvent, OrderStatus, OrderStream, VersionVector, next_envelope};

#[test]
fn an_empty_stream_has_no_state() {
    let stream = OrderStream::new(order_id());
    assert_eq!(stream.state(), Ok(None));
    assert_eq!(stream.version(), 0);
    assert!(stream.is_empty());
}

#[test]
fn a_placed_order_starts_in_placed_status_with_its_details() {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    let e = log.append(&mut stream, &eu, placed());
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.order_id, order_id());
    assert_eq!(state.status, OrderStatus::Placed);
    assert_eq!(state.origin_region, eu);
    assert_eq!(state.total, eur(2500));
    assert_eq!(state.placed_at, e.occurred_at);
    assert_eq!(state.version, 1);
}

#[test]
fn events_whose_placement_is_not_visible_make_the_stream_incomplete() {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut eu_view = OrderStream::new(order_id());
    log.append(&mut eu_view, &eu, placed());
    let mut us_view = eu_view.clone();
    let cancel = log.append(&mut us_view, &us, cancelled("changed my mind"));

    let mut late = OrderStream::new(order_id());
    late.insert(cancel).unwrap();
    assert_eq!(
        late.state(),
        Err(DomainError::IncompleteStream { order_id: order_id() })
    );
}

#[test]
fn an_event_sorting_before_the_placement_makes_the_stream_incomplete() {
    let (eu, aa, mut log) = (region("eu"), region("aa"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    // A writer that never saw the placement: its event sorts first (equal sums, "aa" < "eu").
    let blind = next_envelope(
        &OrderStream::new(order_id()),
        &aa,
        cancelled("blind"),
        event_id(99),
        at(99),
    );
    stream.insert(blind).unwrap();
    assert!(matches!(
        stream.state(),
        Err(DomainError::IncompleteStream { .. })
    ));
}

#[test]
fn a_redelivered_event_is_folded_once() {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    log.append(&mut stream, &eu, placed());
    let e = log.append(&mut stream, &eu, reserved(1));
    assert_eq!(stream.insert(e.clone()), Ok(false));
    // A copy whose timestamp a store kept coarser is still the same event.
    let mut coarse = e;
    coarse.occurred_at = at(0);
    assert_eq!(stream.insert(coarse), Ok(false));
    assert_eq!(stream.version(), 2);
    assert_eq!(stream.state().unwrap().unwrap().version, 2);
}

#[test]
fn an_event_id_reused_at_another_lane_position_is_refused() {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    let first = log.append(&mut stream, &eu, placed());
    let copy = next_envelope(&stream, &eu, reserved(1), first.event_id, at(5));
    assert_eq!(
        stream.insert(copy),
        Err(DomainError::EventIdReused {
            event_id: first.event_id
        })
    );
}

#[test]
fn two_events_at_one_lane_position_are_a_lane_conflict() {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    log.append(&mut stream, &eu, placed());
    let before = stream.clone();
    let winner = log.append(&mut stream, &eu, reserved(1));
    let loser = next_envelope(&before, &eu, cancelled("x"), event_id(50), at(50));
    assert_eq!(
        stream.insert(loser),
        Err(DomainError::LaneConflict {
            order_id: order_id(),
            region: eu,
            seq: 2,
            existing: winner.event_id,
            incoming: event_id(50),
        })
    );
}

#[test]
fn an_event_of_another_order_is_refused() {
    let eu = region("eu");
    let other = OrderStream::new(uuid::Uuid::from_u128(42));
    let e = next_envelope(&other, &eu, placed(), event_id(1), at(1));
    let mut stream = OrderStream::new(order_id());
    assert!(matches!(stream.insert(e), Err(DomainError::OrderMismatch { .. })));
}

#[test]
fn an_envelope_whose_vector_omits_its_own_seq_is_refused() {
    let eu = region("eu");
    let mut stream = OrderStream::new(order_id());
    let mut e = next_envelope(&stream, &eu, placed(), event_id(1), at(1));
    e.causal = VersionVector::new();
    assert!(matches!(
        stream.insert(e.clone()),
        Err(DomainError::MalformedEnvelope { .. })
    ));
    e.causal.set(eu, 1);
    e.schema_version = 2;
    assert!(matches!(
        stream.insert(e),
        Err(DomainError::UnsupportedSchemaVersion { version: 2, .. })
    ));
}

#[test]
fn each_region_appends_to_its_own_lane_with_a_vector_covering_all_it_has_seen() {
    let (eu, us, ap, mut log) = (region("eu"), region("us"), region("ap"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(&mut stream, &eu, reserved(1));
    let from_us = log.append(&mut stream, &us, cancelled("x"));
    let from_ap = log.append(&mut stream, &ap, OrderEvent::StockReleased {});

    assert_eq!((from_us.seq, from_ap.seq), (1, 1));
    assert_eq!(stream.lane_head(&eu), 2);
    assert_eq!(stream.lane_head(&us), 1);
    assert_eq!(stream.lane_head(&region("sa")), 0);
    let expected: VersionVector = [(eu, 2), (us, 1), (ap.clone(), 1)].into_iter().collect();
    assert_eq!(from_ap.causal, expected);
    assert_eq!(from_ap.origin_region, ap);
    assert_eq!(stream.version(), 4);
}

#[test]
fn next_envelope_keeps_occurred_at_to_the_millisecond() {
    let now = at(3) + chrono::TimeDelta::nanoseconds(123_456_789);
    let e = next_envelope(
        &OrderStream::new(order_id()),
        &region("eu"),
        placed(),
        event_id(1),
        now,
    );
    assert_eq!(e.occurred_at, at(3) + chrono::TimeDelta::milliseconds(123));
}

#[test]
fn an_event_whose_predecessor_is_missing_waits_until_it_arrives() {
    let (eu, mut log, mut full) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    let e1 = log.append(&mut full, &eu, placed());
    let e2 = log.append(&mut full, &eu, reserved(1));
    let e3 = log.append(&mut full, &eu, authorized("auth-1"));

    let mut gappy = OrderStream::from_events(order_id(), [e1, e3]).unwrap();
    let state = gappy.state().unwrap().unwrap();
    assert_eq!((state.version, state.status), (1, OrderStatus::Placed));
    assert!(!gappy.is_causally_complete());
    assert_eq!(gappy.version(), 2);

    gappy.insert(e2).unwrap();
    assert!(gappy.is_causally_complete());
    assert_eq!(gappy.state(), full.state());
}

#[test]
fn ordered_sorts_by_causal_sum_then_region_then_seq() {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut base = OrderStream::new(order_id());
    let p = log.append(&mut base, &eu, placed());
    let (mut eu_view, mut us_view) = (base.clone(), base);
    let from_us = log.append(&mut us_view, &us, cancelled("x"));
    let from_eu = log.append(&mut eu_view, &eu, reserved(1));
    let merged = OrderStream::from_events(order_id(), [from_us.clone(), p.clone(), from_eu.clone()]).unwrap();
    let ids: Vec<_> = merged.ordered().iter().map(|e| e.event_id).collect();
    // Both later events have sum 2; "eu" sorts before "us".
    assert_eq!(ids, [p.event_id, from_eu.event_id, from_us.event_id]);
}
