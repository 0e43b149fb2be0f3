//! The CQL side of the system: sessions pinned to one datacenter, schema, the event store with its
//! outbox, projections, catalog, idempotency records and API keys.
pub mod api_keys;
pub mod catalog;
pub mod customers;
pub mod events;
pub mod idempotency;
pub mod open_orders;
pub mod outbox;
pub mod ownership;
pub mod reach;
pub mod schema;
pub mod session;
pub mod stock;

pub use events::{Appended, Durability, EventStore};
pub use session::{StoreConfig, connect};

use scylla::client::session::Session;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use uuid::Uuid;

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to datacenter {datacenter} via {contact}")]
    Connect {
        contact: String,
        datacenter: String,
        #[source]
        source: Box<scylla::errors::NewSessionError>,
    },
    #[error("cannot prepare {cql}")]
    Prepare {
        cql: &'static str,
        #[source]
        source: Box<scylla::errors::PrepareError>,
    },
    #[error("query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("append of order {order_id} at seq {seq} failed")]
    Append {
        order_id: Uuid,
        seq: u64,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("event {event_id} cannot be encoded: {detail}")]
    Encode { event_id: Uuid, detail: String },
    #[error("stored events of order {order_id} cannot be read: {detail}")]
    Decode { order_id: Uuid, detail: String },
    #[error("{what} of {key}: gave up after repeated contention")]
    Contention { what: &'static str, key: String },
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

/// Prepares a statement under the session's default profile (see `session`); a statement that needs
/// another consistency or idempotence sets it on the result.
pub(crate) async fn prepare(session: &Session, cql: &'static str) -> Result<PreparedStatement, StoreError> {
    session.prepare(cql).await.map_err(|source| StoreError::Prepare {
        cql,
        source: Box::new(source),
    })
}

/// Whether a lightweight transaction applied: its first column is `[applied]`; when it did not
/// apply, the current values follow.
pub(crate) fn lwt_applied(result: QueryResult) -> Result<bool, StoreError> {
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::query("lwt result", e))?;
    let row = rows
        .first_row::<Row>()
        .map_err(|e| StoreError::query("lwt result", e))?;
    Ok(matches!(row.columns.first(), Some(Some(CqlValue::Boolean(true)))))
}
