//! Tests of the health model: each coloring and roll-up rule, the JSON shape and the Prometheus text.

use chrono::DateTime;
use proptest::prelude::*;

use super::*;
use crate::report::{CheckResult, ServiceInfo};

const CONFIG: &str = r#"
thresholds:
  "worker:consumerLag": { unit: s, yellow: 5, red: 30 }
  "kafka:replicationFreshness": { unit: s, yellow: 5, red: 15 }
  "cassandra:crossDcLag": { unit: s, yellow: 1, red: 5 }
  "outbox:backlog": { unit: events, yellow: 100, red: 1000 }
  "worker:deadLetterRate": { unit: per_minute, yellow: 1, red: 10 }
flows:
  place_order: [api, cassandra, kafka]
  process_order: [worker, kafka, cassandra, payment, outbox]
"#;

fn config() -> ModelConfig {
    ModelConfig::from_yaml(CONFIG).unwrap()
}

type Region = BTreeMap<String, ServiceObservation>;

fn pass() -> CheckResult {
    CheckResult::new(Status::Pass, DateTime::UNIX_EPOCH)
}

fn answered(service: &str, checks: Vec<(&str, CheckResult)>) -> ServiceObservation {
    let checks = checks
        .into_iter()
        .map(|(key, result)| (key.to_owned(), vec![result]))
        .collect();
    let info = ServiceInfo {
        service_id: service.to_owned(),
        ..ServiceInfo::default()
    };
    ServiceObservation::Answered(HealthReport::from_checks(&info, checks, false))
}

/// A region where every check the shipped config knows about passes well inside its thresholds.
fn healthy_region() -> Region {
    let api = answered(
        "api",
        vec![
            ("kafka:connections", pass()),
            ("cassandra:writeProbe", pass()),
            ("outbox:backlog", pass().with_observed(3, "events")),
        ],
    );
    let worker = answered(
        "worker",
        vec![
            ("kafka:connections", pass()),
            ("cassandra:readProbe", pass()),
            ("worker:consumerLag", pass().with_observed(0.2, "s")),
            ("worker:deadLetterRate", pass().with_observed(0, "per_minute")),
            ("kafka:replicationFreshness", pass().with_observed(0.8, "s")),
            ("cassandra:crossDcLag", pass().with_observed(0.05, "s")),
            ("payment:responseTime", pass().with_observed(12, "ms")),
        ],
    );
    BTreeMap::from([("api".to_owned(), api), ("worker".to_owned(), worker)])
}

/// Replaces (or adds) one check result in one service's report.
fn with_check(mut region: Region, service: &str, key: &str, result: CheckResult) -> Region {
    let Some(ServiceObservation::Answered(report)) = region.get_mut(service) else {
        panic!("{service}")
    };
    report.checks.insert(key.to_owned(), vec![result]);
    region
}

fn model_of(regions: Vec<(&str, Region)>) -> HealthModel {
    let regions = regions
        .into_iter()
        .map(|(name, region)| (name.to_owned(), region))
        .collect();
    evaluate(&config(), &regions)
}

fn one_region(region: Region) -> RegionModel {
    model_of(vec![("eu", region)]).regions.remove("eu").unwrap()
}

#[test]
fn a_region_where_every_check_passes_is_green_everywhere_without_reasons() {
    let model = model_of(vec![("eu", healthy_region()), ("us", healthy_region())]);
    assert_eq!(model.global, Node::green());
    for region in model.regions.values() {
        assert_eq!(region.node, Node::green());
        assert!(region.flows.values().all(|flow| *flow == Node::green()));
        assert!(
            region
                .components
                .values()
                .all(|component| component.node == Node::green())
        );
    }
}

#[test]
fn an_observed_value_past_red_turns_its_component_and_flow_red_and_says_why() {
    let region = with_check(
        healthy_region(),
        "worker",
        "worker:consumerLag",
        pass().with_observed(42, "s"),
    );
    let region = one_region(region);
    let worker = &region.components["worker"];
    assert_eq!(worker.node.color, Color::Red);
    assert_eq!(
        worker.dependencies["worker/worker:consumerLag"].reasons,
        ["42 s reaches red at 30"]
    );
    assert_eq!(region.flows["process_order"].color, Color::Red);
    assert!(
        region.flows["process_order"].reasons[0].starts_with("worker red: worker/worker:consumerLag red")
    );
    assert_eq!(region.flows["place_order"].color, Color::Green);
    assert_eq!(region.node.color, Color::Red);
}

