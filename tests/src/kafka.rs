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
