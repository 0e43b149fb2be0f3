//! In-memory fakes of the saga's ports, with the faults a test injects: a cancel racing the
//! worker's write for a lane position, transient failures, declines, short stock, ownership moved.
//!
//! They keep the promises of the real adapters that the saga relies on: saga events never land on a
//! taken lane position (write timestamp 1), a cancel takes only a free one (`IF NOT EXISTS`), stock
//! and payment effects are idempotent per order.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use orders_domain::{EventEnvelope, Money, OrderEvent, OrderStream, Region, next_envelope};
use orders_journal::JournalError;
use orders_store::StoreError;
use orders_store::stock::Reservation;
use uuid::Uuid;

use super::Processor;
use super::ports::{Lanes, OpenOrders, Ownership, Payment, Services, Stock};
use crate::payment::{Authorization, PaymentError};

/// The fakes as a processor's services, shared (`Arc`) so that the workers of several regions of
/// one test see one world.
pub struct Fakes;

impl Services for Fakes {
    type Lanes = FakeLanes;
    type Stock = Arc<FakeStock>;
    type Payment = Arc<FakePayment>;
    type Ownership = Arc<FakeOwners>;
    type OpenOrders = Arc<FakeOpenOrders>;
}

/// One world of fakes: the lanes, stock, payment provider, ownership and open orders every
/// region's worker of a test shares.
#[derive(Default)]
pub struct World {
    pub lanes: Arc<FakeLanes>,
    pub stock: Arc<FakeStock>,
    pub payment: Arc<FakePayment>,
    pub owners: Arc<FakeOwners>,
    pub open_orders: Arc<FakeOpenOrders>,
}

impl World {
    /// The worker of `region` in a deployment of eu and us.
    pub fn worker(&self, region: &Region) -> Processor<Fakes> {
        let regions = ["eu", "us"].map(|r| Region::new(r).unwrap()).to_vec();
        let placed_to_final = prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
            "placed_to_final_seconds",
            "test",
        ))
        .unwrap();
        Processor::new(
            region.clone(),
            regions,
            self.lanes.clone(),
            self.stock.clone(),
            self.open_orders.clone(),
            self.payment.clone(),
            self.owners.clone(),
            placed_to_final,
        )
    }
}

/// A transient store failure, as a timeout would be.
pub fn store_down(what: &'static str) -> StoreError {
    StoreError::Query {
        what,
        source: Box::new(scylla::errors::ExecutionError::RequestTimeout(
            std::time::Duration::from_secs(1),
        )),
    }
}

/// Takes one armed fault, if any is left.
fn take(armed: &Mutex<usize>) -> bool {
    let mut n = armed.lock().unwrap();
    let fire = *n > 0;
    *n = n.saturating_sub(1);
    fire
}

/// A customer's cancel injected into the worker's write of an event of type `on`.
#[derive(Debug, Clone)]
struct RacingCancel {
    region: Region,
    on: &'static str,
    /// The cancel's `IF NOT EXISTS` found the position free just before the saga event landed,
    /// and keeps it (the saga event, written with timestamp 1, loses); else the cancel came just
    /// after, found the position taken and moved to the next free one.
    displacing: bool,
}

/// Every lane of every order, and what was published.
#[derive(Default)]
pub struct FakeLanes {
    /// (order, lane region, seq) to the event there.
    rows: Mutex<BTreeMap<(Uuid, Region, u64), EventEnvelope>>,
    published: Mutex<Vec<EventEnvelope>>,
    /// Write requests of saga events, each as the events it carried.
    writes: Mutex<Vec<Vec<EventEnvelope>>>,
    racing: Mutex<Option<RacingCancel>>,
    failing_writes: Mutex<usize>,
    failing_publishes: Mutex<usize>,
    /// Reads of a whole stream.
    full_reads: Mutex<usize>,
}

