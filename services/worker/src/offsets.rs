//! Which offset of a partition may be committed while records are processed out of order.
//!
//! Records of one partition run concurrently in different lanes, so they finish out of order; an
//! offset is committable only when every record before it has finished. Committing only that is
//! what keeps at-least-once: a crash replays from the first unfinished record.
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), Partition>,
}

#[derive(Debug, Default)]
struct Partition {
    in_flight: BTreeSet<i64>,
    /// The highest offset handed out so far.
    highest: Option<i64>,
    /// The last offset reported committable.
    committed: Option<i64>,
}

impl OffsetTracker {
    /// A record was received and is being processed.
    pub fn start(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partitions.entry((topic.to_string(), partition)).or_default();
        if p.highest.is_some_and(|h| offset <= h) {
            // Delivered again: the consumer rewound to the group's committed offset (a rebalance,
            // a broker restart), which may lie below what we last stored. Every offset handed out
            // before has finished or is in flight, so the next finish stores its offset anew.
            p.committed = None;
        }
        p.in_flight.insert(offset);
        p.highest = Some(p.highest.map_or(offset, |h| h.max(offset)));
    }

    /// A record finished; returns the next offset to commit if it moved (Kafka commits the offset
    /// of the next record to read).
    pub fn finish(&mut self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&(topic.to_string(), partition))?;
        p.in_flight.remove(&offset);
        let next = match p.in_flight.first() {
            Some(&first) => first,
            None => p.highest? + 1,
        };
        if p.committed.is_some_and(|c| c >= next) {
            return None;
        }
        p.committed = Some(next);
        Some(next)
    }

    /// Records still being processed.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }

    /// Forgets a partition that was revoked; its unfinished records will be redelivered elsewhere.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_finishing_before_an_earlier_one_commits_nothing() {
        let mut t = OffsetTracker::default();
        for o in 10..13 {
            t.start("orders", 0, o);
        }
        assert_eq!(t.finish("orders", 0, 11), Some(10));
        assert_eq!(t.finish("orders", 0, 12), None);
        assert_eq!(t.finish("orders", 0, 10), Some(13));
    }

    #[test]
    fn partitions_are_tracked_apart() {
        let mut t = OffsetTracker::default();
        t.start("orders", 0, 5);
        t.start("orders", 1, 7);
        assert_eq!(t.finish("orders", 1, 7), Some(8));
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.finish("orders", 0, 5), Some(6));
    }

    #[test]
    fn a_partition_delivered_again_from_an_earlier_offset_stores_its_offset_anew() {
        // Given three records finished and their offset reported
        let mut t = OffsetTracker::default();
        for o in 10..13 {
            t.start("orders", 0, o);
        }
        for o in 10..13 {
            t.finish("orders", 0, o);
        }
        // When the group rewinds to 10 (its commit was lost with a broker) and redelivers
        t.start("orders", 0, 10);
        // Then finishing it reports the offset again, so the consumer stores and commits it
        assert_eq!(t.finish("orders", 0, 10), Some(13));
    }

    #[test]
    fn the_committed_offset_never_goes_back() {
        let mut t = OffsetTracker::default();
        t.start("orders", 0, 1);
        assert_eq!(t.finish("orders", 0, 1), Some(2));
        t.start("orders", 0, 2);
        t.start("orders", 0, 3);
        assert_eq!(t.finish("orders", 0, 3), None);
        assert_eq!(t.finish("orders", 0, 2), Some(4));
    }
}
