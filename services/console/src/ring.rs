//! A bounded buffer of time-stamped points: memory stays flat however long the console runs.
use std::collections::VecDeque;

use serde::Serialize;

/// `(unix milliseconds, value)`, serialized as a two-element array the page feeds to its charts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point(pub i64, pub f64);

#[derive(Debug, Clone)]
pub struct Ring {
    points: VecDeque<Point>,
    capacity: usize,
    window_ms: i64,
}

impl Ring {
    /// Keeps at most `capacity` points and none older than `window_ms` before the newest.
    pub fn new(capacity: usize, window_ms: i64) -> Self {
        assert!(capacity > 0, "a ring needs room for one point");
        Self {
            points: VecDeque::with_capacity(capacity),
            capacity,
            window_ms,
        }
    }

    pub fn push(&mut self, point: Point) {
        while self.points.len() >= self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(point);
        self.prune(point.0);
    }

    /// Drops points that fell out of the window as seen at `now_ms`, also when nothing new arrives
    /// (a series of a dead service must age out rather than show its last minutes forever).
    pub fn prune(&mut self, now_ms: i64) {
        let oldest = now_ms - self.window_ms;
        while self.points.front().is_some_and(|p| p.0 < oldest) {
            self.points.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    pub fn last(&self) -> Option<Point> {
        self.points.back().copied()
    }

    pub fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.points.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_drops_its_oldest_point() {
        let mut ring = Ring::new(3, i64::MAX / 2);
        for t in 0..5 {
            ring.push(Point(t, t as f64));
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.points().map(|p| p.0).collect::<Vec<_>>(), [2, 3, 4]);
    }

    #[test]
    fn points_older_than_the_window_are_dropped_even_when_there_is_room() {
        let mut ring = Ring::new(100, 1_000);
        ring.push(Point(0, 1.0));
        ring.push(Point(500, 2.0));
        ring.push(Point(1_200, 3.0));
        assert_eq!(ring.points().map(|p| p.0).collect::<Vec<_>>(), [500, 1_200]);
        ring.prune(10_000);
        assert!(ring.is_empty());
        assert_eq!(ring.last(), None);
    }
}
