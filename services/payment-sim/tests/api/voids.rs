//! `POST /v1/authorizations/{id}/void`: voiding once, idempotently, and refusing what cannot be voided.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{detail, fresh_key, is_replay, problem, spawn_app};

#[tokio::test]
async fn voiding_an_authorization_marks_it_voided() {
    let app = spawn_app().await;
    let authorization = app.authorized(3000).await;
    let id = authorization["id"].as_str().unwrap();

    let response = app.void(id, &fresh_key()).await;

    assert_eq!(response.status(), StatusCode::OK);
    let voided: Value = response.json().await.unwrap();
    assert_eq!(voided["status"], "voided");
    assert_eq!(voided["id"], id);
    assert!(voided["voided_at"].is_string());
    assert_eq!(app.list(&authorization["order_id"]).await, vec![voided]);
    assert_eq!(app.stats().await["voided_total"], 1);
}

#[tokio::test]
async fn voiding_again_answers_the_same_and_voids_once() {
    let app = spawn_app().await;
    let authorization = app.authorized(3000).await;
    let id = authorization["id"].as_str().unwrap();
    let key = fresh_key();
    let first: Value = app.void(id, &key).await.json().await.unwrap();

    let same_key = app.void(id, &key).await;
    assert_eq!(same_key.status(), StatusCode::OK);
    assert!(is_replay(&same_key));
    assert_eq!(same_key.json::<Value>().await.unwrap(), first);

    let other_key = app.void(id, &fresh_key()).await;
    assert_eq!(other_key.status(), StatusCode::OK);
    assert!(!is_replay(&other_key));
    assert_eq!(other_key.json::<Value>().await.unwrap(), first);

    let stats = app.stats().await;
    assert_eq!(stats["voided_total"], 1);
    assert_eq!(stats["replays_total"], 1);
}

#[tokio::test]
async fn voiding_an_unknown_authorization_is_not_found() {
    let app = spawn_app().await;

    for id in [format!("auth_{}", uuid::Uuid::new_v4()), "not-an-id".to_owned()] {
        let response = app.void(&id, &fresh_key()).await;
        let body = problem(response, StatusCode::NOT_FOUND, "authorization-not-found").await;
        assert!(detail(&body).contains(&id));
    }
}

#[tokio::test]
async fn voiding_a_declined_authorization_is_a_conflict() {
    let app = spawn_app().await;
    let declined = app.authorized(1013).await;
    let id = declined["id"].as_str().unwrap();

    let response = app.void(id, &fresh_key()).await;

    let body = problem(response, StatusCode::CONFLICT, "authorization-not-voidable").await;
    assert!(detail(&body).contains("declined"), "{}", detail(&body));
    assert_eq!(app.list(&declined["order_id"]).await, vec![declined]);
}

#[tokio::test]
async fn a_void_needs_an_idempotency_key_of_its_own() {
    let app = spawn_app().await;
    let authorization = app.authorized(3000).await;
    let id = authorization["id"].as_str().unwrap();
    let url = app.url(&format!("/v1/authorizations/{id}/void"));

    let no_key = app.client.post(url).send().await.unwrap();
    problem(no_key, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;

    let authorize_key = fresh_key();
    let order = crate::helpers::new_order(500);
    app.authorize(&authorize_key, &order).await;
    let reused = app.void(id, &authorize_key).await;
    problem(reused, StatusCode::UNPROCESSABLE_ENTITY, "idempotency-key-reused").await;
    assert_eq!(
        app.list(&authorization["order_id"]).await[0]["status"],
        "authorized"
    );
}
