//! The API's contract against the running stack: every reply matches schemas/openapi.yaml (the
//! client checks each one), bad input is refused precisely and writes nothing, placement is
//! idempotent across regions, reads agree across regions, and cancels converge.
use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_domain::order_id_for;
use orders_tests::api::{ApiClient, CLIENT_ID, Reply, fresh_key, openapi, sample_order};
use orders_tests::{eventually, region, repo_root, session};
use reqwest::Method;
use scylla::client::session::Session;
use serde_json::{Value, json};
use uuid::Uuid;

fn eu() -> ApiClient {
    ApiClient::new("eu")
}

fn us() -> ApiClient {
    ApiClient::new("us")
}

async fn count(session: &Session, cql: &str, values: impl scylla::serialize::row::SerializeRow) -> i64 {
    let rows = session
        .query_unpaged(cql, values)
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"))
        .into_rows_result()
        .expect("rows");
    rows.single_row::<(i64,)>().expect("one count").0
}

/// The placement that `key` (if any) would have made for `customer` left no trace: no order in
/// either region's API, and no event, idempotency record or customer row in the database.
async fn assert_nothing_written(key: Option<&str>, customer: Uuid) {
    let db = session(&region("eu")).await;
    if let Some(key) = key {
        let order_id = order_id_for(CLIENT_ID, key);
        for api in [eu(), us()] {
            api.get_order(order_id).await.assert_problem(404, "not-found");
        }
        let events = "SELECT count(*) FROM orders.order_events WHERE order_id = ?";
        assert_eq!(count(&db, events, (order_id,)).await, 0, "events of {order_id}");
        let claims = "SELECT count(*) FROM orders.idempotency_claims WHERE client_id = ? AND key = ?";
        assert_eq!(
            count(&db, claims, (CLIENT_ID, key)).await,
            0,
            "idempotency of {key}"
        );
    }
    let rows = "SELECT count(*) FROM orders.orders_by_customer WHERE customer_id = ?";
    assert_eq!(
        count(&db, rows, (customer,)).await,
        0,
        "orders of customer {customer}"
    );
}

/// Places `body` (built for a fresh customer) in eu with a fresh key, expects the problem, and
/// checks that nothing was written.
async fn assert_placement_refused(edit: impl FnOnce(&mut Value), status: u16, slug: &str) -> Reply {
    let (key, customer) = (fresh_key(), Uuid::new_v4());
    let mut body = sample_order(customer);
    edit(&mut body);
    let reply = eu().place(&key, &body).await;
    reply.assert_problem(status, slug);
    assert_nothing_written(Some(&key), customer).await;
    reply
}

/// An edit of a request body.
type Edit = fn(&mut Value);

fn pointers(reply: &Reply) -> Vec<&str> {
    reply.json["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["pointer"].as_str()).collect())
        .unwrap_or_default()
}

fn event_types(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_string())
        .collect()
}

fn count_of(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

// ---- the spec ----

/// `(METHOD, path)` of every `.route(...)` in a router source file.
fn routes_in(file: &str) -> HashSet<(String, String)> {
    let source = std::fs::read_to_string(repo_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut out = HashSet::new();
    for chunk in source.split(".route(").skip(1) {
        // The call's arguments: up to the next chained call, which starts a line with '.'.
        let mut lines = chunk.lines();
        let mut call = lines.next().unwrap_or("").to_string();
        call.extend(lines.take_while(|l| !l.trim_start().starts_with('.')));
        let route = call.split('"').nth(1).expect("a path literal after .route(");
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                let before = call[..i].chars().next_back();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            });
            if called {
                out.insert((method.to_ascii_uppercase(), route.to_string()));
            }
        }
    }
    out
}

/// What the API's router serves: its own routes plus those it merges from orders-health.
fn router_operations() -> HashSet<(String, String)> {
    let mut routes = routes_in("services/api/src/routes/mod.rs");
    let merged = std::fs::read_to_string(repo_root().join("services/api/src/routes/mod.rs")).unwrap();
    if merged.contains("orders_health::") {
        routes.extend(routes_in("shared/health/src/http.rs"));
    }
    routes
}

