//! The relay: publishes outbox rows the fast path did not, and drops intents that never became events.
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use orders_domain::EventEnvelope;
use orders_store::outbox::SHARDS;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Journal, JournalError};

/// What one pass of the relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    pub published: u64,
    pub dropped: u64,
    pub waiting: u64,
}

impl Journal {
    /// One pass over every shard. Rows younger than `min_age` are left to the fast path; a row whose
    /// event is not in the store is dropped once older than `abandon_after` (its writer is gone and
    /// never acknowledged it).
    pub async fn relay_once(
        &self,
        min_age: Duration,
        abandon_after: Duration,
    ) -> Result<RelayStats, JournalError> {
        let mut stats = RelayStats::default();
        let now = Utc::now();
        for shard in 0..SHARDS {
            for row in self.outbox.scan(shard, 500).await? {
                let age = row
                    .created_at()
                    .map(|t| (now - t).to_std().unwrap_or_default())
                    .unwrap_or_default();
                if age < min_age {
                    stats.waiting += 1;
                    continue;
                }
                match self.store.event_at(row.order_id, row.seq).await? {
                    Some(id) if id == row.event_id => {
                        let Ok(event) = serde_json::from_str::<EventEnvelope>(&row.envelope) else {
                            warn!(event_id = %row.event_id, "undecodable outbox row dropped");
                            self.outbox.delete(row.order_id, row.event_id).await?;
                            stats.dropped += 1;
                            continue;
                        };
                        let origin = event.origin_region.to_string();
                        if self
                            .publish(
                                row.order_id,
                                row.event_id,
                                event.type_name(),
                                &origin,
                                &row.envelope,
                            )
                            .await
                            .is_ok()
                        {
                            self.outbox.delete(row.order_id, row.event_id).await?;
                            stats.published += 1;
                        } else {
                            stats.waiting += 1;
                        }
                    }
                    Some(_) => {
                        // Another event won that lane position: this one never existed.
                        self.outbox.delete(row.order_id, row.event_id).await?;
                        stats.dropped += 1;
                    }
                    None if age >= abandon_after => {
                        self.outbox.delete(row.order_id, row.event_id).await?;
                        stats.dropped += 1;
                    }
                    None => stats.waiting += 1,
                }
            }
        }
        Ok(stats)
    }

    /// Runs the relay every `interval` until shut down.
    pub async fn run_relay(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self
                .relay_once(Duration::from_secs(2), Duration::from_secs(30))
                .await
            {
                Ok(stats) if stats.published + stats.dropped > 0 => {
                    info!(
                        published = stats.published,
                        dropped = stats.dropped,
                        waiting = stats.waiting,
                        "outbox relayed"
                    );
                }
                Ok(_) => {}
                Err(error) => warn!(error = %error, "outbox relay pass failed"),
            }
        }
    }
}
