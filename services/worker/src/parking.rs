//! Parking (docs/decisions/0007-parking.md): a record the worker cannot process (a permanent error,
//! or a transient one that outlived the retry budget) goes to the dead-letter topic with its headers
//! and error, and into the region's list of parked records; its partition moves on. The list feeds
//! the `worker:parked` check and the operator's replay, which re-runs the order's saga: the saga is
//! idempotent by its recorded events, so a replay never doubles an effect.
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use orders_config::{ConfigError, Env};
use orders_store::StoreError;
use orders_store::parked::{ParkedRecord, RecordPosition};
use rdkafka::message::{Message, OwnedMessage};
use serde::Serialize;
use tracing::{info, warn};
use uuid::Uuid;

use crate::Worker;
use crate::saga::Outcome;

/// Whether retrying could have helped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The retry budget ran out on an error that may pass (a dependency slow or gone).
    Transient,
    /// A retry can only repeat it (an undecodable record or event, a refused request).
    Permanent,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
        }
    }
}

/// How long transient failures of one record are retried before it is parked: at least `attempts`
/// passes and at least `time` since the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub attempts: u32,
    pub time: Duration,
}

impl Budget {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Budget, ConfigError> {
        let attempts: u32 = env.parse("ORDERS_WORKER_PARK_AFTER_ATTEMPTS", "8")?;
        let secs: u64 = env.parse("ORDERS_WORKER_PARK_AFTER_SECS", "30")?;
        if attempts == 0 {
            return Err(ConfigError {
                variable: "ORDERS_WORKER_PARK_AFTER_ATTEMPTS",
                detail: "must be at least 1".into(),
            });
        }
        Ok(Budget {
            attempts,
            time: Duration::from_secs(secs),
        })
    }

    pub fn spent(&self, attempts: u32, elapsed: Duration) -> bool {
        attempts >= self.attempts && elapsed >= self.time
    }
}

/// The order a record is about: its envelope's, else its key's; the nil uuid when neither says.
pub fn order_of(record: &OwnedMessage, decoded: Option<Uuid>) -> Uuid {
    decoded
        .or_else(|| {
            let key = std::str::from_utf8(record.key()?).ok()?;
            key.trim().parse().ok()
        })
        .unwrap_or_else(Uuid::nil)
}

/// What a replay did to one order's parked records.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub order_id: Uuid,
    pub records: usize,
    /// `done`, `not_owner` (another region processes it), `no_order` (the records named no order:
    /// nothing to re-run, they are marked replayed), `incomplete` or `failed` (left parked).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Replayed {
    pub fn succeeded(&self) -> bool {
        matches!(self.outcome, "done" | "not_owner" | "no_order")
    }
}

impl Worker {
    /// Records `record` as parked: the row in the region's list, then the dead letter. An error
    /// means it is not parked yet (the caller retries, processing first).
    pub(crate) async fn park(
        &self,
        record: &OwnedMessage,
        order_id: Uuid,
        kind: ErrorKind,
        reason: &str,
    ) -> Result<(), anyhow::Error> {
        let parked = ParkedRecord {
            region: self.config.region.to_string(),
            order_id,
            position: position_of(record),
            error_kind: kind.as_str().to_string(),
            error: reason.to_string(),
            parked_at: Utc::now(),
            replayed_at: None,
        };
        self.parked.park(&parked).await?;
        self.dead_letter(record, kind, reason).await?;
        self.metrics.parked.with_label_values(&[kind.as_str()]).inc();
        Ok(())
    }

    /// Marks a record's parked row replayed: its order went through after all.
    pub(crate) async fn unpark(&self, record: &OwnedMessage, order_id: Uuid) {
        let position = position_of(record);
        let region = self.config.region.as_str();
        if let Err(error) = self
            .parked
            .mark_replayed(region, order_id, &position, Utc::now())
            .await
        {
            warn!(%error, %order_id, "parked row not marked replayed; a replay will find the order done");
        }
    }

    /// The region's parked records not yet replayed.
    pub async fn unreplayed(&self) -> Result<Vec<ParkedRecord>, StoreError> {
        let all = self.parked.list(self.config.region.as_str()).await?;
        Ok(all.into_iter().filter(|p| p.replayed_at.is_none()).collect())
    }

