//! A bounded memory of ids, oldest forgotten first: the saga events a worker published, the
//! placements an API published. About half an hour of either at 100/s, a few megabytes.
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use uuid::Uuid;

#[derive(Default)]
pub struct RecentIds {
    inner: Mutex<(HashSet<Uuid>, VecDeque<Uuid>)>,
}

impl RecentIds {
    pub const CAPACITY: usize = 200_000;

    pub fn insert(&self, id: Uuid) {
        let mut guard = self.inner.lock().expect("recent ids lock");
        let (set, order) = &mut *guard;
        if set.insert(id) {
            order.push_back(id);
            if order.len() > Self::CAPACITY
                && let Some(old) = order.pop_front()
            {
                set.remove(&old);
            }
        }
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.inner.lock().expect("recent ids lock").0.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_ids_forget_the_oldest_beyond_their_capacity() {
        let recent = RecentIds::default();
        let first = Uuid::new_v4();
        recent.insert(first);
        recent.insert(first);
        assert!(recent.contains(first));
        for _ in 0..RecentIds::CAPACITY {
            recent.insert(Uuid::new_v4());
        }
        assert!(!recent.contains(first), "the oldest is forgotten");
        let (set, order) = &*recent.inner.lock().unwrap();
        assert_eq!(
            (set.len(), order.len()),
            (RecentIds::CAPACITY, RecentIds::CAPACITY)
        );
    }
}
