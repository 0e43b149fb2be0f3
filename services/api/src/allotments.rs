//! What is left to sell of each SKU in this region, as the API refuses sold-out SKUs from it.
//!
//! The worker reserves stock; the API only reads each allotment's `available` count in the
//! background (a few reads a second, never per request), so a buyer of a sold-out SKU is told at
//! once instead of being accepted and rejected a moment later. The view lags the truth by up to a
//! refresh interval plus the worker's lag: an order accepted in that window is still decided by the
//! worker's reservation, which never oversells.
use std::collections::HashMap;
use std::sync::RwLock;

use orders_store::StoreError;
use orders_store::stock::Stock;

pub struct Allotments {
    stock: Stock,
    region: String,
    view: RwLock<HashMap<String, i64>>,
}

impl Allotments {
    pub fn new(stock: Stock, region: &str) -> Self {
        Allotments {
            stock,
            region: region.to_string(),
            view: RwLock::default(),
        }
    }

    /// Reads the allotment of every SKU in `skus`.
    pub async fn refresh(&self, skus: impl Iterator<Item = &str>) -> Result<(), StoreError> {
        let mut view = HashMap::new();
        for sku in skus {
            view.insert(sku.to_string(), self.stock.available(sku, &self.region).await?);
        }
        *self.view.write().expect("allotments lock") = view;
        Ok(())
    }

    /// Whether `quantity` of `sku` is known to be more than this region has left.
    pub fn sold_out(&self, sku: &str, quantity: i64) -> bool {
        self.view
            .read()
            .expect("allotments lock")
            .get(sku)
            .is_some_and(|&available| available < quantity)
    }

    /// Units left per SKU, as last read.
    pub fn snapshot(&self) -> HashMap<String, i64> {
        self.view.read().expect("allotments lock").clone()
    }
}
