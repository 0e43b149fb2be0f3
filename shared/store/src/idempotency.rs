//! Idempotency claims: one row per (client, key), region and claiming request, so no write ever
//! overwrites another claimant's row and no claim needs a lightweight transaction.
//!
//! A request claims a key by writing its own row, then reads every row of the key: by quorum
//! intersection, of two requests claiming at once at least one sees the other, and whoever sees
//! another live claim gives its own up (docs/decisions/0004-idempotency-across-regions.md,
//! docs/decisions/0006-write-path.md).
use std::sync::Arc;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

/// One request's claim of a key.
/// One request's claim of an idempotency key: what it writes in its own row.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    pub client: &'a str,
    pub key: &'a str,
    pub claimant: Uuid,
    pub fingerprint: &'a str,
    pub order_id: Uuid,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub region: String,
    pub claimant: Uuid,
    pub fingerprint: String,
    pub order_id: Uuid,
    pub started_at: DateTime<Utc>,
}

/// How far a claim's write and read reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This datacenter (LOCAL_QUORUM): claimants of this region see each other.
    Local,
    /// Every datacenter (QUORUM reads over EACH_QUORUM writes): claimants anywhere see each other.
    Everywhere,
}

impl Scope {
    fn write(self) -> Consistency {
        match self {
            Scope::Local => Consistency::LocalQuorum,
            Scope::Everywhere => Consistency::EachQuorum,
        }
    }

    fn read(self) -> Consistency {
        match self {
            Scope::Local => Consistency::LocalQuorum,
            Scope::Everywhere => Consistency::Quorum,
        }
    }
}

pub struct Idempotency {
    session: Arc<Session>,
    region: String,
    claim: PreparedStatement,
    read: PreparedStatement,
    release: PreparedStatement,
}

impl Idempotency {
    pub async fn new(session: Arc<Session>, region: &str) -> Result<Self, StoreError> {
        Ok(Idempotency {
            claim: prepare(
                &session,
                "INSERT INTO orders.idempotency_claims \
                 (client_id, key, region, claimant, fingerprint, order_id, started_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .await?,
            read: prepare(
                &session,
                "SELECT region, claimant, fingerprint, order_id, started_at \
                 FROM orders.idempotency_claims WHERE client_id = ? AND key = ?",
            )
            .await?,
            release: prepare(
                &session,
                "DELETE FROM orders.idempotency_claims \
                 WHERE client_id = ? AND key = ? AND region = ? AND claimant = ?",
            )
            .await?,
            session,
            region: region.to_string(),
        })
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Writes this request's claim of the key.
    pub async fn claim(&self, scope: Scope, request: &ClaimRequest<'_>) -> Result<(), StoreError> {
        let mut statement = self.claim.clone();
        statement.set_consistency(scope.write());
        if scope == Scope::Everywhere {
            statement.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
        }
        self.session
            .execute_unpaged(
                &statement,
                (
                    request.client,
                    request.key,
                    &self.region,
                    request.claimant,
                    request.fingerprint,
                    request.order_id,
                    request.now,
                ),
            )
            .await
            .map_err(|e| StoreError::query("idempotency claim", e))?;
        Ok(())
    }

    /// Every claim of the key, as far as `scope` reaches.
    pub async fn records(&self, scope: Scope, client: &str, key: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let mut statement = self.read.clone();
        statement.set_consistency(scope.read());
        if scope == Scope::Everywhere {
            statement.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
        }
        let result = self
            .session
            .execute_unpaged(&statement, (client, key))
            .await
            .map_err(|e| StoreError::query("idempotency read", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("idempotency read", e))?;
        rows.rows::<(String, Uuid, String, Uuid, DateTime<Utc>)>()
            .map_err(|e| StoreError::query("idempotency read", e))?
            .map(|r| {
                r.map(
                    |(region, claimant, fingerprint, order_id, started_at)| KeyRecord {
                        region,
                        claimant,
                        fingerprint,
                        order_id,
                        started_at,
                    },
                )
                .map_err(|e| StoreError::query("idempotency read", e))
            })
            .collect()
    }

    /// Gives this request's claim up (another request holds the key).
    pub async fn release(&self, client: &str, key: &str, claimant: Uuid) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.release, (client, key, &self.region, claimant))
            .await
            .map_err(|e| StoreError::query("idempotency release", e))?;
        Ok(())
    }
}
