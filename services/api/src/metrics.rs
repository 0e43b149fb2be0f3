//! The API's metrics, named in one place (Prometheus conventions: base units, `_total` counters,
//! histograms for latency, low-cardinality labels: the matched route, never the raw path).
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use orders_telemetry::MetricsRegistry;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts};

pub struct Metrics {
    registry: MetricsRegistry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub orders_placed: IntCounterVec,
    /// Requests refused by admission control, by reason: `overloaded` (503) or `rate_limited` (429).
    pub refused: IntCounterVec,
    pub in_flight: IntGauge,
    pub in_flight_limit: IntGauge,
    /// Units left of each SKU in this region's allotment, as last read (the console's launch panel).
    pub allotment_available: IntGaugeVec,
}

impl Metrics {
    pub fn new(region: &str) -> Self {
        let registry = MetricsRegistry::for_region(region);
        let requests = IntCounterVec::new(
            Opts::new(
                "orders_http_requests_total",
                "HTTP requests answered, by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("static metric");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "orders_http_request_duration_seconds",
                "HTTP request latency, by route and method.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )
        .expect("static metric");
        let orders_placed = IntCounterVec::new(
            Opts::new(
                "orders_placed_total",
                "Orders accepted, by durability they were acknowledged with.",
            ),
            &["durability"],
        )
        .expect("static metric");
        let refused = IntCounterVec::new(
            Opts::new(
                "orders_admission_refused_total",
                "Requests refused before any work, by reason: overloaded (503) or rate_limited (429).",
            ),
            &["reason"],
        )
        .expect("static metric");
        let in_flight = IntGauge::new(
            "orders_admission_in_flight",
            "Requests admitted and not yet answered.",
        )
        .expect("static metric");
        let in_flight_limit = IntGauge::new(
            "orders_admission_in_flight_limit",
            "Requests allowed in flight at once; beyond it requests are shed with 503.",
        )
        .expect("static metric");
        let allotment_available = IntGaugeVec::new(
            Opts::new(
                "orders_allotment_available",
                "Units of a SKU left in this region's allotment, as the API last read them.",
            ),
            &["sku"],
        )
        .expect("static metric");
        for reason in ["overloaded", "rate_limited"] {
            refused.with_label_values(&[reason]);
        }
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(orders_placed.clone()),
            Box::new(refused.clone()),
            Box::new(in_flight.clone()),
            Box::new(in_flight_limit.clone()),
            Box::new(allotment_available.clone()),
        ] {
            registry.register(m).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            duration,
            orders_placed,
            refused,
            in_flight,
            in_flight_limit,
            allotment_available,
        }
    }

    /// Sets the allotment gauges from the API's current view of them.
    pub fn record_allotments(&self, available: &std::collections::HashMap<String, i64>) {
        for (sku, units) in available {
            self.allotment_available.with_label_values(&[sku]).set(*units);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

/// Middleware: counts and times every request by its matched route.
pub async fn track(State(metrics): State<std::sync::Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics
        .duration
        .with_label_values(&[&route, &method])
        .observe(start.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    response
}
