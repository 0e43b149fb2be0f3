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
    Claim, ClaimVerdict, OrderEvent, OrderState, OrderStream, PlaceOrderRequest, PricingError, RequestedItem,
    ShippingAddress, decide_cancel, judge_claims, next_envelope, order_id_for, price_order,
    validate_place_order,
};
use orders_store::Appended;
use orders_store::customers::CustomerOrder;
use orders_store::idempotency::Scope;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{json_body, parse_id};
use crate::AppState;
use crate::auth::Client;
use crate::problem::ApiError;
use crate::resource::OrderResource;

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

/// Striped per-order locks of the placements in this instance.
pub struct Placing {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Placing {
    fn default() -> Self {
        Placing {
            stripes: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl Placing {
    async fn lock(&self, order_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        self.stripes[(order_id.as_u128() % self.stripes.len() as u128) as usize]
            .lock()
            .await
    }
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
    let _placing = app.placing.lock(order_id).await;

    // A retry of a placement that already happened, here or in another region.
    let stream = store.read_stream(order_id).await?;
    if let Some(existing) = stream.state().ok().flatten() {
        return replay(&existing, &fingerprint);
    }
    // Refused at once from the cached allotments rather than accepted and rejected a moment later.
    if let Some((i, item)) =
        (request.items.iter().enumerate()).find(|(_, item)| app.allotments.sold_out(&item.sku, item.quantity))
    {
        return Err(ApiError::SoldOut {
            sku: item.sku.clone(),
            pointer: format!("/items/{i}/sku"),
        });
    }

    let now = Utc::now();
    let claimant = Uuid::new_v4();
    if let Some(early) = claim(&app, &client, &key, &fingerprint, order_id, claimant, now).await? {
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
    // Both rows are harmless if the placement then fails: readers skip orders without events.
    tokio::try_join!(
        app.customers.record(request.customer_id, &row),
        app.open_orders
            .add(app.config.region.as_str(), order_id, envelope.occurred_at),
    )?;
    let outcome = app.journal.place(&envelope).await?;
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

/// Claims (client, key) for this request. `Some(response)` when the request must not place the
/// order itself: a replay of a finished placement, or a refusal.
///
/// The request writes its own claim row, then reads every claim of the key. In `global` durability
/// both reach every datacenter (EACH_QUORUM write, QUORUM read), so of two requests claiming the
/// same key at once, anywhere, at least one sees the other and steps back (409) after giving its
/// own claim up, so a retry is never blocked for long. In `local` durability they reach this
/// datacenter: two regions can both place the same key within the replication lag, and the fold
/// then keeps the first placement (docs/decisions/0004-idempotency-across-regions.md).
async fn claim(
    app: &AppState,
    client: &str,
    key: &str,
    fingerprint: &str,
    order_id: Uuid,
    claimant: Uuid,
    now: chrono::DateTime<Utc>,
) -> Result<Option<Response>, ApiError> {
    let reach = app.journal.store().reach();
    let mut scope =
        match app.journal.durability() == orders_store::Durability::Global && reach.is_global_possible() {
            true => Scope::Everywhere,
            false => Scope::Local,
        };
    let idempotency = &app.idempotency;
    let claimed = idempotency
        .claim(scope, client, key, claimant, fingerprint, order_id, now)
        .await;
    let records = match claimed {
        Ok(()) => idempotency.records(scope, client, key).await,
        Err(e) => Err(e),
    };
    let records = match records {
        Ok(records) => records,
        Err(error) if scope == Scope::Everywhere => {
            // The other datacenters did not answer in time: claim as far as reaches now.
            reach.declare_unreachable(format!("idempotency claim: {error}"));
            scope = Scope::Local;
            idempotency
                .claim(scope, client, key, claimant, fingerprint, order_id, now)
                .await?;
            idempotency.records(scope, client, key).await?
        }
        Err(error) => return Err(error.into()),
    };
    let claims: Vec<Claim> = records
        .into_iter()
        .map(|r| Claim {
            claimant: r.claimant,
            fingerprint: r.fingerprint,
            started_at: r.started_at,
        })
        .collect();
    let verdict = judge_claims(claimant, fingerprint, &claims, now);
    if verdict != ClaimVerdict::Proceed {
        idempotency.release(client, key, claimant).await?;
    }
    match verdict {
        ClaimVerdict::Proceed => Ok(None),
        ClaimVerdict::Reused => Err(ApiError::IdempotencyKeyReused),
        ClaimVerdict::InFlight => {
            tracing::info!(%order_id, "same key in flight in another request");
            Err(ApiError::IdempotencyKeyInFlight)
        }
    }
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
