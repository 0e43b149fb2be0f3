//! The journal: appends an order's events to the event store and gets every appended event onto
//! the region's `orders` topic, with no loss between the two writes.
//!
//! A cancel writes its outbox row (the intent), then the event. A placement needs no outbox row:
//! its open-orders row, written before the event, is its intent. On success the event is published
//! at once (and a cancel's outbox row deleted); if the process dies between the write and the
//! produce, a relay finds the intent, checks the event is really in the store, and publishes it.
//! The worker's saga events need no intent: the worker publishes them before it lets go of the
//! record that started the pass, and a redelivered record publishes them again. Consumers dedupe by
//! event id, so an event published twice is harmless (docs/decisions/0002-outbox.md,
//! docs/decisions/0006-write-path.md).
mod placements;
mod recent;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use orders_domain::{EventEnvelope, Region};
use orders_log::ORDERS_TOPIC;
use orders_store::events::Write;
use orders_store::open_orders::OpenOrders;
use orders_store::outbox::Outbox;
use orders_store::{Appended, Durability, EventStore, StoreError};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::{debug, error, warn};

pub use placements::PlacementStats;
pub use recent::RecentIds;
pub use relay::RelayStats;

/// Kafka headers every published event carries.
pub const HEADER_EVENT_ID: &str = "event_id";
pub const HEADER_EVENT_TYPE: &str = "event_type";
pub const HEADER_ORIGIN_REGION: &str = "origin_region";

/// A relay leaves intents younger than this to the fast path.
pub const MIN_AGE: Duration = Duration::from_secs(2);

/// An intent whose event is not in the store this long after it was made is dropped: its writer is
/// gone and acknowledged nothing. A writer refuses to append an event made more than half of this
/// ago, so no acknowledged event depends on a dropped intent.
pub const ABANDON_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event {event_id} cannot be encoded")]
    Encode {
        event_id: uuid::Uuid,
        #[source]
        source: serde_json::Error,
    },
    /// The outbox row took so long that the relay may already scan above it: the event is not
    /// appended, so nothing acknowledged depends on that row.
    #[error("event {event_id}: its outbox row was written {late_ms} ms after the event was made")]
    OutboxLate { event_id: uuid::Uuid, late_ms: i64 },
    /// The placement came so late that the relay may already have dropped its open-orders row as
    /// abandoned: the event is not written, so nothing acknowledged depends on that row.
    #[error("placement {event_id} came {late_ms} ms after the event was made")]
    PlacementLate { event_id: uuid::Uuid, late_ms: i64 },
    #[error("event {event_id} not published")]
    Publish {
        event_id: uuid::Uuid,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("kafka producer for {bootstrap}")]
    Producer {
        bootstrap: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl JournalError {
    /// Whether a retry may succeed: the store's own classification, a late outbox row (nothing was
    /// appended), or a produce the broker could not take now. An event that cannot be encoded, a
    /// record the broker refuses for its size or form, or a producer that cannot be configured
    /// repeats on every retry.
    pub fn is_transient(&self) -> bool {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
        match self {
            JournalError::Store(e) => e.is_transient(),
            JournalError::Encode { .. } => false,
            JournalError::OutboxLate { .. } | JournalError::PlacementLate { .. } => true,
            JournalError::Publish { source, .. } => match source {
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) | KafkaError::Nul(_) => false,
                other => !matches!(
                    other.rdkafka_error_code(),
                    Some(
                        Code::InvalidMessage
                            | Code::InvalidMessageSize
                            | Code::MessageSizeTooLarge
                            | Code::InvalidRecord
                            | Code::TopicAuthorizationFailed
                            | Code::ClusterAuthorizationFailed
                    )
                ),
            },
            JournalError::Producer { .. } => false,
        }
    }

    /// The order the failed write belonged to, when the error knows it.
    pub fn order_id(&self) -> Option<uuid::Uuid> {
        match self {
            JournalError::Store(e) => e.order_id(),
            _ => None,
        }
    }
}

fn encode(event: &EventEnvelope) -> Result<String, JournalError> {
    serde_json::to_string(event).map_err(|source| JournalError::Encode {
        event_id: event.event_id,
        source,
    })
}

