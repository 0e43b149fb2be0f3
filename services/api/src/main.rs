//! The orders API binary: configuration from the environment, then `orders_api::run`.
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = orders_api::Config::from_env().context("reading configuration")?;
    let (listener, shutdown) = orders_telemetry::start(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let app = orders_api::build(config, shutdown.clone())
        .await
        .context("starting the api")?;
    orders_api::run(app, listener, shutdown).await
}
