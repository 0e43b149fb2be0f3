//! Kafka helpers for tests: produce a tagged probe record and find it again in any cluster.
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Records with this header are test probes: the worker skips them.
pub const PROBE_HEADER: &str = "probe";

/// Produces a probe record with a unique key through the same producer settings the API uses.
pub async fn produce_probe(bootstrap: &str, topic: &str, key: &str) {
    let producer: FutureProducer = orders_log::producer_config(bootstrap).create().expect("producer");
    let headers = OwnedHeaders::new().insert(Header {
        key: PROBE_HEADER,
        value: Some("1"),
    });
    producer
        .send(
            FutureRecord::to(topic).key(key).payload("probe").headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce to {topic} at {bootstrap} failed: {e}"));
}

/// The current end offsets of every partition of `topic`.
pub fn end_offsets(bootstrap: &str, topic: &str) -> Vec<(i32, i64)> {
    let consumer = inspector(bootstrap);
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic in metadata");
    t.partitions()
        .iter()
        .map(|p| {
            (
                p.id(),
                consumer
                    .fetch_watermarks(topic, p.id(), Duration::from_secs(5))
                    .expect("watermarks")
                    .1,
            )
        })
        .collect()
}

/// Reads `topic` from `from` offsets until a record with `key` shows up, or `timeout` passes.
/// Returns whether it was found and whether it carried the probe header.
pub fn find_key(
    bootstrap: &str,
    topic: &str,
    from: &[(i32, i64)],
    key: &str,
    timeout: Duration,
) -> Option<bool> {
    let consumer = inspector(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for (p, o) in from {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100))
            && m.key() == Some(key.as_bytes())
        {
            let probe = m
                .headers()
                .is_some_and(|h| h.iter().any(|h| h.key == PROBE_HEADER));
            return Some(probe);
        }
    }
    None
}

fn inspector(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "orders-tests-inspector")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// A group's lag in seconds read straight from Kafka: for each partition of `topic`, the age of the
/// record at the group's committed offset (0 when caught up); the maximum over partitions.
pub fn group_lag_seconds(bootstrap: &str, group: &str, topic: &str) -> f64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let ends = end_offsets(bootstrap, topic);
    let mut tpl = TopicPartitionList::new();
    for (p, _) in &ends {
        tpl.add_partition(topic, *p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("committed offsets");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut worst = 0.0_f64;
    for e in committed.elements() {
        let end = ends
            .iter()
            .find(|(p, _)| *p == e.partition())
            .map(|(_, o)| *o)
            .unwrap_or(0);
        let Offset::Offset(at) = e.offset() else { continue };
        if at >= end {
            continue;
        }
        let reader = inspector(bootstrap);
        let mut one = TopicPartitionList::new();
        one.add_partition_offset(topic, e.partition(), Offset::Offset(at))
            .expect("partition");
        reader.assign(&one).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
                let ts = m.timestamp().to_millis().unwrap_or(now_ms);
                worst = worst.max((now_ms - ts) as f64 / 1000.0);
                break;
            }
        }
    }
    worst
}
