//! The operations console binary: configuration from the environment, then `orders_console::run`.
use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let config = orders_console::Config::from_env().context("reading configuration")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    let app = orders_console::build(config).context("starting the console")?;
    orders_console::run(app, listener, shutdown).await
}

/// Cancels on SIGTERM or Ctrl-C; a second signal exits at once.
async fn shutdown_on_signal(shutdown: CancellationToken) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
    tracing::info!("shutting down");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
    std::process::exit(130);
}
