//! `OrderState`: what the fold of an order's events yields, and the compensation it implies.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::causal::VersionVector;
use crate::event::{LineItem, ShippingAddress};
use crate::money::Money;
use crate::region::Region;

/// The order's business status. The progress statuses (`placed` to `confirmed`) only move
/// forward; `rejected` and `cancelled` are terminal. See `fold` for the rules. The progress
/// statuses are declared in progress order, which the derived `Ord` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Placed,
    StockReserved,
    PaymentAuthorized,
    Confirmed,
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "placed",
            Self::StockReserved => "stock_reserved",
            Self::PaymentAuthorized => "payment_authorized",
            Self::Confirmed => "confirmed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    /// No later event changes a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Rejected | Self::Cancelled)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stock side of the saga, as the recorded facts leave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StockState {
    None,
    Reserved {
        reservation_id: Uuid,
    },
    Rejected {
        sku: String,
        requested: u32,
        available: i64,
    },
    Released {
        reservation_id: Uuid,
    },
}

/// The payment side of the saga. There is no capture in this system: an authorization is the
/// strongest payment fact, and voiding it is the compensation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PaymentState {
    None,
    Authorized { authorization_id: String, amount: Money },
    Declined { reason: String },
    Voided { authorization_id: String },
}

/// The effects to undo. Derived from the state on every read instead of stored, so it can never
/// disagree with the events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compensation {
    pub release_stock: bool,
    pub void_payment: Option<String>,
}

impl Compensation {
    pub fn is_needed(&self) -> bool {
        self.release_stock || self.void_payment.is_some()
    }
}

/// One order as its folded events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub items: Vec<LineItem>,
    pub total: Money,
    pub shipping_address: ShippingAddress,
    /// Carried from `OrderPlaced` so the API can tell a retry from a reused key.
    pub idempotency_fingerprint: String,
    /// The region whose `OrderPlaced` defines the order.
    pub origin_region: Region,
    pub status: OrderStatus,
    pub stock: StockState,
    pub payment: PaymentState,
    /// Number of events folded.
    pub version: u64,
    /// Merged causal vectors of the folded events: the consistency token a reader in another
    /// region compares with its own position before answering.
    pub position: VersionVector,
    pub placed_at: DateTime<Utc>,
    /// Latest `occurred_at` folded, so it never moves backwards across regions' clocks.
    pub updated_at: DateTime<Utc>,
    pub cancel_reason: Option<String>,
    pub reject_reason: Option<String>,
}

impl OrderState {
    /// What must be undone: only a cancelled or rejected order gives back what it still holds.
    pub fn compensation(&self) -> Compensation {
        if !self.status.is_terminal() {
            return Compensation::default();
        }
        Compensation {
            release_stock: matches!(self.stock, StockState::Reserved { .. }),
            void_payment: match &self.payment {
                PaymentState::Authorized { authorization_id, .. } => Some(authorization_id.clone()),
                _ => None,
            },
        }
    }

    /// Nothing left for the saga to do: confirmed, rejected or cancelled, with nothing to undo.
    pub fn is_final(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Confirmed | OrderStatus::Rejected | OrderStatus::Cancelled
        ) && !self.compensation().is_needed()
    }
}
