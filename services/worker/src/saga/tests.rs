//! The saga against in-memory fakes: each step, compensation, cancels racing the worker's writes,
//! takeover and redelivery, in milliseconds and without the stack.
use orders_domain::{LineItem, Money, OrderStatus, ShippingAddress};

use super::fakes::World;
use super::*;

const MUG: &str = "MUG-LOGO";
const CAP: &str = "CAP-BLUE";

fn eu() -> Region {
    Region::new("eu").unwrap()
}

fn us() -> Region {
    Region::new("us").unwrap()
}

fn placed(items: &[(&str, u32)]) -> OrderEvent {
    let items: Vec<LineItem> = items
        .iter()
        .map(|&(sku, quantity)| LineItem {
            sku: sku.into(),
            quantity,
            unit_price: Money::new(1250, "EUR").unwrap(),
        })
        .collect();
    let total = items.iter().map(|i| 1250 * i64::from(i.quantity)).sum();
    OrderEvent::OrderPlaced {
        customer_id: Uuid::from_u128(7),
        items,
        total: Money::new(total, "EUR").unwrap(),
        shipping_address: ShippingAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        },
        idempotency_fingerprint: "f1".into(),
    }
}

fn cancel() -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: "changed my mind".into(),
    }
}

impl World {
    /// An order of `items` placed in `region`, its `OrderPlaced` in the region's lane.
    fn placed_in(&self, region: &Region, items: &[(&str, u32)]) -> Uuid {
        let order_id = Uuid::new_v4();
        self.lanes.append(order_id, region, placed(items));
        order_id
    }

    fn state(&self, order_id: Uuid) -> OrderState {
        self.lanes.stream(order_id).state().unwrap().unwrap()
    }

    fn count(&self, order_id: Uuid, type_name: &str) -> usize {
        self.lanes
            .types(order_id)
            .iter()
            .filter(|t| **t == type_name)
            .count()
    }
}

/// A world with 10 mugs in each region's allotment.
fn stocked() -> World {
    let world = World::default();
    world.stock.set(MUG, "eu", 10);
    world.stock.set(MUG, "us", 10);
    world
}

// ---------------------------------------------------------------- the steps

#[tokio::test]
async fn a_placed_order_is_reserved_authorized_and_confirmed_in_one_pass() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(
        world.lanes.types(order),
        [
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "OrderConfirmed"
        ]
    );
    assert_eq!(world.stock.available(MUG, "eu"), 8);
    assert!(world.stock.holds(MUG, "eu", order));
    assert_eq!(world.payment.authorized(), 1);
    assert_eq!(world.open_orders.removed(), [("eu".to_string(), order)]);
}

#[tokio::test]
async fn a_pass_no_cancel_meets_reads_the_whole_stream_once_and_its_own_positions_after() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);

    world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(world.lanes.full_reads(), 1, "the read that starts the pass");
    assert_eq!(world.lanes.writes().len(), 3);
}

#[tokio::test]
async fn a_pass_whose_write_a_cancel_displaced_reads_the_whole_stream_again() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_displacing(&eu(), "PaymentAuthorized");

    world.worker(&eu()).process_order(order).await.unwrap();

    assert!(world.lanes.full_reads() > 1, "{}", world.lanes.full_reads());
    assert_eq!(world.state(order).status.as_str(), "cancelled");
}

#[tokio::test]
async fn every_saga_event_of_a_pass_is_published_once_and_remembered() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    let worker = world.worker(&eu());

    let pass = worker.process_order(order).await.unwrap();

    assert_eq!(
        world.lanes.published_types(),
        ["StockReserved", "PaymentAuthorized", "OrderConfirmed"]
    );
    let published: Vec<Uuid> = world.lanes.published().iter().map(|e| e.event_id).collect();
    assert_eq!(pass.appended, published);
    assert!(published.iter().all(|id| worker.recent.contains(*id)));
}

#[tokio::test]
async fn the_reservation_is_recorded_before_the_payment_provider_is_asked() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.payment.fail(1);

    let error = world.worker(&eu()).process_order(order).await.unwrap_err();

    assert!(error.is_transient(), "{error}");
    assert_eq!(world.lanes.types(order), ["OrderPlaced", "StockReserved"]);
    assert_eq!(world.payment.authorize_calls(), 1);
}

