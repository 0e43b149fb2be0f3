//! The order resource as clients see it: a view of the folded `OrderState`.
use chrono::{DateTime, Utc};
use orders_domain::{LineItem, Money, OrderState, PaymentState, ShippingAddress, StockState, VersionVector};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct OrderResource {
    pub id: Uuid,
    pub status: &'static str,
    pub customer_id: Uuid,
    pub items: Vec<ItemResource>,
    pub total: Money,
    pub shipping_address: ShippingAddress,
    pub origin_region: String,
    /// Number of events folded into this state.
    pub version: u64,
    /// The causal position of this state: events seen per region's lane.
    pub position: VersionVector,
    pub stock: &'static str,
    pub payment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct ItemResource {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

impl From<&LineItem> for ItemResource {
    fn from(item: &LineItem) -> Self {
        ItemResource {
            sku: item.sku.clone(),
            quantity: item.quantity,
            unit_price: item.unit_price.clone(),
            line_total: item
                .unit_price
                .checked_mul(item.quantity)
                .unwrap_or_else(|| item.unit_price.clone()),
        }
    }
}

impl From<&OrderState> for OrderResource {
    fn from(s: &OrderState) -> Self {
        OrderResource {
            id: s.order_id,
            status: s.status.as_str(),
            customer_id: s.customer_id,
            items: s.items.iter().map(ItemResource::from).collect(),
            total: s.total.clone(),
            shipping_address: s.shipping_address.clone(),
            origin_region: s.origin_region.to_string(),
            version: s.version,
            position: s.position.clone(),
            stock: match s.stock {
                StockState::None => "pending",
                StockState::Reserved { .. } => "reserved",
                StockState::Rejected { .. } => "rejected",
                StockState::Released { .. } => "released",
            },
            payment: match s.payment {
                PaymentState::None => "pending",
                PaymentState::Authorized { .. } => "authorized",
                PaymentState::Declined { .. } => "declined",
                PaymentState::Voided { .. } => "voided",
            },
            cancel_reason: s.cancel_reason.clone(),
            reject_reason: s.reject_reason.clone(),
            placed_at: s.placed_at,
            updated_at: s.updated_at,
        }
    }
}
