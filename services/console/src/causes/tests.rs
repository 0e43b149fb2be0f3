//! Root causes derived from the health model without a stack: given what the services answered,
//! when the model is read, then the first screen's facts follow.
use chrono::TimeZone;
use orders_health::model::evaluate;
use orders_health::{CheckResult, HealthReport, ServiceInfo, Status};

use super::*;

const MODEL: &str = r#"
thresholds:
  "worker:consumerLag": { unit: s, yellow: 5, red: 30, load_only: true }
  "kafka:replicationFreshness": { unit: s, yellow: 5, red: 15, redundancy_only: true }
flows:
  place_order: [api, cassandra, kafka]
  process_order: [worker, kafka, cassandra]
"#;
const KAFKA_DOWN: &str = "kafka at 127.0.0.1:19092 unreachable: fetch metadata";

fn config() -> ModelConfig {
    ModelConfig::from_yaml(MODEL).unwrap()
}

fn check(status: Status) -> CheckResult {
    CheckResult::now(status)
}

fn service(name: &str, checks: Vec<(&str, CheckResult)>, draining: bool) -> ServiceObservation {
    let info = ServiceInfo {
        service_id: name.into(),
        ..ServiceInfo::default()
    };
    let checks = checks
        .into_iter()
        .map(|(k, r)| (k.to_string(), vec![r]))
        .collect();
    ServiceObservation::Answered(HealthReport::from_checks(&info, checks, draining))
}

/// A region whose api and worker answer with these kafka, lag and freshness results.
fn region(kafka: Status, lag: CheckResult, freshness: CheckResult) -> BTreeMap<String, ServiceObservation> {
    let kafka_result = || {
        let result = check(kafka);
        if kafka == Status::Fail {
            result.with_output(KAFKA_DOWN)
        } else {
            result.with_observed(3.0, "ms")
        }
    };
    BTreeMap::from([
        (
            "api".to_string(),
            service(
                "api",
                vec![
                    ("kafka:responseTime", kafka_result()),
                    ("cassandra:responseTime", check(Status::Pass)),
                ],
                false,
            ),
        ),
        (
            "worker".to_string(),
            service(
                "worker",
                vec![
                    ("kafka:responseTime", kafka_result()),
                    ("cassandra:responseTime", check(Status::Pass)),
                    ("worker:consumerLag", lag),
                    ("kafka:replicationFreshness", freshness),
                ],
                false,
            ),
        ),
    ])
}

fn fine() -> CheckResult {
    check(Status::Pass).with_observed(0.0, "s")
}

fn read(observed: &Observations, since: &Since) -> (Vec<RootCause>, BTreeMap<String, String>) {
    let model = evaluate(&config(), observed);
    (
        root_causes(&config(), &model, observed, since),
        own_reasons(&config(), &model),
    )
}

