//! The API's configuration: built-in defaults overridden by `ORDERS_*` environment variables.
use std::time::Duration;

use orders_config::{Env, ServiceConfig};
use orders_journal::CrashPoint;
use orders_store::Durability;

pub use crate::admission::{RateLimit, RateLimits};
pub use orders_config::ConfigError;
pub use orders_health::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service of the region reads (`ORDERS_REGION`, `ORDERS_LISTEN`, ...); its
    /// fields read as the config's own (`config.region`).
    pub service: ServiceConfig,
    /// `ORDERS_DURABILITY`: `global` (default) or `local`.
    pub durability: Durability,
    /// `ORDERS_OPS_TOKEN`: the operator token for /admin.
    pub ops_token: Secret,
    /// `ORDERS_PAGE_TOKEN_SECRET`: what page tokens are signed with. Every region of a deployment
    /// must share it, so that a listing paged in one region pages on in another. Unset, it falls
    /// back to the operator token (the key is derived from it, never the token itself); without
    /// either, a random secret of this process, so tokens last only as long as the process.
    pub page_token_secret: Secret,
    /// `ORDERS_CRASH_POINT`: `never` (default) or `after_append`; only for the no-loss test.
    pub crash_point: CrashPoint,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// `ORDERS_MAX_IN_FLIGHT`: `/v1` requests served at once (default 64, for a 2-core box: room
    /// for any burst); beyond it a request is shed with 503.
    pub max_in_flight: usize,
    /// `ORDERS_MAX_IN_FLIGHT_UNDER_PRESSURE`: the bound while a standing queue shows (default 8,
    /// capped at `max_in_flight`): what this box turns around in well under 100 ms.
    pub max_in_flight_under_pressure: usize,
    /// `ORDERS_QUEUE_WAIT_MS`: how long a request may wait for a free slot before it is shed
    /// (default 10, at most 40, so a shed answer leaves within 50 ms).
    pub queue_wait: Duration,
    /// `ORDERS_RATE_LIMIT`: every client's token bucket, `RATE/s,BURST` (default `1000/s,2000`,
    /// above what one machine serves, so only a configured limit throttles).
    pub rate_limit: RateLimit,
    /// `ORDERS_RATE_LIMITS`: per-client overrides, `client=RATE/s,BURST;...` (default none).
    pub rate_limits: RateLimits,
}

/// A shed answer must leave within 50 ms; the rest of that is the answer itself.
const MAX_QUEUE_WAIT_MS: u64 = 40;

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(get);
        let service = ServiceConfig::from_env(&env, "127.0.0.1:8081")?;
        let durability = env.parse("ORDERS_DURABILITY", "global")?;
        let crash_point = match env.var("ORDERS_CRASH_POINT", "never").as_str() {
            "never" => CrashPoint::Never,
            "after_append" => CrashPoint::AfterAppend,
            other => {
                return Err(ConfigError {
                    variable: "ORDERS_CRASH_POINT",
                    detail: format!("must be never or after_append, not {other:?}"),
                });
            }
        };
        let max_in_flight: usize = env.parse("ORDERS_MAX_IN_FLIGHT", "64")?;
        if max_in_flight == 0 {
            return Err(ConfigError {
                variable: "ORDERS_MAX_IN_FLIGHT",
                detail: "must be at least 1".into(),
            });
        }
        let under_pressure: usize = env.parse("ORDERS_MAX_IN_FLIGHT_UNDER_PRESSURE", "8")?;
        if under_pressure == 0 {
            return Err(ConfigError {
                variable: "ORDERS_MAX_IN_FLIGHT_UNDER_PRESSURE",
                detail: "must be at least 1".into(),
            });
        }
        let queue_wait_ms: u64 = env.parse("ORDERS_QUEUE_WAIT_MS", "10")?;
        if queue_wait_ms > MAX_QUEUE_WAIT_MS {
            return Err(ConfigError {
                variable: "ORDERS_QUEUE_WAIT_MS",
                detail: format!("must be at most {MAX_QUEUE_WAIT_MS}, not {queue_wait_ms}"),
            });
        }
        let ops_token = env.var("ORDERS_OPS_TOKEN", "");
        let page_token_secret = match env.var("ORDERS_PAGE_TOKEN_SECRET", "") {
            secret if !secret.is_empty() => secret,
            _ if !ops_token.is_empty() => ops_token.clone(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        Ok(Config {
            service,
            durability,
            ops_token: Secret::new(ops_token),
            page_token_secret: Secret::new(page_token_secret),
            crash_point,
            max_body_bytes: 64 * 1024,
            max_in_flight,
            max_in_flight_under_pressure: under_pressure.min(max_in_flight),
            queue_wait: Duration::from_millis(queue_wait_ms),
            rate_limit: env.parse("ORDERS_RATE_LIMIT", "1000/s,2000")?,
            rate_limits: env.parse("ORDERS_RATE_LIMITS", "")?,
        })
    }
}

