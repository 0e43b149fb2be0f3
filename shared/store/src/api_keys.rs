//! Storefront API keys, stored only as SHA-256 hashes.
use scylla::client::session::Session;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// The stored form of a key: hex SHA-256. Keys are long random strings, so a plain hash is enough
/// (no dictionary to attack) and lets a lookup be one primary-key read.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Registers a key for a client; registering the same key again is a no-op.
pub async fn register(session: &Session, key: &str, client_id: &str) -> Result<(), StoreError> {
    session
        .query_unpaged(
            "INSERT INTO orders.api_keys (key_hash, client_id, created_at) VALUES (?, ?, toTimestamp(now()))",
            (hash_key(key), client_id),
        )
        .await
        .map_err(|e| StoreError::query("register api key", e))?;
    Ok(())
}

/// The client a key hash belongs to, if any.
pub async fn lookup(session: &Session, key_hash: &str) -> Result<Option<String>, StoreError> {
    let result = session
        .query_unpaged(
            "SELECT client_id FROM orders.api_keys WHERE key_hash = ?",
            (key_hash,),
        )
        .await
        .map_err(|e| StoreError::query("look up api key", e))?;
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::query("look up api key", e))?;
    Ok(rows
        .maybe_first_row::<(String,)>()
        .map_err(|e| StoreError::query("look up api key", e))?
        .map(|(c,)| c))
}
