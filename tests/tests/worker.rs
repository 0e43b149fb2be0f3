//! The worker against the running stack: every saga ends with each effect once, a cancel
//! compensates, stock never oversells, poison records are dead-lettered without stopping their
//! partition, and redelivering or replaying records through `Worker::handle_record` changes nothing.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use orders_log::{DEAD_LETTER_TOPIC, ORDERS_TOPIC};
use orders_tests::api::CLIENT_ID;
use orders_tests::worker::{
    FINAL_WAIT, Orders, Sandbox, StockRows, count, field, header, id_of, in_process_worker, records_with_key,
    restoring, worker_counter,
};
use orders_tests::{eventually, kafka, region};
use orders_worker::consumer::Handled;
use orders_worker::saga::Outcome;
use rdkafka::Message;
use rdkafka::message::{OwnedMessage, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use uuid::Uuid;

/// 1 × 19.99 + 2 × 12.50 = 44.99 EUR, from SKUs with plenty of stock: authorized.
const BASKET: &[(&str, u32)] = &[("TSHIRT-BLK-M", 1), ("MUG-LOGO", 2)];
/// 1 × 12.50 + 37 × 19.99 = 752.13 EUR: minor units ending in 13, which the sandbox always declines.
const DECLINED_BASKET: &[(&str, u32)] = &[("MUG-LOGO", 1), ("TSHIRT-BLK-M", 37)];

fn fresh_key() -> String {
    format!("worker-test-{}", Uuid::new_v4())
}

#[tokio::test]
async fn orders_placed_in_both_regions_settle_with_every_effect_exactly_once() {
    let (stock, sandbox) = (StockRows::connect().await, Sandbox::default());
    let started = Instant::now();
    let mut orders = tokio::task::JoinSet::new();
    for (origin, other) in [("eu", "us"), ("us", "eu")] {
        for i in 0..10 {
            let (origin, other) = (Orders::new(origin), Orders::new(other));
            let (stock, sandbox, declined) = (stock.clone(), sandbox.clone(), i % 5 == 0);
            orders.spawn(async move {
                let basket = if declined { DECLINED_BASKET } else { BASKET };
                let placed = origin.place(&fresh_key(), basket).await;
                if declined {
                    assert_eq!(
                        placed["total"]["amount_minor"].as_i64().map(|m| m % 100),
                        Some(13)
                    );
                }
                let order = origin.wait_final(id_of(&placed)).await;
                assert_settled_once(&origin, &other, &stock, &sandbox, basket, declined, &order).await;
            });
        }
    }
    while let Some(done) = orders.join_next().await {
        done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }
    eprintln!("20 orders settled and checked in {:?}", started.elapsed());
}

/// One order's effects: one authorization, its reservation rows, its events once each, all in the
/// origin's lane, and the same events in the other region.
async fn assert_settled_once(
    origin: &Orders,
    other: &Orders,
    stock: &StockRows,
    sandbox: &Sandbox,
    basket: &[(&str, u32)],
    declined: bool,
    order: &Value,
) {
    let id = id_of(order);
    let (status, authorization) = match declined {
        true => ("rejected", "declined"),
        false => ("confirmed", "authorized"),
    };
    assert_eq!(order["status"], status, "{order}");
    let authorizations = sandbox.authorizations(id).await;
    assert_eq!(authorizations.len(), 1, "{id}: {authorizations:?}");
    assert_eq!(authorizations[0]["status"], authorization, "{id}");
    for (sku, _) in basket {
        let expected = if declined {
            vec![]
        } else {
            vec![origin.region.clone()]
        };
        assert_eq!(
            stock.holders(sku, id).await,
            expected,
            "reservation rows of {sku} for {id}"
        );
    }
    let events = origin.events(id).await;
    let types = field(&events, "type");
    assert!(
        events
            .iter()
            .all(|e| e["origin_region"] == origin.region.as_str()),
        "{id}: events outside the {} lane: {types:?}",
        origin.region
    );
    let (once, never) = match declined {
        true => (
            "StockReserved PaymentDeclined OrderRejected StockReleased",
            "PaymentAuthorized OrderConfirmed",
        ),
        false => (
            "StockReserved PaymentAuthorized OrderConfirmed",
            "PaymentDeclined OrderRejected StockReleased",
        ),
    };
    for (kinds, n) in [(once, 1), (never, 0)] {
        for kind in kinds.split(' ') {
            assert_eq!(count(&events, kind), n, "{kind} events of {id}: {types:?}");
        }
    }
    let ids = field(&events, "event_id");
    let replicated = eventually(FINAL_WAIT, || async {
        (field(&other.events(id).await, "event_id") == ids).then_some(())
    })
    .await;
    assert!(
        replicated.is_some(),
        "{id}: {} never showed the events of {}: {types:?}",
        other.region,
        origin.region
    );
}

#[tokio::test]
async fn a_cancel_before_confirmation_releases_the_stock_and_voids_any_authorization() {
    let sandbox = Sandbox::default();
    // Only the latency is touched and put back, so other tests' settings stay as they are.
    let restore = json!({ "latency_ms": sandbox.config().await["latency_ms"] });
    let slow_sandbox = sandbox.clone();
    let body = async move {
        let sandbox = slow_sandbox;
        let (api, stock) = (Orders::new("eu"), StockRows::connect().await);
        sandbox.set_config(&json!({ "latency_ms": 1500 })).await;
        let id = id_of(&api.place(&fresh_key(), BASKET).await);
        api.wait_for(id, "stock_reserved", |o| o["status"] == "stock_reserved")
            .await;
        let (status, cancelled) = api.cancel(id).await;
        assert_eq!(status, 200, "cancel of {id}: {cancelled}");
        let order = api.wait_final(id).await;
        assert_eq!(order["status"], "cancelled", "{order}");
        for (sku, _) in BASKET {
            let held = stock.holders(sku, id).await;
            assert!(held.is_empty(), "{sku} still reserved for {id} in {held:?}");
        }
        let events = api.events(id).await;
        let types = field(&events, "type");
        assert_eq!(count(&events, "OrderCancelled"), 1, "{id}: {types:?}");
        assert_eq!(count(&events, "StockReleased"), 1, "{id}: {types:?}");
        assert_eq!(count(&events, "OrderConfirmed"), 0, "{id}: {types:?}");
        assert_eq!(
            count(&events, "PaymentVoided"),
            count(&events, "PaymentAuthorized"),
            "{id}: every recorded authorization is voided: {types:?}"
        );
        let authorizations = sandbox.authorizations(id).await;
        assert!(authorizations.len() <= 1, "{id}: {authorizations:?}");
        if !authorizations.is_empty() {
            // An authorization the provider granted must not outlive the cancelled order, even
            // one whose PaymentAuthorized lost the lane position to the cancel.
            let voided = eventually(FINAL_WAIT, || async {
                let now = sandbox.authorizations(id).await;
                (now.len() == 1 && now[0]["status"] == "voided").then_some(())
            })
            .await;
            let now = sandbox.authorizations(id).await;
            assert!(
                voided.is_some(),
                "{id}: the sandbox still holds {now:?} after the cancel; events {types:?}"
            );
        }
    };
    let again = sandbox.clone();
    restoring(body, async move { again.set_config(&restore).await }).await;
}

#[tokio::test]
async fn concurrent_orders_for_the_last_five_units_confirm_exactly_five() {
    const SKU: &str = "LIMITED-SNEAKER";
    let stock = StockRows::connect().await;
    stock.set_available(SKU, "eu", 5).await;
    let rows = stock.clone();
    let body = async move {
        let stock = rows;
        let mut placing = tokio::task::JoinSet::new();
        for _ in 0..15 {
            let api = Orders::new("eu");
            placing.spawn(async move {
                let id = id_of(&api.place(&fresh_key(), &[(SKU, 1)]).await);
                api.wait_final(id).await
            });
        }
        let orders: Vec<Value> = placing.join_all().await;
        let confirmed = orders.iter().filter(|o| o["status"] == "confirmed").count();
        let out_of_stock = orders
            .iter()
            .filter(|o| o["status"] == "rejected" && o["stock"] == "rejected")
            .count();
        let statuses: Vec<String> = orders
            .iter()
            .map(|o| format!("{}/{}", o["status"], o["stock"]))
            .collect();
        assert_eq!((confirmed, out_of_stock), (5, 10), "{statuses:?}");
        assert_eq!(stock.available(SKU, "eu").await, 0);
        let mut rows = 0;
        for order in &orders {
            rows += stock.holders(SKU, id_of(order)).await.len();
        }
        assert_eq!(rows, 5, "reservation rows of the 15 orders");
    };
    let restore = async move { stock.set_available(SKU, "eu", 1000).await };
    restoring(body, restore).await;
}

#[tokio::test]
async fn poison_records_are_dead_lettered_and_their_partition_keeps_flowing() {
    const DEAD_LETTERED: &str = "orders_worker_dead_lettered_total";
    let (eu, api) = (region("eu"), Orders::new("eu"));
    let idempotency_key = fresh_key();
    // The poison shares the order's key, so it sits in the order's partition just before it.
    let order_id = orders_domain::order_id_for(CLIENT_ID, &idempotency_key);
    let key = order_id.to_string();
    let dead_before = worker_counter(&eu, DEAD_LETTERED).await;
    let dlq_from = kafka::end_offsets(&eu.kafka, DEAD_LETTER_TOPIC);
    let producer: FutureProducer = orders_log::producer_config(&eu.kafka).create().expect("producer");
    let poison: [&[u8]; 2] = [
        b"\xff this is not json",
        br#"{"event_id":"not-a-uuid","type":"OrderPlaced","payload":{"type":"OrderPlaced"}}"#,
    ];
    let mut produced = Vec::new();
    for payload in poison {
        let record = FutureRecord::to(ORDERS_TOPIC).key(&key).payload(payload);
        let delivery = producer
            .send(record, Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce poison to eu orders: {e}"));
        produced.push((payload, delivery.partition, delivery.offset));
    }

    let placed = api.place(&idempotency_key, BASKET).await;
    assert_eq!(id_of(&placed), order_id);
    let order = api.wait_final(order_id).await;
    assert_eq!(
        order["status"], "confirmed",
        "the order behind the poison: {order}"
    );

    let letters = records_with_key(&eu.kafka, DEAD_LETTER_TOPIC, dlq_from, &key, |found| {
        found.len() >= 2
    })
    .await;
    for (payload, partition, offset) in produced {
        let letter = letters
            .iter()
            .find(|l| {
                header(l, "dlq.partition") == Some(partition.to_string())
                    && header(l, "dlq.offset") == Some(offset.to_string())
            })
            .unwrap_or_else(|| panic!("no dead letter for orders {partition}/{offset} in {letters:?}"));
        assert_eq!(header(letter, "dlq.topic").as_deref(), Some(ORDERS_TOPIC));
        let error = header(letter, "dlq.error").unwrap_or_default();
        assert!(
            !error.is_empty(),
            "dead letter of {partition}/{offset} without an error"
        );
        assert_eq!(letter.payload(), Some(payload), "payload of {partition}/{offset}");
        assert_eq!(letter.key(), Some(key.as_bytes()), "key of {partition}/{offset}");
    }
    let counted = eventually(FINAL_WAIT, || async {
        (worker_counter(&eu, DEAD_LETTERED).await >= dead_before + 2.0).then_some(())
    })
    .await;
    assert!(
        counted.is_some(),
        "{DEAD_LETTERED} did not grow by 2 from {dead_before}"
    );
    // Parked records stay listed (worker:parked yellow) until replayed: replaying the confirmed
    // order changes nothing and leaves the region green for the tests after this one.
    let (status, _, replayed) = orders_tests::parking::ParkingWorker::of(&eu)
        .await
        .replay(Some(order_id), true)
        .await;
    assert_eq!(status, 200, "replay of the poison's order: {replayed}");
    assert_eq!(replayed["orders"][0]["outcome"], "done", "{replayed}");
}

/// Places an eu order, waits for the real worker to confirm it; returns it with its events.
async fn confirmed_order(api: &Orders) -> (Uuid, Vec<Value>) {
    let id = id_of(&api.place(&fresh_key(), BASKET).await);
    let order = api.wait_final(id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    (id, api.events(id).await)
}

/// Nothing moved since the order was confirmed: one authorization, the same events, one row per SKU.
async fn assert_unchanged(api: &Orders, stock: &StockRows, id: Uuid, events: &[Value]) {
    let authorizations = Sandbox::default().authorizations(id).await;
    assert_eq!(authorizations.len(), 1, "{id}: {authorizations:?}");
    assert_eq!(authorizations[0]["status"], "authorized", "{id}");
    let now = api.events(id).await;
    assert_eq!(field(&now, "type"), field(events, "type"), "{id}: events changed");
    assert_eq!(
        field(&now, "event_id"),
        field(events, "event_id"),
        "{id}: events changed"
    );
    for (sku, _) in BASKET {
        assert_eq!(
            stock.holders(sku, id).await,
            vec!["eu".to_string()],
            "{sku} rows of {id}"
        );
    }
}

fn assert_no_op(handled: &Handled, what: &str) {
    assert!(
        matches!(handled, Handled::Duplicate | Handled::Processed(Outcome::Done)),
        "{what}: {handled:?}"
    );
}

#[tokio::test]
async fn redelivering_every_record_of_a_confirmed_order_twice_changes_nothing() {
    let (eu, api, stock) = (region("eu"), Orders::new("eu"), StockRows::connect().await);
    let from = kafka::end_offsets(&eu.kafka, ORDERS_TOPIC);
    let (id, events) = confirmed_order(&api).await;
    let expected = events.len();
    let records = records_with_key(&eu.kafka, ORDERS_TOPIC, from, &id.to_string(), move |found| {
        let ids: HashSet<_> = found.iter().filter_map(|r| header(r, "event_id")).collect();
        ids.len() >= expected
    })
    .await;
    assert!(
        records.len() >= expected,
        "{id}: {} records on eu orders for {expected} events",
        records.len()
    );

    let (app, shutdown) = in_process_worker("eu").await;
    for round in 1..=2 {
        for record in &records {
            let handled = app.worker.handle_record(record).await;
            let what = format!("round {round}, orders {}/{}", record.partition(), record.offset());
            assert_no_op(&handled, &what);
        }
    }
    shutdown.cancel();
    assert_unchanged(&api, &stock, id, &events).await;
}

#[tokio::test]
async fn replaying_a_confirmed_order_from_offset_zero_changes_nothing() {
    let (api, stock) = (Orders::new("eu"), StockRows::connect().await);
    let (id, events) = confirmed_order(&api).await;
    let placed = events
        .first()
        .filter(|e| e["type"] == "OrderPlaced")
        .expect("OrderPlaced first");
    let (app, shutdown) = in_process_worker("eu").await;
    // Read again from offset 0: the record as it was, then under an event id the worker has not
    // seen, as once its processed-events rows expired. The second must reach the saga, and stop.
    let original = placed["event_id"].as_str().expect("event id").to_string();
    for (event_id, seen_before) in [(original, true), (Uuid::now_v7().to_string(), false)] {
        let mut envelope = placed.clone();
        envelope["event_id"] = json!(event_id);
        let record = OwnedMessage::new(
            Some(serde_json::to_vec(&envelope).expect("json")),
            Some(id.to_string().into_bytes()),
            ORDERS_TOPIC.to_string(),
            Timestamp::NotAvailable,
            0,
            0,
            None,
        );
        let handled = app.worker.handle_record(&record).await;
        match seen_before {
            true => assert_no_op(&handled, "the original OrderPlaced"),
            false => assert_eq!(handled, Handled::Processed(Outcome::Done), "an unseen event id"),
        }
    }
    shutdown.cancel();
    assert_unchanged(&api, &stock, id, &events).await;
}
