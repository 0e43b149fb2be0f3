//! The shared harness of the integration tests: the region list, clients pinned to a region, and
//! `./dev` for drills. Tests run against the stack `./dev test` brings up; a missing stack is a
//! failure that says what is missing, never a skip.
pub mod api;
pub mod extra;
pub mod health;
pub mod kafka;
pub mod parking;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orders_config::regions_conf;
pub use orders_config::regions_conf::Region;
use orders_store::StoreConfig;
use scylla::client::session::Session;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every region, in file order.
pub fn regions() -> Vec<Region> {
    let path = std::env::var("ORDERS_REGIONS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("deploy/regions.conf"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    regions_conf::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The region named `name`.
pub fn region(name: &str) -> Region {
    regions()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no region {name} in regions.conf"))
}

/// A CQL session pinned to the region's datacenter (LOCAL_QUORUM, no datacenter failover).
pub async fn session(region: &Region) -> Arc<Session> {
    let config = StoreConfig::new(region.cql_contact(), region.name.clone());
    orders_store::connect(&config).await.unwrap_or_else(|e| {
        panic!(
            "the stack is not running: cannot reach CQL of region {} ({e}); start it with ./dev up",
            region.name
        )
    })
}

/// Runs `./dev <args>` and panics with its output if it fails.
pub fn dev(args: &[&str]) {
    let script = std::env::var("ORDERS_DEV_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("dev"));
    let out = Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "./dev {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `check` until it returns Some or `timeout` passes; returns the value and how long it took.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some((v, start.elapsed()));
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The dev credentials `./dev up` wrote (.dev/credentials.env).
pub fn credentials() -> HashMap<String, String> {
    let path = repo_root().join(".dev/credentials.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): run ./dev up", path.display()));
    text.lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}
