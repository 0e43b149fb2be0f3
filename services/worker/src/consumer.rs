//! The consume loop: records are spread over lanes by order id (one order's records stay in
//! order), processed concurrently, and their offsets stored only once every earlier record of the
//! partition is done. Poison records, and records whose transient failure outlived the retry
//! budget, are parked (`parking`) and processing continues.
use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_domain::EventEnvelope;
use orders_log::DEAD_LETTER_TOPIC;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::Worker;
use crate::offsets::OffsetTracker;
use crate::parking::{ErrorKind, order_of};
use crate::saga::{NoPass, Outcome, Pass};

/// What handling one record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Processed(Outcome),
    /// A saga event this worker published itself: already processed by the pass that wrote it.
    Duplicate,
    /// A test probe or a record of no concern.
    Skipped,
    /// Parked: sent to the dead-letter topic and listed for an operator.
    DeadLettered(String),
}

impl Handled {
    fn label(&self) -> &'static str {
        match self {
            Handled::Processed(Outcome::Done) => "done",
            Handled::Processed(Outcome::NotOwner { .. }) => "not_owner",
            Handled::Processed(Outcome::Incomplete) => "incomplete",
            Handled::Duplicate => "duplicate",
            Handled::Skipped => "skipped",
            Handled::DeadLettered(_) => "dead_lettered",
        }
    }
}