    /// Re-runs the saga of every order with unreplayed parked records (or only `only`), and marks
    /// the records replayed where the pass succeeded. Also counts `transient` only when `transient_only`.
    pub async fn replay(
        &self,
        only: Option<Uuid>,
        transient_only: bool,
    ) -> Result<Vec<Replayed>, StoreError> {
        let mut orders: BTreeMap<Uuid, Vec<RecordPosition>> = BTreeMap::new();
        for parked in self.unreplayed().await? {
            let wanted = only.is_none_or(|id| id == parked.order_id)
                && (!transient_only || parked.error_kind == ErrorKind::Transient.as_str());
            if wanted {
                orders.entry(parked.order_id).or_default().push(parked.position);
            }
        }
        let region = self.config.region.as_str();
        let mut replayed = Vec::new();
        for (order_id, positions) in orders {
            let (outcome, error) = if order_id.is_nil() {
                ("no_order", None)
            } else {
                match self.processor.process_order(order_id).await {
                    Ok(pass) => match pass.outcome {
                        Outcome::Done => ("done", None),
                        Outcome::NotOwner { .. } => ("not_owner", None),
                        Outcome::Incomplete => ("incomplete", None),
                    },
                    Err(e) => ("failed", Some(e.to_string())),
                }
            };
            let result = Replayed {
                order_id,
                records: positions.len(),
                outcome,
                error,
            };
            if result.succeeded() {
                let now = Utc::now();
                for position in &positions {
                    self.parked.mark_replayed(region, order_id, position, now).await?;
                }
            }
            info!(%order_id, outcome, records = positions.len(), "parked records replayed");
            replayed.push(result);
        }
        Ok(replayed)
    }

    /// Retries orders parked for a transient error every `every`: once the dependency is back
    /// they finish without an operator. Permanent ones wait for the operator.
    pub async fn run_parked_sweep(self: std::sync::Arc<Self>, every: Duration) {
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.replay(None, true).await {
                Ok(done) if !done.is_empty() => {
                    let finished = done.iter().filter(|r| r.succeeded()).count();
                    info!(orders = done.len(), finished, "transient parked records retried");
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "cannot list parked records to retry"),
            }
        }
    }
}

fn position_of(record: &OwnedMessage) -> RecordPosition {
    RecordPosition {
        topic: record.topic().to_string(),
        partition: record.partition(),
        offset: record.offset(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(vars: &[(&str, &str)]) -> Result<Budget, ConfigError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Budget::from_env(&Env::new(move |k: &str| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        }))
    }

    #[test]
    fn the_default_budget_is_eight_attempts_and_thirty_seconds() {
        let b = budget(&[]).unwrap();
        assert_eq!(
            b,
            Budget {
                attempts: 8,
                time: Duration::from_secs(30)
            }
        );
        assert!(!b.spent(8, Duration::from_secs(29)), "time left");
        assert!(!b.spent(7, Duration::from_secs(31)), "attempts left");
        assert!(b.spent(8, Duration::from_secs(30)));
    }

    #[test]
    fn a_budget_of_no_attempts_is_refused() {
        let e = budget(&[("ORDERS_WORKER_PARK_AFTER_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.variable, "ORDERS_WORKER_PARK_AFTER_ATTEMPTS");
        assert!(budget(&[("ORDERS_WORKER_PARK_AFTER_SECS", "soon")]).is_err());
    }

    #[test]
    fn a_record_names_its_order_by_envelope_else_by_key() {
        use rdkafka::message::Timestamp;
        let id = Uuid::new_v4();
        let record = |key: Option<&str>| {
            OwnedMessage::new(
                None,
                key.map(|k| k.as_bytes().to_vec()),
                "orders".into(),
                Timestamp::NotAvailable,
                0,
                0,
                None,
            )
        };
        assert_eq!(order_of(&record(Some(&id.to_string())), None), id);
        let other = Uuid::new_v4();
        assert_eq!(order_of(&record(Some(&id.to_string())), Some(other)), other);
        assert_eq!(order_of(&record(Some("not an order")), None), Uuid::nil());
        assert_eq!(order_of(&record(None), None), Uuid::nil());
    }
}
