//! The command line: global options, one subcommand per measurement, and the drill scenarios.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use orders_store::Durability;

use crate::limit::Ladder;
use crate::step::BreakRule;

#[derive(Debug, Parser)]
#[command(
    name = "orders-bench",
    version,
    about = "Measures the running stack against its targets and runs failover drills",
    long_about = "Measures the running stack against the targets of docs/architecture.md \
                  (section 9) and runs failover drills. \
                  Every run writes bench/results/<timestamp>-<kind>.{json,md}."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Repository root (default: the nearest ancestor of the working directory with deploy/regions.conf)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Region whose API, datacenter and Kafka take the load
    #[arg(long, global = true, default_value = "eu")]
    pub region: String,
    /// Durability of the stack (chosen at ./dev up with ORDERS_DURABILITY). Raw writes use it;
    /// elsewhere it is recorded. Default: what the region's API reports in its health.
    #[arg(long, global = true, value_parser = parse_durability)]
    pub durability: Option<Durability>,
    /// Shorter phases: compare, e2e and replication each finish in about a minute; launch and
    /// overload run 5 s spikes at low rates (a smoke test)
    #[arg(long, global = true)]
    pub quick: bool,
    /// Directory for result files (default: <root>/bench/results)
    #[arg(long, global = true)]
    pub out: Option<PathBuf>,
    /// Operations outstanding at once before further ones count as errors
    #[arg(long, global = true, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Free text recorded in the report (repeatable)
    #[arg(long, global = true)]
    pub note: Vec<String>,
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The raw backend limit: the CQL writes and Kafka produce of a placement, no HTTP
    Raw(LoadArgs),
    /// Placements through the API (POST /v1/orders), open loop
    Api(LoadArgs),
    /// raw and api alternated A-B-A-B at each rate: both limits, their ratio, latency at half load
    Compare(LoadArgs),
    /// Placed-to-processed latency: placements, then their final events on the region's topic
    E2e(E2eArgs),
    /// Log replication freshness and database cross-DC lag under placement load
    Replication(ReplicationArgs),
    /// A failover drill: load through every edge, a fault via ./dev, heal, then loss/doubles/convergence
    Drill(DrillArgs),
    /// Where a placement's work goes: CPU per process and Cassandra reads/writes per table at one rate
    Profile(ProfileArgs),
    /// A launch: a crowd buying one limited SKU through every edge beside ordinary shoppers;
    /// sold versus stock, time to a known outcome, the shoppers against a quiet run
    Launch(LaunchArgs),
    /// A spike of a multiple of the sustainable limit through one edge: what is refused and how,
    /// and how long after it latency and worker lag are back to normal
    Overload(OverloadArgs),
}

#[derive(Debug, Clone, Args)]
pub struct LaunchArgs {
    /// Crowd placements per second (one unit of --sku each), split evenly over the edges [default: 60, quick 10]
    #[arg(long)]
    pub crowd_rate: Option<f64>,
    /// Seconds of the crowd, and of the quiet run of shoppers alone before it [default: 20, quick 5]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Ordinary shoppers' placements per second (plentiful SKUs), split over the edges [default: 4, quick 2]
    #[arg(long)]
    pub shoppers_rate: Option<f64>,
    /// The limited SKU the crowd buys
    #[arg(long, default_value = "LIMITED-SNEAKER")]
    pub sku: String,
    /// Units of --sku set in stock before the run, split evenly over the regions [default: 100, quick 20]
    #[arg(long)]
    pub stock: Option<u64>,
    /// First poll of an accepted crowd order this many ms after its answer; later polls every
    /// fifth of the time waited (at most 1 s)
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// Seconds after its acceptance when an order still not final counts as unresolved
    #[arg(long, default_value_t = 60.0)]
    pub outcome_timeout: f64,
    /// Client timeout of one request, seconds
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Leave the stock as the run left it (default: set back to what it was before the run)
    #[arg(long)]
    pub keep_stock: bool,
}

