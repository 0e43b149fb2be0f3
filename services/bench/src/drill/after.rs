//! What the stack looks like after the heal: whether every region's worker sees the log and the
//! database replicating again, and how many placements each API acknowledged locally because the
//! other datacenters were unreachable (`global_degraded`, decision 0005).
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::stack::Region;

/// The worker checks that measure replication between regions.
pub const REPLICATION_CHECKS: [&str; 2] = ["kafka:replicationFreshness", "cassandra:crossDcLag"];

#[derive(Debug, Clone, Serialize)]
pub struct Replication {
    /// Seconds after the heal finished when every region's checks first all passed.
    pub resumed_after_heal_s: Option<f64>,
    /// The last status read of each check, per region: (region, check, status).
    pub last: Vec<(String, String, String)>,
}

/// Polls every region's worker readiness once a second until every replication check passes,
/// or `timeout` passes. `since_heal` is how long ago the heal finished.
pub async fn replication(
    http: &reqwest::Client,
    regions: &[Region],
    since_heal: Duration,
    timeout: Duration,
) -> Replication {
    let started = Instant::now();
    loop {
        let mut last = Vec::new();
        for r in regions {
            let report: Option<serde_json::Value> = match http
                .get(format!("{}/health/ready", r.worker_url()))
                .timeout(Duration::from_secs(3))
                .send()
                .await
            {
                Ok(resp) => resp.json().await.ok(),
                Err(_) => None,
            };
            for check in REPLICATION_CHECKS {
                let status = report
                    .as_ref()
                    .and_then(|v| v["checks"][check][0]["status"].as_str())
                    .unwrap_or("unknown")
                    .to_string();
                last.push((r.name.clone(), check.to_string(), status));
            }
        }
        if last.iter().all(|(_, _, s)| s == "pass") {
            return Replication {
                resumed_after_heal_s: Some((since_heal + started.elapsed()).as_secs_f64()),
                last,
            };
        }
        if started.elapsed() > timeout {
            return Replication {
                resumed_after_heal_s: None,
                last,
            };
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The region API's `orders_placed_total{durability="global_degraded"}`, summed; `None` if
/// unreadable.
pub async fn degraded_total(http: &reqwest::Client, region: &Region) -> Option<f64> {
    let text = http
        .get(format!("{}/metrics", region.api_url()))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(degraded_in(&text))
}

fn degraded_in(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("orders_placed_total{") && l.contains(r#"durability="global_degraded""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_placements_are_summed_over_the_regions_labels() {
        let text = "# HELP orders_placed_total placements\n\
            orders_placed_total{durability=\"global\",region=\"eu\"} 1570\n\
            orders_placed_total{durability=\"global_degraded\",region=\"eu\"} 12\n\
            orders_placed_total{durability=\"global_degraded\",region=\"us\"} 3\n";
        assert_eq!(degraded_in(text), 15.0);
        assert_eq!(degraded_in("orders_placed_total{durability=\"global\"} 4\n"), 0.0);
    }
}