#[test]
fn a_stale_replication_makes_its_region_yellow_not_red() {
    let config = ModelConfig::from_yaml(&CONFIG.replace(
        r#""kafka:replicationFreshness": { unit: s, yellow: 5, red: 15 }"#,
        r#""kafka:replicationFreshness": { unit: s, yellow: 5, red: 15, redundancy_only: true }"#,
    ))
    .unwrap();
    let region = with_check(
        healthy_region(),
        "worker",
        "kafka:replicationFreshness",
        CheckResult::new(Status::Fail, DateTime::UNIX_EPOCH).with_observed(90, "s"),
    );
    let model = evaluate(&config, &BTreeMap::from([("us".to_string(), region)]));
    assert_eq!(
        model.regions["us"].node.color,
        Color::Yellow,
        "{:?}",
        model.regions["us"].node
    );
}

fn load_only_lag() -> ModelConfig {
    ModelConfig::from_yaml(&CONFIG.replace(
        r#""worker:consumerLag": { unit: s, yellow: 5, red: 30 }"#,
        r#""worker:consumerLag": { unit: s, yellow: 5, red: 30, load_only: true }"#,
    ))
    .unwrap()
}

#[test]
fn a_long_backlog_of_a_worker_making_progress_is_yellow_not_red() {
    // Given a lag threshold marked load only, and a worker 3 minutes behind whose trend is fine
    let region = with_check(
        healthy_region(),
        "worker",
        "worker:consumerLag",
        CheckResult::new(Status::Warn, DateTime::UNIX_EPOCH).with_observed(180, "s"),
    );
    // When the model is evaluated
    let model = evaluate(&load_only_lag(), &BTreeMap::from([("eu".to_string(), region)]));
    // Then the worker, its flow and its region are yellow, and the reason says why
    let worker = &model.regions["eu"].components["worker"];
    assert_eq!(worker.node.color, Color::Yellow, "{:?}", worker.node);
    assert!(
        worker.dependencies["worker/worker:consumerLag"]
            .reasons
            .contains(&"180 s reaches red at 30 (load only: yellow)".to_string())
    );
    assert_eq!(model.regions["eu"].node.color, Color::Yellow);
}

#[test]
fn a_load_only_check_that_fails_is_still_red() {
    // Given a worker that stopped (its check fails), however small the lag figure
    let region = with_check(
        healthy_region(),
        "worker",
        "worker:consumerLag",
        CheckResult::new(Status::Fail, DateTime::UNIX_EPOCH)
            .with_observed(2, "s")
            .with_output("burrow: STOP; 40 records waiting"),
    );
    // When the model is evaluated
    let model = evaluate(&load_only_lag(), &BTreeMap::from([("eu".to_string(), region)]));
    // Then the region is red
    assert_eq!(model.regions["eu"].components["worker"].node.color, Color::Red);
    assert_eq!(model.regions["eu"].node.color, Color::Red);
}

#[test]
fn an_observed_value_between_yellow_and_red_is_yellow() {
    let region = with_check(
        healthy_region(),
        "api",
        "outbox:backlog",
        pass().with_observed(150, "events"),
    );
    let region = one_region(region);
    assert_eq!(region.components["outbox"].node.color, Color::Yellow);
    assert_eq!(region.flows["process_order"].color, Color::Yellow);
    assert_eq!(region.node.color, Color::Yellow);
}

#[test]
fn a_value_in_another_unit_than_the_threshold_is_yellow_rather_than_misjudged() {
    let lag = pass().with_observed(900, "ms");
    let region = one_region(with_check(
        healthy_region(),
        "worker",
        "cassandra:crossDcLag",
        lag,
    ));
    let dependency = &region.components["cassandra"].dependencies["worker/cassandra:crossDcLag"];
    assert_eq!(dependency.color, Color::Yellow);
    assert_eq!(dependency.reasons, ["observed in ms, threshold set in s"]);
}

