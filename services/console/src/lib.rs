//! The operations console: `build` loads the health model and prepares the poller; `run` polls every
//! region's services and serves the model, series, history, drain forwarding and the page until shutdown.
pub mod causes;
pub mod config;
pub mod history;
mod http;
pub mod incidents;
pub mod launch;
mod poll;
pub mod prom;
pub mod ring;
pub mod series;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use orders_health::model::{HealthModel, ModelConfig, ServiceObservation, evaluate};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use causes::RootCause;
pub use config::{Config, Target};
use history::History;
use incidents::Incidents;
use launch::LaunchStore;
use series::{Reading, SeriesStore};

/// How many state changes are kept at most, whatever the hour holds.
const MAX_HISTORY: usize = 10_000;

/// Everything the pollers write and the handlers read.
pub struct Console {
    pub config: Config,
    model_config: ModelConfig,
    client: reqwest::Client,
    latest: RwLock<Latest>,
    history: Mutex<History>,
    incidents: Mutex<Incidents>,
    series: Mutex<SeriesStore>,
    launch: Mutex<LaunchStore>,
    /// The previous scrape of each `(region, service)`, for counter deltas.
    readings: Mutex<HashMap<(String, String), (Instant, Reading)>>,
    /// Wakes the readiness poller at once, e.g. right after a drain.
    poll_now: Notify,
}

/// The newest evaluation and when it was made.
struct Latest {
    model: Arc<HealthModel>,
    /// The model read root causes first, and each inner node's own reason.
    causes: Arc<Vec<RootCause>>,
    own_reasons: Arc<BTreeMap<String, String>>,
    at: DateTime<Utc>,
    round: Option<Instant>,
}

pub struct App {
    pub console: Arc<Console>,
}

/// Loads and validates the health model configuration; touches no service yet.
pub fn build(config: Config) -> anyhow::Result<App> {
    let model_config = ModelConfig::load(&config.health_model)
        .with_context(|| format!("loading the health model {}", config.health_model.display()))?;
    if !config.web_dir.join("index.html").is_file() {
        tracing::warn!(web_dir = %config.web_dir.display(), "no built page: run npm run build in services/console/web");
    }
    let client = reqwest::Client::builder()
        .connect_timeout(config.health_timeout)
        .build()
        .context("creating the http client")?;
    // Until the first round answers, every service counts as not yet heard from.
    let observations = observations_of(config.targets.iter().map(|target| {
        let not_yet = ServiceObservation::Unreachable {
            reason: "not polled yet".into(),
        };
        (target, not_yet)
    }));
    let model = evaluate(&model_config, &observations);
    let own_reasons = causes::own_reasons(&model_config, &model);
    let console = Console {
        history: Mutex::new(History::new(config.history_window, MAX_HISTORY)),
        incidents: Mutex::new(Incidents::new(config.history_window, MAX_HISTORY)),
        series: Mutex::new(SeriesStore::new(config.series_window, config.metrics_interval)),
        launch: Mutex::new(LaunchStore::default()),
        readings: Mutex::new(HashMap::new()),
        latest: RwLock::new(Latest {
            model: Arc::new(model),
            causes: Arc::new(Vec::new()),
            own_reasons: Arc::new(own_reasons),
            at: Utc::now(),
            round: None,
        }),
        poll_now: Notify::new(),
        model_config,
        client,
        config,
    };
    Ok(App {
        console: Arc::new(console),
    })
}

/// Polls once so the first answer is already the real picture, then serves until `shutdown`.
pub async fn run(app: App, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let console = app.console;
    tracing::info!(
        address = %listener.local_addr()?,
        regions = ?console.config.regions(),
        "orders console listening"
    );
    poll::health_round(&console).await;
    let health = tokio::spawn(poll::health_loop(console.clone(), shutdown.clone()));
    let metrics = tokio::spawn(poll::metrics_loop(console.clone(), shutdown.clone()));
    let stop = shutdown.clone();
    axum::serve(listener, http::router(console))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("http server")?;
    shutdown.cancel();
    health.await.context("readiness poller")?;
    metrics.await.context("metrics poller")?;
    Ok(())
}

impl Console {
    pub fn model(&self) -> (Arc<HealthModel>, DateTime<Utc>) {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        (latest.model.clone(), latest.at)
    }

    /// Seconds since the last completed readiness round, `None` before the first.
    pub fn poll_age(&self) -> Option<f64> {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        latest.round.map(|at| at.elapsed().as_secs_f64())
    }

    /// The root causes and each inner node's own reason, from the same round as `model`.
    pub fn causes(&self) -> (Arc<Vec<RootCause>>, Arc<BTreeMap<String, String>>) {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        (latest.causes.clone(), latest.own_reasons.clone())
    }

    pub fn flows(&self) -> &BTreeMap<String, Vec<String>> {
        &self.model_config.flows
    }

    /// Evaluates what one round saw and records what changed.
    fn observe(&self, observations: BTreeMap<String, BTreeMap<String, ServiceObservation>>) {
        let model = evaluate(&self.model_config, &observations);
        let now = Utc::now();
        let (changes, causes) = {
            let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
            let changes = history.observe(&model, now);
            let causes = causes::root_causes(
                &self.model_config,
                &model,
                &observations,
                history.not_green_since(),
            );
            (changes, causes)
        };
        self.incidents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(&causes, changes.len(), now);
        let own_reasons = causes::own_reasons(&self.model_config, &model);
        for change in changes.iter().filter(|c| c.level <= history::Level::Region) {
            tracing::info!(
                node = %change.node,
                from = ?change.from,
                to = ?change.to,
                reasons = %change.reasons.join("; "),
                "health changed"
            );
        }
        *self.latest.write().unwrap_or_else(PoisonError::into_inner) = Latest {
            model: Arc::new(model),
            causes: Arc::new(causes),
            own_reasons: Arc::new(own_reasons),
            at: now,
            round: Some(Instant::now()),
        };
    }
}

/// Region → service → observation, in the shape `evaluate` takes.
fn observations_of<'a>(
    observed: impl IntoIterator<Item = (&'a Target, ServiceObservation)>,
) -> BTreeMap<String, BTreeMap<String, ServiceObservation>> {
    let mut regions: BTreeMap<String, BTreeMap<String, ServiceObservation>> = BTreeMap::new();
    for (target, observation) in observed {
        regions
            .entry(target.region.clone())
            .or_default()
            .insert(target.service.clone(), observation);
    }
    regions
}
