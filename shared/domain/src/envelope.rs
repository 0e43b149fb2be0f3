//! `EventEnvelope`: an event with its identity, lane position and causal position, and its wire form.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::causal::VersionVector;
use crate::error::DomainError;
use crate::event::OrderEvent;
use crate::region::Region;

/// The envelope layout this build writes and reads.
pub const SCHEMA_VERSION: u16 = 1;

/// The highest lane position an envelope may carry: the store's CQL bigint.
const MAX_SEQ: u64 = i64::MAX as u64;

/// One event as stored and published. On the wire `type` appears twice: at the top, so a
/// consumer routes or filters without parsing the payload, and inside `payload`, which stays
/// self-describing. Reading checks that both agree.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "EnvelopeWire")]
pub struct EventEnvelope {
    /// UUIDv7 made by the caller (the domain has no clock or randomness); the dedupe key.
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub schema_version: u16,
    /// The region that wrote the event; it owns the lane the event sits in.
    pub origin_region: Region,
    /// 1-based position in the origin region's lane of this order's stream.
    pub seq: u64,
    /// What the writer had seen of every lane, its own new `seq` included.
    pub causal: VersionVector,
    pub occurred_at: DateTime<Utc>,
    pub payload: OrderEvent,
}

impl EventEnvelope {
    pub fn type_name(&self) -> &'static str {
        self.payload.type_name()
    }

    /// The invariants every envelope keeps, whoever built it: a known schema version, a lane
    /// position from 1, and a causal vector that counts the event itself in its own lane.
    pub fn check(&self) -> Result<(), DomainError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(DomainError::UnsupportedSchemaVersion {
                version: self.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let malformed = |reason: String| DomainError::MalformedEnvelope {
            event_id: self.event_id,
            reason,
        };
        if self.seq == 0 {
            return Err(malformed("seq starts at 1".to_owned()));
        }
        // The store keeps lane positions as CQL bigint: a larger one was never written by us, and
        // would leave no next seq to append at (found by fuzz/ event_decoding).
        if self.causal.iter().any(|(_, seq)| seq > MAX_SEQ) {
            return Err(malformed(format!("a seq above {MAX_SEQ}")));
        }
        let own = self.causal.get(&self.origin_region);
        if own != self.seq {
            return Err(malformed(format!(
                "causal[{}] is {own}, expected the event's own seq {}",
                self.origin_region, self.seq
            )));
        }
        Ok(())
    }

    /// The fold's total order: causal sum first (a linear extension of happened-before), then
    /// fixed tie-breaks so that concurrent events sort the same way in every region.
    pub(crate) fn canonical_key(&self) -> (u64, &Region, u64, Uuid) {
        (self.causal.sum(), &self.origin_region, self.seq, self.event_id)
    }
}

/// Borrowing twin of the wire form, so serializing copies nothing.
#[derive(Serialize)]
struct EnvelopeWireRef<'a> {
    event_id: &'a Uuid,
    order_id: &'a Uuid,
    #[serde(rename = "type")]
    type_name: &'static str,
    schema_version: u16,
    origin_region: &'a Region,
    seq: u64,
    causal: &'a VersionVector,
    occurred_at: &'a DateTime<Utc>,
    payload: &'a OrderEvent,
}

#[derive(Deserialize)]
struct EnvelopeWire {
    event_id: Uuid,
    order_id: Uuid,
    #[serde(rename = "type")]
    type_name: String,
    schema_version: u16,
    origin_region: Region,
    seq: u64,
    causal: VersionVector,
    occurred_at: DateTime<Utc>,
    payload: OrderEvent,
}

impl Serialize for EventEnvelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EnvelopeWireRef {
            event_id: &self.event_id,
            order_id: &self.order_id,
            type_name: self.type_name(),
            schema_version: self.schema_version,
            origin_region: &self.origin_region,
            seq: self.seq,
            causal: &self.causal,
            occurred_at: &self.occurred_at,
            payload: &self.payload,
        }
        .serialize(serializer)
    }
}

impl TryFrom<EnvelopeWire> for EventEnvelope {
    type Error = DomainError;

    fn try_from(wire: EnvelopeWire) -> Result<Self, Self::Error> {
        if wire.type_name != wire.payload.type_name() {
            return Err(DomainError::MalformedEnvelope {
                event_id: wire.event_id,
                reason: format!(
                    "envelope type {} disagrees with payload type {}",
                    wire.type_name,
                    wire.payload.type_name()
                ),
            });
        }
        let envelope = Self {
            event_id: wire.event_id,
            order_id: wire.order_id,
            schema_version: wire.schema_version,
            origin_region: wire.origin_region,
            seq: wire.seq,
            causal: wire.causal,
            occurred_at: wire.occurred_at,
            payload: wire.payload,
        };
        envelope.check()?;
        Ok(envelope)
    }
}
