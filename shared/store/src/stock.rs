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
//!
//! A hot SKU (a launch) has many orders waiting on its allotment at once. Whoever takes the
//! allotment's lock next reserves for every order waiting then, in one conditional batch that
//! decrements the count by their sum and inserts each order's row: one consensus round for the
//! group instead of one each. If that batch does not apply (a retry among them, a stale count),
//! each order is reserved on its own as above, so the group is only ever a faster path.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue};
use tokio::sync::oneshot;
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

/// One (sku, region) allotment as this writer knows it.
#[derive(Default)]
struct Allotment {
    /// The writer's lock and the `available` count it last read or wrote.
    known: tokio::sync::Mutex<Option<i64>>,
    /// Reservations waiting for the lock: whoever takes it next makes them together.
    waiting: Mutex<Vec<Waiting>>,
}

struct Waiting {
    order_id: Uuid,
    quantity: i32,
    reply: oneshot::Sender<Result<Reservation, StoreError>>,
}

/// The most reservations one grouped batch makes.
const GROUP_MAX: usize = 64;

pub struct Stock {
    session: Arc<Session>,
    allotments: Mutex<HashMap<(String, String), Arc<Allotment>>>,
    /// Reservations made in a group of more than one.
    grouped: std::sync::atomic::AtomicU64,
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
            allotments: Mutex::default(),
            grouped: Default::default(),
            session,
        })
    }

    fn allotment(&self, sku: &str, region: &str) -> Arc<Allotment> {
        self.allotments
            .lock()
            .expect("stock lock")
            .entry((sku.to_string(), region.to_string()))
            .or_default()
            .clone()
    }

    /// How many reservations this writer made in groups of more than one.
    pub fn grouped(&self) -> u64 {
        self.grouped.load(std::sync::atomic::Ordering::Relaxed)
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

    /// Reserves `quantity` units of `sku` in `region` for `order_id`, together with whatever other
    /// reservations of the allotment are waiting at the same moment.
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
        let (reply, answer) = oneshot::channel();
        (allotment.waiting.lock().expect("stock lock")).push(Waiting {
            order_id,
            quantity,
            reply,
        });
        {
            let mut known = allotment.known.lock().await;
            // Empty when the holder before took this reservation into its group.
            let waiting = std::mem::take(&mut *allotment.waiting.lock().expect("stock lock"));
            for group in into_groups(waiting) {
                self.reserve_group(sku, region, &mut known, group, global).await;
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Contention {
                what: "reserve stock (the group's writer stopped)",
                key: format!("{sku}/{region}"),
            })
        })
    }

    /// Reserves a group of waiting orders in one conditional batch if they all fit, and answers
    /// each; any the batch does not settle is reserved on its own.
    async fn reserve_group(
        &self,
        sku: &str,
        region: &str,
        known: &mut Option<i64>,
        group: Vec<Waiting>,
        global: Option<&crate::reach::Reach>,
    ) {
        let mut alone = group;
        if alone.len() > 1
            && let Some(available) = *known
        {
            // The longest prefix that fits, one row per order: the rest go on their own (and are
            // refused if nothing is left).
            let (mut sum, mut seen) = (0i64, std::collections::HashSet::new());
            let fits = alone
                .iter()
                .take_while(|w| {
                    sum += w.quantity as i64;
                    sum <= available && seen.insert(w.order_id)
                })
                .count();
            if fits > 1 {
                let rest = alone.split_off(fits);
                let group = std::mem::replace(&mut alone, rest);
                let orders: Vec<(Uuid, i32)> = group.iter().map(|w| (w.order_id, w.quantity)).collect();
                match self
                    .reserve_together(sku, region, available, &orders, global)
                    .await
                {
                    Ok(true) => {
                        let sum: i64 = group.iter().map(|w| w.quantity as i64).sum();
                        *known = Some(available - sum);
                        (self.grouped).fetch_add(group.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        for w in group {
                            let _ = w.reply.send(Ok(Reservation::Held));
                        }
                    }
                    // Not applied, or unknown: each on its own, which reads what is there.
                    Ok(false) | Err(_) => {
                        *known = None;
                        let mut all = group;
                        all.append(&mut alone);
                        alone = all;
                    }
                }
            }
        }
        for w in alone {
            let result = self
                .reserve_one(known, sku, region, w.order_id, w.quantity, global)
                .await;
            let _ = w.reply.send(result);
        }
    }

    /// One conditional batch: the count down by the group's sum, and each order's row.
    async fn reserve_together(
        &self,
        sku: &str,
        region: &str,
        available: i64,
        orders: &[(Uuid, i32)],
        global: Option<&crate::reach::Reach>,
    ) -> Result<bool, StoreError> {
        let sum: i64 = orders.iter().map(|(_, quantity)| *quantity as i64).sum();
        let mut batch = Batch::new(BatchType::Logged);
        let text = |v: &str| CqlValue::Text(v.to_string());
        let mut values = vec![vec![
            CqlValue::BigInt(available - sum),
            text(sku),
            text(region),
            CqlValue::BigInt(available),
        ]];
        batch.append_statement(self.set_if.clone());
        let now = CqlValue::Timestamp(CqlTimestamp(Utc::now().timestamp_millis()));
        for (order_id, quantity) in orders {
            batch.append_statement(self.insert_row.clone());
            values.push(vec![
                text(sku),
                text(region),
                CqlValue::Uuid(*order_id),
                CqlValue::Int(*quantity),
                now.clone(),
            ]);
        }
        let everywhere = global.filter(|r| r.is_global_possible());
        if everywhere.is_some() {
            batch.set_consistency(scylla::statement::Consistency::EachQuorum);
            batch.set_request_timeout(Some(crate::reach::GLOBAL_TIMEOUT));
        }
        match (self.session.batch(&batch, values).await, everywhere) {
            (Ok(r), _) => crate::lwt_applied(r),
            (Err(e), Some(reach)) => {
                reach.declare_unreachable(format!("stock reservation: {e}"));
                Ok(false)
            }
            (Err(e), None) => Err(StoreError::query("reserve stock", e)),
        }
    }

    /// Reserves for one order: one conditional batch from the remembered count, reading again
    /// when the condition shows it stale.
    async fn reserve_one(
        &self,
        known: &mut Option<i64>,
        sku: &str,
        region: &str,
        order_id: Uuid,
        quantity: i32,
        global: Option<&crate::reach::Reach>,
    ) -> Result<Reservation, StoreError> {
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
            // Unreachable datacenters count as not applied: the next round re-reads, and a
            // reservation that did commit locally shows as held.
            let one = [(order_id, quantity)];
            let applied = match self.reserve_together(sku, region, available, &one, global).await {
                Ok(applied) => applied,
                Err(error) => {
                    *known = None;
                    return Err(error);
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
        let mut known = allotment.known.lock().await;
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

/// Waiting reservations in groups of at most `GROUP_MAX`, in the order they came.
fn into_groups(mut waiting: Vec<Waiting>) -> Vec<Vec<Waiting>> {
    let mut groups = Vec::new();
    while waiting.len() > GROUP_MAX {
        let rest = waiting.split_off(GROUP_MAX);
        groups.push(std::mem::replace(&mut waiting, rest));
    }
    if !waiting.is_empty() {
        groups.push(waiting);
    }
    groups
}
