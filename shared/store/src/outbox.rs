//! The outbox: the intent to publish an event, written before the event is appended.
//!
//! Written first, it survives a crash between the append and the Kafka produce; the relay
//! (orders-journal) publishes a row only once it finds the same event id at its lane position, and
//! drops rows whose append lost a race or never happened (docs/decisions/0002-outbox.md).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use orders_domain::EventEnvelope;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::StoreError;

/// Outbox partitions per region: spreads rows so no partition grows hot, few enough to scan every second.
pub const SHARDS: i32 = 8;

/// One pending publication.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub shard: i32,
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub seq: u64,
    pub envelope: String,
}

impl OutboxRow {
    /// When the row was written, from the event id (UUIDv7 carries its creation time).
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        let (secs, nanos) = self.event_id.get_timestamp()?.to_unix();
        DateTime::from_timestamp(secs as i64, nanos)
    }
}

/// The shard of an order: all of an order's rows land in one partition, in event-id order.
pub fn shard_of(order_id: Uuid) -> i32 {
    (order_id.as_u128() % SHARDS as u128) as i32
}

pub struct Outbox {
    session: Arc<Session>,
    region: String,
    put: PreparedStatement,
    delete: PreparedStatement,
    scan: PreparedStatement,
    count: PreparedStatement,
}

impl Outbox {
    pub async fn new(session: Arc<Session>, region: &str) -> Result<Self, StoreError> {
        let prep = |cql: &'static str| {
            let s = session.clone();
            async move {
                s.prepare(cql)
                    .await
                    .map_err(|e| StoreError::query("prepare outbox", e))
            }
        };
        Ok(Outbox {
            put: prep(
                "INSERT INTO orders.outbox (region, shard, event_id, order_id, seq, envelope) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .await?,
            delete: prep("DELETE FROM orders.outbox WHERE region = ? AND shard = ? AND event_id = ?").await?,
            scan: prep("SELECT shard, event_id, order_id, seq, envelope FROM orders.outbox WHERE region = ? AND shard = ? LIMIT ?")
                .await?,
            count: prep("SELECT COUNT(*) FROM orders.outbox WHERE region = ? AND shard = ?").await?,
            session,
            region: region.to_string(),
        })
    }

    /// Records the intent to publish `event` (encoded as `json`).
    pub async fn put(&self, event: &EventEnvelope, json: &str) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.put,
                (
                    &self.region,
                    shard_of(event.order_id),
                    event.event_id,
                    event.order_id,
                    event.seq as i64,
                    json,
                ),
            )
            .await
            .map_err(|e| StoreError::query("outbox put", e))?;
        Ok(())
    }

    pub async fn delete(&self, order_id: Uuid, event_id: Uuid) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.delete, (&self.region, shard_of(order_id), event_id))
            .await
            .map_err(|e| StoreError::query("outbox delete", e))?;
        Ok(())
    }

    /// The oldest rows of one shard.
    pub async fn scan(&self, shard: i32, limit: i32) -> Result<Vec<OutboxRow>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.scan, (&self.region, shard, limit))
            .await
            .map_err(|e| StoreError::query("outbox scan", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("outbox scan", e))?;
        rows.rows::<(i32, Uuid, Uuid, i64, String)>()
            .map_err(|e| StoreError::query("outbox scan", e))?
            .map(|r| {
                r.map(|(shard, event_id, order_id, seq, envelope)| OutboxRow {
                    shard,
                    event_id,
                    order_id,
                    seq: seq as u64,
                    envelope,
                })
                .map_err(|e| StoreError::query("outbox scan", e))
            })
            .collect()
    }

    /// Rows waiting in every shard: the backlog the health check reports.
    pub async fn backlog(&self) -> Result<i64, StoreError> {
        let mut total = 0;
        for shard in 0..SHARDS {
            let result = self
                .session
                .execute_unpaged(&self.count, (&self.region, shard))
                .await
                .map_err(|e| StoreError::query("outbox count", e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| StoreError::query("outbox count", e))?;
            let (n,) = rows
                .single_row::<(i64,)>()
                .map_err(|e| StoreError::query("outbox count", e))?;
            total += n;
        }
        Ok(total)
    }
}
