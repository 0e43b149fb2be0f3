//! Reading the repository's files: docker-compose.yml as a YAML model and its services' settings.
use std::collections::BTreeMap;

use orders_tests::repo_root;
use serde_yaml::Value;

pub fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn yaml(relative: &str) -> Value {
    let mut value: Value =
        serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{relative}: merge keys: {e}"));
    value
}

pub fn compose() -> Value {
    yaml("docker-compose.yml")
}

pub fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose
        .get("services")
        .and_then(|s| s.get(name))
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

pub fn services(compose: &Value) -> Vec<(String, &Value)> {
    compose["services"]
        .as_mapping()
        .expect("services is a mapping")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v))
        .collect()
}

pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        None => vec![],
        Some(Value::Sequence(items)) => items.iter().map(scalar).collect(),
        Some(other) => vec![scalar(other)],
    }
}

pub fn env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        None => BTreeMap::new(),
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Some(other) => panic!("write environment as a mapping, not {other:?}"),
    }
}

/// `./host/path` → container path, for every bind mount of a service.
pub fn binds(service: &Value) -> BTreeMap<String, String> {
    strings(service.get("volumes"))
        .into_iter()
        .filter(|v| v.starts_with("./"))
        .map(|v| {
            let mut parts = v.split(':');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The orders binary a service runs: the first word of its command, when it is one of ours.
pub fn binary(service: &Value) -> Option<String> {
    let command = strings(service.get("command"));
    let first = command.first()?;
    if first == "sh" {
        return command
            .iter()
            .any(|c| c.contains("orders-stackctl"))
            .then(|| "orders-stackctl".into());
    }
    first.starts_with("orders-").then(|| first.clone())
}

pub fn healthcheck(service: &Value) -> String {
    strings(service.get("healthcheck").and_then(|h| h.get("test"))).join(" ")
}

pub fn upper(region: &str) -> String {
    region.to_uppercase().replace('-', "_")
}

pub fn port_of(address: &str) -> &str {
    address.rsplit(':').next().unwrap()
}

pub fn quoted_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}
