//! Admission control against the stack: extra eu APIs, started from the release binaries with tiny
//! limits and pointed at the running Cassandra and Kafka, refuse what they cannot serve at once
//! (429 over a client's rate, 503 over the in-flight bound), with Retry-After and the RateLimit
//! fields, write nothing for what they refuse, and stay ready while they shed.
use std::process::Child;
use std::time::{Duration, Instant};

use orders_domain::order_id_for;
use orders_tests::api::{ApiClient, CLIENT_ID, Reply, fresh_key, sample_order};
use orders_tests::{eventually, region};
use uuid::Uuid;

/// A second eu API with its own environment; killed when dropped.
struct ExtraApi {
    child: Child,
    base: String,
}

impl ExtraApi {
    async fn start(port: u16, env: &[(&str, &str)]) -> ExtraApi {
        let mut command = orders_tests::extra::api_command(&region("eu"), port);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("start an extra eu api");
        let api = ExtraApi {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        // Ready, not only live: shedding must be seen against a readiness that passed before.
        let base = api.base.clone();
        let ready = eventually(Duration::from_secs(60), || {
            let base = base.clone();
            async move {
                let (status, _) = orders_tests::health::ready(&base).await;
                (status == 200).then_some(())
            }
        })
        .await;
        assert!(
            ready.is_some(),
            "the extra api at {} never became ready",
            api.base
        );
        api
    }

    fn client(&self) -> ApiClient {
        ApiClient::at("eu", self.base.clone())
    }

    /// The value of one sample of its `/metrics`, by the metric name and a label it carries.
    async fn metric(&self, name: &str, label: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} with {label} in the metrics:\n{text}"))
    }
}

impl Drop for ExtraApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seconds_header(reply: &Reply, name: &str) -> u64 {
    reply
        .header(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number of seconds: {:?}", reply.header(name)))
}

/// Nothing of a refused placement was written: its order does not exist, and the same key placed
/// again is a new placement, not a replay.
async fn assert_nothing_written(api: &ApiClient, key: &str) {
    let id = order_id_for(CLIENT_ID, key);
    let stack = ApiClient::new("eu");
    stack.events(id).await.assert_problem(404, "not-found");
    let again = api.place(key, &sample_order(Uuid::new_v4())).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.order_id(), id);
    assert_eq!(
        again.header("idempotent-replayed"),
        None,
        "the refused placement had claimed its key"
    );
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after_and_the_ratelimit_fields() {
    // Given an API whose default rate is high but whose override gives this client 2 requests,
    // refilled at one every 5 s
    let extra = ExtraApi::start(
        18_191,
        &[
            ("ORDERS_RATE_LIMIT", "1000/s,2000"),
            ("ORDERS_RATE_LIMITS", "other-client=1/s,1;dev-storefront=0.2/s,2"),
        ],
    )
    .await;
    let api = extra.client();
    // When the client places two orders, then a third at once
    let first = api.place(&fresh_key(), &sample_order(Uuid::new_v4())).await;
    let second = api.place(&fresh_key(), &sample_order(Uuid::new_v4())).await;
    let refused_key = fresh_key();
    let third = api.place(&refused_key, &sample_order(Uuid::new_v4())).await;
    // Then the two pass and say what is left of the quota
    for (reply, remaining) in [(&first, 1), (&second, 0)] {
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.header("ratelimit-policy"), Some("\"per-client\";q=2;w=10"));
        let now = reply
            .header("ratelimit")
            .expect("a RateLimit field on a placement");
        assert!(
            now.starts_with(&format!("\"per-client\";r={remaining};t=")),
            "{now}"
        );
    }
    // And the third is a 429 problem with Retry-After and the RateLimit fields
    third.assert_problem(429, "rate-limited");
    let retry_after = seconds_header(&third, "retry-after");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(third.header("ratelimit-policy"), Some("\"per-client\";q=2;w=10"));
    assert_eq!(
        third.header("ratelimit"),
        Some(format!("\"per-client\";r=0;t={retry_after}").as_str())
    );
    assert!(
        extra
            .metric("orders_admission_refused_total", "rate_limited")
            .await
            >= 1.0
    );
    // And nothing of it was written: once the bucket refilled, the same key places it anew
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_nothing_written(&api, &refused_key).await;
}

#[tokio::test]
async fn over_a_tiny_in_flight_limit_placements_are_shed_fast_while_readiness_stays_up() {
    // Given an API that serves one request at a time
    let extra = ExtraApi::start(18_192, &[("ORDERS_MAX_IN_FLIGHT", "1")]).await;
    let api = extra.client();
    assert_eq!(
        extra.metric("orders_admission_in_flight_limit", "region").await,
        1.0
    );
    let warm = api.place(&fresh_key(), &sample_order(Uuid::new_v4())).await;
    assert_eq!(warm.status, 201, "{}", warm.text);
    // When many placements arrive at once (in rounds, until one is shed)
    let mut answers = Vec::new();
    for _ in 0..10 {
        let round: Vec<_> = (0..24)
            .map(|_| {
                let api = api.clone();
                tokio::spawn(async move {
                    let key = fresh_key();
                    let started = Instant::now();
                    let reply = api.place(&key, &sample_order(Uuid::new_v4())).await;
                    (key, started.elapsed(), reply)
                })
            })
            .collect();
        for task in round {
            answers.push(task.await.expect("a placement task"));
        }
        if answers.iter().any(|(_, _, reply)| reply.status == 503) {
            break;
        }
    }
    // Then some are shed with 503 overloaded and Retry-After, without queueing, and the rest placed
    // (the 50 ms target for a shed answer is measured by `orders-bench overload`; on a shared test
    // machine 24 concurrent clients alone add tens of ms, so here "fast" means well inside a
    // storefront's 2 s client timeout)
    let shed: Vec<_> = answers.iter().filter(|(_, _, r)| r.status == 503).collect();
    let placed = answers.iter().filter(|(_, _, r)| r.status == 201).count();
    assert!(
        !shed.is_empty(),
        "nothing was shed in {} placements",
        answers.len()
    );
    assert!(placed > 0, "nothing was placed");
    assert_eq!(
        shed.len() + placed,
        answers.len(),
        "a status other than 201 or 503"
    );
    for (_, took, reply) in &shed {
        reply.assert_problem(503, "overloaded");
        assert!(seconds_header(reply, "retry-after") >= 1);
        assert!(*took < Duration::from_millis(500), "a shed answer took {took:?}");
    }
    let refused = extra.metric("orders_admission_refused_total", "overloaded").await;
    assert!(
        refused >= shed.len() as f64,
        "{refused} counted for {} shed",
        shed.len()
    );
    // And readiness stays 200 while it sheds, with api:shedding warning
    let (status, report) = orders_tests::health::ready(&extra.base).await;
    assert_eq!(status, 200, "readiness failed while shedding: {report:?}");
    let warned = eventually(Duration::from_secs(5), || {
        let base = extra.base.clone();
        async move {
            let (status, report) = orders_tests::health::ready(&base).await;
            assert_eq!(status, 200, "readiness failed while shedding: {report:?}");
            let (check, output, value) = orders_tests::health::check(&report?, "api:shedding")?;
            (check == orders_health::Status::Warn).then_some((output, value))
        }
    })
    .await;
    let ((output, value), _) = warned.expect("api:shedding never warned after shedding");
    assert!(value.is_some_and(|v| v > 0.0), "{output}: {value:?}");
    // And nothing shed was written
    for (key, _, _) in shed.iter().take(3) {
        assert_nothing_written(&api, key).await;
    }
}