impl std::ops::Deref for Config {
    type Target = ServiceConfig;

    fn deref(&self) -> &ServiceConfig {
        &self.service
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_region_eu_with_global_durability() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.region.as_str(), "eu");
        assert_eq!(c.durability, Durability::Global);
        assert_eq!(c.crash_point, CrashPoint::Never);
    }

    #[test]
    fn an_unknown_durability_is_refused_with_the_variable_named() {
        let e =
            Config::from_lookup(|k| (k == "ORDERS_DURABILITY").then(|| "sometimes".to_string())).unwrap_err();
        assert!(e.to_string().starts_with("ORDERS_DURABILITY"), "{e}");
    }

    #[test]
    fn admission_defaults_do_not_throttle_a_benchmark_and_limits_are_read_per_client() {
        let c = Config::from_lookup(|_| None).unwrap();
        assert_eq!(c.max_in_flight, 64);
        assert_eq!(c.max_in_flight_under_pressure, 8);
        assert_eq!(c.queue_wait, Duration::from_millis(10));
        assert_eq!(
            c.rate_limit,
            RateLimit {
                per_second: 1000.0,
                burst: 2000
            }
        );
        assert!(c.rate_limits.0.is_empty());
        let c = Config::from_lookup(|k| match k {
            "ORDERS_MAX_IN_FLIGHT" => Some("1".into()),
            "ORDERS_RATE_LIMITS" => Some("dev-storefront=2/s,4".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.max_in_flight, 1);
        assert_eq!(c.max_in_flight_under_pressure, 1, "never above the bound itself");
        assert_eq!(c.rate_limits.0["dev-storefront"].burst, 4);
    }

    #[test]
    fn a_zero_in_flight_limit_a_long_queue_wait_or_a_bad_rate_is_refused_by_name() {
        for (variable, value) in [
            ("ORDERS_MAX_IN_FLIGHT", "0"),
            ("ORDERS_QUEUE_WAIT_MS", "100"),
            ("ORDERS_RATE_LIMIT", "fast"),
            ("ORDERS_RATE_LIMITS", "dev-storefront"),
        ] {
            let e = Config::from_lookup(|k| (k == variable).then(|| value.to_string())).unwrap_err();
            assert!(e.to_string().starts_with(variable), "{e}");
        }
    }

    #[test]
    fn the_page_token_secret_is_its_own_variable_or_else_the_ops_token() {
        let c = Config::from_lookup(|k| match k {
            "ORDERS_OPS_TOKEN" => Some("ops".into()),
            "ORDERS_PAGE_TOKEN_SECRET" => Some("pages".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.page_token_secret.expose(), "pages");
        assert!(!format!("{c:?}").contains("pages"));
        let c = Config::from_lookup(|k| (k == "ORDERS_OPS_TOKEN").then(|| "ops".to_string())).unwrap();
        assert_eq!(c.page_token_secret.expose(), "ops");
        let (a, b) = (
            Config::from_lookup(|_| None).unwrap(),
            Config::from_lookup(|_| None).unwrap(),
        );
        assert!(!a.page_token_secret.expose().is_empty());
        assert_ne!(a.page_token_secret.expose(), b.page_token_secret.expose());
    }

    #[test]
    fn the_ops_token_never_prints() {
        let c = Config::from_lookup(|k| (k == "ORDERS_OPS_TOKEN").then(|| "s3cret".to_string())).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