impl FakeLanes {
    /// Reads of a whole stream so far.
    pub fn full_reads(&self) -> usize {
        *self.full_reads.lock().unwrap()
    }

    /// Stores an event as if another writer had (the API, another region's worker, an earlier pass).
    pub fn given(&self, event: EventEnvelope) {
        let at = (event.order_id, event.origin_region.clone(), event.seq);
        let mut rows = self.rows.lock().unwrap();
        assert!(!rows.contains_key(&at), "lane position {at:?} already taken");
        rows.insert(at, event);
    }

    /// Appends `event` to `region`'s lane as the API would, at the next position of the stream it
    /// reads now: `IF NOT EXISTS` on a position it just saw free.
    pub fn append(&self, order_id: Uuid, region: &Region, event: OrderEvent) -> EventEnvelope {
        let stream = self.stream(order_id);
        let envelope = next_envelope(&stream, region, event, Uuid::now_v7(), Utc::now());
        self.given(envelope.clone());
        envelope
    }

    /// A customer's cancel in `region` that takes the lane position of the worker's write of an
    /// event of type `on` (its condition saw the position free just before the saga event landed).
    pub fn cancel_displacing(&self, region: &Region, on: &'static str) {
        *self.racing.lock().unwrap() = Some(RacingCancel {
            region: region.clone(),
            on,
            displacing: true,
        });
    }

    /// A customer's cancel in `region` arriving just after the worker's write of an event of type
    /// `on` landed.
    pub fn cancel_after(&self, region: &Region, on: &'static str) {
        *self.racing.lock().unwrap() = Some(RacingCancel {
            region: region.clone(),
            on,
            displacing: false,
        });
    }

    /// The next `n` saga writes fail (a timeout: nothing written).
    pub fn fail_writes(&self, n: usize) {
        *self.failing_writes.lock().unwrap() = n;
    }

    /// The next `n` publishes fail (the broker did not acknowledge).
    pub fn fail_publishes(&self, n: usize) {
        *self.failing_publishes.lock().unwrap() = n;
    }

    /// The order's stream as stored now.
    pub fn stream(&self, order_id: Uuid) -> OrderStream {
        let rows = self.rows.lock().unwrap();
        let events = rows
            .iter()
            .filter(|((id, _, _), _)| *id == order_id)
            .map(|(_, e)| e.clone());
        OrderStream::from_events(order_id, events).expect("a consistent stream")
    }

    /// The order's event types in canonical order.
    pub fn types(&self, order_id: Uuid) -> Vec<&'static str> {
        self.stream(order_id)
            .ordered()
            .iter()
            .map(|e| e.type_name())
            .collect()
    }

    pub fn published(&self) -> Vec<EventEnvelope> {
        self.published.lock().unwrap().clone()
    }

    pub fn published_types(&self) -> Vec<&'static str> {
        self.published().iter().map(|e| e.type_name()).collect()
    }

    pub fn writes(&self) -> Vec<Vec<EventEnvelope>> {
        self.writes.lock().unwrap().clone()
    }
}

impl Lanes for FakeLanes {
    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError> {
        *self.full_reads.lock().unwrap() += 1;
        Ok(self.stream(order_id))
    }

