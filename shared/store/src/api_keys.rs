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
