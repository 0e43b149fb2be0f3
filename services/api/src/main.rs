//! The orders API binary: configuration from the environment, then `orders_api::run`.
use anyhow::Context;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orders_telemetry::init();
    let config = orders_api::Config::from_env().context("reading configuration")?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(orders_telemetry::shutdown_on_signal(shutdown.clone()));
    let app = orders_api::build(config, shutdown.clone())
        .await
        .context("starting the api")?;
    orders_api::run(app, listener, shutdown).await
}
