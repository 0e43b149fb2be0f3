//! The order events: the facts an order's stream records, one variant per fact.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// One priced line of an order. Prices are the catalog's at placement time and never change
/// afterwards, so a replay reproduces the original total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

/// The facts of an order's life. Serialized internally tagged (`"type": "OrderPlaced"`), so a
/// payload read alone still says what it is. Adding a variant means adding its schema under
/// `schemas/events/` (a test enforces it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderEvent {
    OrderPlaced {
        customer_id: Uuid,
        items: Vec<LineItem>,
        total: Money,
        shipping_address: ShippingAddress,
        /// Hex of the placing request's hash. The domain only carries it: the API compares it
        /// when an idempotency key comes back with another body.
        idempotency_fingerprint: String,
    },
    OrderCancelled {
        reason: String,
    },
    StockReserved {
        reservation_id: Uuid,
    },
    StockRejected {
        sku: String,
        requested: u32,
        /// Signed: an allocation can be oversold by an operator correction.
        available: i64,
    },
    StockReleased {},
    PaymentAuthorized {
        authorization_id: String,
        amount: Money,
    },
    PaymentDeclined {
        reason: String,
    },
    PaymentVoided {
        authorization_id: String,
    },
    OrderConfirmed {},
    OrderRejected {
        reason: String,
    },
}

impl OrderEvent {
    /// Every value `type_name` can return, in declaration order; one schema file per entry.
    pub const TYPE_NAMES: [&'static str; 10] = [
        "OrderPlaced",
        "OrderCancelled",
        "StockReserved",
        "StockRejected",
        "StockReleased",
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentVoided",
        "OrderConfirmed",
        "OrderRejected",
    ];

    /// The serialized `type` tag, for routing and logging without serializing the payload.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::OrderPlaced { .. } => "OrderPlaced",
            Self::OrderCancelled { .. } => "OrderCancelled",
            Self::StockReserved { .. } => "StockReserved",
            Self::StockRejected { .. } => "StockRejected",
            Self::StockReleased {} => "StockReleased",
            Self::PaymentAuthorized { .. } => "PaymentAuthorized",
            Self::PaymentDeclined { .. } => "PaymentDeclined",
            Self::PaymentVoided { .. } => "PaymentVoided",
            Self::OrderConfirmed {} => "OrderConfirmed",
            Self::OrderRejected { .. } => "OrderRejected",
        }
    }
}
