//! A long-lived Kafka client for health checks: each check is one metadata round trip over a kept
//! connection, not a new client's bootstrap (100-300 ms).
use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::LogError;

/// Asks one cluster for its metadata, as often as needed, over one client.
///
/// librdkafka sends every metadata request to a broker (it never answers one from its cache), so
/// a dead cluster fails each call within its timeout; the client keeps reconnecting on its own,
/// backing off at most a second, so a cluster that comes back passes again.
#[derive(Clone)]
pub struct MetadataProbe {
    bootstrap: Arc<str>,
    // A producer that never produces: unlike the consumer and admin clients, it has a thread that
    // serves librdkafka's event queue, so logs and errors of an outage do not pile up in memory.
    client: Arc<ThreadedProducer<Quiet>>,
}

impl MetadataProbe {
    /// Creates the client; it connects when first asked.
    pub fn new(bootstrap: &str) -> Result<Self, LogError> {
        let client = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("socket.connection.setup.timeout.ms", "2000")
            .set("reconnect.backoff.max.ms", "1000")
            .create_with_context(Quiet)
            .map_err(|source| LogError::Kafka {
                bootstrap: bootstrap.into(),
                what: "create client",
                source,
            })?;
        Ok(MetadataProbe {
            bootstrap: bootstrap.into(),
            client: Arc::new(client),
        })
    }

    /// Ok once a broker has answered a metadata request within `timeout`.
    pub async fn fetch(&self, timeout: Duration) -> Result<(), LogError> {
        let probe = self.clone();
        tokio::task::spawn_blocking(move || {
            probe
                .client
                .client()
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .map_err(|source| LogError::Kafka {
                    bootstrap: probe.bootstrap.to_string(),
                    what: "fetch metadata",
                    source,
                })
        })
        .await?
    }
}

/// Hands librdkafka's logs and errors to `tracing` at debug level only: the check result already
/// reports an unreachable cluster, and the service's own clients log the outage.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(?level, facility, message, "kafka probe client log");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "kafka probe client error");
    }
}

impl ProducerContext for Quiet {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::mocking::MockCluster;

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(1500);

    #[tokio::test]
    async fn a_dead_cluster_fails_the_probe_and_one_that_comes_back_passes_again() {
        let cluster = MockCluster::new(1).unwrap();
        let probe = MetadataProbe::new(&cluster.bootstrap_servers()).unwrap();
        probe.fetch(TIMEOUT).await.unwrap();

        cluster.broker_down(-1).unwrap();
        let started = Instant::now();
        let error = probe.fetch(TIMEOUT).await.unwrap_err();
        assert!(
            matches!(
                error,
                LogError::Kafka {
                    what: "fetch metadata",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(started.elapsed() < TIMEOUT + Duration::from_millis(500));

        cluster.broker_up(-1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(error) = probe.fetch(TIMEOUT).await {
            assert!(
                Instant::now() < deadline,
                "the probe never saw the cluster again: {error}"
            );
        }
    }
}
