//! `VersionVector`: the causal position of an event or a reader across all region lanes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::region::Region;

/// For each region's lane, the highest seq known. A missing region means 0 (nothing seen), so
/// a new region joins without rewriting old events. Serialized as a JSON object keyed by region.
///
/// If event A happened before event B, B's vector dominates A's and differs in at least one
/// slot, so its `sum` is strictly greater: sorting by `sum` first never puts an effect before
/// its cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(BTreeMap<Region, u64>);

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, region: &Region) -> u64 {
        self.0.get(region).copied().unwrap_or(0)
    }

    /// Setting 0 removes the slot, keeping one representation per position.
    pub fn set(&mut self, region: Region, seq: u64) {
        if seq == 0 {
            self.0.remove(&region);
        } else {
            self.0.insert(region, seq);
        }
    }

    /// Pointwise maximum: the position of a reader who has seen both.
    pub fn merge(&mut self, other: &Self) {
        for (region, &seq) in &other.0 {
            if seq > self.get(region) {
                self.0.insert(region.clone(), seq);
            }
        }
    }

    /// Saturating, so a corrupt vector sorts last instead of wrapping around to first.
    pub fn sum(&self) -> u64 {
        self.0.values().fold(0u64, |acc, &seq| acc.saturating_add(seq))
    }

    /// Every slot at least as high as `other`'s: whoever is here has seen everything `other` saw.
    pub fn dominates(&self, other: &Self) -> bool {
        other.0.iter().all(|(region, &seq)| self.get(region) >= seq)
    }

    /// Strictly before: `other` dominates `self` and they are not the same position.
    pub fn happened_before(&self, other: &Self) -> bool {
        other.dominates(self) && !self.dominates(other)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Region, u64)> {
        self.0.iter().map(|(region, &seq)| (region, seq))
    }
}

impl FromIterator<(Region, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (Region, u64)>>(iter: I) -> Self {
        let mut vector = Self::new();
        for (region, seq) in iter {
            vector.set(region, seq);
        }
        vector
    }
}
