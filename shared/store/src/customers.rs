//! The orders-by-customer projection: facts fixed at placement, newest first, paged.
//!
//! Rows are written once, before the order's first event is appended, so they never conflict across
//! regions; a row whose append then failed is filtered out by readers (no stream, no order).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
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

pub struct Customers {
    session: Arc<Session>,
    record: PreparedStatement,
    page: PreparedStatement,
}

impl Customers {
    pub async fn new(session: Arc<Session>) -> Result<Self, StoreError> {
        let record = prepare(
            &session,
            "INSERT INTO orders.orders_by_customer (customer_id, placed_at, order_id, origin_region, total_minor, currency) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .await?;
        let page = prepare(
            &session,
            "SELECT order_id, placed_at, origin_region, total_minor, currency FROM orders.orders_by_customer \
             WHERE customer_id = ?",
        )
        .await?;
        Ok(Customers {
            session,
            record,
            page,
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

    /// One page of a customer's orders, newest first, and the opaque token of the next page.
    pub async fn page(
        &self,
        customer_id: Uuid,
        limit: i32,
        token: Option<Vec<u8>>,
    ) -> Result<(Vec<CustomerOrder>, Option<Vec<u8>>), StoreError> {
        let mut statement = self.page.clone();
        statement.set_page_size(limit);
        let paging = token
            .map(PagingState::new_from_raw_bytes)
            .unwrap_or_else(PagingState::start);
        let (result, next) = self
            .session
            .execute_single_page(&statement, (customer_id,), paging)
            .await
            .map_err(|e| StoreError::query("page customer orders", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("page customer orders", e))?;
        let orders = rows
            .rows::<(Uuid, DateTime<Utc>, String, i64, String)>()
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
            .collect::<Result<Vec<_>, _>>()?;
        let next = match next {
            PagingStateResponse::HasMorePages { state } => state.as_bytes_slice().map(|b| b.to_vec()),
            PagingStateResponse::NoMorePages => None,
        };
        Ok((orders, next))
    }
}
