//! Placing, reading and cancelling orders.
//!
//! Placement is idempotent across regions: the order id is derived from (client, Idempotency-Key),
//! so a retry anywhere lands on the same order stream. Nothing is written before the request is
//! valid and priced; the idempotency claim (409 while in flight) and the customer row come next,
//! then the `OrderPlaced` append through the journal.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use orders_domain::{
    OrderEvent, OrderState, OrderStream, PlaceOrderRequest, PricingError, RequestedItem, ShippingAddress,
    decide_cancel, next_envelope, order_id_for, price_order, validate_place_order,
};
use orders_store::Appended;
use orders_store::customers::CustomerOrder;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{json_body, parse_id};
use crate::AppState;
use crate::auth::Client;
use crate::problem::ApiError;
use crate::resource::OrderResource;

/// A claim older than this whose request never finished is taken over by a retry.
const IN_FLIGHT_FOR: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    customer_id: Uuid,
    items: Vec<ItemBody>,
    shipping_address: AddressBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    sku: String,
    quantity: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    name: String,
    line1: String,
    #[serde(default)]
    line2: Option<String>,
    city: String,
    postal_code: String,
    country: String,
}

impl From<PlaceOrderBody> for PlaceOrderRequest {
    fn from(b: PlaceOrderBody) -> Self {
        PlaceOrderRequest {
            customer_id: b.customer_id,
            items: b
                .items
                .into_iter()
                .map(|i| RequestedItem {
                    sku: i.sku,
                    quantity: i.quantity,
                })
                .collect(),
            shipping_address: ShippingAddress {
                name: b.shipping_address.name,
                line1: b.shipping_address.line1,
                line2: b.shipping_address.line2,
                city: b.shipping_address.city,
                postal_code: b.shipping_address.postal_code,
                country: b.shipping_address.country,
            },
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let raw = headers
        .get("idempotency-key")
        .ok_or(ApiError::IdempotencyKeyMissing)?;
    let key = raw.to_str().map_err(|_| ApiError::IdempotencyKeyInvalid)?.trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::IdempotencyKeyInvalid);
    }
    Ok(key.to_string())
}

/// The request's identity for idempotency: a hash of its parsed, canonical form.
fn fingerprint(request: &PlaceOrderRequest) -> String {
    let canonical = serde_json::to_vec(request).expect("a request always serializes");
    hex::encode(Sha256::digest(canonical))
}

