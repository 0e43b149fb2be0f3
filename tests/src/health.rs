//! Health as an operator sees it: every service's readiness report, and the health model rolled up
//! from them with the shipped thresholds (deploy/health-model.yaml).
use std::collections::BTreeMap;
use std::time::Duration;

use orders_health::HealthReport;
use orders_health::model::{HealthModel, ModelConfig, ServiceObservation, evaluate};

use crate::{Region, regions, repo_root};

/// The base URLs of a region's services that report health, by service name.
pub fn services(region: &Region) -> Vec<(&'static str, String)> {
    vec![
        ("api", region.api_url()),
        ("worker", format!("http://127.0.0.1:{}", region.worker_port)),
    ]
}

/// One service's readiness: the HTTP status and its report (None if it did not answer).
pub async fn ready(base: &str) -> (u16, Option<HealthReport>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    match http.get(format!("{base}/health/ready")).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json::<HealthReport>().await.ok())
        }
        Err(_) => (0, None),
    }
}

/// The health model of every region, as the console computes it.
pub async fn model() -> HealthModel {
    let config =
        ModelConfig::load(&repo_root().join("deploy/health-model.yaml")).expect("deploy/health-model.yaml");
    let mut observed = BTreeMap::new();
    for region in regions() {
        let mut services_seen = BTreeMap::new();
        for (name, base) in services(&region) {
            let observation = match ready(&base).await {
                (_, Some(report)) => ServiceObservation::Answered(report),
                (status, None) => ServiceObservation::Unreachable {
                    reason: format!("unreachable (status {status})"),
                },
            };
            services_seen.insert(name.to_string(), observation);
        }
        observed.insert(region.name.clone(), services_seen);
    }
    evaluate(&config, &observed)
}

/// The status of one check in a report, and its output.
pub fn check(report: &HealthReport, key: &str) -> Option<(orders_health::Status, String, Option<f64>)> {
    let results = report.checks.get(key)?;
    let worst = results.iter().max_by_key(|r| r.status)?;
    Some((
        worst.status,
        worst.output.clone().unwrap_or_default(),
        worst.observed_value.as_ref().and_then(|v| v.as_f64()),
    ))
}
