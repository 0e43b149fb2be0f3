//! The placement protocol against in-memory fakes: replay, claims, refusals and durability, in
//! milliseconds and without the stack.
use chrono::TimeDelta;
use orders_domain::{OrderStatus, RequestedItem, ShippingAddress, price_order};

use super::fakes::{FakeAllotments, FakeClaims, FakeOrders, Wrote};
use super::*;

const CLIENT: &str = "shop-1";
const MUG: &str = "MUG-LOGO";
const CAP: &str = "CAP-BLUE";

/// One region's API over fakes.
struct Api {
    region: Region,
    orders: FakeOrders,
    claims: FakeClaims,
    allotments: FakeAllotments,
    placing: Placing,
    placed: prometheus::IntCounterVec,
}

impl Api {
    fn new(durability: Durability) -> Self {
        Api {
            region: Region::new("eu").unwrap(),
            orders: FakeOrders::new(durability),
            claims: FakeClaims::default(),
            allotments: FakeAllotments::default(),
            placing: Placing::default(),
            placed: prometheus::IntCounterVec::new(
                prometheus::Opts::new("orders_placed_total", "test"),
                &["durability"],
            )
            .unwrap(),
        }
    }

    fn global() -> Self {
        Api::new(Durability::Global)
    }

    async fn place(&self, key: &str, items: &[(&str, i64)]) -> Result<Placed, ApiError> {
        let placement = Placement {
            region: &self.region,
            orders: &self.orders,
            claims: &self.claims,
            allotments: &self.allotments,
            placing: &self.placing,
            placed: &self.placed,
        };
        placement.place(order(key, items)).await
    }

    fn counted(&self, durability: &str) -> u64 {
        self.placed.with_label_values(&[durability]).get()
    }
}

fn request(items: &[(&str, i64)]) -> PlaceOrderRequest {
    PlaceOrderRequest {
        customer_id: Uuid::from_u128(7),
        items: items
            .iter()
            .map(|&(sku, quantity)| RequestedItem {
                sku: sku.into(),
                quantity,
            })
            .collect(),
        shipping_address: ShippingAddress {
            name: "Ada".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        },
    }
}

fn order(key: &str, items: &[(&str, i64)]) -> Order {
    let request = request(items);
    let (items, total) = price_order(&request, &|_| Money::new(1250, "EUR").ok()).unwrap();
    Order {
        client: CLIENT.into(),
        key: key.into(),
        request,
        items,
        total,
    }
}

fn fingerprint_of(items: &[(&str, i64)]) -> String {
    fingerprint(&request(items))
}

fn status(error: &ApiError) -> u16 {
    error.parts().0.as_u16()
}

