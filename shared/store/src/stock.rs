//! Stock per SKU and region (escrow allotments), reserved per order with one conditional batch.
//!
//! Each (sku, region) partition holds the `available` count (static) and one row per order that
//! reserved from it. Reserving decrements `available` and inserts the order's row in one batch at
//! LOCAL_SERIAL, conditional on `available` being what the writer believes and the row not existing
//! yet: no oversell under concurrency, and a retry for the same order changes nothing. Releasing is
//! the mirror image, conditional on the row existing.
//!
//! A worker is the usual single writer of its region's allotments: it serializes its own
//! reservations of a SKU and remembers the count it last wrote, so an ordinary reservation is one
//! conditional batch and no read. Another writer (a second worker, an operator's move) only makes
//! that memory stale, which the condition catches: the writer reads again and retries.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use uuid::Uuid;

use crate::{StoreError, prepare};

/// The outcome of reserving one SKU for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved now, or already reserved for this order before (a retry).
    Held,
    /// Not enough stock in this region.
    Insufficient { available: i64 },
}

type Allotment = (String, String);

pub struct Stock {
    session: Arc<Session>,
    /// Per (sku, region): the writer's lock and the `available` count it last read or wrote.
    known: Mutex<HashMap<Allotment, Arc<tokio::sync::Mutex<Option<i64>>>>>,
    available: PreparedStatement,
    row: PreparedStatement,
    set_if: PreparedStatement,
    insert_row: PreparedStatement,
    delete_row: PreparedStatement,
    seed: PreparedStatement,
}

/// LWT contention on a hot SKU: re-read and try again, a bounded number of times.
const CONTENTION_RETRIES: usize = 100;

impl Stock {
    pub async fn new(session: Arc<Session>) -> Result<Self, StoreError> {
        Ok(Stock {
            available: prepare(
                &session,
                "SELECT available FROM orders.stock WHERE sku = ? AND region = ? LIMIT 1",
            )
            .await?,
            row: prepare(
                &session,
                "SELECT quantity FROM orders.stock WHERE sku = ? AND region = ? AND order_id = ?",
            )
            .await?,
            set_if: prepare(
                &session,
                "UPDATE orders.stock SET available = ? WHERE sku = ? AND region = ? IF available = ?",
            )
            .await?,
            insert_row: prepare(
                &session,
                "INSERT INTO orders.stock (sku, region, order_id, quantity, reserved_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS",
            )
            .await?,
            delete_row: prepare(
                &session,
                "DELETE FROM orders.stock WHERE sku = ? AND region = ? AND order_id = ? IF EXISTS",
            )
            .await?,
            seed: prepare(
                &session,
                "UPDATE orders.stock SET available = ? WHERE sku = ? AND region = ?",
            )
            .await?,
            known: Mutex::default(),
            session,
        })
    }

    fn allotment(&self, sku: &str, region: &str) -> Arc<tokio::sync::Mutex<Option<i64>>> {
        self.known
            .lock()
            .expect("stock lock")
            .entry((sku.to_string(), region.to_string()))
            .or_default()
            .clone()
    }