#[test]
fn with_every_check_passing_there_is_no_cause_and_no_reason() {
    let observed = Observations::from([
        ("eu".to_string(), region(Status::Pass, fine(), fine())),
        ("us".to_string(), region(Status::Pass, fine(), fine())),
    ]);
    let (causes, reasons) = read(&observed, &Since::new());
    assert!(causes.is_empty(), "{causes:?}");
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[test]
fn eu_kafka_down_is_one_cause_naming_what_it_takes_down_and_the_lateness_as_its_effects() {
    // Given eu's Kafka unreachable from the api and the worker, the worker's lag failing because
    // of it, and us seeing eu's mirrored heartbeats go stale
    let observed = Observations::from([
        (
            "eu".to_string(),
            region(Status::Fail, check(Status::Fail).with_observed(42.0, "s"), fine()),
        ),
        (
            "us".to_string(),
            region(
                Status::Pass,
                fine(),
                check(Status::Warn)
                    .with_observed(9.0, "s")
                    .with_component_id("eu->us"),
            ),
        ),
    ]);
    let down_at = Utc.with_ymd_and_hms(2026, 12, 1, 19, 42, 45).unwrap();
    let since = Since::from([
        (
            (Level::Dependency, "eu/kafka/api/kafka:responseTime".to_string()),
            down_at + chrono::Duration::seconds(1),
        ),
        (
            (
                Level::Dependency,
                "eu/kafka/worker/kafka:responseTime".to_string(),
            ),
            down_at,
        ),
    ]);

    // When the model is read
    let (causes, reasons) = read(&observed, &since);

    // Then one cause, eu kafka, red since the first leaf turned, takes both flows down
    assert_eq!(causes.len(), 1, "{causes:#?}");
    let cause = &causes[0];
    assert_eq!(cause.label, "eu kafka");
    assert_eq!(cause.color, Color::Red);
    assert_eq!(cause.since, Some(down_at));
    assert_eq!(cause.flows, ["place_order", "process_order"]);
    assert!(
        cause.components.contains(&"kafka".to_string()),
        "{:?}",
        cause.components
    );
    let leaves: Vec<&str> = cause.leaves.iter().map(|l| l.dependency.as_str()).collect();
    assert_eq!(leaves, ["api/kafka:responseTime", "worker/kafka:responseTime"]);
    assert!(cause.summary.starts_with("api, worker: "), "{}", cause.summary);
    assert!(cause.summary.contains(KAFKA_DOWN), "{}", cause.summary);
    // and the lag in eu and the stale replication in us are its effects, with their values
    let effects: Vec<(&str, &str)> = cause
        .effects
        .iter()
        .map(|e| (e.region.as_str(), e.leaf.dependency.as_str()))
        .collect();
    assert_eq!(
        effects,
        [
            ("eu", "worker/worker:consumerLag"),
            ("us", "worker/kafka:replicationFreshness")
        ]
    );
    assert_eq!(cause.effects[0].leaf.observed, Some(42.0));
    assert_eq!(cause.effects[0].leaf.thresholds, Some((5.0, 30.0)));

    // and no inner node repeats the cause's text: each says only how many children are not green
    for (node, reason) in &reasons {
        assert!(!reason.contains("unreachable"), "{node}: {reason}");
    }
    assert_eq!(
        reasons["component:eu/kafka"],
        "2 of 3 checks red (api/kafka:responseTime, worker/kafka:responseTime)"
    );
    assert_eq!(reasons["flow:eu/place_order"], "1 of 3 components red (kafka)");
    assert_eq!(
        reasons["region:eu"],
        "2 of 2 flows red (place_order, process_order)"
    );
    assert_eq!(
        reasons["global"],
        "1 of 2 regions red (eu), 1 yellow (us); 1 serving"
    );
}

#[test]
fn lateness_with_no_dependency_down_is_a_cause_of_its_own_with_value_and_thresholds() {
    // Given eu's worker lagging 12 s behind with every dependency reachable
    let lag = check(Status::Warn).with_observed(12.0, "s");
    let observed = Observations::from([("eu".to_string(), region(Status::Pass, lag, fine()))]);

    // When the model is read
    let (causes, _) = read(&observed, &Since::new());

    // Then the lag is the cause, yellow, with what was observed against the thresholds
    assert_eq!(causes.len(), 1, "{causes:#?}");
    let cause = &causes[0];
    assert_eq!(
        (cause.label.as_str(), cause.color),
        ("eu worker:consumerLag", Color::Yellow)
    );
    assert_eq!(cause.state, "yellow");
    assert_eq!(cause.leaves[0].observed, Some(12.0));
    assert_eq!(cause.leaves[0].unit.as_deref(), Some("s"));
    assert!(
        cause.summary.starts_with("worker: 12 s (yellow at 5, red at 30)"),
        "{}",
        cause.summary
    );
    assert_eq!(cause.flows, ["process_order"]);
}

#[test]
fn an_unreachable_service_and_a_drained_one_say_so_in_their_state() {
    // Given eu's api not answering and us drained by an operator
    let eu = BTreeMap::from([(
        "api".to_string(),
        ServiceObservation::Unreachable {
            reason: "cannot connect: connection refused".into(),
        },
    )]);
    let us = BTreeMap::from([("api".to_string(), service("api", vec![], true))]);
    let observed = Observations::from([("eu".to_string(), eu), ("us".to_string(), us)]);

    // When the model is read
    let (causes, _) = read(&observed, &Since::new());

    // Then red comes first, and each cause's state is its word
    let seen: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.label.as_str(), c.state.as_str()))
        .collect();
    assert_eq!(seen, [("eu api", "unreachable"), ("us api", "draining")]);
}
