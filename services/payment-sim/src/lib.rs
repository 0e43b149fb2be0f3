//! A payment provider's sandbox: idempotent authorizations and voids with latency, declines and
//! failure injection, as a real provider's test mode would offer.
//!
//! `main` and the tests start it the same way: `build(config)` then `run(app, listener, shutdown)`.

mod api;
mod chance;
mod config;
mod error;
mod ledger;
mod model;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::{Level, info, warn};

pub use config::{Behaviour, Config, ConfigError, Rate};

/// How long in-flight requests may finish after shutdown is requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Requests are a few hundred bytes; anything near this is a mistake.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The sandbox, built and ready to serve.
pub struct App {
    router: Router,
}

/// Builds the sandbox from `config`; `config.listen` is for the caller to bind.
pub fn build(config: Config) -> App {
    let state = Arc::new(api::AppState::new(config.behaviour, config.max_authorizations));
    let router = api::router(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok());
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        route = route.unwrap_or("unmatched"),
                        request_id = request_id.unwrap_or_default(),
                    )
                })
                // Only injected failures answer 5xx here: expected, and logged by the handler.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid));
    App { router }
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets in-flight requests finish
/// for at most [`SHUTDOWN_GRACE`].
pub async fn run(app: App, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    info!(%addr, "payment sandbox listening");
    let server = axum::serve(listener, app.router)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served?,
        () = deadline => warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "shutdown grace elapsed, dropping open connections"),
    }
    info!("payment sandbox stopped");
    Ok(())
}
