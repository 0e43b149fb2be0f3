//! Storefront authentication: `Authorization: Bearer <api key>`, looked up by its hash.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use scylla::client::session::Session;

use crate::AppState;
use crate::problem::ApiError;

/// The authenticated storefront client.
#[derive(Debug, Clone)]
pub struct Client(pub String);

/// Known key hashes, cached for a minute so authentication costs no query per request.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<String, (Option<String>, Instant)>>,
}

const CACHE_FOR: Duration = Duration::from_secs(60);

impl KeyCache {
    async fn client_for(&self, session: &Session, key: &str) -> Result<Option<String>, ApiError> {
        let hash = orders_store::api_keys::hash_key(key);
        if let Some((client, at)) = self.entries.read().expect("key cache lock").get(&hash)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(client.clone());
        }
        let client = orders_store::api_keys::lookup(session, &hash).await?;
        let mut entries = self.entries.write().expect("key cache lock");
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(hash, (client.clone(), Instant::now()));
        Ok(client)
    }
}

impl FromRequestParts<Arc<AppState>> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or(ApiError::Unauthorized)?;
        match state.keys.client_for(&state.session, key).await? {
            Some(client) => Ok(Client(client)),
            None => Err(ApiError::Unauthorized),
        }
    }
}
