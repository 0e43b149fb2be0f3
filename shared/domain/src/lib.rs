//! The order domain: events, the deterministic fold over per-region lanes, and pure decisions.
//!
//! Nothing here does I/O, reads a clock or draws randomness: callers pass time and ids in, so
//! every region computing the same thing from the same events gets the same answer.
//!
//! - `event`, `envelope`: the facts and their wire form (schemas under `schemas/events/`).
//! - `region`, `causal`, `stream`: lanes per region, version vectors, canonical order.
//! - `fold`, `state`: how events become an `OrderState`; the business rules are in `fold`.
//! - `saga`, `place`, `claim`: decisions (next saga step, cancel, placement validation and pricing,
//!   who may place an order for an idempotency key).

mod causal;
mod claim;
mod envelope;
mod error;
mod event;
pub mod fold;
mod money;
mod place;
mod region;
mod saga;
mod state;
mod stream;

pub use causal::VersionVector;
pub use claim::{Claim, ClaimVerdict, IN_FLIGHT_FOR, judge_claims};
pub use envelope::{EventEnvelope, SCHEMA_VERSION};
pub use error::DomainError;
pub use event::{LineItem, OrderEvent, ShippingAddress};
pub use fold::apply;
pub use money::{Money, is_currency_code};
pub use place::{
    FieldError, MAX_ITEMS, MAX_QUANTITY, ORDER_ID_NAMESPACE, PlaceOrderRequest, PricingError, RequestedItem,
    order_id_for, price_order, validate_place_order,
};
pub use region::Region;
pub use saga::{SagaStep, decide_cancel};
pub use state::{Compensation, OrderState, OrderStatus, PaymentState, StockState};
pub use stream::{OrderStream, next_envelope};
