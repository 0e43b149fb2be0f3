//! In-memory fakes of the placement's ports, with the faults a test injects: the other datacenters
//! timing out (a degraded write, a claim read that falls back to this region), a concurrent claim
//! appearing in the read-back, claims left by earlier requests, a failed write, a sold-out SKU.
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use orders_domain::{EventEnvelope, OrderStream};
use orders_journal::JournalError;
use orders_store::customers::CustomerOrder;
use orders_store::idempotency::{ClaimRequest, KeyRecord, Scope};
use orders_store::reach::Reach;
use orders_store::{Appended, Durability, StoreError};
use uuid::Uuid;

use super::{Claims, Orders, SoldOut};

/// A transient store failure, as a timeout would be.
pub fn timeout(what: &'static str) -> StoreError {
    StoreError::Query {
        what,
        source: Box::new(scylla::errors::ExecutionError::RequestTimeout(
            std::time::Duration::from_secs(1),
        )),
    }
}

fn take(armed: &Mutex<usize>) -> bool {
    let mut n = armed.lock().unwrap();
    let fire = *n > 0;
    *n = n.saturating_sub(1);
    fire
}

/// One write a placement made, in the order made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrote {
    CustomerRow(Uuid),
    OpenOrder(Uuid),
    Placement(Uuid),
}

/// The event store and the rows beside a placement, in one region.
pub struct FakeOrders {
    durability: Durability,
    reach: Reach,
    events: Mutex<BTreeMap<Uuid, Vec<EventEnvelope>>>,
    wrote: Mutex<Vec<Wrote>>,
    /// The other datacenters time out on the next global write (the region then writes locally).
    other_region_down: Mutex<bool>,
    failing_places: Mutex<usize>,
    failing_reads: Mutex<usize>,
    failing_open_orders: Mutex<usize>,
}

impl FakeOrders {
    pub fn new(durability: Durability) -> Self {
        FakeOrders {
            durability,
            reach: Reach::default(),
            events: Mutex::default(),
            wrote: Mutex::default(),
            other_region_down: Mutex::new(false),
            failing_places: Mutex::default(),
            failing_reads: Mutex::default(),
            failing_open_orders: Mutex::default(),
        }
    }

    /// The other datacenters stop answering global writes in time.
    pub fn other_region_down(&self) {
        *self.other_region_down.lock().unwrap() = true;
    }

    /// The next `n` placement writes fail (nothing written).
    pub fn fail_places(&self, n: usize) {
        *self.failing_places.lock().unwrap() = n;
    }

    /// The next `n` open-orders rows (the placements' intents) fail to be written.
    pub fn fail_open_orders(&self, n: usize) {
        *self.failing_open_orders.lock().unwrap() = n;
    }

    /// The next `n` stream reads fail.
    pub fn fail_reads(&self, n: usize) {
        *self.failing_reads.lock().unwrap() = n;
    }

    pub fn wrote(&self) -> Vec<Wrote> {
        self.wrote.lock().unwrap().clone()
    }

    pub fn events(&self, order_id: Uuid) -> Vec<EventEnvelope> {
        self.events
            .lock()
            .unwrap()
            .get(&order_id)
            .cloned()
            .unwrap_or_default()
    }
}

impl Orders for FakeOrders {
    fn durability(&self) -> Durability {
        self.durability
    }

    fn reach(&self) -> &Reach {
        &self.reach
    }

    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError> {
        // Another request of this instance may run meanwhile, as it may between real reads.
        tokio::task::yield_now().await;
        if take(&self.failing_reads) {
            return Err(timeout("read"));
        }
        Ok(OrderStream::from_events(order_id, self.events(order_id)).expect("a consistent stream"))
    }

    async fn record_customer_order(&self, _customer_id: Uuid, row: &CustomerOrder) -> Result<(), StoreError> {
        self.wrote.lock().unwrap().push(Wrote::CustomerRow(row.order_id));
        Ok(())
    }

    async fn add_open_order(
        &self,
        _origin: &str,
        order_id: Uuid,
        _placed_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // The customer row may be written meanwhile, as it may beside a real write.
        tokio::task::yield_now().await;
        if take(&self.failing_open_orders) {
            return Err(timeout("add open order"));
        }
        self.wrote.lock().unwrap().push(Wrote::OpenOrder(order_id));
        Ok(())
    }

    async fn place(&self, envelope: &EventEnvelope) -> Result<Appended, JournalError> {
        if take(&self.failing_places) {
            return Err(JournalError::Store(timeout("place")));
        }
        let degraded = match self.durability {
            Durability::Local => false,
            Durability::Global if !self.reach.is_global_possible() => true,
            Durability::Global if *self.other_region_down.lock().unwrap() => {
                self.reach.declare_unreachable("each quorum write timed out");
                true
            }
            Durability::Global => false,
        };
        let mut events = self.events.lock().unwrap();
        let lane = events.entry(envelope.order_id).or_default();
        lane.retain(|e| (&e.origin_region, e.seq) != (&envelope.origin_region, envelope.seq));
        lane.push(envelope.clone());
        self.wrote
            .lock()
            .unwrap()
            .push(Wrote::Placement(envelope.order_id));
        Ok(if degraded {
            Appended::Degraded
        } else {
            Appended::Written
        })
    }
}