/// How long after its event id's time (UUIDv7) `now` is, in milliseconds.
fn late_by(event_id: uuid::Uuid, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let (secs, nanos) = event_id.get_timestamp()?.to_unix();
    Some(now.timestamp_millis() - (secs as i64 * 1000 + nanos as i64 / 1_000_000))
}

/// A deliberate crash point, for the test that proves no event is lost between the two writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrashPoint {
    #[default]
    Never,
    /// Abort the process right after the event is in the store, before it is produced to Kafka.
    AfterAppend,
}

pub struct Journal {
    store: EventStore,
    outbox: Outbox,
    open_orders: OpenOrders,
    /// Orders whose placement this process published, or found nothing of its own to publish for:
    /// the placement relay reads none of their streams again.
    /// The orders whose placement this process published or judged not its own.
    recent: RecentIds,
    /// Placements written whose produce failed: the placement relay retries them from memory.
    unpublished: std::sync::Mutex<HashMap<uuid::Uuid, EventEnvelope>>,
    /// Replaced when librdkafka reports a fatal error (an idempotent producer that lost its
    /// sequence, say): such a producer refuses every later record until it is recreated.
    producer: std::sync::RwLock<FutureProducer>,
    bootstrap: String,
    durability: Durability,
    crash: CrashPoint,
}

impl Journal {
    pub async fn new(
        session: Arc<scylla::client::session::Session>,
        region: Region,
        kafka_bootstrap: &str,
        durability: Durability,
        crash: CrashPoint,
    ) -> Result<Arc<Self>, JournalError> {
        let outbox = Outbox::new(session.clone(), region.as_str()).await?;
        let open_orders = OpenOrders::new(session.clone()).await?;
        let reach = orders_store::reach::Reach::default();
        let store = EventStore::new(session, region, reach).await?;
        let producer = create_producer(kafka_bootstrap)?;
        Ok(Arc::new(Journal {
            store,
            outbox,
            open_orders,
            recent: RecentIds::default(),
            unpublished: std::sync::Mutex::default(),
            producer: std::sync::RwLock::new(producer),
            bootstrap: kafka_bootstrap.into(),
            durability,
            crash,
        }))
    }

