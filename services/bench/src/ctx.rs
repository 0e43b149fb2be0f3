//! What every subcommand starts from: the stack, the environment facts, the durability in force,
//! and the assembly of its report.
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_store::Durability;

use crate::cli::Common;
use crate::load::Limits;
use crate::machine::Environment;
use crate::report::{Check, Report, Section};
use crate::stack::{Region, Stack};

pub struct Ctx {
    pub stack: Stack,
    pub env: Environment,
    pub quick: bool,
    pub region: Region,
    pub durability: Durability,
    pub out: PathBuf,
    pub limits: Limits,
    pub notes: Vec<String>,
    pub started_at: DateTime<Utc>,
}

impl Ctx {
    pub async fn new(common: &Common) -> anyhow::Result<Ctx> {
        let stack = Stack::load(common.root.as_deref())?;
        let region = stack.region(&common.region)?.clone();
        let env = Environment::collect(&stack);
        let mut notes = common.note.clone();
        let reported = stack_durability(&region.api_url()).await;
        let durability = match (common.durability, reported) {
            (Some(asked), Some(seen)) if asked != seen => {
                notes.push(format!(
                    "--durability {} given, but the {} API reports {}: the stack's mode is chosen at ./dev up",
                    name(asked),
                    region.name,
                    name(seen)
                ));
                asked
            }
            (Some(asked), _) => asked,
            (None, Some(seen)) => seen,
            (None, None) => {
                notes.push("durability: the API did not report it; assumed global (the default)".into());
                Durability::Global
            }
        };
        if env.services_profile != "release" {
            notes.push(format!(
                "services run as {} builds: figures are not release figures",
                env.services_profile
            ));
        }
        Ok(Ctx {
            out: common
                .out
                .clone()
                .unwrap_or_else(|| stack.root.join("bench/results")),
            limits: Limits {
                max_in_flight: common.max_in_flight,
                ..Limits::default()
            },
            stack,
            env,
            quick: common.quick,
            region,
            durability,
            notes,
            started_at: Utc::now(),
        })
    }

    pub fn report(
        &self,
        kind: &str,
        settings: serde_json::Value,
        checks: Vec<Check>,
        results: serde_json::Value,
        sections: Vec<Section>,
    ) -> Report {
        Report {
            kind: kind.to_string(),
            started_at: self.started_at,
            finished_at: Utc::now(),
            environment: self.env.clone(),
            settings,
            checks,
            results,
            notes: self.notes.clone(),
            sections,
        }
    }

    pub fn other_region(&self, name: Option<&str>) -> anyhow::Result<Region> {
        match name {
            Some(n) => Ok(self.stack.region(n)?.clone()),
            None => self
                .stack
                .regions
                .iter()
                .find(|r| r.name != self.region.name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("deploy/regions.conf lists only one region")),
        }
    }
}

pub fn name(d: Durability) -> &'static str {
    match d {
        Durability::Local => "local",
        Durability::Global => "global",
    }
}

/// The durability the API reports in its readiness (`durability:mode`).
async fn stack_durability(api: &str) -> Option<Durability> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    let health: serde_json::Value = http
        .get(format!("{api}/health/ready"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    health["checks"]["durability:mode"][0]["componentId"]
        .as_str()?
        .parse()
        .ok()
}

/// Log lines go to stderr as the run goes, so an operator sees progress.
pub fn progress(line: impl AsRef<str>) {
    eprintln!(
        "[orders-bench {}] {}",
        Utc::now().format("%H:%M:%S"),
        line.as_ref()
    );
}
