//! Who processes the orders placed in a region, fenced by an epoch (docs/decisions/0003-ownership.md).
//!
//! Each region writes only its own claim row for an origin region, so no two datacenters write the
//! same cell. The claim with the highest epoch decides: if it is active its claimer owns the
//! origin's orders, otherwise (handed back) the origin owns them again. Reads go to a quorum of
//! all datacenters when they can, so a region coming back from an outage sees the claim made
//! while it was gone even before its own replica has caught up.
use std::sync::Arc;

use chrono::Utc;
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;

use crate::{StoreError, prepare};

/// One region's claim on another region's orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub claimer: String,
    pub epoch: i64,
    pub active: bool,
}

/// The owner of an origin region's orders and the epoch that made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub region: String,
    pub epoch: i64,
}

/// Pure: the owner decided by a set of claims. Ties on epoch go to the lexically smallest claimer,
/// so every region computes the same owner from the same rows.
pub fn owner_of(origin: &str, claims: &[Claim]) -> Owner {
    let top = claims
        .iter()
        .max_by(|a, b| a.epoch.cmp(&b.epoch).then_with(|| b.claimer.cmp(&a.claimer)));
    match top {
        Some(c) if c.active => Owner {
            region: c.claimer.clone(),
            epoch: c.epoch,
        },
        Some(c) => Owner {
            region: origin.to_string(),
            epoch: c.epoch,
        },
        None => Owner {
            region: origin.to_string(),
            epoch: 0,
        },
    }
}

/// Whether a read reached every datacenter or only this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    AllDatacenters,
    LocalOnly,
}

pub struct Ownership {
    session: Arc<Session>,
    region: String,
    read: PreparedStatement,
    write: PreparedStatement,
}

impl Ownership {
    pub async fn new(session: Arc<Session>, region: &str) -> Result<Self, StoreError> {
        let read = prepare(
            &session,
            "SELECT claimer, epoch, active FROM orders.ownership WHERE origin_region = ?",
        )
        .await?;
        let mut write = prepare(
            &session,
            "INSERT INTO orders.ownership (origin_region, claimer, epoch, active, changed_at) VALUES (?, ?, ?, ?, ?)",
        )
        .await?;
        write.set_consistency(Consistency::LocalQuorum);
        Ok(Ownership {
            session,
            region: region.to_string(),
            read,
            write,
        })
    }

    /// The claims on `origin`'s orders, from every datacenter if reachable, else from this one.
    pub async fn claims(&self, origin: &str) -> Result<(Vec<Claim>, ReadScope), StoreError> {
        let mut everywhere = self.read.clone();
        everywhere.set_consistency(Consistency::Quorum);
        let (result, scope) = match self.session.execute_unpaged(&everywhere, (origin,)).await {
            Ok(r) => (r, ReadScope::AllDatacenters),
            Err(_) => (
                self.session
                    .execute_unpaged(&self.read, (origin,))
                    .await
                    .map_err(|e| StoreError::query("read ownership", e))?,
                ReadScope::LocalOnly,
            ),
        };
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read ownership", e))?;
        let claims = rows
            .rows::<(String, i64, bool)>()
            .map_err(|e| StoreError::query("read ownership", e))?
            .map(|r| {
                r.map(|(claimer, epoch, active)| Claim {
                    claimer,
                    epoch,
                    active,
                })
                .map_err(|e| StoreError::query("read ownership", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((claims, scope))
    }

    /// Takes over (`active`) or hands back (`!active`) `origin`'s orders with a new, higher epoch.
    pub async fn claim(&self, origin: &str, active: bool) -> Result<Owner, StoreError> {
        let (claims, _) = self.claims(origin).await?;
        let epoch = claims.iter().map(|c| c.epoch).max().unwrap_or(0) + 1;
        self.session
            .execute_unpaged(&self.write, (origin, &self.region, epoch, active, Utc::now()))
            .await
            .map_err(|e| StoreError::query("write ownership", e))?;
        let mut claims = claims;
        claims.retain(|c| c.claimer != self.region);
        claims.push(Claim {
            claimer: self.region.clone(),
            epoch,
            active,
        });
        Ok(owner_of(origin, &claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(claimer: &str, epoch: i64, active: bool) -> Claim {
        Claim {
            claimer: claimer.into(),
            epoch,
            active,
        }
    }

    #[test]
    fn with_no_claims_the_origin_owns_its_orders() {
        assert_eq!(
            owner_of("eu", &[]),
            Owner {
                region: "eu".into(),
                epoch: 0
            }
        );
    }

    #[test]
    fn an_active_takeover_moves_ownership_to_the_claimer() {
        assert_eq!(owner_of("eu", &[claim("us", 1, true)]).region, "us");
    }

    #[test]
    fn a_hand_back_with_a_higher_epoch_returns_ownership_to_the_origin() {
        let owner = owner_of("eu", &[claim("us", 2, false), claim("ap", 1, true)]);
        assert_eq!(
            owner,
            Owner {
                region: "eu".into(),
                epoch: 2
            }
        );
    }

    #[test]
    fn the_highest_epoch_wins_whatever_the_row_order() {
        let a = [claim("us", 3, true), claim("ap", 2, true)];
        let b = [claim("ap", 2, true), claim("us", 3, true)];
        assert_eq!(owner_of("eu", &a), owner_of("eu", &b));
        assert_eq!(owner_of("eu", &a).region, "us");
    }
}
