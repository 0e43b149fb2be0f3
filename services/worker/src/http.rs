//! The worker's HTTP surface: health, metrics, and the operator's ownership and parking commands.
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orders_health::Problem;
use scylla::client::session::Session;
use serde_json::json;

use crate::Worker;

pub(crate) fn register_checks(worker: &Arc<Worker>, session: Arc<Session>) -> anyhow::Result<()> {
    let (health, config) = (&worker.health, &worker.config);
    let thresholds = orders_checks::Thresholds::load().map_err(anyhow::Error::msg)?;
    let here = config.region.as_str();
    let others: Vec<String> = config
        .regions
        .iter()
        .filter(|r| *r != &config.region)
        .map(|r| r.to_string())
        .collect();
    orders_checks::kafka(health, &config.kafka)?;
    orders_checks::cassandra(health, session.clone(), here)?;
    orders_checks::payment(health, &config.payment_url)?;
    orders_checks::log_freshness(health, &thresholds, &config.kafka, here, others.clone())?;
    orders_checks::db_lag(health, &thresholds, session.clone(), here, others)?;
    orders_checks::consumer_lag(
        health,
        &thresholds,
        &config.kafka,
        &config.group(),
        config.topics(),
        false,
    )?;
    tokio::spawn(orders_checks::write_db_heartbeats(
        session,
        here.to_string(),
        std::time::Duration::from_millis(200),
        worker.shutdown.clone(),
    ));
    dead_letter_rate(worker, &thresholds)?;
    parked(worker)?;
    Ok(())
}

/// `worker:parked`: parked records of this region not yet replayed. Warns while there are any,
/// naming the first orders; never fails, since the worker goes on with everything else.
fn parked(worker: &Arc<Worker>) -> anyhow::Result<()> {
    // Weak: the check lives in the worker's own health registry.
    let weak = Arc::downgrade(worker);
    worker.health.register(
        "worker:parked",
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(2),
        move || {
            let weak = weak.clone();
            async move {
                let Some(worker) = weak.upgrade() else {
                    return vec![];
                };
                let check = match worker.unreplayed().await {
                    Ok(parked) => {
                        worker.metrics.parked_unreplayed.set(parked.len() as i64);
                        parked_check(worker.config.region.as_str(), &parked)
                    }
                    Err(e) => orders_health::CheckResult::now(orders_health::Status::Warn)
                        .with_output(format!("cannot list parked records: {e}")),
                };
                vec![check.with_component_type(orders_health::ComponentType::Component)]
            }
        },
    )?;
    Ok(())
}

fn parked_check(region: &str, parked: &[orders_store::parked::ParkedRecord]) -> orders_health::CheckResult {
    use orders_health::{CheckResult, Status};
    if parked.is_empty() {
        return CheckResult::now(Status::Pass).with_observed(0, "records");
    }
    let mut orders: Vec<String> = Vec::new();
    for p in parked {
        let id = p.order_id.to_string();
        if !orders.contains(&id) {
            orders.push(id);
        }
    }
    let first: Vec<&str> = orders.iter().take(5).map(String::as_str).collect();
    let more = orders.len().saturating_sub(first.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    CheckResult::now(Status::Warn)
        .with_observed(parked.len(), "records")
        .with_output(format!(
            "{} parked record(s) of region {region} need an operator (./dev replay {region}): orders {}{more}",
            parked.len(),
            first.join(", ")
        ))
}

/// `worker:deadLetterRate`: records dead-lettered over the last minute.
fn dead_letter_rate(worker: &Arc<Worker>, thresholds: &orders_checks::Thresholds) -> anyhow::Result<()> {
    let key = "worker:deadLetterRate";
    let judge = thresholds.judge(key);
    let counter = worker.metrics.dead_lettered.clone();
    let history: Arc<std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64)>>> =
        Arc::default();
    worker.health.register(
        key,
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(1),
        move || {
            let (judge, counter, history) = (judge.clone(), counter.clone(), history.clone());
            async move {
                let now = std::time::Instant::now();
                let mut h = history.lock().expect("dead-letter history lock");
                h.push_back((now, counter.get()));
                while h
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > std::time::Duration::from_secs(60))
                {
                    h.pop_front();
                }
                let oldest = h.front().map_or(0, |(_, n)| *n);
                let mut check = judge.observe((counter.get() - oldest) as f64);
                if check.status == orders_health::Status::Fail {
                    // Poison records are parked, not fatal: the worker keeps serving.
                    check.status = orders_health::Status::Warn;
                }
                vec![check]
            }
        },
    )?;
    Ok(())
}

pub(crate) fn router(worker: Arc<Worker>) -> Router {
    let health = worker.health.clone();
    let admin = Router::new()
        .route("/admin/ownership", get(ownership))
        .route("/admin/regions/{region}/takeover", post(take_over))
        .route("/admin/regions/{region}/handback", post(hand_back))
        .route("/admin/parked", get(list_parked))
        .route("/admin/parked/replay", post(replay_parked))
        .with_state(worker.clone());
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(worker.clone())
        .merge(admin)
        .merge(orders_health::routes(health.clone()))
        .merge(orders_health::admin_routes(
            health,
            worker.config.ops_token.clone(),
        ))
}

