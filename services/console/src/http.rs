//! The console's HTTP surface: the model, series and history as JSON, the model as Prometheus
//! gauges, drain forwarding, its own health, and the page.
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::future::join_all;
use orders_health::model::{HealthModel, render_prometheus};
use orders_health::{CheckResult, HealthReport, Problem, ServiceInfo, Status};
use serde::Serialize;
use tower_http::services::ServeDir;

use crate::{Console, Target, poll};

const HEALTH_JSON: &str = "application/health+json";
/// Draining only flips a flag in each service; a slow answer means something else is wrong.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) fn router(console: Arc<Console>) -> Router {
    let web_dir = console.config.web_dir.clone();
    let not_built = move || async move {
        if web_dir.join("index.html").is_file() {
            (StatusCode::NOT_FOUND, "not found").into_response()
        } else {
            let hint = format!(
                "the console page is not built in {}: run `npm ci && npm run build` in services/console/web",
                web_dir.display()
            );
            (StatusCode::NOT_FOUND, hint).into_response()
        }
    };
    let page = ServeDir::new(&console.config.web_dir).not_found_service(not_built.into_service());
    Router::new()
        .route("/api/health-model", get(health_model))
        .route("/api/series", get(series))
        .route("/api/history", get(history))
        .route("/api/incidents", get(incidents))
        .route("/api/launch", get(launch))
        .route("/api/regions/{region}/drain", post(drain))
        .route("/api/regions/{region}/undrain", post(undrain))
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(console)
        .fallback_service(page)
}

fn no_store(body: impl IntoResponse) -> Response {
    ([(CACHE_CONTROL, "no-store")], body).into_response()
}

/// The model as evaluated, plus what the page needs to draw the tree: which components each flow needs.
#[derive(Serialize)]
struct ModelView<'a> {
    #[serde(flatten)]
    model: &'a HealthModel,
    evaluated_at: DateTime<Utc>,
    flow_components: &'a BTreeMap<String, Vec<String>>,
    /// The failing or warning leaves that explain the rest, worst first.
    root_causes: &'a [crate::causes::RootCause],
    /// Each inner node's own reason (`region:eu`, `flow:eu/place_order`, `component:eu/kafka`, `global`).
    own_reasons: &'a BTreeMap<String, String>,
}

async fn health_model(State(console): State<Arc<Console>>) -> Response {
    let (model, evaluated_at) = console.model();
    let (causes, own_reasons) = console.causes();
    no_store(Json(ModelView {
        model: &model,
        evaluated_at,
        flow_components: console.flows(),
        root_causes: &causes,
        own_reasons: &own_reasons,
    }))
}

async fn incidents(State(console): State<Arc<Console>>) -> Response {
    let mut incidents = console.incidents.lock().unwrap_or_else(PoisonError::into_inner);
    no_store(Json(incidents.view(Utc::now())))
}

async fn launch(State(console): State<Arc<Console>>) -> Response {
    let launch = console.launch.lock().unwrap_or_else(PoisonError::into_inner);
    no_store(Json(launch.view(Utc::now().timestamp_millis())))
}

async fn series(State(console): State<Arc<Console>>) -> Response {
    let mut store = console.series.lock().unwrap_or_else(PoisonError::into_inner);
    no_store(Json(store.view(Utc::now().timestamp_millis())))
}

async fn history(State(console): State<Arc<Console>>) -> Response {
    let mut history = console.history.lock().unwrap_or_else(PoisonError::into_inner);
    no_store(Json(history.view(Utc::now())))
}

async fn metrics(State(console): State<Arc<Console>>) -> Response {
    let (model, _) = console.model();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_prometheus(&model),
    )
        .into_response()
}

async fn live() -> Response {
    (
        [(CONTENT_TYPE, HEALTH_JSON), (CACHE_CONTROL, "no-store")],
        r#"{"status":"pass"}"#,
    )
        .into_response()
}

/// Ready while the poller keeps polling. Red regions do not make the console unready: showing
/// them is its job.
async fn ready(State(console): State<Arc<Console>>) -> Response {
    let stale_after = console.config.health_interval * 5;
    let result = match console.poll_age() {
        Some(age) if age <= stale_after.as_secs_f64() => {
            CheckResult::now(Status::Pass).with_observed((age * 10.0).round() / 10.0, "s")
        }
        Some(age) => CheckResult::now(Status::Fail)
            .with_observed((age * 10.0).round() / 10.0, "s")
            .with_output("the readiness poller has stopped"),
        None => CheckResult::now(Status::Fail).with_output("no readiness round has finished yet"),
    };
    let info = ServiceInfo {
        service_id: "console".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        description: Some("orders operations console".into()),
    };
    let report = HealthReport::from_checks(
        &info,
        BTreeMap::from([("console:pollAge".to_string(), vec![result])]),
        false,
    );
    let code = if report.status.is_serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_vec(&report).unwrap_or_default();
    (
        code,
        [(CONTENT_TYPE, HEALTH_JSON), (CACHE_CONTROL, "no-store")],
        body,
    )
        .into_response()
}

async fn drain(
    State(console): State<Arc<Console>>,
    Path(region): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    forward_to_region(&console, region, "drain", &headers).await
}

async fn undrain(
    State(console): State<Arc<Console>>,
    Path(region): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    forward_to_region(&console, region, "undrain", &headers).await
}

#[derive(Serialize)]
struct AdminView {
    region: String,
    action: &'static str,
    services: Vec<ServiceAnswer>,
}

