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
    #[error("page_token is not a token this listing issued; start again without one")]
    InvalidPageToken,
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
            InvalidPageToken => (
                StatusCode::BAD_REQUEST,
                "invalid-page-token",
                "Invalid page token",
            ),
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
            ApiError::Internal(e) | ApiError::Unavailable(e) => match order_id_of(e) {
                Some(order_id) => tracing::error!(
                    error = format!("{e:#}"),
                    problem = slug,
                    %order_id,
                    "request failed"
                ),
                None => tracing::error!(error = format!("{e:#}"), problem = slug, "request failed"),
            },
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

/// The order a failed store or journal call was about, when its error says.
fn order_id_of(e: &anyhow::Error) -> Option<uuid::Uuid> {
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<orders_store::StoreError>() {
            e.order_id()
        } else {
            cause
                .downcast_ref::<orders_journal::JournalError>()
                .and_then(orders_journal::JournalError::order_id)
        }
    })
}

/// A transient store error is 503 with `Retry-After`; a permanent one is 500, since a retry
/// would only meet it again.
impl From<orders_store::StoreError> for ApiError {
    fn from(e: orders_store::StoreError) -> Self {
        if e.is_transient() {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<orders_journal::JournalError> for ApiError {
    fn from(e: orders_journal::JournalError) -> Self {
        if e.is_transient() {
            ApiError::Unavailable(e.into())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
    use orders_journal::JournalError;
    use orders_store::StoreError;
    use uuid::Uuid;

    use super::*;

    async fn render(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let (parts, body) = error.into_response().into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    fn timeout() -> StoreError {
        StoreError::Query {
            what: "read stream",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        }
    }

    fn corrupt(order_id: Uuid) -> StoreError {
        StoreError::Decode {
            order_id,
            detail: "expected value at line 1 column 1".into(),
        }
    }

    #[tokio::test]
    async fn a_page_token_the_api_did_not_issue_is_a_400_problem() {
        let (status, headers, body) = render(ApiError::InvalidPageToken).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[CONTENT_TYPE], orders_health::problem::PROBLEM_JSON);
        assert_eq!(body["type"], "/problems/invalid-page-token");
        assert_eq!(body["status"], 400);
    }

    #[tokio::test]
    async fn a_transient_store_or_log_error_is_a_503_with_retry_after() {
        for error in [
            ApiError::from(timeout()),
            ApiError::from(JournalError::Store(timeout())),
            ApiError::from(JournalError::OutboxLate {
                event_id: Uuid::now_v7(),
                late_ms: 9000,
            }),
        ] {
            let (status, headers, body) = render(error).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(headers[RETRY_AFTER], "1");
            assert_eq!(body["type"], "/problems/unavailable");
        }
    }

    #[tokio::test]
    async fn a_permanent_store_or_log_error_is_a_500_that_tells_nothing_internal() {
        let order_id = Uuid::now_v7();
        let encode = JournalError::Encode {
            event_id: Uuid::now_v7(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        for error in [
            ApiError::from(corrupt(order_id)),
            ApiError::from(JournalError::Store(corrupt(order_id))),
            ApiError::from(encode),
        ] {
            let (status, headers, body) = render(error).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(headers.get(RETRY_AFTER).is_none());
            assert_eq!(body["type"], "/problems/internal");
            assert!(!body.to_string().contains(&order_id.to_string()), "{body}");
        }
    }

    #[test]
    fn the_order_of_a_failed_call_is_found_for_the_log() {
        let order_id = Uuid::now_v7();
        let error = anyhow::Error::from(JournalError::Store(corrupt(order_id)));
        assert_eq!(order_id_of(&error), Some(order_id));
        assert_eq!(order_id_of(&anyhow::Error::from(timeout())), None);
    }
}