#[test]
fn a_failing_check_is_red_with_its_output_and_node_named() {
    let failed = CheckResult::new(Status::Fail, DateTime::UNIX_EPOCH)
        .with_component_id("127.0.0.2")
        .with_output("timed out after 2000ms");
    let region = one_region(with_check(
        healthy_region(),
        "api",
        "cassandra:writeProbe",
        failed,
    ));
    assert_eq!(
        region.components["cassandra"].dependencies["api/cassandra:writeProbe"].reasons,
        ["on 127.0.0.2: status fail: timed out after 2000ms"]
    );
    assert_eq!(region.flows["place_order"].color, Color::Red);
    assert_eq!(region.flows["process_order"].color, Color::Red);
}

#[test]
fn a_warning_check_without_threshold_is_yellow() {
    let warned = CheckResult::new(Status::Warn, DateTime::UNIX_EPOCH);
    let region = one_region(with_check(
        healthy_region(),
        "worker",
        "payment:responseTime",
        warned,
    ));
    assert_eq!(region.components["payment"].node.color, Color::Yellow);
}

#[test]
fn an_unreachable_service_is_red_and_so_is_every_flow_that_needs_it() {
    let mut region = healthy_region();
    region.insert(
        "api".into(),
        ServiceObservation::Unreachable {
            reason: "connection refused".into(),
        },
    );
    let region = one_region(region);
    assert_eq!(
        region.components["api"].dependencies["api/ready"].reasons,
        ["unreachable: connection refused"]
    );
    assert_eq!(region.flows["place_order"].color, Color::Red);
    assert_eq!(region.node.color, Color::Red);
}

#[test]
fn a_drained_service_is_yellow_not_red() {
    let mut region = healthy_region();
    let info = ServiceInfo {
        service_id: "api".into(),
        ..ServiceInfo::default()
    };
    region.insert(
        "api".into(),
        ServiceObservation::Answered(HealthReport::from_checks(&info, BTreeMap::new(), true)),
    );
    let region = one_region(region);
    assert_eq!(region.components["api"].node.color, Color::Yellow);
    assert_eq!(
        region.flows["place_order"].reasons,
        ["api yellow: api/ready yellow: draining"]
    );
}

#[test]
fn a_component_a_flow_needs_that_nobody_reports_is_red() {
    let mut region = healthy_region();
    let Some(ServiceObservation::Answered(worker)) = region.get_mut("worker") else {
        panic!()
    };
    worker.checks.remove("payment:responseTime");
    let region = one_region(region);
    assert_eq!(
        region.flows["process_order"].reasons,
        ["payment red: no service reports it"]
    );
}

#[test]
fn a_component_outside_every_flow_still_colors_its_region() {
    let failed = CheckResult::new(Status::Fail, DateTime::UNIX_EPOCH);
    let region = one_region(with_check(healthy_region(), "worker", "mirror:heartbeat", failed));
    assert!(region.flows.values().all(|flow| flow.color == Color::Green));
    assert_eq!(region.node.color, Color::Red);
    assert!(region.node.reasons[0].starts_with("mirror red"));
}

fn unreachable_region() -> Region {
    let down = || ServiceObservation::Unreachable {
        reason: "timed out".into(),
    };
    BTreeMap::from([("api".to_owned(), down()), ("worker".to_owned(), down())])
}

#[test]
fn one_region_red_or_unreachable_makes_global_yellow() {
    let model = model_of(vec![("eu", unreachable_region()), ("us", healthy_region())]);
    assert_eq!(model.regions["eu"].node.color, Color::Red);
    assert_eq!(model.global.color, Color::Yellow);
    assert!(model.global.reasons[0].starts_with("eu red: "));
}

#[test]
fn every_region_red_makes_global_red() {
    let model = model_of(vec![("eu", unreachable_region()), ("us", unreachable_region())]);
    assert_eq!(model.global.color, Color::Red);
    assert_eq!(model.global.reasons.len(), 2);
}