fn created(placed: Placed) -> (OrderState, &'static str) {
    match placed {
        Placed::Created { state, durability } => (state, durability),
        other => panic!("expected a new order, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_order_is_created_with_its_placement_written_after_its_rows() {
    let api = Api::global();

    let (state, durability) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(state.order_id, order_id_for(CLIENT, "k1"));
    assert_eq!(state.status, OrderStatus::Placed);
    assert_eq!(durability, "global");
    assert_eq!(api.counted("global"), 1);
    let wrote = api.orders.wrote();
    assert_eq!(
        wrote.len(),
        3,
        "the customer row, the open order and the event: {wrote:?}"
    );
    assert!(
        wrote[..2].contains(&Wrote::OpenOrder(state.order_id)),
        "the open-orders row, the placement's intent, comes before the event: {wrote:?}"
    );
    assert!(wrote[..2].contains(&Wrote::CustomerRow(state.order_id)));
    assert_eq!(wrote[2], Wrote::Placement(state.order_id), "the event comes last");
    assert_eq!(api.orders.events(state.order_id).len(), 1);
    assert_eq!(api.claims.count(), 1, "a claim is never released on success");
}

#[tokio::test]
async fn a_retry_of_a_placed_order_is_replayed_writing_nothing_that_stays() {
    let api = Api::global();
    let (first, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());
    let (claims, wrote) = (api.claims.count(), api.orders.wrote().len());

    let again = api.place("k1", &[(MUG, 2)]).await.unwrap();

    let Placed::Replayed(state) = again else {
        panic!("expected a replay, got {again:?}");
    };
    assert_eq!(state.order_id, first.order_id);
    assert_eq!(state.placed_at, first.placed_at);
    assert_eq!(
        api.claims.count(),
        claims,
        "the retry's own claim, made while the stream was read, is given up"
    );
    assert_eq!(api.orders.wrote().len(), wrote);
    assert_eq!(api.counted("global"), 1);
}

#[tokio::test]
async fn a_placed_key_sent_again_with_another_body_is_refused_with_422() {
    let api = Api::global();
    api.place("k1", &[(MUG, 2)]).await.unwrap();

    let error = api.place("k1", &[(MUG, 3)]).await.unwrap_err();

    assert!(matches!(error, ApiError::IdempotencyKeyReused), "{error:?}");
    assert_eq!(status(&error), 422);
    assert_eq!(api.orders.wrote().len(), 3, "nothing more written");
}

#[tokio::test]
async fn a_key_in_flight_in_another_request_is_refused_with_409_and_the_claim_given_up() {
    let api = Api::global();
    api.claims.given(
        CLIENT,
        "k1",
        "eu",
        &fingerprint_of(&[(MUG, 2)]),
        TimeDelta::seconds(1),
    );

    let error = api.place("k1", &[(MUG, 2)]).await.unwrap_err();

    assert!(matches!(error, ApiError::IdempotencyKeyInFlight), "{error:?}");
    assert_eq!(status(&error), 409);
    assert_eq!(api.claims.count(), 1, "only the other request's claim is left");
    assert!(api.orders.wrote().is_empty());
}

#[tokio::test]
async fn a_key_claimed_with_another_body_is_refused_with_422_even_when_its_request_died() {
    let api = Api::global();
    api.claims.given(
        CLIENT,
        "k1",
        "us",
        &fingerprint_of(&[(CAP, 1)]),
        TimeDelta::hours(1),
    );

    let error = api.place("k1", &[(MUG, 2)]).await.unwrap_err();

    assert!(matches!(error, ApiError::IdempotencyKeyReused), "{error:?}");
    assert_eq!(api.claims.count(), 1, "this request's claim is given up");
    assert!(api.orders.wrote().is_empty());
}

#[tokio::test]
async fn a_stale_claim_of_a_request_that_died_does_not_block_a_retry() {
    let api = Api::global();
    api.claims.given(
        CLIENT,
        "k1",
        "eu",
        &fingerprint_of(&[(MUG, 2)]),
        TimeDelta::seconds(11),
    );

    let (state, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(api.orders.events(state.order_id).len(), 1);
}

#[tokio::test]
async fn a_concurrent_claim_in_the_other_region_seen_in_the_read_back_makes_the_request_step_back() {
    let api = Api::global();
    api.claims.concurrent_claim("us", &fingerprint_of(&[(MUG, 2)]));

    let error = api.place("k1", &[(MUG, 2)]).await.unwrap_err();

    assert!(matches!(error, ApiError::IdempotencyKeyInFlight), "{error:?}");
    assert_eq!(api.claims.scopes(), [Scope::Everywhere, Scope::Everywhere]);
    assert_eq!(api.claims.count(), 1, "only us's claim is left");
    assert!(api.orders.wrote().is_empty());
}

#[tokio::test]
async fn in_local_durability_the_claim_reaches_this_region_only() {
    let api = Api::new(Durability::Local);
    api.claims.concurrent_claim("us", &fingerprint_of(&[(MUG, 2)]));

    let (_, durability) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(durability, "local");
    assert_eq!(api.counted("local"), 1);
    assert_eq!(api.claims.scopes(), [Scope::Local, Scope::Local]);
}

#[tokio::test]
async fn a_sold_out_sku_is_refused_before_anything_is_claimed_or_written() {
    let api = Api::global();
    api.allotments.set(MUG, 10);
    api.allotments.set(CAP, 0);

    let error = api.place("k1", &[(MUG, 2), (CAP, 1)]).await.unwrap_err();

    let ApiError::SoldOut { sku, pointer } = &error else {
        panic!("expected sold out, got {error:?}");
    };
    assert_eq!((sku.as_str(), pointer.as_str()), (CAP, "/items/1/sku"));
    assert_eq!(status(&error), 409);
    assert!(api.claims.scopes().is_empty());
    assert!(api.orders.wrote().is_empty());
}

#[tokio::test]
async fn a_retry_of_an_order_placed_before_its_sku_sold_out_is_replayed_not_refused() {
    let api = Api::global();
    let (first, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());
    api.allotments.set(MUG, 0);
    let wrote = api.orders.wrote().len();

    let again = api.place("k1", &[(MUG, 2)]).await.unwrap();

    let Placed::Replayed(state) = again else {
        panic!("expected a replay, got {again:?}");
    };
    assert_eq!(state.order_id, first.order_id);
    assert_eq!(api.claims.count(), 1, "nothing claimed for the retry");
    assert_eq!(api.orders.wrote().len(), wrote);
}

#[tokio::test]
async fn a_failed_stream_read_leaves_no_claim_behind() {
    let api = Api::global();
    api.orders.fail_reads(1);

    api.place("k1", &[(MUG, 2)]).await.unwrap_err();

    assert_eq!(
        api.claims.count(),
        0,
        "the claim made beside the read is given up"
    );
    created(api.place("k1", &[(MUG, 2)]).await.unwrap());
}

#[tokio::test]
async fn a_sku_with_enough_left_is_not_refused() {
    let api = Api::global();
    api.allotments.set(MUG, 2);

    created(api.place("k1", &[(MUG, 2)]).await.unwrap());
}

#[tokio::test]
async fn a_placement_the_other_region_missed_is_acknowledged_as_degraded() {
    let api = Api::global();
    api.orders.other_region_down();

    let (_, durability) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(durability, "global_degraded");
    assert_eq!(api.counted("global_degraded"), 1);
    assert_eq!(api.counted("global"), 0);
    assert!(api.orders.reach().unreachable().is_some());
}

#[tokio::test]
async fn while_the_other_region_is_unreachable_claims_stay_in_this_region_and_placements_are_degraded() {
    let api = Api::global();
    api.orders.reach().declare_unreachable("down");

    let (_, durability) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(durability, "global_degraded");
    assert_eq!(api.claims.scopes(), [Scope::Local, Scope::Local]);
}

#[tokio::test]
async fn a_claim_read_the_other_region_misses_is_made_again_in_this_region() {
    let api = Api::global();
    api.claims.fail_everywhere(1);

    let (_, durability) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(
        api.claims.scopes(),
        [Scope::Everywhere, Scope::Local, Scope::Local]
    );
    assert!(api.orders.reach().unreachable().is_some());
    assert_eq!(durability, "global_degraded");
    assert_eq!(api.claims.count(), 1, "one row per request, claimed twice");
}

#[tokio::test]
async fn a_failed_placement_write_is_unavailable_and_blocks_retries_only_while_its_claim_is_live() {
    let api = Api::global();
    api.orders.fail_places(1);

    let error = api.place("k1", &[(MUG, 2)]).await.unwrap_err();
    assert_eq!(status(&error), 503);
    let soon = api.place("k1", &[(MUG, 2)]).await.unwrap_err();
    assert!(matches!(soon, ApiError::IdempotencyKeyInFlight), "{soon:?}");
    api.claims.age(TimeDelta::seconds(11));
    let (state, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(api.orders.events(state.order_id).len(), 1);
}

#[tokio::test]
async fn a_placement_whose_open_order_row_fails_writes_no_event_and_a_retry_places_it() {
    let api = Api::global();
    api.orders.fail_open_orders(1);

    let error = api.place("k1", &[(MUG, 2)]).await.unwrap_err();
    assert_eq!(status(&error), 503);
    let order_id = order_id_for(CLIENT, "k1");
    assert!(
        api.orders.events(order_id).is_empty(),
        "no event without its intent: nothing could publish it after a crash"
    );
    assert!(!api.orders.wrote().contains(&Wrote::Placement(order_id)));
    api.claims.age(TimeDelta::seconds(11));
    let (state, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());

    assert_eq!(api.orders.events(state.order_id).len(), 1);
    assert!(api.orders.wrote().contains(&Wrote::OpenOrder(order_id)));
}

#[tokio::test]
async fn concurrent_retries_of_one_key_in_one_instance_place_it_once_and_replay_it() {
    let api = Api::global();

    let (a, b) = tokio::join!(api.place("k1", &[(MUG, 2)]), api.place("k1", &[(MUG, 2)]));

    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes
            .iter()
            .filter(|p| matches!(p, Placed::Created { .. }))
            .count(),
        1
    );
    assert!(outcomes.iter().any(|p| matches!(p, Placed::Replayed(_))));
    assert_eq!(api.counted("global"), 1);
}

#[tokio::test]
async fn two_keys_of_one_client_are_two_orders() {
    let api = Api::global();

    let (a, _) = created(api.place("k1", &[(MUG, 2)]).await.unwrap());
    let (b, _) = created(api.place("k2", &[(MUG, 2)]).await.unwrap());

    assert_ne!(a.order_id, b.order_id);
}
