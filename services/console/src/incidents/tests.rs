//! The incident timeline without a stack: rounds of root causes in, incidents out.
use chrono::TimeZone;

use super::*;
use crate::causes::{Effect, Leaf};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 19, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn leaf(dependency: &str) -> Leaf {
    Leaf {
        dependency: dependency.into(),
        color: Color::Red,
        reason: "status fail".into(),
        observed: None,
        unit: None,
        thresholds: None,
    }
}

fn cause(region: &str, component: &str, leaves: &[&str], since: Option<DateTime<Utc>>) -> RootCause {
    RootCause {
        key: format!("{region}/{component}"),
        region: region.into(),
        component: component.into(),
        label: format!("{region} {component}"),
        color: Color::Red,
        state: "red".into(),
        since,
        summary: format!("{component} down"),
        leaves: leaves.iter().map(|d| leaf(d)).collect(),
        flows: vec![],
        components: vec![],
        effects: vec![],
    }
}

fn incidents() -> Incidents {
    Incidents::new(Duration::from_secs(3600), 100)
}

#[test]
fn one_kill_of_eu_kafka_is_one_incident_that_closes_with_its_duration() {
    // Given a green console
    let mut timeline = incidents();
    timeline.observe(&[], 0, at(0));
    // When eu's Kafka is down for a minute of rounds, each recording some state changes
    let kafka = cause("eu", "kafka", &["api/kafka:responseTime"], Some(at(10)));
    timeline.observe(std::slice::from_ref(&kafka), 30, at(11));
    for second in (13..70).step_by(2) {
        timeline.observe(std::slice::from_ref(&kafka), 1, at(second));
    }
    let open = timeline.view(at(70));
    assert_eq!(open.incidents.len(), 1);
    assert!(open.incidents[0].open);
    // and then heals
    timeline.observe(&[], 12, at(71));

    // Then there is one incident, from the leaf's first red to the heal, with every change in it
    let view = timeline.view(at(100));
    assert_eq!(view.incidents.len(), 1, "{view:#?}");
    let incident = &view.incidents[0];
    assert!(!incident.open);
    assert_eq!(incident.incident.causes, ["eu kafka"]);
    assert_eq!(
        (incident.incident.start, incident.incident.end),
        (at(10), Some(at(71)))
    );
    assert_eq!(incident.duration_seconds, 61.0);
    assert_eq!(incident.incident.changes, 30 + 29 + 12);
}

#[test]
fn lateness_that_outlives_its_dependency_stays_in_the_same_incident() {
    // Given eu's Kafka down with the worker's lag as its effect
    let mut timeline = incidents();
    let mut kafka = cause("us", "kafka", &["worker/kafka:responseTime"], None);
    kafka.effects.push(Effect {
        region: "eu".into(),
        leaf: leaf("worker/kafka:replicationFreshness"),
    });
    timeline.observe(&[kafka], 5, at(0));
    // When Kafka is back but eu's replication still catches up, as a cause of its own
    let lag = cause(
        "eu",
        "kafka:replicationFreshness",
        &["worker/kafka:replicationFreshness"],
        None,
    );
    timeline.observe(&[lag], 2, at(2));
    timeline.observe(&[], 1, at(4));

    // Then it is still one incident, ending when the lag ended
    let view = timeline.view(at(5));
    assert_eq!(view.incidents.len(), 1, "{view:#?}");
    assert_eq!(
        view.incidents[0].incident.causes,
        ["us kafka", "eu kafka:replicationFreshness"]
    );
    assert_eq!(view.incidents[0].incident.end, Some(at(4)));
}

#[test]
fn causes_in_two_regions_are_two_incidents_and_a_flapping_check_reopens_its_own() {
    let mut timeline = incidents();
    let eu = cause("eu", "kafka", &["api/kafka:responseTime"], None);
    let us = cause("us", "cassandra", &["api/cassandra:responseTime"], None);
    timeline.observe(&[eu.clone(), us], 0, at(0));
    // eu's cause clears for one round and comes back five seconds later
    timeline.observe(&[], 0, at(2));
    timeline.observe(std::slice::from_ref(&eu), 0, at(7));

    // a lateness showing in eu moments after its dependency came back belongs to the same outage
    timeline.observe(&[], 0, at(9));
    let lag = cause("eu", "worker:consumerLag", &["worker/worker:consumerLag"], None);
    timeline.observe(std::slice::from_ref(&lag), 0, at(11));
    timeline.observe(std::slice::from_ref(&eu), 0, at(13));

    let view = timeline.view(at(14));
    let eu_incident = view.incidents.iter().find(|i| i.incident.region == "eu").unwrap();
    assert_eq!(eu_incident.incident.causes, ["eu kafka", "eu worker:consumerLag"]);
    let seen: Vec<(&str, bool)> = view
        .incidents
        .iter()
        .map(|i| (i.incident.region.as_str(), i.open))
        .collect();
    assert_eq!(seen, [("us", false), ("eu", true)], "newest first");
    // an hour after it ended an incident is forgotten; an open one stays
    timeline.observe(std::slice::from_ref(&eu), 0, at(4000));
    let view = timeline.view(at(4000));
    assert_eq!(view.incidents.len(), 1);
    assert_eq!(view.incidents[0].incident.start, at(0));
}
