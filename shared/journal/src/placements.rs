//! The placement relay: a placement writes no outbox row, its open-orders row is its intent. The
//! relay publishes placements whose produce failed (from memory) or whose writer died before it
//! (from the open-orders rows of its region), and drops the rows of placements that never happened.
//!
//! Only the API runs it. A bounded set of the orders this process published keeps it from reading
//! the streams of orders the worker has simply not finished yet: each old open order is read, and
//! republished, at most once per process lifetime (docs/decisions/0002-outbox.md).
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use orders_domain::{EventEnvelope, OrderEvent, OrderStream, Region};
use orders_store::open_orders::OpenOrder;
use orders_store::outbox::SHARDS;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{ABANDON_AFTER, Journal, JournalError, MIN_AGE};

/// How often the open-orders rows are read. Reading a shard also reads the tombstone of every order
/// finished within the table's `gc_grace_seconds` (an hour), so this runs far less often than the
/// retry of this process's failed produces, which reads nothing.
pub const SCAN_EVERY: Duration = Duration::from_secs(30);

/// Failed produces kept for a retry; beyond this the scan finds them.
const UNPUBLISHED_CAP: usize = 10_000;

/// Streams read, or events published, at once in a pass.
const CONCURRENCY: usize = 16;

/// What one pass of the placement relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlacementStats {
    /// Failed produces published from memory.
    pub retried: u64,
    /// Streams of open orders read.
    pub read: u64,
    /// Placements published from their open-orders rows.
    pub published: u64,
    /// Rows of placements that never happened, removed.
    pub abandoned: u64,
}

/// What to do with an open-orders row once its order's stream is read.
#[derive(Debug, PartialEq)]
enum Fate {
    /// Publish this region's `OrderPlaced` of the order (again: consumers dedupe by event id).
    Publish(Box<EventEnvelope>),
    /// The order has events but no placement of this region: the worker's business, not ours.
    NotOurs,
    /// No events long after the row was written: the placement was never acknowledged.
    Abandon,
    /// No events yet: the placement may still be under way.
    Wait,
}

/// The fate of an open order of `region`, `age` after it was placed, from its stream.
fn judge(stream: &OrderStream, region: &Region, age: Duration, abandon_after: Duration) -> Fate {
    let placed = stream
        .ordered()
        .into_iter()
        .find(|e| &e.origin_region == region && matches!(e.payload, OrderEvent::OrderPlaced { .. }));
    match placed {
        Some(event) => Fate::Publish(Box::new(event.clone())),
        None if !stream.is_empty() => Fate::NotOurs,
        None if age >= abandon_after => Fate::Abandon,
        None => Fate::Wait,
    }
}

impl Journal {
    /// Publishes a written placement and remembers it; keeps it for a retry if the produce fails.
    pub(crate) async fn publish_placement(&self, event: EventEnvelope) -> bool {
        let order_id = event.order_id;
        if self.publish_event(&event).await.is_ok() {
            self.recent.insert(order_id);
            return true;
        }
        let mut unpublished = self.unpublished.lock().expect("unpublished lock");
        if unpublished.len() < UNPUBLISHED_CAP {
            unpublished.insert(order_id, event);
        }
        false
    }

    /// Publishes again the placements whose produce failed in this process.
    pub async fn retry_unpublished(&self) -> u64 {
        let events: Vec<EventEnvelope> = {
            let mut unpublished = self.unpublished.lock().expect("unpublished lock");
            unpublished.drain().map(|(_, event)| event).collect()
        };
        futures::stream::iter(events)
            .map(|event| self.publish_placement(event))
            .buffer_unordered(CONCURRENCY)
            .filter(|published| std::future::ready(*published))
            .count()
            .await as u64
    }

    /// One pass over the open-orders rows of this region. Rows younger than `min_age` are left to
    /// the fast path, and orders this process published already are not read.
    pub async fn relay_placements_once(
        &self,
        min_age: Duration,
        abandon_after: Duration,
    ) -> Result<PlacementStats, JournalError> {
        let mut stats = PlacementStats::default();
        let region = self.store.region().clone();
        let now = Utc::now();
        let mut old = Vec::new();
        for shard in 0..SHARDS {
            for row in self.open_orders.list_placed(region.as_str(), shard).await? {
                let age = (now - row.placed_at).to_std().unwrap_or_default();
                let pending = self
                    .unpublished
                    .lock()
                    .expect("unpublished lock")
                    .contains_key(&row.order_id);
                if age >= min_age && !pending && !self.recent.contains(row.order_id) {
                    old.push((row, age));
                }
            }
        }
        let fates: Vec<Result<Option<Fate>, JournalError>> = futures::stream::iter(old)
            .map(|(row, age)| self.relay_open_order(row, age, &region, abandon_after))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for fate in fates {
            stats.read += 1;
            match fate? {
                Some(Fate::Publish(_)) => stats.published += 1,
                Some(Fate::Abandon) => stats.abandoned += 1,
                _ => {}
            }
        }
        Ok(stats)
    }

