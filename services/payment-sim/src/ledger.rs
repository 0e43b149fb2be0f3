//! The provider's memory: authorizations, idempotency records and counters, bounded and atomic.
//!
//! One mutex guards it all. Every operation is a short in-memory step with no await inside, so
//! holding the lock for the whole check-then-create is what makes concurrent requests with one
//! key create exactly one authorization: the first creates, the others find its record and replay.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::model::{Authorization, AuthorizationId, AuthorizeRequest, DeclineReason, IdempotencyKey, Status};

/// What a key was first used for; the same key with another request is refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Request {
    Authorize(AuthorizeRequest),
    Void(AuthorizationId),
}

#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// The request was carried out now.
    Done(Authorization),
    /// The key was seen with this request before: the first answer, unchanged.
    Replayed(Authorization),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum LedgerError {
    #[error("idempotency key {key:?} was first used for a different request")]
    KeyReused { key: IdempotencyKey },
    #[error("no authorization {id}")]
    NotFound { id: AuthorizationId },
    #[error("authorization {id} is {status} and cannot be voided")]
    NotVoidable { id: AuthorizationId, status: Status },
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub authorizations_total: u64,
    pub declined_total: u64,
    pub voided_total: u64,
    pub replays_total: u64,
    pub failures_injected_total: u64,
    /// Orders with at least one authorization held, whatever its status.
    pub distinct_orders_authorized: u64,
    /// Orders holding two or more authorizations: each one breaks the once-per-order promise.
    pub orders_with_more_than_one_authorization: Vec<Uuid>,
}

pub(crate) struct Ledger {
    inner: Mutex<Inner>,
}

struct Recorded {
    request: Request,
    response: Authorization,
}

struct Inner {
    capacity: usize,
    authorizations: HashMap<AuthorizationId, Authorization>,
    /// Authorization ids oldest first, for eviction.
    arrivals: VecDeque<AuthorizationId>,
    by_order: HashMap<Uuid, Vec<AuthorizationId>>,
    /// Kept in step with `by_order` so stats need no scan; sorted for stable output.
    orders_with_several: BTreeSet<Uuid>,
    keys: HashMap<IdempotencyKey, Recorded>,
    key_arrivals: VecDeque<IdempotencyKey>,
    stats: Stats,
}

impl Ledger {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                capacity,
                authorizations: HashMap::new(),
                arrivals: VecDeque::new(),
                by_order: HashMap::new(),
                orders_with_several: BTreeSet::new(),
                keys: HashMap::new(),
                key_arrivals: VecDeque::new(),
                stats: Stats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("ledger lock poisoned")
    }

    /// Creates an authorization, declined for `decline` if given, unless `key` was seen before.
    pub(crate) fn authorize(
        &self,
        key: IdempotencyKey,
        request: AuthorizeRequest,
        decline: Option<DeclineReason>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, LedgerError> {
        let mut inner = self.lock();
        let fingerprint = Request::Authorize(request);
        if let Some(previous) = inner.replay(&key, &fingerprint)? {
            return Ok(Outcome::Replayed(previous));
        }
        let authorization = Authorization {
            id: AuthorizationId::generate(),
            status: if decline.is_some() {
                Status::Declined
            } else {
                Status::Authorized
            },
            order_id: request.order_id,
            amount_minor: request.amount_minor,
            currency: request.currency,
            decline_reason: decline,
            created_at: now,
            voided_at: None,
        };
        inner.insert(authorization.clone());
        inner.record(key, fingerprint, authorization.clone());
        Ok(Outcome::Done(authorization))
    }

    /// Voids an authorized authorization; voiding a voided one answers it again unchanged.
    pub(crate) fn void(
        &self,
        key: IdempotencyKey,
        id: AuthorizationId,
        now: DateTime<Utc>,
    ) -> Result<Outcome, LedgerError> {
        let mut inner = self.lock();
        let request = Request::Void(id);
        if let Some(previous) = inner.replay(&key, &request)? {
            return Ok(Outcome::Replayed(previous));
        }
        let authorization = inner
            .authorizations
            .get_mut(&id)
            .ok_or(LedgerError::NotFound { id })?;
        let newly_voided = match authorization.status {
            Status::Declined => {
                return Err(LedgerError::NotVoidable {
                    id,
                    status: Status::Declined,
                });
            }
            Status::Voided => false,
            Status::Authorized => {
                authorization.status = Status::Voided;
                authorization.voided_at = Some(now);
                true
            }
        };
        let authorization = authorization.clone();
        inner.stats.voided_total += u64::from(newly_voided);
        inner.record(key, request, authorization.clone());
        Ok(Outcome::Done(authorization))
    }

    /// The authorizations held for `order_id`, oldest first.
    pub(crate) fn for_order(&self, order_id: Uuid) -> Vec<Authorization> {
        let inner = self.lock();
        let ids = inner
            .by_order
            .get(&order_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        ids.iter().map(|id| inner.authorizations[id].clone()).collect()
    }

    pub(crate) fn count_injected_failure(&self) {
        self.lock().stats.failures_injected_total += 1;
    }

    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            distinct_orders_authorized: inner.by_order.len() as u64,
            orders_with_more_than_one_authorization: inner.orders_with_several.iter().copied().collect(),
            ..inner.stats.clone()
        }
    }
}

