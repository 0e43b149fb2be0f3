//! Fixtures shared by the integration tests: regions, ids, times and one sample of every event.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use orders_domain::{
    EventEnvelope, LineItem, Money, OrderEvent, OrderStream, Region, ShippingAddress, next_envelope,
};
use uuid::Uuid;

pub fn region(name: &str) -> Region {
    Region::new(name).unwrap()
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, 0).unwrap()
}

/// A UUIDv7 whose value is fixed by `n`, so tests stay deterministic.
pub fn event_id(n: u64) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(1_780_000_000_000 + n, &[0x5a; 10]).into_uuid()
}

pub fn order_id() -> Uuid {
    Uuid::from_u128(0x0f0f_0000_0000_5000_8000_0000_0000_0001)
}

pub fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, "EUR").unwrap()
}

pub fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "12 St James's Square".into(),
        line2: None,
        city: "London".into(),
        postal_code: "SW1Y 4JH".into(),
        country: "GB".into(),
    }
}

pub fn placed() -> OrderEvent {
    OrderEvent::OrderPlaced {
        customer_id: Uuid::from_u128(7),
        items: vec![LineItem {
            sku: "SKU-1".into(),
            quantity: 2,
            unit_price: eur(1250),
        }],
        total: eur(2500),
        shipping_address: address(),
        idempotency_fingerprint: "9f86d081884c7d659a2feaa0c55ad015".into(),
    }
}

pub fn reserved(n: u128) -> OrderEvent {
    OrderEvent::StockReserved {
        reservation_id: Uuid::from_u128(n),
    }
}

pub fn authorized(id: &str) -> OrderEvent {
    OrderEvent::PaymentAuthorized {
        authorization_id: id.into(),
        amount: eur(2500),
    }
}

pub fn cancelled(reason: &str) -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: reason.into(),
    }
}

pub fn rejected(reason: &str) -> OrderEvent {
    OrderEvent::OrderRejected {
        reason: reason.into(),
    }
}

/// One value of every variant. The match below stops compiling when a variant is added, which
/// is the reminder to add its sample here (and its schema file).
pub fn every_variant() -> Vec<OrderEvent> {
    let samples = vec![
        placed(),
        cancelled("customer changed their mind"),
        reserved(11),
        OrderEvent::StockRejected {
            sku: "SKU-1".into(),
            requested: 2,
            available: -1,
        },
        OrderEvent::StockReleased {},
        authorized("auth-1"),
        OrderEvent::PaymentDeclined {
            reason: "insufficient funds".into(),
        },
        OrderEvent::PaymentVoided {
            authorization_id: "auth-1".into(),
        },
        OrderEvent::OrderConfirmed {},
        rejected("payment declined"),
    ];
    for sample in &samples {
        match sample {
            OrderEvent::OrderPlaced { .. }
            | OrderEvent::OrderCancelled { .. }
            | OrderEvent::StockReserved { .. }
            | OrderEvent::StockRejected { .. }
            | OrderEvent::StockReleased {}
            | OrderEvent::PaymentAuthorized { .. }
            | OrderEvent::PaymentDeclined { .. }
            | OrderEvent::PaymentVoided { .. }
            | OrderEvent::OrderConfirmed {}
            | OrderEvent::OrderRejected { .. } => {}
        }
    }
    samples
}

/// Appends events for one order as regions would, numbering event ids and times in order.
pub struct Log {
    next: u64,
}

impl Log {
    pub fn new() -> Self {
        Self { next: 1 }
    }

    /// `region` appends `event` to its lane with what `stream` shows it, and keeps it.
    pub fn append(&mut self, stream: &mut OrderStream, region: &Region, event: OrderEvent) -> EventEnvelope {
        let n = self.next;
        self.next += 1;
        let e = next_envelope(stream, region, event, event_id(n), at(n as i64));
        assert!(stream.insert(e.clone()).unwrap());
        e
    }
}
