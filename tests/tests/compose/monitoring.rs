//! Prometheus, its rules and Grafana: scrape targets for both setups, promtool checks and rule tests,
//! and the dashboard's queries.
use std::collections::BTreeSet;

use orders_tests::{regions, repo_root};
use serde_yaml::Value;

use crate::repo::{port_of, quoted_after, read, scalar, yaml};
use crate::tools::{promtool, scratch_dir};

/// (targets, region label, service) of a file_sd file.
fn sd_targets(relative: &str) -> BTreeSet<(String, String, String)> {
    let groups: serde_json::Value = serde_json::from_str(&read(relative)).expect("file_sd JSON");
    let mut out = BTreeSet::new();
    for group in groups.as_array().expect("a list of target groups") {
        let labels = &group["labels"];
        let region = labels["region"].as_str().unwrap_or("").to_string();
        let service = labels["__orders_service"]
            .as_str()
            .expect("__orders_service")
            .to_string();
        for target in group["targets"].as_array().unwrap() {
            out.insert((
                target.as_str().unwrap().to_string(),
                region.clone(),
                service.clone(),
            ));
        }
    }
    out
}

#[test]
fn prometheus_scrapes_every_api_worker_and_the_console_in_both_setups() {
    let console_port =
        port_of(quoted_after(&read("services/console/src/config.rs"), "var(\"ORDERS_LISTEN\", ").unwrap())
            .to_string();
    let (mut local, mut compose) = (BTreeSet::new(), BTreeSet::new());
    for r in regions() {
        for (service, port) in [("api", r.api_port), ("worker", r.worker_port)] {
            local.insert((format!("127.0.0.1:{port}"), r.name.clone(), service.to_string()));
            compose.insert((
                format!("{service}-{}:{port}", r.name),
                r.name.clone(),
                service.to_string(),
            ));
        }
    }
    local.insert((
        format!("127.0.0.1:{console_port}"),
        String::new(),
        "console".into(),
    ));
    compose.insert((format!("console:{console_port}"), String::new(), "console".into()));
    assert_eq!(sd_targets("deploy/prometheus/targets/local.json"), local);
    assert_eq!(sd_targets("deploy/prometheus/targets/compose.json"), compose);
}

// ---------------------------------------------------------------- promtool

/// Lays out prometheus.yml, rules/ and targets/orders.json as a setup mounts them and checks the config.
fn check_prometheus_layout(targets: &str) {
    let dir = scratch_dir("prometheus");
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("targets")).unwrap();
    std::fs::write(
        dir.join("prometheus.yml"),
        read("deploy/prometheus/prometheus.yml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(repo_root().join("deploy/prometheus/rules"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), dir.join("rules").join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.join("targets/orders.json"), read(targets)).unwrap();
    let out = promtool(&["check", "config", dir.join("prometheus.yml").to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        !text.contains("WARNING"),
        "promtool check config with {targets}:\n{text}"
    );
    assert!(
        text.contains("1 rule files found"),
        "the rules were not found:\n{text}"
    );
}

#[test]
fn promtool_accepts_the_prometheus_configuration_as_compose_and_a_local_run_lay_it_out() {
    check_prometheus_layout("deploy/prometheus/targets/compose.json");
    check_prometheus_layout("deploy/prometheus/targets/local.json");
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    promtool(&["check", "rules", "deploy/prometheus/rules/orders.rules.yml"]);
    promtool(&["test", "rules", "deploy/prometheus/tests/orders.rules.test.yml"]);
}

fn rules() -> Vec<Value> {
    let file = yaml("deploy/prometheus/rules/orders.rules.yml");
    file["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn every_alert_has_a_test_where_it_fires_and_one_where_it_does_not_and_every_record_is_tested() {
    let tests = yaml("deploy/prometheus/tests/orders.rules.test.yml");
    let cases: Vec<&Value> = tests["tests"].as_sequence().unwrap().iter().collect();
    let alert_tests: Vec<&Value> = cases
        .iter()
        .filter_map(|c| c.get("alert_rule_test").and_then(Value::as_sequence))
        .flatten()
        .collect();
    let exprs: Vec<String> = cases
        .iter()
        .filter_map(|c| c.get("promql_expr_test").and_then(Value::as_sequence))
        .flatten()
        .map(|t| scalar(&t["expr"]))
        .collect();
    for rule in rules() {
        if let Some(alert) = rule.get("alert").map(scalar) {
            let of_this = alert_tests.iter().filter(|t| scalar(&t["alertname"]) == alert);
            let (firing, quiet): (Vec<&&Value>, Vec<&&Value>) =
                of_this.partition(|t| t["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty()));
            assert!(!firing.is_empty(), "no test where {alert} fires");
            assert!(!quiet.is_empty(), "no test where {alert} stays quiet");
        }
        if let Some(record) = rule.get("record").map(scalar) {
            assert!(
                exprs.iter().any(|e| e.contains(&record)),
                "no promql_expr_test for {record}"
            );
        }
    }
}

#[test]
fn the_dashboard_is_provisioned_json_whose_queries_parse_and_name_recorded_series() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/orders.json")).expect("dashboard JSON");
    assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty()), "uid");
    assert!(dashboard["schemaVersion"].as_u64().is_some(), "schemaVersion");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains(&"region"), "{variables:?}");
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let uid = scalar(&datasource["datasources"][0]["uid"]);
    let recorded: BTreeSet<String> = rules()
        .iter()
        .filter_map(|r| r.get("record").map(scalar))
        .collect();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], uid, "panel {}", panel["title"]);
            queries.push(target["expr"].as_str().unwrap().replace("$region", ".*"));
        }
    }
    assert!(queries.len() >= 10, "{queries:?}");
    for query in &queries {
        // Label values such as check="worker:consumerLag" hold colons too: look outside quotes only.
        let unquoted: String = query.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let names = unquoted.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        for name in names.filter(|n| n.contains(':') && n.starts_with(char::is_alphabetic)) {
            assert!(
                recorded.contains(name),
                "the dashboard queries {name}, which no rule records"
            );
        }
    }
    // promtool parses each query as a recording rule's expression.
    let dir = scratch_dir("dashboard");
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, query) in queries.iter().enumerate() {
        file.push_str(&format!(
            "      - record: dashboard:query_{i}:check\n        expr: {query:?}\n"
        ));
    }
    let path = dir.join("dashboard.rules.yml");
    std::fs::write(&path, file).unwrap();
    let result = std::panic::catch_unwind(|| promtool(&["check", "rules", path.to_str().unwrap()]));
    std::fs::remove_dir_all(&dir).ok();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