#[test]
fn one_region_yellow_makes_global_yellow() {
    let region = with_check(
        healthy_region(),
        "api",
        "outbox:backlog",
        pass().with_observed(150, "events"),
    );
    let model = model_of(vec![("eu", region), ("us", healthy_region())]);
    assert_eq!(model.global.color, Color::Yellow);
}

#[test]
fn no_region_at_all_is_global_red() {
    assert_eq!(model_of(vec![]).global.color, Color::Red);
}

#[test]
fn requiring_two_serving_regions_turns_one_red_region_into_global_red() {
    let mut config = config();
    config.global.min_serving_regions = 2;
    let regions = BTreeMap::from([
        ("eu".to_owned(), unreachable_region()),
        ("us".to_owned(), healthy_region()),
    ]);
    assert_eq!(evaluate(&config, &regions).global.color, Color::Red);
}

#[test]
fn the_model_serializes_with_flat_nodes_and_lowercase_colors() {
    let model = model_of(vec![("eu", unreachable_region())]);
    let json = serde_json::to_value(&model).unwrap();
    assert_eq!(json["global"]["color"], "red");
    assert_eq!(json["regions"]["eu"]["color"], "red");
    assert_eq!(
        json["regions"]["eu"]["components"]["api"]["dependencies"]["api/ready"]["color"],
        "red"
    );
    assert!(json["regions"]["eu"]["flows"]["place_order"]["reasons"].is_array());
    let back: HealthModel = serde_json::from_value(json).unwrap();
    assert_eq!(back, model);
}

#[test]
fn the_model_renders_as_prometheus_gauges_per_level() {
    let region = with_check(
        healthy_region(),
        "worker",
        "worker:consumerLag",
        pass().with_observed(7, "s"),
    );
    let text = render_prometheus(&model_of(vec![("eu", region), ("us", unreachable_region())]));
    assert!(text.starts_with("# HELP orders_health_status "));
    assert!(text.contains("# TYPE orders_health_status gauge\n"));
    for line in [
        r#"orders_health_status{level="global",node="global"} 1"#,
        r#"orders_health_status{level="region",region="eu",node="eu"} 1"#,
        r#"orders_health_status{level="region",region="us",node="us"} 2"#,
        r#"orders_health_status{level="flow",region="eu",node="process_order"} 1"#,
        r#"orders_health_status{level="flow",region="eu",node="place_order"} 0"#,
        r#"orders_health_status{level="component",region="eu",node="worker"} 1"#,
        r#"orders_health_status{level="dependency",region="eu",node="worker/worker:consumerLag"} 1"#,
    ] {
        assert!(
            text.lines().any(|candidate| candidate == line),
            "missing {line} in\n{text}"
        );
    }
}

#[test]
fn prometheus_label_values_are_escaped() {
    let region = with_check(healthy_region(), "worker", "odd\"name:x\\y", pass());
    let text = render_prometheus(&model_of(vec![("eu", region)]));
    assert!(text.contains(r#"node="odd\"name""#), "{text}");
    assert!(text.contains(r#"node="worker/odd\"name:x\\y""#), "{text}");
}

fn region_colored(color: Color) -> RegionModel {
    let node = Node {
        color,
        reasons: Vec::new(),
    };
    RegionModel {
        node,
        flows: BTreeMap::new(),
        components: BTreeMap::new(),
    }
}

proptest! {
    #[test]
    fn global_is_red_only_when_every_region_is_red_and_green_only_when_all_are_green(
        colors in prop::collection::vec(prop::sample::select(vec![Color::Green, Color::Yellow, Color::Red]), 1..6)
    ) {
        let regions = colors
            .iter()
            .enumerate()
            .map(|(index, color)| (format!("r{index}"), region_colored(*color)))
            .collect();
        let global = global_node(&config(), &regions);
        let expected = if colors.iter().all(|color| *color == Color::Red) {
            Color::Red
        } else if colors.iter().all(|color| *color == Color::Green) {
            Color::Green
        } else {
            Color::Yellow
        };
        prop_assert_eq!(global.color, expected);
        let non_green = colors.iter().filter(|color| **color != Color::Green).count();
        prop_assert_eq!(global.reasons.len(), non_green);
    }
}
