//! The open-loop schedule: when each request is meant to start, whatever earlier requests did.
//!
//! Latency is measured from these intended start times, not from when a request was finally
//! sent, so a stalled backend shows as latency instead of silently lowering the offered load
//! (coordinated omission).
use std::time::Duration;

/// A constant rate for a fixed duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    duration: Duration,
}

impl Schedule {
    /// `rate` in requests per second; a rate that is not a positive finite number is a bug.
    pub fn new(rate: f64, duration: Duration) -> Self {
        debug_assert!(
            rate.is_finite() && rate > 0.0,
            "rate must be positive, got {rate}"
        );
        Schedule { rate, duration }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// How many requests the schedule holds: one every `1 / rate`, starting at 0, before `duration`.
    pub fn count(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).ceil() as u64
    }

    /// The intended start of request `i`, as an offset from the schedule's start.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Every intended start, in order.
    pub fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..self.count()).map(|i| self.offset(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_evenly_spaced_at_the_rate() {
        let s = Schedule::new(100.0, Duration::from_secs(2));
        assert_eq!(s.count(), 200);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(10));
        assert_eq!(s.offset(150), Duration::from_millis(1500));
    }

    #[test]
    fn every_intended_start_falls_inside_the_duration() {
        let s = Schedule::new(33.0, Duration::from_millis(1000));
        let offsets: Vec<_> = s.offsets().collect();
        assert_eq!(offsets.len(), 33);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]));
        assert!(*offsets.last().unwrap() < Duration::from_secs(1));
    }

    #[test]
    fn a_fractional_rate_still_schedules_the_first_request_at_once() {
        let s = Schedule::new(0.5, Duration::from_secs(3));
        assert_eq!(s.count(), 2);
        assert_eq!(s.offset(1), Duration::from_secs(2));
    }
}
