//! The orders API of one region: `build` wires configuration to the store, journal and routes;
//! `run` serves until shutdown. Tests run exactly this code.
pub mod admission;
pub mod allotments;
pub mod auth;
pub mod config;
pub mod metrics;
pub mod placement;
pub mod problem;
pub mod resource;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use orders_domain::Money;
use orders_health::HealthChecks;
use orders_journal::Journal;
use orders_store::StoreError;
use orders_store::catalog::CatalogItem;
use orders_store::customers::Customers;
use orders_store::idempotency::Idempotency;
use orders_store::open_orders::OpenOrders;
use scylla::client::session::Session;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// Everything a request handler needs.
pub struct AppState {
    pub config: Config,
    pub session: Arc<Session>,
    pub journal: Arc<Journal>,
    pub idempotency: Idempotency,
    pub customers: Customers,
    pub open_orders: OpenOrders,
    pub keys: auth::KeyCache,
    pub health: HealthChecks,
    pub metrics: Arc<metrics::Metrics>,
    pub admission: admission::Admission,
    pub allotments: allotments::Allotments,
    /// One placement at a time per order in this instance: concurrent retries of one key wait
    /// for the first and replay it, instead of stepping back together.
    pub placing: routes::Placing,
    catalog: RwLock<Arc<Catalog>>,
}

/// The catalog as the API prices from it: refreshed in the background, read without a query.
#[derive(Debug, Default)]
pub struct Catalog {
    pub items: Vec<CatalogItem>,
    by_sku: HashMap<String, Money>,
}

impl Catalog {
    fn new(items: Vec<CatalogItem>) -> Self {
        let by_sku = items.iter().map(|i| (i.sku.clone(), i.price.clone())).collect();
        Catalog { items, by_sku }
    }
    pub fn price(&self, sku: &str) -> Option<Money> {
        self.by_sku.get(sku).cloned()
    }
}

impl AppState {
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    async fn refresh_catalog(&self) -> Result<(), StoreError> {
        let items = orders_store::catalog::all(&self.session).await?;
        *self.catalog.write().expect("catalog lock") = Arc::new(Catalog::new(items));
        Ok(())
    }
}

pub struct App {
    pub state: Arc<AppState>,
}

/// Connects to the region's datacenter and Kafka and prepares everything; fails fast with the reason.
pub async fn build(config: Config, shutdown: CancellationToken) -> anyhow::Result<App> {
    let service = orders_startup::Service::new("api", "orders api", env!("CARGO_PKG_VERSION"));
    let started =
        orders_startup::start(service, &config, config.durability, config.crash_point, shutdown).await?;
    let (session, journal, health) = (started.session, started.journal, started.health);
    let thresholds = orders_checks::Thresholds::load().map_err(anyhow::Error::msg)?;
    orders_checks::kafka(&health, &config.kafka)?;
    orders_checks::cassandra(&health, session.clone(), config.region.as_str())?;
    orders_checks::outbox_backlog(&health, &thresholds, session.clone(), config.region.as_str())?;
    // The region's worker group seen from outside: its lag shows even when the worker is dead.
    let mut topics = vec![orders_log::ORDERS_TOPIC.to_string()];
    topics.extend(
        config
            .regions
            .iter()
            .filter(|r| **r != config.region)
            .map(|r| orders_log::mirrored(r.as_str(), orders_log::ORDERS_TOPIC)),
    );
    orders_checks::consumer_lag(
        &health,
        &thresholds,
        &config.kafka,
        &format!("orders-worker-{}", config.region),
        topics,
        true,
    )?;
    let reach = journal.store().reach().clone();
    let durability = config.durability;
    health.register(
        "durability:mode",
        Duration::from_secs(1),
        Duration::from_millis(100),
        move || {
            let reach = reach.clone();
            async move {
                use orders_health::{CheckResult, Status};
                let check = match (durability, reach.unreachable()) {
                    (orders_store::Durability::Local, _) => CheckResult::now(Status::Pass)
                        .with_output("local: acknowledged in this region (RPO = cross-DC lag)"),
                    (orders_store::Durability::Global, None) => CheckResult::now(Status::Pass),
                    (orders_store::Durability::Global, Some(down)) => CheckResult::now(Status::Warn)
                        .with_output(format!(
                            "global durability degraded since {}: acknowledging in this region only ({})",
                            down.since, down.reason
                        )),
                };
                vec![check.with_component_id(format!("{durability:?}").to_lowercase())]
            }
        },
    )?;
    let admission = admission::Admission {
        rate: admission::RateLimiter::new(config.rate_limit, config.rate_limits.clone()),
        in_flight: admission::InFlight::new(
            admission::Bounds {
                limit: config.max_in_flight,
                tight: config.max_in_flight_under_pressure,
            },
            config.queue_wait,
        ),
    };
    let metrics = Arc::new(metrics::Metrics::new(config.region.as_str()));
    metrics
        .in_flight_limit
        .set(i64::try_from(config.max_in_flight).unwrap_or(i64::MAX));
    let state = Arc::new(AppState {
        metrics,
        admission,
        health,
        idempotency: Idempotency::new(session.clone(), config.region.as_str()).await?,
        customers: Customers::new(session.clone()).await?,
        open_orders: OpenOrders::new(session.clone()).await?,
        allotments: allotments::Allotments::new(
            orders_store::stock::Stock::new(session.clone()).await?,
            config.region.as_str(),
        ),
        placing: routes::Placing::default(),
        keys: auth::KeyCache::default(),
        catalog: RwLock::new(Arc::new(Catalog::default())),
        journal,
        session,
        config,
    });
    state.refresh_catalog().await.context("loading the catalog")?;
    register_shedding(&state, &thresholds)?;
    Ok(App { state })
}

