//! Runs an order's saga from its events: each step is decided by the folded state alone and has an
//! effect that is idempotent per order (stock rows keyed by order, payment keys per order and step),
//! so a redelivery, a replay, a crash before the offset commit or a takeover never doubles an effect.
use std::sync::Arc;

use chrono::Utc;
use orders_domain::{EventEnvelope, OrderEvent, OrderState, OrderStream, Region, SagaStep, next_envelope};
use orders_journal::{Journal, JournalError};
use orders_store::open_orders::OpenOrders;
use orders_store::stock::{Reservation, Stock};
use orders_store::{Appended, StoreError};
use tracing::{debug, info};
use uuid::Uuid;

use crate::ownership::Owners;
use crate::payment::{Authorization, PaymentClient, PaymentError};

/// How processing one order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The saga reached its end (confirmed, rejected or cancelled, nothing left to compensate).
    Done,
    /// Another region owns this order's processing.
    NotOwner { owner: String },
    /// The order's events are not all here yet (replication): try again shortly.
    Incomplete,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error("order {order_id}: lane position taken repeatedly; giving up this pass")]
    Contended { order_id: Uuid },
}

impl ProcessError {
    /// Whether retrying the same record later can succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, ProcessError::Payment(PaymentError::Permanent(_)))
    }
}

pub struct Processor {
    pub region: Region,
    pub regions: Vec<Region>,
    pub journal: Arc<Journal>,
    pub stock: Stock,
    pub open_orders: OpenOrders,
    pub payment: PaymentClient,
    pub owners: Owners,
    pub placed_to_final: prometheus::Histogram,
}

/// One pass over an order: how it ended and the events it appended on the way. When the pass
/// reached the end, those events need no processing of their own: their records, arriving later,
/// can be skipped as already processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub outcome: Outcome,
    pub appended: Vec<Uuid>,
}

/// Steps per pass: a full saga takes at most five (reserve, authorize, confirm, or reject and two
/// compensations), and appends that lose a race retry within the pass.
const MAX_STEPS: usize = 12;

impl Processor {
    /// Advances the order as far as it can go now.
    pub async fn process_order(&self, order_id: Uuid) -> Result<Pass, ProcessError> {
        let mut appended = Vec::new();
        let end = |outcome, appended| Ok(Pass { outcome, appended });
        let store = self.journal.store();
        let mut stream = store.read_stream(order_id).await?;
        for _ in 0..MAX_STEPS {
            let Ok(Some(state)) = stream.state() else {
                return end(Outcome::Incomplete, appended);
            };
            let owner = self.owners.owner_of(state.origin_region.as_str());
            if owner != self.region.as_str() {
                return end(Outcome::NotOwner { owner }, appended);
            }
            let step = state.next_saga_step();
            debug!(%order_id, ?step, "saga step");
            let event = match step {
                SagaStep::Done => {
                    self.open_orders
                        .remove(state.origin_region.as_str(), order_id)
                        .await?;
                    return end(Outcome::Done, appended);
                }
                SagaStep::ReserveStock => self.reserve(&state).await?,
                SagaStep::AuthorizePayment => match self.payment.authorize(order_id, &state.total).await? {
                    Authorization::Authorized { id } => OrderEvent::PaymentAuthorized {
                        authorization_id: id,
                        amount: state.total.clone(),
                    },
                    Authorization::Declined { reason } => OrderEvent::PaymentDeclined { reason },
                },
                SagaStep::Confirm => OrderEvent::OrderConfirmed {},
                SagaStep::Reject { reason } => OrderEvent::OrderRejected { reason },
                SagaStep::Compensate(c) if c.release_stock => {
                    self.release(&state).await?;
                    OrderEvent::StockReleased {}
                }
                SagaStep::Compensate(c) => match c.void_payment {
                    Some(authorization_id) => {
                        self.payment.void(order_id, &authorization_id).await?;
                        OrderEvent::PaymentVoided { authorization_id }
                    }
                    None => {
                        self.open_orders
                            .remove(state.origin_region.as_str(), order_id)
                            .await?;
                        return end(Outcome::Done, appended);
                    }
                },
            };
            let finishes = matches!(
                event,
                OrderEvent::OrderConfirmed {} | OrderEvent::OrderRejected { .. }
            );
            // An effect that happened must be recorded even if the order moved on meanwhile (a
            // cancel took the lane position): otherwise nobody would ever release or void it.
            let records_effect = matches!(
                event,
                OrderEvent::StockReserved { .. }
                    | OrderEvent::StockReleased {}
                    | OrderEvent::PaymentAuthorized { .. }
                    | OrderEvent::PaymentVoided { .. }
            );
            let written = match records_effect {
                true => self.append_effect(&mut stream, event).await?,
                false => self.append(&stream, event).await?,
            };
            match written {
                Some(envelope) => {
                    appended.push(envelope.event_id);
                    if finishes {
                        let took = (Utc::now() - state.placed_at).to_std().unwrap_or_default();
                        self.placed_to_final.observe(took.as_secs_f64());
                    }
                    // The next step starts from what this pass just wrote, without reading the
                    // stream again; events of other lanes written meanwhile are seen when their
                    // own records are processed, as they would be a moment after any read.
                    if !matches!(stream.insert(envelope), Ok(true)) {
                        stream = store.read_stream(order_id).await?;
                    }
                }
                None => stream = store.read_stream(order_id).await?,
            }
        }
        Err(ProcessError::Contended { order_id })
    }

