//! Poison never blocks a partition: a corrupt event row (an `envelope` that is not JSON) and its
//! order's record are parked at once (dead letter and the operator's list), the orders behind it on
//! its partition confirm, `worker:parked` warns while readiness stays 200, and after the row is
//! repaired a replay confirms the order with every effect once (docs/decisions/0007-parking.md).
use std::time::Duration;

use chrono::Utc;
use orders_domain::{
    EventEnvelope, LineItem, Money, OrderEvent, Region, SCHEMA_VERSION, ShippingAddress, VersionVector,
};
use orders_log::DEAD_LETTER_TOPIC;
use orders_tests::api::CLIENT_ID;
use orders_tests::health::{check, ready};
use orders_tests::parking::ParkingWorker;
use orders_tests::worker::{FINAL_WAIT, Orders, Sandbox, count, field, header, id_of, records_with_key};
use orders_tests::{eventually, kafka, region, session};
use rdkafka::Message;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use uuid::Uuid;

const PARK_WAIT: Duration = Duration::from_secs(30);

/// An `OrderPlaced` of two mugs (25.00 EUR: the sandbox authorizes it) at seq 1 of eu's lane.
fn placed(order_id: Uuid) -> EventEnvelope {
    let eu: Region = "eu".parse().expect("region");
    let mut causal = VersionVector::new();
    causal.set(eu.clone(), 1);
    EventEnvelope {
        event_id: Uuid::now_v7(),
        order_id,
        schema_version: SCHEMA_VERSION,
        origin_region: eu,
        seq: 1,
        causal,
        occurred_at: Utc::now(),
        payload: OrderEvent::OrderPlaced {
            customer_id: Uuid::new_v4(),
            items: vec![LineItem {
                sku: "MUG-LOGO".into(),
                quantity: 2,
                unit_price: Money::new(1250, "EUR").expect("money"),
            }],
            total: Money::new(2500, "EUR").expect("money"),
            shipping_address: ShippingAddress {
                name: "Grace Hopper".into(),
                line1: "1 Test Street".into(),
                line2: None,
                city: "Berlin".into(),
                postal_code: "10115".into(),
                country: "DE".into(),
            },
            idempotency_fingerprint: "poison-test".into(),
        },
    }
}

/// An idempotency key whose order's records share `partition` of `topic`, found with probe records
/// (which workers skip) through the producer settings the relay uses.
async fn key_on_partition(producer: &FutureProducer, topic: &str, partition: i32) -> String {
    for _ in 0..200 {
        let key = format!("poison-neighbour-{}", Uuid::new_v4());
        let order_id = orders_domain::order_id_for(CLIENT_ID, &key).to_string();
        let probe = OwnedHeaders::new().insert(Header {
            key: kafka::PROBE_HEADER,
            value: Some("1"),
        });
        let delivery = producer
            .send(
                FutureRecord::to(topic)
                    .key(&order_id)
                    .payload("probe")
                    .headers(probe),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("probe to {topic}: {e}"));
        if delivery.partition == partition {
            return key;
        }
    }
    panic!("no key of 200 landed on {topic}/{partition}")
}

/// The parked entry of `order_id` at `topic/partition/offset`, as `GET /admin/parked` lists it.
fn entry<'a>(listing: &'a Value, order_id: Uuid, at: (&str, i32, i64)) -> Option<&'a Value> {
    listing["parked"].as_array()?.iter().find(|p| {
        p["order_id"] == order_id.to_string()
            && p["topic"] == at.0
            && p["partition"] == at.1
            && p["offset"] == at.2
    })
}

