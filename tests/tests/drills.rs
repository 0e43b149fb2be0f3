//! Drills: whole-region failures made with `./dev region kill|heal`. They stop real processes, so
//! `./dev test` runs them after every other test, one at a time (`--ignored --test-threads 1`).
use std::time::{Duration, Instant};

use orders_tests::{dev, eventually, kafka, region, session};
use scylla::statement::Consistency;
use scylla::statement::unprepared::Statement;
use uuid::Uuid;

#[tokio::test]
#[ignore = "drill: ./dev test runs it after the other tests"]
async fn a_killed_region_leaves_the_other_serving_and_catches_up_after_heal() {
    let (eu, us) = (region("eu"), region("us"));
    let us_session = session(&us).await;

    dev(&["region", "kill", "eu"]);

    // us still writes and reads at LOCAL_QUORUM and still takes records.
    let id = Uuid::new_v4();
    let mut write = Statement::new("INSERT INTO orders.probes (id, region, value) VALUES (?, ?, ?)");
    write.set_consistency(Consistency::LocalQuorum);
    us_session
        .query_unpaged(write, (id, "us", "written during the eu outage"))
        .await
        .expect("us write with eu down");
    let mut read = Statement::new("SELECT value FROM orders.probes WHERE id = ?");
    read.set_consistency(Consistency::LocalQuorum);
    let rows = us_session
        .query_unpaged(read, (id,))
        .await
        .expect("us read with eu down");
    assert_eq!(rows.into_rows_result().unwrap().rows_num(), 1);
    kafka::produce_probe(&us.kafka, orders_log::ORDERS_TOPIC, &format!("probe-{id}")).await;

    let healed_at = Instant::now();
    dev(&["region", "heal", "eu"]);
    let heal_took = healed_at.elapsed();

    // The write made in us during the outage reaches eu by hinted handoff (no repair is run).
    let eu_session = session(&eu).await;
    let caught_up = eventually(Duration::from_secs(90), || {
        let s = eu_session.clone();
        async move {
            let mut read = Statement::new("SELECT value FROM orders.probes WHERE id = ?");
            read.set_consistency(Consistency::LocalOne);
            let rows = s.query_unpaged(read, (id,)).await.ok()?.into_rows_result().ok()?;
            rows.maybe_first_row::<(String,)>().ok().flatten()
        }
    })
    .await;
    let (_, took) = caught_up.expect("the write made in us during the outage never reached eu after heal");
    eprintln!(
        "heal took {heal_took:?}; the outage write reached eu {took:?} after the heal finished (hinted handoff)"
    );
}
