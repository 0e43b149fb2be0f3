//! Configuration: defaults overridden by `PAYMENT_SIM__*` environment variables, validated at startup.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of every environment variable this service reads.
const ENV_PREFIX: &str = "PAYMENT_SIM__";

/// Everything `build` and `main` need to start the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address `main` binds; tests bind their own listener instead.
    pub listen: SocketAddr,
    /// How the sandbox behaves; changeable at runtime through `PUT /sim/config`.
    pub behaviour: Behaviour,
    /// Authorizations kept in memory; the oldest are forgotten beyond this.
    pub max_authorizations: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8099)),
            behaviour: Behaviour::default(),
            max_authorizations: 1_000_000,
        }
    }
}

/// The knobs a test turns to make the provider slow, flaky or stingy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Behaviour {
    /// Mean latency added before every provider answer.
    pub latency_ms: u64,
    /// Latency varies uniformly within `latency_ms ± latency_jitter_ms`.
    pub latency_jitter_ms: u64,
    /// Share of authorizations declined at random (`insufficient_funds`).
    pub decline_rate: Rate,
    /// Share of provider calls answered 503 without doing anything.
    pub failure_rate: Rate,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency_ms: 5,
            latency_jitter_ms: 5,
            decline_rate: Rate::ZERO,
            failure_rate: Rate::ZERO,
        }
    }
}

impl Behaviour {
    /// Picks one latency in `[mean - jitter, mean + jitter]`, never below zero.
    pub(crate) fn sample_latency(&self, unit: f64) -> Duration {
        let low = self.latency_ms.saturating_sub(self.latency_jitter_ms) as f64;
        let high = self.latency_ms.saturating_add(self.latency_jitter_ms) as f64;
        Duration::from_micros(((low + (high - low) * unit) * 1000.0) as u64)
    }
}

/// A probability in `0..=1`; any other value is refused when parsed.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Rate(f64);

impl Rate {
    pub const ZERO: Rate = Rate(0.0);

    pub fn new(value: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(format!("must be a number between 0 and 1, got {value}"))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// True with this probability, given a uniform draw from `[0, 1)`.
    pub(crate) fn hits(self, unit: f64) -> bool {
        unit < self.0
    }
}

impl TryFrom<f64> for Rate {
    type Error = String;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Rate> for f64 {
    fn from(rate: Rate) -> Self {
        rate.0
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
    #[error(
        "{var} is not a setting of this service (known: LISTEN, LATENCY_MS, LATENCY_JITTER_MS, DECLINE_RATE, FAILURE_RATE)"
    )]
    Unknown { var: String },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Applies the `PAYMENT_SIM__*` variables among `vars` over the defaults; others are ignored.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        for (var, value) in vars {
            let (var, value) = (var.as_ref(), value.as_ref());
            let Some(name) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let invalid = |reason: String| ConfigError::Invalid {
                var: var.to_owned(),
                value: value.to_owned(),
                reason,
            };
            let behaviour = &mut config.behaviour;
            match name {
                "LISTEN" => config.listen = value.parse().map_err(|e| invalid(format!("{e}")))?,
                "LATENCY_MS" => behaviour.latency_ms = parse_millis(value).map_err(invalid)?,
                "LATENCY_JITTER_MS" => {
                    behaviour.latency_jitter_ms = parse_millis(value).map_err(invalid)?;
                }
                "DECLINE_RATE" => behaviour.decline_rate = parse_rate(value).map_err(invalid)?,
                "FAILURE_RATE" => behaviour.failure_rate = parse_rate(value).map_err(invalid)?,
                _ => return Err(ConfigError::Unknown { var: var.to_owned() }),
            }
        }
        Ok(config)
    }
}

fn parse_millis(value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|e| format!("expected whole milliseconds: {e}"))
}

fn parse_rate(value: &str) -> Result<Rate, String> {
    let number: f64 = value.parse().map_err(|e| format!("expected a number: {e}"))?;
    Rate::new(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variables_give_the_documented_defaults() {
        let config = Config::from_vars([("PATH", "/bin")]).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8099");
        assert_eq!(config.behaviour.latency_ms, 5);
        assert_eq!(config.behaviour.latency_jitter_ms, 5);
    }

    #[test]
    fn prefixed_variables_override_the_defaults() {
        let config = Config::from_vars([
            ("PAYMENT_SIM__LISTEN", "0.0.0.0:9000"),
            ("PAYMENT_SIM__LATENCY_MS", "40"),
            ("PAYMENT_SIM__LATENCY_JITTER_MS", "0"),
            ("PAYMENT_SIM__DECLINE_RATE", "0.25"),
            ("PAYMENT_SIM__FAILURE_RATE", "1"),
        ])
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.behaviour.latency_ms, 40);
        assert_eq!(config.behaviour.latency_jitter_ms, 0);
        assert_eq!(config.behaviour.decline_rate.get(), 0.25);
        assert_eq!(config.behaviour.failure_rate.get(), 1.0);
    }

    #[test]
    fn a_rate_outside_zero_to_one_is_refused() {
        let error = Config::from_vars([("PAYMENT_SIM__FAILURE_RATE", "1.5")]).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { ref var, .. } if var == "PAYMENT_SIM__FAILURE_RATE"));
        assert!(Rate::new(f64::NAN).is_err());
    }

    #[test]
    fn a_misspelt_variable_is_refused_rather_than_ignored() {
        let error = Config::from_vars([("PAYMENT_SIM__LATENCY", "5")]).unwrap_err();
        assert_eq!(
            error,
            ConfigError::Unknown {
                var: "PAYMENT_SIM__LATENCY".into()
            }
        );
    }

    #[test]
    fn latency_stays_within_the_jitter_and_never_goes_negative() {
        let behaviour = Behaviour {
            latency_ms: 2,
            latency_jitter_ms: 5,
            ..Behaviour::default()
        };
        assert_eq!(behaviour.sample_latency(0.0), Duration::ZERO);
        assert_eq!(behaviour.sample_latency(0.5), Duration::from_micros(3500));
        assert!(behaviour.sample_latency(0.999_999) <= Duration::from_millis(7));
    }
}