fn order_response(status: StatusCode, state: &OrderState, replayed: bool) -> Response {
    let mut response = (status, Json(OrderResource::from(state))).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/orders/{}", state.order_id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// `POST /v1/orders`
pub async fn place(
    State(app): State<Arc<AppState>>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: PlaceOrderBody =
        json_body(&headers, body, app.config.max_body_bytes, true)?.expect("a required body is present");
    let request = PlaceOrderRequest::from(body);
    validate_place_order(&request).map_err(ApiError::Validation)?;
    let catalog = app.catalog();
    let (items, total) = price_order(&request, &|sku| catalog.price(sku)).map_err(pricing_error)?;
    let fingerprint = fingerprint(&request);
    let order_id = order_id_for(&client, &key);
    let store = app.journal.store();

    // A retry of a placement that already happened, here or in another region.
    let stream = store.read_stream(order_id).await?;
    if let Some(existing) = stream.state().ok().flatten() {
        return replay(&existing, &fingerprint);
    }

    let now = Utc::now();
    if let Some(early) = claim(&app, &client, &key, &fingerprint, order_id, now).await? {
        return Ok(early);
    }

    let event = OrderEvent::OrderPlaced {
        customer_id: request.customer_id,
        items,
        total: total.clone(),
        shipping_address: request.shipping_address,
        idempotency_fingerprint: fingerprint.clone(),
    };
    let envelope = next_envelope(&stream, &app.config.region, event, Uuid::now_v7(), now);
    let row = CustomerOrder {
        order_id,
        placed_at: envelope.occurred_at,
        origin_region: app.config.region.to_string(),
        total_minor: total.amount_minor,
        currency: total.currency.clone(),
    };
    // Both rows are harmless if the append then fails: readers skip orders without events.
    tokio::try_join!(
        app.customers.record(request.customer_id, &row),
        app.open_orders
            .add(app.config.region.as_str(), order_id, envelope.occurred_at),
    )?;
    let outcome = app.journal.append(&envelope).await?;
    if let Err(error) = app.idempotency.finish(&client, &key).await {
        tracing::warn!(%error, %order_id, "idempotency record not marked done; retries still replay from the stream");
    }
    match outcome {
        Appended::Written | Appended::Degraded => {
            let durability = match (outcome, app.journal.durability()) {
                (Appended::Degraded, _) => "global_degraded",
                (_, orders_store::Durability::Global) => "global",
                _ => "local",
            };
            app.metrics.orders_placed.with_label_values(&[durability]).inc();
            let mut stream = stream;
            stream
                .insert(envelope)
                .map_err(|e| ApiError::Internal(e.into()))?;
            let state = stream
                .state()
                .map_err(|e| ApiError::Internal(e.into()))?
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!(
                        "order {order_id} has no state after its placement"
                    ))
                })?;
            Ok(order_response(StatusCode::CREATED, &state, false))
        }
        Appended::Conflict => {
            let stream = store.read_stream(order_id).await?;
            match stream.state().ok().flatten() {
                Some(existing) => replay(&existing, &fingerprint),
                None => Err(ApiError::IdempotencyKeyInFlight),
            }
        }
    }
}