fn authorized(worker: &Worker, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| worker.config.ops_token.matches(t.trim().as_bytes()))
}

/// The worker's problems use their slug as the title.
fn problem(status: StatusCode, slug: &str, detail: String) -> Response {
    Problem {
        status,
        type_uri: &format!("/problems/{slug}"),
        title: slug,
        detail: &detail,
    }
    .into_response()
}

fn known_region(worker: &Worker, region: &str) -> bool {
    worker.config.regions.iter().any(|r| r.as_str() == region)
}

async fn ownership(State(worker): State<Arc<Worker>>) -> Response {
    let owners: serde_json::Map<String, serde_json::Value> = worker
        .processor
        .owners
        .snapshot()
        .into_iter()
        .map(|(origin, o)| (origin, json!({ "owner": o.region, "epoch": o.epoch })))
        .collect();
    Json(json!({ "region": worker.config.region, "ownership": owners })).into_response()
}

/// The problem to answer unless the request carries the operator's token and names another region.
fn refuse_ownership_request(worker: &Worker, headers: &HeaderMap, region: &str) -> Option<Response> {
    if !authorized(worker, headers) {
        return Some(problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the operator token is required".into(),
        ));
    }
    if !known_region(worker, region) || region == worker.config.region.as_str() {
        return Some(problem(
            StatusCode::BAD_REQUEST,
            "invalid-region",
            format!("{region:?} is not another region of this deployment"),
        ));
    }
    None
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())
}

/// Declares `region` down: this region takes over its orders and finishes its unfinished ones.
async fn take_over(
    State(worker): State<Arc<Worker>>,
    headers: HeaderMap,
    Path(region): Path<String>,
) -> Response {
    if let Some(refused) = refuse_ownership_request(&worker, &headers, &region) {
        return refused;
    }
    let owner = match worker.processor.owners.claim(&region, true).await {
        Ok(o) => o,
        Err(e) => return unavailable(e),
    };
    // The dead region's open orders are finished in the background, by every worker of this
    // region, once it sees the ownership it gained (`Worker::run_sweep_on_gain`).
    Json(
        json!({ "origin": region, "owner": owner.region, "epoch": owner.epoch, "open_orders": "processing" }),
    )
    .into_response()
}

/// Hands `region`'s orders back to it (after it has healed).
async fn hand_back(
    State(worker): State<Arc<Worker>>,
    headers: HeaderMap,
    Path(region): Path<String>,
) -> Response {
    if let Some(refused) = refuse_ownership_request(&worker, &headers, &region) {
        return refused;
    }
    match worker.processor.owners.claim(&region, false).await {
        Ok(owner) => {
            Json(json!({ "origin": region, "owner": owner.region, "epoch": owner.epoch })).into_response()
        }
        Err(e) => unavailable(e),
    }
}

async fn metrics(State(worker): State<Arc<Worker>>) -> Response {
    let mut body = worker.metrics.render();
    body.push_str(&orders_health::export::prometheus_lines(&worker.health.report()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

fn unauthorized() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the operator token is required".into(),
    )
}

/// The region's parked records, replayed or not (`replayed_at`), and how many wait for a replay.
async fn list_parked(State(worker): State<Arc<Worker>>, headers: HeaderMap) -> Response {
    if !authorized(&worker, &headers) {
        return unauthorized();
    }
    let region = worker.config.region.as_str();
    let parked = match worker.parked.list(region).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list parked records");
            return unavailable("the parked records cannot be read now; retry");
        }
    };
    let unreplayed = parked.iter().filter(|p| p.replayed_at.is_none()).count();
    let records: Vec<serde_json::Value> = parked
        .iter()
        .map(|p| {
            json!({
                "order_id": p.order_id,
                "topic": p.position.topic,
                "partition": p.position.partition,
                "offset": p.position.offset,
                "error_kind": p.error_kind,
                "error": p.error,
                "parked_at": p.parked_at,
                "replayed_at": p.replayed_at,
            })
        })
        .collect();
    Json(json!({ "region": region, "unreplayed": unreplayed, "parked": records })).into_response()
}

#[derive(serde::Deserialize)]
struct ReplayQuery {
    order_id: Option<String>,
}

/// Re-runs the saga of every order with unreplayed parked records, or of `?order_id=` only.
async fn replay_parked(
    State(worker): State<Arc<Worker>>,
    headers: HeaderMap,
    query: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !authorized(&worker, &headers) {
        return unauthorized();
    }
    let only = match query
        .ok()
        .and_then(|Query(q)| q.order_id)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => match text.parse::<uuid::Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "validation",
                    format!("order_id {text:?} is not an order id"),
                );
            }
        },
    };
    let replayed = match worker.replay(only, false).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "replay of parked records failed");
            return unavailable("the parked records cannot be read or marked now; retry");
        }
    };
    if let (Some(id), true) = (only, replayed.is_empty()) {
        return problem(
            StatusCode::NOT_FOUND,
            "not-parked",
            format!("order {id} has no parked record waiting for a replay in this region"),
        );
    }
    let failed = replayed.iter().filter(|r| !r.succeeded()).count();
    Json(json!({
        "region": worker.config.region,
        "replayed": replayed.len() - failed,
        "still_parked": failed,
        "orders": replayed,
    }))
    .into_response()
}
