//! Builds a driver session that talks only to its own region's datacenter.
//!
//! Every region reads and writes at LOCAL_QUORUM / LOCAL_SERIAL through nodes of its own datacenter
//! and never fails over to another one: a region that loses its datacenter must show it, not quietly
//! route its traffic across the ocean.
use std::sync::Arc;
use std::time::Duration;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::statement::{Consistency, SerialConsistency};

use crate::StoreError;

/// Where and how a region connects to the database.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `host:port` of a node in this region's datacenter.
    pub contact: String,
    /// This region's datacenter name (equal to the region name).
    pub datacenter: String,
    pub keyspace: String,
    pub request_timeout: Duration,
}

impl StoreConfig {
    pub fn new(contact: impl Into<String>, datacenter: impl Into<String>) -> Self {
        StoreConfig {
            contact: contact.into(),
            datacenter: datacenter.into(),
            keyspace: "orders".into(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Connects with LOCAL_QUORUM reads and writes, LOCAL_SERIAL for lightweight transactions.
pub async fn connect(config: &StoreConfig) -> Result<Arc<Session>, StoreError> {
    connect_with(config, Consistency::LocalQuorum).await
}

/// Connects pinned to the datacenter with a chosen default consistency.
pub async fn connect_with(
    config: &StoreConfig,
    consistency: Consistency,
) -> Result<Arc<Session>, StoreError> {
    let policy = DefaultPolicy::builder()
        .prefer_datacenter(config.datacenter.clone())
        .permit_dc_failover(false)
        .token_aware(true)
        .build();
    let profile = ExecutionProfile::builder()
        .consistency(consistency)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .load_balancing_policy(policy)
        .request_timeout(Some(config.request_timeout))
        .build();
    let session = SessionBuilder::new()
        .known_node(&config.contact)
        .default_execution_profile_handle(profile.into_handle())
        .connection_timeout(Duration::from_secs(3))
        .build()
        .await
        .map_err(|source| StoreError::Connect {
            contact: config.contact.clone(),
            datacenter: config.datacenter.clone(),
            source: Box::new(source),
        })?;
    Ok(Arc::new(session))
}
