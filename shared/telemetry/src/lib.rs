//! Logging set-up, signal handling and the metrics registry every service binary starts with.
mod metrics;

pub use metrics::MetricsRegistry;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Logs to stdout; `RUST_LOG` filters (default `info`).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}

/// What every service binary does once its configuration is read: logging set up, its listener
/// bound, and a shutdown token that SIGTERM or Ctrl-C cancels.
pub async fn start(listen: &str) -> std::io::Result<(tokio::net::TcpListener, CancellationToken)> {
    init();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    Ok((listener, shutdown))
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C; a second signal exits at once.
pub async fn shutdown_on_signal(shutdown: CancellationToken) {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
    tracing::info!("shutting down");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
    std::process::exit(130);
}
