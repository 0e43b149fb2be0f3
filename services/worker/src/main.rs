//! The orders worker binary: configuration from the environment, then `orders_worker::run`.
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = orders_worker::Config::from_env().context("reading configuration")?;
    let (listener, shutdown) = orders_telemetry::start(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let app = orders_worker::build(config, shutdown)
        .await
        .context("starting the worker")?;
    orders_worker::run(app, listener).await
}
