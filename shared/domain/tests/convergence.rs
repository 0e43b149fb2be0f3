//! Property tests: regions that append with partial knowledge of each other converge on one
//! state whatever order, and however often, their events are delivered.

mod common;

use common::*;
use orders_domain::{
    DomainError, EventEnvelope, OrderEvent, OrderStream, Region, SagaStep, decide_cancel, next_envelope,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Action {
    /// The region decides something from what it sees and appends it to its lane.
    Write { region: usize, choice: u8 },
    /// Replication: some of `from`'s events (selected by `mask`) reach `to`, possibly with gaps.
    Sync { from: usize, to: usize, mask: u64 },
}

fn history() -> impl Strategy<Value = (usize, Vec<Action>)> {
    (2..=3usize).prop_flat_map(|regions| {
        let action = prop_oneof![
            3 => (0..regions, any::<u8>()).prop_map(|(region, choice)| Action::Write { region, choice }),
            2 => (0..regions, 0..regions, any::<u64>())
                .prop_map(|(from, to, mask)| Action::Sync { from, to, mask }),
        ];
        (Just(regions), vec(action, 1..40))
    })
}

/// What a region writes next: mostly what a worker or a customer would, sometimes any fact.
fn decide(view: &OrderStream, region: &Region, choice: u8, n: u64) -> Option<OrderEvent> {
    let state = match view.state() {
        Ok(Some(state)) => state,
        // A retried placement that reached this region before replication did.
        Ok(None) | Err(DomainError::IncompleteStream { .. }) => {
            return choice.is_multiple_of(4).then(placed);
        }
        Err(e) => panic!("unexpected {e}"),
    };
    let yes = choice & 0x80 == 0;
    match choice % 8 {
        0..=3 => match state.next_saga_step() {
            SagaStep::ReserveStock if yes => Some(reserved(u128::from(n))),
            SagaStep::ReserveStock => Some(OrderEvent::StockRejected {
                sku: "SKU-1".into(),
                requested: 2,
                available: 0,
            }),
            SagaStep::AuthorizePayment if yes => Some(authorized(&format!("auth-{region}-{n}"))),
            SagaStep::AuthorizePayment => Some(OrderEvent::PaymentDeclined {
                reason: "declined".into(),
            }),
            SagaStep::Confirm => Some(OrderEvent::OrderConfirmed {}),
            SagaStep::Reject { reason } => Some(rejected(&reason)),
            SagaStep::Compensate(c) if c.release_stock => Some(OrderEvent::StockReleased {}),
            SagaStep::Compensate(c) => Some(OrderEvent::PaymentVoided {
                authorization_id: c.void_payment?,
            }),
            SagaStep::Done => None,
        },
        4 => decide_cancel(&state, format!("cancelled in {region}")).ok()?,
        _ => {
            let any = every_variant();
            Some(any[usize::from(choice / 8) % any.len()].clone())
        }
    }
}

/// Plays the history and returns every event written, in writing order.
fn simulate(regions: usize, actions: &[Action]) -> Vec<EventEnvelope> {
    let names: Vec<Region> = ["eu", "us", "ap"][..regions].iter().map(|n| region(n)).collect();
    let mut views = vec![OrderStream::new(order_id()); regions];
    let mut written = Vec::new();
    let start = [Action::Write { region: 0, choice: 0 }];
    for (n, action) in start.iter().chain(actions).enumerate() {
        let n = n as u64 + 1;
        match *action {
            Action::Write { region, choice } => {
                let view = &views[region];
                let Some(event) = decide(view, &names[region], choice, n) else {
                    continue;
                };
                // Each region's clock is off by a different amount.
                let now = at(n as i64 * 10 - region as i64 * 25);
                let e = next_envelope(view, &names[region], event, event_id(n), now);
                if view.is_causally_complete() {
                    for seen in view.ordered() {
                        assert!(seen.causal.happened_before(&e.causal));
                    }
                }
                views[region].insert(e.clone()).unwrap();
                written.push(e);
            }
            Action::Sync { from, to, mask } => {
                let sent: Vec<EventEnvelope> = views[from]
                    .ordered()
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << (i % 64)) != 0)
                    .map(|(_, e)| e.clone())
                    .collect();
                for e in sent {
                    views[to].insert(e).unwrap();
                }
            }
        }
    }
    written
}