#[tokio::test]
async fn a_pass_after_a_payment_outage_authorizes_once_and_confirms() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.payment.fail(1);
    let worker = world.worker(&eu());
    worker.process_order(order).await.unwrap_err();

    let pass = worker.process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(world.state(order).status, OrderStatus::Confirmed);
    assert_eq!(world.stock.reserve_calls(), 1);
    assert_eq!(world.payment.authorized(), 1);
    assert_eq!(world.count(order, "StockReserved"), 1);
}

#[tokio::test]
async fn an_order_short_of_stock_is_rejected_without_asking_for_payment() {
    let world = World::default();
    world.stock.set(MUG, "eu", 1);
    let order = world.placed_in(&eu(), &[(MUG, 2)]);

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(
        world.lanes.types(order),
        ["OrderPlaced", "StockRejected", "OrderRejected"]
    );
    assert_eq!(world.payment.authorize_calls(), 0);
    assert_eq!(world.stock.available(MUG, "eu"), 1);
    assert_eq!(world.open_orders.removed(), [("eu".to_string(), order)]);
}

#[tokio::test]
async fn an_order_of_two_skus_one_of_them_short_holds_nothing_once_rejected() {
    let world = World::default();
    world.stock.set(CAP, "eu", 10);
    world.stock.set(MUG, "eu", 0);
    let order = world.placed_in(&eu(), &[(CAP, 2), (MUG, 1)]);

    world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(world.state(order).status, OrderStatus::Rejected);
    assert_eq!(world.stock.available(CAP, "eu"), 10);
    assert!(!world.stock.holds(CAP, "eu", order));
}

#[tokio::test]
async fn a_declined_payment_rejects_the_order_and_gives_its_stock_back() {
    let world = stocked();
    world.payment.decline("card expired");
    let order = world.placed_in(&eu(), &[(MUG, 2)]);

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(
        world.lanes.types(order),
        [
            "OrderPlaced",
            "StockReserved",
            "PaymentDeclined",
            "OrderRejected",
            "StockReleased"
        ]
    );
    let state = world.state(order);
    assert_eq!(
        state.reject_reason.as_deref(),
        Some("payment declined: card expired")
    );
    assert_eq!(world.stock.available(MUG, "eu"), 10);
    assert!(world.payment.voids().is_empty());
    assert_eq!(world.open_orders.removed(), [("eu".to_string(), order)]);
}

#[tokio::test]
async fn an_order_cancelled_before_its_first_pass_ends_without_any_effect() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.append(order, &eu(), cancel());

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(world.lanes.types(order), ["OrderPlaced", "OrderCancelled"]);
    assert_eq!(world.stock.reserve_calls(), 0);
    assert_eq!(world.payment.authorize_calls(), 0);
    assert!(world.lanes.writes().is_empty());
    assert_eq!(world.open_orders.removed(), [("eu".to_string(), order)]);
}

#[tokio::test]
async fn a_confirmed_order_cancelled_later_has_its_stock_released_and_payment_voided() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    let worker = world.worker(&eu());
    worker.process_order(order).await.unwrap();
    world.lanes.append(order, &us(), cancel());

    let pass = worker.process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(world.state(order).status, OrderStatus::Cancelled);
    assert!(world.state(order).is_final());
    assert_eq!(world.stock.available(MUG, "eu"), 10);
    assert_eq!(
        world.payment.voids(),
        [(order, format!("auth-{order}"))],
        "the authorization is voided once"
    );
}

// ---------------------------------------------------------------- cancels racing the worker

#[tokio::test]
async fn a_reservation_displaced_by_a_cancel_is_recorded_again_and_given_back() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_displacing(&eu(), "StockReserved");

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    let state = world.state(order);
    assert_eq!(state.status, OrderStatus::Cancelled);
    assert!(state.is_final(), "{state:?}");
    assert_eq!(world.count(order, "StockReserved"), 1, "recorded again, once");
    assert_eq!(world.count(order, "StockReleased"), 1);
    assert_eq!(world.stock.available(MUG, "eu"), 10);
    assert!(!world.stock.holds(MUG, "eu", order));
}

#[tokio::test]
async fn an_authorization_displaced_by_a_cancel_is_recorded_again_and_voided() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_displacing(&eu(), "PaymentAuthorized");

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(world.state(order).status, OrderStatus::Cancelled);
    assert_eq!(world.count(order, "PaymentAuthorized"), 1, "recorded again, once");
    assert_eq!(world.count(order, "PaymentVoided"), 1);
    assert_eq!(world.payment.voids(), [(order, format!("auth-{order}"))]);
    assert_eq!(world.stock.available(MUG, "eu"), 10);
}