/// `api:shedding`: requests shed per second over the last 10 s. It warns, never fails: a busy
/// region that sheds must stay in rotation, or the edges would move its load onto the other one.
fn register_shedding(state: &Arc<AppState>, thresholds: &orders_checks::Thresholds) -> anyhow::Result<()> {
    use orders_health::{ComponentType, Status};
    let judge = thresholds.judge("api:shedding");
    let rate = Arc::new(std::sync::Mutex::new(admission::ShedRate::new(
        Duration::from_secs(10),
    )));
    let weak = Arc::downgrade(state);
    state.health.register(
        "api:shedding",
        Duration::from_secs(1),
        Duration::from_millis(100),
        move || {
            let (weak, judge, rate) = (weak.clone(), judge.clone(), rate.clone());
            async move {
                let Some(state) = weak.upgrade() else {
                    return Vec::new();
                };
                let in_flight = &state.admission.in_flight;
                let limit = in_flight.limit();
                state
                    .metrics
                    .in_flight_limit
                    .set(i64::try_from(limit).unwrap_or(i64::MAX));
                let per_second = rate
                    .lock()
                    .expect("shed rate lock")
                    .observe(std::time::Instant::now(), in_flight.shed_total());
                let mut check = judge.observe((per_second * 100.0).round() / 100.0);
                if check.status == Status::Fail {
                    check.status = Status::Warn;
                }
                if check.status != Status::Pass {
                    check = check.with_output(format!(
                        "shedding {per_second:.2} requests/s over the last 10 s (limit {limit} in flight{})",
                        match limit < state.config.max_in_flight {
                            true => ", tightened: a standing queue",
                            false => "",
                        }
                    ));
                }
                vec![
                    check
                        .with_component_id(format!("api-{}", state.config.region))
                        .with_component_type(ComponentType::Component),
                ]
            }
        },
    )?;
    Ok(())
}

/// Serves until `shutdown` is cancelled, then drains in-flight requests (at most 10 s).
pub async fn run(app: App, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let state = app.state;
    tracing::info!(
        region = %state.config.region,
        address = %listener.local_addr()?,
        durability = ?state.config.durability,
        "orders api listening"
    );
    tokio::spawn(
        state
            .journal
            .clone()
            .run_relay(Duration::from_secs(1), shutdown.clone()),
    );
    // Placements write no outbox row: their open-orders rows are their intents, relayed by the API.
    tokio::spawn(
        state
            .journal
            .clone()
            .run_placement_relay(Duration::from_secs(1), shutdown.clone()),
    );
    tokio::spawn(state.journal.store().reach().clone().run_probe(
        state.session.clone(),
        state.config.region.to_string(),
        Duration::from_secs(1),
        shutdown.clone(),
    ));
    tokio::spawn(refresh_catalog_every(
        state.clone(),
        Duration::from_secs(30),
        shutdown.clone(),
    ));
    tokio::spawn(refresh_allotments_every(
        state.clone(),
        Duration::from_millis(250),
        shutdown.clone(),
    ));
    let router = routes::router(state);
    let graceful = shutdown.clone();
    let server =
        axum::serve(listener, router).with_graceful_shutdown(async move { graceful.cancelled().await });
    tokio::select! {
        result = server => result.context("http server")?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(Duration::from_secs(10)).await } => {
            tracing::warn!("in-flight requests did not finish within 10 s; exiting");
        }
    }
    Ok(())
}

async fn refresh_allotments_every(state: Arc<AppState>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let catalog = state.catalog();
        let skus = catalog.items.iter().map(|i| i.sku.as_str());
        if let Err(error) = state.allotments.refresh(skus).await {
            tracing::warn!(%error, "allotment refresh failed; keeping the last view");
        }
    }
}

async fn refresh_catalog_every(state: Arc<AppState>, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(error) = state.refresh_catalog().await {
            tracing::warn!(%error, "catalog refresh failed; keeping the last one");
        }
    }
}
