//! The sandbox's own surface: failure injection, latency, runtime config, stats, health, shutdown.

use std::time::{Duration, Instant};

use orders_payment_sim::{Behaviour, Rate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{detail, fresh_key, is_replay, new_order, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_injected_failure_records_nothing_and_a_retry_with_the_same_key_succeeds() {
    let app = spawn_app().await;
    app.configure(json!({"failure_rate": 1.0})).await;
    let (key, order) = (fresh_key(), new_order(900));

    let failed = app.authorize(&key, &order).await;

    let body = problem(failed, StatusCode::SERVICE_UNAVAILABLE, "injected-failure").await;
    assert!(detail(&body).contains("nothing was recorded"));
    assert!(app.list(&order["order_id"]).await.is_empty());
    let stats = app.stats().await;
    assert_eq!(stats["failures_injected_total"], 1);
    assert_eq!(stats["authorizations_total"], 0);

    app.configure(json!({"failure_rate": 0.0})).await;
    let retried = app.authorize(&key, &order).await;

    assert_eq!(retried.status(), StatusCode::CREATED);
    assert!(!is_replay(&retried));
    assert_eq!(app.list(&order["order_id"]).await.len(), 1);
}

#[tokio::test]
async fn voids_fail_on_injection_too_and_leave_the_authorization_as_it_was() {
    let app = spawn_app().await;
    let authorization = app.authorized(900).await;
    let id = authorization["id"].as_str().unwrap();
    app.configure(json!({"failure_rate": 1.0})).await;

    let failed = app.void(id, &fresh_key()).await;

    problem(failed, StatusCode::SERVICE_UNAVAILABLE, "injected-failure").await;
    assert_eq!(app.list(&authorization["order_id"]).await, vec![authorization]);
}

#[tokio::test]
async fn latency_is_added_before_answering() {
    let app = spawn_app_with(Behaviour {
        latency_ms: 120,
        latency_jitter_ms: 0,
        decline_rate: Rate::ZERO,
        failure_rate: Rate::ZERO,
    })
    .await;

    let started = Instant::now();
    app.authorized(100).await;

    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn config_changes_at_runtime_and_keeps_the_fields_left_out() {
    let app = spawn_app().await;
    let url = app.url("/sim/config");

    let changed = app.configure(json!({"latency_ms": 1, "decline_rate": 0.5})).await;
    assert_eq!(changed.status(), StatusCode::OK);

    let current: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    let expected = json!({"latency_ms": 1, "latency_jitter_ms": 0, "decline_rate": 0.5, "failure_rate": 0.0});
    assert_eq!(current, expected);
}

#[tokio::test]
async fn invalid_config_changes_are_refused_and_change_nothing() {
    let app = spawn_app().await;

    let cases = [
        (json!({"failure_rate": 1.5}), "between 0 and 1"),
        (json!({"decline_rate": -0.1}), "between 0 and 1"),
        (json!({"latency_ms": -1}), "latency_ms"),
        (json!({"listen": "0.0.0.0:1"}), "unknown field `listen`"),
    ];
    for (change, expected) in cases {
        let response = app.configure(change.clone()).await;
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid-request").await;
        assert!(detail(&body).contains(expected), "{change}: {}", detail(&body));
    }
    let current: Value = app
        .client
        .get(app.url("/sim/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["failure_rate"], 0.0);
}

#[tokio::test]
async fn stats_count_authorizations_declines_voids_replays_and_failures() {
    let app = spawn_app().await;
    let voided = app.authorized(100).await;
    app.void(voided["id"].as_str().unwrap(), &fresh_key()).await;
    app.authorized(113).await;
    let (key, order) = (fresh_key(), new_order(100));
    app.authorize(&key, &order).await;
    app.authorize(&key, &order).await;
    // A second authorization for one order, with a new key: what the system must never do.
    app.authorize(&fresh_key(), &order).await;
    app.configure(json!({"failure_rate": 1.0})).await;
    app.authorize(&fresh_key(), &new_order(100)).await;

    let stats = app.stats().await;

    let expected = json!({
        "authorizations_total": 4,
        "declined_total": 1,
        "voided_total": 1,
        "replays_total": 1,
        "failures_injected_total": 1,
        "distinct_orders_authorized": 3,
        "orders_with_more_than_one_authorization": [order["order_id"]],
    });
    assert_eq!(stats, expected);
}

#[tokio::test]
async fn health_endpoints_pass_with_the_health_media_type() {
    let app = spawn_app().await;

    for path in ["/health/live", "/health/ready"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/health+json");
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "pass"}));
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json_and_every_answer_has_a_request_id() {
    let app = spawn_app().await;

    let missing = app.client.get(app.url("/v2/nothing")).send().await.unwrap();
    assert!(missing.headers().contains_key("x-request-id"));
    problem(missing, StatusCode::NOT_FOUND, "no-route").await;
    let wrong_method = app.client.delete(app.url("/sim/stats")).send().await.unwrap();
    problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
}

#[tokio::test]
async fn the_server_stops_gracefully_when_shutdown_is_cancelled() {
    let app = spawn_app().await;
    let address = app.url("/health/live");
    let client = app.client.clone();
    app.authorized(100).await;

    app.stop().await.unwrap();

    assert!(client.get(address).send().await.is_err());
}
