//! What a saga pass needs from the outside world, as small ports: the order's lanes, stock,
//! payment, ownership and the list of open orders. The real store, journal and payment client
//! implement them here as thin adapters; the in-memory fakes of the saga's tests are the second
//! implementation (docs/decisions/0006-write-path.md says what each write promises).
//!
//! The traits use `async fn`: the worker only ever runs `Processor<Live>`, whose futures are
//! concrete and `Send`, so the bound the lint asks for is never needed.
#![allow(async_fn_in_trait)]

use orders_domain::{EventEnvelope, Money, OrderStream, Region};
use orders_journal::{Journal, JournalError};
use orders_store::reach::Reach;
use orders_store::stock::Reservation;
use orders_store::{Durability, StoreError};
use uuid::Uuid;

use crate::ownership::Owners;
use crate::payment::{Authorization, PaymentClient, PaymentError};

/// The order's event lanes and the region's topic.
pub trait Lanes {
    /// Every event of the order visible in this region, from all lanes.
    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError>;
    /// `region`'s lane of the order from `from_seq` on: (position, event id), without the events.
    async fn lane_from(
        &self,
        order_id: Uuid,
        region: &Region,
        from_seq: u64,
    ) -> Result<Vec<(u64, Uuid)>, StoreError>;
    /// Writes saga events of one order to this region's lane in one request, without a condition
    /// and never over an event already at a position (a cancel that took it keeps it).
    async fn write_saga(&self, events: &[EventEnvelope]) -> Result<(), JournalError>;
    /// Publishes a stored event, waiting for the broker's acknowledgement.
    async fn publish(&self, event: &EventEnvelope) -> Result<(), JournalError>;
}

/// Stock allotments, reserved and released per order (a retry for the same order changes nothing).
pub trait Stock {
    async fn reserve(
        &self,
        sku: &str,
        allotment: &str,
        order_id: Uuid,
        quantity: i32,
    ) -> Result<Reservation, StoreError>;
    /// Gives back what the order holds of the SKU; a no-op if it holds nothing.
    async fn release(&self, sku: &str, allotment: &str, order_id: Uuid) -> Result<(), StoreError>;
}

/// The payment provider: idempotent per (order, step).
pub trait Payment {
    async fn authorize(&self, order_id: Uuid, amount: &Money) -> Result<Authorization, PaymentError>;
    async fn void(&self, order_id: Uuid, authorization_id: &str) -> Result<(), PaymentError>;
}

/// Who processes the orders placed in a region.
pub trait Ownership {
    fn owner_of(&self, origin: &str) -> String;
}

/// The orders not yet final, per origin region.
pub trait OpenOrders {
    async fn remove(&self, origin: &str, order_id: Uuid) -> Result<(), StoreError>;
}

/// The ports a processor is built from, named once (as cqrs-es names an aggregate's services).
pub trait Services {
    type Lanes: Lanes;
    type Stock: Stock;
    type Payment: Payment;
    type Ownership: Ownership;
    type OpenOrders: OpenOrders;
}

/// The production services: the journal, the stock allotments, the payment client, the
/// ownership view and the open-orders table.
pub struct Live;

impl Services for Live {
    type Lanes = Journal;
    type Stock = Allotments;
    type Payment = PaymentClient;
    type Ownership = Owners;
    type OpenOrders = orders_store::open_orders::OpenOrders;
}

impl Lanes for Journal {
    async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError> {
        self.store().read_stream(order_id).await
    }

    async fn lane_from(
        &self,
        order_id: Uuid,
        region: &Region,
        from_seq: u64,
    ) -> Result<Vec<(u64, Uuid)>, StoreError> {
        self.store().lane_from(order_id, region, from_seq).await
    }

    async fn write_saga(&self, events: &[EventEnvelope]) -> Result<(), JournalError> {
        self.record(events).await.map(|_| ())
    }

    async fn publish(&self, event: &EventEnvelope) -> Result<(), JournalError> {
        self.publish_event(event).await
    }
}

/// The stock allotments as the worker reserves them: in every datacenter while `global`
/// durability can reach them (`global` is the region's reach then), else locally.
pub struct Allotments {
    stock: orders_store::stock::Stock,
    global: Option<Reach>,
}

impl Allotments {
    pub fn new(stock: orders_store::stock::Stock, journal: &Journal) -> Self {
        let global = (journal.durability() == Durability::Global).then(|| journal.store().reach().clone());
        Allotments { stock, global }
    }
}

impl Stock for Allotments {
    async fn reserve(
        &self,
        sku: &str,
        allotment: &str,
        order_id: Uuid,
        quantity: i32,
    ) -> Result<Reservation, StoreError> {
        self.stock
            .reserve(sku, allotment, order_id, quantity, self.global.as_ref())
            .await
    }

    async fn release(&self, sku: &str, allotment: &str, order_id: Uuid) -> Result<(), StoreError> {
        self.stock.release(sku, allotment, order_id).await
    }
}

impl Payment for PaymentClient {
    async fn authorize(&self, order_id: Uuid, amount: &Money) -> Result<Authorization, PaymentError> {
        PaymentClient::authorize(self, order_id, amount).await
    }

    async fn void(&self, order_id: Uuid, authorization_id: &str) -> Result<(), PaymentError> {
        PaymentClient::void(self, order_id, authorization_id).await
    }
}

impl Ownership for Owners {
    fn owner_of(&self, origin: &str) -> String {
        Owners::owner_of(self, origin)
    }
}

impl OpenOrders for orders_store::open_orders::OpenOrders {
    async fn remove(&self, origin: &str, order_id: Uuid) -> Result<(), StoreError> {
        orders_store::open_orders::OpenOrders::remove(self, origin, order_id).await
    }
}
