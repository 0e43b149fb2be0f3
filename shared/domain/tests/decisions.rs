//! Tests of the pure decisions: saga steps, cancel, placement validation, pricing, order ids,
//! and the validated value types.

mod common;

use common::*;
use orders_domain::{
    Compensation, DomainError, FieldError, Money, OrderEvent, OrderState, OrderStatus, OrderStream,
    PlaceOrderRequest, PricingError, Region, RequestedItem, SagaStep, decide_cancel, order_id_for,
    price_order, validate_place_order,
};
use uuid::Uuid;

fn state_after(events: Vec<OrderEvent>) -> OrderState {
    let (eu, mut log, mut stream) = (region("eu"), Log::new(), OrderStream::new(order_id()));
    log.append(&mut stream, &eu, placed());
    for event in events {
        log.append(&mut stream, &eu, event);
    }
    stream.state().unwrap().unwrap()
}

#[test]
fn the_saga_walks_reserve_authorize_confirm_done() {
    assert_eq!(state_after(vec![]).next_saga_step(), SagaStep::ReserveStock);
    assert_eq!(
        state_after(vec![reserved(1)]).next_saga_step(),
        SagaStep::AuthorizePayment
    );
    assert_eq!(
        state_after(vec![reserved(1), authorized("a")]).next_saga_step(),
        SagaStep::Confirm
    );
    let confirmed = vec![reserved(1), authorized("a"), OrderEvent::OrderConfirmed {}];
    assert_eq!(state_after(confirmed).next_saga_step(), SagaStep::Done);
}

#[test]
fn a_refusal_without_a_rejection_asks_to_reject_with_its_reason() {
    let no_stock = OrderEvent::StockRejected {
        sku: "SKU-1".into(),
        requested: 2,
        available: 1,
    };
    assert_eq!(
        state_after(vec![no_stock]).next_saga_step(),
        SagaStep::Reject {
            reason: "insufficient stock for SKU-1: requested 2, available 1".into()
        }
    );
    let declined = OrderEvent::PaymentDeclined {
        reason: "card expired".into(),
    };
    assert_eq!(
        state_after(vec![reserved(1), declined]).next_saga_step(),
        SagaStep::Reject {
            reason: "payment declined: card expired".into()
        }
    );
}

#[test]
fn a_rejected_order_holding_stock_asks_to_release_it_then_is_done() {
    let declined = OrderEvent::PaymentDeclined { reason: "no".into() };
    let events = vec![reserved(1), declined, rejected("payment declined: no")];
    let state = state_after(events.clone());
    assert_eq!(
        state.next_saga_step(),
        SagaStep::Compensate(Compensation {
            release_stock: true,
            void_payment: None
        })
    );
    assert!(!state.is_final());
    let mut released = events;
    released.push(OrderEvent::StockReleased {});
    let state = state_after(released);
    assert_eq!(state.next_saga_step(), SagaStep::Done);
    assert!(state.is_final());
}

#[test]
fn a_cancelled_order_holding_nothing_is_done() {
    let state = state_after(vec![cancelled("x")]);
    assert_eq!(state.next_saga_step(), SagaStep::Done);
    assert!(state.is_final());
}

#[test]
fn a_live_or_confirmed_order_can_be_cancelled() {
    for events in [
        vec![],
        vec![reserved(1), authorized("a"), OrderEvent::OrderConfirmed {}],
    ] {
        assert_eq!(
            decide_cancel(&state_after(events), "changed my mind"),
            Ok(Some(cancelled("changed my mind")))
        );
    }
}

#[test]
fn cancelling_a_cancelled_order_again_changes_nothing() {
    assert_eq!(decide_cancel(&state_after(vec![cancelled("x")]), "y"), Ok(None));
}

#[test]
fn a_rejected_order_cannot_be_cancelled() {
    assert_eq!(
        decide_cancel(&state_after(vec![rejected("no stock")]), "y"),
        Err(DomainError::CannotCancel {
            order_id: order_id(),
            status: OrderStatus::Rejected
        })
    );
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
        shipping_address: address(),
    }
}

fn pointers(req: &PlaceOrderRequest) -> Vec<String> {
    validate_place_order(req)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.pointer)
        .collect()
}

#[test]
fn a_well_formed_request_is_valid() {
    assert_eq!(
        validate_place_order(&request(&[("SKU-1", 1), ("B2", 1000)])),
        Ok(())
    );
}

#[test]
fn an_order_needs_one_to_fifty_items() {
    assert_eq!(pointers(&request(&[])), ["/items"]);
    let skus: Vec<String> = (0..51).map(|i| format!("SKU-{i}")).collect();
    let many: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
    assert_eq!(pointers(&request(&many)), ["/items"]);
    assert_eq!(pointers(&request(&many[..50])), Vec::<String>::new());
}

#[test]
fn quantities_outside_one_to_a_thousand_are_rejected_with_their_pointer() {
    let req = request(&[("A", 0), ("B", -3), ("C", 1001), ("D", i64::MAX), ("E", 1000)]);
    assert_eq!(
        pointers(&req),
        [
            "/items/0/quantity",
            "/items/1/quantity",
            "/items/2/quantity",
            "/items/3/quantity"
        ]
    );
}

#[test]
fn skus_must_be_upper_case_letters_digits_and_dashes_up_to_64() {
    let long = "A".repeat(65);
    let req = request(&[("", 1), ("sku-1", 1), ("SKU 1", 1), (&long, 1), (&long[..64], 1)]);
    assert_eq!(
        pointers(&req),
        ["/items/0/sku", "/items/1/sku", "/items/2/sku", "/items/3/sku"]
    );
}

