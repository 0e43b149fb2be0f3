//! The event store: per-region lanes of each order's stream.
//!
//! A region writes only to its own lane (`origin_region` = this region), so no other datacenter
//! ever writes a lane and last-write-wins between datacenters can never drop an event
//! (docs/decisions/0001-event-lanes.md). Inside a lane there are three kinds of write, chosen so that
//! the ordinary placement needs no consensus round (docs/decisions/0006-write-path.md):
//!
//! - the placement (`Write::Placement`): a plain insert at seq 1, made by the one request that holds
//!   the idempotency claim of the order;
//! - the saga's events (`Write::Processing`): plain inserts by the one worker processing the order,
//!   written with a fixed, minimal timestamp so that they never overwrite an event already at that
//!   position; the worker reads its positions back once per pass;
//! - a cancel (`append`): `IF NOT EXISTS` on the lane position at LOCAL_SERIAL, rare, and the only
//!   write that races the others; it never lands on a taken position, and a saga event written after
//!   it at the same position loses to it by timestamp.
use orders_domain::{EventEnvelope, OrderStream, Region};
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};

/// No answer in time: from the client timeout, or the coordinator waiting for a remote replica.
fn is_timeout(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::RequestTimeout(_)
            | ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::WriteTimeout { .. }, _))
    )
}

/// The coordinator refused up front: not enough replicas alive for the consistency level.
fn is_unavailable(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(DbError::Unavailable { .. }, _))
    )
}

/// How far an append must be replicated before it is acknowledged (docs/architecture.md
/// section 5, docs/decisions/0005-global-durability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// LOCAL_QUORUM: fast; a region lost before replication loses its last moments (RPO = cross-DC lag).
    Local,
    /// EACH_QUORUM commit: acknowledged only once every datacenter has it (RPO 0), unless a region
    /// has been declared down, in which case the append is acknowledged locally and marked degraded.
    Global,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Durability::Local),
            "global" => Ok(Durability::Global),
            other => Err(format!("durability must be local or global, not {other:?}")),
        }
    }
}

/// What happened to an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The event is durable at the requested level.
    Written,
    /// `global` durability, but another region's datacenter is down (the cluster's failure
    /// detector declared it): the event is durable in this region only (RPO = cross-DC lag).
    Degraded,
    /// Another writer of this region took that lane position first: re-read and decide again.
    Conflict,
}

/// Which plain write of a lane (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The order's placement, by the request holding its idempotency claim.
    Placement,
    /// A saga event, by the worker processing the order: never overwrites another event.
    Processing,
}

/// The event store of one region.
pub struct EventStore {
    session: std::sync::Arc<Session>,
    region: Region,
    reach: crate::reach::Reach,
    append: PreparedStatement,
    insert: PreparedStatement,
    insert_low: PreparedStatement,
    read: PreparedStatement,
    read_at: PreparedStatement,
    read_lane_from: PreparedStatement,
}

