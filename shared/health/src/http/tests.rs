//! Tests of the health and admin routes through the router, as an edge or an operator would call them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{Method, Request};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::*;
use crate::report::{CheckResult, ServiceInfo, Status};

const HOUR: Duration = Duration::from_secs(3600);
const TOKEN: &str = "ops-token-for-tests";

/// A registry with one check that always reports `status`, already run once.
async fn checks_reporting(status: Status) -> (HealthChecks, Arc<AtomicU64>) {
    let info = ServiceInfo {
        service_id: "api-eu".into(),
        ..ServiceInfo::default()
    };
    let checks = HealthChecks::new(info, CancellationToken::new());
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    checks
        .register("kafka:connections", HOUR, HOUR, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { vec![CheckResult::now(status)] }
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while checks.runs("kafka:connections") == 0 {
        assert!(Instant::now() < deadline, "the check never ran");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (checks, calls)
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, token);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn admin_app(checks: &HealthChecks) -> Router {
    routes(checks.clone()).merge(admin_routes(checks.clone(), Secret::new(TOKEN)))
}

#[tokio::test]
async fn liveness_passes_even_when_every_dependency_fails() {
    let (checks, calls) = checks_reporting(Status::Fail).await;
    let (code, headers, body) = call(&routes(checks), Method::GET, "/health/live", None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], HEALTH_JSON);
    assert_eq!(body, r#"{"status":"pass"}"#);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn readiness_answers_200_for_pass_and_warn_and_503_for_fail() {
    for (status, expected) in [
        (Status::Pass, StatusCode::OK),
        (Status::Warn, StatusCode::OK),
        (Status::Fail, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let (checks, _) = checks_reporting(status).await;
        let (code, headers, body) = call(&routes(checks), Method::GET, "/health/ready", None).await;
        assert_eq!(code, expected, "{status:?}");
        assert_eq!(headers[CONTENT_TYPE], HEALTH_JSON);
        assert_eq!(headers[CACHE_CONTROL], "max-age=1");
        let report: HealthReport = serde_json::from_str(&body).unwrap();
        assert_eq!(report.status, status);
        assert_eq!(report.service_id, "api-eu");
    }
}

#[tokio::test]
async fn head_readiness_carries_the_status_code_without_a_body() {
    let (checks, _) = checks_reporting(Status::Fail).await;
    let (code, headers, body) = call(&routes(checks), Method::HEAD, "/health/ready", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[CONTENT_TYPE], HEALTH_JSON);
    assert!(body.is_empty());
}

#[tokio::test]
async fn a_thousand_readiness_requests_never_call_the_check() {
    let (checks, calls) = checks_reporting(Status::Pass).await;
    let app = routes(checks.clone());
    for _ in 0..1000 {
        let (code, _, _) = call(&app, Method::GET, "/health/ready", None).await;
        assert_eq!(code, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(checks.runs("kafka:connections"), 1);
}

#[tokio::test]
async fn admin_routes_reject_a_missing_or_wrong_token_with_problem_json() {
    let (checks, _) = checks_reporting(Status::Pass).await;
    let app = admin_app(&checks);
    for token in [
        None,
        Some("Bearer wrong"),
        Some(TOKEN),
        Some("Basic b3BzOnRva2Vu"),
    ] {
        let (code, headers, body) = call(&app, Method::POST, "/admin/drain", token).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(headers[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], 401);
        assert!(!body.contains(TOKEN));
    }
    assert!(!checks.is_draining());
}

#[tokio::test]
async fn an_operator_drains_and_undrains_with_the_bearer_token() {
    let (checks, _) = checks_reporting(Status::Pass).await;
    let app = admin_app(&checks);
    let bearer = format!("Bearer {TOKEN}");

    let (code, headers, body) = call(&app, Method::POST, "/admin/drain", Some(&bearer)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], HEALTH_JSON);
    let report: HealthReport = serde_json::from_str(&body).unwrap();
    assert!(report.is_draining());
    let (code, _, _) = call(&app, Method::GET, "/health/ready", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);

    let lowercase_scheme = format!("bearer {TOKEN}");
    let (code, _, body) = call(&app, Method::POST, "/admin/undrain", Some(&lowercase_scheme)).await;
    assert_eq!(code, StatusCode::OK);
    let report: HealthReport = serde_json::from_str(&body).unwrap();
    assert_eq!(report.status, Status::Pass);
    let (code, _, _) = call(&app, Method::GET, "/health/ready", None).await;
    assert_eq!(code, StatusCode::OK);
}

#[tokio::test]
async fn admin_routes_accept_only_post() {
    let (checks, _) = checks_reporting(Status::Pass).await;
    let (code, _, _) = call(&admin_app(&checks), Method::GET, "/admin/drain", None).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
}
