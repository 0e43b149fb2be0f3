//! Stock allocations after a drill: every region's allotment of the SKUs the drill bought, read in
//! every datacenter. None may be negative, and no allotment may hold more reserved units than the
//! catalog allotted it: a fault that made a region sell twice, or sell stock it did not have,
//! shows here.
use futures::TryStreamExt;
use orders_store::StoreConfig;
use scylla::client::session::Session;
use serde::Serialize;
use uuid::Uuid;

use crate::stack::{Region, Sku};

/// One region's allotment of one SKU, as one datacenter sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Allotment {
    pub sku: String,
    /// The region whose allotment this is.
    pub region: String,
    /// The datacenter it was read in (LOCAL_QUORUM).
    pub read_in: String,
    /// Units the catalog allotted the region (`deploy/seed/catalog.csv`).
    pub allotted: u64,
    pub available: Option<i64>,
    /// Reservation rows (one per order holding units) and the units they hold.
    pub reservations: u64,
    pub reserved_units: i64,
    pub error: Option<String>,
}

impl Allotment {
    /// Never negative: units left at least 0, and no more reserved than allotted.
    pub fn sound(&self) -> bool {
        self.error.is_none()
            && self.available.is_some_and(|a| a >= 0)
            && self.reserved_units >= 0
            && self.reserved_units as u64 <= self.allotted
    }
}

/// Reads every region's allotment of every SKU in every datacenter.
pub async fn read(regions: &[Region], skus: &[Sku]) -> Vec<Allotment> {
    let mut out = Vec::new();
    for dc in regions {
        let session = orders_store::connect(&StoreConfig::new(dc.cql_contact(), dc.name.as_str())).await;
        for sku in skus {
            for owner in regions {
                let mut a = Allotment {
                    sku: sku.sku.clone(),
                    region: owner.name.clone(),
                    read_in: dc.name.clone(),
                    allotted: sku.stock_per_region,
                    available: None,
                    reservations: 0,
                    reserved_units: 0,
                    error: None,
                };
                match &session {
                    Ok(s) => match partition(s, &sku.sku, &owner.name).await {
                        Ok((available, rows, units)) => {
                            a.available = available;
                            a.reservations = rows;
                            a.reserved_units = units;
                        }
                        Err(e) => a.error = Some(format!("{e:#}")),
                    },
                    Err(e) => a.error = Some(format!("connecting to {}: {e}", dc.name)),
                }
                out.push(a);
            }
        }
    }
    out
}

/// The allotment's `available` and its reservation rows, paged through the whole partition.
async fn partition(session: &Session, sku: &str, region: &str) -> anyhow::Result<(Option<i64>, u64, i64)> {
    let rows = session
        .query_iter(
            "SELECT available, order_id, quantity FROM orders.stock WHERE sku = ? AND region = ?",
            (sku, region),
        )
        .await?
        .rows_stream::<(Option<i64>, Option<Uuid>, Option<i32>)>()?;
    let (mut available, mut n, mut units) = (None, 0_u64, 0_i64);
    futures::pin_mut!(rows);
    while let Some((a, order, quantity)) = rows.try_next().await? {
        available = available.or(a);
        if order.is_some() {
            n += 1;
            units += i64::from(quantity.unwrap_or(0));
        }
    }
    Ok((available, n, units))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allotment(available: Option<i64>, reserved_units: i64) -> Allotment {
        Allotment {
            sku: "MUG".into(),
            region: "eu".into(),
            read_in: "us".into(),
            allotted: 100,
            available,
            reservations: reserved_units as u64,
            reserved_units,
            error: None,
        }
    }

    #[test]
    fn an_allotment_is_sound_only_when_nothing_is_negative_or_over_reserved() {
        assert!(allotment(Some(0), 100).sound());
        assert!(allotment(Some(60), 40).sound());
        assert!(!allotment(Some(-1), 40).sound());
        assert!(!allotment(Some(10), 101).sound());
        assert!(
            !allotment(None, 0).sound(),
            "an allotment never set is not known to be sound"
        );
        let mut unread = allotment(Some(5), 5);
        unread.error = Some("timeout".into());
        assert!(!unread.sound());
    }
}
