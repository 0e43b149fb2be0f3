//! The raw backend: exactly the writes one placement makes, through the store's own types and the
//! journal's producer settings, without HTTP, authentication, validation or pricing.
//!
//! Order of work and consistency as `POST /v1/orders` (services/api/src/routes/orders.rs): read the
//! order stream; write this request's claim of the idempotency key and read every claim of it
//! (EACH_QUORUM write and QUORUM read in global durability, LOCAL_QUORUM in local); the customer
//! and open-order rows together (the open-order row is the placement's intent: no outbox row); the
//! event insert (EACH_QUORUM in global durability; no lightweight transaction); then the Kafka
//! produce concurrently with marking the key done. The acknowledgement is when the
//! key is marked done, where the API answers 201; the produce is waited for too and counted in the
//! completion latency and the errors. The events are real `OrderPlaced` events, so the worker
//! processes them like any other order.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use orders_domain::{LineItem, Money, OrderEvent, Region, ShippingAddress, next_envelope, order_id_for};
use orders_journal::{HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_ORIGIN_REGION};
use orders_store::customers::{CustomerOrder, Customers};
use orders_store::events::Write;
use orders_store::idempotency::{ClaimRequest, Idempotency, Scope};
use orders_store::open_orders::OpenOrders;
use orders_store::{Appended, Durability, EventStore, StoreConfig};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::load::{Done, OpError};
use crate::stack::{Region as StackRegion, Sku};

/// The client id of the harness's idempotency rows (the API's are the storefront's).
pub const CLIENT_ID: &str = "orders-bench-raw";

