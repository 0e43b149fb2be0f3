//! The health endpoints every service mounts: liveness, cached readiness, and the operator's drain switch.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tracing::warn;

use crate::problem::Problem;
use crate::report::HealthReport;
use crate::runner::HealthChecks;
use crate::secret::Secret;

pub const HEALTH_JSON: &str = "application/health+json";
pub use crate::problem::PROBLEM_JSON;

/// `GET /health/live` and `GET|HEAD /health/ready` (axum answers HEAD from the GET route, without body).
pub fn routes(checks: HealthChecks) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(checks)
}

/// `POST /admin/drain` and `POST /admin/undrain`, guarded by the operator token. Kept apart from
/// `routes` so a service can mount it on an address the edges do not expose.
pub fn admin_routes(checks: HealthChecks, ops_token: Secret) -> Router {
    let state = AdminState {
        checks,
        ops_token: Arc::new(ops_token),
    };
    Router::new()
        .route("/admin/drain", post(drain))
        .route("/admin/undrain", post(undrain))
        .with_state(state)
}

/// Liveness answers whether the process can still answer at all. It calls no dependency:
/// a database outage must not turn into a restart storm.
async fn live() -> Response {
    (
        [(CONTENT_TYPE, HEALTH_JSON), (CACHE_CONTROL, "no-store")],
        r#"{"status":"pass"}"#,
    )
        .into_response()
}

async fn ready(State(checks): State<HealthChecks>) -> Response {
    let report = checks.report();
    let code = if report.status.is_serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    health_json(code, &report)
}

fn health_json(code: StatusCode, report: &HealthReport) -> Response {
    // The report holds only strings, numbers and timestamps, so serializing it cannot fail.
    let body = serde_json::to_vec(report).unwrap_or_default();
    // The draft recommends a freshness lifetime; one second matches the edges' probe interval and
    // the checks are cached anyway, so a longer one would only delay failover.
    (
        code,
        [(CONTENT_TYPE, HEALTH_JSON), (CACHE_CONTROL, "max-age=1")],
        body,
    )
        .into_response()
}

#[derive(Clone)]
struct AdminState {
    checks: HealthChecks,
    ops_token: Arc<Secret>,
}

impl AdminState {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), AdminError> {
        let token = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match token {
            Some(token) if self.ops_token.matches(token.as_bytes()) => Ok(()),
            _ => {
                warn!("rejected admin request without a valid operator token");
                Err(AdminError::Unauthorized)
            }
        }
    }
}

async fn drain(State(state): State<AdminState>, headers: HeaderMap) -> Result<Response, AdminError> {
    state.authorize(&headers)?;
    state.checks.drain();
    Ok(health_json(StatusCode::OK, &state.checks.report()))
}

async fn undrain(State(state): State<AdminState>, headers: HeaderMap) -> Result<Response, AdminError> {
    state.authorize(&headers)?;
    state.checks.undrain();
    Ok(health_json(StatusCode::OK, &state.checks.report()))
}

/// The admin API's failures, answered as RFC 9457 problem details.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("a valid operator bearer token is required")]
    Unauthorized,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, title) = match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "Unauthorized"),
        };
        Problem {
            status,
            type_uri: "about:blank",
            title,
            detail: &self.to_string(),
        }
        .into_response()
    }
}

#[cfg(test)]
mod tests;