#[test]
fn the_spec_has_no_path_the_router_lacks_and_documents_every_v1_route() {
    let router = router_operations();
    assert!(router.len() >= 7, "parsed routes: {router:?}");
    let spec: HashSet<(String, String)> = openapi().operations().into_iter().collect();
    let unrouted: Vec<_> = spec.difference(&router).collect();
    assert!(unrouted.is_empty(), "spec paths the router lacks: {unrouted:?}");
    let undocumented: Vec<_> = router
        .difference(&spec)
        .filter(|(_, path)| path.starts_with("/v1/"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "/v1 routes missing from the spec: {undocumented:?}"
    );
}

#[test]
fn every_schema_in_the_spec_is_a_valid_2020_12_schema() {
    fn walk<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "schema" || at == "/components/schemas" {
                        out.push((format!("{at}/{k}"), v));
                    } else {
                        walk(v, format!("{at}/{k}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut schemas = Vec::new();
    walk(&openapi().doc, String::new(), &mut schemas);
    assert!(schemas.len() > 40, "found only {} schemas", schemas.len());
    for (at, schema) in schemas {
        assert!(jsonschema::meta::is_valid(schema), "invalid schema at {at}");
    }
}

#[test]
fn the_request_schema_accepts_the_sample_order_and_refuses_what_the_server_refuses_by_shape() {
    let check = |body: &Value| openapi().check_request(&Method::POST, "/v1/orders", body);
    let sample = sample_order(Uuid::new_v4());
    check(&sample).unwrap();
    let refused: [(&str, Edit); 10] = [
        ("unknown field", |b| b["coupon"] = json!("X")),
        ("unknown nested field", |b| b["items"][0]["price"] = json!(1)),
        ("missing field", |b| {
            drop(b.as_object_mut().unwrap().remove("items"))
        }),
        ("wrong type", |b| b["items"][0]["quantity"] = json!("2")),
        ("quantity 0", |b| b["items"][0]["quantity"] = json!(0)),
        ("quantity 1001", |b| b["items"][0]["quantity"] = json!(1001)),
        ("empty items", |b| b["items"] = json!([])),
        ("bad country", |b| b["shipping_address"]["country"] = json!("de")),
        ("blank name", |b| b["shipping_address"]["name"] = json!("  ")),
        ("control character", |b| {
            b["shipping_address"]["city"] = json!("Ber\u{7}lin")
        }),
    ];
    for (case, edit) in refused {
        let mut body = sample.clone();
        edit(&mut body);
        assert!(
            check(&body).is_err(),
            "the spec accepts a body with {case}: {body}"
        );
    }
    let cancel = |body: Value| openapi().check_request(&Method::POST, "/v1/orders/{id}/cancel", &body);
    cancel(json!({ "reason": "changed my mind" })).unwrap();
    assert!(cancel(json!({ "reason": "x".repeat(501) })).is_err());
}

fn altered(reply: &Reply, edit: impl FnOnce(&mut Reply)) -> Reply {
    let mut copy = reply.clone();
    edit(&mut copy);
    copy
}

#[tokio::test]
async fn the_contract_check_catches_replies_that_break_the_spec() {
    let api = eu();
    let placed = api.place(&fresh_key(), &sample_order(Uuid::new_v4())).await;
    let events = api.events(placed.order_id()).await;
    let refused = api.customer_orders(Uuid::new_v4(), "limit=0").await;
    let unauthorized = api
        .send("/v1/catalog", api.anonymous(Method::GET, "/v1/catalog"))
        .await;
    let broken = [
        ("an extra field", altered(&placed, |r| r.json["extra"] = json!(1))),
        (
            "an unknown status",
            altered(&placed, |r| r.json["status"] = json!("shipped")),
        ),
        (
            "a missing field",
            altered(&placed, |r| drop(r.json.as_object_mut().unwrap().remove("total"))),
        ),
        (
            "an undocumented status code",
            altered(&placed, |r| r.status = 202),
        ),
        (
            "another content type",
            altered(&placed, |r| {
                drop(r.headers.insert("content-type", "text/plain".parse().unwrap()))
            }),
        ),
        (
            "no Location header",
            altered(&placed, |r| drop(r.headers.remove("location"))),
        ),
        (
            "an event of no known type",
            altered(&events, |r| r.json["events"][0]["type"] = json!("OrderShipped")),
        ),
        (
            "an event with an extra payload field",
            altered(&events, |r| r.json["events"][0]["payload"]["x"] = json!(1)),
        ),
        (
            "a validation problem without errors",
            altered(&refused, |r| {
                drop(r.json.as_object_mut().unwrap().remove("errors"))
            }),
        ),
        (
            "a problem type the status does not allow",
            altered(&unauthorized, |r| r.json["type"] = json!("/problems/not-found")),
        ),
        (
            "a 401 without WWW-Authenticate",
            altered(&unauthorized, |r| drop(r.headers.remove("www-authenticate"))),
        ),
    ];
    for (what, reply) in broken {
        assert!(
            openapi().check_reply(&reply).is_err(),
            "a reply with {what} passes the check"
        );
    }
}

#[tokio::test]
async fn every_endpoint_answers_as_the_spec_says() {
    // ApiClient::send checks every reply against the spec; here each documented outcome that a
    // test can trigger is triggered at least once.
    let (eu, us) = (eu(), us());
    let (key, customer) = (fresh_key(), Uuid::new_v4());
    assert_eq!(eu.live().await.status, 200);
    let catalog = eu.catalog().await;
    assert_eq!(catalog.status, 200);
    assert!(!catalog.json["items"].as_array().unwrap().is_empty());

    let placed = eu.place(&key, &sample_order(customer)).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let id = placed.order_id();
    assert_eq!(id, order_id_for(CLIENT_ID, &key));
    assert_eq!(
        placed.header("location"),
        Some(format!("/v1/orders/{id}").as_str())
    );
    assert_eq!(placed.header("idempotent-replayed"), None);
    let replayed = eu.place(&key, &sample_order(customer)).await;
    assert_eq!(replayed.status, 201);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    let mut other = sample_order(customer);
    other["items"][0]["quantity"] = json!(3);
    eu.place(&key, &other)
        .await
        .assert_problem(422, "idempotency-key-reused");

    assert_eq!(eu.get_order(id).await.status, 200);
    assert_eq!(eu.events(id).await.status, 200);
    assert_eq!(eu.customer_orders(customer, "limit=1").await.status, 200);
    for api in [&eu, &us] {
        let unknown = Uuid::new_v4();
        api.get_order(unknown).await.assert_problem(404, "not-found");
        api.events(unknown).await.assert_problem(404, "not-found");
        api.cancel(unknown, None).await.assert_problem(404, "not-found");
        api.get_order("nope").await.assert_problem(400, "invalid-id");
        let anonymous = api.anonymous(Method::GET, "/v1/catalog");
        let reply = api.send("/v1/catalog", anonymous).await;
        reply.assert_problem(401, "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }

    let cancel = |body: &'static str, content_type: &'static str| {
        let request = eu
            .request(Method::POST, &format!("/v1/orders/{id}/cancel"))
            .header("content-type", content_type)
            .body(body);
        eu.send("/v1/orders/{id}/cancel", request)
    };
    cancel("{", "application/json")
        .await
        .assert_problem(400, "malformed-json");
    cancel("{}", "text/plain")
        .await
        .assert_problem(415, "unsupported-media-type");
    cancel(r#"{"why":"x"}"#, "application/json")
        .await
        .assert_problem(422, "invalid-body");
    let long = eu.cancel(id, Some(&"x".repeat(501))).await;
    long.assert_problem(422, "validation");
    assert_eq!(pointers(&long), ["/reason"]);
    let cancelled = eu.cancel(id, None).await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.json["cancel_reason"], "cancelled by the customer");

    let list = |query: &'static str| eu.customer_orders(customer, query);
    list("colour=red").await.assert_problem(422, "invalid-body");
    list("limit=two").await.assert_problem(422, "invalid-body");
    list("page_token=!!!")
        .await
        .assert_problem(400, "invalid-page-token");
}

// ---- bad input: refused precisely, nothing written ----

#[tokio::test]
async fn malformed_json_is_refused_and_writes_nothing() {
    let (key, customer) = (fresh_key(), Uuid::new_v4());
    let body = format!(r#"{{"customer_id":"{customer}","items":["#).into_bytes();
    let reply = eu().place_raw(Some(&key), Some("application/json"), body).await;
    reply.assert_problem(400, "malformed-json");
    assert_nothing_written(Some(&key), customer).await;
}

#[tokio::test]
async fn an_unknown_top_level_field_is_refused_and_writes_nothing() {
    assert_placement_refused(|b| b["coupon"] = json!("FREE"), 422, "invalid-body").await;
}

#[tokio::test]
async fn unknown_nested_fields_are_refused_and_write_nothing() {
    assert_placement_refused(|b| b["items"][0]["price"] = json!(1), 422, "invalid-body").await;
    assert_placement_refused(
        |b| b["shipping_address"]["phone"] = json!("0"),
        422,
        "invalid-body",
    )
    .await;
}

#[tokio::test]
async fn a_missing_field_is_refused_and_writes_nothing() {
    let edit = |b: &mut Value| drop(b["shipping_address"].as_object_mut().unwrap().remove("city"));
    assert_placement_refused(edit, 422, "invalid-body").await;
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_refused_and_writes_nothing() {
    assert_placement_refused(|b| b["items"][0]["quantity"] = json!("2"), 422, "invalid-body").await;
}

#[tokio::test]
async fn an_unknown_sku_is_refused_with_its_pointer_and_writes_nothing() {
    let reply = assert_placement_refused(
        |b| b["items"][1]["sku"] = json!("NO-SUCH-SKU"),
        422,
        "unknown-sku",
    )
    .await;
    assert_eq!(pointers(&reply), ["/items/1/sku"]);
}

#[tokio::test]
async fn quantities_of_zero_negative_over_1000_and_10_pow_12_are_refused_and_write_nothing() {
    for quantity in [json!(0), json!(-1), json!(1001), json!(1_000_000_000_000_i64)] {
        let reply =
            assert_placement_refused(|b| b["items"][0]["quantity"] = quantity, 422, "validation").await;
        assert_eq!(pointers(&reply), ["/items/0/quantity"]);
    }
}

#[tokio::test]
async fn fifty_one_items_are_refused_and_write_nothing() {
    let items: Vec<Value> = (0..51)
        .map(|i| json!({ "sku": format!("SKU-{i}"), "quantity": 1 }))
        .collect();
    let reply = assert_placement_refused(|b| b["items"] = json!(items), 422, "validation").await;
    assert_eq!(pointers(&reply), ["/items"]);
}

#[tokio::test]
async fn a_duplicate_sku_is_refused_and_writes_nothing() {
    let edit = |b: &mut Value| b["items"][1]["sku"] = b["items"][0]["sku"].clone();
    let reply = assert_placement_refused(edit, 422, "validation").await;
    assert_eq!(pointers(&reply), ["/items/1/sku"]);
}

#[tokio::test]
async fn empty_items_are_refused_and_write_nothing() {
    let reply = assert_placement_refused(|b| b["items"] = json!([]), 422, "validation").await;
    assert_eq!(pointers(&reply), ["/items"]);
}

#[tokio::test]
async fn a_bad_country_is_refused_and_writes_nothing() {
    let reply = assert_placement_refused(
        |b| b["shipping_address"]["country"] = json!("Germany"),
        422,
        "validation",
    )
    .await;
    assert_eq!(pointers(&reply), ["/shipping_address/country"]);
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_and_writes_nothing() {
    let edit = |b: &mut Value| b["shipping_address"]["line2"] = json!("x".repeat(70 * 1024));
    assert_placement_refused(edit, 413, "payload-too-large").await;
}

#[tokio::test]
async fn a_placement_without_idempotency_key_is_refused_and_writes_nothing() {
    let customer = Uuid::new_v4();
    let body = serde_json::to_vec(&sample_order(customer)).unwrap();
    let reply = eu().place_raw(None, Some("application/json"), body).await;
    reply.assert_problem(400, "idempotency-key-missing");
    assert_nothing_written(None, customer).await;
}

#[tokio::test]
async fn an_idempotency_key_of_256_characters_is_refused_and_writes_nothing() {
    let (key, customer) = ("k".repeat(256), Uuid::new_v4());
    let reply = eu().place(&key, &sample_order(customer)).await;
    reply.assert_problem(400, "idempotency-key-invalid");
    assert_nothing_written(Some(&key), customer).await;
}

#[tokio::test]
async fn a_placement_without_a_valid_api_key_is_refused_and_writes_nothing() {
    let api = eu();
    for authorization in [None, Some("Bearer not-a-real-key"), Some("Basic Zm9vOmJhcg==")] {
        let (key, customer) = (fresh_key(), Uuid::new_v4());
        let mut request = api
            .anonymous(Method::POST, "/v1/orders")
            .header("idempotency-key", &key)
            .json(&sample_order(customer));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let reply = api.send("/v1/orders", request).await;
        reply.assert_problem(401, "unauthorized");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_nothing_written(Some(&key), customer).await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_by_content_type_is_refused_and_writes_nothing() {
    let (key, customer) = (fresh_key(), Uuid::new_v4());
    let body = serde_json::to_vec(&sample_order(customer)).unwrap();
    let reply = eu().place_raw(Some(&key), Some("text/plain"), body).await;
    reply.assert_problem(415, "unsupported-media-type");
    assert_nothing_written(Some(&key), customer).await;
}

#[tokio::test]
async fn an_order_id_that_is_not_a_uuid_is_refused_on_every_order_route() {
    let api = eu();
    api.get_order("123").await.assert_problem(400, "invalid-id");
    api.events("not-a-uuid").await.assert_problem(400, "invalid-id");
    api.cancel("zzzz", None).await.assert_problem(400, "invalid-id");
}

#[tokio::test]
async fn a_customer_id_that_is_not_a_uuid_is_refused() {
    eu().customer_orders("bob", "")
        .await
        .assert_problem(400, "invalid-id");
}

#[tokio::test]
async fn a_customer_list_limit_outside_1_to_100_is_refused() {
    let customer = Uuid::new_v4();
    for limit in ["limit=0", "limit=101"] {
        let reply = eu().customer_orders(customer, limit).await;
        reply.assert_problem(422, "validation");
        assert_eq!(pointers(&reply), ["limit"]);
    }
}

#[tokio::test]
async fn reads_without_a_valid_api_key_are_refused() {
    let api = eu();
    let id = Uuid::new_v4();
    for (route, path) in [
        ("/v1/orders/{id}", format!("/v1/orders/{id}")),
        ("/v1/orders/{id}/events", format!("/v1/orders/{id}/events")),
        ("/v1/customers/{id}/orders", format!("/v1/customers/{id}/orders")),
        ("/v1/catalog", "/v1/catalog".to_string()),
    ] {
        let request = api.anonymous(Method::GET, &path).bearer_auth("wrong");
        api.send(route, request).await.assert_problem(401, "unauthorized");
    }
}

// ---- idempotency ----

#[tokio::test]
async fn the_same_key_and_body_in_eu_then_us_yields_the_same_order_replayed() {
    let (key, body) = (fresh_key(), sample_order(Uuid::new_v4()));
    let first = eu().place(&key, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let second = us().place(&key, &body).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.order_id(), first.order_id());
    assert_eq!(second.header("location"), first.header("location"));
    // Once replication settles, the order was placed once, in eu.
    let id = first.order_id();
    let settled = eventually(Duration::from_secs(5), || async {
        let (a, b) = (eu().events(id).await, us().events(id).await);
        (a.json == b.json).then_some(event_types(&a))
    })
    .await;
    let (types, _) = settled.unwrap_or_else(|| panic!("events of {id} differ between regions after 5 s"));
    assert_eq!(
        count_of(&types, "OrderPlaced"),
        1,
        "order {id} placed twice: {types:?}"
    );
    assert_eq!(
        second.header("idempotent-replayed"),
        Some("true"),
        "{}",
        second.text
    );
    assert_eq!(second.json["origin_region"], "eu");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_in_both_regions() {
    let (key, customer) = (fresh_key(), Uuid::new_v4());
    let first = eu().place(&key, &sample_order(customer)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let mut other = sample_order(customer);
    other["shipping_address"]["city"] = json!("Hamburg");
    // us first, right away: a retry that reaches the other region before replication does.
    for api in [us(), eu()] {
        api.place(&key, &other)
            .await
            .assert_problem(422, "idempotency-key-reused");
    }
    let types = event_types(&eu().events(first.order_id()).await);
    assert_eq!(count_of(&types, "OrderPlaced"), 1, "{types:?}");
}

#[tokio::test]
async fn ten_concurrent_identical_placements_make_exactly_one_order() {
    let (api, key, customer) = (eu(), fresh_key(), Uuid::new_v4());
    let body = sample_order(customer);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, key, body) = (api.clone(), key.clone(), body.clone());
        tasks.spawn(async move { api.place(&key, &body).await });
    }
    let replies = tasks.join_all().await;
    let expected = order_id_for(CLIENT_ID, &key);
    for reply in &replies {
        match reply.status {
            201 => assert_eq!(reply.order_id(), expected),
            409 => reply.assert_problem(409, "idempotency-key-in-flight"),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    let created = replies.iter().filter(|r| r.status == 201).count();
    let fresh = replies
        .iter()
        .filter(|r| r.status == 201 && r.header("idempotent-replayed").is_none())
        .count();
    assert!(
        created >= 1 && fresh <= 1,
        "{created} created, {fresh} not replayed"
    );
    assert_eq!(
        count_of(&event_types(&api.events(expected).await), "OrderPlaced"),
        1
    );
    let page = api.customer_orders(customer, "").await;
    assert_eq!(page.json["orders"].as_array().unwrap().len(), 1, "{}", page.text);
}

// ---- reading ----

#[tokio::test]
async fn an_order_placed_in_eu_is_read_identically_in_us_within_a_second() {
    let (eu, us) = (eu(), us());
    let placed = eu.place(&fresh_key(), &sample_order(Uuid::new_v4())).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    let id = placed.order_id();
    // The worker may still be adding saga events in eu: wait for a moment both regions agree on.
    let agreed = eventually(Duration::from_secs(1), || async {
        let there = us.get_order(id).await;
        if there.status != 200 {
            return None;
        }
        let (here, events_here, events_there) =
            (eu.get_order(id).await, eu.events(id).await, us.events(id).await);
        (here.json == there.json && events_here.json == events_there.json).then_some(there)
    })
    .await;
    let (there, took) = agreed.unwrap_or_else(|| panic!("order {id} not read identically in us within 1 s"));
    assert_eq!(there.json["id"], placed.json["id"]);
    assert!(took <= Duration::from_millis(1200), "took {took:?}");
}

#[tokio::test]
async fn a_customers_orders_page_newest_first_without_duplicates() {
    let (api, customer) = (eu(), Uuid::new_v4());
    let mut placed = Vec::new();
    for _ in 0..5 {
        let reply = api.place(&fresh_key(), &sample_order(customer)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        placed.push(reply.order_id());
    }
    let (mut listed, mut sizes, mut token) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let query = match &token {
            Some(t) => format!("limit=2&page_token={t}"),
            None => "limit=2".to_string(),
        };
        let page = api.customer_orders(customer, &query).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let orders = page.json["orders"].as_array().unwrap().clone();
        sizes.push(orders.len());
        listed.extend(orders);
        token = page.json["next_page_token"].as_str().map(str::to_string);
        if token.is_none() || sizes.len() > 5 {
            break;
        }
    }
    assert_eq!(sizes, [2, 2, 1], "page sizes");
    let ids: Vec<Uuid> = listed
        .iter()
        .map(|o| o["id"].as_str().unwrap().parse().unwrap())
        .collect();
    placed.reverse();
    assert_eq!(ids, placed, "newest first, each once");
    let times: Vec<DateTime<Utc>> = listed
        .iter()
        .map(|o| o["placed_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
}

// ---- cancel ----

#[tokio::test]
async fn cancelling_twice_returns_the_same_cancelled_order_with_one_order_cancelled() {
    let api = eu();
    let id = api
        .place(&fresh_key(), &sample_order(Uuid::new_v4()))
        .await
        .order_id();
    let first = api.cancel(id, Some("changed my mind")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["status"], "cancelled");
    assert_eq!(first.json["cancel_reason"], "changed my mind");
    let second = api.cancel(id, Some("again")).await;
    assert_eq!(second.status, 200, "{}", second.text);
    // The worker may add compensation (release, void) in between; the cancellation stays put.
    for field in ["id", "status", "cancel_reason", "items", "total", "placed_at"] {
        assert_eq!(second.json[field], first.json[field], "{field}");
    }
    assert_eq!(count_of(&event_types(&api.events(id).await), "OrderCancelled"), 1);
}

#[tokio::test]
async fn concurrent_cancels_in_eu_and_us_converge_on_one_state() {
    let (eu, us) = (eu(), us());
    let id = eu
        .place(&fresh_key(), &sample_order(Uuid::new_v4()))
        .await
        .order_id();
    let visible = eventually(Duration::from_secs(5), || async {
        (us.get_order(id).await.status == 200).then_some(())
    });
    assert!(visible.await.is_some(), "order {id} never reached us");
    let (a, b) = tokio::join!(eu.cancel(id, Some("from eu")), us.cancel(id, Some("from us")));
    for reply in [&a, &b] {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["status"], "cancelled");
    }
    let converged = eventually(Duration::from_secs(5), || async {
        let (x, y) = (eu.events(id).await, us.events(id).await);
        let (sx, sy) = (eu.get_order(id).await, us.get_order(id).await);
        (x.json == y.json && sx.json == sy.json).then_some((x, sx))
    })
    .await;
    let ((events, state), _) = converged.unwrap_or_else(|| panic!("order {id} did not converge in 5 s"));
    assert_eq!(state.json["status"], "cancelled");
    let cancels = count_of(&event_types(&events), "OrderCancelled");
    assert!((1..=2).contains(&cancels), "{cancels} OrderCancelled");
}

// ---- stock ----

#[tokio::test]
async fn a_sku_sold_out_in_the_region_is_refused_at_placement_and_writes_nothing() {
    const SKU: &str = "LIMITED-SNEAKER";
    let stock = orders_tests::worker::StockRows::connect().await;
    let before = stock.available(SKU, "eu").await;
    stock.set_available(SKU, "eu", 0).await;
    // The API reads allotments in the background: within a second it knows (a placement before
    // that is accepted, and the worker rejects it for want of stock).
    let refused = eventually(Duration::from_secs(3), || async {
        let (key, customer) = (fresh_key(), Uuid::new_v4());
        let mut body = sample_order(customer);
        body["items"] = json!([{ "sku": SKU, "quantity": 1 }]);
        let reply = eu().place(&key, &body).await;
        (reply.status == 409).then_some((key, customer, reply))
    })
    .await;
    stock.set_available(SKU, "eu", before.max(1000)).await;
    let ((key, customer, reply), _) = refused.expect("a placement of a sold-out SKU refused within 3 s");
    reply.assert_problem(409, "sold-out");
    assert_eq!(
        reply.json["errors"][0]["pointer"], "/items/0/sku",
        "{}",
        reply.text
    );
    assert_nothing_written(Some(&key), customer).await;
}

// ---- page tokens ----

#[tokio::test]
async fn a_page_token_the_api_did_not_issue_is_refused_and_an_issued_one_pages_on_in_either_region() {
    let (api, customer) = (eu(), Uuid::new_v4());
    let mut placed = Vec::new();
    for _ in 0..3 {
        let reply = api.place(&fresh_key(), &sample_order(customer)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        placed.push(reply.order_id());
    }
    placed.reverse();
    let ids = |page: &Reply| -> Vec<Uuid> {
        page.json["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    // Bytes the API never issued are a client error, not a database one.
    for query in [
        "page_token=abc",
        "page_token=",
        "limit=2&page_token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        api.customer_orders(customer, query)
            .await
            .assert_problem(400, "invalid-page-token");
    }
    let first = api.customer_orders(customer, "limit=2").await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(ids(&first), placed[..2], "newest first");
    let token = first.json["next_page_token"]
        .as_str()
        .expect("a next_page_token after a full page")
        .to_string();
    // One character changed, or the token of another customer's listing: refused.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    api.customer_orders(customer, &format!("limit=2&page_token={tampered}"))
        .await
        .assert_problem(400, "invalid-page-token");
    api.customer_orders(Uuid::new_v4(), &format!("limit=2&page_token={token}"))
        .await
        .assert_problem(400, "invalid-page-token");
    let second = api
        .customer_orders(customer, &format!("limit=2&page_token={token}"))
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(ids(&second), placed[2..], "the rest, each once");
    assert!(second.json["next_page_token"].is_null(), "{}", second.text);
    // Every region of the deployment signs with one secret: a listing paged in eu pages on in us.
    let rest = placed[2..].to_vec();
    let in_us = eventually(Duration::from_secs(3), || {
        let (query, rest) = (format!("limit=2&page_token={token}"), rest.clone());
        async move {
            let page = us().customer_orders(customer, &query).await;
            (page.status == 200 && ids(&page) == rest).then_some(page)
        }
    })
    .await;
    assert!(in_us.is_some(), "the eu token did not page on in us within 3 s");
}
