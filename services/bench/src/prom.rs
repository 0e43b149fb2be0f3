//! A Prometheus histogram read from a `/metrics` page, differenced between two scrapes, and its
//! quantiles estimated the way `histogram_quantile` does (linear within a bucket).

/// Cumulative bucket counts by upper bound, summed over label sets, ascending; `+Inf` last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    /// The `<name>_bucket` series of a text exposition.
    pub fn parse(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket");
        let mut by_le: Vec<(f64, f64)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Some(le) = labels
                .split(['{', '}', ','])
                .find_map(|l| l.trim().strip_prefix("le="))
                .map(|v| v.trim_matches('"'))
            else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            let Ok(value) = value.trim().parse::<f64>() else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            match by_le.iter_mut().find(|(b, _)| *b == le) {
                Some((_, v)) => *v += value,
                None => by_le.push((le, value)),
            }
        }
        by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
        Buckets(by_le)
    }

    pub fn total(&self) -> f64 {
        self.0.last().map_or(0.0, |(_, c)| *c)
    }

    /// What was observed between `earlier` and this scrape.
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(
            self.0
                .iter()
                .map(|(le, c)| {
                    let before = earlier.0.iter().find(|(b, _)| b == le).map_or(0.0, |(_, v)| *v);
                    (*le, (c - before).max(0.0))
                })
                .collect(),
        )
    }

    /// The `q` quantile (0..1) in the histogram's unit; `None` when empty. Observations in the
    /// `+Inf` bucket are reported as the highest finite bound, as Prometheus does.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.0 {
            if count >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let in_bucket = count - lower.1;
                if in_bucket <= 0.0 {
                    return Some(le);
                }
                return Some(lower.0 + (le - lower.0) * (rank - lower.1) / in_bucket);
            }
            lower = (le, count);
        }
        Some(lower.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# TYPE orders_placed_to_processed_seconds histogram
orders_placed_to_processed_seconds_bucket{region="eu",le="0.05"} 10
orders_placed_to_processed_seconds_bucket{region="eu",le="0.1"} 90
orders_placed_to_processed_seconds_bucket{region="eu",le="0.25"} 100
orders_placed_to_processed_seconds_bucket{region="eu",le="+Inf"} 100
orders_placed_to_processed_seconds_sum{region="eu"} 7.5
orders_placed_to_processed_seconds_count{region="eu"} 100
"#;

    #[test]
    fn buckets_are_read_from_the_text_exposition() {
        let b = Buckets::parse(PAGE, "orders_placed_to_processed_seconds");
        assert_eq!(b.0.len(), 4);
        assert_eq!(b.total(), 100.0);
        assert_eq!(b.0[0], (0.05, 10.0));
        assert!(b.0[3].0.is_infinite());
    }

    #[test]
    fn quantiles_interpolate_linearly_inside_a_bucket() {
        let b = Buckets::parse(PAGE, "orders_placed_to_processed_seconds");
        let p50 = b.quantile(0.5).unwrap();
        assert!((p50 - 0.075).abs() < 1e-9, "{p50}");
        let p99 = b.quantile(0.99).unwrap();
        assert!((p99 - 0.235).abs() < 1e-9, "{p99}");
    }

    #[test]
    fn the_difference_of_two_scrapes_is_what_happened_in_between() {
        let before = Buckets(vec![(0.1, 5.0), (1.0, 5.0), (f64::INFINITY, 5.0)]);
        let after = Buckets(vec![(0.1, 5.0), (1.0, 15.0), (f64::INFINITY, 16.0)]);
        let d = after.since(&before);
        assert_eq!(d.0, vec![(0.1, 0.0), (1.0, 10.0), (f64::INFINITY, 11.0)]);
        assert_eq!(
            d.quantile(0.99),
            Some(1.0),
            "the +Inf bucket reports the highest finite bound"
        );
    }

    #[test]
    fn an_empty_histogram_has_no_quantile() {
        assert_eq!(Buckets::parse("", "x").quantile(0.5), None);
    }
}
