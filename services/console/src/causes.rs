//! Root causes first: which leaves of the health model (one check of one service, or a service
//! answering at all) are actually down or late, and what each takes down with it; and, for every
//! inner node, a reason of its own ("2 of 3 checks red") instead of its children's reasons joined.
//! Pure: the console passes in the model, what the services answered and since when each leaf is
//! not green.
//!
//! A leaf is either a dependency being reached (`<service>/ready`, `<component>:responseTime`) or a
//! measurement of how late or loaded things are (consumer lag, replication, backlog, shedding,
//! durability). When a dependency is down, the lateness around it is its effect, not another cause:
//! measurements become effects of a failing dependency (of their own region first, else of the
//! first one), and are causes themselves only while no dependency fails anywhere.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use orders_health::model::{Color, HealthModel, ModelConfig, Node, RegionModel, ServiceObservation};
use serde::Serialize;

use crate::history::{Level, NodeKey};

/// Region → service → what the service answered, as `evaluate` takes it.
pub type Observations = BTreeMap<String, BTreeMap<String, ServiceObservation>>;

/// One root cause: a component of a region with its failing leaves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootCause {
    /// `region/component`, stable while the cause lasts (incidents key on it).
    pub key: String,
    pub region: String,
    /// The model's component (`kafka`, `api`) or, for a lateness cause, the check (`worker:consumerLag`).
    pub component: String,
    /// `eu kafka`: what the first screen names.
    pub label: String,
    pub color: Color,
    /// `unreachable`, `draining`, `red` or `yellow`: the word after the label.
    pub state: String,
    /// When the first of its leaves turned from green, as far as this console saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// The cause in one sentence: the first leaf's own reason.
    pub summary: String,
    pub leaves: Vec<Leaf>,
    /// Flows of its region that need it and are not green.
    pub flows: Vec<String>,
    /// Components of its region that are not green, itself included.
    pub components: Vec<String>,
    /// Late or loaded measurements explained by this cause, in any region.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<Effect>,
}

/// One failing leaf of a cause, with what was observed against the thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leaf {
    /// `api/kafka:responseTime` or `api/ready`.
    pub dependency: String,
    pub color: Color,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `(yellow, red)` from the health model, when the check has a threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    pub region: String,
    #[serde(flatten)]
    pub leaf: Leaf,
}

/// Not-green-since per node, keyed as the history keys nodes.
pub type Since = BTreeMap<NodeKey, DateTime<Utc>>;

/// Whether a leaf says a dependency is reachable at all (as opposed to how late or loaded it is).
fn is_reachability(dependency: &str) -> bool {
    dependency.ends_with("/ready") || dependency.ends_with(":responseTime")
}

/// A leaf that is not green, where it sits and what it says.
struct Failing<'a> {
    region: &'a str,
    component: &'a str,
    dependency: &'a str,
    node: &'a Node,
}

