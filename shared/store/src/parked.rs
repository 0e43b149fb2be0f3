//! Records the worker parked instead of retrying them for ever: the operator's list, per region,
//! kept in the database so it survives restarts (docs/decisions/0007-parking.md). The record
//! itself, with its headers, is on the dead-letter topic.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

/// Where a parked record was read: its topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One parked record of a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRecord {
    pub region: String,
    /// The order the record's key names; the nil uuid when it names none.
    pub order_id: Uuid,
    pub position: RecordPosition,
    /// `transient` (the retry budget ran out) or `permanent` (a retry could only repeat it).
    pub error_kind: String,
    pub error: String,
    pub parked_at: DateTime<Utc>,
    /// When a replay pass over the order succeeded; None while it needs an operator.
    pub replayed_at: Option<DateTime<Utc>>,
}

pub struct ParkedRecords {
    session: Arc<Session>,
    park: PreparedStatement,
    list: PreparedStatement,
    replayed: PreparedStatement,
}

impl ParkedRecords {
    pub async fn new(session: Arc<Session>) -> Result<Self, StoreError> {
        Ok(ParkedRecords {
            // Parking the same record again (a redelivery) makes it unreplayed again.
            park: prepare(
                &session,
                "INSERT INTO orders.parked_records (region, order_id, topic, kafka_partition, kafka_offset, \
                 error_kind, error, parked_at, replayed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, null)",
            )
            .await?,
            list: prepare(
                &session,
                "SELECT order_id, topic, kafka_partition, kafka_offset, error_kind, error, parked_at, replayed_at \
                 FROM orders.parked_records WHERE region = ?",
            )
            .await?,
            replayed: prepare(
                &session,
                "UPDATE orders.parked_records SET replayed_at = ? WHERE region = ? AND order_id = ? \
                 AND topic = ? AND kafka_partition = ? AND kafka_offset = ?",
            )
            .await?,
            session,
        })
    }

    pub async fn park(&self, record: &ParkedRecord) -> Result<(), StoreError> {
        let p = &record.position;
        self.session
            .execute_unpaged(
                &self.park,
                (
                    record.region.as_str(),
                    record.order_id,
                    p.topic.as_str(),
                    p.partition,
                    p.offset,
                    record.error_kind.as_str(),
                    record.error.as_str(),
                    record.parked_at,
                ),
            )
            .await
            .map_err(|e| StoreError::query("park record", e))?;
        Ok(())
    }

    /// Every parked record of `region`, replayed or not, by order id.
    pub async fn list(&self, region: &str) -> Result<Vec<ParkedRecord>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.list, (region,))
            .await
            .map_err(|e| StoreError::query("list parked records", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("list parked records", e))?;
        type Row = (
            Uuid,
            String,
            i32,
            i64,
            Option<String>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let mut parked = Vec::new();
        for row in rows
            .rows::<Row>()
            .map_err(|e| StoreError::query("list parked records", e))?
        {
            let (order_id, topic, partition, offset, kind, error, parked_at, replayed_at) =
                row.map_err(|e| StoreError::query("list parked records", e))?;
            parked.push(ParkedRecord {
                region: region.to_string(),
                order_id,
                position: RecordPosition {
                    topic,
                    partition,
                    offset,
                },
                error_kind: kind.unwrap_or_default(),
                error: error.unwrap_or_default(),
                parked_at: parked_at.unwrap_or_default(),
                replayed_at,
            });
        }
        Ok(parked)
    }

    /// Marks one parked record replayed at `at`.
    pub async fn mark_replayed(
        &self,
        region: &str,
        order_id: Uuid,
        position: &RecordPosition,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.replayed,
                (
                    at,
                    region,
                    order_id,
                    position.topic.as_str(),
                    position.partition,
                    position.offset,
                ),
            )
            .await
            .map_err(|e| StoreError::query("mark parked record replayed", e))?;
        Ok(())
    }
}
