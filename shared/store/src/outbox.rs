//! The outbox: the intent to publish an event, written before the event is appended.
//!
//! Written first, it survives a crash between the append and the Kafka produce; the relay
//! (orders-journal) publishes a row only once it finds the same event id at its lane position, and
//! drops rows whose append lost a race or never happened (docs/decisions/0002-outbox.md).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_domain::EventEnvelope;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

/// Outbox partitions per region: spreads rows so no partition grows hot, few enough to scan every second.
pub const SHARDS: i32 = 8;

/// A row is in the table within this of its event id's time: the journal appends no event whose row
/// took longer. So a scan may start this far back from now whenever nothing older waits, and never
/// reads the tombstones of everything published before (clocks of writers and relays must agree to
/// well within this).
pub const LATE_ROW: Duration = Duration::from_secs(60);

/// A cursor is stored once it moved this far; in between it lives in memory, and a restarted relay
/// only reads a little more.
const STORE_CURSOR_EVERY: Duration = Duration::from_secs(10);

/// The smallest UUIDv7 of a moment: every event id made at or after it sorts at or above it.
pub fn first_id_at(t: DateTime<Utc>) -> Uuid {
    let ms = t.timestamp_millis().max(0) as u128 & ((1 << 48) - 1);
    Uuid::from_u128((ms << 80) | (0x7 << 76) | (0b10 << 62))
}

/// Where the next scan of a shard starts, after one that saw `scanned` (in id order) and left
/// `waiting` rows in place: the first waiting row, else the last row read if the scan was cut off
/// by its limit, else the oldest moment a row could still appear.
pub fn next_scan_from(waiting: Option<Uuid>, cut_off_at: Option<Uuid>, now: DateTime<Utc>) -> Uuid {
    let floor = first_id_at(now - chrono::TimeDelta::from_std(LATE_ROW).unwrap_or_default());
    [waiting, cut_off_at].into_iter().flatten().fold(floor, Uuid::min)
}

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
    read_cursors: PreparedStatement,
    store_cursor: PreparedStatement,
    /// Per shard: where scans start, and where it was last stored; loaded on first use.
    cursors: Mutex<Option<Vec<(Uuid, Uuid)>>>,
}