    /// Appends an event recording an effect, at whatever position is free: the fold applies
    /// effects even after a concurrent cancel, so compensation sees them. `None` when another
    /// writer recorded the same effect meanwhile (effects are idempotent per order, so theirs is
    /// this one): recording it twice would read as two effects.
    async fn append_effect(
        &self,
        stream: &mut OrderStream,
        event: OrderEvent,
    ) -> Result<Option<EventEnvelope>, ProcessError> {
        for _ in 0..MAX_STEPS {
            if let Some(envelope) = self.append(stream, event.clone()).await? {
                return Ok(Some(envelope));
            }
            *stream = self.journal.store().read_stream(stream.order_id()).await?;
            if stream.ordered().iter().any(|e| e.payload == event) {
                debug!(order_id = %stream.order_id(), event = event.type_name(), "effect already recorded by another writer");
                return Ok(None);
            }
        }
        Err(ProcessError::Contended {
            order_id: stream.order_id(),
        })
    }

    /// Appends to this region's lane: the new event, or `None` if another writer took the
    /// position first.
    async fn append(
        &self,
        stream: &OrderStream,
        event: OrderEvent,
    ) -> Result<Option<EventEnvelope>, ProcessError> {
        let kind = event.type_name();
        let envelope = next_envelope(stream, &self.region, event, Uuid::now_v7(), Utc::now());
        match self.journal.append(&envelope).await? {
            Appended::Written | Appended::Degraded => {
                info!(order_id = %stream.order_id(), event = kind, "saga advanced");
                Ok(Some(envelope))
            }
            // Someone else of this region advanced the order first: the next pass re-reads.
            Appended::Conflict => {
                debug!(order_id = %stream.order_id(), event = kind, "append lost a race");
                Ok(None)
            }
        }
    }

    /// Reserves every item from this region's allocation, or none of them.
    async fn reserve(&self, state: &OrderState) -> Result<OrderEvent, ProcessError> {
        let mut items: Vec<_> = state.items.iter().collect();
        items.sort_by(|a, b| a.sku.cmp(&b.sku)); // one order of locking for every order
        let global = (self.journal.durability() == orders_store::Durability::Global)
            .then(|| self.journal.store().reach());
        for item in &items {
            // Another region may already hold it: the region that placed the order reserved before
            // dying and this one took over. Its reservation counts; reserving again would double it.
            if self.held_elsewhere(&item.sku, state.order_id).await? {
                continue;
            }
            let reservation = self
                .stock
                .reserve(
                    &item.sku,
                    self.region.as_str(),
                    state.order_id,
                    item.quantity as i32,
                    global,
                )
                .await?;
            if let Reservation::Insufficient { available } = reservation {
                self.release(state).await?;
                return Ok(OrderEvent::StockRejected {
                    sku: item.sku.clone(),
                    requested: item.quantity,
                    available,
                });
            }
        }
        Ok(OrderEvent::StockReserved {
            reservation_id: Uuid::new_v5(&state.order_id, b"stock"),
        })
    }

    async fn held_elsewhere(&self, sku: &str, order_id: Uuid) -> Result<bool, ProcessError> {
        for region in self.regions.iter().filter(|r| **r != self.region) {
            if self.stock.holds(sku, region.as_str(), order_id).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Gives back whatever the order holds, in whichever region reserved it (after a takeover the
    /// reservation may sit in the other region's allocation).
    async fn release(&self, state: &OrderState) -> Result<(), ProcessError> {
        for item in &state.items {
            for region in &self.regions {
                self.stock
                    .release(&item.sku, region.as_str(), state.order_id)
                    .await?;
            }
        }
        Ok(())
    }
}
