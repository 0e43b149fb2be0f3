//! Orders not yet final, per origin region: added at placement, removed when the saga ends.
//! A region taking over a dead region's orders finds its unfinished work here, including orders
//! whose events never made it onto the mirrored topic.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::outbox::{SHARDS, shard_of};
use crate::{StoreError, prepare};

pub struct OpenOrders {
    session: Arc<Session>,
    add: PreparedStatement,
    remove: PreparedStatement,
    list: PreparedStatement,
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
            list: prepare(
                &session,
                "SELECT order_id FROM orders.open_orders WHERE origin_region = ? AND shard = ?",
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

    /// Every open order placed in `origin`.
    pub async fn list(&self, origin: &str) -> Result<Vec<Uuid>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..SHARDS {
            let result = self
                .session
                .execute_unpaged(&self.list, (origin, shard))
                .await
                .map_err(|e| StoreError::query("list open orders", e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| StoreError::query("list open orders", e))?;
            for row in rows
                .rows::<(Uuid,)>()
                .map_err(|e| StoreError::query("list open orders", e))?
            {
                out.push(row.map_err(|e| StoreError::query("list open orders", e))?.0);
            }
        }
        Ok(out)
    }
}
