//! The catalog: SKUs and their prices. Clients never set prices; the API prices orders from here.
use orders_domain::Money;
use scylla::client::session::Session;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogItem {
    pub sku: String,
    pub name: String,
    pub price: Money,
}

/// Every SKU, sorted by SKU.
pub async fn all(session: &Session) -> Result<Vec<CatalogItem>, StoreError> {
    let result = session
        .query_unpaged("SELECT sku, name, price_minor, currency FROM orders.catalog", ())
        .await
        .map_err(|e| StoreError::query("read catalog", e))?;
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::query("read catalog", e))?;
    let mut items = Vec::new();
    for row in rows
        .rows::<(String, String, i64, String)>()
        .map_err(|e| StoreError::query("read catalog", e))?
    {
        let (sku, name, price_minor, currency) = row.map_err(|e| StoreError::query("read catalog", e))?;
        let price = Money::new(price_minor, currency)
            .map_err(|e| StoreError::query("catalog price", std::io::Error::other(e.to_string())))?;
        items.push(CatalogItem { sku, name, price });
    }
    items.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(items)
}
