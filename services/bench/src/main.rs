//! The orders-bench binary: parses the command line and runs `orders_bench::run`.
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = orders_bench::cli::Cli::parse();
    let (json, md) = orders_bench::run(cli).await?;
    eprintln!("wrote {} and {}", json.display(), md.display());
    Ok(())
}
