//! Tests of the JSON forms: exact round trips, the envelope's top-level `type`, refusals on read.

mod common;

use common::*;
use orders_domain::{EventEnvelope, OrderEvent, OrderStatus, OrderStream, PlaceOrderRequest, next_envelope};
use serde_json::{Value, json};

/// An envelope written by `us` after seeing two `eu` events, so the vector has two slots.
fn envelope_of(event: OrderEvent) -> EventEnvelope {
    let (eu, us, mut log) = (region("eu"), region("us"), Log::new());
    let mut stream = OrderStream::new(order_id());
    log.append(&mut stream, &eu, placed());
    log.append(&mut stream, &eu, reserved(1));
    let now = at(10) + chrono::TimeDelta::milliseconds(7);
    next_envelope(&stream, &us, event, event_id(10), now)
}

#[test]
fn every_envelope_round_trips_exactly_through_json() {
    for event in every_variant() {
        let envelope = envelope_of(event);
        let text = serde_json::to_string(&envelope).unwrap();
        let back: EventEnvelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, envelope);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}

#[test]
fn the_envelope_carries_its_type_at_the_top_and_inside_the_payload() {
    let value = serde_json::to_value(envelope_of(OrderEvent::OrderConfirmed {})).unwrap();
    assert_eq!(
        value,
        json!({
            "event_id": event_id(10),
            "order_id": order_id(),
            "type": "OrderConfirmed",
            "schema_version": 1,
            "origin_region": "us",
            "seq": 1,
            "causal": {"eu": 2, "us": 1},
            "occurred_at": "2026-05-28T20:26:50.007Z",
            "payload": {"type": "OrderConfirmed"}
        })
    );
}

fn read(value: Value) -> Result<EventEnvelope, String> {
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[test]
fn an_envelope_whose_type_disagrees_with_its_payload_is_refused() {
    let mut value = serde_json::to_value(envelope_of(cancelled("x"))).unwrap();
    value["type"] = json!("OrderConfirmed");
    let err = read(value).unwrap_err();
    assert!(
        err.contains("disagrees with payload type OrderCancelled"),
        "{err}"
    );
}

#[test]
fn an_envelope_of_an_unknown_schema_version_or_region_is_refused() {
    let good = serde_json::to_value(envelope_of(cancelled("x"))).unwrap();
    let mut newer = good.clone();
    newer["schema_version"] = json!(2);
    assert!(read(newer).unwrap_err().contains("unsupported schema version 2"));
    let mut shouting = good.clone();
    shouting["origin_region"] = json!("US");
    assert!(read(shouting).unwrap_err().contains("invalid region"));
    let mut lying = good;
    lying["seq"] = json!(5);
    assert!(read(lying).unwrap_err().contains("malformed envelope"));
}

#[test]
fn an_envelope_with_a_seq_beyond_the_stores_bigint_is_refused() {
    let mut huge = serde_json::to_value(envelope_of(cancelled("x"))).unwrap();
    huge["seq"] = json!(u64::MAX);
    huge["causal"]["us"] = json!(u64::MAX);
    assert!(
        read(huge)
            .unwrap_err()
            .contains("a seq above 9223372036854775807")
    );
    let mut seen = serde_json::to_value(envelope_of(cancelled("x"))).unwrap();
    seen["causal"]["eu"] = json!(1_u64 << 63);
    assert!(read(seen).unwrap_err().contains("malformed envelope"));
}

#[test]
fn order_statuses_serialize_in_snake_case() {
    let names: Vec<Value> = [
        OrderStatus::Placed,
        OrderStatus::StockReserved,
        OrderStatus::PaymentAuthorized,
        OrderStatus::Confirmed,
        OrderStatus::Rejected,
        OrderStatus::Cancelled,
    ]
    .iter()
    .map(|s| {
        assert_eq!(json!(s.as_str()), serde_json::to_value(s).unwrap());
        serde_json::to_value(s).unwrap()
    })
    .collect();
    assert_eq!(
        names,
        [
            "placed",
            "stock_reserved",
            "payment_authorized",
            "confirmed",
            "rejected",
            "cancelled"
        ]
    );
}

#[test]
fn an_order_state_round_trips_through_json() {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    for event in [placed(), reserved(1), authorized("a"), cancelled("x")] {
        log.append(&mut stream, &eu, event);
    }
    let state = stream.state().unwrap().unwrap();
    let value = serde_json::to_value(&state).unwrap();
    assert_eq!(value["status"], "cancelled");
    assert_eq!(value["stock"]["state"], "reserved");
    assert_eq!(
        serde_json::from_value::<orders_domain::OrderState>(value).unwrap(),
        state
    );
}

#[test]
fn a_place_order_request_may_omit_the_second_address_line() {
    let req: PlaceOrderRequest = serde_json::from_value(json!({
        "customer_id": "00000000-0000-0000-0000-000000000007",
        "items": [{"sku": "SKU-1", "quantity": 2}],
        "shipping_address": {
            "name": "Ada Lovelace", "line1": "12 St James's Square",
            "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"
        }
    }))
    .unwrap();
    assert_eq!(req.shipping_address, address());
}
