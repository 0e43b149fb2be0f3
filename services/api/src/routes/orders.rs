//! Placing, reading and cancelling orders.
//!
//! Placement is idempotent across regions: the order id is derived from (client, Idempotency-Key),
//! so a retry anywhere lands on the same order stream. Nothing is written before the request is
//! valid and priced; the placement protocol (`crate::placement`) then claims the key and writes.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use orders_domain::{
    OrderState, OrderStream, PlaceOrderRequest, PricingError, RequestedItem, ShippingAddress, decide_cancel,
    next_envelope, price_order, validate_place_order,
};
use orders_store::Appended;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{json_body, parse_id};
use crate::AppState;
use crate::auth::Client;
pub use crate::placement::Placing;
use crate::placement::{self, Order, Placed, Placement};
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
    #[serde(deserialize_with = "integer")]
    quantity: i64,
}

/// JSON Schema (and so the spec) counts `2.0` and `1e3` as integers: any number without a
/// fraction is one. Out of range saturates, so validation names the field instead of the parser.
fn integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(i) = number.as_i64() {
        return Ok(i);
    }
    if number.is_u64() {
        return Ok(i64::MAX);
    }
    match number.as_f64() {
        // `as` saturates at i64::MIN and i64::MAX.
        Some(f) if f.fract() == 0.0 => Ok(f as i64),
        _ => Err(serde::de::Error::invalid_type(
            serde::de::Unexpected::Other("a number with a fraction"),
            &"an integer",
        )),
    }
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

/// `POST /v1/orders`: parses and prices the request; the placement protocol does the rest.
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
    let placement = Placement {
        region: &app.config.region,
        orders: &placement::Store {
            journal: &app.journal,
            customers: &app.customers,
            open_orders: &app.open_orders,
        },
        claims: &app.idempotency,
        allotments: &app.allotments,
        placing: &app.placing,
        placed: &app.metrics.orders_placed,
    };
    let order = Order {
        client,
        key,
        request,
        items,
        total,
    };
    Ok(match placement.place(order).await? {
        Placed::Created { state, .. } => order_response(StatusCode::CREATED, &state, false),
        Placed::Replayed(state) => order_response(StatusCode::CREATED, &state, true),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(raw: &str) -> Result<i64, String> {
        let body = format!(
            r#"{{"customer_id":"0b0e6a8e-3d7e-4a4e-9f56-0a3c1b2d4e5f","items":[{{"sku":"MUG-LOGO","quantity":{raw}}}],
            "shipping_address":{{"name":"Ada","line1":"1 Main St","city":"Berlin","postal_code":"10115","country":"DE"}}}}"#
        );
        serde_json::from_str::<PlaceOrderBody>(&body)
            .map(|b| b.items[0].quantity)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_quantity_without_a_fraction_is_an_integer_however_it_is_written() {
        assert_eq!(quantity("69"), Ok(69));
        assert_eq!(quantity("69.0"), Ok(69));
        assert_eq!(quantity("1e3"), Ok(1000));
        assert_eq!(quantity("-2.0"), Ok(-2));
    }

    #[test]
    fn a_quantity_out_of_range_saturates_so_validation_names_it() {
        assert_eq!(quantity("18446744073709551615"), Ok(i64::MAX));
        assert_eq!(quantity("1e300"), Ok(i64::MAX));
        assert_eq!(quantity("-1e300"), Ok(i64::MIN));
    }

    #[test]
    fn a_quantity_with_a_fraction_or_of_another_type_does_not_parse() {
        assert!(quantity("1.5").is_err());
        assert!(quantity("\"2\"").is_err());
        assert!(quantity("null").is_err());
    }
}
