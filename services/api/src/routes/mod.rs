//! The HTTP surface: routes, body and id extraction shared by the handlers.
mod catalog;
mod customers;
mod orders;

pub use orders::Placing;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::AppState;
use crate::problem::ApiError;

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    let api = Router::new()
        .route("/v1/orders", post(orders::place))
        .route("/v1/orders/{id}", get(orders::get_order))
        .route("/v1/orders/{id}/events", get(orders::events))
        .route("/v1/orders/{id}/cancel", post(orders::cancel))
        .route("/v1/customers/{id}/orders", get(customers::orders))
        .route("/v1/catalog", get(catalog::list))
        // Admission control on the /v1 routes only: health, metrics and admin are never shed.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::admission::admit,
        ))
        .with_state(state.clone());
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(orders_health::routes(state.health.clone()))
        .merge(orders_health::admin_routes(
            state.health.clone(),
            state.config.ops_token.clone(),
        ))
        .fallback(|| async { ApiError::NotFound("no such resource".into()) })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// `GET /metrics`: the API's own metrics and its health checks as gauges.
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> impl axum::response::IntoResponse {
    state.metrics.record_allotments(&state.allotments.snapshot());
    let mut body = state.metrics.render();
    body.push_str(&orders_health::export::prometheus_lines(&state.health.report()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// The JSON body of a request, with every way it can be wrong mapped to a precise problem.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
    required: bool,
) -> Result<Option<T>, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
        _ => ApiError::MalformedJson(e.body_text()),
    })?;
    if body.is_empty() && !required {
        return Ok(None);
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.ends_with("+json")
        });
    if !json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(e.to_string()),
            Category::Data => ApiError::InvalidBody(e.to_string()),
        }
    })
}

/// A path id that must be a UUID.
pub(crate) fn parse_id(what: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::InvalidId(format!("{what} must be a UUID, not {raw:?}")))
}
