//! Configuration shared by the services: the error every setting reports, the lookup of `ORDERS_*`
//! environment variables with built-in defaults, the settings every service of a region reads, and
//! the region list of the local stack.
pub mod regions_conf;

use std::fmt::Display;
use std::str::FromStr;

use orders_domain::Region;

/// A setting that is present but unusable, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {detail}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub detail: String,
}

/// Environment variables with built-in defaults. Built from a lookup function so that tests can
/// inject values instead of setting the process environment.
pub struct Env<F> {
    get: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Env { get }
    }

    /// The variable's value, or `default` when it is unset.
    pub fn var(&self, name: &str, default: &str) -> String {
        (self.get)(name).unwrap_or_else(|| default.to_string())
    }

    /// The variable's value parsed as `T`; the parse error becomes the detail.
    pub fn parse<T>(&self, name: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.var(name, default).parse().map_err(|e: T::Err| ConfigError {
            variable: name,
            detail: e.to_string(),
        })
    }

    /// One region name, e.g. `ORDERS_REGION`.
    pub fn region(&self, name: &'static str, default: &str) -> Result<Region, ConfigError> {
        region_of(name, &self.var(name, default))
    }

    /// A comma-separated region list, e.g. `ORDERS_REGIONS`, which must list `including` (this region).
    pub fn regions(
        &self,
        name: &'static str,
        default: &str,
        including: &Region,
    ) -> Result<Vec<Region>, ConfigError> {
        let regions = self
            .var(name, default)
            .split(',')
            .map(|r| region_of(name, r))
            .collect::<Result<Vec<_>, _>>()?;
        if !regions.contains(including) {
            return Err(ConfigError {
                variable: name,
                detail: format!("does not list {including}"),
            });
        }
        Ok(regions)
    }
}

/// What every service of a region is configured with; each service's `Config` embeds it.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `ORDERS_REGION`: this region's name, also its datacenter name.
    pub region: Region,
    /// `ORDERS_REGIONS`: every region, comma-separated.
    pub regions: Vec<Region>,
    /// `ORDERS_LISTEN`: the service's HTTP address.
    pub listen: String,
    /// `ORDERS_CASSANDRA`: a CQL node of this region's datacenter.
    pub cassandra: String,
    /// `ORDERS_KAFKA`: this region's Kafka bootstrap servers.
    pub kafka: String,
}

impl ServiceConfig {
    /// Reads the shared settings; `listen` is the service's own default address.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>, listen: &str) -> Result<Self, ConfigError> {
        let region = env.region("ORDERS_REGION", "eu")?;
        let regions = env.regions("ORDERS_REGIONS", "eu,us", &region)?;
        Ok(ServiceConfig {
            region,
            regions,
            listen: env.var("ORDERS_LISTEN", listen),
            cassandra: env.var("ORDERS_CASSANDRA", "127.0.0.2:9042"),
            kafka: env.var("ORDERS_KAFKA", "127.0.0.1:19092"),
        })
    }
}

fn region_of(variable: &'static str, name: &str) -> Result<Region, ConfigError> {
    Region::new(name.trim()).map_err(|e| ConfigError {
        variable,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(|k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn an_unset_variable_takes_its_default() {
        let env = env(&[("ORDERS_LISTEN", "0.0.0.0:1")]);
        assert_eq!(env.var("ORDERS_LISTEN", "127.0.0.1:2"), "0.0.0.0:1");
        assert_eq!(env.var("ORDERS_KAFKA", "127.0.0.1:19092"), "127.0.0.1:19092");
    }

    #[test]
    fn region_lists_are_trimmed_and_must_include_this_region() {
        let env = env(&[("ORDERS_REGION", "us"), ("ORDERS_REGIONS", "eu, us ,ap")]);
        let region = env.region("ORDERS_REGION", "eu").unwrap();
        let regions = env.regions("ORDERS_REGIONS", "eu,us", &region).unwrap();
        let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
        assert_eq!(names, ["eu", "us", "ap"]);
        let elsewhere = Region::new("xx").unwrap();
        let error = env.regions("ORDERS_REGIONS", "eu,us", &elsewhere).unwrap_err();
        assert_eq!(error.to_string(), "ORDERS_REGIONS: does not list xx");
    }

    #[test]
    fn a_service_reads_its_region_and_neighbours_with_its_own_default_address() {
        let service = ServiceConfig::from_env(&env(&[("ORDERS_REGION", "us")]), "127.0.0.1:9").unwrap();
        assert_eq!(service.region.as_str(), "us");
        assert_eq!(service.regions.len(), 2);
        assert_eq!(service.listen, "127.0.0.1:9");
        assert_eq!(service.cassandra, "127.0.0.2:9042");
        assert_eq!(service.kafka, "127.0.0.1:19092");
        let error = ServiceConfig::from_env(&env(&[("ORDERS_REGION", "ap")]), "127.0.0.1:9").unwrap_err();
        assert!(error.to_string().starts_with("ORDERS_REGIONS: "), "{error}");
    }

    #[test]
    fn a_bad_value_is_refused_with_the_variable_named() {
        let env = env(&[("ORDERS_REGION", "EU"), ("ORDERS_REGIONS", "eu,,us"), ("N", "x")]);
        let error = env.region("ORDERS_REGION", "eu").unwrap_err();
        assert!(error.to_string().starts_with("ORDERS_REGION: "), "{error}");
        let eu = Region::new("eu").unwrap();
        let error = env.regions("ORDERS_REGIONS", "eu,us", &eu).unwrap_err();
        assert!(error.to_string().starts_with("ORDERS_REGIONS: "), "{error}");
        let error = env.parse::<u16>("N", "1").unwrap_err();
        assert!(error.to_string().starts_with("N: "), "{error}");
    }
}
