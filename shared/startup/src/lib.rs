//! What every service of a region builds first, in the same order: a session pinned to the region's
//! datacenter, the journal over it, and the health checks the service then registers its own into.
use std::sync::Arc;

use orders_config::ServiceConfig;
use orders_health::{HealthChecks, ServiceInfo};
use orders_journal::{CrashPoint, Journal, JournalError};
use orders_store::{Durability, StoreConfig, StoreError};
use scylla::client::session::Session;
use tokio_util::sync::CancellationToken;

/// Who is starting: `name` prefixes the health service id (`api` in region eu is `api-eu`).
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub description: &'static str,
    /// The service's own crate version (`env!("CARGO_PKG_VERSION")` in the service).
    pub version: &'static str,
}

impl Service {
    pub const fn new(name: &'static str, description: &'static str, version: &'static str) -> Self {
        Service {
            name,
            description,
            version,
        }
    }
}

/// What a service has once it started: the session, the journal and the (still empty) checks.
pub struct Foundation {
    pub session: Arc<Session>,
    pub journal: Arc<Journal>,
    pub health: HealthChecks,
}

/// The start-up step that failed; the driver's or the journal's error is its source.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("connecting to the database")]
    Connect(#[source] StoreError),
    #[error("preparing the journal")]
    Journal(#[source] JournalError),
}

/// Connects to the region's datacenter and prepares the journal (appending with `durability`,
/// crashing at `crash` for the no-loss test); the health checks stop when `shutdown` is cancelled.
pub async fn start(
    service: Service,
    config: &ServiceConfig,
    durability: Durability,
    crash: CrashPoint,
    shutdown: CancellationToken,
) -> Result<Foundation, StartupError> {
    let store = StoreConfig::new(config.cassandra.clone(), config.region.as_str());
    let session = orders_store::connect(&store)
        .await
        .map_err(StartupError::Connect)?;
    let journal = Journal::new(
        session.clone(),
        config.region.clone(),
        &config.kafka,
        durability,
        crash,
    )
    .await
    .map_err(StartupError::Journal)?;
    let health = HealthChecks::new(
        ServiceInfo {
            service_id: format!("{}-{}", service.name, config.region),
            version: Some(service.version.to_string()),
            description: Some(service.description.into()),
        },
        shutdown,
    );
    Ok(Foundation {
        session,
        journal,
        health,
    })
}

#[cfg(test)]
mod tests {
    use orders_domain::Region;

    use super::*;

    #[tokio::test]
    async fn a_database_that_refuses_the_connection_fails_the_start_naming_the_step() {
        let eu = Region::new("eu").unwrap();
        let config = ServiceConfig {
            region: eu.clone(),
            regions: vec![eu],
            listen: "127.0.0.1:0".into(),
            // Port 1 on loopback: nothing listens there, so the connection is refused at once.
            cassandra: "127.0.0.1:1".into(),
            kafka: "127.0.0.1:1".into(),
        };
        let service = Service::new("api", "orders api", "0.0.0");
        let outcome = start(
            service,
            &config,
            Durability::Local,
            CrashPoint::Never,
            CancellationToken::new(),
        )
        .await;
        let Err(error) = outcome else {
            panic!("a start against a closed port succeeded");
        };
        assert!(matches!(error, StartupError::Connect(_)), "{error:?}");
        assert_eq!(error.to_string(), "connecting to the database");
    }
}
