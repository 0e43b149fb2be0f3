//! The API's one error type: a closed set of problems, each an RFC 9457 problem+json response.
//!
//! 5xx bodies say nothing internal; the cause chain goes to the log.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orders_domain::FieldError;
use serde::Serialize;

/// Where the problem type URIs live (relative references, resolved against the API's base URL).
pub const PROBLEM_BASE: &str = "/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("the request body does not match the schema: {0}")]
    InvalidBody(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("unknown sku {sku}")]
    UnknownSku { sku: String, pointer: String },
    #[error("{0}")]
    InvalidId(String),
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyMissing,
    #[error("the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    IdempotencyKeyInvalid,
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in flight; retry shortly")]
    IdempotencyKeyInFlight,
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("{sku} is sold out in this region")]
    SoldOut { sku: String, pointer: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the order was not accepted: a dependency is unavailable; retry with the same Idempotency-Key")]
    Unavailable(#[source] anyhow::Error),
    #[error("this region is at capacity and did not start the request; retry after the Retry-After seconds")]
    Overloaded { retry_after_seconds: u64 },
    #[error(
        "client {client} is over its rate limit; retry after the Retry-After seconds (see the RateLimit field)"
    )]
    RateLimited {
        client: String,
        retry_after_seconds: u64,
    },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// A dependency that failed is usually back within a second or two: worth one retry soon.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 1;

/// The API's problem body: the standard members in RFC order, plus `errors` for field problems.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl ApiError {
    /// The status, type slug and title of each problem.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON"),
            InvalidBody(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Request body does not match the schema",
            ),
            Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid fields"),
            UnknownSku { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown-sku", "Unknown SKU"),
            InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid-id", "Invalid id"),
            IdempotencyKeyMissing => (
                StatusCode::BAD_REQUEST,
                "idempotency-key-missing",
                "Idempotency-Key required",
            ),
            IdempotencyKeyInvalid => (
                StatusCode::BAD_REQUEST,
                "idempotency-key-invalid",
                "Invalid Idempotency-Key",
            ),
            IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key reused",
            ),
            IdempotencyKeyInFlight => (
                StatusCode::CONFLICT,
                "idempotency-key-in-flight",
                "Request in flight",
            ),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            SoldOut { .. } => (StatusCode::CONFLICT, "sold-out", "Sold out"),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Rate limited"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let retry_after = match &self {
            ApiError::Unavailable(_) => Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            ApiError::Overloaded {
                retry_after_seconds, ..
            }
            | ApiError::RateLimited {
                retry_after_seconds, ..
            } => Some(*retry_after_seconds),
            _ => None,
        };
        match &self {
            ApiError::Internal(e) | ApiError::Unavailable(e) => {
                tracing::error!(error = format!("{e:#}"), problem = slug, "request failed");
            }
            _ => tracing::debug!(problem = slug, detail = %self, "request refused"),
        }
        let (detail, errors) = match self {
            ApiError::Validation(errors) => {
                ("the request has invalid fields; see errors".to_string(), errors)
            }
            ApiError::UnknownSku { sku, pointer } => (
                format!("unknown sku {sku}"),
                vec![FieldError {
                    pointer,
                    detail: format!("{sku} is not in the catalog"),
                }],
            ),
            ApiError::SoldOut { sku, pointer } => (
                format!("{sku} is sold out in this region"),
                vec![FieldError {
                    pointer,
                    detail: format!("no {sku} left to sell in this region"),
                }],
            ),
            other => (other.to_string(), Vec::new()),
        };
        let body = ProblemBody {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = orders_health::problem::respond(status, &body);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<orders_store::StoreError> for ApiError {
    fn from(e: orders_store::StoreError) -> Self {
        ApiError::Unavailable(e.into())
    }
}

impl From<orders_journal::JournalError> for ApiError {
    fn from(e: orders_journal::JournalError) -> Self {
        ApiError::Unavailable(e.into())
    }
}
