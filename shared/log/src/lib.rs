//! The Kafka side of the system: topic names, client settings, admin calls and log inspection.
pub mod admin;
pub mod clients;
pub mod lag;

pub use admin::{LatestRecord, create_topics, latest_record, metadata_ready, topic_exists};
pub use clients::{consumer_config, producer_config};

/// The topic every region's API publishes order events to (mirrored as `<region>.orders` elsewhere).
pub const ORDERS_TOPIC: &str = "orders";
/// Poison records, with the original record, headers and the error.
pub const DEAD_LETTER_TOPIC: &str = "orders.dlq";
/// Partitions of `orders`: enough for a few workers per region, few enough for a laptop.
pub const ORDERS_PARTITIONS: i32 = 6;

/// The name MirrorMaker 2 gives a topic mirrored from `source_region` (DefaultReplicationPolicy).
pub fn mirrored(source_region: &str, topic: &str) -> String {
    format!("{source_region}.{topic}")
}

/// Everything that can go wrong talking to Kafka.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("kafka at {bootstrap}: {what}")]
    Kafka {
        bootstrap: String,
        what: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic} at {bootstrap}: {detail}")]
    Topic {
        bootstrap: String,
        topic: String,
        detail: String,
    },
    #[error("background task failed")]
    Join(#[from] tokio::task::JoinError),
}
