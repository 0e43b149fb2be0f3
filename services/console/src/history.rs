//! State changes of every node of the health model, kept for an hour: what turned which color, when and why.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_health::model::{Color, HealthModel, Node};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Global,
    Region,
    Flow,
    Component,
    Dependency,
}

/// A node's identity: its level and its path (`eu`, `eu/place_order`, `eu/kafka`,
/// `eu/kafka/api/kafka:responseTime`), so a flow and a component of the same name stay apart.
pub type NodeKey = (Level, String);

/// Every node of the model by key.
pub fn flatten(model: &HealthModel) -> BTreeMap<NodeKey, Node> {
    let mut nodes = BTreeMap::new();
    nodes.insert((Level::Global, "global".to_string()), model.global.clone());
    for (region, region_model) in &model.regions {
        nodes.insert((Level::Region, region.clone()), region_model.node.clone());
        for (flow, node) in &region_model.flows {
            nodes.insert((Level::Flow, format!("{region}/{flow}")), node.clone());
        }
        for (component, component_model) in &region_model.components {
            let path = format!("{region}/{component}");
            for (dependency, node) in &component_model.dependencies {
                nodes.insert((Level::Dependency, format!("{path}/{dependency}")), node.clone());
            }
            nodes.insert((Level::Component, path), component_model.node.clone());
        }
    }
    nodes
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub level: Level,
    pub node: String,
    /// `None`: the node was not in the model before (or the console just started).
    pub from: Option<Color>,
    /// `None`: the node left the model, e.g. its service stopped answering with that check.
    pub to: Option<Color>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// The changes from `before` to `after`. A node that comes or goes while green is no news (a
/// service that answers again brings its green checks back); coming or going while not green is.
pub fn changes(
    before: &BTreeMap<NodeKey, Node>,
    after: &BTreeMap<NodeKey, Node>,
    at: DateTime<Utc>,
) -> Vec<Change> {
    let change = |(level, node): &NodeKey, from, to, reasons| Change {
        at,
        level: *level,
        node: node.clone(),
        from,
        to,
        reasons,
    };
    let mut found = Vec::new();
    for (key, now) in after {
        match before.get(key) {
            Some(was) if was.color != now.color => {
                found.push(change(key, Some(was.color), Some(now.color), now.reasons.clone()));
            }
            None if now.color != Color::Green => {
                found.push(change(key, None, Some(now.color), now.reasons.clone()));
            }
            _ => {}
        }
    }
    for (key, was) in before {
        if was.color != Color::Green && !after.contains_key(key) {
            found.push(change(
                key,
                Some(was.color),
                None,
                vec!["no longer reported".into()],
            ));
        }
    }
    found
}

/// The last hour of changes, bounded in count too so a flapping check cannot grow it without end.
pub struct History {
    window: chrono::Duration,
    max_entries: usize,
    entries: VecDeque<Change>,
    last: BTreeMap<NodeKey, Node>,
    /// Since when each node that is not green has been so (as far as this console saw).
    not_green_since: BTreeMap<NodeKey, DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct HistoryView {
    pub window_seconds: i64,
    /// Newest first.
    pub changes: Vec<Change>,
}

impl History {
    pub fn new(window: Duration, max_entries: usize) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1)),
            max_entries,
            entries: VecDeque::new(),
            last: BTreeMap::new(),
            not_green_since: BTreeMap::new(),
        }
    }

    /// Compares `model` with the previous one and keeps what changed; returns the new changes.
    pub fn observe(&mut self, model: &HealthModel, at: DateTime<Utc>) -> Vec<Change> {
        let nodes = flatten(model);
        let found = changes(&self.last, &nodes, at);
        self.not_green_since
            .retain(|key, _| nodes.get(key).is_some_and(|n| n.color != Color::Green));
        for (key, node) in &nodes {
            if node.color != Color::Green {
                self.not_green_since.entry(key.clone()).or_insert(at);
            }
        }
        self.last = nodes;
        for change in &found {
            if self.entries.len() >= self.max_entries {
                self.entries.pop_front();
            }
            self.entries.push_back(change.clone());
        }
        self.prune(at);
        found
    }

    /// Since when each node that is not green now has been so.
    pub fn not_green_since(&self) -> &BTreeMap<NodeKey, DateTime<Utc>> {
        &self.not_green_since
    }

    pub fn view(&mut self, now: DateTime<Utc>) -> HistoryView {
        self.prune(now);
        HistoryView {
            window_seconds: self.window.num_seconds(),
            changes: self.entries.iter().rev().cloned().collect(),
        }
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let oldest = now - self.window;
        while self.entries.front().is_some_and(|c| c.at < oldest) {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use orders_health::model::{ModelConfig, ServiceObservation, evaluate};
    use orders_health::{CheckResult, HealthReport, ServiceInfo, Status};

    use super::*;

    fn config() -> ModelConfig {
        ModelConfig::from_yaml("flows: {place_order: [api, kafka]}\n").unwrap()
    }

    fn answered(kafka: Status, draining: bool) -> ServiceObservation {
        let checks = BTreeMap::from([("kafka:responseTime".to_string(), vec![CheckResult::now(kafka)])]);
        let info = ServiceInfo {
            service_id: "api-eu".into(),
            ..ServiceInfo::default()
        };
        ServiceObservation::Answered(HealthReport::from_checks(&info, checks, draining))
    }

    fn model(api: ServiceObservation) -> HealthModel {
        let regions = BTreeMap::from([("eu".to_string(), BTreeMap::from([("api".to_string(), api)]))]);
        evaluate(&config(), &regions)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn a_console_that_starts_on_a_green_model_records_nothing() {
        let mut history = History::new(Duration::from_secs(3600), 100);
        assert!(
            history
                .observe(&model(answered(Status::Pass, false)), at(0))
                .is_empty()
        );
        assert!(
            history
                .observe(&model(answered(Status::Pass, false)), at(2))
                .is_empty()
        );
    }

    #[test]
    fn a_drain_is_recorded_on_every_level_it_turns_yellow_and_again_when_it_ends() {
        let mut history = History::new(Duration::from_secs(3600), 100);
        history.observe(&model(answered(Status::Pass, false)), at(0));
        let drained = history.observe(&model(answered(Status::Pass, true)), at(2));
        let nodes: Vec<(Level, &str)> = drained.iter().map(|c| (c.level, c.node.as_str())).collect();
        assert_eq!(
            nodes,
            [
                (Level::Global, "global"),
                (Level::Region, "eu"),
                (Level::Flow, "eu/place_order"),
                (Level::Component, "eu/api"),
                (Level::Dependency, "eu/api/api/ready"),
            ]
        );
        let region = &drained[1];
        assert_eq!(
            (region.from, region.to),
            (Some(Color::Green), Some(Color::Yellow))
        );
        assert!(
            region.reasons.join(" ").contains("draining"),
            "{:?}",
            region.reasons
        );
        let undrained = history.observe(&model(answered(Status::Pass, false)), at(4));
        assert_eq!(undrained.len(), 5);
        assert!(
            undrained
                .iter()
                .all(|c| c.to == Some(Color::Green) && c.reasons.is_empty())
        );
        assert_eq!(history.view(at(5)).changes.len(), 10);
    }

    #[test]
    fn an_unreachable_service_records_red_and_its_red_checks_leaving() {
        let mut history = History::new(Duration::from_secs(3600), 100);
        let first = history.observe(&model(answered(Status::Fail, false)), at(0));
        assert!(first.iter().any(|c| c.node == "eu/kafka" && c.from.is_none()));
        let gone = history.observe(
            &model(ServiceObservation::Unreachable {
                reason: "timed out".into(),
            }),
            at(2),
        );
        let api = gone.iter().find(|c| c.node == "eu/api/api/ready").unwrap();
        assert_eq!((api.from, api.to), (Some(Color::Green), Some(Color::Red)));
        assert!(api.reasons[0].contains("unreachable"), "{:?}", api.reasons);
        let kafka = gone.iter().find(|c| c.node == "eu/kafka").unwrap();
        assert_eq!((kafka.from, kafka.to), (Some(Color::Red), None));
    }

    #[test]
    fn changes_older_than_the_window_or_beyond_the_bound_are_forgotten() {
        let mut history = History::new(Duration::from_secs(60), 7);
        history.observe(&model(answered(Status::Pass, false)), at(0));
        history.observe(&model(answered(Status::Pass, true)), at(10));
        history.observe(&model(answered(Status::Pass, false)), at(20));
        let view = history.view(at(21));
        assert_eq!(view.changes.len(), 7, "bounded in count");
        assert_eq!(view.changes[0].at, at(20), "newest first");
        assert!(history.view(at(81)).changes.is_empty(), "older than a minute");
    }
}
