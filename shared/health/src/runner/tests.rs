//! Tests of the check registry against real tokio tasks, with intervals long enough to be deterministic.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use super::*;

fn registry() -> (HealthChecks, CancellationToken) {
    let shutdown = CancellationToken::new();
    let info = ServiceInfo {
        service_id: "worker-eu".into(),
        ..ServiceInfo::default()
    };
    (HealthChecks::new(info, shutdown.clone()), shutdown)
}

const HOUR: Duration = Duration::from_secs(3600);

async fn until_ran(checks: &HealthChecks, name: &str, runs: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while checks.runs(name) < runs {
        assert!(Instant::now() < deadline, "{name} did not run {runs} times");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn passing() -> Vec<CheckResult> {
    vec![CheckResult::now(Status::Pass)]
}

#[tokio::test]
async fn a_check_that_has_not_run_yet_fails_readiness_with_not_yet_checked() {
    let (checks, _shutdown) = registry();
    checks
        .register("kafka:connections", HOUR, HOUR, futures::future::pending)
        .unwrap();
    let report = checks.report();
    assert_eq!(report.status, Status::Fail);
    assert_eq!(
        report.checks["kafka:connections"][0].output.as_deref(),
        Some(NOT_YET_CHECKED)
    );
    assert_eq!(checks.runs("kafka:connections"), 0);
}

#[tokio::test]
async fn the_latest_result_replaces_the_placeholder_after_the_first_run() {
    let (checks, _shutdown) = registry();
    checks
        .register("kafka:connections", HOUR, HOUR, || async { passing() })
        .unwrap();
    until_ran(&checks, "kafka:connections", 1).await;
    let report = checks.report();
    assert_eq!(report.status, Status::Pass);
    assert_eq!(report.output, None);
}

#[tokio::test]
async fn a_thousand_reports_cause_no_extra_check_runs() {
    let (checks, _shutdown) = registry();
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    checks
        .register("cassandra:responseTime", HOUR, HOUR, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { passing() }
        })
        .unwrap();
    until_ran(&checks, "cassandra:responseTime", 1).await;
    for _ in 0..1000 {
        assert_eq!(checks.report().status, Status::Pass);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(checks.runs("cassandra:responseTime"), 1);
}

#[tokio::test]
async fn a_check_slower_than_its_timeout_fails_with_the_timeout_in_the_output() {
    let (checks, _shutdown) = registry();
    checks
        .register(
            "cassandra:responseTime",
            HOUR,
            Duration::from_millis(20),
            || async {
                tokio::time::sleep(HOUR).await;
                passing()
            },
        )
        .unwrap();
    until_ran(&checks, "cassandra:responseTime", 1).await;
    let result = &checks.report().checks["cassandra:responseTime"][0];
    assert_eq!(result.status, Status::Fail);
    assert_eq!(result.output.as_deref(), Some("timed out after 20ms"));
}

#[tokio::test]
async fn a_panicking_check_is_recorded_as_failed_and_keeps_running() {
    let (checks, _shutdown) = registry();
    checks
        .register("payment:responseTime", Duration::from_millis(5), HOUR, || async {
            panic!("provider client bug")
        })
        .unwrap();
    until_ran(&checks, "payment:responseTime", 2).await;
    let result = &checks.report().checks["payment:responseTime"][0];
    assert_eq!(result.output.as_deref(), Some("check panicked"));
}

#[tokio::test]
async fn a_check_returning_no_results_counts_as_failed() {
    let (checks, _shutdown) = registry();
    checks
        .register("kafka:connections", HOUR, HOUR, || async { Vec::new() })
        .unwrap();
    until_ran(&checks, "kafka:connections", 1).await;
    assert_eq!(checks.report().status, Status::Fail);
}

#[tokio::test]
async fn checks_run_again_on_their_interval() {
    let (checks, _shutdown) = registry();
    checks
        .register("kafka:connections", Duration::from_millis(5), HOUR, || async {
            passing()
        })
        .unwrap();
    until_ran(&checks, "kafka:connections", 3).await;
}

#[tokio::test]
async fn cancelling_the_shutdown_token_stops_every_check() {
    let (checks, shutdown) = registry();
    checks
        .register("kafka:connections", Duration::from_millis(5), HOUR, || async {
            passing()
        })
        .unwrap();
    until_ran(&checks, "kafka:connections", 2).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let stopped_at = checks.runs("kafka:connections");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(checks.runs("kafka:connections"), stopped_at);
}

#[tokio::test]
async fn drain_fails_readiness_and_undrain_restores_it() {
    let (checks, _shutdown) = registry();
    checks
        .register("kafka:connections", HOUR, HOUR, || async { passing() })
        .unwrap();
    until_ran(&checks, "kafka:connections", 1).await;
    checks.drain();
    assert!(checks.is_draining());
    let report = checks.report();
    assert_eq!(
        (report.status, report.output.as_deref()),
        (Status::Fail, Some("draining"))
    );
    checks.undrain();
    assert!(!checks.is_draining());
    assert_eq!(checks.report().status, Status::Pass);
}

#[tokio::test]
async fn names_must_be_component_colon_measurement_and_unique() {
    let (checks, _shutdown) = registry();
    for bad in ["kafka", "kafka:", ":lag", "a:b:c", ""] {
        let error = checks
            .register(bad, HOUR, HOUR, || async { passing() })
            .unwrap_err();
        assert!(matches!(error, RegisterError::BadName { .. }), "{bad}");
    }
    checks
        .register("kafka:connections", HOUR, HOUR, || async { passing() })
        .unwrap();
    let error = checks
        .register("kafka:connections", HOUR, HOUR, || async { passing() })
        .unwrap_err();
    assert!(matches!(error, RegisterError::Duplicate { .. }));
    let error = checks
        .register("kafka:other", Duration::ZERO, HOUR, || async { passing() })
        .unwrap_err();
    assert!(matches!(error, RegisterError::ZeroDuration { .. }));
}

#[tokio::test]
async fn runs_of_an_unknown_check_is_zero() {
    let (checks, _shutdown) = registry();
    assert_eq!(checks.runs("nope:nothing"), 0);
}
