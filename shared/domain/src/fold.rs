//! The fold: how an order's events, taken in canonical order, become its `OrderState`.
//!
//! Events come from every region's lane. `OrderStream` sorts them by (causal sum, origin region,
//! seq, event id), a linear extension of happened-before, so every region folds the same events
//! in the same order and reaches the same state whatever order replication delivered them in.
//! Concurrent events (neither saw the other) are resolved by these rules, chosen so that the
//! result does not depend on which of two concurrent events sorts first wherever it matters:
//!
//! 1. **Placement first.** The state starts at the first `OrderPlaced` in canonical order. A
//!    stream whose first visible event is something else is incomplete (`IncompleteStream`):
//!    callers wait for replication. A later `OrderPlaced` (a retry that reached another region
//!    before replication) changes nothing; the API compares fingerprints, not the fold.
//! 2. **Progress only moves forward.** `StockReserved`, `PaymentAuthorized` and `OrderConfirmed`
//!    raise the status to `stock_reserved`, `payment_authorized`, `confirmed`, never lower it.
//! 3. **Cancel wins over confirmation**, in either order: nothing is captured, so a confirmed
//!    order holds only an authorization, which the compensation voids. The same holds for a
//!    rejection.
//! 4. **Terminal is terminal.** Once `cancelled` or `rejected`, the status never changes: the
//!    first of the two in canonical order wins, so a cancel after a rejection is a no-op and
//!    keeps `reject_reason`. `StockRejected` and `PaymentDeclined` only record the refusal; the
//!    saga turns them into `OrderRejected`, which alone sets `rejected`.
//! 5. **Sub-states record effects whatever the status.** A reservation or an authorization that
//!    lands after a cancel is still recorded, so the compensation gives it back. A held resource
//!    outranks a refusal (a reservation beats a concurrent `StockRejected`, an authorization a
//!    concurrent `PaymentDeclined`), because a held resource is what must be released.
//!    `StockReleased` and `PaymentVoided` undo only what is held (a void names its authorization).
//! 6. **Each event once.** The stream dedupes by `event_id`; `version` counts folded events.
//! 7. **Compensation is derived, never stored**: see `OrderState::compensation`.

use crate::envelope::EventEnvelope;
use crate::event::OrderEvent;
use crate::state::{OrderState, OrderStatus, PaymentState, StockState};

impl OrderState {
    /// Starts the fold at the order's placement (rule 1); `None` for any other event.
    pub fn from_placement(e: &EventEnvelope) -> Option<Self> {
        let OrderEvent::OrderPlaced {
            customer_id,
            items,
            total,
            shipping_address,
            idempotency_fingerprint,
        } = &e.payload
        else {
            return None;
        };
        Some(Self {
            order_id: e.order_id,
            customer_id: *customer_id,
            items: items.clone(),
            total: total.clone(),
            shipping_address: shipping_address.clone(),
            idempotency_fingerprint: idempotency_fingerprint.clone(),
            origin_region: e.origin_region.clone(),
            status: OrderStatus::Placed,
            stock: StockState::None,
            payment: PaymentState::None,
            version: 1,
            position: e.causal.clone(),
            placed_at: e.occurred_at,
            updated_at: e.occurred_at,
            cancel_reason: None,
            reject_reason: None,
        })
    }
}

/// Folds one event into the state. Pure and total: events are facts already recorded, so none
/// is refused here; rules decide what each changes.
pub fn apply(state: &mut OrderState, e: &EventEnvelope) {
    debug_assert_eq!(state.order_id, e.order_id, "event of another order");
    state.version += 1;
    state.updated_at = state.updated_at.max(e.occurred_at);
    state.position.merge(&e.causal);

    match &e.payload {
        OrderEvent::OrderPlaced { .. } => {}
        OrderEvent::OrderCancelled { reason } => {
            if !state.status.is_terminal() {
                state.status = OrderStatus::Cancelled;
                state.cancel_reason = Some(reason.clone());
            }
        }
        OrderEvent::OrderRejected { reason } => {
            if !state.status.is_terminal() {
                state.status = OrderStatus::Rejected;
                state.reject_reason = Some(reason.clone());
            }
        }
        OrderEvent::OrderConfirmed {} => advance(state, OrderStatus::Confirmed),
        OrderEvent::StockReserved { reservation_id } => {
            let already_held = match &state.stock {
                StockState::Reserved { .. } => true,
                StockState::Released {
                    reservation_id: released,
                } => released == reservation_id,
                StockState::None | StockState::Rejected { .. } => false,
            };
            if !already_held {
                state.stock = StockState::Reserved {
                    reservation_id: *reservation_id,
                };
            }
            advance(state, OrderStatus::StockReserved);
        }
        OrderEvent::StockRejected {
            sku,
            requested,
            available,
        } => {
            if state.stock == StockState::None {
                state.stock = StockState::Rejected {
                    sku: sku.clone(),
                    requested: *requested,
                    available: *available,
                };
            }
        }
        OrderEvent::StockReleased {} => {
            if let StockState::Reserved { reservation_id } = state.stock {
                state.stock = StockState::Released { reservation_id };
            }
        }
        OrderEvent::PaymentAuthorized {
            authorization_id,
            amount,
        } => {
            let already_known = match &state.payment {
                PaymentState::Authorized { .. } => true,
                PaymentState::Voided {
                    authorization_id: voided,
                } => voided == authorization_id,
                PaymentState::None | PaymentState::Declined { .. } => false,
            };
            if !already_known {
                state.payment = PaymentState::Authorized {
                    authorization_id: authorization_id.clone(),
                    amount: amount.clone(),
                };
            }
            advance(state, OrderStatus::PaymentAuthorized);
        }
        OrderEvent::PaymentDeclined { reason } => {
            if state.payment == PaymentState::None {
                state.payment = PaymentState::Declined {
                    reason: reason.clone(),
                };
            }
        }
        OrderEvent::PaymentVoided { authorization_id } => {
            if matches!(&state.payment, PaymentState::Authorized { authorization_id: held, .. } if held == authorization_id)
            {
                state.payment = PaymentState::Voided {
                    authorization_id: authorization_id.clone(),
                };
            }
        }
    }
}

/// Rule 2: raise a progress status, never lower it, never leave a terminal one.
fn advance(state: &mut OrderState, to: OrderStatus) {
    if !state.status.is_terminal() && state.status < to {
        state.status = to;
    }
}