/// Claims (client, key) for this request. `Some(response)` when the request must not place the
/// order itself: a replay of a finished placement, or a refusal.
///
/// Each region claims in its own row and then reads every region's rows. In `global` durability
/// that read goes to a quorum of all datacenters, so of two regions claiming the same key at once
/// at least one sees the other; whoever sees another claim in flight backs off (409) and gives up
/// its own, so a retry is never blocked for long. In `local` durability the read is local and two
/// regions can both place the same key within the replication lag; the fold then keeps the first
/// placement (docs/decisions/0004-idempotency-across-regions.md).
async fn claim(
    app: &AppState,
    client: &str,
    key: &str,
    fingerprint: &str,
    order_id: Uuid,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Response>, ApiError> {
    let here = app.idempotency.region();
    if !app
        .idempotency
        .begin(client, key, fingerprint, order_id, now)
        .await?
    {
        let records = app.idempotency.records(client, key, false).await?;
        match records.iter().find(|r| r.region == here) {
            Some(r) if r.fingerprint != fingerprint => return Err(ApiError::IdempotencyKeyReused),
            Some(r) if !r.done && now - r.started_at < IN_FLIGHT_FOR => {
                return Err(ApiError::IdempotencyKeyInFlight);
            }
            Some(r) if !r.done => {
                if !app.idempotency.take_over(client, key, r.started_at, now).await? {
                    return Err(ApiError::IdempotencyKeyInFlight);
                }
            }
            _ => return replay_when_visible(app, order_id, fingerprint).await.map(Some),
        }
    }
    let everywhere = app.journal.durability() == orders_store::Durability::Global
        && app.journal.store().reach().is_global_possible();
    let records = app.idempotency.records(client, key, everywhere).await?;
    for other in records.iter().filter(|r| r.region != here) {
        if other.fingerprint != fingerprint {
            app.idempotency.release(client, key).await?;
            return Err(ApiError::IdempotencyKeyReused);
        }
        if other.done {
            app.idempotency.release(client, key).await?;
            return replay_when_visible(app, order_id, fingerprint).await.map(Some);
        }
        if now - other.started_at < IN_FLIGHT_FOR {
            tracing::info!(%order_id, region = %other.region, "same key in flight in another region");
            app.idempotency.release(client, key).await?;
            return Err(ApiError::IdempotencyKeyInFlight);
        }
    }
    Ok(None)
}

/// The placement finished (here or elsewhere): answer with it once this datacenter has it.
async fn replay_when_visible(
    app: &AppState,
    order_id: Uuid,
    fingerprint: &str,
) -> Result<Response, ApiError> {
    for _ in 0..20 {
        let stream = app.journal.store().read_stream(order_id).await?;
        if let Some(existing) = stream.state().ok().flatten() {
            return replay(&existing, fingerprint);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(ApiError::IdempotencyKeyInFlight)
}

fn replay(existing: &OrderState, fingerprint: &str) -> Result<Response, ApiError> {
    if existing.idempotency_fingerprint != fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(order_response(StatusCode::CREATED, existing, true))
}

fn pricing_error(e: PricingError) -> ApiError {
    match e {
        PricingError::UnknownSku { sku, pointer } => ApiError::UnknownSku { sku, pointer },
        other => ApiError::Validation(vec![orders_domain::FieldError {
            pointer: "/items".into(),
            detail: other.to_string(),
        }]),
    }
}

async fn read_state(app: &AppState, order_id: Uuid) -> Result<(OrderStream, OrderState), ApiError> {
    let stream = app.journal.store().read_stream(order_id).await?;
    match stream.state() {
        Ok(Some(state)) => Ok((stream, state)),
        _ => Err(ApiError::NotFound(format!("order {order_id} does not exist"))),
    }
}

/// `GET /v1/orders/{id}`
pub async fn get_order(
    State(app): State<Arc<AppState>>,
    _client: Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order_id = parse_id("order id", &id)?;
    let (_, state) = read_state(&app, order_id).await?;
    Ok(Json(OrderResource::from(&state)).into_response())
}

/// `GET /v1/orders/{id}/events`: every event, in the canonical order the state is folded in.
pub async fn events(
    State(app): State<Arc<AppState>>,
    _client: Client,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order_id = parse_id("order id", &id)?;
    let (stream, _) = read_state(&app, order_id).await?;
    Ok(Json(json!({ "order_id": order_id, "events": stream.ordered() })).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: Option<String>,
}

/// `POST /v1/orders/{id}/cancel`: cancelling twice is a no-op; a rejected order cannot be cancelled.
pub async fn cancel(
    State(app): State<Arc<AppState>>,
    _client: Client,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let order_id = parse_id("order id", &id)?;
    let body: CancelBody = json_body(&headers, body, app.config.max_body_bytes, false)?.unwrap_or_default();
    let reason = body.reason.unwrap_or_else(|| "cancelled by the customer".into());
    if reason.chars().count() > 500 {
        return Err(ApiError::Validation(vec![orders_domain::FieldError {
            pointer: "/reason".into(),
            detail: "must be at most 500 characters".into(),
        }]));
    }
    // Another writer of this region may take the lane position first: decide again on the new stream.
    for _ in 0..5 {
        let (mut stream, state) = read_state(&app, order_id).await?;
        let event = match decide_cancel(&state, reason.clone()) {
            Ok(Some(event)) => event,
            Ok(None) => return Ok(order_response(StatusCode::OK, &state, false)),
            Err(e) => return Err(ApiError::Conflict(e.to_string())),
        };
        let envelope = next_envelope(&stream, &app.config.region, event, Uuid::now_v7(), Utc::now());
        if app.journal.append(&envelope).await? != Appended::Conflict {
            stream
                .insert(envelope)
                .map_err(|e| ApiError::Internal(e.into()))?;
            let state = stream
                .state()
                .map_err(|e| ApiError::Internal(e.into()))?
                .expect("placed order");
            return Ok(order_response(StatusCode::OK, &state, false));
        }
    }
    Err(ApiError::Conflict(
        "the order kept changing while cancelling; retry".into(),
    ))
}
