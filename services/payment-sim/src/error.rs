//! The API's errors as RFC 9457 problem+json: a small closed set of problem types.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ledger::LedgerError;
use crate::model::Status;

/// Problem types are URNs: stable names to match on, not pages to fetch.
const PROBLEM_TYPE_PREFIX: &str = "urn:orders:payment-sim:problem:";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    /// A body or query the extractor refused; its status says why (400, 413, 415 or 422).
    #[error("{detail}")]
    InvalidRequest { status: StatusCode, detail: String },
    #[error(
        "idempotency key {key:?} was first used with a different request; use a new key for a new request"
    )]
    KeyReused { key: String },
    #[error("no authorization with id {id:?}")]
    AuthorizationNotFound { id: String },
    #[error("authorization {id} is {status} and cannot be voided")]
    NotVoidable { id: String, status: Status },
    #[error(
        "the sandbox injected a failure (failure_rate {failure_rate}); nothing was recorded, so retrying with the same idempotency key is safe"
    )]
    InjectedFailure { failure_rate: f64 },
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
}

impl ApiError {
    fn problem(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::InvalidIdempotencyKey(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-idempotency-key",
                "Missing or invalid Idempotency-Key header",
            ),
            Self::InvalidRequest { status, .. } => (*status, "invalid-request", "Invalid request"),
            Self::KeyReused { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused with a different request",
            ),
            Self::AuthorizationNotFound { .. } => (
                StatusCode::NOT_FOUND,
                "authorization-not-found",
                "Authorization not found",
            ),
            Self::NotVoidable { .. } => (
                StatusCode::CONFLICT,
                "authorization-not-voidable",
                "Authorization cannot be voided",
            ),
            Self::InjectedFailure { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "injected-failure",
                "Provider temporarily unavailable",
            ),
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "no-route", "No such route"),
            Self::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::KeyReused { key } => Self::KeyReused { key: key.to_string() },
            LedgerError::NotFound { id } => Self::AuthorizationNotFound { id: id.to_string() },
            LedgerError::NotVoidable { id, status } => Self::NotVoidable {
                id: id.to_string(),
                status,
            },
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::InvalidRequest {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::InvalidRequest {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.problem();
        let body = json!({
            "type": format!("{PROBLEM_TYPE_PREFIX}{kind}"),
            "title": title,
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        let content_type = [(header::CONTENT_TYPE, "application/problem+json")];
        (status, content_type, body.to_string()).into_response()
    }
}