    async fn lane_from(
        &self,
        order_id: Uuid,
        region: &Region,
        from_seq: u64,
    ) -> Result<Vec<(u64, Uuid)>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|((id, lane, seq), _)| *id == order_id && lane == region && *seq >= from_seq)
            .map(|((_, _, seq), e)| (*seq, e.event_id))
            .collect())
    }

    async fn write_saga(&self, events: &[EventEnvelope]) -> Result<(), JournalError> {
        if take(&self.failing_writes) {
            return Err(JournalError::Store(store_down("write saga events")));
        }
        let Some(first) = events.first() else {
            return Ok(());
        };
        let racing = {
            let mut armed = self.racing.lock().unwrap();
            match &*armed {
                Some(r) if events.iter().any(|e| e.type_name() == r.on) => armed.take(),
                _ => None,
            }
        };
        if let Some(RacingCancel {
            region,
            on,
            displacing: true,
        }) = &racing
        {
            let cancel = self.append(first.order_id, region, cancelled());
            assert_eq!(
                (first.type_name(), &cancel.origin_region, cancel.seq),
                (*on, &first.origin_region, first.seq),
                "a displacing cancel takes the position of the write it races"
            );
        }
        {
            let mut rows = self.rows.lock().unwrap();
            for event in events {
                // Write timestamp 1: whatever is at the position already stays.
                rows.entry((event.order_id, event.origin_region.clone(), event.seq))
                    .or_insert_with(|| event.clone());
            }
        }
        if let Some(RacingCancel {
            region,
            displacing: false,
            ..
        }) = &racing
        {
            self.append(first.order_id, region, cancelled());
        }
        self.writes.lock().unwrap().push(events.to_vec());
        Ok(())
    }

    async fn publish(&self, event: &EventEnvelope) -> Result<(), JournalError> {
        if take(&self.failing_publishes) {
            return Err(JournalError::Store(store_down("publish")));
        }
        self.published.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn cancelled() -> OrderEvent {
    OrderEvent::OrderCancelled {
        reason: "changed my mind".into(),
    }
}

type Allotment = (String, String);

/// Allotments per (sku, region) and the rows of the orders holding units of them.
#[derive(Default)]
pub struct FakeStock {
    available: Mutex<HashMap<Allotment, i64>>,
    held: Mutex<HashMap<(String, String, Uuid), i32>>,
    reserve_calls: Mutex<usize>,
    failing: Mutex<usize>,
}

impl FakeStock {
    pub fn set(&self, sku: &str, region: &str, available: i64) {
        self.available
            .lock()
            .unwrap()
            .insert((sku.into(), region.into()), available);
    }

    pub fn available(&self, sku: &str, region: &str) -> i64 {
        self.available
            .lock()
            .unwrap()
            .get(&(sku.to_string(), region.to_string()))
            .copied()
            .unwrap_or(0)
    }

    pub fn holds(&self, sku: &str, region: &str, order_id: Uuid) -> bool {
        self.held
            .lock()
            .unwrap()
            .contains_key(&(sku.into(), region.into(), order_id))
    }

    /// Reservation requests made, retries included.
    pub fn reserve_calls(&self) -> usize {
        *self.reserve_calls.lock().unwrap()
    }

    /// The next `n` reservations fail (a timeout).
    pub fn fail(&self, n: usize) {
        *self.failing.lock().unwrap() = n;
    }
}

impl Stock for Arc<FakeStock> {
    async fn reserve(
        &self,
        sku: &str,
        allotment: &str,
        order_id: Uuid,
        quantity: i32,
    ) -> Result<Reservation, StoreError> {
        *self.reserve_calls.lock().unwrap() += 1;
        if take(&self.failing) {
            return Err(store_down("reserve stock"));
        }
        let row = (sku.to_string(), allotment.to_string(), order_id);
        let mut held = self.held.lock().unwrap();
        if held.contains_key(&row) {
            return Ok(Reservation::Held);
        }
        let mut available = self.available.lock().unwrap();
        let left = available.entry((sku.into(), allotment.into())).or_default();
        if *left < quantity as i64 {
            return Ok(Reservation::Insufficient { available: *left });
        }
        *left -= quantity as i64;
        held.insert(row, quantity);
        Ok(Reservation::Held)
    }

    async fn release(&self, sku: &str, allotment: &str, order_id: Uuid) -> Result<(), StoreError> {
        let row = (sku.to_string(), allotment.to_string(), order_id);
        if let Some(quantity) = self.held.lock().unwrap().remove(&row) {
            *self
                .available
                .lock()
                .unwrap()
                .entry((sku.into(), allotment.into()))
                .or_default() += quantity as i64;
        }
        Ok(())
    }
}

/// A payment provider: one answer per order's authorization key, as the real one keeps.
#[derive(Default)]
pub struct FakePayment {
    answers: Mutex<HashMap<Uuid, Authorization>>,
    authorize_calls: Mutex<usize>,
    voids: Mutex<Vec<(Uuid, String)>>,
    decline: Mutex<Option<String>>,
    failing: Mutex<usize>,
    refusing: Mutex<bool>,
}

impl FakePayment {
    /// Every new authorization is declined with `reason`.
    pub fn decline(&self, reason: &str) {
        *self.decline.lock().unwrap() = Some(reason.into());
    }

    /// The next `n` requests find the provider unavailable.
    pub fn fail(&self, n: usize) {
        *self.failing.lock().unwrap() = n;
    }

    /// The provider refuses every request itself (a 4xx): retrying cannot help.
    pub fn refuse(&self) {
        *self.refusing.lock().unwrap() = true;
    }

    pub fn authorize_calls(&self) -> usize {
        *self.authorize_calls.lock().unwrap()
    }

    /// Orders authorized (declines excluded).
    pub fn authorized(&self) -> usize {
        self.answers
            .lock()
            .unwrap()
            .values()
            .filter(|a| matches!(a, Authorization::Authorized { .. }))
            .count()
    }

    pub fn voids(&self) -> Vec<(Uuid, String)> {
        self.voids.lock().unwrap().clone()
    }

    fn check(&self) -> Result<(), PaymentError> {
        if *self.refusing.lock().unwrap() {
            return Err(PaymentError::Permanent("status 400".into()));
        }
        if take(&self.failing) {
            return Err(PaymentError::Transient("status 503".into()));
        }
        Ok(())
    }
}

impl Payment for Arc<FakePayment> {
    async fn authorize(&self, order_id: Uuid, _amount: &Money) -> Result<Authorization, PaymentError> {
        *self.authorize_calls.lock().unwrap() += 1;
        self.check()?;
        let decline = self.decline.lock().unwrap().clone();
        let answer = self
            .answers
            .lock()
            .unwrap()
            .entry(order_id)
            .or_insert_with(|| match decline {
                Some(reason) => Authorization::Declined { reason },
                None => Authorization::Authorized {
                    id: format!("auth-{order_id}"),
                },
            })
            .clone();
        Ok(answer)
    }

    async fn void(&self, order_id: Uuid, authorization_id: &str) -> Result<(), PaymentError> {
        self.check()?;
        self.voids
            .lock()
            .unwrap()
            .push((order_id, authorization_id.to_string()));
        Ok(())
    }
}

/// Who owns each origin's orders: each region its own unless moved.
#[derive(Default)]
pub struct FakeOwners {
    moved: Mutex<HashMap<String, String>>,
}

impl FakeOwners {
    /// `owner` now processes the orders placed in `origin` (a takeover, or a hand-back).
    pub fn take_over(&self, origin: &str, owner: &str) {
        self.moved.lock().unwrap().insert(origin.into(), owner.into());
    }
}

impl Ownership for Arc<FakeOwners> {
    fn owner_of(&self, origin: &str) -> String {
        self.moved
            .lock()
            .unwrap()
            .get(origin)
            .cloned()
            .unwrap_or_else(|| origin.to_string())
    }
}

/// The open-orders table: what was removed from it.
#[derive(Default)]
pub struct FakeOpenOrders {
    removed: Mutex<Vec<(String, Uuid)>>,
}

impl FakeOpenOrders {
    pub fn removed(&self) -> Vec<(String, Uuid)> {
        self.removed.lock().unwrap().clone()
    }
}

impl OpenOrders for Arc<FakeOpenOrders> {
    async fn remove(&self, origin: &str, order_id: Uuid) -> Result<(), StoreError> {
        self.removed.lock().unwrap().push((origin.into(), order_id));
        Ok(())
    }
}
