//! The search for the highest sustainable rate: a geometric ladder until the first break (down the
//! ladder when even the first rung breaks), then a few bisections between the last sustainable
//! rate and the first broken one.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ladder {
    pub start: f64,
    /// Each rung is the previous times this (> 1).
    pub factor: f64,
    /// Never offered above this: the search ends there without a break (a lower bound).
    pub max: f64,
    /// Bisections after the first break.
    pub refine: u32,
}

/// Where a search ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limit {
    /// The highest sustainable rate offered; `None` when even the first rung broke.
    pub sustainable: Option<f64>,
    /// The lowest broken rate offered; `None` when nothing broke up to the maximum.
    pub first_break: Option<f64>,
}

impl Limit {
    /// "≥ 200/s (never broke)", "120/s", "< 25/s".
    pub fn describe(&self) -> String {
        match (self.sustainable, self.first_break) {
            (Some(s), None) => format!("≥ {s}/s (never broke up to the maximum offered)"),
            (Some(s), Some(b)) => format!("{s}/s (broke at {b}/s)"),
            (None, Some(b)) => format!("< {b}/s (the lowest rate offered broke)"),
            (None, None) => "not measured".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LimitSearch {
    ladder: Ladder,
    good: Option<f64>,
    bad: Option<f64>,
    refined: u32,
}

/// Rates are offered in whole requests per second (at least 1).
fn whole(rate: f64) -> f64 {
    rate.round().max(1.0)
}

impl LimitSearch {
    pub fn new(ladder: Ladder) -> Self {
        debug_assert!(ladder.factor > 1.0 && ladder.start > 0.0);
        LimitSearch {
            ladder,
            good: None,
            bad: None,
            refined: 0,
        }
    }

    /// The next rate to offer, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<f64> {
        let max = whole(self.ladder.max);
        match (self.good, self.bad) {
            (None, None) => Some(whole(self.ladder.start).min(max)),
            (Some(g), None) if g >= max => None,
            (Some(g), None) => {
                let next = whole(g * self.ladder.factor).min(max);
                Some(if next <= g { g + 1.0 } else { next })
            }
            // Even the first rung broke: step down the ladder until a rate holds.
            (None, Some(b)) => {
                let next = whole(b / self.ladder.factor);
                (next < b).then_some(next)
            }
            (Some(g), Some(b)) => {
                let mid = whole((g + b) / 2.0);
                (self.refined < self.ladder.refine && mid > g && mid < b).then_some(mid)
            }
        }
    }

    /// Records the verdict of offering `rate`.
    pub fn record(&mut self, rate: f64, sustainable: bool) {
        let refining = self.good.is_some() && self.bad.is_some();
        if sustainable {
            self.good = Some(self.good.map_or(rate, |g| g.max(rate)));
        } else {
            self.bad = Some(self.bad.map_or(rate, |b| b.min(rate)));
        }
        if refining {
            self.refined += 1;
        }
    }

    pub fn is_done(&self) -> bool {
        self.next_rate().is_none()
    }

    pub fn limit(&self) -> Limit {
        Limit {
            sustainable: self.good,
            first_break: self.bad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder(refine: u32) -> Ladder {
        Ladder {
            start: 50.0,
            factor: 2.0,
            max: 1000.0,
            refine,
        }
    }

    /// Runs a search against a system that sustains everything up to `capacity`.
    fn search(ladder: Ladder, capacity: f64) -> (Vec<f64>, Limit) {
        let mut s = LimitSearch::new(ladder);
        let mut offered = Vec::new();
        while let Some(rate) = s.next_rate() {
            offered.push(rate);
            s.record(rate, rate <= capacity);
            assert!(offered.len() < 50, "the search must end");
        }
        (offered, s.limit())
    }

    #[test]
    fn the_ladder_climbs_geometrically_until_the_first_break() {
        let (offered, limit) = search(ladder(0), 300.0);
        assert_eq!(offered, vec![50.0, 100.0, 200.0, 400.0]);
        assert_eq!(limit.sustainable, Some(200.0));
        assert_eq!(limit.first_break, Some(400.0));
    }

    #[test]
    fn bisection_narrows_the_limit_after_the_break() {
        let (offered, limit) = search(ladder(3), 300.0);
        assert_eq!(offered, vec![50.0, 100.0, 200.0, 400.0, 300.0, 350.0, 325.0]);
        assert_eq!(limit.sustainable, Some(300.0));
        assert_eq!(limit.first_break, Some(325.0));
        assert_eq!(limit.describe(), "300/s (broke at 325/s)");
    }

    #[test]
    fn a_system_that_never_breaks_ends_at_the_maximum_as_a_lower_bound() {
        let (offered, limit) = search(ladder(2), 1e9);
        assert_eq!(offered, vec![50.0, 100.0, 200.0, 400.0, 800.0, 1000.0]);
        assert_eq!(limit.first_break, None);
        assert!(limit.describe().starts_with("≥ 1000/s"));
    }

    #[test]
    fn a_system_that_breaks_at_the_first_rung_is_searched_down_the_ladder() {
        let (offered, limit) = search(ladder(2), 10.0);
        assert_eq!(offered, vec![50.0, 25.0, 13.0, 7.0, 10.0, 12.0]);
        assert_eq!(limit.sustainable, Some(10.0));
        assert_eq!(limit.first_break, Some(12.0));
    }

    #[test]
    fn a_system_that_sustains_nothing_ends_at_one_request_per_second() {
        let (offered, limit) = search(ladder(2), 0.0);
        assert_eq!(offered, vec![50.0, 25.0, 13.0, 7.0, 4.0, 2.0, 1.0]);
        assert_eq!(limit.sustainable, None);
        assert!(limit.describe().starts_with("< 1/s"));
    }

    #[test]
    fn bisection_stops_when_the_rates_are_adjacent() {
        let small = Ladder {
            start: 1.0,
            factor: 2.0,
            max: 100.0,
            refine: 10,
        };
        let (offered, limit) = search(small, 2.0);
        assert_eq!(offered, vec![1.0, 2.0, 4.0, 3.0]);
        assert_eq!(limit.sustainable, Some(2.0));
        assert_eq!(limit.first_break, Some(3.0));
    }

    #[test]
    fn a_factor_that_rounds_to_the_same_rate_still_climbs() {
        let slow = Ladder {
            start: 1.0,
            factor: 1.1,
            max: 3.0,
            refine: 0,
        };
        let (offered, _) = search(slow, 1e9);
        assert_eq!(offered, vec![1.0, 2.0, 3.0]);
    }
}