impl Outbox {
    pub async fn new(session: Arc<Session>, region: &str) -> Result<Self, StoreError> {
        Ok(Outbox {
            put: prepare(
                &session,
                "INSERT INTO orders.outbox (region, shard, event_id, order_id, seq, envelope) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .await?,
            delete: prepare(
                &session,
                "DELETE FROM orders.outbox WHERE region = ? AND shard = ? AND event_id = ?",
            )
            .await?,
            scan: prepare(
                &session,
                "SELECT shard, event_id, order_id, seq, envelope FROM orders.outbox \
                 WHERE region = ? AND shard = ? AND event_id >= ? LIMIT ?",
            )
            .await?,
            count: prepare(
                &session,
                "SELECT COUNT(*) FROM orders.outbox WHERE region = ? AND shard = ? AND event_id >= ?",
            )
            .await?,
            read_cursors: prepare(
                &session,
                "SELECT shard, scan_from FROM orders.outbox_cursor WHERE region = ?",
            )
            .await?,
            store_cursor: prepare(
                &session,
                "INSERT INTO orders.outbox_cursor (region, shard, scan_from) VALUES (?, ?, ?)",
            )
            .await?,
            cursors: Mutex::new(None),
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

    /// Where scans of each shard start: the stored cursors (nil, the very start, for a shard
    /// without one).
    async fn stored_cursors(&self) -> Result<Vec<Uuid>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.read_cursors, (&self.region,))
            .await
            .map_err(|e| StoreError::query("outbox cursor read", e))?;
        let mut from = vec![Uuid::nil(); SHARDS as usize];
        for row in result
            .into_rows_result()
            .map_err(|e| StoreError::query("outbox cursor read", e))?
            .rows::<(i32, Uuid)>()
            .map_err(|e| StoreError::query("outbox cursor read", e))?
        {
            let (shard, scan_from) = row.map_err(|e| StoreError::query("outbox cursor read", e))?;
            if let Some(slot) = from.get_mut(shard as usize) {
                *slot = scan_from;
            }
        }
        Ok(from)
    }

    async fn cursor(&self, shard: i32) -> Result<Uuid, StoreError> {
        if let Some(cursors) = self.cursors.lock().expect("cursor lock").as_ref() {
            return Ok(cursors[shard as usize].0);
        }
        let stored = self.stored_cursors().await?;
        let mut cursors = self.cursors.lock().expect("cursor lock");
        let cursors = cursors.get_or_insert_with(|| stored.iter().map(|&c| (c, c)).collect());
        Ok(cursors[shard as usize].0)
    }

    /// Moves the start of the next scan of `shard` (see `next_scan_from`); stores it when it moved
    /// far enough since last stored. Every relay of the region computes a start below which nothing
    /// waits, so whichever of them stores last stores a valid one.
    pub async fn advance(&self, shard: i32, scan_from: Uuid) -> Result<(), StoreError> {
        self.cursor(shard).await?;
        let store = {
            let mut cursors = self.cursors.lock().expect("cursor lock");
            let (current, stored) = &mut cursors.as_mut().expect("cursors loaded")[shard as usize];
            *current = scan_from;
            let moved = |a: Uuid, b: Uuid| match (id_time(a), id_time(b)) {
                (Some(a), Some(b)) => (a - b).abs() >= STORE_CURSOR_EVERY.as_millis() as i64,
                _ => a != b,
            };
            let store = moved(scan_from, *stored);
            if store {
                *stored = scan_from;
            }
            store
        };
        if store {
            self.session
                .execute_unpaged(&self.store_cursor, (&self.region, shard, scan_from))
                .await
                .map_err(|e| StoreError::query("outbox cursor store", e))?;
        }
        Ok(())
    }

    /// The oldest rows of one shard from where its scans start.
    pub async fn scan(&self, shard: i32, limit: i32) -> Result<Vec<OutboxRow>, StoreError> {
        let from = self.cursor(shard).await?;
        let result = self
            .session
            .execute_unpaged(&self.scan, (&self.region, shard, from, limit))
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
    /// Counted from the stored cursors, as the relays left them.
    pub async fn backlog(&self) -> Result<i64, StoreError> {
        let mut total = 0;
        for (shard, from) in (0..SHARDS).zip(self.stored_cursors().await?) {
            let result = self
                .session
                .execute_unpaged(&self.count, (&self.region, shard, from))
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

/// Milliseconds since the epoch of a UUIDv7.
fn id_time(id: Uuid) -> Option<i64> {
    (id.get_version_num() == 7).then(|| (id.as_u128() >> 80) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn the_first_id_of_a_moment_sorts_below_every_id_made_then_and_above_every_earlier_one() {
        let t = Utc::now();
        let first = first_id_at(t);
        assert_eq!(first.get_version_num(), 7);
        for _ in 0..100 {
            let later = Uuid::now_v7();
            assert!(first <= later, "{first} > {later}");
        }
        let earlier = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            (t.timestamp_millis() as u64 - 1) / 1000,
            (((t.timestamp_millis() - 1) % 1000) * 1_000_000) as u32,
        ));
        assert!(earlier < first);
        // Cassandra and ScyllaDB compare two non-time-based (v7) uuids as unsigned bytes, as Uuid's Ord does.
        assert_eq!(id_time(first), Some(t.timestamp_millis()));
    }

    #[test]
    fn a_scan_restarts_at_the_first_waiting_row_or_where_a_cut_off_scan_stopped() {
        let now = at(1_800_000_000_000);
        let floor = first_id_at(now - chrono::TimeDelta::from_std(LATE_ROW).unwrap());
        assert_eq!(
            next_scan_from(None, None, now),
            floor,
            "nothing waits: only the last minute"
        );
        let old = first_id_at(at(1_700_000_000_000));
        assert_eq!(
            next_scan_from(Some(old), None, now),
            old,
            "an old row still waits"
        );
        assert_eq!(
            next_scan_from(None, Some(old), now),
            old,
            "the scan hit its limit there"
        );
        let recent = first_id_at(now);
        assert_eq!(
            next_scan_from(Some(recent), None, now),
            floor,
            "recent rows are above the floor anyway"
        );
    }
}
