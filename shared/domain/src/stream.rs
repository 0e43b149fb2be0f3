//! `OrderStream`: one order's events from every region's lane, and how a region appends to its own.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use uuid::Uuid;

use crate::causal::VersionVector;
use crate::envelope::{EventEnvelope, SCHEMA_VERSION};
use crate::error::DomainError;
use crate::event::OrderEvent;
use crate::fold::apply;
use crate::region::Region;
use crate::state::OrderState;

/// The events of one order as one region sees them: the union of all lanes, deduplicated by
/// `event_id`. Replication may deliver lanes late, out of order or with gaps, so the fold only
/// takes events whose whole causal past is present (the others wait); with every event
/// delivered, the state is the same in every region.
#[derive(Debug, Clone)]
pub struct OrderStream {
    order_id: Uuid,
    events: BTreeMap<Uuid, EventEnvelope>,
    /// Per region, seq to event id: detects lane conflicts and gaps.
    lanes: BTreeMap<Region, BTreeMap<u64, Uuid>>,
}

impl OrderStream {
    pub fn new(order_id: Uuid) -> Self {
        Self {
            order_id,
            events: BTreeMap::new(),
            lanes: BTreeMap::new(),
        }
    }

    pub fn from_events(
        order_id: Uuid,
        events: impl IntoIterator<Item = EventEnvelope>,
    ) -> Result<Self, DomainError> {
        let mut stream = Self::new(order_id);
        for event in events {
            stream.insert(event)?;
        }
        Ok(stream)
    }

    pub fn order_id(&self) -> Uuid {
        self.order_id
    }

    /// Adds an event; `Ok(false)` when its id is already here (a redelivery, folded once).
    /// Refuses events of another order, malformed envelopes, and a second event at a taken lane
    /// position, none of which replication alone can produce.
    pub fn insert(&mut self, e: EventEnvelope) -> Result<bool, DomainError> {
        if e.order_id != self.order_id {
            return Err(DomainError::OrderMismatch {
                expected: self.order_id,
                found: e.order_id,
                event_id: e.event_id,
            });
        }
        e.check()?;
        // Copies of one event may differ in representation (a store may keep coarser
        // timestamps), so identity is the id plus its lane position, not every byte.
        if let Some(known) = self.events.get(&e.event_id) {
            return if known.origin_region == e.origin_region && known.seq == e.seq {
                Ok(false)
            } else {
                Err(DomainError::EventIdReused { event_id: e.event_id })
            };
        }
        let lane = self.lanes.entry(e.origin_region.clone()).or_default();
        if let Some(&existing) = lane.get(&e.seq) {
            return Err(DomainError::LaneConflict {
                order_id: self.order_id,
                region: e.origin_region,
                seq: e.seq,
                existing,
                incoming: e.event_id,
            });
        }
        lane.insert(e.seq, e.event_id);
        self.events.insert(e.event_id, e);
        Ok(true)
    }

    /// The highest seq present in the region's lane (0 for none): where its next append goes.
    pub fn lane_head(&self, region: &Region) -> u64 {
        self.lanes
            .get(region)
            .and_then(|lane| lane.keys().next_back().copied())
            .unwrap_or(0)
    }

    /// Whether the event with this id is present.
    pub fn contains(&self, event_id: Uuid) -> bool {
        self.events.contains_key(&event_id)
    }

    /// Number of distinct events present, foldable or not.
    pub fn version(&self) -> u64 {
        self.events.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Every event present, in canonical order (see `fold`).
    pub fn ordered(&self) -> Vec<&EventEnvelope> {
        let mut events: Vec<_> = self.events.values().collect();
        events.sort_by(|a, b| a.canonical_key().cmp(&b.canonical_key()));
        events
    }

    /// True when no event waits for a missing predecessor: what is here is causally closed.
    pub fn is_causally_complete(&self) -> bool {
        self.foldable().len() == self.events.len()
    }

    /// The fold of every foldable event: `Ok(None)` for an empty stream,
    /// `Err(IncompleteStream)` while the order's placement is not visible.
    pub fn state(&self) -> Result<Option<OrderState>, DomainError> {
        if self.events.is_empty() {
            return Ok(None);
        }
        let incomplete = || DomainError::IncompleteStream {
            order_id: self.order_id,
        };
        let foldable = self.foldable();
        let (first, rest) = foldable.split_first().ok_or_else(incomplete)?;
        let mut state = OrderState::from_placement(first).ok_or_else(incomplete)?;
        for e in rest {
            apply(&mut state, e);
        }
        Ok(Some(state))
    }

    /// Canonical order, keeping only events whose causal past is all present: each lane
    /// contiguous up to what the event's vector claims. Writers merge what they saw into their
    /// vectors, so this set is closed under happened-before and equals a state some writer saw.
    fn foldable(&self) -> Vec<&EventEnvelope> {
        let contiguous: BTreeMap<&Region, u64> = self
            .lanes
            .iter()
            .map(|(region, lane)| {
                let head = lane.keys().zip(1u64..).take_while(|(seq, n)| **seq == *n);
                (region, head.count() as u64)
            })
            .collect();
        let mut events = self.ordered();
        events.retain(|e| {
            e.causal
                .iter()
                .all(|(region, seq)| contiguous.get(region).copied().unwrap_or(0) >= seq)
        });
        events
    }
}

/// Builds the envelope for `region` appending `event`: the next seq of its own lane, and a
/// causal vector that covers everything the region's fold has seen, plus the event itself.
///
/// `now` is kept to the millisecond, the precision of UUIDv7 and CQL timestamps, so every copy
/// of the event compares equal.
pub fn next_envelope(
    stream: &OrderStream,
    region: &Region,
    event: OrderEvent,
    event_id: Uuid,
    now: DateTime<Utc>,
) -> EventEnvelope {
    let seq = stream.lane_head(region) + 1;
    let mut causal = VersionVector::new();
    for seen in stream.foldable() {
        causal.merge(&seen.causal);
    }
    causal.set(region.clone(), seq);
    EventEnvelope {
        event_id,
        order_id: stream.order_id,
        schema_version: SCHEMA_VERSION,
        origin_region: region.clone(),
        seq,
        causal,
        occurred_at: now.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(now),
        payload: event,
    }
}
