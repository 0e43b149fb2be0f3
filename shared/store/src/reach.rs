//! Whether the other regions' datacenters can take part in `global` operations right now.
//!
//! The database's own failure detector needs 10 s or more to convict a dead datacenter; until
//! then every EACH_QUORUM write would wait for its timeout. So the region keeps its own view: the
//! first global operation that times out or finds a datacenter unavailable declares the others
//! unreachable, later operations go local at once (acknowledged as degraded), and a background
//! probe declares them reachable again as soon as a global write succeeds.
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::unprepared::Statement;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a global operation may wait before the other datacenters are declared unreachable.
pub const GLOBAL_TIMEOUT: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    pub since: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
pub struct Reach {
    down: Arc<Mutex<Option<Unreachable>>>,
}

impl Reach {
    /// `Some` while the other datacenters are declared unreachable.
    pub fn unreachable(&self) -> Option<Unreachable> {
        self.down.lock().expect("reach lock").clone()
    }

    pub fn is_global_possible(&self) -> bool {
        self.unreachable().is_none()
    }

    pub fn declare_unreachable(&self, reason: impl Into<String>) {
        let mut down = self.down.lock().expect("reach lock");
        if down.is_none() {
            let reason = reason.into();
            tracing::warn!(%reason, "other datacenters declared unreachable: acknowledging locally");
            *down = Some(Unreachable {
                since: Utc::now(),
                reason,
            });
        }
    }

    fn declare_reachable(&self) {
        if self.down.lock().expect("reach lock").take().is_some() {
            tracing::info!("other datacenters reachable again: acknowledging globally");
        }
    }

    /// While declared unreachable, tries a global write every `every`; clears the declaration on success.
    pub async fn run_probe(
        self,
        session: Arc<Session>,
        region: String,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("reach-probe-{region}").as_bytes());
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if self.is_global_possible() {
                continue;
            }
            let mut probe =
                Statement::new("INSERT INTO orders.probes (id, region, value) VALUES (?, ?, 'reach')");
            probe.set_consistency(Consistency::EachQuorum);
            probe.set_request_timeout(Some(GLOBAL_TIMEOUT));
            if session.query_unpaged(probe, (id, &region)).await.is_ok() {
                self.declare_reachable();
            }
        }
    }
}
