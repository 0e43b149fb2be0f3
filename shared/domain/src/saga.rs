//! Decisions on an existing order: the saga's next step for the worker, and cancellation.

use crate::error::DomainError;
use crate::event::OrderEvent;
use crate::state::{Compensation, OrderState, OrderStatus, PaymentState, StockState};

/// What the worker does next for an order. Derived from the state alone, so a worker that
/// crashed, or a region that took over, picks up where the events say, not where memory says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaStep {
    ReserveStock,
    AuthorizePayment,
    Confirm,
    /// Stock or payment was refused: record `OrderRejected` with this reason.
    Reject {
        reason: String,
    },
    /// The order is cancelled or rejected and still holds something.
    Compensate(Compensation),
    Done,
}

impl OrderState {
    /// Total over every state, and `Done` exactly when `is_final` holds, so a worker never
    /// parks an order that still needs a step.
    pub fn next_saga_step(&self) -> SagaStep {
        if self.status.is_terminal() {
            let compensation = self.compensation();
            return if compensation.is_needed() {
                SagaStep::Compensate(compensation)
            } else {
                SagaStep::Done
            };
        }
        if self.status == OrderStatus::Confirmed {
            return SagaStep::Done;
        }
        let reject = |reason: String| SagaStep::Reject { reason };
        // The fold lets a held reservation or authorization outrank a refusal, so a refusal
        // seen here means nothing is held on that side.
        match (&self.stock, &self.payment) {
            (
                StockState::Rejected {
                    sku,
                    requested,
                    available,
                },
                _,
            ) => reject(format!(
                "insufficient stock for {sku}: requested {requested}, available {available}"
            )),
            (_, PaymentState::Declined { reason }) => reject(format!("payment declined: {reason}")),
            // Only compensation releases or voids, and only for terminal orders: a live order
            // in this shape has lost what it needs, so it ends rather than acquiring anew.
            (StockState::Released { .. }, _) => {
                reject("stock reservation released before confirmation".to_owned())
            }
            (_, PaymentState::Voided { .. }) => {
                reject("payment authorization voided before confirmation".to_owned())
            }
            (StockState::None, _) => SagaStep::ReserveStock,
            (StockState::Reserved { .. }, PaymentState::None) => SagaStep::AuthorizePayment,
            (StockState::Reserved { .. }, PaymentState::Authorized { .. }) => SagaStep::Confirm,
        }
    }
}

/// Decides a customer's cancel: `Some(OrderCancelled)` for a live or confirmed order (nothing
/// is captured, so confirmation does not prevent it), `None` when it is already cancelled (a
/// retried cancel changes nothing), an error when the order was rejected.
pub fn decide_cancel(
    state: &OrderState,
    reason: impl Into<String>,
) -> Result<Option<OrderEvent>, DomainError> {
    match state.status {
        OrderStatus::Cancelled => Ok(None),
        OrderStatus::Rejected => Err(DomainError::CannotCancel {
            order_id: state.order_id,
            status: state.status,
        }),
        OrderStatus::Placed
        | OrderStatus::StockReserved
        | OrderStatus::PaymentAuthorized
        | OrderStatus::Confirmed => Ok(Some(OrderEvent::OrderCancelled {
            reason: reason.into(),
        })),
    }
}
