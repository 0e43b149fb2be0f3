//! The order worker of one region: `build` connects it, `run` consumes and serves health and admin
//! HTTP until shutdown. `Worker::handle_record` is the single-step entry point for tests.
pub mod config;
pub mod consumer;
mod http;
pub mod metrics;
pub mod offsets;
pub mod ownership;
pub mod parking;
pub mod payment;
pub mod saga;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orders_health::HealthChecks;
use orders_journal::CrashPoint;
use orders_store::StoreError;
use orders_store::open_orders::OpenOrders;
use orders_store::ownership::Ownership;
use orders_store::stock::Stock;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

pub struct Worker {
    pub config: Config,
    pub processor: saga::Processor,
    pub dlq: FutureProducer,
    /// The region's list of parked records (`parking`).
    pub parked: orders_store::parked::ParkedRecords,
    pub metrics: metrics::Metrics,
    pub health: HealthChecks,
    pub shutdown: CancellationToken,
}

pub struct App {
    pub worker: Arc<Worker>,
    consumer: StreamConsumer,
}

/// Connects to the region's datacenter, Kafka and the payment provider; loads ownership.
pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
    let service = orders_startup::Service::new("worker", "orders worker", env!("CARGO_PKG_VERSION"));
    // In global durability the worker's events are in every datacenter before it moves on, so a
    // region taking over sees what was done; a dead datacenter degrades it to local as for the API.
    let started = orders_startup::start(
        service,
        &config,
        config.durability,
        CrashPoint::Never,
        shutdown.clone(),
    )
    .await?;
    let (session, journal, health) = (started.session, started.journal, started.health);
    let owners = ownership::Owners::load(
        Ownership::new(session.clone(), config.region.as_str()).await?,
        config.regions.clone(),
    )
    .await
    .context("loading ownership")?;
    let metrics = metrics::Metrics::new(config.region.as_str());
    let stock = saga::Allotments::new(Stock::new(session.clone()).await?, &journal);
    let processor = saga::Processor::new(
        config.region.clone(),
        config.regions.clone(),
        journal,
        stock,
        OpenOrders::new(session.clone()).await?,
        payment::PaymentClient::new(&config.payment_url),
        owners,
        metrics.placed_to_final.clone(),
    );
    let consumer: StreamConsumer = orders_log::consumer_config(&config.kafka, &config.group())
        .create()
        .context("creating the kafka consumer")?;
    let worker = Arc::new(Worker {
        dlq: consumer::dead_letter_producer(&config.kafka).context("creating the dead-letter producer")?,
        parked: orders_store::parked::ParkedRecords::new(session.clone()).await?,
        metrics,
        processor,
        health,
        shutdown,
        config,
    });
    http::register_checks(&worker, session)?;
    Ok(App { worker, consumer })
}

/// Consumes and serves until shutdown.
pub async fn run(app: App, listener: TcpListener) -> anyhow::Result<()> {
    let worker = app.worker;
    tracing::info!(region = %worker.config.region, address = %listener.local_addr()?, "orders worker listening");
    tokio::spawn(
        worker
            .processor
            .owners
            .clone()
            .run_refresh(Duration::from_secs(1), worker.shutdown.clone()),
    );
    tokio::spawn(
        worker
            .processor
            .journal
            .clone()
            .run_relay(Duration::from_secs(1), worker.shutdown.clone()),
    );
    let store = worker.processor.journal.store();
    tokio::spawn(store.reach().clone().run_probe(
        store.session().clone(),
        worker.config.region.to_string(),
        Duration::from_secs(1),
        worker.shutdown.clone(),
    ));
    tokio::spawn(worker.clone().run_parked_sweep(Duration::from_secs(15)));
    tokio::spawn(worker.clone().run_sweep_on_gain(Duration::from_secs(1)));
    let consuming = tokio::spawn(consumer::run(worker.clone(), app.consumer));
    let shutdown = worker.shutdown.clone();
    axum::serve(listener, http::router(worker.clone()))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .context("http server")?;
    consuming.await.context("consumer task")?;
    Ok(())
}

impl Worker {
    /// Whenever this region comes to own an origin's orders (it took them over, or they were handed
    /// back to it), processes that origin's open orders. While an ownership move spreads, each
    /// region's view changes at its own next refresh: a record that arrived between the two saw
    /// another owner in both regions and was passed over by both. Its order is still open, and
    /// this finishes it.
    pub async fn run_sweep_on_gain(self: Arc<Self>, every: Duration) {
        let me = self.config.region.to_string();
        let mut owned = self.processor.owners.owned_by(&me);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let now = self.processor.owners.owned_by(&me);
            for origin in now.difference(&owned) {
                let (worker, origin) = (self.clone(), origin.clone());
                tokio::spawn(async move {
                    match worker.process_open_orders(&origin).await {
                        Ok(n) => {
                            tracing::info!(origin, open_orders = n, "ownership gained: open orders processed")
                        }
                        Err(error) => {
                            tracing::warn!(origin, %error, "ownership gained: open orders not all processed")
                        }
                    }
                });
            }
            owned = now;
        }
    }

    /// Processes every unfinished order placed in `origin`, as after a takeover. Returns how many
    /// orders were looked at.
    pub async fn process_open_orders(self: &Arc<Self>, origin: &str) -> Result<usize, StoreError> {
        let orders = self.processor.open_orders.list(origin).await?;
        let n = orders.len();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, order_id) in orders.into_iter().enumerate() {
            let worker = self.clone();
            tasks.spawn(async move {
                let mut backoff = Duration::from_millis(100);
                for _ in 0..20 {
                    match worker
                        .processor
                        .process_order(order_id)
                        .await
                        .map(|pass| pass.outcome)
                    {
                        Ok(saga::Outcome::Incomplete) | Err(_) => tokio::time::sleep(backoff).await,
                        Ok(_) => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(3));
                }
                tracing::warn!(%order_id, "open order not finished after takeover retries");
            });
            if i % 16 == 15 {
                while tasks.len() > 16 {
                    tasks.join_next().await;
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(n)
    }
}