#[derive(Serialize)]
struct ServiceAnswer {
    service: String,
    url: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Passes the caller's Authorization header on to every service of the region: the console never
/// holds the operator token itself, so it cannot leak it or act on its own.
async fn forward_to_region(
    console: &Console,
    region: String,
    action: &'static str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let targets: Vec<&Target> = console
        .config
        .targets
        .iter()
        .filter(|t| t.region == region)
        .collect();
    if targets.is_empty() {
        return Err(ApiError::UnknownRegion { region });
    }
    let authorization = headers.get(AUTHORIZATION).ok_or(ApiError::MissingToken)?;
    let services = join_all(
        targets
            .iter()
            .map(|t| forward(&console.client, t, action, authorization)),
    )
    .await;
    // Show the effect at once instead of at the next tick.
    console.poll_now.notify_one();
    let all_ok = services.iter().all(|s| s.ok);
    tracing::info!(%region, action, all_ok, "forwarded operator action");
    Ok(admin_answer(AdminView {
        region,
        action,
        services,
    }))
}

/// 200 with every service's answer when all of them did it; otherwise an RFC 9457 problem (401
/// when a service refused the token, 502 for any other failure) that still lists every answer.
fn admin_answer(view: AdminView) -> Response {
    if view.services.iter().all(|s| s.ok) {
        return Json(view).into_response();
    }
    let rejected = view.services.iter().any(|s| matches!(s.status, Some(401 | 403)));
    let (status, title, detail) = if rejected {
        (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            format!("a service of region {} refused the operator token", view.region),
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            "Bad Gateway",
            format!("not every service of region {} did {}", view.region, view.action),
        )
    };
    orders_health::problem::respond(
        status,
        &AdminProblem {
            type_uri: "about:blank",
            title,
            status: status.as_u16(),
            detail,
            view,
        },
    )
}

/// A failed operator action: the standard problem members plus the action's own answer.
#[derive(Serialize)]
struct AdminProblem {
    #[serde(rename = "type")]
    type_uri: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(flatten)]
    view: AdminView,
}

async fn forward(
    client: &reqwest::Client,
    target: &Target,
    action: &str,
    authorization: &HeaderValue,
) -> ServiceAnswer {
    let url = format!("{}/admin/{action}", target.url);
    let mut answer = ServiceAnswer {
        service: target.service.clone(),
        url: url.clone(),
        ok: false,
        status: None,
        body: None,
        error: None,
    };
    let sent = client
        .post(&url)
        .header(AUTHORIZATION, authorization.clone())
        .timeout(ADMIN_TIMEOUT)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            answer.ok = status.is_success();
            answer.status = Some(status.as_u16());
            answer.body = Some(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)));
        }
        Err(error) => answer.error = Some(poll::describe(&error, ADMIN_TIMEOUT)),
    }
    answer
}

/// The console API's own failures, as RFC 9457 problem details.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("no region {region:?} is configured")]
    UnknownRegion { region: String },
    #[error("an operator bearer token is required; the console passes it on and never keeps it")]
    MissingToken,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            ApiError::UnknownRegion { .. } => (StatusCode::NOT_FOUND, "Unknown region"),
            ApiError::MissingToken => (StatusCode::UNAUTHORIZED, "Unauthorized"),
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
mod tests {
    use axum::http::header::WWW_AUTHENTICATE;

    use super::*;

    fn answer(service: &str, ok: bool, status: Option<u16>) -> ServiceAnswer {
        ServiceAnswer {
            service: service.into(),
            url: format!("http://127.0.0.1:1/admin/drain/{service}"),
            ok,
            status,
            body: None,
            error: status.is_none().then(|| "connection refused".into()),
        }
    }

    async fn render(services: Vec<ServiceAnswer>) -> (StatusCode, HeaderMap, serde_json::Value) {
        let view = AdminView {
            region: "eu".into(),
            action: "drain",
            services,
        };
        let (parts, body) = admin_answer(view).into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (
            parts.status,
            parts.headers,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_token_a_service_refuses_is_a_401_problem_listing_every_answer() {
        let (status, headers, body) = render(vec![
            answer("api", false, Some(401)),
            answer("worker", false, Some(401)),
        ])
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[CONTENT_TYPE], orders_health::problem::PROBLEM_JSON);
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["status"], 401);
        assert_eq!(body["type"], "about:blank");
        assert_eq!(body["title"], "Unauthorized");
        assert_eq!(body["services"][1]["status"], 401, "{body}");
    }

    #[tokio::test]
    async fn a_service_that_did_not_answer_is_a_502_problem() {
        let (status, headers, body) = render(vec![
            answer("api", true, Some(200)),
            answer("worker", false, None),
        ])
        .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(headers[CONTENT_TYPE], orders_health::problem::PROBLEM_JSON);
        assert_eq!(body["status"], 502);
        assert_eq!(body["services"][1]["error"], "connection refused");
    }

    #[tokio::test]
    async fn an_action_every_service_did_is_a_200_with_the_answers() {
        let (status, headers, body) = render(vec![
            answer("api", true, Some(200)),
            answer("worker", true, Some(200)),
        ])
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(body["region"], "eu");
        assert!(body.get("type").is_none());
    }

    #[tokio::test]
    async fn a_missing_token_is_a_401_problem() {
        let (parts, _) = ApiError::MissingToken.into_response().into_parts();
        assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
        assert_eq!(parts.headers[CONTENT_TYPE], orders_health::problem::PROBLEM_JSON);
    }
}
