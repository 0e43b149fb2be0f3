//! The orders-by-customer projection: facts fixed at placement, newest first, paged.
//!
//! Rows are written once, before the order's first event is appended, so they never conflict across
//! regions; a row whose append then failed is filtered out by readers (no stream, no order).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerOrder {
    pub order_id: Uuid,
    pub placed_at: DateTime<Utc>,
    pub origin_region: String,
    pub total_minor: i64,
    pub currency: String,
}

/// Where a page ended: the clustering key of its last row. The next page starts after it, so a
/// cursor is plain values bound into a query, never driver paging state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub placed_at: DateTime<Utc>,
    pub order_id: Uuid,
}

pub struct Customers {
    session: Arc<Session>,
    record: PreparedStatement,
    first: PreparedStatement,
    same_instant: PreparedStatement,
    older: PreparedStatement,
}

type Row = (Uuid, DateTime<Utc>, String, i64, String);

/// The page query with its restriction: one column list for all three.
macro_rules! select {
    ($restriction:literal) => {
        concat!(
            "SELECT order_id, placed_at, origin_region, total_minor, currency \
             FROM orders.orders_by_customer ",
            $restriction
        )
    };
}

impl Customers {
    pub async fn new(session: Arc<Session>) -> Result<Self, StoreError> {
        let record = prepare(
            &session,
            "INSERT INTO orders.orders_by_customer (customer_id, placed_at, order_id, origin_region, total_minor, currency) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .await?;
        // Rows are ordered placed_at DESC, then order_id ASC: what follows (placed_at, order_id) is
        // the rest of that instant (a greater order_id), then every older instant. CQL has no OR,
        // and a tuple slice over mixed clustering orders is not ordered as the rows are, so that
        // takes two single-column slices.
        let first = prepare(&session, select!("WHERE customer_id = ? LIMIT ?")).await?;
        let same_instant = prepare(
            &session,
            select!("WHERE customer_id = ? AND placed_at = ? AND order_id > ? LIMIT ?"),
        )
        .await?;
        let older = prepare(
            &session,
            select!("WHERE customer_id = ? AND placed_at < ? LIMIT ?"),
        )
        .await?;
        Ok(Customers {
            session,
            record,
            first,
            same_instant,
            older,
        })
    }
    pub async fn record(&self, customer_id: Uuid, order: &CustomerOrder) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.record,
                (
                    customer_id,
                    order.placed_at,
                    order.order_id,
                    &order.origin_region,
                    order.total_minor,
                    &order.currency,
                ),
            )
            .await
            .map_err(|e| StoreError::query("record customer order", e))?;
        Ok(())
    }

    /// One page of a customer's orders, newest first, after `after` (from the start without it),
    /// and the cursor of the next page when there is one.
    pub async fn page(
        &self,
        customer_id: Uuid,
        limit: i32,
        after: Option<Cursor>,
    ) -> Result<(Vec<CustomerOrder>, Option<Cursor>), StoreError> {
        debug_assert!(limit > 0, "a page holds at least one row");
        // One row more than the page tells whether another page follows.
        let wanted = limit.saturating_add(1);
        let mut orders = match after {
            None => self.rows(&self.first, (customer_id, wanted)).await?,
            Some(after) => {
                let mut orders = self
                    .rows(
                        &self.same_instant,
                        (customer_id, after.placed_at, after.order_id, wanted),
                    )
                    .await?;
                let left = wanted - orders.len() as i32;
                if left > 0 {
                    orders.extend(
                        self.rows(&self.older, (customer_id, after.placed_at, left))
                            .await?,
                    );
                }
                orders
            }
        };
        let next = if orders.len() > limit as usize {
            orders.truncate(limit as usize);
            orders.last().map(|last| Cursor {
                placed_at: last.placed_at,
                order_id: last.order_id,
            })
        } else {
            None
        };
        Ok((orders, next))
    }

    async fn rows(
        &self,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<CustomerOrder>, StoreError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| StoreError::query("page customer orders", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("page customer orders", e))?;
        rows.rows::<Row>()
            .map_err(|e| StoreError::query("page customer orders", e))?
            .map(|r| {
                r.map(
                    |(order_id, placed_at, origin_region, total_minor, currency)| CustomerOrder {
                        order_id,
                        placed_at,
                        origin_region,
                        total_minor,
                        currency,
                    },
                )
                .map_err(|e| StoreError::query("page customer orders", e))
            })
            .collect()
    }
}
