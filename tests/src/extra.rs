//! Service processes a test starts itself: the built binaries, run with one region's environment,
//! pointed at the running stack's Cassandra and Kafka, listening where the test says.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Region, eventually, repo_root};

/// The built binary `name` (`orders-api`, `orders-worker`) in `ORDERS_BIN_DIR` (`./dev test` sets
/// it to the stack's build), else in target/debug. Panics when it is missing.
pub fn service_bin(name: &str) -> PathBuf {
    let bin = std::env::var("ORDERS_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/debug"))
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (./dev up builds it)",
        bin.display()
    );
    bin
}

/// A command that starts another `name` of `region` listening on `listen`, its output discarded;
/// add the test's own variables, then spawn it.
pub fn service_command(name: &str, region: &Region, listen: &str) -> Command {
    let mut command = Command::new(service_bin(name));
    command
        .env("ORDERS_REGION", &region.name)
        .env("ORDERS_LISTEN", listen)
        .env("ORDERS_CASSANDRA", region.cql_contact())
        .env("ORDERS_KAFKA", &region.kafka)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Whether the service at `base` answers `/health/live` within 30 s.
pub async fn comes_up(base: &str) -> bool {
    let (http, live) = (reqwest::Client::new(), format!("{base}/health/live"));
    let up = eventually(Duration::from_secs(30), || async {
        let response = http.get(&live).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
    up.is_some()
}

/// Another orders API of `region` on 127.0.0.1:`port`.
pub fn api_command(region: &Region, port: u16) -> Command {
    service_command("orders-api", region, &format!("127.0.0.1:{port}"))
}
