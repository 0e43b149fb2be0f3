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
pub mod parked;
pub mod reach;
pub mod schema;
pub mod session;
pub mod stock;

pub use events::{Appended, Durability, EventStore};
pub use session::{StoreConfig, connect};

use scylla::client::session::Session;
use scylla::errors::{
    BrokenConnectionError, ConnectionError, ConnectionPoolError, DbError, ExecutionError, NewSessionError,
    NextPageError, PrepareError, RequestAttemptError, RequestError, SchemaAgreementError,
};
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
    /// Whether the error is worth retrying: the database or the way to it is slow, busy or briefly
    /// gone (timeouts, unavailable replicas, overload, broken connections, contention). Everything
    /// else is permanent: a row that cannot be decoded, an event that cannot be encoded, a schema or
    /// statement the database refuses, a value of the wrong type; retrying it only repeats it.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } => !matches!(
                **source,
                NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_)
            ),
            StoreError::Prepare { source, .. } => driver_error_is_transient(&**source),
            StoreError::Query { source, .. } | StoreError::Append { source, .. } => {
                driver_error_is_transient(&**source)
            }
            StoreError::Contention { .. } => true,
            StoreError::Encode { .. } | StoreError::Decode { .. } | StoreError::Schema { .. } => false,
        }
    }

    /// The order the failed read or write belonged to, when the error knows it.
    pub fn order_id(&self) -> Option<Uuid> {
        match self {
            StoreError::Append { order_id, .. } | StoreError::Decode { order_id, .. } => Some(*order_id),
            _ => None,
        }
    }

    pub(crate) fn query(what: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Query {
            what,
            source: Box::new(source),
        }
    }
}

/// Walks a driver error's cause chain to the first cause that decides: a database error by its
/// code, a timeout or a connection problem as transient; anything else (serialization, decoding,
/// type checks, unexpected responses) as permanent.
fn driver_error_is_transient(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(db) = error.downcast_ref::<DbError>() {
            return db_error_is_transient(db);
        }
        if let Some(attempt) = error.downcast_ref::<RequestAttemptError>() {
            return attempt_is_transient(attempt);
        }
        if let Some(execution) = error.downcast_ref::<ExecutionError>() {
            match execution {
                ExecutionError::RequestTimeout(_)
                | ExecutionError::EmptyPlan
                | ExecutionError::ConnectionPoolError(_) => return true,
                ExecutionError::LastAttemptError(attempt) => return attempt_is_transient(attempt),
                _ => {}
            }
        }
        if let Some(request) = error.downcast_ref::<RequestError>() {
            return request_is_transient(request);
        }
        // A transparent variant forwards `source()` past its inner error: look at it here.
        if let Some(NextPageError::RequestFailure(request)) = error.downcast_ref::<NextPageError>() {
            return request_is_transient(request);
        }
        if let Some(PrepareError::AllAttemptsFailed { first_attempt }) = error.downcast_ref::<PrepareError>()
        {
            return attempt_is_transient(first_attempt);
        }
        if let Some(SchemaAgreementError::Timeout(_)) = error.downcast_ref::<SchemaAgreementError>() {
            return true;
        }
        if error.is::<ConnectionPoolError>()
            || error.is::<ConnectionError>()
            || error.is::<BrokenConnectionError>()
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                TimedOut
                    | ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | NotConnected
                    | BrokenPipe
            );
        }
        next = error.source();
    }
    false
}

fn request_is_transient(request: &RequestError) -> bool {
    match request {
        RequestError::RequestTimeout(_) | RequestError::EmptyPlan | RequestError::ConnectionPoolError(_) => {
            true
        }
        RequestError::LastAttemptError(attempt) => attempt_is_transient(attempt),
        _ => false,
    }
}

fn attempt_is_transient(attempt: &RequestAttemptError) -> bool {
    match attempt {
        RequestAttemptError::DbError(db, _) => db_error_is_transient(db),
        RequestAttemptError::UnableToAllocStreamId | RequestAttemptError::BrokenConnectionError(_) => true,
        _ => false,
    }
}

/// The codes a coordinator answers when it is busy or cannot reach enough replicas right now; the
/// rest (syntax, invalid request, unauthorized, protocol errors) repeat on every retry.
fn db_error_is_transient(db: &DbError) -> bool {
    matches!(
        db,
        DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::TruncateError
            | DbError::RateLimitReached { .. }
            | DbError::Unprepared { .. }
    )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use scylla::errors::NextRowError;

    use super::*;

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "refused".into()))
    }

    #[test]
    fn timeouts_unavailable_replicas_and_overload_are_transient() {
        for error in [
            ExecutionError::RequestTimeout(Duration::from_secs(2)),
            ExecutionError::EmptyPlan,
            db(DbError::Overloaded),
            db(DbError::IsBootstrapping),
            db(DbError::Unavailable {
                consistency: scylla::statement::Consistency::LocalQuorum,
                required: 2,
                alive: 1,
            }),
        ] {
            let error = StoreError::query("read stream", error);
            assert!(error.is_transient(), "{error:?}");
        }
        let timeout = StoreError::query("read stream", std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(timeout.is_transient());
        let contention = StoreError::Contention {
            what: "reserve stock",
            key: "sku".into(),
        };
        assert!(contention.is_transient());
    }

    #[test]
    fn a_timeout_deep_in_a_pager_error_is_found_through_the_cause_chain() {
        let error = NextRowError::NextPageError(NextPageError::RequestFailure(RequestError::RequestTimeout(
            Duration::from_secs(2),
        )));
        assert!(StoreError::query("list open orders", error).is_transient());
    }

    #[test]
    fn refused_statements_undecodable_rows_and_unknown_causes_are_permanent() {
        for error in [
            db(DbError::SyntaxError),
            db(DbError::Invalid),
            db(DbError::ProtocolError),
            db(DbError::ServerError),
        ] {
            let error = StoreError::Append {
                order_id: Uuid::nil(),
                seq: 1,
                source: Box::new(error),
            };
            assert!(!error.is_transient(), "{error:?}");
        }
        let decode = StoreError::Decode {
            order_id: Uuid::nil(),
            detail: "expected value at line 1 column 1".into(),
        };
        assert!(!decode.is_transient());
        let price = StoreError::query("catalog price", std::io::Error::other("not a number"));
        assert!(!price.is_transient());
    }
}
