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
    pub fn next_saga_step(&self) -> SagaStep {
        if self.status.is_terminal() {
            let compensation = self.compensation();
            return if compensation.is_needed() {
                SagaStep::Compensate(compensation)
            } else {
                SagaStep::Done
            };
        }
        if let Some(reason) = self.refusal() {
            return SagaStep::Reject { reason };
        }
        match (&self.stock, &self.payment) {
            (StockState::None, _) => SagaStep::ReserveStock,
            (StockState::Reserved { .. }, PaymentState::None) => SagaStep::AuthorizePayment,
            (StockState::Reserved { .. }, PaymentState::Authorized { .. })
                if self.status != OrderStatus::Confirmed =>
            {
                SagaStep::Confirm
            }
            _ => SagaStep::Done,
        }
    }

    /// Why stock or payment refused the order, if one did. The fold lets a held reservation or
    /// authorization outrank a refusal, so a refusal seen here means nothing is held there.
    fn refusal(&self) -> Option<String> {
        if let StockState::Rejected {
            sku,
            requested,
            available,
        } = &self.stock
        {
            return Some(format!(
                "insufficient stock for {sku}: requested {requested}, available {available}"
            ));
        }
        if let PaymentState::Declined { reason } = &self.payment {
            return Some(format!("payment declined: {reason}"));
        }
        None
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
