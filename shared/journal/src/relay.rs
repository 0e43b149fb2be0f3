//! The relay: publishes outbox rows the fast path did not, and drops intents that never became events.
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_domain::EventEnvelope;
use orders_store::outbox::{OutboxRow, SHARDS, next_scan_from};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Journal, JournalError};

/// Rows read per shard and pass; a longer backlog is worked through over several passes.
const SCAN_LIMIT: i32 = 500;

/// What became of one outbox row in a pass.
enum Fate {
    Published,
    Dropped,
    Waiting,
}

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
            let rows = self.outbox.scan(shard, SCAN_LIMIT).await?;
            let cut_off_at = (rows.len() == SCAN_LIMIT as usize)
                .then(|| rows.last().map(|r| r.event_id))
                .flatten();
            // The first row this pass leaves in place: the next scan of the shard starts there.
            let mut first_waiting = None;
            for row in &rows {
                match self.relay_row(row, now, min_age, abandon_after).await? {
                    Fate::Published => stats.published += 1,
                    Fate::Dropped => stats.dropped += 1,
                    Fate::Waiting => {
                        stats.waiting += 1;
                        first_waiting.get_or_insert(row.event_id);
                    }
                }
            }
            self.outbox
                .advance(shard, next_scan_from(first_waiting, cut_off_at, now))
                .await?;
        }
        Ok(stats)
    }

    /// Publishes, drops or leaves one row.
    async fn relay_row(
        &self,
        row: &OutboxRow,
        now: DateTime<Utc>,
        min_age: Duration,
        abandon_after: Duration,
    ) -> Result<Fate, JournalError> {
        let age = row
            .created_at()
            .map(|t| (now - t).to_std().unwrap_or_default())
            .unwrap_or_default();
        if age < min_age {
            return Ok(Fate::Waiting);
        }
        let fate = match self.store.event_at(row.order_id, row.seq).await? {
            Some(id) if id == row.event_id => {
                let Ok(event) = serde_json::from_str::<EventEnvelope>(&row.envelope) else {
                    warn!(event_id = %row.event_id, "undecodable outbox row dropped");
                    self.outbox.delete(row.order_id, row.event_id).await?;
                    return Ok(Fate::Dropped);
                };
                let origin = event.origin_region.to_string();
                let published = self
                    .publish(
                        row.order_id,
                        row.event_id,
                        event.type_name(),
                        &origin,
                        &row.envelope,
                    )
                    .await
                    .is_ok();
                if !published {
                    return Ok(Fate::Waiting);
                }
                Fate::Published
            }
            // Another event won that lane position: this one never existed.
            Some(_) => Fate::Dropped,
            None if age >= abandon_after => Fate::Dropped,
            None => return Ok(Fate::Waiting),
        };
        self.outbox.delete(row.order_id, row.event_id).await?;
        Ok(fate)
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