impl Inner {
    /// The recorded answer if `key` was used for `request` before; an error if for another one.
    fn replay(
        &mut self,
        key: &IdempotencyKey,
        request: &Request,
    ) -> Result<Option<Authorization>, LedgerError> {
        let Some(recorded) = self.keys.get(key) else {
            return Ok(None);
        };
        if recorded.request != *request {
            return Err(LedgerError::KeyReused { key: key.clone() });
        }
        let response = recorded.response.clone();
        self.stats.replays_total += 1;
        Ok(Some(response))
    }

    fn record(&mut self, key: IdempotencyKey, request: Request, response: Authorization) {
        self.keys.insert(key.clone(), Recorded { request, response });
        self.key_arrivals.push_back(key);
        // Room for an authorize key and a void key per authorization held.
        while self.key_arrivals.len() > self.capacity.saturating_mul(2) {
            if let Some(oldest) = self.key_arrivals.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }

    fn insert(&mut self, authorization: Authorization) {
        let (id, order_id) = (authorization.id, authorization.order_id);
        self.stats.authorizations_total += 1;
        if authorization.status == Status::Declined {
            self.stats.declined_total += 1;
        }
        self.authorizations.insert(id, authorization);
        self.arrivals.push_back(id);
        let ids = self.by_order.entry(order_id).or_default();
        ids.push(id);
        if ids.len() > 1 {
            self.orders_with_several.insert(order_id);
        }
        while self.arrivals.len() > self.capacity {
            if let Some(oldest) = self.arrivals.pop_front() {
                self.evict(oldest);
            }
        }
    }

    fn evict(&mut self, id: AuthorizationId) {
        let Some(evicted) = self.authorizations.remove(&id) else {
            return;
        };
        let order_id = evicted.order_id;
        if let Some(ids) = self.by_order.get_mut(&order_id) {
            ids.retain(|held| *held != id);
            match ids.len() {
                0 => {
                    self.by_order.remove(&order_id);
                    self.orders_with_several.remove(&order_id);
                }
                1 => {
                    self.orders_with_several.remove(&order_id);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Amount, Currency};

    fn request(order_id: Uuid, amount_minor: i64) -> AuthorizeRequest {
        AuthorizeRequest {
            order_id,
            amount_minor: Amount::try_from(amount_minor).unwrap(),
            currency: Currency::try_from("EUR".to_owned()).unwrap(),
        }
    }

    fn key(text: &str) -> IdempotencyKey {
        text.parse().unwrap()
    }

    fn authorized(outcome: Outcome) -> Authorization {
        match outcome {
            Outcome::Done(authorization) => authorization,
            Outcome::Replayed(_) => panic!("expected a fresh authorization"),
        }
    }

    #[test]
    fn the_oldest_authorizations_are_forgotten_beyond_capacity() {
        let ledger = Ledger::new(2);
        let (twice, once) = (Uuid::new_v4(), Uuid::new_v4());
        let first = authorized(
            ledger
                .authorize(key("a"), request(twice, 100), None, Utc::now())
                .unwrap(),
        );
        ledger
            .authorize(key("b"), request(twice, 200), None, Utc::now())
            .unwrap();
        assert_eq!(
            ledger.stats().orders_with_more_than_one_authorization,
            vec![twice]
        );

        ledger
            .authorize(key("c"), request(once, 300), None, Utc::now())
            .unwrap();
        assert_eq!(ledger.for_order(twice).len(), 1);
        assert_eq!(ledger.for_order(once).len(), 1);
        let stats = ledger.stats();
        assert_eq!(stats.authorizations_total, 3);
        assert_eq!(stats.distinct_orders_authorized, 2);
        assert!(stats.orders_with_more_than_one_authorization.is_empty());
        let error = ledger.void(key("v"), first.id, Utc::now()).unwrap_err();
        assert_eq!(error, LedgerError::NotFound { id: first.id });
    }

    #[test]
    fn idempotency_records_are_bounded_too() {
        let ledger = Ledger::new(1);
        for k in ["a", "b", "c"] {
            ledger
                .authorize(key(k), request(Uuid::new_v4(), 100), None, Utc::now())
                .unwrap();
        }
        let inner = ledger.lock();
        assert_eq!(inner.keys.len(), 2);
        assert!(!inner.keys.contains_key(&key("a")));
    }

    #[test]
    fn a_key_replays_its_first_answer_even_after_the_authorization_changed() {
        let ledger = Ledger::new(10);
        let order = request(Uuid::new_v4(), 100);
        let first = authorized(ledger.authorize(key("a"), order, None, Utc::now()).unwrap());
        ledger.void(key("v"), first.id, Utc::now()).unwrap();

        let again = ledger.authorize(key("a"), order, None, Utc::now()).unwrap();
        assert_eq!(again, Outcome::Replayed(first));
        let error = ledger.authorize(key("v"), order, None, Utc::now()).unwrap_err();
        assert_eq!(error, LedgerError::KeyReused { key: key("v") });
    }

    #[test]
    fn voiding_twice_with_two_keys_voids_once() {
        let ledger = Ledger::new(10);
        let first = authorized(
            ledger
                .authorize(key("a"), request(Uuid::new_v4(), 100), None, Utc::now())
                .unwrap(),
        );
        let voided = authorized(ledger.void(key("v1"), first.id, Utc::now()).unwrap());
        let again = authorized(ledger.void(key("v2"), first.id, Utc::now()).unwrap());
        assert_eq!(voided, again);
        assert_eq!(voided.status, Status::Voided);
        assert_eq!(ledger.stats().voided_total, 1);
    }
}
