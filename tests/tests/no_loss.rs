//! No dual-write loss: an API that dies between the database write and the Kafka produce loses
//! nothing. A second eu API runs with the crash point `after_append`, so it aborts right after the
//! `OrderPlaced` is in the store; the placement wrote no outbox row, so a relay of the region must
//! find it from its open-orders row and publish the event to Kafka, and the order is confirmed.
//! The crashed API comes back as a third one (a restart), whose relay must do it even if the
//! stack's own eu API runs an older build.
use std::time::Duration;

use chrono::Utc;
use orders_domain::{OrderEvent, OrderStream, Region, next_envelope};
use orders_journal::{ABANDON_AFTER, CrashPoint, Journal, JournalError, MIN_AGE};
use orders_store::Durability;
use orders_store::open_orders::OpenOrders;
use orders_store::outbox::shard_of;
use orders_tests::api::{ApiClient, fresh_key, sample_order};
use orders_tests::{kafka, region, session};
use uuid::Uuid;

#[tokio::test]
async fn an_api_killed_between_the_append_and_the_produce_loses_no_event() {
    let eu = region("eu");
    let port = 18_181;
    let mut crashing = orders_tests::extra::api_command(&eu, port)
        .env("ORDERS_CRASH_POINT", "after_append")
        .spawn()
        .expect("start a second eu api");
    let up = orders_tests::extra::comes_up(&format!("http://127.0.0.1:{port}")).await;
    assert!(up, "the crashing api never came up");
    let http = reqwest::Client::new();

    let before = kafka::end_offsets(&eu.kafka, orders_log::ORDERS_TOPIC);
    let key = fresh_key();
    let body = sample_order(Uuid::new_v4());
    let api_key = orders_tests::credentials().remove("API_KEY").expect("API_KEY");
    let answer = http
        .post(format!("http://127.0.0.1:{port}/v1/orders"))
        .bearer_auth(&api_key)
        .header("idempotency-key", &key)
        .json(&body)
        .send()
        .await;
    assert!(
        answer.is_err(),
        "the api answered although it should have aborted after the append"
    );
    let status = crashing.wait().expect("wait for the crashed api");
    assert!(!status.success(), "the api exited cleanly instead of aborting");

    // The crashed API restarts: its relay (or the stack's API's) finds the open order.
    let restarted_port = 18_182;
    let restarted = Restarted(
        orders_tests::extra::api_command(&eu, restarted_port)
            .spawn()
            .expect("restart the crashed eu api"),
    );
    let up = orders_tests::extra::comes_up(&format!("http://127.0.0.1:{restarted_port}")).await;
    assert!(up, "the restarted api never came up");

    // The order is in the store although nobody was told, and its event reaches Kafka anyway.
    let order_id = orders_domain::order_id_for(orders_tests::api::CLIENT_ID, &key);
    let (bootstrap, id) = (eu.kafka.clone(), order_id.to_string());
    let found = tokio::task::spawn_blocking(move || {
        kafka::find_key(
            &bootstrap,
            orders_log::ORDERS_TOPIC,
            &before,
            &id,
            Duration::from_secs(30),
        )
    })
    .await
    .expect("join");
    assert_eq!(
        found,
        Some(false),
        "OrderPlaced of {order_id} never reached eu orders after the crash"
    );

    // The client's retry returns the order the crashed request created, and the worker, which got
    // it from Kafka, confirms it.
    let retry = ApiClient::new("eu").place(&key, &body).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.order_id(), order_id);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let fin = orders_tests::eventually(Duration::from_secs(30), || async {
        let order = ApiClient::new("eu").get_order(order_id).await;
        let status = order.json["status"].as_str()?.to_string();
        matches!(status.as_str(), "confirmed" | "rejected" | "cancelled").then_some(status)
    })
    .await
    .map(|(status, _)| status);
    assert_eq!(
        fin.as_deref(),
        Some("confirmed"),
        "order {order_id} did not end confirmed after the crash"
    );
    drop(restarted);
}

/// The restarted API, stopped when the test ends however it ends.
struct Restarted(std::process::Child);

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A journal of region `name` over eu's Cassandra and Kafka.
async fn journal(name: &str) -> std::sync::Arc<Journal> {
    let eu = region("eu");
    Journal::new(
        session(&eu).await,
        Region::new(name).unwrap(),
        &eu.kafka,
        Durability::Local,
        CrashPoint::Never,
    )
    .await
    .expect("journal")
}

#[tokio::test]
async fn a_placement_made_so_long_before_its_write_that_its_intent_may_be_dropped_is_refused() {
    let journal = journal("eu").await;
    let here = Region::new("eu").unwrap();
    let order_id = Uuid::new_v4();
    let late = ABANDON_AFTER / 2 + Duration::from_secs(5);
    let t = Utc::now() - chrono::TimeDelta::from_std(late).unwrap();
    let made = Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        t.timestamp() as u64,
        t.timestamp_subsec_nanos(),
    ));
    let envelope = next_envelope(
        &OrderStream::new(order_id),
        &here,
        OrderEvent::OrderConfirmed {},
        made,
        t,
    );

    match journal.place(&envelope).await {
        Err(JournalError::PlacementLate { event_id, late_ms }) => {
            assert_eq!(event_id, envelope.event_id);
            assert!(late_ms >= late.as_millis() as i64, "late by {late_ms} ms");
        }
        other => panic!("a late placement must be refused, got {other:?}"),
    }
    let stored = journal.store().read_stream(order_id).await.expect("read");
    assert!(stored.is_empty(), "nothing written: {:?}", stored.ordered());
}

#[tokio::test]
async fn an_open_order_whose_placement_never_happened_is_removed_but_not_a_retry_written_since() {
    // A region of its own, whose open orders no other relay reads.
    let origin = format!("test-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let eu = region("eu");
    let open_orders = OpenOrders::new(session(&eu).await).await.expect("open orders");
    let order_id = Uuid::new_v4();
    let long_ago = Utc::now() - chrono::TimeDelta::from_std(ABANDON_AFTER * 2).unwrap();
    let row = async || {
        let rows = (open_orders.list_placed(&origin, shard_of(order_id)).await).expect("list");
        rows.into_iter().find(|r| r.order_id == order_id)
    };
    open_orders.add(&origin, order_id, long_ago).await.expect("add");
    let first = row().await.expect("the row is listed");
    tokio::time::sleep(Duration::from_millis(5)).await;
    // A retry of the same key writes the row again.
    open_orders
        .add(&origin, order_id, long_ago)
        .await
        .expect("add again");
    let again = row().await.expect("the row is listed");
    assert!(again.written_at > first.written_at, "{again:?} after {first:?}");

    open_orders.abandon(&origin, &first).await.expect("abandon");
    assert_eq!(
        row().await,
        Some(again),
        "the retry's row outlives the first one's removal"
    );

    // The relay finds no events of the order long after its row was written: nothing was
    // acknowledged, the row goes.
    let stats = journal(&origin)
        .await
        .relay_placements_once(MIN_AGE, ABANDON_AFTER)
        .await
        .expect("relay pass");
    assert_eq!(
        (stats.read, stats.abandoned, stats.published),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(row().await, None, "the abandoned open order is gone");
}
