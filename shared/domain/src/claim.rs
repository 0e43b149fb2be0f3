//! Who may place an order for an idempotency key: the verdict on the claims a request sees.
//!
//! Every request claims the key by writing a row of its own, then reads every claim of the key.
//! Reads and writes reach quorums that intersect, so of two requests claiming at once at least one
//! sees the other; whoever sees another live claim steps back. Both may step back (each answers
//! 409 and the client retries), never both go on. A finished placement needs no mark on its claim:
//! a retry finds the order in the stream before it claims anything.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// A claim older than this whose request never finished no longer blocks a retry.
pub const IN_FLIGHT_FOR: TimeDelta = TimeDelta::seconds(10);

/// One request's claim of a key, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub claimant: Uuid,
    pub fingerprint: String,
    pub started_at: DateTime<Utc>,
}

/// What the claiming request does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimVerdict {
    /// No other live claim: this request places the order.
    Proceed,
    /// Another request with the same body is placing it now: 409, retry shortly.
    InFlight,
    /// The key was used with another body: 422.
    Reused,
}

/// Judges the claims of a key read back by the request `mine` with `fingerprint`.
pub fn judge_claims(mine: Uuid, fingerprint: &str, claims: &[Claim], now: DateTime<Utc>) -> ClaimVerdict {
    let others = || claims.iter().filter(|c| c.claimant != mine);
    if others().any(|c| c.fingerprint != fingerprint) {
        return ClaimVerdict::Reused;
    }
    if others().any(|c| now - c.started_at < IN_FLIGHT_FOR) {
        return ClaimVerdict::InFlight;
    }
    ClaimVerdict::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(n: u128, fingerprint: &str, age_s: i64, now: DateTime<Utc>) -> Claim {
        Claim {
            claimant: Uuid::from_u128(n),
            fingerprint: fingerprint.into(),
            started_at: now - TimeDelta::seconds(age_s),
        }
    }

    #[test]
    fn alone_a_request_places_the_order() {
        let now = Utc::now();
        let mine = claim(1, "a", 0, now);
        assert_eq!(
            judge_claims(mine.claimant, "a", std::slice::from_ref(&mine), now),
            ClaimVerdict::Proceed
        );
        assert_eq!(judge_claims(mine.claimant, "a", &[], now), ClaimVerdict::Proceed);
    }

    #[test]
    fn another_body_under_the_same_key_is_refused_even_when_its_request_died() {
        let now = Utc::now();
        let (mine, other) = (claim(1, "a", 0, now), claim(2, "b", 3600, now));
        assert_eq!(
            judge_claims(mine.claimant, "a", &[mine, other], now),
            ClaimVerdict::Reused
        );
    }

    #[test]
    fn a_live_claim_with_the_same_body_makes_the_request_step_back() {
        let now = Utc::now();
        let (mine, other) = (claim(1, "a", 0, now), claim(2, "a", 1, now));
        assert_eq!(
            judge_claims(mine.claimant, "a", &[mine, other], now),
            ClaimVerdict::InFlight
        );
    }

    #[test]
    fn a_claim_whose_request_died_long_ago_no_longer_blocks() {
        let now = Utc::now();
        let (mine, other) = (claim(1, "a", 0, now), claim(2, "a", 11, now));
        assert_eq!(
            judge_claims(mine.claimant, "a", &[mine, other], now),
            ClaimVerdict::Proceed
        );
    }

    #[test]
    fn two_requests_that_see_each_other_both_step_back() {
        let now = Utc::now();
        let claims = [claim(1, "a", 0, now), claim(2, "a", 0, now)];
        for mine in [1, 2] {
            assert_eq!(
                judge_claims(Uuid::from_u128(mine), "a", &claims, now),
                ClaimVerdict::InFlight
            );
        }
    }
}
