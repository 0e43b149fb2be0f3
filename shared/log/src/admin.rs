//! Admin calls and log inspection: readiness, topic creation, the newest record of a topic.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::LogError;

fn base_consumer(bootstrap: &str) -> Result<BaseConsumer, LogError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "orders-inspector")
        .set("enable.auto.commit", "false")
        .set("socket.connection.setup.timeout.ms", "2000")
        .create()
        .map_err(|source| LogError::Kafka {
            bootstrap: bootstrap.into(),
            what: "create consumer",
            source,
        })
}

/// True once the cluster answers a metadata request.
pub async fn metadata_ready(bootstrap: &str, timeout: Duration) -> Result<(), LogError> {
    let bootstrap = bootstrap.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer = base_consumer(&bootstrap)?;
        consumer
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|source| LogError::Kafka {
                bootstrap,
                what: "fetch metadata",
                source,
            })
    })
    .await?
}

/// True if the topic exists with at least one partition.
pub async fn topic_exists(bootstrap: &str, topic: &str, timeout: Duration) -> Result<bool, LogError> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer = base_consumer(&bootstrap)?;
        let md = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(|source| LogError::Kafka {
                bootstrap,
                what: "fetch metadata",
                source,
            })?;
        Ok(md
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await?
}

/// Creates topics (name, partitions) with one replica; existing topics are left as they are.
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) -> Result<(), LogError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|source| LogError::Kafka {
            bootstrap: bootstrap.into(),
            what: "create admin client",
            source,
        })?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|source| LogError::Kafka {
            bootstrap: bootstrap.into(),
            what: "create topics",
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(LogError::Topic {
                    bootstrap: bootstrap.into(),
                    topic,
                    detail: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The newest record of a topic across its partitions.
#[derive(Debug, Clone)]
pub struct LatestRecord {
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp (producer create time, kept by MirrorMaker 2), milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl LatestRecord {
    /// How old the record is now.
    pub fn age(&self) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        Duration::from_millis(now.saturating_sub(self.timestamp_ms).max(0) as u64)
    }
}

/// Reads the last record of every partition and returns the newest by timestamp (None if empty).
pub async fn latest_record(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<LatestRecord>, LogError> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer = base_consumer(&bootstrap)?;
        let kafka = |what, source| LogError::Kafka {
            bootstrap: bootstrap.clone(),
            what,
            source,
        };
        let md = consumer
            .fetch_metadata(Some(&topic), timeout)
            .map_err(|e| kafka("fetch metadata", e))?;
        let Some(t) = md
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        else {
            return Err(LogError::Topic {
                bootstrap: bootstrap.clone(),
                topic: topic.clone(),
                detail: "missing".into(),
            });
        };
        let mut assignment = TopicPartitionList::new();
        for p in t.partitions() {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p.id(), timeout)
                .map_err(|e| kafka("fetch watermarks", e))?;
            if high > low {
                assignment
                    .add_partition_offset(&topic, p.id(), Offset::Offset(high - 1))
                    .map_err(|e| kafka("assign", e))?;
            }
        }
        let wanted = assignment.count();
        if wanted == 0 {
            return Ok(None);
        }
        consumer.assign(&assignment).map_err(|e| kafka("assign", e))?;
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = std::collections::HashSet::new();
        let mut newest: Option<LatestRecord> = None;
        while seen.len() < wanted && std::time::Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = message.map_err(|e| kafka("poll", e))?;
            if !seen.insert(m.partition()) {
                continue;
            }
            let record = LatestRecord {
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if newest
                .as_ref()
                .is_none_or(|n| record.timestamp_ms > n.timestamp_ms)
            {
                newest = Some(record);
            }
        }
        Ok(newest)
    })
    .await?
}