/// Every root cause in the model, red before yellow, then by region and component.
pub fn root_causes(
    config: &ModelConfig,
    model: &HealthModel,
    observed: &Observations,
    since: &Since,
) -> Vec<RootCause> {
    let failing: Vec<Failing> = model
        .regions
        .iter()
        .flat_map(|(region, region_model)| {
            region_model.components.iter().flat_map(move |(component, c)| {
                c.dependencies
                    .iter()
                    .filter(|(_, node)| node.color != Color::Green)
                    .map(move |(dependency, node)| Failing {
                        region,
                        component,
                        dependency,
                        node,
                    })
            })
        })
        .collect();
    let (reachability, lateness): (Vec<&Failing>, Vec<&Failing>) =
        failing.iter().partition(|f| is_reachability(f.dependency));
    let leaf = |f: &Failing| leaf_of(config, observed, f);
    let started = |f: &Failing| {
        let key = (
            Level::Dependency,
            format!("{}/{}/{}", f.region, f.component, f.dependency),
        );
        since.get(&key).copied()
    };

    // Causes keyed by region and component (reachability) or region and check (lateness alone).
    let mut causes: BTreeMap<(String, String), RootCause> = BTreeMap::new();
    let primary = !reachability.is_empty();
    let grouped = if primary { &reachability } else { &lateness };
    for f in grouped {
        let component = if primary {
            f.component.to_string()
        } else {
            check_of(f.dependency).to_string()
        };
        let region_model = &model.regions[f.region];
        let cause = causes
            .entry((f.region.to_string(), component.clone()))
            .or_insert_with(|| new_cause(f.region, &component, f.component, region_model, config));
        cause.color = cause.color.max(f.node.color);
        cause.since = earliest(cause.since, started(f));
        cause.leaves.push(leaf(f));
    }
    if primary {
        for f in &lateness {
            let target = causes
                .keys()
                .find(|(region, _)| region == f.region)
                .or_else(|| causes.keys().next())
                .cloned();
            if let Some(target) = target
                && let Some(cause) = causes.get_mut(&target)
            {
                cause.effects.push(Effect {
                    region: f.region.to_string(),
                    leaf: leaf(f),
                });
            }
        }
    }
    let mut causes: Vec<RootCause> = causes.into_values().map(finish).collect();
    causes.sort_by(|a, b| b.color.cmp(&a.color).then_with(|| a.key.cmp(&b.key)));
    causes
}

fn new_cause(
    region: &str,
    component: &str,
    model_component: &str,
    region_model: &RegionModel,
    config: &ModelConfig,
) -> RootCause {
    let flows = config
        .flows
        .iter()
        .filter(|(_, needed)| needed.iter().any(|c| c == model_component))
        .filter(|(flow, _)| {
            region_model
                .flows
                .get(*flow)
                .is_some_and(|n| n.color != Color::Green)
        })
        .map(|(flow, _)| flow.clone())
        .collect();
    let components = region_model
        .components
        .iter()
        .filter(|(_, c)| c.node.color != Color::Green)
        .map(|(name, _)| name.clone())
        .collect();
    RootCause {
        key: format!("{region}/{component}"),
        region: region.to_string(),
        component: component.to_string(),
        label: format!("{region} {component}"),
        color: Color::Green,
        state: String::new(),
        since: None,
        summary: String::new(),
        leaves: Vec::new(),
        flows,
        components,
        effects: Vec::new(),
    }
}

