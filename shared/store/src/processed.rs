//! Events a consumer has fully processed: the dedupe by event id that makes redelivery cheap.
use std::sync::Arc;

use chrono::Utc;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

pub struct Processed {
    session: Arc<Session>,
    consumer: String,
    mark: PreparedStatement,
    seen: PreparedStatement,
}

impl Processed {
    pub async fn new(session: Arc<Session>, consumer: &str) -> Result<Self, StoreError> {
        let mark = prepare(
            &session,
            "INSERT INTO orders.processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)",
        )
        .await?;
        let seen = prepare(
            &session,
            "SELECT event_id FROM orders.processed_events WHERE consumer = ? AND event_id = ?",
        )
        .await?;
        Ok(Processed {
            session,
            consumer: consumer.to_string(),
            mark,
            seen,
        })
    }

    pub async fn mark(&self, event_id: Uuid) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.mark, (&self.consumer, event_id, Utc::now()))
            .await
            .map_err(|e| StoreError::query("mark processed", e))?;
        Ok(())
    }

    pub async fn seen(&self, event_id: Uuid) -> Result<bool, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.seen, (&self.consumer, event_id))
            .await
            .map_err(|e| StoreError::query("read processed", e))?;
        Ok(result
            .into_rows_result()
            .map_err(|e| StoreError::query("read processed", e))?
            .rows_num()
            > 0)
    }
}
