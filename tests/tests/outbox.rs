//! The outbox against the running stack: relays scan from their cursors, not from the start of
//! each shard, and no event is appended whose outbox row could fall below a cursor.
use std::time::Duration;

use chrono::Utc;
use orders_domain::{OrderEvent, OrderStream, Region, next_envelope};
use orders_journal::{CrashPoint, Journal, JournalError};
use orders_store::Durability;
use orders_store::outbox::{LATE_ROW, SHARDS};
use orders_tests::{eventually, region, session};
use uuid::Uuid;

/// A UUIDv7 made `ago` before now.
fn id_made(ago: Duration) -> Uuid {
    let t = Utc::now() - chrono::TimeDelta::from_std(ago).unwrap();
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        t.timestamp() as u64,
        t.timestamp_subsec_nanos(),
    ))
}

#[tokio::test]
async fn an_event_whose_outbox_row_was_written_late_is_refused_and_not_appended() {
    let eu = region("eu");
    let session = session(&eu).await;
    let here = Region::new("eu").unwrap();
    let journal = Journal::new(
        session,
        here.clone(),
        &eu.kafka,
        Durability::Local,
        CrashPoint::Never,
    )
    .await
    .expect("journal");
    let order_id = Uuid::new_v4();
    let stream = OrderStream::new(order_id);
    // Made before the allowed lateness: as if the request had stalled that long before its row.
    let late = LATE_ROW / 2 + Duration::from_secs(5);
    let envelope = next_envelope(
        &stream,
        &here,
        OrderEvent::OrderConfirmed {},
        id_made(late),
        Utc::now(),
    );

    match journal.append(&envelope).await {
        Err(JournalError::OutboxLate { event_id, late_ms }) => {
            assert_eq!(event_id, envelope.event_id);
            assert!(late_ms >= late.as_millis() as i64, "late by {late_ms} ms");
        }
        other => panic!("a late outbox row must refuse the append, got {other:?}"),
    }
    let stored = journal.store().read_stream(order_id).await.expect("read");
    assert!(
        stored.ordered().is_empty(),
        "nothing appended: {:?}",
        stored.ordered()
    );
}

#[tokio::test]
async fn every_relay_scans_each_shard_from_a_cursor_within_the_last_minutes() {
    let eu = region("eu");
    let session = session(&eu).await;
    let read = || {
        let session = session.clone();
        async move {
            let rows = session
                .query_unpaged(
                    "SELECT shard, scan_from FROM orders.outbox_cursor WHERE region = 'eu'",
                    (),
                )
                .await
                .expect("cursor read")
                .into_rows_result()
                .expect("rows");
            let cursors: Vec<(i32, Uuid)> = rows.rows().expect("typed").map(|r| r.expect("row")).collect();
            let recent = |id: &Uuid| {
                id.get_timestamp().is_some_and(|t| {
                    let (secs, _) = t.to_unix();
                    Utc::now().timestamp() - (secs as i64) < 300
                })
            };
            (cursors.len() == SHARDS as usize && cursors.iter().all(|(_, id)| recent(id))).then_some(cursors)
        }
    };
    // Relays run every second and store a cursor once it moved 10 s.
    let found = eventually(Duration::from_secs(30), read).await;
    assert!(
        found.is_some(),
        "each of the {SHARDS} eu outbox shards should have a cursor less than 5 minutes old: relays would otherwise read every tombstone since the shard began"
    );
}