#[tokio::test]
async fn no_order_is_confirmed_on_a_premise_a_cancel_displaced() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_displacing(&eu(), "PaymentAuthorized");

    world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(world.count(order, "OrderConfirmed"), 0);
    assert!(!world.lanes.published_types().contains(&"OrderConfirmed"));
    for write in world.lanes.writes() {
        assert!(
            write.iter().all(|e| e.type_name() != "OrderConfirmed"),
            "a confirmation was written: {write:?}"
        );
    }
}

#[tokio::test]
async fn a_displaced_event_is_never_published() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_displacing(&eu(), "StockReserved");

    world.worker(&eu()).process_order(order).await.unwrap();

    let displaced = world.lanes.writes()[0][0].clone();
    assert_eq!(displaced.type_name(), "StockReserved");
    let stream = world.lanes.stream(order);
    assert!(!stream.contains(displaced.event_id));
    let published = world.lanes.published();
    assert!(published.iter().all(|e| e.event_id != displaced.event_id));
    assert!(
        published.iter().all(|e| stream.contains(e.event_id)),
        "only events read back are published"
    );
}

#[tokio::test]
async fn a_cancel_landing_just_after_a_write_takes_the_next_position_and_the_order_is_compensated() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.cancel_after(&eu(), "PaymentAuthorized");

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(
        world.lanes.types(order),
        [
            "OrderPlaced",
            "StockReserved",
            "PaymentAuthorized",
            "OrderCancelled",
            "StockReleased",
            "PaymentVoided"
        ]
    );
    assert_eq!(world.payment.voids().len(), 1);
}

// ---------------------------------------------------------------- redelivery and crashes

#[tokio::test]
async fn a_redelivered_record_never_doubles_an_effect() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    let worker = world.worker(&eu());
    worker.process_order(order).await.unwrap();
    let (types, writes) = (world.lanes.types(order), world.lanes.writes().len());

    let pass = worker.process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert!(pass.appended.is_empty(), "nothing new to publish");
    assert_eq!(world.lanes.types(order), types);
    assert_eq!(world.lanes.writes().len(), writes);
    assert_eq!(world.stock.reserve_calls(), 1);
    assert_eq!(world.payment.authorize_calls(), 1);
    assert_eq!(world.stock.available(MUG, "eu"), 8);
}

#[tokio::test]
async fn a_write_that_failed_after_the_reservation_reserves_nothing_more_on_the_retry() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.fail_writes(1);
    let worker = world.worker(&eu());

    let error = worker.process_order(order).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(world.lanes.types(order), ["OrderPlaced"]);
    worker.process_order(order).await.unwrap();

    assert_eq!(world.state(order).status, OrderStatus::Confirmed);
    assert_eq!(
        world.stock.available(MUG, "eu"),
        8,
        "the order's row made the retry a no-op"
    );
    assert_eq!(world.count(order, "StockReserved"), 1);
}

#[tokio::test]
async fn a_pass_that_could_not_publish_leaves_its_events_for_the_next_pass_to_publish() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.lanes.fail_publishes(1);
    let worker = world.worker(&eu());

    let error = worker.process_order(order).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    let pass = worker.process_order(order).await.unwrap();

    let saga: Vec<Uuid> = (world.lanes.stream(order).ordered().iter())
        .filter(|e| e.type_name() != "OrderPlaced")
        .map(|e| e.event_id)
        .collect();
    assert_eq!(pass.appended, saga, "every saga event published again");
    assert_eq!(world.payment.authorize_calls(), 1);
}

#[tokio::test]
async fn a_pass_publishes_saga_events_of_its_region_that_a_crashed_process_wrote() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    // A process wrote the saga's events and died before the broker took them.
    world.lanes.fail_publishes(3);
    world.worker(&eu()).process_order(order).await.unwrap_err();
    assert!(world.lanes.published().is_empty());
    let restarted = world.worker(&eu());

    let pass = restarted.process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(
        world.lanes.published_types(),
        ["StockReserved", "PaymentAuthorized", "OrderConfirmed"]
    );
    assert!(pass.appended.iter().all(|id| restarted.recent.contains(*id)));
    assert_eq!(world.payment.authorize_calls(), 1);
}

#[tokio::test]
async fn a_provider_refusing_the_request_is_not_worth_retrying() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.payment.refuse();

    let error = world.worker(&eu()).process_order(order).await.unwrap_err();

    assert!(!error.is_transient(), "{error}");
}

