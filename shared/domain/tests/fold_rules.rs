//! Tests of the fold's business rules (see the `fold` module docs), concurrent cases included.

mod common;

use common::*;
use orders_domain::{
    Compensation, EventEnvelope, OrderEvent, OrderState, OrderStatus, OrderStream, PaymentState, Region,
    StockState,
};

/// An order placed in eu, then reserved and authorized there: the usual starting point.
fn authorized_order(log: &mut Log) -> OrderStream {
    let eu = region("eu");
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(&mut stream, &eu, reserved(1));
    log.append(&mut stream, &eu, authorized("auth-1"));
    stream
}

/// Two regions each append one event without seeing the other's, then replication merges them.
fn concurrently(
    log: &mut Log,
    base: &OrderStream,
    a: (&Region, OrderEvent),
    b: (&Region, OrderEvent),
) -> OrderState {
    let (mut view_a, mut view_b) = (base.clone(), base.clone());
    let ea = log.append(&mut view_a, a.0, a.1);
    let eb = log.append(&mut view_b, b.0, b.1);
    assert!(!ea.causal.happened_before(&eb.causal) && !eb.causal.happened_before(&ea.causal));
    view_a.insert(eb).unwrap();
    view_a.state().unwrap().unwrap()
}

fn fold(events: &[EventEnvelope]) -> OrderState {
    OrderStream::from_events(order_id(), events.iter().cloned())
        .unwrap()
        .state()
        .unwrap()
        .unwrap()
}

#[test]
fn the_happy_path_reaches_confirmed_and_final() {
    let mut log = Log::new();
    let mut stream = authorized_order(&mut log);
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::PaymentAuthorized);
    assert!(!state.is_final());
    log.append(&mut stream, &region("eu"), OrderEvent::OrderConfirmed {});
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Confirmed);
    assert_eq!(state.compensation(), Compensation::default());
    assert!(state.is_final());
}

#[test]
fn progress_never_moves_the_status_backwards() {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut base = OrderStream::new(order_id());
    log.append(&mut base, &eu, placed());
    let state = concurrently(
        &mut log,
        &base,
        (&eu, OrderEvent::OrderConfirmed {}),
        (&us, reserved(1)),
    );
    assert_eq!(state.status, OrderStatus::Confirmed);
    assert_eq!(
        state.stock,
        StockState::Reserved {
            reservation_id: uuid::Uuid::from_u128(1)
        }
    );
}

#[test]
fn a_cancel_wins_over_a_concurrent_confirmation_in_either_order() {
    let (eu, us) = (region("eu"), region("us"));
    for (confirming, cancelling) in [(&eu, &us), (&us, &eu)] {
        let mut log = Log::new();
        let base = authorized_order(&mut log);
        let state = concurrently(
            &mut log,
            &base,
            (confirming, OrderEvent::OrderConfirmed {}),
            (cancelling, cancelled("too slow")),
        );
        assert_eq!(state.status, OrderStatus::Cancelled);
        assert_eq!(state.cancel_reason.as_deref(), Some("too slow"));
        assert_eq!(
            state.compensation(),
            Compensation {
                release_stock: true,
                void_payment: Some("auth-1".into())
            }
        );
    }
}

#[test]
fn a_cancel_after_confirmation_cancels_and_asks_to_void_the_authorization() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, OrderEvent::OrderConfirmed {});
    log.append(&mut stream, &eu, cancelled("changed my mind"));
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert!(!state.is_final());

    log.append(&mut stream, &eu, OrderEvent::StockReleased {});
    log.append(
        &mut stream,
        &eu,
        OrderEvent::PaymentVoided {
            authorization_id: "auth-1".into(),
        },
    );
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert_eq!(
        state.stock,
        StockState::Released {
            reservation_id: uuid::Uuid::from_u128(1)
        }
    );
    assert_eq!(
        state.payment,
        PaymentState::Voided {
            authorization_id: "auth-1".into()
        }
    );
    assert!(state.is_final());
}

#[test]
fn a_confirmation_after_a_cancel_leaves_the_order_cancelled() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, cancelled("first"));
    log.append(&mut stream, &eu, OrderEvent::OrderConfirmed {});
    log.append(&mut stream, &eu, cancelled("second"));
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert_eq!(state.cancel_reason.as_deref(), Some("first"));
}

#[test]
fn a_cancel_after_rejection_leaves_the_order_rejected() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, rejected("fraud check"));
    log.append(&mut stream, &eu, cancelled("too late"));
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Rejected);
    assert_eq!(state.reject_reason.as_deref(), Some("fraud check"));
    assert_eq!(state.cancel_reason, None);
}

#[test]
fn a_rejection_after_a_cancel_leaves_the_order_cancelled() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, cancelled("changed my mind"));
    log.append(&mut stream, &eu, rejected("late refusal"));
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert_eq!(state.reject_reason, None);
}

#[test]
fn a_rejection_overrides_a_confirmation() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, OrderEvent::OrderConfirmed {});
    log.append(&mut stream, &eu, rejected("fraud check"));
    assert_eq!(stream.state().unwrap().unwrap().status, OrderStatus::Rejected);
}

