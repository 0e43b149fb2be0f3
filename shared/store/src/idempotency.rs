//! Idempotency records: one row per (client, key) and region, so a region's lightweight transaction
//! only ever touches its own row. Reading the whole partition shows what every region knows.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

/// One region's record of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub region: String,
    pub fingerprint: String,
    pub order_id: Uuid,
    pub done: bool,
    pub started_at: DateTime<Utc>,
}

pub struct Idempotency {
    session: Arc<Session>,
    region: String,
    begin: PreparedStatement,
    take_over: PreparedStatement,
    finish: PreparedStatement,
    read: PreparedStatement,
    release: PreparedStatement,
}

impl Idempotency {
    pub async fn new(session: Arc<Session>, region: &str) -> Result<Self, StoreError> {
        Ok(Idempotency {
            begin: prepare(
                &session,
                "INSERT INTO orders.idempotency (client_id, key, region, fingerprint, order_id, state, started_at) \
                 VALUES (?, ?, ?, ?, ?, 'in_flight', ?) IF NOT EXISTS",
            )
            .await?,
            take_over: prepare(
                &session,
                "UPDATE orders.idempotency SET started_at = ? WHERE client_id = ? AND key = ? AND region = ? \
                 IF started_at = ? AND state = 'in_flight'",
            )
            .await?,
            finish: prepare(
                &session,
                "UPDATE orders.idempotency SET state = 'done' WHERE client_id = ? AND key = ? AND region = ?",
            )
            .await?,
            read: prepare(
                &session,
                "SELECT region, fingerprint, order_id, state, started_at FROM orders.idempotency \
                 WHERE client_id = ? AND key = ?",
            )
            .await?,
            release: prepare(
                &session,
                "DELETE FROM orders.idempotency WHERE client_id = ? AND key = ? AND region = ?",
            )
            .await?,
            session,
            region: region.to_string(),
        })
    }

    /// Claims the key in this region. `Ok(true)` when this request now owns it.
    pub async fn begin(
        &self,
        client: &str,
        key: &str,
        fingerprint: &str,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .session
            .execute_unpaged(
                &self.begin,
                (client, key, &self.region, fingerprint, order_id, now),
            )
            .await
            .map_err(|e| StoreError::query("idempotency begin", e))?;
        crate::lwt_applied(result)
    }

    /// Takes over a key whose first request died in flight (its `started_at` is `seen`).
    pub async fn take_over(
        &self,
        client: &str,
        key: &str,
        seen: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.take_over, (now, client, key, &self.region, seen))
            .await
            .map_err(|e| StoreError::query("idempotency take over", e))?;
        crate::lwt_applied(result)
    }

    pub async fn finish(&self, client: &str, key: &str) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.finish, (client, key, &self.region))
            .await
            .map_err(|e| StoreError::query("idempotency finish", e))?;
        Ok(())
    }

    /// Gives up this region's claim (another region is placing the same key).
    pub async fn release(&self, client: &str, key: &str) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.release, (client, key, &self.region))
            .await
            .map_err(|e| StoreError::query("idempotency release", e))?;
        Ok(())
    }

    /// What every region has recorded for the key. With `everywhere`, read from a quorum of all
    /// datacenters (falling back to this one if that is impossible), so that of two regions
    /// claiming the same key at once at least one sees the other; otherwise only as far as
    /// replication has brought the records here.
    pub async fn records(
        &self,
        client: &str,
        key: &str,
        everywhere: bool,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let mut statement = self.read.clone();
        if everywhere {
            statement.set_consistency(scylla::statement::Consistency::Quorum);
            statement.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
        }
        let result = match self.session.execute_unpaged(&statement, (client, key)).await {
            Ok(r) => r,
            Err(_) if everywhere => self
                .session
                .execute_unpaged(&self.read, (client, key))
                .await
                .map_err(|e| StoreError::query("idempotency read", e))?,
            Err(e) => return Err(StoreError::query("idempotency read", e)),
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("idempotency read", e))?;
        rows.rows::<(String, String, Uuid, String, DateTime<Utc>)>()
            .map_err(|e| StoreError::query("idempotency read", e))?
            .map(|r| {
                r.map(|(region, fingerprint, order_id, state, started_at)| KeyRecord {
                    region,
                    fingerprint,
                    order_id,
                    done: state == "done",
                    started_at,
                })
                .map_err(|e| StoreError::query("idempotency read", e))
            })
            .collect()
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}
