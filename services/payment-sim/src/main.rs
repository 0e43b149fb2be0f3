//! Entry point of the payment provider sandbox: configuration, telemetry and signals around the library.

use anyhow::Context;
use orders_payment_sim::{Config, build, run};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let config = Config::from_env().context("invalid payment sandbox configuration")?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    run(build(config), listener, shutdown)
        .await
        .context("payment sandbox server failed")
}

/// The first SIGTERM or Ctrl-C starts a graceful shutdown; a second one exits at once.
async fn watch_signals(shutdown: CancellationToken) {
    termination().await;
    info!("shutdown requested");
    shutdown.cancel();
    termination().await;
    warn!("second signal, exiting now");
    std::process::exit(130);
}

/// Waits for SIGTERM or Ctrl-C. A signal that cannot be watched is logged and never fires.
async fn termination() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot watch ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot watch sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