pub struct RawBackend {
    region: Region,
    durability: Durability,
    store: EventStore,
    idempotency: Idempotency,
    customers: Customers,
    open_orders: OpenOrders,
    producer: FutureProducer,
    skus: Vec<Sku>,
    degraded: AtomicU64,
    shutdown: CancellationToken,
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl RawBackend {
    pub async fn connect(
        region: &StackRegion,
        durability: Durability,
        skus: Vec<Sku>,
    ) -> anyhow::Result<Arc<Self>> {
        let name = Region::new(region.name.clone()).map_err(|e| anyhow::anyhow!("region name: {e}"))?;
        let session = orders_store::connect(&StoreConfig::new(region.cql_contact(), region.name.as_str()))
            .await
            .with_context(|| format!("connecting to CQL of region {}", region.name))?;
        let reach = orders_store::reach::Reach::default();
        let shutdown = CancellationToken::new();
        // The API runs the same probe: after a degraded append, global durability comes back by itself.
        tokio::spawn(reach.clone().run_probe(
            session.clone(),
            region.name.clone(),
            Duration::from_secs(1),
            shutdown.clone(),
        ));
        let producer: FutureProducer = orders_log::producer_config(&region.kafka)
            .create()
            .with_context(|| format!("creating the Kafka producer for {}", region.kafka))?;
        Ok(Arc::new(RawBackend {
            store: EventStore::new(session.clone(), name.clone(), reach).await?,
            idempotency: Idempotency::new(session.clone(), name.as_str()).await?,
            customers: Customers::new(session.clone()).await?,
            open_orders: OpenOrders::new(session).await?,
            region: name,
            durability,
            producer,
            skus,
            degraded: AtomicU64::new(0),
            shutdown,
        }))
    }

    /// Appends acknowledged only in this region because global durability was impossible.
    pub fn degraded(&self) -> u64 {
        self.degraded.load(Ordering::Relaxed)
    }

    /// One placement's writes.
    pub async fn place(self: Arc<Self>) -> Result<Done, OpError> {
        let key = Uuid::new_v4();
        let key_text = key.to_string();
        let order_id = order_id_for(CLIENT_ID, &key_text);
        let customer_id = Uuid::new_v4();
        let sku = &self.skus[(customer_id.as_u128() % self.skus.len() as u128) as usize];
        let unit_price = Money {
            amount_minor: sku.price_minor,
            currency: sku.currency.clone(),
        };
        // The same length as the API's SHA-256 hex; computing a hash is request handling, not a write.
        let fingerprint = format!("{:032x}{:032x}", key.as_u128(), customer_id.as_u128());
        let now = Utc::now();
        let cql = |what: &'static str| {
            move |e: orders_store::StoreError| OpError(format!("cql: {what}: {}", short(&e)))
        };

        let everywhere = self.durability == Durability::Global && self.store.reach().is_global_possible();
        let scope = if everywhere {
            Scope::Everywhere
        } else {
            Scope::Local
        };
        let claimant = Uuid::new_v4();
        // As the API: the stream is read (is it a retry?) while the key is claimed.
        let claim = async {
            self.idempotency
                .claim(
                    scope,
                    &ClaimRequest {
                        client: CLIENT_ID,
                        key: &key_text,
                        claimant,
                        fingerprint: &fingerprint,
                        order_id,
                        now,
                    },
                )
                .await
                .map_err(cql("idempotency claim"))?;
            self.idempotency
                .records(scope, CLIENT_ID, &key_text)
                .await
                .map_err(cql("idempotency read"))
        };
        let read = async { (self.store.read_stream(order_id).await).map_err(cql("read stream")) };
        let (stream, claims) = tokio::try_join!(read, claim)?;
        if claims.iter().any(|c| c.claimant != claimant) {
            return Err(OpError::new("idempotency key already claimed"));
        }

        let event = OrderEvent::OrderPlaced {
            customer_id,
            items: vec![LineItem {
                sku: sku.sku.clone(),
                quantity: 1,
                unit_price: unit_price.clone(),
            }],
            total: unit_price,
            shipping_address: address(),
            idempotency_fingerprint: fingerprint,
        };
        let envelope = next_envelope(&stream, &self.region, event, Uuid::now_v7(), now);
        let row = CustomerOrder {
            order_id,
            placed_at: envelope.occurred_at,
            origin_region: self.region.to_string(),
            total_minor: sku.price_minor,
            currency: sku.currency.clone(),
        };
        // As the API: the rows beside the event at once (the open-order row is its intent), then
        // the event.
        let json = serde_json::to_string(&envelope).map_err(|e| OpError(format!("encode: {e}")))?;
        tokio::try_join!(
            self.customers.record(customer_id, &row),
            self.open_orders
                .add(self.region.as_str(), order_id, envelope.occurred_at),
        )
        .map_err(cql("placement rows"))?;
        match self
            .store
            .write(&envelope, self.durability, Write::Placement)
            .await
            .map_err(cql("write"))?
        {
            Appended::Written => {}
            Appended::Degraded => {
                self.degraded.fetch_add(1, Ordering::Relaxed);
            }
            Appended::Conflict => return Err(OpError::new("append conflict")),
        }

        let produce = async {
            let key = order_id.to_string();
            let event_id = envelope.event_id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_EVENT_ID,
                    value: Some(event_id.as_str()),
                })
                .insert(Header {
                    key: HEADER_EVENT_TYPE,
                    value: Some(envelope.type_name()),
                })
                .insert(Header {
                    key: HEADER_ORIGIN_REGION,
                    value: Some(self.region.as_str()),
                });
            let record = FutureRecord::to(orders_log::ORDERS_TOPIC)
                .key(&key)
                .payload(&json)
                .headers(headers);
            self.producer
                .send(record, Duration::from_secs(10))
                .await
                .map(|_| ())
                .map_err(|(e, _)| OpError(format!("kafka: produce: {e}")))
        };
        let ack = Instant::now();
        produce.await?;
        Ok(Done { ack })
    }
}

fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Bench Customer".into(),
        line1: "1 Load Street".into(),
        line2: None,
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    }
}

/// The innermost cause, short enough to be an error kind.
fn short(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let mut s: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        s.push('…');
    }
    s
}
