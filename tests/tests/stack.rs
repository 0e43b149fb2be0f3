//! The stack is real: one CQL cluster across two datacenters, and Kafka mirrored both ways.
use std::time::Duration;

use orders_tests::{eventually, kafka, region, regions, session};
use scylla::statement::Consistency;
use scylla::statement::unprepared::Statement;
use uuid::Uuid;

#[tokio::test]
async fn a_row_written_at_local_quorum_in_eu_is_read_in_us() {
    let (eu, us) = (session(&region("eu")).await, session(&region("us")).await);
    let id = Uuid::new_v4();
    let mut write = Statement::new("INSERT INTO orders.probes (id, region, value) VALUES (?, ?, ?)");
    write.set_consistency(Consistency::LocalQuorum);
    eu.query_unpaged(write, (id, "eu", "written in eu"))
        .await
        .expect("write in eu");

    let found = eventually(Duration::from_secs(5), || {
        let us = us.clone();
        async move {
            let mut read = Statement::new("SELECT value FROM orders.probes WHERE id = ?");
            read.set_consistency(Consistency::LocalQuorum);
            let rows = us
                .query_unpaged(read, (id,))
                .await
                .ok()?
                .into_rows_result()
                .ok()?;
            rows.maybe_first_row::<(String,)>().ok().flatten().map(|(v,)| v)
        }
    })
    .await;
    let (value, took) = found.expect("the row written in eu never became readable in us");
    assert_eq!(value, "written in eu");
    eprintln!("eu -> us row visible after {took:?}");
}

#[tokio::test]
async fn the_keyspace_replicates_to_every_region_datacenter() {
    let eu = session(&region("eu")).await;
    let rows = eu
        .query_unpaged(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = 'orders'",
            (),
        )
        .await
        .expect("read keyspace")
        .into_rows_result()
        .expect("rows");
    let (replication,) = rows
        .single_row::<(std::collections::HashMap<String, String>,)>()
        .expect("one keyspace");
    assert!(
        replication["class"].ends_with("NetworkTopologyStrategy"),
        "{replication:?}"
    );
    for r in regions() {
        assert_eq!(
            replication.get(&r.name).map(String::as_str),
            Some("1"),
            "datacenter {} in {replication:?}",
            r.name
        );
    }
}

#[tokio::test]
async fn a_record_produced_in_each_region_is_mirrored_to_the_other() {
    for (from, to) in [("eu", "us"), ("us", "eu")] {
        let (from, to) = (region(from), region(to));
        let mirrored = orders_log::mirrored(&from.name, orders_log::ORDERS_TOPIC);
        let start = kafka::end_offsets(&to.kafka, &mirrored);
        let key = format!("probe-{}", Uuid::new_v4());
        kafka::produce_probe(&from.kafka, orders_log::ORDERS_TOPIC, &key).await;
        let (bootstrap, k) = (to.kafka.clone(), key.clone());
        let found = tokio::task::spawn_blocking(move || {
            kafka::find_key(&bootstrap, &mirrored, &start, &k, Duration::from_secs(20))
        })
        .await
        .expect("join");
        assert_eq!(
            found,
            Some(true),
            "{key} produced to orders in {} never reached {}",
            from.name,
            to.name
        );
    }
}
