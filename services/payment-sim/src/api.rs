//! HTTP routes: the provider API under `/v1`, the sandbox controls under `/sim`, and health.

use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use tracing::{debug, info};
use uuid::Uuid;

use crate::chance;
use crate::config::{Behaviour, Rate};
use crate::error::ApiError;
use crate::ledger::{Ledger, Outcome, Stats};
use crate::model::{Authorization, AuthorizationId, AuthorizeRequest, IdempotencyKey};

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub(crate) struct AppState {
    ledger: Ledger,
    behaviour: RwLock<Behaviour>,
}

impl AppState {
    pub(crate) fn new(behaviour: Behaviour, max_authorizations: usize) -> Self {
        Self {
            ledger: Ledger::new(max_authorizations),
            behaviour: RwLock::new(behaviour),
        }
    }

    fn behaviour(&self) -> Behaviour {
        *self.behaviour.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// What every provider call goes through first: latency, then maybe a failure that records
    /// nothing. Returns the behaviour in force for the rest of the call.
    async fn act_as_provider(&self) -> Result<Behaviour, ApiError> {
        let behaviour = self.behaviour();
        tokio::time::sleep(behaviour.sample_latency(chance::unit())).await;
        if behaviour.failure_rate.hits(chance::unit()) {
            self.ledger.count_injected_failure();
            info!(failure_rate = %behaviour.failure_rate, "failure injected");
            return Err(ApiError::InjectedFailure {
                failure_rate: behaviour.failure_rate.get(),
            });
        }
        Ok(behaviour)
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/authorizations", post(authorize).get(list_for_order))
        .route("/v1/authorizations/{id}/void", post(void))
        .route("/sim/config", get(get_config).put(put_config))
        .route("/sim/stats", get(stats))
        .route("/health/live", get(health))
        .route("/health/ready", get(health))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<AuthorizeRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let behaviour = state.act_as_provider().await?;
    let key = idempotency_key(&headers)?;
    let Json(request) = body?;
    let decline = request.decide(behaviour.decline_rate, chance::unit());
    let outcome = state.ledger.authorize(key, request, decline, Utc::now())?;
    if let Outcome::Done(authorization) = &outcome {
        info!(
            authorization_id = %authorization.id,
            order_id = %authorization.order_id,
            status = %authorization.status,
            "authorization created"
        );
    }
    Ok(respond(StatusCode::CREATED, outcome))
}

async fn void(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.act_as_provider().await?;
    let key = idempotency_key(&headers)?;
    // Ids are opaque to clients: one that does not parse is simply one we never issued.
    let id: AuthorizationId = id.parse().map_err(|_| ApiError::AuthorizationNotFound { id })?;
    let outcome = state.ledger.void(key, id, Utc::now())?;
    if let Outcome::Done(authorization) = &outcome {
        info!(authorization_id = %id, order_id = %authorization.order_id, "authorization voided");
    }
    Ok(respond(StatusCode::OK, outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderFilter {
    order_id: Uuid,
}

async fn list_for_order(
    State(state): State<Arc<AppState>>,
    filter: Result<Query<OrderFilter>, QueryRejection>,
) -> Result<Json<Vec<Authorization>>, ApiError> {
    let Query(OrderFilter { order_id }) = filter?;
    Ok(Json(state.ledger.for_order(order_id)))
}

/// `PUT /sim/config` body: fields left out keep their current value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviourChange {
    latency_ms: Option<u64>,
    latency_jitter_ms: Option<u64>,
    decline_rate: Option<Rate>,
    failure_rate: Option<Rate>,
}

async fn get_config(State(state): State<Arc<AppState>>) -> Json<Behaviour> {
    Json(state.behaviour())
}

async fn put_config(
    State(state): State<Arc<AppState>>,
    change: Result<Json<BehaviourChange>, JsonRejection>,
) -> Result<Json<Behaviour>, ApiError> {
    let Json(change) = change?;
    let mut behaviour = state.behaviour.write().unwrap_or_else(PoisonError::into_inner);
    let current = *behaviour;
    *behaviour = Behaviour {
        latency_ms: change.latency_ms.unwrap_or(current.latency_ms),
        latency_jitter_ms: change.latency_jitter_ms.unwrap_or(current.latency_jitter_ms),
        decline_rate: change.decline_rate.unwrap_or(current.decline_rate),
        failure_rate: change.failure_rate.unwrap_or(current.failure_rate),
    };
    info!(
        latency_ms = behaviour.latency_ms,
        latency_jitter_ms = behaviour.latency_jitter_ms,
        decline_rate = %behaviour.decline_rate,
        failure_rate = %behaviour.failure_rate,
        "sandbox behaviour changed"
    );
    Ok(Json(*behaviour))
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<Stats> {
    Json(state.ledger.stats())
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/health+json")],
        r#"{"status":"pass"}"#,
    )
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let value = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::InvalidIdempotencyKey("the Idempotency-Key header is required".into()))?;
    let text = value.to_str().map_err(|_| {
        ApiError::InvalidIdempotencyKey("the Idempotency-Key header must be visible ASCII characters".into())
    })?;
    text.parse().map_err(ApiError::InvalidIdempotencyKey)
}

fn respond(status: StatusCode, outcome: Outcome) -> Response {
    match outcome {
        Outcome::Done(authorization) => (status, Json(authorization)).into_response(),
        Outcome::Replayed(authorization) => {
            debug!(authorization_id = %authorization.id, "idempotent replay");
            let replayed = [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
            (status, replayed, Json(authorization)).into_response()
        }
    }
}