#[test]
fn a_repeated_sku_is_rejected_at_its_second_line() {
    let errors = validate_place_order(&request(&[("A", 1), ("B", 1), ("A", 2)])).unwrap_err();
    assert_eq!(
        errors,
        [FieldError {
            pointer: "/items/2/sku".into(),
            detail: "duplicates /items/0/sku: one line per SKU".into()
        }]
    );
}

#[test]
fn address_fields_are_checked_for_length_blankness_and_country_shape() {
    let mut req = request(&[("A", 1)]);
    req.shipping_address.name = "   ".into();
    req.shipping_address.line1 = "x".repeat(201);
    req.shipping_address.line2 = Some(String::new());
    req.shipping_address.city = "Lon\ndon".into();
    req.shipping_address.postal_code = "1".repeat(21);
    req.shipping_address.country = "gb".into();
    assert_eq!(
        pointers(&req),
        [
            "/shipping_address/name",
            "/shipping_address/line1",
            "/shipping_address/line2",
            "/shipping_address/city",
            "/shipping_address/postal_code",
            "/shipping_address/country"
        ]
    );
    req.shipping_address = address();
    req.shipping_address.line1 = "é".repeat(200);
    req.shipping_address.country = "GBR".into();
    assert_eq!(pointers(&req), ["/shipping_address/country"]);
}

#[test]
fn the_nil_customer_id_is_rejected() {
    let mut req = request(&[("A", 1)]);
    req.customer_id = Uuid::nil();
    assert_eq!(pointers(&req), ["/customer_id"]);
}

fn catalog(sku: &str) -> Option<Money> {
    match sku {
        "A" => Some(eur(250)),
        "B" => Some(eur(1_000)),
        "USD" => Some(Money::new(100, "USD").unwrap()),
        "HUGE" => Some(eur(i64::MAX / 2)),
        "NEG" => Some(eur(-1)),
        _ => None,
    }
}

#[test]
fn an_order_is_priced_from_the_catalog() {
    let (lines, total) = price_order(&request(&[("A", 3), ("B", 2)]), &catalog).unwrap();
    assert_eq!(total, eur(2_750));
    assert_eq!((lines[0].quantity, lines[0].unit_price.clone()), (3, eur(250)));
    assert_eq!(lines[1].sku, "B");
}

#[test]
fn pricing_refuses_unknown_skus_mixed_currencies_bad_prices_and_overflow() {
    let price = |items: &[(&str, i64)]| price_order(&request(items), &catalog).unwrap_err();
    assert_eq!(
        price(&[("A", 1), ("NOPE", 1)]),
        PricingError::UnknownSku {
            sku: "NOPE".into(),
            pointer: "/items/1/sku".into()
        }
    );
    assert!(matches!(
        price(&[("A", 1), ("USD", 1)]),
        PricingError::CurrencyMismatch { ref found, .. } if found == "USD"
    ));
    assert!(matches!(
        price(&[("NEG", 1)]),
        PricingError::InvalidCatalogPrice { .. }
    ));
    assert_eq!(
        price(&[("HUGE", 3)]),
        PricingError::Overflow {
            pointer: "/items/0".into()
        }
    );
    assert!(matches!(
        price(&[("HUGE", 2), ("B", 1)]),
        PricingError::Overflow { .. }
    ));
    assert!(matches!(price(&[("A", 0)]), PricingError::InvalidQuantity { .. }));
    assert_eq!(price(&[]), PricingError::NoItems);
}

#[test]
fn the_order_id_depends_only_on_client_and_key() {
    let id = order_id_for("shop-1", "key-1");
    assert_eq!(id, order_id_for("shop-1", "key-1"));
    assert_eq!(id.get_version_num(), 5);
    assert_ne!(id, order_id_for("shop-2", "key-1"));
    assert_ne!(id, order_id_for("shop-1", "key-2"));
    assert_ne!(order_id_for("a:b", "c"), order_id_for("a", "b:c"));
}

#[test]
fn the_order_id_namespace_is_derived_from_a_fixed_name() {
    assert_eq!(
        orders_domain::ORDER_ID_NAMESPACE,
        Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:orders:order-id")
    );
}

#[test]
fn region_names_are_short_lower_case_ascii() {
    for ok in ["eu", "us-east-2", "a", "0123456789abcdef"] {
        assert_eq!(Region::new(ok).unwrap().as_str(), ok);
    }
    for bad in ["", "EU", "eu_west", "0123456789abcdefg", "é"] {
        assert!(matches!(Region::new(bad), Err(DomainError::InvalidRegion { .. })));
    }
}

#[test]
fn currencies_are_three_upper_case_letters() {
    assert!(Money::new(1, "EUR").is_ok());
    for bad in ["eur", "EU", "EURO", "E1R"] {
        assert!(matches!(
            Money::new(1, bad),
            Err(DomainError::InvalidCurrency { .. })
        ));
    }
}

#[test]
fn a_confirmed_order_needs_no_further_step_whatever_else_was_recorded() {
    let confirmed_early = vec![OrderEvent::OrderConfirmed {}];
    let state = state_after(confirmed_early);
    assert_eq!(state.next_saga_step(), SagaStep::Done);
    assert!(state.is_final());
}

#[test]
fn a_live_order_that_lost_its_reservation_is_rejected_not_reserved_again() {
    let state = state_after(vec![reserved(1), OrderEvent::StockReleased {}]);
    assert_eq!(
        state.next_saga_step(),
        SagaStep::Reject {
            reason: "stock reservation released before confirmation".into()
        }
    );
}
