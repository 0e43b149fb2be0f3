//! Runs an order's saga from its events: each step is decided by the folded state alone and has an
//! effect that is idempotent per order (stock rows keyed by order, payment keys per order and step),
//! so a redelivery, a replay, a crash before the offset commit or a takeover never doubles an effect.
//! The worker processing an order is the one writer of its saga events in this region's lane.
#[cfg(test)]
mod fakes;
pub mod ports;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use chrono::Utc;
use orders_domain::{EventEnvelope, OrderEvent, OrderState, OrderStream, Region, SagaStep, next_envelope};
use orders_journal::{JournalError, RecentIds};
use orders_store::StoreError;
use orders_store::stock::Reservation;
use tracing::{debug, info};
use uuid::Uuid;

use crate::payment::{Authorization, PaymentError};
pub use ports::Allotments;
use ports::{Lanes, Live, OpenOrders, Ownership, Payment, Services, Stock};

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
    /// A stored event that cannot be read (`StoreError::Decode`) is permanent: every pass would
    /// read it again.
    pub fn is_transient(&self) -> bool {
        match self {
            ProcessError::Store(e) => e.is_transient(),
            ProcessError::Journal(e) => e.is_transient(),
            ProcessError::Payment(e) => !matches!(e, PaymentError::Permanent(_)),
            ProcessError::Contended { .. } => true,
        }
    }
}

/// Runs orders' sagas over its services: `Processor<Live>` in production (the default), in-memory
/// fakes in the saga's tests.
pub struct Processor<S: Services = Live> {
    pub region: Region,
    pub regions: Vec<Region>,
    pub journal: Arc<S::Lanes>,
    pub stock: S::Stock,
    pub open_orders: S::OpenOrders,
    pub payment: S::Payment,
    pub owners: S::Ownership,
    pub placed_to_final: prometheus::Histogram,
    /// Saga events this worker published lately: their records need no pass of their own.
    pub recent: RecentIds,
    /// One pass at a time per order in this process (the consumer and a takeover sweep may meet).
    passes: OrderLocks,
}

/// One pass over an order: how it ended and the events it wrote (and published) on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub outcome: Outcome,
    pub appended: Vec<Uuid>,
}

/// Why a record needs no pass of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPass {
    /// A saga event this worker published.
    Published,
    /// Another region's event about an order that region processes itself.
    OwnedByOrigin { owner: String },
}

/// Steps per round: a full saga takes at most five (reserve, authorize, confirm, or reject and two
/// compensations).
const MAX_STEPS: usize = 12;

/// Where a round of steps stopped.
enum Ended {
    Outcome(Outcome),
    /// Before a decision: the events written so far must be read back first.
    Verify,
}

/// A pass's saga events: built and not yet written, written and not yet read back.
#[derive(Default)]
struct Written {
    unwritten: Vec<EventEnvelope>,
    unverified: Vec<EventEnvelope>,
}

/// Rounds of a pass: a round whose events a cancel displaced records its effects again and goes on
/// from the stream as it is now.
const MAX_ROUNDS: usize = 8;

/// Whether an event records an effect that happened outside the stream (stock, payment): such an
/// event must be recorded even if the order moved on meanwhile, or nobody would give it back.
fn records_effect(event: &OrderEvent) -> bool {
    matches!(
        event,
        OrderEvent::StockReserved { .. }
            | OrderEvent::StockReleased {}
            | OrderEvent::PaymentAuthorized { .. }
            | OrderEvent::PaymentVoided { .. }
    )
}

/// Whether the worker (not the API) writes this kind of event.
fn is_saga_event(event: &OrderEvent) -> bool {
    !matches!(
        event,
        OrderEvent::OrderPlaced { .. } | OrderEvent::OrderCancelled { .. }
    )
}

/// The id of the saga event a region writes at a lane position: the same for every pass that
/// decides the same step there, so two passes that met write the same cells. A UUIDv7 carrying the
/// order's placement time.
pub fn saga_event_id(state: &OrderState, region: &Region, seq: u64, event: &OrderEvent) -> Uuid {
    let name = format!("{region}/{seq}/{}", event.type_name());
    let spread = Uuid::new_v5(&state.order_id, name.as_bytes()).as_u128() & ((1u128 << 80) - 1);
    let ms = (state.placed_at.timestamp_millis().max(0) as u128) & ((1u128 << 48) - 1);
    let id = (ms << 80) | spread;
    let id = (id & !(0xF_u128 << 76)) | (0x7 << 76);
    Uuid::from_u128((id & !(0b11_u128 << 62)) | (0b10 << 62))
}