/// A claim row with where it can be read from.
#[derive(Debug, Clone)]
struct Row {
    client: String,
    key: String,
    record: KeyRecord,
    /// Replicated to this region's datacenter (a local read sees it).
    here: bool,
}

/// The claim rows of every key, as seen from this region.
#[derive(Default)]
pub struct FakeClaims {
    rows: Mutex<Vec<Row>>,
    /// A request elsewhere claims the key just as the next claim of this region is written.
    concurrent: Mutex<Option<(String, String)>>,
    scopes: Mutex<Vec<Scope>>,
    failing_everywhere: Mutex<usize>,
}

impl FakeClaims {
    /// A claim of (client, key) made `age` ago by another request of `region` with `fingerprint`.
    pub fn given(&self, client: &str, key: &str, region: &str, fingerprint: &str, age: TimeDelta) {
        self.rows.lock().unwrap().push(Row {
            client: client.into(),
            key: key.into(),
            record: KeyRecord {
                region: region.into(),
                claimant: Uuid::new_v4(),
                fingerprint: fingerprint.into(),
                order_id: Uuid::nil(),
                started_at: Utc::now() - age,
            },
            here: true,
        });
    }

    /// A request in `region` with `fingerprint` claims the key at the same moment as the next
    /// claim written here; its row is not yet replicated to this datacenter.
    pub fn concurrent_claim(&self, region: &str, fingerprint: &str) {
        *self.concurrent.lock().unwrap() = Some((region.into(), fingerprint.into()));
    }

    /// The next `n` operations reaching every datacenter time out.
    pub fn fail_everywhere(&self, n: usize) {
        *self.failing_everywhere.lock().unwrap() = n;
    }

    /// Ages every claim by `by`, as time passing would.
    pub fn age(&self, by: TimeDelta) {
        for row in self.rows.lock().unwrap().iter_mut() {
            row.record.started_at -= by;
        }
    }

    pub fn count(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    /// The scope of every claim write and read, in order.
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.lock().unwrap().clone()
    }

    fn reach(&self, scope: Scope) -> Result<(), StoreError> {
        self.scopes.lock().unwrap().push(scope);
        if scope == Scope::Everywhere && take(&self.failing_everywhere) {
            return Err(timeout("idempotency claim"));
        }
        Ok(())
    }
}

impl Claims for FakeClaims {
    async fn claim(&self, scope: Scope, request: &ClaimRequest<'_>) -> Result<(), StoreError> {
        let ClaimRequest {
            client,
            key,
            claimant,
            fingerprint,
            order_id,
            now,
        } = *request;
        self.reach(scope)?;
        let mut rows = self.rows.lock().unwrap();
        // The row's key is (client, key, region, claimant): claiming again overwrites it.
        rows.retain(|r| r.record.claimant != claimant);
        rows.push(Row {
            client: client.into(),
            key: key.into(),
            record: KeyRecord {
                region: "eu".into(),
                claimant,
                fingerprint: fingerprint.into(),
                order_id,
                started_at: now,
            },
            here: true,
        });
        if let Some((region, fingerprint)) = self.concurrent.lock().unwrap().take() {
            rows.push(Row {
                client: client.into(),
                key: key.into(),
                record: KeyRecord {
                    region,
                    claimant: Uuid::new_v4(),
                    fingerprint,
                    order_id,
                    started_at: now,
                },
                here: false,
            });
        }
        Ok(())
    }

    async fn records(&self, scope: Scope, client: &str, key: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.reach(scope)?;
        tokio::task::yield_now().await;
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.client == client && r.key == key)
            .filter(|r| r.here || scope == Scope::Everywhere)
            .map(|r| r.record.clone())
            .collect())
    }

    async fn release(&self, client: &str, key: &str, claimant: Uuid) -> Result<(), StoreError> {
        self.rows
            .lock()
            .unwrap()
            .retain(|r| !(r.client == client && r.key == key && r.record.claimant == claimant));
        Ok(())
    }
}

/// Units left per SKU in this region, as the API's background view last read them.
#[derive(Default)]
pub struct FakeAllotments {
    left: Mutex<HashMap<String, i64>>,
}

impl FakeAllotments {
    pub fn set(&self, sku: &str, left: i64) {
        self.left.lock().unwrap().insert(sku.into(), left);
    }
}

impl SoldOut for FakeAllotments {
    fn sold_out(&self, sku: &str, quantity: i64) -> bool {
        self.left
            .lock()
            .unwrap()
            .get(sku)
            .is_some_and(|&left| left < quantity)
    }
}
