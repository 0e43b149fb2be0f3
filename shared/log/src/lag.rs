//! A consumer group's position read from outside, as Burrow does: committed offsets against log
//! ends, and the timestamp of the next record the group will read. Works whether or not the
//! group's members are alive.
use std::collections::HashMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::LogError;

/// One partition of a group, as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (the next record it will read); the log start if none.
    pub committed: i64,
    pub log_end: i64,
    /// Timestamp (ms) of the record at `committed`, when the group is behind.
    pub next_record_ms: Option<i64>,
}

/// Reads the positions of `group` on every partition of `topics` (missing topics are skipped).
pub async fn group_positions(
    bootstrap: &str,
    group: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<PartitionPosition>, LogError> {
    let (bootstrap, group, topics) = (bootstrap.to_string(), group.to_string(), topics.to_vec());
    tokio::task::spawn_blocking(move || {
        let kafka = |what, source| LogError::Kafka {
            bootstrap: bootstrap.clone(),
            what,
            source,
        };
        // Same group id, but never subscribes: reading committed offsets does not join the group.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("socket.connection.setup.timeout.ms", "2000")
            .create()
            .map_err(|e| kafka("create consumer", e))?;
        let mut all = TopicPartitionList::new();
        let mut ends = HashMap::new();
        for topic in &topics {
            let md = consumer
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| kafka("fetch metadata", e))?;
            for t in md
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
            {
                for p in t.partitions() {
                    let (low, high) = consumer
                        .fetch_watermarks(topic, p.id(), timeout)
                        .map_err(|e| kafka("fetch watermarks", e))?;
                    ends.insert((topic.clone(), p.id()), (low, high));
                    all.add_partition(topic, p.id());
                }
            }
        }
        let committed = consumer
            .committed_offsets(all, timeout)
            .map_err(|e| kafka("committed offsets", e))?;
        let mut positions = Vec::new();
        let mut behind = TopicPartitionList::new();
        for e in committed.elements() {
            let (low, high) = ends[&(e.topic().to_string(), e.partition())];
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            if at < high {
                behind
                    .add_partition_offset(e.topic(), e.partition(), Offset::Offset(at))
                    .map_err(|e| kafka("assign", e))?;
            }
            positions.push(PartitionPosition {
                topic: e.topic().to_string(),
                partition: e.partition(),
                committed: at,
                log_end: high,
                next_record_ms: None,
            });
        }
        let wanted = behind.count();
        if wanted > 0 {
            consumer.assign(&behind).map_err(|e| kafka("assign", e))?;
            let deadline = std::time::Instant::now() + timeout;
            let mut found = 0;
            while found < wanted && std::time::Instant::now() < deadline {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                if let Some(p) = positions.iter_mut().find(|p| {
                    p.topic == m.topic() && p.partition == m.partition() && p.next_record_ms.is_none()
                }) {
                    p.next_record_ms = m.timestamp().to_millis();
                    found += 1;
                }
            }
        }
        Ok(positions)
    })
    .await?
}
