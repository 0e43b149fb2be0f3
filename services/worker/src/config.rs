//! The worker's configuration: built-in defaults overridden by `ORDERS_*` environment variables.
pub use orders_config::ConfigError;
use orders_config::Env;
use orders_domain::Region;
use orders_health::Secret;

#[derive(Debug, Clone)]
pub struct Config {
    /// `ORDERS_REGION`: this region, also its datacenter name.
    pub region: Region,
    /// `ORDERS_REGIONS`: every region, comma-separated (whose mirrored topics to follow).
    pub regions: Vec<Region>,
    /// `ORDERS_LISTEN`: health, metrics and admin HTTP.
    pub listen: String,
    /// `ORDERS_CASSANDRA`: a CQL node of this region's datacenter.
    pub cassandra: String,
    /// `ORDERS_KAFKA`: this region's Kafka.
    pub kafka: String,
    /// `ORDERS_PAYMENT_URL`: the payment provider.
    pub payment_url: String,
    /// `ORDERS_OPS_TOKEN`: the operator token for /admin.
    pub ops_token: Secret,
    /// `ORDERS_DURABILITY`: how far the worker's own events are replicated before it moves on
    /// (`global`, the default, or `local`), as for placements.
    pub durability: orders_store::Durability,
    /// `ORDERS_WORKER_LANES`: orders processed at once (records of one order stay in order).
    pub lanes: usize,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(get);
        let region = env.region("ORDERS_REGION", "eu")?;
        let regions = env.regions("ORDERS_REGIONS", "eu,us", &region)?;
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
            durability,
            region,
            regions,
            listen: env.var("ORDERS_LISTEN", "127.0.0.1:9181"),
            cassandra: env.var("ORDERS_CASSANDRA", "127.0.0.2:9042"),
            kafka: env.var("ORDERS_KAFKA", "127.0.0.1:19092"),
            payment_url: env.var("ORDERS_PAYMENT_URL", "http://127.0.0.1:8099"),
            ops_token: Secret::new(env.var("ORDERS_OPS_TOKEN", "")),
            lanes,
        })
    }

    /// The consumer group of this region's workers.
    pub fn group(&self) -> String {
        format!("orders-worker-{}", self.region)
    }

    /// The topics this region's workers read: its own `orders` and every other region's mirror.
    pub fn topics(&self) -> Vec<String> {
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
