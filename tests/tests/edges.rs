//! The front door: one HAProxy edge per client geography, generated from the region list, each
//! sending clients to its own region and failing over to the others.
use std::process::Command;

use orders_tests::{regions, repo_root};

#[test]
fn the_committed_edge_configurations_match_the_region_list() {
    for r in regions() {
        let out = Command::new(repo_root().join("dev"))
            .args(["edge-config", &r.name])
            .output()
            .expect("./dev");
        assert!(
            out.status.success(),
            "./dev edge-config {}: {}",
            r.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let path = repo_root().join(format!("deploy/haproxy/edge-{}.cfg", r.name));
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            committed,
            "{} is stale: run ./dev edges",
            path.display()
        );
    }
}

#[test]
fn every_edge_configuration_passes_haproxys_own_check() {
    let all = regions();
    for r in &all {
        let path = repo_root().join(format!("deploy/haproxy/edge-{}.cfg", r.name));
        let mut check = Command::new("haproxy");
        check.arg("-c").arg("-f").arg(&path);
        for o in &all {
            let upper = o.name.to_uppercase().replace('-', "_");
            check.env(format!("ORDERS_API_{upper}"), format!("127.0.0.1:{}", o.api_port));
            check.env(
                format!("ORDERS_EDGE_{upper}_BIND"),
                format!("127.0.0.1:{}", o.edge_port),
            );
        }
        let out = check
            .output()
            .expect("haproxy is missing: run .ci/run (it installs Debian's haproxy)");
        assert!(
            out.status.success(),
            "haproxy -c {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn each_edge_sends_clients_to_its_own_region() {
    let http = reqwest::Client::new();
    for r in regions() {
        let reply = http
            .get(format!("http://127.0.0.1:{}/health/ready", r.edge_port))
            .send()
            .await
            .unwrap_or_else(|e| panic!("edge {} does not answer ({e}): is the stack up?", r.name));
        assert_eq!(reply.status(), 200);
        let served_by = reply
            .headers()
            .get("x-served-by")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(served_by, format!("api-{}", r.name), "edge {}", r.name);
    }
}
