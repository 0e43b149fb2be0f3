//! `GET /v1/catalog`: what can be ordered, at what price.
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Client;

pub async fn list(State(state): State<Arc<AppState>>, _client: Client) -> Json<Value> {
    Json(json!({ "items": state.catalog().items }))
}