impl LaunchArgs {
    /// (crowd rate, duration s, shoppers rate, stock)
    pub fn resolve(&self, quick: bool) -> (f64, f64, f64, u64) {
        let pick = |v: Option<f64>, normal: f64, q: f64| v.unwrap_or(if quick { q } else { normal });
        (
            pick(self.crowd_rate, 60.0, 10.0),
            pick(self.duration, 20.0, 5.0),
            pick(self.shoppers_rate, 4.0, 2.0),
            self.stock.unwrap_or(if quick { 20 } else { 100 }),
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct OverloadArgs {
    /// The sustainable placement limit per second, measured earlier (e.g. `compare` or `api`)
    #[arg(long)]
    pub limit: f64,
    /// The spike offers this times --limit
    #[arg(long, default_value_t = 3.0)]
    pub multiple: f64,
    /// Seconds of the spike [default: 20, quick 5]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds at half the limit before the spike: the quiet baseline [default: 5, quick 3]
    #[arg(long)]
    pub baseline: Option<f64>,
    /// Seconds at half the limit after the spike [default: 30, quick 10]
    #[arg(long)]
    pub after: Option<f64>,
    /// Back to normal: a 1 s window's placement p99 at most this times the quiet p99 ...
    #[arg(long, default_value_t = 1.5)]
    pub normal_factor: f64,
    /// ... and the worker's consumer lag under this many seconds
    #[arg(long, default_value_t = 1.0)]
    pub normal_lag: f64,
    /// Client timeout of one placement, seconds
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Where the load goes (default: the region's edge)
    #[arg(long)]
    pub url: Option<String>,
}

impl OverloadArgs {
    /// (baseline s, spike s, after s)
    pub fn phases(&self, quick: bool) -> (f64, f64, f64) {
        let pick = |v: Option<f64>, normal: f64, q: f64| v.unwrap_or(if quick { q } else { normal });
        (
            pick(self.baseline, 5.0, 3.0),
            pick(self.duration, 20.0, 5.0),
            pick(self.after, 30.0, 10.0),
        )
    }
}

#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// Seconds of the idle window and of the load window [default: 30, quick 15]
    #[arg(long)]
    pub duration_secs: Option<f64>,
    /// Also `perf record` the region's API during the load window (needs perf)
    #[arg(long)]
    pub perf: bool,
    /// `--rate` is the load's placements per second [default: 8]; the API is the region's unless `--api-url`
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Run one step at this rate (per second) instead of searching for the limit
    #[arg(long)]
    pub rate: Option<f64>,
    /// First rate of the search [default: 50, quick 25]
    #[arg(long)]
    pub start_rate: Option<f64>,
    /// Each rung of the search is the previous times this [default: 1.5, quick 2]
    #[arg(long)]
    pub factor: Option<f64>,
    /// Never offer more than this [default: 5000]
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// Bisections after the first break [default: 3, quick 1]
    #[arg(long)]
    pub refine: Option<u32>,
    /// Seconds of each measured run (compare: of each A or B run) [default: 10, quick 2]
    #[arg(long)]
    pub step_secs: Option<f64>,
    /// Seconds of unmeasured load before the first step [default: 3, quick 1]
    #[arg(long)]
    pub warmup_secs: Option<f64>,
    /// Seconds of quiet between runs, so one run's backlog does not land in the next [default: 2, quick 1]
    #[arg(long)]
    pub pause_secs: Option<f64>,
    /// API base URL (default: the region's API, not its edge)
    #[arg(long)]
    pub api_url: Option<String>,
    /// A step breaks above this error rate
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,
    /// A step breaks above this p99 (ms)
    #[arg(long, default_value_t = 100.0)]
    pub max_p99_ms: f64,
    /// A step breaks when it achieves less than this share of its target rate
    #[arg(long, default_value_t = 0.95)]
    pub min_achieved: f64,
}

/// The resolved plan of a load measurement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadPlan {
    pub fixed_rate: Option<f64>,
    pub ladder: Ladder,
    pub step: Duration,
    pub warmup: Duration,
    pub pause: Duration,
    pub rule: BreakRule,
}

impl LoadArgs {
    pub fn plan(&self, quick: bool) -> LoadPlan {
        let pick = |v: Option<f64>, normal: f64, q: f64| v.unwrap_or(if quick { q } else { normal });
        LoadPlan {
            fixed_rate: self.rate,
            ladder: Ladder {
                start: pick(self.start_rate, 50.0, 25.0),
                factor: pick(self.factor, 1.5, 2.0).max(1.01),
                max: pick(self.max_rate, 5000.0, 5000.0),
                refine: self.refine.unwrap_or(if quick { 1 } else { 3 }),
            },
            step: Duration::from_secs_f64(pick(self.step_secs, 10.0, 2.0)),
            warmup: Duration::from_secs_f64(pick(self.warmup_secs, 3.0, 1.0)),
            pause: Duration::from_secs_f64(pick(self.pause_secs, 2.0, 1.0)),
            rule: BreakRule {
                max_error_rate: self.max_error_rate,
                max_p99_ms: self.max_p99_ms,
                min_achieved_ratio: self.min_achieved,
            },
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct E2eArgs {
    /// Placements per second (the targets are judged at half the API limit)
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of load [default: 30, quick 15]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds to wait after the load for the last final events [default: 30, quick 15]
    #[arg(long)]
    pub drain: Option<f64>,
    /// API base URL (default: the region's API)
    #[arg(long)]
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplicationArgs {
    /// Placements per second during the measurement
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Database probes per second (each polled every 1 ms in the other datacenter)
    #[arg(long, default_value_t = 10.0)]
    pub probe_rate: f64,
    /// Seconds of load [default: 30, quick 15]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Region that receives the replicas (default: the first other region)
    #[arg(long)]
    pub to: Option<String>,
    /// API base URL for the load (default: the region's API)
    #[arg(long)]
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// ./dev region kill eu, ./dev takeover eu --by us; heal: ./dev region heal eu, ./dev handback eu --by us
    RegionEu,
    /// ./dev kill eu-kafka
    KafkaEu,
    /// ./dev kill eu-cassandra
    CassandraEu,
    /// ./dev kill mirrormaker
    Mirrormaker,
    /// ./dev kill eu-api
    ApiEu,
    /// ./dev kill eu-worker
    WorkerEu,
    /// ./dev pause eu-cassandra (SIGSTOP: a hung node keeps its sockets open); heal: ./dev resume eu-cassandra
    PauseCassandraEu,
    /// ./dev pause eu-kafka (SIGSTOP); heal: ./dev resume eu-kafka
    PauseKafkaEu,
    /// ./dev partition: the datacenters (and MirrorMaker 2's links) cannot reach each other while
    /// every process stays up; heal: ./dev partition heal (default 30 s after the fault)
    Partition,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::RegionEu => "region-eu",
            Scenario::KafkaEu => "kafka-eu",
            Scenario::CassandraEu => "cassandra-eu",
            Scenario::Mirrormaker => "mirrormaker",
            Scenario::ApiEu => "api-eu",
            Scenario::WorkerEu => "worker-eu",
            Scenario::PauseCassandraEu => "pause-cassandra-eu",
            Scenario::PauseKafkaEu => "pause-kafka-eu",
            Scenario::Partition => "partition",
        }
    }

    /// The `./dev` invocations that make the fault, in order.
    pub fn fault(self) -> Vec<Vec<&'static str>> {
        match self {
            Scenario::RegionEu => vec![vec!["region", "kill", "eu"], vec!["takeover", "eu", "--by", "us"]],
            Scenario::KafkaEu => vec![vec!["kill", "eu-kafka"]],
            Scenario::CassandraEu => vec![vec!["kill", "eu-cassandra"]],
            Scenario::Mirrormaker => vec![vec!["kill", "mirrormaker"]],
            Scenario::ApiEu => vec![vec!["kill", "eu-api"]],
            Scenario::WorkerEu => vec![vec!["kill", "eu-worker"]],
            Scenario::PauseCassandraEu => vec![vec!["pause", "eu-cassandra"]],
            Scenario::PauseKafkaEu => vec![vec!["pause", "eu-kafka"]],
            Scenario::Partition => vec![vec!["partition"]],
        }
    }

    /// The datacenter the fault leaves unreachable, if any: what it acknowledged must still be
    /// visible in the others while it is down.
    pub fn dead_datacenter(self) -> Option<&'static str> {
        matches!(
            self,
            Scenario::RegionEu | Scenario::CassandraEu | Scenario::PauseCassandraEu
        )
        .then_some("eu")
    }

    /// The `./dev` invocations that heal it: a paused process is resumed, then `region heal eu`
    /// restarts whatever of eu is down, MirrorMaker 2 included, and waits until it serves. A
    /// partition only removes its rules: every process stayed up, and what they do after is the test.
    pub fn heal(self) -> Vec<Vec<&'static str>> {
        if self == Scenario::Partition {
            return vec![vec!["partition", "heal"]];
        }
        let mut out = match self {
            Scenario::PauseCassandraEu => vec![vec!["resume", "eu-cassandra"]],
            Scenario::PauseKafkaEu => vec![vec!["resume", "eu-kafka"]],
            _ => vec![],
        };
        out.push(vec!["region", "heal", "eu"]);
        if self == Scenario::RegionEu {
            out.push(vec!["handback", "eu", "--by", "us"]);
        }
        out
    }
}

#[derive(Debug, Clone, Args)]
pub struct DrillArgs {
    pub scenario: Scenario,
    /// Placements per second through each edge
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of load [default: 90, quick 40; at least 20 s past the heal]
    #[arg(long)]
    pub duration: Option<f64>,
    /// Seconds after the load starts when the fault is made [default: 20, quick 10]
    #[arg(long)]
    pub fault_at: Option<f64>,
    /// Seconds after the load starts when the heal begins [default: 50, quick 25; partition: 30 s
    /// after the fault]
    #[arg(long)]
    pub heal_at: Option<f64>,
    /// Seconds to wait after the heal for every acknowledged order to be identical in all regions
    #[arg(long, default_value_t = 180.0)]
    pub converge_timeout: f64,
    /// Client timeout of one placement, seconds
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Do everything but run the fault and heal commands
    #[arg(long)]
    pub dry_run: bool,
}

impl DrillArgs {
    /// (duration, fault at, heal at) in seconds from the start of the load.
    pub fn timing(&self, quick: bool) -> (f64, f64, f64) {
        let pick = |normal: f64, q: f64| if quick { q } else { normal };
        let fault_at = self.fault_at.unwrap_or(pick(20.0, 10.0));
        let heal_at = self.heal_at.unwrap_or(match self.scenario {
            Scenario::Partition => fault_at + 30.0,
            _ => pick(50.0, 25.0),
        });
        let duration = self.duration.unwrap_or(pick(90.0, 40.0).max(heal_at + 20.0));
        (duration, fault_at, heal_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_shortens_every_phase_unless_told_otherwise() {
        let cli = Cli::try_parse_from(["orders-bench", "compare", "--quick", "--max-rate", "200"]).unwrap();
        let Command::Compare(args) = cli.command else {
            panic!("compare")
        };
        let plan = args.plan(cli.common.quick);
        assert_eq!(plan.step, Duration::from_secs(2));
        assert_eq!(plan.ladder.max, 200.0);
        assert_eq!(plan.ladder.start, 25.0);
        assert_eq!(plan.rule, BreakRule::default());
    }

    #[test]
    fn a_region_drill_takes_over_and_hands_back() {
        let cli = Cli::try_parse_from([
            "orders-bench",
            "drill",
            "region-eu",
            "--dry-run",
            "--durability",
            "local",
        ])
        .unwrap();
        let Command::Drill(args) = cli.command else {
            panic!("drill")
        };
        assert!(args.dry_run);
        assert_eq!(cli.common.durability, Some(Durability::Local));
        assert_eq!(args.scenario.fault()[1], vec!["takeover", "eu", "--by", "us"]);
        assert_eq!(args.scenario.heal()[1], vec!["handback", "eu", "--by", "us"]);
        assert_eq!(Scenario::WorkerEu.heal(), vec![vec!["region", "heal", "eu"]]);
    }

    #[test]
    fn a_quick_launch_is_short_and_small_unless_told_otherwise() {
        let cli = Cli::try_parse_from(["orders-bench", "launch", "--quick", "--crowd-rate", "15"]).unwrap();
        let Command::Launch(args) = cli.command else {
            panic!("launch")
        };
        assert_eq!(args.resolve(cli.common.quick), (15.0, 5.0, 2.0, 20));
        assert_eq!(args.resolve(false), (15.0, 20.0, 4.0, 100));
        assert_eq!(args.sku, "LIMITED-SNEAKER");
    }

    #[test]
    fn an_overload_needs_the_limit_and_defaults_to_three_times_it_for_twenty_seconds() {
        assert!(Cli::try_parse_from(["orders-bench", "overload"]).is_err());
        let cli = Cli::try_parse_from(["orders-bench", "overload", "--limit", "50"]).unwrap();
        let Command::Overload(args) = cli.command else {
            panic!("overload")
        };
        assert_eq!((args.limit, args.multiple), (50.0, 3.0));
        assert_eq!(args.phases(false), (5.0, 20.0, 30.0));
        assert_eq!(args.phases(true), (3.0, 5.0, 10.0));
    }

    #[test]
    fn a_partition_heals_only_its_rules_thirty_seconds_after_the_fault() {
        let cli = Cli::try_parse_from(["orders-bench", "drill", "partition", "--fault-at", "5"]).unwrap();
        let Command::Drill(args) = cli.command else {
            panic!("drill")
        };
        assert_eq!(args.scenario.fault(), vec![vec!["partition"]]);
        assert_eq!(args.scenario.heal(), vec![vec!["partition", "heal"]]);
        assert_eq!(args.scenario.dead_datacenter(), None);
        assert_eq!(args.timing(false), (90.0, 5.0, 35.0));
        assert_eq!(args.timing(true), (55.0, 5.0, 35.0));
        let region = Cli::try_parse_from(["orders-bench", "drill", "region-eu"]).unwrap();
        let Command::Drill(region) = region.command else {
            panic!("drill")
        };
        assert_eq!(region.timing(false), (90.0, 20.0, 50.0));
        assert_eq!(region.timing(true), (45.0, 10.0, 25.0));
    }

    #[test]
    fn an_unknown_scenario_is_refused() {
        assert!(Cli::try_parse_from(["orders-bench", "drill", "moon"]).is_err());
    }
}