    pub fn store(&self) -> &EventStore {
        &self.store
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Appends a cancel to this region's lane if its position is free (see `EventStore::append`);
    /// once written, publishes it in the background. The outbox row covers a crash in between.
    pub async fn append(self: &Arc<Self>, event: &EventEnvelope) -> Result<Appended, JournalError> {
        let json = self.intend(event).await?;
        let outcome = self.store.append(event, self.durability).await?;
        self.after_write(event, json, &outcome).await;
        Ok(outcome)
    }

    /// Writes an order's placement (the caller holds its idempotency claim and wrote its
    /// open-orders row, the intent); once written, publishes it in the background. The placement
    /// relay covers a crash in between.
    pub async fn place(self: &Arc<Self>, event: &EventEnvelope) -> Result<Appended, JournalError> {
        // Measured from the placement's time, which its open-orders row carries as `placed_at`.
        let late_ms = (chrono::Utc::now() - event.occurred_at).num_milliseconds();
        if late_ms > (ABANDON_AFTER / 2).as_millis() as i64 {
            return Err(JournalError::PlacementLate {
                event_id: event.event_id,
                late_ms,
            });
        }
        let outcome = self.store.write(event, self.durability, Write::Placement).await?;
        if self.crash == CrashPoint::AfterAppend {
            warn!(event_id = %event.event_id, "crash point after append reached: aborting");
            std::process::abort();
        }
        let journal = self.clone();
        let event = event.clone();
        tokio::spawn(async move {
            journal.publish_placement(event).await;
        });
        Ok(outcome)
    }

    /// Writes saga events of one order in one request (the caller processes the order and reads
    /// its positions back). No
    /// outbox: the worker publishes the events of a pass before it lets go of the record that
    /// started it, and a pass that finds its region's saga events unpublished publishes them again.
    pub async fn record(&self, events: &[EventEnvelope]) -> Result<Appended, JournalError> {
        Ok(self
            .store
            .write_all(events, self.durability, Write::Processing)
            .await?)
    }

    /// Publishes a stored event now, waiting for the broker's acknowledgement.
    pub async fn publish_event(&self, event: &EventEnvelope) -> Result<(), JournalError> {
        let json = encode(event)?;
        let origin = event.origin_region.to_string();
        self.publish(event.order_id, event.event_id, event.type_name(), &origin, &json)
            .await
            .map_err(|source| JournalError::Publish {
                event_id: event.event_id,
                source,
            })
    }

    /// Writes the outbox row of an event about to be written, refusing one that came too late.
    async fn intend(&self, event: &EventEnvelope) -> Result<String, JournalError> {
        let json = encode(event)?;
        self.outbox.put(event, &json).await?;
        if let Some(late_ms) = late_by(event.event_id, chrono::Utc::now())
            && late_ms > (orders_store::outbox::LATE_ROW / 2).as_millis() as i64
        {
            return Err(JournalError::OutboxLate {
                event_id: event.event_id,
                late_ms,
            });
        }
        Ok(json)
    }

    /// Publishes a written cancel in the background and drops its outbox row; drops the row of
    /// an event that lost its position.
    async fn after_write(self: &Arc<Self>, event: &EventEnvelope, json: String, outcome: &Appended) {
        match outcome {
            Appended::Written | Appended::Degraded => {
                if self.crash == CrashPoint::AfterAppend {
                    warn!(event_id = %event.event_id, "crash point after append reached: aborting");
                    std::process::abort();
                }
                let journal = self.clone();
                let (order_id, event_id, event_type) = (event.order_id, event.event_id, event.type_name());
                let origin = event.origin_region.to_string();
                tokio::spawn(async move {
                    if journal
                        .publish(order_id, event_id, event_type, &origin, &json)
                        .await
                        .is_ok()
                    {
                        let _ = journal.outbox.delete(order_id, event_id).await;
                    }
                });
            }
            Appended::Conflict => {
                // The position was taken, so this event will never exist: its intent can go now.
                if let Err(error) = self.outbox.delete(event.order_id, event.event_id).await {
                    debug!(%error, event_id = %event.event_id, "outbox row of a lost append stays for the relay");
                }
            }
        }
    }

    /// Produces one event to the region's `orders` topic, keyed by order id.
    pub(crate) async fn publish(
        &self,
        order_id: uuid::Uuid,
        event_id: uuid::Uuid,
        event_type: &str,
        origin_region: &str,
        json: &str,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let key = order_id.to_string();
        let event_id = event_id.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_EVENT_ID,
                value: Some(event_id.as_str()),
            })
            .insert(Header {
                key: HEADER_EVENT_TYPE,
                value: Some(event_type),
            })
            .insert(Header {
                key: HEADER_ORIGIN_REGION,
                value: Some(origin_region),
            });
        let record = FutureRecord::to(ORDERS_TOPIC)
            .key(&key)
            .payload(json)
            .headers(headers);
        let producer = self.producer.read().expect("producer lock").clone();
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(_) => Ok(()),
            Err((error, _)) => {
                warn!(%error, %order_id, %event_id, "publish failed; the relay will retry");
                self.replace_if_fatal(&producer);
                Err(error)
            }
        }
    }

    /// Recreates the producer if librdkafka declared it unusable; the next publish uses the new one.
    fn replace_if_fatal(&self, failed: &FutureProducer) {
        let Some((code, reason)) = failed.client().fatal_error() else {
            return;
        };
        match create_producer(&self.bootstrap) {
            Ok(fresh) => {
                let mut current = self.producer.write().expect("producer lock");
                // Another publish may have replaced it already.
                if current.client().fatal_error().is_some() {
                    *current = fresh;
                    error!(?code, reason, "kafka producer hit a fatal error; replaced it");
                }
            }
            Err(e) => {
                error!(error = %e, ?code, reason, "kafka producer hit a fatal error; cannot replace it yet")
            }
        }
    }
}

fn create_producer(bootstrap: &str) -> Result<FutureProducer, JournalError> {
    orders_log::producer_config(bootstrap)
        .create()
        .map_err(|source| JournalError::Producer {
            bootstrap: bootstrap.into(),
            source,
        })
}