impl<S: Services> Processor<S> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        region: Region,
        regions: Vec<Region>,
        journal: Arc<S::Lanes>,
        stock: S::Stock,
        open_orders: S::OpenOrders,
        payment: S::Payment,
        owners: S::Ownership,
        placed_to_final: prometheus::Histogram,
    ) -> Self {
        Processor {
            region,
            regions,
            journal,
            stock,
            open_orders,
            payment,
            owners,
            placed_to_final,
            recent: RecentIds::default(),
            passes: OrderLocks::default(),
        }
    }

    /// Whether the record of `envelope` needs no pass, known without reading the stream: a saga
    /// event this worker published (the pass that wrote it went on from it), or another region's
    /// event about an order that region processes itself (a cancel is read: it may concern an
    /// order this region processes).
    pub fn no_pass_needed(&self, envelope: &EventEnvelope) -> Option<NoPass> {
        if self.recent.contains(envelope.event_id) {
            return Some(NoPass::Published);
        }
        let origin = envelope.origin_region.as_str();
        if origin != self.region.as_str()
            && !matches!(envelope.payload, OrderEvent::OrderCancelled { .. })
            && self.owners.owner_of(origin) == origin
        {
            return Some(NoPass::OwnedByOrigin {
                owner: origin.to_string(),
            });
        }
        None
    }

    /// Advances the order as far as it can go now, then publishes what the pass wrote.
    ///
    /// Saga events are written without a condition (docs/decisions/0006-write-path.md); once per
    /// round the pass reads the positions it wrote back (ids only), and the whole stream when they
    /// are not exactly as written. An event a concurrent cancel displaced is gone: if it
    /// recorded an effect it is written again at the next free position, and the pass goes on
    /// from the stream as it now is (compensating, since the order was cancelled).
    pub async fn process_order(&self, order_id: Uuid) -> Result<Pass, ProcessError> {
        let _pass = self.passes.lock(order_id).await;
        let mut stream = self.journal.read_stream(order_id).await?;
        // Saga events of this region that no pass of this process published: a pass before a
        // crash may have written them and died before publishing. Publishing again is harmless.
        let mut publish: Vec<EventEnvelope> = stream
            .ordered()
            .into_iter()
            .filter(|e| e.origin_region == self.region && is_saga_event(&e.payload))
            .filter(|e| !self.recent.contains(e.event_id))
            .cloned()
            .collect();
        let mut written = Written::default();
        let mut outcome = None;
        for _ in 0..MAX_ROUNDS {
            let ended = self.steps(&mut stream, &mut written).await?;
            self.flush(&mut written).await?;
            if !written.unverified.is_empty() && self.kept_positions(&written.unverified).await? {
                // Every event of the round is where it was written and nothing came after it in
                // this region's lane: the stream as this pass built it is the stream as stored.
                publish.append(&mut written.unverified);
            }
            if !written.unverified.is_empty() {
                stream = self.journal.read_stream(order_id).await?;
                let (kept, displaced): (Vec<_>, Vec<_>) = written
                    .unverified
                    .drain(..)
                    .partition(|e: &EventEnvelope| stream.contains(e.event_id));
                publish.extend(kept);
                if !displaced.is_empty() {
                    for lost in displaced {
                        debug!(%order_id, event = lost.type_name(), "saga event displaced by a concurrent write");
                        let recorded = stream.ordered().iter().any(|e| e.payload == lost.payload);
                        if records_effect(&lost.payload) && !recorded {
                            self.build(&mut stream, lost.payload, &mut written)?;
                        }
                    }
                    continue;
                }
            }
            if let Ended::Outcome(ended) = ended {
                outcome = Some(ended);
                break;
            }
        }
        let Some(outcome) = outcome else {
            return Err(ProcessError::Contended { order_id });
        };
        self.publish(&publish).await?;
        Ok(Pass {
            outcome,
            appended: publish.iter().map(|e| e.event_id).collect(),
        })
    }

    /// Whether this region's lane holds exactly `events` from the first of their positions on (read
    /// without the events themselves). Anything else (one displaced by a cancel, a cancel just
    /// after them) makes the caller read the whole stream.
    async fn kept_positions(&self, events: &[EventEnvelope]) -> Result<bool, ProcessError> {
        let Some(first) = events.iter().map(|e| e.seq).min() else {
            return Ok(true);
        };
        let order_id = events[0].order_id;
        let lane = self.journal.lane_from(order_id, &self.region, first).await?;
        Ok(lane.len() == events.len() && events.iter().all(|e| lane.contains(&(e.seq, e.event_id))))
    }

    /// Publishes events in parallel and remembers them as published.
    async fn publish(&self, events: &[EventEnvelope]) -> Result<(), ProcessError> {
        let sends = events.iter().map(|e| self.journal.publish(e));
        for result in futures::future::join_all(sends).await {
            result?;
        }
        for e in events {
            self.recent.insert(e.event_id);
        }
        Ok(())
    }

    /// Takes saga steps from the stream as this pass knows it, writing each step's event.
    async fn steps(&self, stream: &mut OrderStream, written: &mut Written) -> Result<Ended, ProcessError> {
        let order_id = stream.order_id();
        for _ in 0..MAX_STEPS {
            let Ok(Some(state)) = stream.state() else {
                return Ok(Ended::Outcome(Outcome::Incomplete));
            };
            let owner = self.owners.owner_of(state.origin_region.as_str());
            if owner != self.region.as_str() {
                return Ok(Ended::Outcome(Outcome::NotOwner { owner }));
            }
            let step = state.next_saga_step();
            debug!(%order_id, ?step, "saga step");
            if matches!(step, SagaStep::Confirm | SagaStep::Reject { .. })
                && !(written.unwritten.is_empty() && written.unverified.is_empty())
            {
                // A decision stands on what this pass wrote: read it back first (a cancel may
                // have taken a position meanwhile, and the decision would then be another).
                return Ok(Ended::Verify);
            }
            if matches!(step, SagaStep::AuthorizePayment | SagaStep::Compensate(_)) {
                // An effect outside the stream follows: what the pass decided so far is written
                // first, so a crash never leaves an effect behind an unrecorded one.
                self.flush(written).await?;
            }
            let event = match step {
                SagaStep::Done => {
                    self.open_orders
                        .remove(state.origin_region.as_str(), order_id)
                        .await?;
                    return Ok(Ended::Outcome(Outcome::Done));
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
                        return Ok(Ended::Outcome(Outcome::Done));
                    }
                },
            };
            if matches!(
                event,
                OrderEvent::OrderConfirmed {} | OrderEvent::OrderRejected { .. }
            ) {
                let took = (Utc::now() - state.placed_at).to_std().unwrap_or_default();
                self.placed_to_final.observe(took.as_secs_f64());
            }
            self.build(stream, event, written)?;
        }
        Err(ProcessError::Contended { order_id })
    }

    /// Writes the events built since the last flush, in one request.
    async fn flush(&self, written: &mut Written) -> Result<(), ProcessError> {
        if written.unwritten.is_empty() {
            return Ok(());
        }
        self.journal.write_saga(&written.unwritten).await?;
        info!(
            order_id = %written.unwritten[0].order_id,
            events = ?written.unwritten.iter().map(|e| e.type_name()).collect::<Vec<_>>(),
            "saga advanced"
        );
        written.unverified.append(&mut written.unwritten);
        Ok(())
    }

    /// Builds a saga event at the next position of this region's lane and folds it in; the next
    /// flush writes it.
    fn build(
        &self,
        stream: &mut OrderStream,
        event: OrderEvent,
        written: &mut Written,
    ) -> Result<(), ProcessError> {
        let order_id = stream.order_id();
        let state = stream
            .state()
            .ok()
            .flatten()
            .ok_or(ProcessError::Contended { order_id })?;
        let seq = stream.lane_head(&self.region) + 1;
        let id = saga_event_id(&state, &self.region, seq, &event);
        let envelope = next_envelope(stream, &self.region, event, id, Utc::now());
        stream.insert(envelope.clone()).map_err(|e| {
            ProcessError::Store(StoreError::Decode {
                order_id,
                detail: e.to_string(),
            })
        })?;
        written.unwritten.push(envelope);
        Ok(())
    }

    /// Reserves every item from the allotment of the region where the order was placed, or none
    /// of them. Whoever processes the order (its region, or another after a takeover) reserves in
    /// that one allotment, keyed by order: a takeover finds the reservation the dying region made
    /// instead of making a second one.
    async fn reserve(&self, state: &OrderState) -> Result<OrderEvent, ProcessError> {
        let mut items: Vec<_> = state.items.iter().collect();
        items.sort_by(|a, b| a.sku.cmp(&b.sku)); // one order of locking for every order
        let allotment = state.origin_region.as_str();
        for item in &items {
            let reservation = self
                .stock
                .reserve(&item.sku, allotment, state.order_id, item.quantity as i32)
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

    /// Gives back whatever the order holds in the allotment of its region.
    async fn release(&self, state: &OrderState) -> Result<(), ProcessError> {
        for item in &state.items {
            self.stock
                .release(&item.sku, state.origin_region.as_str(), state.order_id)
                .await?;
        }
        Ok(())
    }
}

/// Striped per-order locks: one pass at a time per order.
pub struct OrderLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for OrderLocks {
    fn default() -> Self {
        OrderLocks {
            stripes: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl OrderLocks {
    async fn lock(&self, order_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = (order_id.as_u128() % self.stripes.len() as u128) as usize;
        self.stripes[stripe].lock().await
    }
}
