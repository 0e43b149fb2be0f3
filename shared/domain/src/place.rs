//! Placing an order: the order id from the idempotency key, request validation, and pricing.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{LineItem, ShippingAddress};
use crate::money::{Money, is_currency_code};

/// Namespace of order ids: UUIDv5 of `urn:orders:order-id` in the URL namespace. Changing it
/// would give retried requests new order ids, so it never changes.
pub const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2b8b820f_eefd_542d_879a_ce3aa142cd48);

pub const MAX_ITEMS: usize = 50;
pub const MAX_QUANTITY: i64 = 1000;

/// The order id of a placement, derived from who asked and their idempotency key, so a retry
/// lands on the same order in any region without coordination. The client id is
/// length-prefixed so that ("a:b", "c") and ("a", "b:c") stay distinct.
pub fn order_id_for(client_id: &str, idempotency_key: &str) -> Uuid {
    let name = format!("{}:{client_id}:{idempotency_key}", client_id.len());
    Uuid::new_v5(&ORDER_ID_NAMESPACE, name.as_bytes())
}

/// The body of `POST /v1/orders`. Clients name SKUs and quantities; prices come from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub customer_id: Uuid,
    pub items: Vec<RequestedItem>,
    pub shipping_address: ShippingAddress,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedItem {
    pub sku: String,
    /// Signed and wide so that 0, negatives and huge numbers reach validation and get a clear
    /// error instead of a parse failure.
    pub quantity: i64,
}

/// One invalid field, located by a JSON pointer into the request, as RFC 9457 problem details
/// list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// Checks a placement request and reports every invalid field at once, so a client fixes its
/// request in one round trip.
pub fn validate_place_order(req: &PlaceOrderRequest) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if req.customer_id.is_nil() {
        errors.push(FieldError::new("/customer_id", "must not be the nil UUID"));
    }
    if !(1..=MAX_ITEMS).contains(&req.items.len()) {
        errors.push(FieldError::new("/items", "must hold 1 to 50 items"));
    }
    for (i, item) in req.items.iter().enumerate() {
        if !is_sku(&item.sku) {
            errors.push(FieldError::new(
                format!("/items/{i}/sku"),
                "must be 1 to 64 characters of A-Z, 0-9 and '-'",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("/items/{i}/quantity"),
                "must be between 1 and 1000",
            ));
        }
        if let Some(first) = req.items[..i].iter().position(|o| o.sku == item.sku) {
            errors.push(FieldError::new(
                format!("/items/{i}/sku"),
                format!("duplicates /items/{first}/sku: one line per SKU"),
            ));
        }
    }
    validate_address(&req.shipping_address, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn validate_address(address: &ShippingAddress, errors: &mut Vec<FieldError>) {
    let mut text = |field: &str, value: &str, max: usize| {
        let len = value.chars().count();
        let blank = value.trim().is_empty();
        if len > max || blank || value.chars().any(char::is_control) {
            errors.push(FieldError::new(
                format!("/shipping_address/{field}"),
                format!("must be 1 to {max} characters, not blank, without control characters"),
            ));
        }
    };
    text("name", &address.name, 200);
    text("line1", &address.line1, 200);
    if let Some(line2) = &address.line2 {
        text("line2", line2, 200);
    }
    text("city", &address.city, 200);
    text("postal_code", &address.postal_code, 20);
    let country = &address.country;
    if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
        errors.push(FieldError::new(
            "/shipping_address/country",
            "must be an ISO 3166-1 alpha-2 code in upper case",
        ));
    }
}

fn is_sku(sku: &str) -> bool {
    (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Why a (validated) request could not be priced. Pointers locate the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("no items to price")]
    NoItems,
    #[error("unknown SKU {sku:?} at {pointer}")]
    UnknownSku { sku: String, pointer: String },
    #[error("catalog price of {sku:?} is invalid (negative or bad currency)")]
    InvalidCatalogPrice { sku: String, pointer: String },
    #[error("quantity {quantity} at {pointer} is out of range")]
    InvalidQuantity { quantity: i64, pointer: String },
    #[error("item at {pointer} is priced in {found}, the order in {expected}")]
    CurrencyMismatch {
        pointer: String,
        expected: String,
        found: String,
    },
    #[error("order total overflows at {pointer}")]
    Overflow { pointer: String },
}

/// Prices a request from the catalog: line items at catalog prices and the total, in one
/// currency, with checked arithmetic so that no total ever wraps around.
pub fn price_order(
    req: &PlaceOrderRequest,
    catalog: &impl Fn(&str) -> Option<Money>,
) -> Result<(Vec<LineItem>, Money), PricingError> {
    let mut lines = Vec::with_capacity(req.items.len());
    let mut total: Option<Money> = None;
    for (i, item) in req.items.iter().enumerate() {
        let sku_pointer = format!("/items/{i}/sku");
        let quantity = u32::try_from(item.quantity)
            .ok()
            .filter(|&q| q > 0)
            .ok_or_else(|| PricingError::InvalidQuantity {
                quantity: item.quantity,
                pointer: format!("/items/{i}/quantity"),
            })?;
        let unit_price = catalog(&item.sku).ok_or_else(|| PricingError::UnknownSku {
            sku: item.sku.clone(),
            pointer: sku_pointer.clone(),
        })?;
        if unit_price.amount_minor < 0 || !is_currency_code(&unit_price.currency) {
            return Err(PricingError::InvalidCatalogPrice {
                sku: item.sku.clone(),
                pointer: sku_pointer,
            });
        }
        if let Some(total) = &total
            && total.currency != unit_price.currency
        {
            return Err(PricingError::CurrencyMismatch {
                pointer: sku_pointer,
                expected: total.currency.clone(),
                found: unit_price.currency,
            });
        }
        let overflow = || PricingError::Overflow {
            pointer: format!("/items/{i}"),
        };
        let line_total = unit_price.checked_mul(quantity).ok_or_else(overflow)?;
        total = Some(match total {
            None => line_total,
            Some(sum) => Money {
                amount_minor: sum
                    .amount_minor
                    .checked_add(line_total.amount_minor)
                    .ok_or_else(overflow)?,
                currency: sum.currency,
            },
        });
        lines.push(LineItem {
            sku: item.sku.clone(),
            quantity,
            unit_price,
        });
    }
    let total = total.ok_or(PricingError::NoItems)?;
    Ok((lines, total))
}
