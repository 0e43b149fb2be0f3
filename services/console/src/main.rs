//! The operations console binary: configuration from the environment, then `orders_console::run`.
use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = orders_console::Config::from_env().context("reading configuration")?;
    let (listener, shutdown) = orders_telemetry::start(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let app = orders_console::build(config).context("starting the console")?;
    orders_console::run(app, listener, shutdown).await
}
