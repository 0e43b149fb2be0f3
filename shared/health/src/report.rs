//! The readiness response body: the types of IETF draft-inadarei-api-health-check-06 and its status roll-up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `output` of a service an operator has taken out of rotation.
pub const DRAINING: &str = "draining";

/// A check's or a service's health. The variant order is the severity order, so `max` is worst-of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// pass and warn answer 2xx, fail answers 5xx: the draft makes the code the verdict for machines.
    pub fn is_serving(self) -> bool {
        self != Status::Fail
    }

    /// The wire name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// The draft's closed set of `componentType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ComponentType {
    Component,
    Datastore,
    System,
}

/// One reading of one measurement on one node (a `checks` array holds one per node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<ComponentType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    pub status: Status,
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl CheckResult {
    pub fn new(status: Status, time: DateTime<Utc>) -> Self {
        Self {
            component_id: None,
            component_type: None,
            observed_value: None,
            observed_unit: None,
            status,
            time,
            output: None,
        }
    }

    /// A result stamped with the current wall clock, for checks that just finished.
    pub fn now(status: Status) -> Self {
        Self::new(status, Utc::now())
    }

    pub fn with_component_id(mut self, id: impl Into<String>) -> Self {
        self.component_id = Some(id.into());
        self
    }

    pub fn with_component_type(mut self, component_type: ComponentType) -> Self {
        self.component_type = Some(component_type);
        self
    }

    pub fn with_observed(mut self, value: impl Into<serde_json::Value>, unit: impl Into<String>) -> Self {
        self.observed_value = Some(value.into());
        self.observed_unit = Some(unit.into());
        self
    }

    pub fn with_output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }
}

/// Who answers: the fixed part of every report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInfo {
    pub service_id: String,
    pub version: Option<String>,
    pub description: Option<String>,
}

/// The whole `application/health+json` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub service_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Keyed `component:measurement`; one entry per node.
    #[serde(default)]
    pub checks: BTreeMap<String, Vec<CheckResult>>,
}

impl HealthReport {
    /// Rolls the checks up: the worst result wins, and a drain overrides everything so the
    /// edges take the instance out of rotation whatever its dependencies say.
    pub fn from_checks(
        info: &ServiceInfo,
        checks: BTreeMap<String, Vec<CheckResult>>,
        draining: bool,
    ) -> Self {
        let worst = checks
            .values()
            .flatten()
            .map(|result| result.status)
            .max()
            .unwrap_or(Status::Pass);
        let (status, output) = if draining {
            (Status::Fail, Some(DRAINING.to_owned()))
        } else if worst == Status::Pass {
            (Status::Pass, None)
        } else {
            (worst, Some(summarize(&checks)))
        };
        Self {
            status,
            version: info.version.clone(),
            service_id: info.service_id.clone(),
            description: info.description.clone(),
            output,
            checks,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.status == Status::Fail && self.output.as_deref() == Some(DRAINING)
    }
}

/// Names every check that is not passing, so a person reading the top-level `output` sees why
/// without walking the checks.
fn summarize(checks: &BTreeMap<String, Vec<CheckResult>>) -> String {
    let mut parts = Vec::new();
    for (key, results) in checks {
        for result in results.iter().filter(|result| result.status != Status::Pass) {
            let mut part = format!("{key} {}", result.status.as_str());
            if let Some(id) = &result.component_id {
                part.push_str(&format!(" on {id}"));
            }
            if let Some(output) = &result.output {
                part.push_str(&format!(": {output}"));
            }
            parts.push(part);
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ServiceInfo {
        ServiceInfo {
            service_id: "api-eu".into(),
            version: Some("1".into()),
            description: None,
        }
    }

    fn checks(statuses: &[(&str, Status)]) -> BTreeMap<String, Vec<CheckResult>> {
        statuses
            .iter()
            .map(|(key, status)| {
                (
                    (*key).to_owned(),
                    vec![CheckResult::new(*status, DateTime::UNIX_EPOCH)],
                )
            })
            .collect()
    }

    #[test]
    fn statuses_order_from_pass_to_fail_so_max_is_the_worst() {
        assert!(Status::Pass < Status::Warn && Status::Warn < Status::Fail);
        assert_eq!(
            [Status::Warn, Status::Fail, Status::Pass].into_iter().max(),
            Some(Status::Fail)
        );
    }

    #[test]
    fn a_report_without_checks_passes_without_output() {
        let report = HealthReport::from_checks(&info(), BTreeMap::new(), false);
        assert_eq!(report.status, Status::Pass);
        assert_eq!(report.output, None);
    }

    #[test]
    fn the_worst_check_decides_the_report_status_and_is_named_in_the_output() {
        let report = HealthReport::from_checks(
            &info(),
            checks(&[
                ("kafka:connections", Status::Warn),
                ("cassandra:responseTime", Status::Pass),
            ]),
            false,
        );
        assert_eq!(report.status, Status::Warn);
        assert_eq!(report.output.as_deref(), Some("kafka:connections warn"));

        let report = HealthReport::from_checks(
            &info(),
            checks(&[
                ("kafka:connections", Status::Warn),
                ("cassandra:responseTime", Status::Fail),
            ]),
            false,
        );
        assert_eq!(report.status, Status::Fail);
    }

    #[test]
    fn a_drained_service_fails_with_output_draining_even_when_every_check_passes() {
        let report = HealthReport::from_checks(&info(), checks(&[("kafka:connections", Status::Pass)]), true);
        assert_eq!(report.status, Status::Fail);
        assert_eq!(report.output.as_deref(), Some(DRAINING));
        assert!(report.is_draining());
    }

    #[test]
    fn reports_serialize_in_the_drafts_camel_case_shape() {
        let mut checks = BTreeMap::new();
        checks.insert(
            "worker:consumerLag".to_owned(),
            vec![
                CheckResult::new(Status::Warn, DateTime::UNIX_EPOCH)
                    .with_component_id("orders-0")
                    .with_component_type(ComponentType::Component)
                    .with_observed(7.5, "s")
                    .with_output("behind"),
            ],
        );
        let json = serde_json::to_value(HealthReport::from_checks(&info(), checks, false)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "warn",
                "version": "1",
                "serviceId": "api-eu",
                "output": "worker:consumerLag warn on orders-0: behind",
                "checks": {"worker:consumerLag": [{
                    "componentId": "orders-0",
                    "componentType": "component",
                    "observedValue": 7.5,
                    "observedUnit": "s",
                    "status": "warn",
                    "time": "1970-01-01T00:00:00Z",
                    "output": "behind"
                }]}
            })
        );
        let back: HealthReport = serde_json::from_value(json).unwrap();
        assert_eq!(back.status, Status::Warn);
    }
}
