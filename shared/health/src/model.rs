//! The health model: rolls every service's checks up to components, user flows, regions and one global color. Pure.
//!
//! Inside a region the worst child wins: a flow that needs a red component cannot work. Across
//! regions the rule is redundancy-aware, because the regions back each other up: one region red
//! leaves the service degraded (yellow), and only when fewer than `min_serving_regions` regions
//! are left serving is global red. The thresholds and flows come from `deploy/health-model.yaml`.

mod config;
mod prometheus;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::config::{ConfigError, GlobalRule, ModelConfig, Threshold};
pub use self::prometheus::render_prometheus;
use crate::report::{CheckResult, HealthReport, Status};

/// Ordered from best to worst, so `max` is worst-of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Green,
    Yellow,
    Red,
}

impl Color {
    /// The value of the Prometheus gauge: 0 green, 1 yellow, 2 red.
    pub fn gauge(self) -> u8 {
        self as u8
    }
}

impl From<Status> for Color {
    fn from(status: Status) -> Self {
        match status {
            Status::Pass => Color::Green,
            Status::Warn => Color::Yellow,
            Status::Fail => Color::Red,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Color::Green => "green",
            Color::Yellow => "yellow",
            Color::Red => "red",
        })
    }
}

/// What the console learned from one service of one region.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceObservation {
    Answered(HealthReport),
    /// The readiness request failed or timed out; `reason` says how.
    Unreachable {
        reason: String,
    },
}

