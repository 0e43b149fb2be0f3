//! The API's configuration: built-in defaults overridden by `ORDERS_*` environment variables.
use orders_config::Env;
use orders_domain::Region;
use orders_journal::CrashPoint;
use orders_store::Durability;

pub use orders_config::ConfigError;
pub use orders_health::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    /// `ORDERS_REGION`: this region's name, also its datacenter name.
    pub region: Region,
    /// `ORDERS_REGIONS`: every region, comma-separated.
    pub regions: Vec<Region>,
    /// `ORDERS_LISTEN`: the HTTP address.
    pub listen: String,
    /// `ORDERS_CASSANDRA`: a CQL node of this region's datacenter.
    pub cassandra: String,
    /// `ORDERS_KAFKA`: this region's Kafka bootstrap servers.
    pub kafka: String,
    /// `ORDERS_DURABILITY`: `global` (default) or `local`.
    pub durability: Durability,
    /// `ORDERS_OPS_TOKEN`: the operator token for /admin.
    pub ops_token: Secret,
    /// `ORDERS_CRASH_POINT`: `never` (default) or `after_append`; only for the no-loss test.
    pub crash_point: CrashPoint,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(get);
        let region = env.region("ORDERS_REGION", "eu")?;
        let regions = env.regions("ORDERS_REGIONS", "eu,us", &region)?;
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
        Ok(Config {
            region,
            regions,
            listen: env.var("ORDERS_LISTEN", "127.0.0.1:8081"),
            cassandra: env.var("ORDERS_CASSANDRA", "127.0.0.2:9042"),
            kafka: env.var("ORDERS_KAFKA", "127.0.0.1:19092"),
            durability,
            ops_token: Secret::new(env.var("ORDERS_OPS_TOKEN", "")),
            crash_point,
            max_body_bytes: 64 * 1024,
        })
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
    fn the_ops_token_never_prints() {
        let c = Config::from_lookup(|k| (k == "ORDERS_OPS_TOKEN").then(|| "s3cret".to_string())).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