    /// Reads one old open order's stream and does what its fate says; `None` if the publish failed.
    async fn relay_open_order(
        &self,
        row: OpenOrder,
        age: Duration,
        region: &Region,
        abandon_after: Duration,
    ) -> Result<Option<Fate>, JournalError> {
        let stream = self.store.read_stream(row.order_id).await?;
        let fate = judge(&stream, region, age, abandon_after);
        match &fate {
            Fate::Publish(event) => {
                if self.publish_event(event).await.is_err() {
                    return Ok(None);
                }
                self.recent.insert(row.order_id);
            }
            Fate::NotOurs => self.recent.insert(row.order_id),
            Fate::Abandon => self.open_orders.abandon(region.as_str(), &row).await?,
            Fate::Wait => {}
        }
        Ok(Some(fate))
    }

    /// Retries this process's failed produces every `interval` and reads the open-orders rows every
    /// `SCAN_EVERY`, until shut down.
    pub async fn run_placement_relay(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_scan: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let retried = self.retry_unpublished().await;
            if retried > 0 {
                info!(retried, "placements published again after a failed produce");
            }
            if last_scan.is_some_and(|at| at.elapsed() < SCAN_EVERY) {
                continue;
            }
            last_scan = Some(tokio::time::Instant::now());
            match self.relay_placements_once(MIN_AGE, ABANDON_AFTER).await {
                Ok(stats) if stats.published + stats.abandoned > 0 => info!(
                    read = stats.read,
                    published = stats.published,
                    abandoned = stats.abandoned,
                    "placements relayed"
                ),
                Ok(_) => {}
                Err(error) => warn!(%error, "placement relay pass failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use orders_domain::{LineItem, Money, ShippingAddress, next_envelope};
    use uuid::Uuid;

    const ABANDON: Duration = Duration::from_secs(30);

    fn region(name: &str) -> Region {
        name.parse().expect("a region")
    }

    fn placed(order_id: Uuid, region: &Region) -> EventEnvelope {
        let price = Money {
            amount_minor: 1200,
            currency: "EUR".into(),
        };
        let event = OrderEvent::OrderPlaced {
            customer_id: Uuid::new_v4(),
            items: vec![LineItem {
                sku: "MUG".into(),
                quantity: 1,
                unit_price: price.clone(),
            }],
            total: price,
            shipping_address: ShippingAddress {
                name: "A Customer".into(),
                line1: "1 Street".into(),
                line2: None,
                city: "Berlin".into(),
                postal_code: "10115".into(),
                country: "DE".into(),
            },
            idempotency_fingerprint: "f".into(),
        };
        let now: DateTime<Utc> = Utc::now();
        next_envelope(&OrderStream::new(order_id), region, event, Uuid::now_v7(), now)
    }

    fn stream(order_id: Uuid, events: Vec<EventEnvelope>) -> OrderStream {
        OrderStream::from_events(order_id, events).expect("a consistent stream")
    }

    #[test]
    fn an_open_order_whose_placement_of_this_region_is_stored_is_published() {
        let (eu, order_id) = (region("eu"), Uuid::new_v4());
        let event = placed(order_id, &eu);
        let fate = judge(
            &stream(order_id, vec![event.clone()]),
            &eu,
            Duration::from_secs(3),
            ABANDON,
        );
        assert_eq!(fate, Fate::Publish(Box::new(event)));
    }

    #[test]
    fn an_old_open_order_with_a_placement_is_published_not_abandoned() {
        let (eu, order_id) = (region("eu"), Uuid::new_v4());
        let event = placed(order_id, &eu);
        let fate = judge(
            &stream(order_id, vec![event.clone()]),
            &eu,
            Duration::from_secs(3600),
            ABANDON,
        );
        assert_eq!(fate, Fate::Publish(Box::new(event)));
    }

    #[test]
    fn an_order_placed_only_by_another_region_is_left_to_the_worker() {
        let (eu, us, order_id) = (region("eu"), region("us"), Uuid::new_v4());
        let other = stream(order_id, vec![placed(order_id, &us)]);
        assert_eq!(
            judge(&other, &eu, Duration::from_secs(3600), ABANDON),
            Fate::NotOurs
        );
    }

    #[test]
    fn an_open_order_without_events_waits_then_is_abandoned() {
        let (eu, order_id) = (region("eu"), Uuid::new_v4());
        let empty = OrderStream::new(order_id);
        assert_eq!(judge(&empty, &eu, Duration::from_secs(3), ABANDON), Fate::Wait);
        assert_eq!(judge(&empty, &eu, ABANDON, ABANDON), Fate::Abandon);
    }
}