#[tokio::test]
async fn an_order_whose_placement_has_not_arrived_is_incomplete_and_left_untouched() {
    let world = stocked();
    let order = Uuid::new_v4();
    let mut seen = OrderStream::new(order);
    let placement = next_envelope(&seen, &eu(), placed(&[(MUG, 2)]), Uuid::now_v7(), Utc::now());
    seen.insert(placement).unwrap();
    // us cancelled it; eu's placement is not replicated here yet.
    world
        .lanes
        .given(next_envelope(&seen, &us(), cancel(), Uuid::now_v7(), Utc::now()));

    let pass = world.worker(&us()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Incomplete);
    assert!(world.lanes.writes().is_empty());
    assert_eq!(world.stock.reserve_calls(), 0);
}

// ---------------------------------------------------------------- ownership and takeover

#[tokio::test]
async fn an_order_of_a_region_taken_over_is_left_to_its_new_owner() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    world.owners.take_over("eu", "us");

    let pass = world.worker(&eu()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::NotOwner { owner: "us".into() });
    assert!(world.lanes.writes().is_empty());
    assert_eq!(world.stock.reserve_calls(), 0);
    assert_eq!(world.payment.authorize_calls(), 0);
}

#[tokio::test]
async fn after_a_takeover_the_survivor_goes_on_from_the_effects_the_dead_region_recorded() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    // eu reserved and recorded it, then died before asking for payment.
    world.stock.reserve(MUG, "eu", order, 2).await.unwrap();
    world.lanes.append(
        order,
        &eu(),
        OrderEvent::StockReserved {
            reservation_id: Uuid::new_v5(&order, b"stock"),
        },
    );
    world.owners.take_over("eu", "us");

    let pass = world.worker(&us()).process_order(order).await.unwrap();

    assert_eq!(pass.outcome, Outcome::Done);
    assert_eq!(world.state(order).status, OrderStatus::Confirmed);
    assert_eq!(world.stock.reserve_calls(), 1, "no second reservation");
    assert_eq!(world.stock.available(MUG, "eu"), 8);
    assert_eq!(world.stock.available(MUG, "us"), 10);
    let us_lane: Vec<_> = (world.lanes.stream(order).ordered().iter())
        .filter(|e| e.origin_region == us())
        .map(|e| e.type_name())
        .collect();
    assert_eq!(us_lane, ["PaymentAuthorized", "OrderConfirmed"]);
}

#[tokio::test]
async fn a_survivor_finds_in_the_origins_allotment_the_reservation_the_dead_region_never_recorded() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    // eu reserved, then died before recording it.
    world.stock.reserve(MUG, "eu", order, 2).await.unwrap();
    world.owners.take_over("eu", "us");

    world.worker(&us()).process_order(order).await.unwrap();

    assert_eq!(world.state(order).status, OrderStatus::Confirmed);
    assert_eq!(world.stock.available(MUG, "eu"), 8, "held once, not twice");
    assert_eq!(
        world.stock.available(MUG, "us"),
        10,
        "nothing counted in the survivor's own"
    );
}

#[tokio::test]
async fn a_record_of_a_saga_event_this_worker_published_needs_no_pass() {
    let world = stocked();
    let order = world.placed_in(&eu(), &[(MUG, 2)]);
    let worker = world.worker(&eu());
    worker.process_order(order).await.unwrap();

    for event in world.lanes.published() {
        assert_eq!(worker.no_pass_needed(&event), Some(NoPass::Published));
    }
    let placement = world.lanes.stream(order).ordered()[0].clone();
    assert_eq!(worker.no_pass_needed(&placement), None);
}

#[tokio::test]
async fn another_regions_event_needs_no_pass_unless_it_is_a_cancel_or_its_orders_were_taken_over() {
    let world = stocked();
    let order = world.placed_in(&us(), &[(MUG, 2)]);
    let placement = world.lanes.stream(order).ordered()[0].clone();
    let cancel = world.lanes.append(order, &us(), cancel());
    let worker = world.worker(&eu());

    assert_eq!(
        worker.no_pass_needed(&placement),
        Some(NoPass::OwnedByOrigin { owner: "us".into() })
    );
    assert_eq!(worker.no_pass_needed(&cancel), None);
    world.owners.take_over("us", "eu");
    assert_eq!(worker.no_pass_needed(&placement), None);
}