impl EventStore {
    pub async fn new(
        session: std::sync::Arc<Session>,
        region: Region,
        reach: crate::reach::Reach,
    ) -> Result<Self, StoreError> {
        let mut append = prepare(
            &session,
            "INSERT INTO orders.order_events (order_id, origin_region, seq, event_id, event_type, envelope) \
             VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS",
        )
        .await?;
        append.set_is_idempotent(false);
        let mut insert = prepare(
            &session,
            "INSERT INTO orders.order_events (order_id, origin_region, seq, event_id, event_type, envelope) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .await?;
        insert.set_is_idempotent(true);
        // Saga events carry write timestamp 1, below every real one: a cancel that took the
        // position first keeps it, and the worker, reading its positions back, finds it displaced.
        let mut insert_low = prepare(
            &session,
            "INSERT INTO orders.order_events (order_id, origin_region, seq, event_id, event_type, envelope) \
             VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP 1",
        )
        .await?;
        insert_low.set_is_idempotent(true);
        let read = prepare(
            &session,
            "SELECT envelope FROM orders.order_events WHERE order_id = ?",
        )
        .await?;
        let read_at = prepare(
            &session,
            "SELECT event_id FROM orders.order_events WHERE order_id = ? AND origin_region = ? AND seq = ?",
        )
        .await?;
        let read_lane_from = prepare(
            &session,
            "SELECT seq, event_id FROM orders.order_events WHERE order_id = ? AND origin_region = ? AND seq >= ?",
        )
        .await?;
        Ok(EventStore {
            session,
            region,
            reach,
            append,
            insert,
            insert_low,
            read,
            read_lane_from,
            read_at,
        })
    }

    /// This region's view of whether global durability is possible now.
    pub fn reach(&self) -> &crate::reach::Reach {
        &self.reach
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn session(&self) -> &std::sync::Arc<Session> {
        &self.session
    }

    /// Appends one event to this region's lane at `event.seq` if that position is free (a cancel).
    pub async fn append(
        &self,
        event: &EventEnvelope,
        durability: Durability,
    ) -> Result<Appended, StoreError> {
        debug_assert_eq!(
            event.origin_region, self.region,
            "a region appends only to its own lane"
        );
        let json = serde_json::to_string(event).map_err(|e| StoreError::Encode {
            event_id: event.event_id,
            detail: e.to_string(),
        })?;
        let outcome = match durability {
            Durability::Local => self
                .try_append(event, &json, Consistency::LocalQuorum)
                .await
                .map(|a| (a, false)),
            Durability::Global if !self.reach.is_global_possible() => self
                .try_append(event, &json, Consistency::LocalQuorum)
                .await
                .map(|a| (a, true)),
            Durability::Global => match self.try_append(event, &json, Consistency::EachQuorum).await {
                Err(e) if is_unavailable(&e) || is_timeout(&e) => {
                    self.reach.declare_unreachable(e.to_string());
                    self.try_append(event, &json, Consistency::LocalQuorum)
                        .await
                        .map(|a| (a, true))
                }
                other => other.map(|a| (a, false)),
            },
        };
        let (applied, degraded) = outcome.map_err(|e| StoreError::Append {
            order_id: event.order_id,
            seq: event.seq,
            source: Box::new(e),
        })?;
        // A commit that failed after its proposal was accepted is finished by the next round, which
        // then reports the position taken: by this very event, which makes it a success.
        let ours = applied || self.event_at(event.order_id, event.seq).await? == Some(event.event_id);
        Ok(match (ours, degraded) {
            (false, _) => Appended::Conflict,
            (true, false) => Appended::Written,
            (true, true) => Appended::Degraded,
        })
    }

    /// Writes one event to this region's lane at `event.seq` without a condition: `Written`, or
    /// `Degraded` when global durability had to fall back to this datacenter.
    pub async fn write(
        &self,
        event: &EventEnvelope,
        durability: Durability,
        kind: Write,
    ) -> Result<Appended, StoreError> {
        self.write_all(std::slice::from_ref(event), durability, kind)
            .await
    }

    /// Writes events of one order to this region's lane without a condition, in one request: a
    /// single-partition batch, applied as one mutation.
    pub async fn write_all(
        &self,
        events: &[EventEnvelope],
        durability: Durability,
        kind: Write,
    ) -> Result<Appended, StoreError> {
        let Some(first) = events.first() else {
            return Ok(Appended::Written);
        };
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            debug_assert_eq!(event.order_id, first.order_id, "one order's partition");
            debug_assert_eq!(
                event.origin_region, self.region,
                "a region writes only to its own lane"
            );
            let json = serde_json::to_string(event).map_err(|e| StoreError::Encode {
                event_id: event.event_id,
                detail: e.to_string(),
            })?;
            rows.push((
                event.order_id,
                event.origin_region.as_str(),
                event.seq as i64,
                event.event_id,
                event.type_name(),
                json,
            ));
        }
        let statement = match kind {
            Write::Placement => &self.insert,
            Write::Processing => &self.insert_low,
        };
        let run = |consistency: Consistency| {
            let rows = &rows;
            async move {
                let timeout =
                    (consistency == Consistency::EachQuorum).then_some(crate::reach::GLOBAL_TIMEOUT);
                if let [row] = rows.as_slice() {
                    let mut statement = statement.clone();
                    statement.set_consistency(consistency);
                    if timeout.is_some() {
                        statement.set_request_timeout(timeout);
                    }
                    return self.session.execute_unpaged(&statement, row).await.map(|_| ());
                }
                let mut batch = Batch::new(BatchType::Unlogged);
                for _ in rows {
                    batch.append_statement(statement.clone());
                }
                batch.set_consistency(consistency);
                batch.set_is_idempotent(true);
                if timeout.is_some() {
                    batch.set_request_timeout(timeout);
                }
                self.session.batch(&batch, rows).await.map(|_| ())
            }
        };
        let degraded = match durability {
            Durability::Local => run(Consistency::LocalQuorum).await.map(|_| false),
            Durability::Global if !self.reach.is_global_possible() => {
                run(Consistency::LocalQuorum).await.map(|_| true)
            }
            Durability::Global => match run(Consistency::EachQuorum).await {
                Err(e) if is_unavailable(&e) || is_timeout(&e) => {
                    self.reach.declare_unreachable(e.to_string());
                    run(Consistency::LocalQuorum).await.map(|_| true)
                }
                other => other.map(|_| false),
            },
        }
        .map_err(|e| StoreError::Append {
            order_id: first.order_id,
            seq: first.seq,
            source: Box::new(e),
        })?;
        Ok(if degraded {
            Appended::Degraded
        } else {
            Appended::Written
        })
    }

    async fn try_append(
        &self,
        event: &EventEnvelope,
        json: &str,
        consistency: Consistency,
    ) -> Result<bool, ExecutionError> {
        let mut statement = self.append.clone();
        statement.set_consistency(consistency);
        if consistency == Consistency::EachQuorum {
            statement.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
        }
        let result = self
            .session
            .execute_unpaged(
                &statement,
                (
                    event.order_id,
                    event.origin_region.as_str(),
                    event.seq as i64,
                    event.event_id,
                    event.type_name(),
                    json,
                ),
            )
            .await?;
        // An unreadable answer counts as not applied; the lane position read that follows decides.
        Ok(crate::lwt_applied(result).unwrap_or(false))
    }

    /// Every event of an order visible in this datacenter, from all lanes.
    pub async fn read_stream(&self, order_id: Uuid) -> Result<OrderStream, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.read, (order_id,))
            .await
            .map_err(|e| StoreError::query("read stream", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read stream", e))?;
        let mut stream = OrderStream::new(order_id);
        for row in rows
            .rows::<(String,)>()
            .map_err(|e| StoreError::query("read stream", e))?
        {
            let (json,) = row.map_err(|e| StoreError::query("read stream", e))?;
            let event: EventEnvelope = serde_json::from_str(&json).map_err(|e| StoreError::Decode {
                order_id,
                detail: e.to_string(),
            })?;
            stream.insert(event).map_err(|e| StoreError::Decode {
                order_id,
                detail: e.to_string(),
            })?;
        }
        Ok(stream)
    }

    /// The positions of `region`'s lane from `from_seq` on, and the event id at each: what a
    /// writer reads back to learn whether its writes kept their positions, without the events.
    pub async fn lane_from(
        &self,
        order_id: Uuid,
        region: &Region,
        from_seq: u64,
    ) -> Result<Vec<(u64, Uuid)>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.read_lane_from, (order_id, region.as_str(), from_seq as i64))
            .await
            .map_err(|e| StoreError::query("read lane", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read lane", e))?;
        let mut lane = Vec::new();
        for row in rows
            .rows::<(i64, Uuid)>()
            .map_err(|e| StoreError::query("read lane", e))?
        {
            let (seq, id) = row.map_err(|e| StoreError::query("read lane", e))?;
            lane.push((seq.max(0) as u64, id));
        }
        Ok(lane)
    }

    /// The event id stored at a lane position of this region, if any.
    pub async fn event_at(&self, order_id: Uuid, seq: u64) -> Result<Option<Uuid>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.read_at, (order_id, self.region.as_str(), seq as i64))
            .await
            .map_err(|e| StoreError::query("read lane position", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read lane position", e))?;
        Ok(rows
            .maybe_first_row::<(Uuid,)>()
            .map_err(|e| StoreError::query("read lane position", e))?
            .map(|(id,)| id))
    }
}