/// A permutation drawn from `seed` (xorshift and Fisher-Yates), so proptest can shrink it.
fn shuffled<T: Clone>(items: &[T], mut seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    for i in (1..out.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    out
}

fn state_json(stream: &OrderStream) -> String {
    serde_json::to_string(&stream.state().unwrap().unwrap()).unwrap()
}

fn has_concurrent_events(events: &[EventEnvelope]) -> bool {
    events.iter().enumerate().any(|(i, a)| {
        events[i + 1..]
            .iter()
            .any(|b| !a.causal.happened_before(&b.causal) && !b.causal.happened_before(&a.causal))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_delivery_order_of_the_same_events_gives_the_same_state(
        (regions, actions) in history(),
        seed in 1..u64::MAX,
    ) {
        let written = simulate(regions, &actions);
        let reference = OrderStream::from_events(order_id(), written.clone()).unwrap();
        prop_assert!(reference.is_causally_complete());

        let mut delivered = OrderStream::new(order_id());
        for e in shuffled(&written, seed) {
            delivered.insert(e).unwrap();
            // Part of the stream is a state or a wait for the placement, never another error;
            // and the saga is done exactly when the order is final, in every state on the way.
            match delivered.state() {
                Ok(Some(state)) => {
                    prop_assert_eq!(state.is_final(), state.next_saga_step() == SagaStep::Done);
                }
                Err(DomainError::IncompleteStream { .. }) => {}
                other => prop_assert!(false, "unexpected {other:?}"),
            }
        }
        prop_assert_eq!(state_json(&delivered), state_json(&reference));
        let ids = |s: &OrderStream| s.ordered().iter().map(|e| e.event_id).collect::<Vec<Uuid>>();
        prop_assert_eq!(ids(&delivered), ids(&reference));
    }

    #[test]
    fn events_delivered_more_than_once_are_folded_once(
        (regions, actions) in history(),
        seed in 1..u64::MAX,
        mask in any::<u64>(),
    ) {
        let written = simulate(regions, &actions);
        let reference = OrderStream::from_events(order_id(), written.clone()).unwrap();
        let again = written.iter().enumerate().filter(|(i, _)| mask & (1 << (i % 64)) != 0);
        let mut deliveries = written.clone();
        deliveries.extend(again.map(|(_, e)| e.clone()));
        let stream = OrderStream::from_events(order_id(), shuffled(&deliveries, seed)).unwrap();
        prop_assert_eq!(stream.version(), written.len() as u64);
        prop_assert_eq!(state_json(&stream), state_json(&reference));
        prop_assert_eq!(stream.state().unwrap().unwrap().version, written.len() as u64);
    }

    #[test]
    fn the_canonical_order_never_puts_an_event_before_its_cause(
        (regions, actions) in history(),
        seed in 1..u64::MAX,
    ) {
        let written = simulate(regions, &actions);
        let stream = OrderStream::from_events(order_id(), shuffled(&written, seed)).unwrap();
        let ordered = stream.ordered();
        for (i, earlier) in ordered.iter().enumerate() {
            for later in &ordered[i + 1..] {
                prop_assert!(!later.causal.happened_before(&earlier.causal));
            }
        }
        // Each lane stays in seq order inside the canonical order.
        for (i, earlier) in ordered.iter().enumerate() {
            for later in &ordered[i + 1..] {
                if later.origin_region == earlier.origin_region {
                    prop_assert!(later.seq > earlier.seq);
                }
            }
        }
    }
}

#[test]
fn the_generated_histories_often_hold_truly_concurrent_events() {
    let mut runner = TestRunner::deterministic();
    let strategy = history();
    let samples = 200;
    let concurrent = (0..samples)
        .filter(|_| {
            let (regions, actions) = strategy.new_tree(&mut runner).unwrap().current();
            has_concurrent_events(&simulate(regions, &actions))
        })
        .count();
    assert!(
        concurrent * 3 > samples,
        "only {concurrent} of {samples} histories"
    );
}
