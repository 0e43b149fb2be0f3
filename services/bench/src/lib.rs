//! orders-bench: measurements of the running stack (docs/architecture.md section 9: raw backend limit,
//! the API's share of it, placed-to-processed, replication) and failover drills. Pure parts
//! (schedule, statistics, break rule, limit search, failover analysis, reports) are unit-tested;
//! the rest drives the stack through `./dev`, HTTP, CQL and Kafka.
pub mod api;
pub mod bench;
pub mod cli;
pub mod ctx;
pub mod drill;
pub mod e2e;
pub mod failover;
pub mod kafka;
pub mod launch;
pub mod limit;
pub mod load;
pub mod machine;
pub mod offer;
pub mod overload;
pub mod profile;
pub mod prom;
pub mod raw;
pub mod replication;
pub mod report;
pub mod schedule;
pub mod spike;
pub mod stack;
pub mod stats;
pub mod step;

use cli::{Cli, Command};

/// Runs one subcommand and writes its result files; returns their paths.
pub async fn run(cli: Cli) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let ctx = ctx::Ctx::new(&cli.common).await?;
    let report = match &cli.command {
        Command::Raw(args) => bench::single(&ctx, args, true).await?,
        Command::Api(args) => bench::single(&ctx, args, false).await?,
        Command::Compare(args) => bench::compare(&ctx, args).await?,
        Command::E2e(args) => e2e::run(&ctx, args).await?,
        Command::Replication(args) => replication::run(&ctx, args).await?,
        Command::Drill(args) => drill::run(&ctx, args).await?,
        Command::Profile(args) => profile::run(&ctx, args).await?,
        Command::Launch(args) => launch::run(&ctx, args).await?,
        Command::Overload(args) => overload::run(&ctx, args).await?,
    };
    let paths = report::write(&ctx.out, &report)?;
    println!("{}", report::render_markdown(&report));
    if let Some(c) = report::failed_must_pass(&report) {
        eprintln!("wrote {} and {}", paths.0.display(), paths.1.display());
        anyhow::bail!("{}: {} (target {})", c.what, c.measured, c.target);
    }
    Ok(paths)
}
