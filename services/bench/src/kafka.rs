//! Reading a topic from its current end on a thread of its own, timing each record as it arrives.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// A consumer assigned to every partition of `topic` at its end offset now: it sees only new records.
pub fn at_end(bootstrap: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("orders-bench-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .set("socket.connection.setup.timeout.ms", "3000")
        .create()
        .with_context(|| format!("consumer for {bootstrap}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .with_context(|| format!("metadata of {topic} at {bootstrap}"))?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
        bail!("topic {topic} not found at {bootstrap}");
    };
    if t.partitions().is_empty() {
        bail!("topic {topic} at {bootstrap} has no partitions (does it exist?)");
    }
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(5))
            .with_context(|| format!("end offset of {topic}/{}", p.id()))?;
        tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Polls `consumer` until `stop` is set, calling `on_record` with each record and the Unix
/// milliseconds at which it was received.
pub fn read_until<F>(consumer: BaseConsumer, stop: Arc<AtomicBool>, mut on_record: F) -> JoinHandle<u64>
where
    F: FnMut(&BorrowedMessage<'_>, i64) + Send + 'static,
{
    std::thread::spawn(move || {
        let mut errors = 0;
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => on_record(&m, chrono::Utc::now().timestamp_millis()),
                Some(Err(_)) => errors += 1,
                None => {}
            }
        }
        errors
    })
}

/// The value of a record header as text.
pub fn header<'a>(m: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}
