//! The incident timeline: the state changes of the last hour grouped by root cause, so one kill of
//! eu's Kafka is one incident with a start, an end and a duration, not forty rows. Pure: the console
//! passes in each round's root causes, how many state changes the round made, and the time.
//!
//! A round's cause joins the open incident that already has it, else the open incident of its
//! region (a region losing Kafka and then its API is one outage), else an open incident that has
//! seen one of its leaves (a lateness that outlives the dependency that caused it), else an
//! incident of the same cause, region or leaves that closed moments ago (a flapping check, a backlog
//! that shows once the dependency is back). Otherwise it opens one.
//! An incident none of whose causes is seen in a round closes at that round.
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use orders_health::model::Color;
use serde::Serialize;

use crate::causes::RootCause;

/// A cause that comes back this soon after its incident closed reopens it.
const REOPEN_WITHIN: chrono::Duration = chrono::Duration::seconds(30);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: u64,
    pub region: String,
    /// Labels of every cause seen, in the order they appeared (`eu kafka`).
    pub causes: Vec<String>,
    pub color: Color,
    /// The first cause in one sentence, as it read when the incident opened.
    pub summary: String,
    pub start: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// State changes of the health model recorded while it was open.
    pub changes: usize,
    #[serde(skip)]
    keys: BTreeSet<String>,
    #[serde(skip)]
    leaves: BTreeSet<String>,
}

#[derive(Debug, Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: Incident,
    pub open: bool,
    /// Until the end, or until now while open.
    pub duration_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct IncidentsView {
    pub window_seconds: i64,
    /// Newest first.
    pub incidents: Vec<IncidentView>,
}

pub struct Incidents {
    window: chrono::Duration,
    max_entries: usize,
    next_id: u64,
    /// Oldest first.
    entries: VecDeque<Incident>,
}

/// Every leaf a cause covers, its effects included, as `region/service/check`.
fn leaves_of(cause: &RootCause) -> impl Iterator<Item = String> + '_ {
    let own = cause
        .leaves
        .iter()
        .map(|l| format!("{}/{}", cause.region, l.dependency));
    let effects = cause
        .effects
        .iter()
        .map(|e| format!("{}/{}", e.region, e.leaf.dependency));
    own.chain(effects)
}

impl Incidents {
    pub fn new(window: Duration, max_entries: usize) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1)),
            max_entries,
            next_id: 1,
            entries: VecDeque::new(),
        }
    }

    /// Takes one round: its root causes and how many state changes it recorded.
    pub fn observe(&mut self, causes: &[RootCause], changes: usize, at: DateTime<Utc>) {
        let mut seen: BTreeSet<u64> = BTreeSet::new();
        for cause in causes {
            let index = self.find(cause, at).unwrap_or_else(|| self.open(cause, at));
            let incident = &mut self.entries[index];
            incident.end = None;
            if incident.keys.insert(cause.key.clone()) && !incident.causes.contains(&cause.label) {
                incident.causes.push(cause.label.clone());
            }
            incident.color = incident.color.max(cause.color);
            incident.leaves.extend(leaves_of(cause));
            seen.insert(incident.id);
        }
        let mut closing = Vec::new();
        for incident in self.entries.iter_mut().filter(|i| i.end.is_none()) {
            if !seen.contains(&incident.id) {
                incident.end = Some(at);
                closing.push(incident.id);
            }
        }
        // The round's changes belong to the oldest incident it saw or closed.
        if changes > 0
            && let Some(incident) = self
                .entries
                .iter_mut()
                .find(|i| seen.contains(&i.id) || closing.contains(&i.id))
        {
            incident.changes += changes;
        }
        self.prune(at);
    }

    fn find(&self, cause: &RootCause, at: DateTime<Utc>) -> Option<usize> {
        let open = |i: &&Incident| i.end.is_none();
        let position = |predicate: &dyn Fn(&Incident) -> bool| {
            self.entries.iter().position(|i| open(&i) && predicate(i))
        };
        position(&|i| i.keys.contains(&cause.key))
            .or_else(|| position(&|i| i.region == cause.region))
            .or_else(|| position(&|i| leaves_of(cause).any(|leaf| i.leaves.contains(&leaf))))
            .or_else(|| {
                self.entries.iter().rposition(|i| {
                    let related = i.keys.contains(&cause.key)
                        || i.region == cause.region
                        || leaves_of(cause).any(|leaf| i.leaves.contains(&leaf));
                    related && i.end.is_some_and(|end| at - end <= REOPEN_WITHIN)
                })
            })
    }

    fn open(&mut self, cause: &RootCause, at: DateTime<Utc>) -> usize {
        if self.entries.len() >= self.max_entries {
            self.entries.pop_front();
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Incident {
            id,
            region: cause.region.clone(),
            causes: Vec::new(),
            color: cause.color,
            summary: cause.summary.clone(),
            start: cause.since.map_or(at, |since| since.min(at)),
            end: None,
            changes: 0,
            keys: BTreeSet::new(),
            leaves: BTreeSet::new(),
        });
        self.entries.len() - 1
    }

    pub fn view(&mut self, now: DateTime<Utc>) -> IncidentsView {
        self.prune(now);
        let incidents = self
            .entries
            .iter()
            .rev()
            .map(|incident| {
                let until = incident.end.unwrap_or(now);
                IncidentView {
                    open: incident.end.is_none(),
                    duration_seconds: (until - incident.start).num_milliseconds() as f64 / 1000.0,
                    incident: incident.clone(),
                }
            })
            .collect();
        IncidentsView {
            window_seconds: self.window.num_seconds(),
            incidents,
        }
    }

    /// Forgets incidents that ended before the window; open ones stay however old.
    fn prune(&mut self, now: DateTime<Utc>) {
        let oldest = now - self.window;
        self.entries.retain(|i| i.end.is_none_or(|end| end >= oldest));
    }
}

#[cfg(test)]
mod tests;