#[tokio::test]
async fn a_corrupt_event_row_is_parked_at_once_and_a_replay_after_repair_confirms_its_order_once() {
    let eu = region("eu");
    let (api, sandbox, worker) = (
        Orders::new("eu"),
        Sandbox::default(),
        ParkingWorker::of(&eu).await,
    );
    let db = session(&eu).await;
    let producer: FutureProducer = orders_log::producer_config(&eu.kafka).create().expect("producer");
    let dlq_from = kafka::end_offsets(&eu.kafka, DEAD_LETTER_TOPIC);

    // A fresh order whose only stored event is corrupt, as a bad deploy or a bad disk leaves it.
    let order_id = Uuid::now_v7();
    let envelope = placed(order_id);
    let valid = serde_json::to_string(&envelope).expect("json");
    let insert = "INSERT INTO orders.order_events (order_id, origin_region, seq, event_id, event_type, envelope) \
                  VALUES (?, 'eu', 1, ?, 'OrderPlaced', ?)";
    db.query_unpaged(
        insert,
        (order_id, envelope.event_id, "{\"event_id\": \u{fffd} not json"),
    )
    .await
    .expect("plant the corrupt row");
    let event_id = envelope.event_id.to_string();
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: orders_journal::HEADER_EVENT_ID,
            value: Some(event_id.as_str()),
        })
        .insert(Header {
            key: orders_journal::HEADER_EVENT_TYPE,
            value: Some("OrderPlaced"),
        })
        .insert(Header {
            key: orders_journal::HEADER_ORIGIN_REGION,
            value: Some("eu"),
        });
    let key = order_id.to_string();
    let delivery = producer
        .send(
            FutureRecord::to(&worker.topic)
                .key(&key)
                .payload(&valid)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce the poison's record: {e}"));
    let (partition, offset) = (delivery.partition, delivery.offset);
    let at = (worker.topic.as_str(), partition, offset);

    // Orders placed after it, on its partition, confirm.
    let mut neighbours = Vec::new();
    for _ in 0..2 {
        let neighbour_key = match worker.topic == orders_log::ORDERS_TOPIC {
            true => key_on_partition(&producer, orders_log::ORDERS_TOPIC, partition).await,
            false => format!("poison-neighbour-{}", Uuid::new_v4()),
        };
        let from = kafka::end_offsets(&eu.kafka, orders_log::ORDERS_TOPIC);
        let id = id_of(&api.place(&neighbour_key, &[("MUG-LOGO", 1)]).await);
        if worker.topic != orders_log::ORDERS_TOPIC {
            // Our own worker reads its own topic: its placement record goes there too, behind the poison.
            let records = records_with_key(&eu.kafka, orders_log::ORDERS_TOPIC, from, &id.to_string(), |f| {
                !f.is_empty()
            })
            .await;
            let record = records
                .first()
                .unwrap_or_else(|| panic!("no record of {id} on orders"));
            let mut copy = FutureRecord::to(&worker.topic).key(record.key().expect("a key"));
            if let Some(payload) = record.payload() {
                copy = copy.payload(payload);
            }
            producer
                .send(copy, Duration::from_secs(10))
                .await
                .unwrap_or_else(|(e, _)| panic!("copy {id}'s record: {e}"));
        }
        neighbours.push(id);
    }
    for id in &neighbours {
        let order = api.wait_final(*id).await;
        assert_eq!(
            order["status"], "confirmed",
            "the order behind the poison: {order}"
        );
    }

    // The poison is parked within 30 s and its partition moves past it.
    let listed = eventually(PARK_WAIT, || async {
        let (status, listing) = worker.parked().await;
        assert_eq!(status, 200, "GET /admin/parked: {listing}");
        entry(&listing, order_id, at).cloned()
    })
    .await;
    let (parked, took) = listed.unwrap_or_else(|| panic!("{order_id} not parked within {PARK_WAIT:?}"));
    eprintln!("parked {took:?} after its record was published");
    assert_eq!(parked["error_kind"], "permanent", "{parked}");
    assert!(
        parked["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be read"),
        "{parked}"
    );
    assert!(parked["replayed_at"].is_null(), "{parked}");
    let moved = eventually(PARK_WAIT, || async {
        (worker.committed(partition) > offset).then_some(())
    })
    .await;
    assert!(
        moved.is_some(),
        "{}/{partition} committed {} <= the poison's {offset}",
        worker.topic,
        worker.committed(partition)
    );

    let letters = records_with_key(&eu.kafka, DEAD_LETTER_TOPIC, dlq_from, &key, move |found| {
        found
            .iter()
            .any(|l| header(l, "dlq.offset") == Some(offset.to_string()))
    })
    .await;
    let letter = letters
        .iter()
        .find(|l| {
            header(l, "dlq.offset") == Some(offset.to_string())
                && header(l, "dlq.topic") == Some(at.0.to_string())
        })
        .unwrap_or_else(|| panic!("no dead letter of {}/{partition}/{offset}", at.0));
    assert_eq!(header(letter, "dlq.error_kind").as_deref(), Some("permanent"));
    assert_eq!(header(letter, "dlq.partition"), Some(partition.to_string()));
    assert_eq!(
        header(letter, "event_id"),
        Some(event_id.clone()),
        "the original headers"
    );
    assert_eq!(letter.payload(), Some(valid.as_bytes()), "the original record");

    // The operator sees it: worker:parked warns and names the order (at its next run, within
    // seconds), readiness stays 200.
    let warned = eventually(Duration::from_secs(10), || async {
        let (status, report) = ready(&worker.base).await;
        let report = report.expect("a health report");
        assert_eq!(status, 200, "{report:?}");
        let (check_status, output, _) = check(&report, "worker:parked").expect("a worker:parked check");
        let names = output.contains(&key) || output.contains("more");
        (check_status == orders_health::Status::Warn && names).then_some(output)
    })
    .await;
    assert!(warned.is_some(), "worker:parked never warned naming {order_id}");
    assert!(
        sandbox.authorizations(order_id).await.is_empty(),
        "nothing ran for the parked order"
    );

    // A replay needs the operator token and answers problem+json without it.
    let (status, content_type, body) = worker.replay(Some(order_id), false).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/problem+json"),
        "{body}"
    );

    // Repaired, replayed: confirmed with every effect once.
    db.query_unpaged(
        "UPDATE orders.order_events SET envelope = ? WHERE order_id = ? AND origin_region = 'eu' AND seq = 1",
        (&valid, order_id),
    )
    .await
    .expect("repair the row");
    let (status, _, replayed) = worker.replay(Some(order_id), true).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["orders"][0]["outcome"], "done", "{replayed}");
    let order = api.wait_final(order_id).await;
    assert_eq!(order["status"], "confirmed", "{order}");
    let events = api.events(order_id).await;
    for kind in [
        "OrderPlaced",
        "StockReserved",
        "PaymentAuthorized",
        "OrderConfirmed",
    ] {
        assert_eq!(
            count(&events, kind),
            1,
            "{kind} of {order_id}: {:?}",
            field(&events, "type")
        );
    }
    let authorizations = sandbox.authorizations(order_id).await;
    assert_eq!(authorizations.len(), 1, "{authorizations:?}");
    assert_eq!(authorizations[0]["status"], "authorized");

    // Marked replayed, so no longer listed as needing an operator; a second replay finds nothing.
    let (_, listing) = worker.parked().await;
    let row = entry(&listing, order_id, at).expect("the row stays, replayed");
    assert!(!row["replayed_at"].is_null(), "{row}");
    let cleared = eventually(FINAL_WAIT, || async {
        let (_, report) = ready(&worker.base).await;
        let (_, output, _) = check(&report?, "worker:parked")?;
        (!output.contains(&key)).then_some(())
    })
    .await;
    assert!(cleared.is_some(), "worker:parked still names {order_id}");
    let (status, content_type, body) = worker.replay(Some(order_id), true).await;
    assert_eq!(
        (status, content_type.as_deref()),
        (404, Some("application/problem+json")),
        "{body}"
    );
}
