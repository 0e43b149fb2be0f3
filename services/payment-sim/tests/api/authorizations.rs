//! `POST /v1/authorizations` and `GET /v1/authorizations`: creation, idempotency, declines, bad input.

use std::collections::HashSet;

use orders_payment_sim::{Behaviour, Rate};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{detail, fresh_key, is_replay, new_order, problem, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_authorization_echoes_the_order_and_is_listed_for_it() {
    let app = spawn_app().await;
    let order = new_order(2500);

    let response = app.authorize(&fresh_key(), &order).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(!is_replay(&response));
    let authorization: Value = response.json().await.unwrap();
    assert!(authorization["id"].as_str().unwrap().starts_with("auth_"));
    assert_eq!(authorization["status"], "authorized");
    assert_eq!(authorization["order_id"], order["order_id"]);
    assert_eq!(authorization["amount_minor"], 2500);
    assert_eq!(authorization["currency"], "EUR");
    assert!(authorization.get("decline_reason").is_none());
    assert!(authorization["created_at"].is_string());
    assert_eq!(app.list(&order["order_id"]).await, vec![authorization]);
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer_without_a_new_authorization() {
    let app = spawn_app().await;
    let (key, order) = (fresh_key(), new_order(4200));
    let first = app.authorize(&key, &order).await;
    let first: Value = first.json().await.unwrap();

    let again = app.authorize(&key, &order).await;

    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(is_replay(&again));
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.list(&order["order_id"]).await.len(), 1);
    let stats = app.stats().await;
    assert_eq!(stats["authorizations_total"], 1);
    assert_eq!(stats["replays_total"], 1);
}

#[tokio::test]
async fn a_reused_idempotency_key_with_another_body_is_rejected() {
    let app = spawn_app().await;
    let key = fresh_key();
    let order = new_order(1000);
    app.authorize(&key, &order).await;
    let other_amount = json!({"order_id": order["order_id"], "amount_minor": 1001, "currency": "EUR"});

    let response = app.authorize(&key, &other_amount).await;

    let body = problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    )
    .await;
    assert!(detail(&body).contains(&key));
    assert_eq!(app.list(&order["order_id"]).await.len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_create_exactly_one_authorization() {
    // Latency keeps the requests in flight together, as a retrying client's would be.
    let app = spawn_app_with(Behaviour {
        latency_ms: 30,
        latency_jitter_ms: 20,
        decline_rate: Rate::ZERO,
        failure_rate: Rate::ZERO,
    })
    .await;
    let (key, order) = (fresh_key(), new_order(7700));

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, url, key, order) = (
            app.client.clone(),
            app.url("/v1/authorizations"),
            key.clone(),
            order.clone(),
        );
        requests.spawn(async move {
            let response = client
                .post(url)
                .header("Idempotency-Key", key)
                .json(&order)
                .send();
            let response = response.await.unwrap();
            let replayed = is_replay(&response);
            (
                response.status(),
                replayed,
                response.json::<Value>().await.unwrap(),
            )
        });
    }
    let answers = requests.join_all().await;

    assert!(
        answers
            .iter()
            .all(|(status, _, _)| *status == StatusCode::CREATED)
    );
    assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1);
    let ids: HashSet<&str> = answers
        .iter()
        .map(|(_, _, body)| body["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.list(&order["order_id"]).await.len(), 1);
    let stats = app.stats().await;
    assert_eq!(stats["authorizations_total"], 1);
    assert_eq!(stats["replays_total"], 19);
}

#[tokio::test]
async fn amounts_ending_in_13_are_always_declined_as_card_declined() {
    let app = spawn_app().await;

    for amount in [13, 1013, 250_013] {
        let authorization = app.authorized(amount).await;
        assert_eq!(authorization["status"], "declined");
        assert_eq!(authorization["decline_reason"], "card_declined");
    }
    assert_eq!(app.authorized(1014).await["status"], "authorized");
    assert_eq!(app.stats().await["declined_total"], 3);
}

#[tokio::test]
async fn a_decline_rate_of_one_declines_every_other_amount_for_insufficient_funds() {
    let app = spawn_app().await;
    app.configure(json!({"decline_rate": 1.0})).await;

    let authorization = app.authorized(5000).await;

    assert_eq!(authorization["status"], "declined");
    assert_eq!(authorization["decline_reason"], "insufficient_funds");
}

#[tokio::test]
async fn listing_shows_only_the_requested_orders_authorizations() {
    let app = spawn_app().await;
    let mine = app.authorized(100).await;
    app.authorized(200).await;

    assert_eq!(app.list(&mine["order_id"]).await, vec![mine]);
    assert!(app.list(&json!(uuid::Uuid::new_v4())).await.is_empty());
}

#[tokio::test]
async fn bad_authorization_requests_get_a_precise_problem() {
    let app = spawn_app().await;
    let url = app.url("/v1/authorizations");
    let order = new_order(100);

    let no_key = app.client.post(&url).json(&order).send().await.unwrap();
    let body = problem(no_key, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    assert!(detail(&body).contains("Idempotency-Key header is required"));

    let long_key = app.authorize(&"k".repeat(256), &order).await;
    let body = problem(long_key, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    assert!(detail(&body).contains("256 characters"));

    let cases = [
        ("{\"order_id\": ", StatusCode::BAD_REQUEST, "EOF"),
        (
            r#"{"order_id": "nope", "amount_minor": 1, "currency": "EUR"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_id",
        ),
        (
            r#"{"amount_minor": 1, "currency": "EUR"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `order_id`",
        ),
        (
            &order_with(&order, "tip", json!(5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field `tip`",
        ),
        (
            &order_with(&order, "amount_minor", json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_minor must be greater than 0",
        ),
        (
            &order_with(&order, "amount_minor", json!(-5)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_minor must be greater than 0",
        ),
        (
            &order_with(&order, "currency", json!("eur")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "ISO 4217",
        ),
    ];
    for (raw, status, expected) in cases {
        let request = app.client.post(&url).header("Idempotency-Key", fresh_key());
        let response = request
            .header("content-type", "application/json")
            .body(raw.to_owned());
        let body = problem(response.send().await.unwrap(), status, "invalid-request").await;
        assert!(detail(&body).contains(expected), "{raw}: {}", detail(&body));
    }

    let no_json = app
        .client
        .post(&url)
        .header("Idempotency-Key", fresh_key())
        .body("{}");
    problem(
        no_json.send().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid-request",
    )
    .await;

    let bad_filter = app
        .client
        .get(app.url("/v1/authorizations?order_id=42"))
        .send()
        .await
        .unwrap();
    let body = problem(bad_filter, StatusCode::BAD_REQUEST, "invalid-request").await;
    assert!(detail(&body).contains("order_id"), "{}", detail(&body));
    assert_eq!(app.stats().await["authorizations_total"], 0);
}

fn order_with(order: &Value, field: &str, value: Value) -> String {
    let mut order = order.clone();
    order[field] = value;
    order.to_string()
}
