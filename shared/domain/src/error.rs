//! The domain's error type: what can go wrong when building values, reading streams and deciding.

use uuid::Uuid;

use crate::region::Region;
use crate::state::OrderStatus;

/// Every failure the domain reports. Variants carry the ids needed to find the offending
/// record, so callers can log them as fields without parsing messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid region {value:?}: {reason}")]
    InvalidRegion { value: String, reason: &'static str },

    #[error("invalid currency {value:?}: expected three upper-case ISO 4217 letters")]
    InvalidCurrency { value: String },

    /// Some events of the order are visible but not the ones they depend on (at least its
    /// `OrderPlaced`): replication has not caught up yet, so callers wait and read again.
    #[error("stream of order {order_id} is incomplete: its placement is not visible yet")]
    IncompleteStream { order_id: Uuid },

    #[error("event {event_id} belongs to order {found}, not to order {expected}")]
    OrderMismatch {
        expected: Uuid,
        found: Uuid,
        event_id: Uuid,
    },

    /// Two different events claim one lane position. One region alone writes its lane (with a
    /// conditional append), so this means a second writer or a corrupted store.
    #[error("lane conflict in order {order_id}: {region} seq {seq} holds event {existing}, not {incoming}")]
    LaneConflict {
        order_id: Uuid,
        region: Region,
        seq: u64,
        existing: Uuid,
        incoming: Uuid,
    },

    /// One event id with two different contents: event ids are generated once per fact.
    #[error("event id {event_id} was reused for a different event")]
    EventIdReused { event_id: Uuid },

    #[error("malformed envelope {event_id}: {reason}")]
    MalformedEnvelope { event_id: Uuid, reason: String },

    #[error("unsupported schema version {version} (this build reads {supported})")]
    UnsupportedSchemaVersion { version: u16, supported: u16 },

    #[error("order {order_id} cannot be cancelled: it is {status}")]
    CannotCancel { order_id: Uuid, status: OrderStatus },
}