    /// Sets a SKU's allocation in a region (seeding and operator moves).
    pub async fn set_available(&self, sku: &str, region: &str, available: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.seed, (available, sku, region))
            .await
            .map_err(|e| StoreError::query("set stock", e))?;
        Ok(())
    }

    /// Whether the SKU's allocation in the region was ever set.
    pub async fn is_seeded(&self, sku: &str, region: &str) -> Result<bool, StoreError> {
        Ok(self.read_available(sku, region).await?.is_some())
    }

    /// The units left of a SKU in a region.
    pub async fn available(&self, sku: &str, region: &str) -> Result<i64, StoreError> {
        Ok(self.read_available(sku, region).await?.unwrap_or(0))
    }

    async fn read_available(&self, sku: &str, region: &str) -> Result<Option<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.available, (sku, region))
            .await
            .map_err(|e| StoreError::query("read stock", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read stock", e))?;
        Ok(rows
            .maybe_first_row::<(Option<i64>,)>()
            .map_err(|e| StoreError::query("read stock", e))?
            .and_then(|(a,)| a))
    }

    /// Whether this order holds a reservation of the SKU in the region.
    pub async fn holds(&self, sku: &str, region: &str, order_id: Uuid) -> Result<bool, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.row, (sku, region, order_id))
            .await
            .map_err(|e| StoreError::query("read reservation", e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| StoreError::query("read reservation", e))?;
        Ok(rows.rows_num() > 0)
    }

    /// Reserves `quantity` units of `sku` in `region` for `order_id`.
    ///
    /// With `global`, the reservation commits in every datacenter (EACH_QUORUM) while the others
    /// are reachable, so a region taking over sees it; if they are not, it commits locally and
    /// declares them unreachable, as appends do.
    pub async fn reserve(
        &self,
        sku: &str,
        region: &str,
        order_id: Uuid,
        quantity: i32,
        global: Option<&crate::reach::Reach>,
    ) -> Result<Reservation, StoreError> {
        let allotment = self.allotment(sku, region);
        let mut known = allotment.lock().await;
        let mut fresh = known.is_none();
        let mut available = match *known {
            Some(a) => a,
            None => self.available(sku, region).await?,
        };
        for _ in 0..CONTENTION_RETRIES {
            if available < quantity as i64 {
                if !fresh {
                    // What this writer remembers may be stale (stock added meanwhile): look again.
                    available = self.available(sku, region).await?;
                    fresh = true;
                    continue;
                }
                *known = Some(available);
                // A retry of an order that already holds its units is not a refusal.
                return Ok(match self.holds(sku, region, order_id).await? {
                    true => Reservation::Held,
                    false => Reservation::Insufficient { available },
                });
            }
            let mut batch = Batch::new(BatchType::Logged);
            batch.append_statement(self.set_if.clone());
            batch.append_statement(self.insert_row.clone());
            let values = (
                (available - quantity as i64, sku, region, available),
                (sku, region, order_id, quantity, Utc::now()),
            );
            let everywhere = global.filter(|r| r.is_global_possible());
            if everywhere.is_some() {
                batch.set_consistency(scylla::statement::Consistency::EachQuorum);
                batch.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
            }
            let applied = match (self.session.batch(&batch, values).await, everywhere) {
                (Ok(r), _) => crate::lwt_applied(r)?,
                (Err(e), Some(reach)) => {
                    // The next round re-reads: a reservation that did commit locally shows as held.
                    reach.declare_unreachable(format!("stock reservation: {e}"));
                    false
                }
                (Err(e), None) => {
                    *known = None;
                    return Err(StoreError::query("reserve stock", e));
                }
            };
            if applied {
                *known = Some(available - quantity as i64);
                return Ok(Reservation::Held);
            }
            // Either the order already holds its units (a retry) or another writer moved the count.
            if self.holds(sku, region, order_id).await? {
                *known = None;
                return Ok(Reservation::Held);
            }
            available = self.available(sku, region).await?;
            fresh = true;
        }
        *known = None;
        Err(StoreError::Contention {
            what: "reserve stock",
            key: format!("{sku}/{region}"),
        })
    }

    /// Gives back what `order_id` reserved of `sku` in `region`; a no-op if it holds nothing.
    pub async fn release(&self, sku: &str, region: &str, order_id: Uuid) -> Result<(), StoreError> {
        let allotment = self.allotment(sku, region);
        let mut known = allotment.lock().await;
        *known = None;
        for _ in 0..CONTENTION_RETRIES {
            let result = self
                .session
                .execute_unpaged(&self.row, (sku, region, order_id))
                .await
                .map_err(|e| StoreError::query("read reservation", e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| StoreError::query("read reservation", e))?;
            let Some((Some(quantity),)) = rows
                .maybe_first_row::<(Option<i32>,)>()
                .map_err(|e| StoreError::query("read reservation", e))?
            else {
                return Ok(());
            };
            let available = self.available(sku, region).await?;
            let mut batch = Batch::new(BatchType::Logged);
            batch.append_statement(self.set_if.clone());
            batch.append_statement(self.delete_row.clone());
            let values = (
                (available + quantity as i64, sku, region, available),
                (sku, region, order_id),
            );
            let result = self
                .session
                .batch(&batch, values)
                .await
                .map_err(|e| StoreError::query("release stock", e))?;
            if crate::lwt_applied(result)? {
                return Ok(());
            }
        }
        Err(StoreError::Contention {
            what: "release stock",
            key: format!("{sku}/{region}"),
        })
    }
}