/// Fills in the state word and the one-sentence summary once every leaf is in.
fn finish(mut cause: RootCause) -> RootCause {
    let reasons: Vec<&str> = cause.leaves.iter().map(|l| l.reason.as_str()).collect();
    cause.state = if reasons.iter().all(|r| r.starts_with("unreachable")) {
        "unreachable".into()
    } else if reasons.iter().all(|r| *r == "draining") {
        "draining".into()
    } else {
        cause.color.to_string()
    };
    let services: BTreeSet<&str> = cause
        .leaves
        .iter()
        .map(|l| l.dependency.split('/').next().unwrap_or(""))
        .collect();
    let first = &cause.leaves[0];
    let mut summary = first.reason.clone();
    if let Some(observed) = first.observed {
        let unit = first.unit.as_deref().unwrap_or("");
        summary = match first.thresholds {
            Some((yellow, red)) => format!("{observed} {unit} (yellow at {yellow}, red at {red}); {summary}"),
            None => format!("{observed} {unit}; {summary}"),
        };
    }
    cause.summary = format!(
        "{}: {summary}",
        services.into_iter().collect::<Vec<_>>().join(", ")
    );
    cause
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `worker:consumerLag` of `api/worker:consumerLag`.
fn check_of(dependency: &str) -> &str {
    dependency.split_once('/').map_or(dependency, |(_, check)| check)
}

fn leaf_of(config: &ModelConfig, observed: &Observations, f: &Failing) -> Leaf {
    let (service, check) = f.dependency.split_once('/').unwrap_or((f.dependency, ""));
    let result = observed
        .get(f.region)
        .and_then(|services| services.get(service))
        .and_then(|observation| match observation {
            ServiceObservation::Answered(report) => report.checks.get(check),
            ServiceObservation::Unreachable { .. } => None,
        })
        .and_then(|results| {
            // The worst observed value among the check's results.
            results
                .iter()
                .filter_map(|r| Some((r.observed_value.as_ref()?.as_f64()?, r.observed_unit.clone())))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        });
    let (observed, unit) = result.map_or((None, None), |(v, u)| (Some(v), u));
    Leaf {
        dependency: f.dependency.to_string(),
        color: f.node.color,
        reason: f.node.reasons.join("; "),
        observed,
        unit,
        thresholds: config.thresholds.get(check).map(|t| (t.yellow, t.red)),
    }
}

/// Each inner node's own reason, keyed `global`, `region:eu`, `flow:eu/place_order`,
/// `component:eu/kafka`: how many of its children are red or yellow, and which, never their reasons.
pub fn own_reasons(config: &ModelConfig, model: &HealthModel) -> BTreeMap<String, String> {
    let mut reasons = BTreeMap::new();
    let regions: Vec<(&str, Color)> = model
        .regions
        .iter()
        .map(|(n, r)| (n.as_str(), r.node.color))
        .collect();
    if let Some(text) = count_reason("regions", &regions) {
        let serving = regions.iter().filter(|(_, c)| *c != Color::Red).count();
        reasons.insert("global".into(), format!("{text}; {serving} serving"));
    }
    for (name, region) in &model.regions {
        for (component, c) in &region.components {
            let children: Vec<(&str, Color)> = c
                .dependencies
                .iter()
                .map(|(d, n)| (d.as_str(), n.color))
                .collect();
            if let Some(text) = count_reason("checks", &children) {
                reasons.insert(format!("component:{name}/{component}"), text);
            }
        }
        for (flow, needed) in &config.flows {
            let children: Vec<(&str, Color)> = needed
                .iter()
                .map(|c| {
                    (
                        c.as_str(),
                        region.components.get(c).map_or(Color::Red, |m| m.node.color),
                    )
                })
                .collect();
            if let Some(text) = count_reason("components", &children) {
                reasons.insert(format!("flow:{name}/{flow}"), text);
            }
        }
        let in_flows: BTreeSet<&str> = config.flows.values().flatten().map(String::as_str).collect();
        let mut children: Vec<(&str, Color)> =
            region.flows.iter().map(|(f, n)| (f.as_str(), n.color)).collect();
        let flows = count_reason("flows", &children);
        children = region
            .components
            .iter()
            .filter(|(c, _)| !in_flows.contains(c.as_str()))
            .map(|(c, m)| (c.as_str(), m.node.color))
            .collect();
        let others = count_reason("other components", &children);
        let text: Vec<String> = [flows, others].into_iter().flatten().collect();
        if !text.is_empty() {
            reasons.insert(format!("region:{name}"), text.join("; "));
        }
    }
    reasons
}

/// `2 of 3 checks red (a, b), 1 yellow (c)`, or `None` when every child is green.
fn count_reason(noun: &str, children: &[(&str, Color)]) -> Option<String> {
    let named = |color: Color| -> Vec<&str> {
        children
            .iter()
            .filter(|(_, c)| *c == color)
            .map(|(n, _)| *n)
            .collect()
    };
    let (red, yellow) = (named(Color::Red), named(Color::Yellow));
    if red.is_empty() && yellow.is_empty() {
        return None;
    }
    let total = children.len();
    let mut parts = Vec::new();
    for (color, names) in [(Color::Red, red), (Color::Yellow, yellow)] {
        if names.is_empty() {
            continue;
        }
        let list = names.join(", ");
        if parts.is_empty() {
            parts.push(format!("{} of {total} {noun} {color} ({list})", names.len()));
        } else {
            parts.push(format!("{} {color} ({list})", names.len()));
        }
    }
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests;
