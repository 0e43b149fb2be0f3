//! Orders not yet final, per origin region: added at placement, removed when the saga ends.
//! A region taking over a dead region's orders finds its unfinished work here, including orders
//! whose events never made it onto the mirrored topic. The row is also the placement's intent:
//! written before `OrderPlaced`, it lets the API's relay publish a placement whose writer died
//! before the produce (docs/decisions/0002-outbox.md).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::outbox::{SHARDS, shard_of};
use crate::{StoreError, prepare};

/// One open order as the relay sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    pub order_id: Uuid,
    pub placed_at: DateTime<Utc>,
    /// The row's write timestamp (microseconds): `abandon` removes this write and no later one.
    pub written_at: i64,
}

pub struct OpenOrders {
    session: Arc<Session>,
    add: PreparedStatement,
    remove: PreparedStatement,
    abandon: PreparedStatement,
    list_placed: PreparedStatement,
}

impl OpenOrders {
    pub async fn new(session: Arc<Session>) -> Result<Self, StoreError> {
        Ok(OpenOrders {
            add: prepare(
                &session,
                "INSERT INTO orders.open_orders (origin_region, shard, order_id, placed_at) VALUES (?, ?, ?, ?)",
            )
            .await?,
            remove: prepare(
                &session,
                "DELETE FROM orders.open_orders WHERE origin_region = ? AND shard = ? AND order_id = ?",
            )
            .await?,
            abandon: prepare(
                &session,
                "DELETE FROM orders.open_orders USING TIMESTAMP ? \
                 WHERE origin_region = ? AND shard = ? AND order_id = ?",
            )
            .await?,
            list_placed: prepare(
                &session,
                "SELECT order_id, placed_at, WRITETIME(placed_at) FROM orders.open_orders \
                 WHERE origin_region = ? AND shard = ?",
            )
            .await?,
            session,
        })
    }

    pub async fn add(
        &self,
        origin: &str,
        order_id: Uuid,
        placed_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.add, (origin, shard_of(order_id), order_id, placed_at))
            .await
            .map_err(|e| StoreError::query("add open order", e))?;
        Ok(())
    }

    pub async fn remove(&self, origin: &str, order_id: Uuid) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.remove, (origin, shard_of(order_id), order_id))
            .await
            .map_err(|e| StoreError::query("remove open order", e))?;
        Ok(())
    }

    /// Removes the row of a placement that never happened, as `written_at` wrote it: a retry of
    /// the same key that wrote the row again since keeps it.
    pub async fn abandon(&self, origin: &str, order: &OpenOrder) -> Result<(), StoreError> {
        let (order_id, shard) = (order.order_id, shard_of(order.order_id));
        self.session
            .execute_unpaged(&self.abandon, (order.written_at, origin, shard, order_id))
            .await
            .map_err(|e| StoreError::query("abandon open order", e))?;
        Ok(())
    }

    /// The open orders of one shard of `origin`, with when each was placed.
    pub async fn list_placed(&self, origin: &str, shard: i32) -> Result<Vec<OpenOrder>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.list_placed, (origin, shard))
            .await
            .map_err(|e| StoreError::query("list open orders", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("list open orders", e))?;
        rows.rows::<(Uuid, DateTime<Utc>, i64)>()
            .map_err(|e| StoreError::query("list open orders", e))?
            .map(|row| {
                let (order_id, placed_at, written_at) =
                    row.map_err(|e| StoreError::query("list open orders", e))?;
                Ok(OpenOrder {
                    order_id,
                    placed_at,
                    written_at,
                })
            })
            .collect()
    }

    /// Every open order placed in `origin`.
    pub async fn list(&self, origin: &str) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..SHARDS {
            out.extend(
                self.list_placed(origin, shard)
                    .await?
                    .into_iter()
                    .map(|o| o.order_id),
            );
        }
        Ok(out)
    }
}
