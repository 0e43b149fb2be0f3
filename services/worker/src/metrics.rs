//! The worker's metrics, named in one place.
use orders_telemetry::MetricsRegistry;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

pub struct Metrics {
    registry: MetricsRegistry,
    pub records: IntCounterVec,
    pub dead_lettered: IntCounter,
    pub placed_to_final: Histogram,
    /// Records parked, by error kind (`transient`, `permanent`).
    pub parked: IntCounterVec,
    /// Parked records of this region not yet replayed, as of the last `worker:parked` check.
    pub parked_unreplayed: IntGauge,
}

impl Metrics {
    pub fn new(region: &str) -> Self {
        let registry = MetricsRegistry::for_region(region);
        let records = IntCounterVec::new(
            Opts::new("orders_worker_records_total", "Records handled, by outcome."),
            &["outcome"],
        )
        .expect("static metric");
        let dead_lettered = IntCounter::new(
            "orders_worker_dead_lettered_total",
            "Records sent to the dead-letter topic.",
        )
        .expect("static metric");
        let placed_to_final = Histogram::with_opts(
            HistogramOpts::new(
                "orders_placed_to_processed_seconds",
                "Time from an order's placement to its final event (confirmed or rejected), as this worker saw it.",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .expect("static metric");
        let parked = IntCounterVec::new(
            Opts::new(
                "orders_worker_parked_total",
                "Records parked (dead-lettered and listed), by error kind.",
            ),
            &["kind"],
        )
        .expect("static metric");
        let parked_unreplayed = IntGauge::new(
            "orders_worker_parked_records",
            "Parked records of this region not yet replayed.",
        )
        .expect("static metric");
        registry.register(Box::new(parked.clone())).expect("unique");
        registry
            .register(Box::new(parked_unreplayed.clone()))
            .expect("unique");
        registry.register(Box::new(records.clone())).expect("unique");
        registry
            .register(Box::new(dead_lettered.clone()))
            .expect("unique");
        registry
            .register(Box::new(placed_to_final.clone()))
            .expect("unique");
        Metrics {
            registry,
            records,
            dead_lettered,
            placed_to_final,
            parked,
            parked_unreplayed,
        }
    }

    pub fn render(&self) -> String {
        self.registry.render()
    }
}