#[test]
fn effects_landing_after_a_cancel_are_recorded_so_they_get_undone() {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(&mut stream, &us, cancelled("changed my mind"));
    log.append(&mut stream, &eu, reserved(3));
    log.append(&mut stream, &eu, authorized("auth-9"));
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert_eq!(
        state.compensation(),
        Compensation {
            release_stock: true,
            void_payment: Some("auth-9".into())
        }
    );
}

#[test]
fn refusals_are_recorded_without_rejecting_the_order() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(
        &mut stream,
        &eu,
        OrderEvent::StockRejected {
            sku: "SKU-1".into(),
            requested: 2,
            available: 1,
        },
    );
    let state = stream.state().unwrap().unwrap();
    assert_eq!(state.status, OrderStatus::Placed);
    assert!(matches!(state.stock, StockState::Rejected { available: 1, .. }));

    let mut log = Log::new();
    let mut stream = authorized_order(&mut log);
    let declined = OrderEvent::PaymentDeclined {
        reason: "card expired".into(),
    };
    log.append(&mut stream, &eu, declined);
    // Already authorized: the authorization is what counts.
    assert!(matches!(
        stream.state().unwrap().unwrap().payment,
        PaymentState::Authorized { .. }
    ));
}

#[test]
fn a_reservation_outranks_a_concurrent_stock_rejection_in_either_order() {
    let (eu, us) = (region("eu"), region("us"));
    let refusal = || OrderEvent::StockRejected {
        sku: "SKU-1".into(),
        requested: 2,
        available: 0,
    };
    for (a, b) in [(&eu, &us), (&us, &eu)] {
        let mut log = Log::new();
        let mut base = OrderStream::new(order_id());
        log.append(&mut base, &eu, placed());
        let state = concurrently(&mut log, &base, (a, reserved(5)), (b, refusal()));
        assert_eq!(
            state.stock,
            StockState::Reserved {
                reservation_id: uuid::Uuid::from_u128(5)
            }
        );
    }
}

#[test]
fn an_authorization_outranks_a_concurrent_decline_in_either_order() {
    let (eu, us) = (region("eu"), region("us"));
    let decline = || OrderEvent::PaymentDeclined {
        reason: "timeout".into(),
    };
    for (a, b) in [(&eu, &us), (&us, &eu)] {
        let mut log = Log::new();
        let mut base = OrderStream::new(order_id());
        log.append(&mut base, &eu, placed());
        log.append(&mut base, &eu, reserved(1));
        let state = concurrently(&mut log, &base, (a, authorized("auth-2")), (b, decline()));
        assert!(
            matches!(state.payment, PaymentState::Authorized { ref authorization_id, .. } if authorization_id == "auth-2")
        );
    }
}

#[test]
fn a_void_naming_another_authorization_changes_nothing() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    let void = OrderEvent::PaymentVoided {
        authorization_id: "auth-other".into(),
    };
    log.append(&mut stream, &eu, void);
    assert!(matches!(
        stream.state().unwrap().unwrap().payment,
        PaymentState::Authorized { .. }
    ));
}

#[test]
fn a_duplicate_of_a_released_reservation_does_not_hold_stock_again() {
    let (eu, mut log) = (region("eu"), Log::new());
    let mut stream = authorized_order(&mut log);
    log.append(&mut stream, &eu, cancelled("x"));
    log.append(&mut stream, &eu, OrderEvent::StockReleased {});
    log.append(&mut stream, &eu, reserved(1));
    let state = stream.state().unwrap().unwrap();
    assert!(matches!(state.stock, StockState::Released { .. }));
}

#[test]
fn a_second_placement_from_another_region_changes_nothing_but_the_version() {
    let (eu, us) = (region("eu"), region("us"));
    let mut log = Log::new();
    let (mut eu_view, mut us_view) = (OrderStream::new(order_id()), OrderStream::new(order_id()));
    let from_eu = log.append(&mut eu_view, &eu, placed());
    let mut other_body = placed();
    if let OrderEvent::OrderPlaced {
        idempotency_fingerprint,
        ..
    } = &mut other_body
    {
        *idempotency_fingerprint = "ffff".into();
    }
    let from_us = log.append(&mut us_view, &us, other_body);
    let state = fold(&[from_us, from_eu]);
    assert_eq!(state.origin_region, eu);
    assert_eq!(state.idempotency_fingerprint, "9f86d081884c7d659a2feaa0c55ad015");
    assert_eq!((state.version, state.status), (2, OrderStatus::Placed));
}

#[test]
fn updated_at_never_moves_backwards_when_a_clock_lags() {
    let (eu, us) = (region("eu"), region("us"));
    let mut stream = OrderStream::new(order_id());
    let p = orders_domain::next_envelope(&stream, &eu, placed(), event_id(1), at(100));
    stream.insert(p).unwrap();
    let lagging = orders_domain::next_envelope(&stream, &us, reserved(1), event_id(2), at(40));
    stream.insert(lagging).unwrap();
    let state = stream.state().unwrap().unwrap();
    assert_eq!((state.placed_at, state.updated_at), (at(100), at(100)));
}

#[test]
fn the_state_position_merges_the_vectors_of_folded_events() {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut base = OrderStream::new(order_id());
    log.append(&mut base, &eu, placed());
    let state = concurrently(&mut log, &base, (&eu, reserved(1)), (&us, cancelled("x")));
    assert_eq!(state.position.get(&eu), 2);
    assert_eq!(state.position.get(&us), 1);
    assert_eq!(state.version, 3);
}
