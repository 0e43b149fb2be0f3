//! The health model's configuration: thresholds per check and the components each user flow needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runner::is_check_key;

/// `deploy/health-model.yaml`, parsed and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Keyed `component:measurement`, exactly as the services name their checks.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
    /// Flow name to the components it needs.
    pub flows: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub global: GlobalRule,
}

/// Higher is worse for every measurement we judge, so two bounds say it all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub yellow: f64,
    pub red: f64,
    /// The measurement is about redundancy between regions (replication): however bad, it makes
    /// its region yellow, never red, because the region itself still serves.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redundancy_only: bool,
    /// The measurement is load (a backlog, shed requests): a value past red is still yellow,
    /// because a busy service serves; only the check's own fail status (no progress, a dead
    /// dependency) makes it red.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub load_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalRule {
    /// Regions that must be not red for global not to be red.
    pub min_serving_regions: usize,
}

impl Default for GlobalRule {
    fn default() -> Self {
        Self {
            min_serving_regions: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read health model config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("health model config is not valid")]
    Parse(#[source] serde_yaml::Error),
    #[error("threshold {key:?}: {reason}")]
    Threshold { key: String, reason: &'static str },
    #[error("flow {flow:?}: {reason}")]
    Flow { flow: String, reason: &'static str },
    #[error("global.min_serving_regions must be at least 1")]
    MinServingRegions,
}

impl ModelConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml::from_str(text).map_err(ConfigError::Parse)?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects at startup what would otherwise silently never fire or always fire.
    fn validate(&self) -> Result<(), ConfigError> {
        for (key, threshold) in &self.thresholds {
            let error = |reason| ConfigError::Threshold {
                key: key.clone(),
                reason,
            };
            if !is_check_key(key) {
                return Err(error("is not `component:measurement`"));
            }
            if !threshold.yellow.is_finite() || !threshold.red.is_finite() {
                return Err(error("bounds must be finite numbers"));
            }
            if threshold.red < threshold.yellow {
                return Err(error("red must not be below yellow"));
            }
        }
        for (flow, components) in &self.flows {
            let error = |reason| ConfigError::Flow {
                flow: flow.clone(),
                reason,
            };
            if components.is_empty() {
                return Err(error("needs at least one component"));
            }
            if components
                .iter()
                .any(|component| component.is_empty() || component.contains(':'))
            {
                return Err(error("component names are non-empty and contain no colon"));
            }
        }
        if self.global.min_serving_regions == 0 {
            return Err(ConfigError::MinServingRegions);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_parses_with_the_agreed_thresholds_and_flows() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/health-model.yaml");
        let config = ModelConfig::load(&path).unwrap();
        let lag = &config.thresholds["worker:consumerLag"];
        assert_eq!((lag.unit.as_deref(), lag.yellow, lag.red), (Some("s"), 5.0, 30.0));
        assert!(
            lag.load_only,
            "a consumer lag alone must never make its region red"
        );
        let shedding = &config.thresholds["api:shedding"];
        assert!(shedding.load_only && !shedding.redundancy_only);
        let bounds = |key: &str| (config.thresholds[key].yellow, config.thresholds[key].red);
        assert_eq!(bounds("kafka:replicationFreshness"), (5.0, 15.0));
        assert_eq!(bounds("cassandra:crossDcLag"), (1.0, 5.0));
        assert_eq!(bounds("outbox:backlog"), (100.0, 1000.0));
        assert_eq!(bounds("worker:deadLetterRate"), (1.0, 10.0));
        assert_eq!(config.flows["place_order"], ["api", "cassandra", "kafka"]);
        assert!(config.flows["process_order"].starts_with(&[
            "worker".to_owned(),
            "kafka".to_owned(),
            "cassandra".to_owned(),
            "payment".to_owned()
        ]));
        assert_eq!(config.global.min_serving_regions, 1);
    }

    #[test]
    fn a_red_bound_below_yellow_is_rejected() {
        let error = ModelConfig::from_yaml("thresholds: {\"a:b\": {yellow: 5, red: 1}}\nflows: {f: [a]}\n")
            .unwrap_err();
        assert!(matches!(error, ConfigError::Threshold { .. }), "{error}");
    }

    #[test]
    fn a_threshold_key_without_a_measurement_is_rejected() {
        let error =
            ModelConfig::from_yaml("thresholds: {lag: {yellow: 1, red: 2}}\nflows: {f: [a]}\n").unwrap_err();
        assert!(matches!(error, ConfigError::Threshold { .. }), "{error}");
    }

    #[test]
    fn an_empty_flow_and_unknown_fields_are_rejected() {
        assert!(matches!(
            ModelConfig::from_yaml("flows: {f: []}\n"),
            Err(ConfigError::Flow { .. })
        ));
        assert!(matches!(
            ModelConfig::from_yaml("flows: {f: [a]}\ntypo: 1\n"),
            Err(ConfigError::Parse(_))
        ));
        assert!(matches!(
            ModelConfig::from_yaml("flows: {f: [a]}\nglobal: {min_serving_regions: 0}\n"),
            Err(ConfigError::MinServingRegions)
        ));
    }
}