impl Worker {
    /// Handles one record completely: the single-step entry point tests drive directly.
    /// Transient failures are retried here with capped exponential backoff until the budget of
    /// `config.parking` is spent; then, or at once for a permanent error, the record is parked
    /// (`parking`) and its partition moves on.
    pub async fn handle_record(&self, record: &OwnedMessage) -> Handled {
        let is_probe = record
            .headers()
            .is_some_and(|h| h.iter().any(|h| h.key == "probe"));
        if is_probe {
            return Handled::Skipped;
        }
        let envelope = match record.payload().map(serde_json::from_slice::<EventEnvelope>) {
            Some(Ok(e)) => e,
            Some(Err(_)) | None if let Some(owner) = self.mirrored_of_self_owning_region(record) => {
                // Its own region parks it; a second entry here would ask the operator twice.
                warn!(
                    topic = record.topic(),
                    partition = record.partition(),
                    offset = record.offset(),
                    %owner,
                    "undecodable mirrored record: left to the region that owns it"
                );
                return Handled::Processed(Outcome::NotOwner { owner });
            }
            Some(Err(e)) => {
                let reason = format!("undecodable event: {e}");
                return self.park_for_good(record, order_of(record, None), &reason).await;
            }
            None => {
                return self
                    .park_for_good(record, order_of(record, None), "record without payload")
                    .await;
            }
        };
        let order_id = envelope.order_id;
        match self.processor.no_pass_needed(&envelope) {
            Some(NoPass::Published) => return Handled::Duplicate,
            Some(NoPass::OwnedByOrigin { owner }) => return Handled::Processed(Outcome::NotOwner { owner }),
            None => {}
        }
        let mut backoff = Duration::from_millis(50);
        let mut incomplete_for = Duration::ZERO;
        let (started, mut attempts, mut parked_row) = (Instant::now(), 0u32, false);
        loop {
            attempts += 1;
            match self.processor.process_order(order_id).await {
                Ok(Pass {
                    outcome: Outcome::Incomplete,
                    ..
                }) if incomplete_for < Duration::from_secs(60) => {
                    incomplete_for += backoff;
                }
                Ok(Pass { outcome, .. }) => {
                    if parked_row {
                        // Parking failed half-way and the order went through meanwhile.
                        self.unpark(record, order_id).await;
                    }
                    return Handled::Processed(outcome);
                }
                Err(e) if !e.is_transient() => {
                    warn!(error = %e, %order_id, "processing failed for good; parking the record");
                    return self.park_for_good(record, order_id, &e.to_string()).await;
                }
                Err(error) if self.config.parking.spent(attempts, started.elapsed()) => {
                    let reason = format!(
                        "gave up after {attempts} attempts in {:?}: {error}",
                        started.elapsed()
                    );
                    match self.park(record, order_id, ErrorKind::Transient, &reason).await {
                        Ok(()) => return Handled::DeadLettered(reason),
                        Err(park_error) => {
                            // The dependency that fails processing may fail parking too: keep
                            // trying both, processing first.
                            parked_row = true;
                            warn!(%error, %park_error, %order_id, "cannot park the record; retrying");
                        }
                    }
                }
                Err(error) => {
                    warn!(%error, %order_id, retry_in = ?backoff, "processing failed; retrying");
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Handled::Skipped,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// The source region of a mirrored record (topic `<region>.orders`) when that region processes
    /// its own orders.
    fn mirrored_of_self_owning_region(&self, record: &OwnedMessage) -> Option<String> {
        let (source, _) = record.topic().split_once('.')?;
        (source != self.processor.region.as_str() && self.processor.owners.owner_of(source) == source)
            .then(|| source.to_string())
    }

    /// Parks a record no retry can help: until it is parked the record is not done.
    async fn park_for_good(&self, record: &OwnedMessage, order_id: Uuid, reason: &str) -> Handled {
        loop {
            match self.park(record, order_id, ErrorKind::Permanent, reason).await {
                Ok(()) => return Handled::DeadLettered(reason.to_string()),
                Err(error) => warn!(%error, %order_id, "cannot park a poison record; retrying"),
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Handled::Skipped,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Publishes the original record, its headers, the error and its kind to the dead-letter topic.
    pub(crate) async fn dead_letter(
        &self,
        record: &OwnedMessage,
        kind: ErrorKind,
        reason: &str,
    ) -> Result<(), rdkafka::error::KafkaError> {
        error!(
            topic = record.topic(),
            partition = record.partition(),
            offset = record.offset(),
            kind = kind.as_str(),
            reason,
            "poison record parked"
        );
        let mut headers = OwnedHeaders::new();
        if let Some(original) = record.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let (partition, offset) = (record.partition().to_string(), record.offset().to_string());
        headers = headers
            .insert(Header {
                key: "dlq.error",
                value: Some(reason),
            })
            .insert(Header {
                key: "dlq.error_kind",
                value: Some(kind.as_str()),
            })
            .insert(Header {
                key: "dlq.topic",
                value: Some(record.topic()),
            })
            .insert(Header {
                key: "dlq.partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "dlq.offset",
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: "dlq.worker_region",
                value: Some(self.config.region.as_str()),
            });
        let mut out = FutureRecord::<[u8], [u8]>::to(DEAD_LETTER_TOPIC).headers(headers);
        if let Some(key) = record.key() {
            out = out.key(key);
        }
        if let Some(payload) = record.payload() {
            out = out.payload(payload);
        }
        self.dlq
            .send(out, Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)?;
        self.metrics.dead_lettered.inc();
        Ok(())
    }
}

/// The producer of dead letters: same durability settings as every producer.
pub fn dead_letter_producer(bootstrap: &str) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    orders_log::producer_config(bootstrap).create()
}

type Done = (String, i32, i64, bool);

/// Consumes until shutdown; on shutdown stops taking records and waits for in-flight ones.
pub async fn run(worker: Arc<Worker>, consumer: StreamConsumer) {
    let topics: Vec<String> = worker.config.topics();
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    if let Err(error) = consumer.subscribe(&names) {
        error!(%error, "cannot subscribe");
        return;
    }
    info!(topics = ?names, group = %worker.config.group(), "worker consuming");
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let lanes: Vec<mpsc::Sender<OwnedMessage>> = (0..worker.config.lanes)
        .map(|_| {
            let (tx, mut rx) = mpsc::channel::<OwnedMessage>(64);
            let (worker, done) = (worker.clone(), done_tx.clone());
            tokio::spawn(async move {
                while let Some(record) = rx.recv().await {
                    let handled = worker.handle_record(&record).await;
                    worker.metrics.records.with_label_values(&[handled.label()]).inc();
                    let finished = handled != Handled::Skipped || !worker.shutdown.is_cancelled();
                    let _ = done.send((
                        record.topic().to_string(),
                        record.partition(),
                        record.offset(),
                        finished,
                    ));
                }
            });
            tx
        })
        .collect();
    let mut tracker = OffsetTracker::default();
    let shutdown = worker.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some((topic, partition, offset, finished)) = done_rx.recv() => {
                complete(&consumer, &mut tracker, &topic, partition, offset, finished);
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    let record = message.detach();
                    tracker.start(record.topic(), record.partition(), record.offset());
                    let lane = lane_of(record.key(), lanes.len());
                    if lanes[lane].send(record).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    warn!(%error, "kafka consume error");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    drop(lanes);
    drop(done_tx);
    // Let in-flight records finish (they stop retrying on shutdown) and store what completed.
    while let Ok(Some((topic, partition, offset, finished))) =
        tokio::time::timeout(Duration::from_secs(10), done_rx.recv()).await
    {
        complete(&consumer, &mut tracker, &topic, partition, offset, finished);
    }
    if let Err(error) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        warn!(%error, "final offset commit failed; the next start replays from the last commit");
    }
    info!(in_flight = tracker.in_flight(), "worker stopped consuming");
}

fn complete(
    consumer: &StreamConsumer,
    tracker: &mut OffsetTracker,
    topic: &str,
    partition: i32,
    offset: i64,
    finished: bool,
) {
    if !finished {
        // Abandoned at shutdown: leave it uncommitted so it is redelivered.
        tracker.forget(topic, partition);
        return;
    }
    if let Some(next) = tracker.finish(topic, partition, offset) {
        // store_offset takes the offset of the record processed; Kafka commits that + 1.
        if let Err(error) = consumer.store_offset(topic, partition, next - 1) {
            warn!(%error, topic, partition, "offset not stored (partition revoked?)");
        }
    }
}

fn lane_of(key: Option<&[u8]>, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}
