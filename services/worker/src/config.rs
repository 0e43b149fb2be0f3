//! The worker's configuration: built-in defaults overridden by `ORDERS_*` environment variables.
pub use orders_config::ConfigError;
use orders_config::{Env, ServiceConfig};
use orders_health::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    /// What every service of the region reads; its fields read as the config's own
    /// (`config.region`). `ORDERS_LISTEN` is health, metrics and admin HTTP; `ORDERS_REGIONS`
    /// names whose mirrored topics to follow.
    pub service: ServiceConfig,
    /// `ORDERS_PAYMENT_URL`: the payment provider.
    pub payment_url: String,
    /// `ORDERS_OPS_TOKEN`: the operator token for /admin.
    pub ops_token: Secret,
    /// `ORDERS_DURABILITY`: how far the worker's own events are replicated before it moves on
    /// (`global`, the default, or `local`), as for placements.
    pub durability: orders_store::Durability,
    /// `ORDERS_WORKER_LANES`: orders processed at once (records of one order stay in order).
    pub lanes: usize,
    /// `ORDERS_WORKER_PARK_AFTER_ATTEMPTS` and `ORDERS_WORKER_PARK_AFTER_SECS`: how long a transient
    /// failure of one record is retried before the record is parked (docs/decisions/0007-parking.md).
    pub parking: crate::parking::Budget,
    /// `ORDERS_WORKER_GROUP`: another consumer group than the region's (a test's own worker).
    pub group_override: Option<String>,
    /// `ORDERS_WORKER_TOPICS`: other topics than the region's, comma-separated (a test's own worker).
    pub topics_override: Option<Vec<String>>,
}

impl std::ops::Deref for Config {
    type Target = ServiceConfig;

    fn deref(&self) -> &ServiceConfig {
        &self.service
    }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(get);
        let service = ServiceConfig::from_env(&env, "127.0.0.1:9181")?;
        let lanes = env
            .var("ORDERS_WORKER_LANES", "32")
            .parse()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or(ConfigError {
                variable: "ORDERS_WORKER_LANES",
                detail: "must be 1 to 1024".into(),
            })?;
        let durability = env.parse("ORDERS_DURABILITY", "global")?;
        Ok(Config {
            service,
            durability,
            payment_url: env.var("ORDERS_PAYMENT_URL", "http://127.0.0.1:8099"),
            ops_token: Secret::new(env.var("ORDERS_OPS_TOKEN", "")),
            lanes,
            parking: crate::parking::Budget::from_env(&env)?,
            group_override: env
                .var("ORDERS_WORKER_GROUP", "")
                .split_whitespace()
                .next()
                .map(str::to_string),
            topics_override: Some(env.var("ORDERS_WORKER_TOPICS", ""))
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|t| !t.is_empty()),
        })
    }

    /// The consumer group of this region's workers.
    pub fn group(&self) -> String {
        if let Some(group) = &self.group_override {
            return group.clone();
        }
        format!("orders-worker-{}", self.region)
    }

    /// The topics this region's workers read: its own `orders` and every other region's mirror.
    pub fn topics(&self) -> Vec<String> {
        if let Some(topics) = &self.topics_override {
            return topics.clone();
        }
        let mut topics = vec![orders_log::ORDERS_TOPIC.to_string()];
        for other in self.regions.iter().filter(|r| **r != self.region) {
            topics.push(orders_log::mirrored(other.as_str(), orders_log::ORDERS_TOPIC));
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_follows_its_own_topic_and_every_mirror() {
        let c = Config::from_lookup(|k| match k {
            "ORDERS_REGION" => Some("us".into()),
            "ORDERS_REGIONS" => Some("eu,us,ap".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.topics(), vec!["orders", "eu.orders", "ap.orders"]);
        assert_eq!(c.group(), "orders-worker-us");
    }

    #[test]
    fn a_region_missing_from_the_region_list_is_refused() {
        let e = Config::from_lookup(|k| (k == "ORDERS_REGION").then(|| "ap".into())).unwrap_err();
        assert!(e.to_string().contains("ORDERS_REGIONS"), "{e}");
    }
}
