//! The CQL side of the system: sessions pinned to one datacenter, schema, event lanes, projections.
pub mod api_keys;
pub mod schema;
pub mod session;

pub use session::{StoreConfig, connect};

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to datacenter {datacenter} via {contact}")]
    Connect {
        contact: String,
        datacenter: String,
        #[source]
        source: scylla::errors::NewSessionError,
    },
    #[error("query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("schema file {path}: {detail}")]
    Schema { path: String, detail: String },
}

impl StoreError {
    pub(crate) fn query(what: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Query {
            what,
            source: Box::new(source),
        }
    }
}
