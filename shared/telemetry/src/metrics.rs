//! The Prometheus registry every service names its metrics in: each series carries the service's
//! region, and `/metrics` renders it in the text exposition format.
use prometheus::core::Collector;
use prometheus::{Encoder, Registry, TextEncoder};

/// A registry whose every series is labelled `region`.
pub struct MetricsRegistry {
    registry: Registry,
}

impl MetricsRegistry {
    pub fn for_region(region: &str) -> Self {
        let labels = [("region".to_string(), region.to_string())].into();
        MetricsRegistry {
            registry: Registry::new_custom(None, Some(labels)).expect("static registry"),
        }
    }

    /// Adds `metric`; fails when a metric of the same name is already registered.
    pub fn register(&self, metric: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(metric)
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding");
        String::from_utf8(buf).expect("utf-8 exposition")
    }
}

#[cfg(test)]
mod tests {
    use prometheus::IntCounter;

    use super::*;

    #[test]
    fn every_series_carries_the_region_and_a_name_registers_once() {
        let registry = MetricsRegistry::for_region("eu");
        let counter = IntCounter::new("orders_test_total", "A test counter.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let text = registry.render();
        assert!(text.contains("# TYPE orders_test_total counter"), "{text}");
        assert!(text.contains(r#"orders_test_total{region="eu"} 3"#), "{text}");
        assert!(registry.register(Box::new(counter)).is_err());
    }
}
