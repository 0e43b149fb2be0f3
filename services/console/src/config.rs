//! The console's configuration: built-in defaults overridden by `ORDERS_*` environment variables.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub use orders_config::ConfigError;
use orders_config::Env;

/// Every service of the local stack, as `./dev` starts it.
pub const DEFAULT_TARGETS: &str = "eu=api@http://127.0.0.1:8081,worker@http://127.0.0.1:9181;\
                                   us=api@http://127.0.0.1:8082,worker@http://127.0.0.1:9182";

/// One service of one region that the console polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub region: String,
    pub service: String,
    /// Base URL without a trailing slash.
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `ORDERS_LISTEN`: the console's HTTP address.
    pub listen: String,
    /// `ORDERS_CONSOLE_TARGETS`: `region=service@url,service@url;region=...`.
    pub targets: Vec<Target>,
    /// `ORDERS_HEALTH_MODEL`: thresholds and flows (relative paths from the working directory).
    pub health_model: PathBuf,
    /// `ORDERS_CONSOLE_WEB`: the built page (`npm run build` in services/console/web).
    pub web_dir: PathBuf,
    /// How often every service's readiness is polled.
    pub health_interval: Duration,
    /// How long a readiness request may take before the service counts as unreachable.
    pub health_timeout: Duration,
    /// How often every service's metrics are scraped.
    pub metrics_interval: Duration,
    /// How much of every time series is kept.
    pub series_window: Duration,
    /// How far back state changes are kept.
    pub history_window: Duration,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::new(get);
        let targets = env.var("ORDERS_CONSOLE_TARGETS", DEFAULT_TARGETS);
        let targets = parse_targets(&targets).map_err(|detail| ConfigError {
            variable: "ORDERS_CONSOLE_TARGETS",
            detail,
        })?;
        Ok(Config {
            listen: env.var("ORDERS_LISTEN", "127.0.0.1:8070"),
            targets,
            health_model: env.var("ORDERS_HEALTH_MODEL", "deploy/health-model.yaml").into(),
            web_dir: env.var("ORDERS_CONSOLE_WEB", "services/console/web/dist").into(),
            health_interval: Duration::from_secs(2),
            health_timeout: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(5),
            series_window: Duration::from_secs(15 * 60),
            history_window: Duration::from_secs(60 * 60),
        })
    }

    /// The regions in the order the targets name them.
    pub fn regions(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.targets
            .iter()
            .map(|t| t.region.as_str())
            .filter(|r| seen.insert(*r))
            .collect()
    }
}

/// Parses `eu=api@http://127.0.0.1:8081,worker@http://127.0.0.1:9181;us=...`. Empty segments
/// between semicolons are ignored so a trailing `;` is harmless.
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for segment in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (region, services) = segment
            .split_once('=')
            .ok_or_else(|| format!("{segment:?} is not `region=service@url,...`"))?;
        let region = name("region", region.trim())?;
        for service in services.split(',').map(str::trim) {
            let (service, url) = service
                .split_once('@')
                .ok_or_else(|| format!("{service:?} in region {region} is not `service@url`"))?;
            let service = name("service", service.trim())?;
            let url = url.trim().trim_end_matches('/');
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(|| format!("{region}/{service}: {url:?} is not an http:// URL"))?;
            if rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("{region}/{service}: {url:?} names no host"));
            }
            if targets.iter().any(|t| t.region == region && t.service == service) {
                return Err(format!("{region}/{service} is listed twice"));
            }
            targets.push(Target {
                region: region.clone(),
                service,
                url: url.to_string(),
            });
        }
    }
    if targets.is_empty() {
        return Err("lists no service".into());
    }
    Ok(targets)
}

/// Region and service names end up in URLs, JSON keys and Prometheus labels: keep them plain.
fn name(what: &str, value: &str) -> Result<String, String> {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if plain {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{what} name {value:?} must be lowercase letters, digits, - or _"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_targets_are_both_local_regions_with_api_and_worker() {
        let config = Config::from_lookup(|_| None).unwrap();
        let listed: Vec<(&str, &str, &str)> = config
            .targets
            .iter()
            .map(|t| (t.region.as_str(), t.service.as_str(), t.url.as_str()))
            .collect();
        assert_eq!(
            listed,
            [
                ("eu", "api", "http://127.0.0.1:8081"),
                ("eu", "worker", "http://127.0.0.1:9181"),
                ("us", "api", "http://127.0.0.1:8082"),
                ("us", "worker", "http://127.0.0.1:9182"),
            ]
        );
        assert_eq!(config.regions(), ["eu", "us"]);
        assert_eq!(config.listen, "127.0.0.1:8070");
    }

    #[test]
    fn targets_tolerate_spaces_trailing_slashes_and_a_trailing_semicolon() {
        let targets = parse_targets(" ap = api@http://10.0.0.1:1/ , worker@http://h:2 ;").unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].url, "http://10.0.0.1:1");
        assert_eq!(
            (targets[1].region.as_str(), targets[1].service.as_str()),
            ("ap", "worker")
        );
    }

    #[test]
    fn malformed_targets_are_refused_with_the_variable_named() {
        for bad in [
            "",
            "eu",
            "eu=api",
            "eu=api@ftp://x",
            "eu=api@http://",
            "EU=api@http://x",
            "eu=api@http://x,api@http://y",
        ] {
            assert!(parse_targets(bad).is_err(), "{bad:?} was accepted");
        }
        let error =
            Config::from_lookup(|k| (k == "ORDERS_CONSOLE_TARGETS").then(|| "eu".into())).unwrap_err();
        assert!(error.to_string().starts_with("ORDERS_CONSOLE_TARGETS"), "{error}");
    }
}
