//! The console against the running stack, started through `build` and `run` exactly as in production.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orders_console::{Config, build, run};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the stack may take to settle (another test may have just drained or restarted something).
const SETTLE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `region=api@...,worker@...` for every region of deploy/regions.conf: no region list hard-coded.
fn stack_targets() -> (Vec<String>, String) {
    let path = std::env::var("ORDERS_REGIONS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("deploy/regions.conf"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut names = Vec::new();
    let mut targets = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, api, worker) = (fields[0], fields[3], fields[4]);
        names.push(name.to_string());
        targets.push(format!(
            "{name}=api@http://127.0.0.1:{api},worker@http://127.0.0.1:{worker}"
        ));
    }
    (names, targets.join(";"))
}

struct Console {
    url: String,
    shutdown: CancellationToken,
}

impl Drop for Console {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn spawn_console(targets: &str) -> Console {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
    let root = repo_root();
    let config = Config::from_lookup(|key| match key {
        "ORDERS_CONSOLE_TARGETS" => Some(targets.to_string()),
        "ORDERS_HEALTH_MODEL" => Some(root.join("deploy/health-model.yaml").display().to_string()),
        "ORDERS_CONSOLE_WEB" => Some(root.join("services/console/web/dist").display().to_string()),
        _ => None,
    })
    .expect("test configuration");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    let app = build(config).expect("the console builds");
    let shutdown = CancellationToken::new();
    tokio::spawn(run(app, listener, shutdown.clone()));
    Console { url, shutdown }
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url} answered {}",
        response.status()
    );
    response.json().await.expect("a JSON body")
}

/// Polls the model until `wanted` holds; panics with the last model's verdict if it never does.
async fn wait_for_model(console: &Console, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let model = get_json(&format!("{}/api/health-model", console.url)).await;
        if wanted(&model) {
            return model;
        }
        if started.elapsed() > SETTLE {
            panic!(
                "no {what} within {SETTLE:?}; the model says global {} because {}",
                model["global"]["color"], model["global"]["reasons"]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn color<'a>(model: &'a Value, region: &str) -> &'a str {
    model["regions"][region]["color"].as_str().unwrap_or("absent")
}

#[tokio::test]
async fn with_every_service_up_the_model_is_green_globally_and_lists_every_region() {
    let (regions, targets) = stack_targets();
    let console = spawn_console(&targets).await;
    let model = wait_for_model(&console, "green global", |m| m["global"]["color"] == "green").await;
    for region in &regions {
        assert_eq!(
            color(&model, region),
            "green",
            "region {region}: {}",
            model["regions"][region]
        );
        assert!(model["regions"][region]["flows"]["place_order"].is_object());
    }
    assert!(model["flow_components"]["place_order"].is_array());

    let metrics = reqwest::get(format!("{}/metrics", console.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orders_health_status{level=\"global\",node=\"global\"} 0"),
        "{metrics}"
    );
    let ready = reqwest::get(format!("{}/health/ready", console.url))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let series = get_json(&format!("{}/api/series", console.url)).await;
    assert_eq!(series["window_seconds"], 900);
    assert!(
        series["series"].as_array().is_some_and(|s| s.len() >= 8),
        "{series}"
    );
    let history = get_json(&format!("{}/api/history", console.url)).await;
    assert!(history["changes"].is_array());
    assert_eq!(
        model["root_causes"],
        serde_json::json!([]),
        "a green model has no root cause"
    );
    let incidents = get_json(&format!("{}/api/incidents", console.url)).await;
    assert!(incidents["incidents"].is_array(), "{incidents}");
    let launch = get_json(&format!("{}/api/launch", console.url)).await;
    assert!(launch["skus"].is_array(), "{launch}");
}

#[tokio::test]
async fn a_region_that_does_not_answer_is_red_as_unreachable_while_the_others_stay_green() {
    let (regions, targets) = stack_targets();
    let console = spawn_console(&format!("{targets};xx=api@http://127.0.0.1:1")).await;
    let model = wait_for_model(&console, "xx red with the real regions green", |m| {
        color(m, "xx") == "red" && regions.iter().all(|r| color(m, r) == "green")
    })
    .await;
    let reasons = model["regions"]["xx"]["reasons"].to_string();
    assert!(reasons.contains("unreachable"), "{reasons}");
    // The root cause names it once, unreachable; the region's own reason counts, never repeats.
    let causes = model["root_causes"].as_array().unwrap();
    let xx: Vec<&Value> = causes.iter().filter(|c| c["region"] == "xx").collect();
    assert_eq!(xx.len(), 1, "{causes:?}");
    assert_eq!(
        (xx[0]["label"].as_str(), xx[0]["state"].as_str()),
        (Some("xx api"), Some("unreachable"))
    );
    let own = model["own_reasons"]["region:xx"].as_str().unwrap_or("");
    assert!(own.contains("red") && !own.contains("unreachable"), "{own}");
    assert_eq!(model["global"]["color"], "yellow", "{}", model["global"]);
}

#[tokio::test]
async fn a_service_that_accepts_but_never_answers_counts_as_unreachable_after_the_timeout() {
    // Accepts connections and never answers: only the 1 s timeout can tell.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let console = spawn_console(&format!("yy=api@http://{address}")).await;
    let model = wait_for_model(&console, "yy red", |m| color(m, "yy") == "red").await;
    let reasons = model["regions"]["yy"]["reasons"].to_string();
    assert!(
        reasons.contains("unreachable: no answer within 1000 ms"),
        "{reasons}"
    );
    assert_eq!(model["global"]["color"], "red", "no region left serving");
}

#[tokio::test]
async fn drain_forwarding_needs_a_token_and_a_configured_region() {
    let (_, targets) = stack_targets();
    let console = spawn_console(&targets).await;
    let client = reqwest::Client::new();
    let first = stack_targets().0[0].clone();
    let without_token = client
        .post(format!("{}/api/regions/{first}/drain", console.url))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), 401);
    assert_eq!(
        without_token.headers()["content-type"],
        "application/problem+json"
    );
    let unknown = client
        .post(format!("{}/api/regions/nowhere/drain", console.url))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // A wrong token reaches the services, which refuse it: nothing is drained.
    let wrong = client
        .post(format!("{}/api/regions/{first}/undrain", console.url))
        .bearer_auth("not-the-operator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert!(
        body["services"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["status"] == 401)),
        "{body}"
    );
}
