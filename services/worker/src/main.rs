//! The orders worker binary: configuration from the environment, then `orders_worker::run`.
use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orders_telemetry::init();
    let config = orders_worker::Config::from_env().context("reading configuration")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(orders_telemetry::shutdown_on_signal(shutdown.clone()));
    let app = orders_worker::build(config, shutdown)
        .await
        .context("starting the worker")?;
    orders_worker::run(app, listener).await
}
