//! `GET /v1/customers/{id}/orders`: a customer's orders, newest first, paged by an opaque,
//! signed token (see `page_token`).
mod page_token;

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::parse_id;
use crate::AppState;
use crate::auth::Client;
use crate::problem::ApiError;
use crate::resource::OrderResource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<i32>,
    page_token: Option<String>,
}

pub async fn orders(
    State(state): State<Arc<AppState>>,
    _client: Client,
    Path(id): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let customer_id = parse_id("customer id", &id)?;
    let Query(page) = query.map_err(|e| ApiError::InvalidBody(format!("query string: {}", e.body_text())))?;
    let limit = page.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::Validation(vec![orders_domain::FieldError {
            pointer: "limit".into(),
            detail: "must be between 1 and 100".into(),
        }]));
    }
    let tokens = page_token::PageTokens::new(state.config.page_token_secret.expose().as_bytes());
    // The token is checked before anything reaches the database.
    let after = page
        .page_token
        .map(|token| tokens.open(customer_id, &token))
        .transpose()
        .map_err(|_| ApiError::InvalidPageToken)?;
    let (rows, next) = state.customers.page(customer_id, limit, after).await?;
    let streams = fold_orders(state.clone(), rows.iter().map(|r| r.order_id).collect()).await?;
    // Two regions placing one key at once can leave two rows for one order: show it once.
    let mut seen = std::collections::HashSet::new();
    let orders: Vec<OrderResource> = streams
        .iter()
        .flatten()
        .filter(|s| seen.insert(s.order_id))
        .map(OrderResource::from)
        .collect();
    Ok(Json(json!({
        "orders": orders,
        "next_page_token": next.map(|cursor| tokens.issue(customer_id, &cursor)),
    })))
}

/// Folds the listed orders' streams concurrently; rows whose order never got its first event are left out.
async fn fold_orders(
    state: Arc<AppState>,
    ids: Vec<uuid::Uuid>,
) -> Result<Vec<Option<orders_domain::OrderState>>, ApiError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.into_iter().enumerate() {
        let state = state.clone();
        tasks.spawn(async move { (i, state.journal.store().read_stream(id).await) });
    }
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, stream) = joined.map_err(|e| ApiError::Internal(e.into()))?;
        out.push((i, stream?.state().ok().flatten()));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, s)| s).collect())
}