/// One node's verdict. Every non-green node says why, naming the child it inherited the color from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub color: Color,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Node {
    fn green() -> Self {
        Self {
            color: Color::Green,
            reasons: Vec::new(),
        }
    }

    fn new(color: Color, reason: impl Into<String>) -> Self {
        Self {
            color,
            reasons: vec![reason.into()],
        }
    }

    /// Worst of the children; one reason per non-green child, carrying that child's reasons along.
    fn worst_of<'a>(children: impl IntoIterator<Item = (&'a str, &'a Node)>) -> Self {
        let mut node = Node::green();
        for (name, child) in children {
            if child.color == Color::Green {
                continue;
            }
            node.color = node.color.max(child.color);
            let mut reason = format!("{name} {}", child.color);
            if !child.reasons.is_empty() {
                reason.push_str(": ");
                reason.push_str(&child.reasons.join("; "));
            }
            node.reasons.push(reason);
        }
        node
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthModel {
    pub global: Node,
    pub regions: BTreeMap<String, RegionModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionModel {
    #[serde(flatten)]
    pub node: Node,
    pub flows: BTreeMap<String, Node>,
    pub components: BTreeMap<String, ComponentModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentModel {
    #[serde(flatten)]
    pub node: Node,
    /// Keyed `<service>/<component:measurement>`, or `<service>/ready` for the service answering at all.
    pub dependencies: BTreeMap<String, Node>,
}

/// Builds the whole model from what each region's services answered (region → service → observation).
pub fn evaluate(
    config: &ModelConfig,
    regions: &BTreeMap<String, BTreeMap<String, ServiceObservation>>,
) -> HealthModel {
    let regions: BTreeMap<String, RegionModel> = regions
        .iter()
        .map(|(name, services)| (name.clone(), evaluate_region(config, services)))
        .collect();
    let global = global_node(config, &regions);
    HealthModel { global, regions }
}

fn evaluate_region(config: &ModelConfig, services: &BTreeMap<String, ServiceObservation>) -> RegionModel {
    let mut dependencies: BTreeMap<String, BTreeMap<String, Node>> = BTreeMap::new();
    for (service, observation) in services {
        let own = dependencies.entry(service.clone()).or_default();
        own.insert(format!("{service}/ready"), service_node(observation));
        let ServiceObservation::Answered(report) = observation else {
            continue;
        };
        for (key, results) in &report.checks {
            let component = key
                .split_once(':')
                .map_or(key.as_str(), |(component, _)| component);
            dependencies
                .entry(component.to_owned())
                .or_default()
                .insert(format!("{service}/{key}"), check_node(config, key, results));
        }
    }
    let components: BTreeMap<String, ComponentModel> = dependencies
        .into_iter()
        .map(|(name, dependencies)| {
            let node = Node::worst_of(dependencies.iter().map(|(key, node)| (key.as_str(), node)));
            (name, ComponentModel { node, dependencies })
        })
        .collect();

    let flows: BTreeMap<String, Node> = config
        .flows
        .iter()
        .map(|(flow, needed)| {
            let missing = Node::new(Color::Red, "no service reports it");
            let children = needed.iter().map(|component| {
                let node = components.get(component).map_or(&missing, |model| &model.node);
                (component.as_str(), node)
            });
            (flow.clone(), Node::worst_of(children))
        })
        .collect();

    // A component no flow lists still counts: a check nobody mapped must not vanish from view.
    let in_flows: BTreeSet<&str> = config.flows.values().flatten().map(String::as_str).collect();
    let others = components
        .iter()
        .filter(|(name, _)| !in_flows.contains(name.as_str()))
        .map(|(name, model)| (name.as_str(), &model.node));
    let node = Node::worst_of(
        flows
            .iter()
            .map(|(name, node)| (name.as_str(), node))
            .chain(others),
    );
    RegionModel {
        node,
        flows,
        components,
    }
}

/// The service's own node: it answered, it is drained, or it did not answer. Whether its checks
/// pass is judged on their components, so a Kafka outage shows on kafka rather than on every service.
fn service_node(observation: &ServiceObservation) -> Node {
    match observation {
        // A drain is an operator's decision, not a failure: the region is out of rotation on
        // purpose, which should show without suggesting that a takeover is needed.
        ServiceObservation::Answered(report) if report.is_draining() => Node::new(Color::Yellow, "draining"),
        ServiceObservation::Answered(_) => Node::green(),
        ServiceObservation::Unreachable { reason } => Node::new(Color::Red, format!("unreachable: {reason}")),
    }
}

/// One check's results (one per node), judged by status and, if configured, by threshold.
fn check_node(config: &ModelConfig, key: &str, results: &[CheckResult]) -> Node {
    if results.is_empty() {
        return Node::new(Color::Red, "no results");
    }
    let mut node = Node::green();
    for result in results {
        let on = result
            .component_id
            .as_ref()
            .map(|id| format!("on {id}: "))
            .unwrap_or_default();
        let mut judge = |color: Color, reason: String| {
            if color != Color::Green {
                node.color = node.color.max(color);
                node.reasons.push(format!("{on}{reason}"));
            }
        };
        let status_color = Color::from(result.status);
        let output = result
            .output
            .as_ref()
            .map(|output| format!(": {output}"))
            .unwrap_or_default();
        judge(status_color, format!("status {}{output}", result.status.as_str()));
        if let Some(threshold) = config.thresholds.get(key) {
            let (color, reason) = judge_threshold(threshold, result);
            if threshold.load_only && color == Color::Red {
                judge(Color::Yellow, format!("{reason} (load only: yellow)"));
            } else {
                judge(color, reason);
            }
        }
    }
    if config.thresholds.get(key).is_some_and(|t| t.redundancy_only) && node.color == Color::Red {
        node.color = Color::Yellow;
        node.reasons.push("redundancy only: capped at yellow".into());
    }
    node
}

fn judge_threshold(threshold: &Threshold, result: &CheckResult) -> (Color, String) {
    let unit = threshold.unit.as_deref().unwrap_or("");
    if let (Some(expected), Some(observed)) = (&threshold.unit, &result.observed_unit)
        && expected != observed
    {
        return (
            Color::Yellow,
            format!("observed in {observed}, threshold set in {expected}"),
        );
    }
    let Some(value) = result.observed_value.as_ref().and_then(serde_json::Value::as_f64) else {
        return (Color::Green, String::new());
    };
    if value >= threshold.red {
        (
            Color::Red,
            format!("{value} {unit} reaches red at {}", threshold.red),
        )
    } else if value >= threshold.yellow {
        (
            Color::Yellow,
            format!("{value} {unit} reaches yellow at {}", threshold.yellow),
        )
    } else {
        (Color::Green, String::new())
    }
}

fn global_node(config: &ModelConfig, regions: &BTreeMap<String, RegionModel>) -> Node {
    if regions.is_empty() {
        return Node::new(Color::Red, "no region observed");
    }
    let worst = Node::worst_of(regions.iter().map(|(name, region)| (name.as_str(), &region.node)));
    let serving = regions
        .values()
        .filter(|region| region.node.color != Color::Red)
        .count();
    let color = if serving < config.global.min_serving_regions {
        Color::Red
    } else if worst.color == Color::Green {
        Color::Green
    } else {
        Color::Yellow
    };
    Node {
        color,
        reasons: worst.reasons,
    }
}

#[cfg(test)]
mod tests;
