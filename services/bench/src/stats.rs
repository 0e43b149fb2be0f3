//! Latency recording in HDR histograms and the percentiles every report prints.
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The longest latency a histogram tracks exactly; longer ones are recorded as this.
const MAX_TRACKED: Duration = Duration::from_secs(120);

/// Latencies in microseconds, 3 significant digits, 1 µs to 120 s.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            hist: Histogram::new_with_bounds(1, MAX_TRACKED.as_micros() as u64, 3)
                .expect("static histogram bounds"),
        }
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let micros = latency.min(MAX_TRACKED).as_micros().max(1) as u64;
        self.hist.saturating_record(micros);
    }

    /// Records a latency known only in milliseconds (Kafka timestamps); negative ones count as 0.
    pub fn record_ms(&mut self, ms: i64) {
        self.record(Duration::from_millis(ms.max(0) as u64));
    }

    pub fn add(&mut self, other: &Latencies) {
        self.hist
            .add(&other.hist)
            .expect("histograms with the same bounds");
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let q = |q: f64| {
            if self.hist.is_empty() {
                None
            } else {
                Some(ms(self.hist.value_at_quantile(q)))
            }
        };
        LatencySummary {
            count: self.hist.len(),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: (!self.hist.is_empty()).then(|| ms(self.hist.max())),
            mean_ms: (!self.hist.is_empty()).then(|| self.hist.mean() / 1000.0),
        }
    }
}

/// Percentiles in milliseconds; `None` when nothing was recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

/// A millisecond figure for tables: "12.3", or "–" when there is none.
pub fn fmt_ms(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_out_in_milliseconds() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        let p50 = s.p50_ms.unwrap();
        assert!((49.9..=50.1).contains(&p50), "p50 {p50}");
        let p99 = s.p99_ms.unwrap();
        assert!((98.9..=99.1).contains(&p99), "p99 {p99}");
        assert!((99.9..=100.1).contains(&s.max_ms.unwrap()));
    }

    #[test]
    fn an_empty_histogram_reports_no_percentiles() {
        let s = Latencies::default().summary();
        assert_eq!(s.count, 0);
        assert_eq!(s.p99_ms, None);
        assert_eq!(fmt_ms(s.p99_ms), "–");
    }

    #[test]
    fn latencies_beyond_the_tracked_range_are_clamped_not_lost() {
        let mut l = Latencies::default();
        l.record(Duration::from_secs(3600));
        l.record_ms(-5);
        assert_eq!(l.count(), 2);
        assert!(l.summary().max_ms.unwrap() >= 119_000.0);
    }

    #[test]
    fn merged_histograms_count_both_runs() {
        let (mut a, mut b) = (Latencies::default(), Latencies::default());
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(9));
        a.add(&b);
        assert_eq!(a.count(), 2);
        assert!(a.summary().max_ms.unwrap() >= 8.9);
    }

    #[test]
    fn milliseconds_print_with_sensible_precision() {
        assert_eq!(fmt_ms(Some(1.23456)), "1.23");
        assert_eq!(fmt_ms(Some(1234.4)), "1234");
    }
}
