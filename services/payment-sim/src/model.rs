//! What the provider's API speaks: authorization requests, authorizations and idempotency keys.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Rate;

/// Body of `POST /v1/authorizations`; also the fingerprint an idempotency key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub order_id: Uuid,
    pub amount_minor: Amount,
    pub currency: Currency,
}

impl AuthorizeRequest {
    /// Amounts ending in 13 are always declined, so tests can ask for a decline; the rest are
    /// declined with probability `decline_rate`, given a uniform draw `unit`.
    pub(crate) fn decide(&self, decline_rate: Rate, unit: f64) -> Option<DeclineReason> {
        if self.amount_minor.0 % 100 == 13 {
            Some(DeclineReason::CardDeclined)
        } else if decline_rate.hits(unit) {
            Some(DeclineReason::InsufficientFunds)
        } else {
            None
        }
    }
}

/// A positive amount in the currency's minor unit (cents for EUR).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

impl TryFrom<i64> for Amount {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value > 0 {
            Ok(Self(value))
        } else {
            Err(format!("amount_minor must be greater than 0, got {value}"))
        }
    }
}

impl From<Amount> for i64 {
    fn from(amount: Amount) -> Self {
        amount.0
    }
}

/// An ISO 4217 alphabetic code such as `EUR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(format!(
                "currency must be a three-letter ISO 4217 code in upper case such as \"EUR\", got {value:?}"
            )),
        }
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.0.iter().map(|b| char::from(*b)).collect()
    }
}

/// `auth_<uuid>`: the provider's id for one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct AuthorizationId(Uuid);

impl AuthorizationId {
    const PREFIX: &'static str = "auth_";

    pub(crate) fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl fmt::Display for AuthorizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

impl From<AuthorizationId> for String {
    fn from(id: AuthorizationId) -> Self {
        id.to_string()
    }
}

impl FromStr for AuthorizationId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let uuid = s.strip_prefix(Self::PREFIX).unwrap_or("");
        Uuid::parse_str(uuid).map(Self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Authorized,
    Declined,
    Voided,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Authorized => "authorized",
            Self::Declined => "declined",
            Self::Voided => "voided",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The deterministic decline: amounts ending in 13.
    CardDeclined,
    /// The random decline drawn from `decline_rate`.
    InsufficientFunds,
}

/// One authorization as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Authorization {
    pub id: AuthorizationId,
    pub status: Status,
    pub order_id: Uuid,
    pub amount_minor: Amount,
    pub currency: Currency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<DeclineReason>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<DateTime<Utc>>,
}

/// The `Idempotency-Key` header's value: 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    pub const MAX_CHARS: usize = 255;
}

impl FromStr for IdempotencyKey {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.chars().count() {
            0 => Err("the Idempotency-Key header is empty; it needs 1 to 255 characters".into()),
            n if n > Self::MAX_CHARS => Err(format!(
                "the Idempotency-Key header has {n} characters; at most {} are allowed",
                Self::MAX_CHARS
            )),
            _ => Ok(Self(s.into())),
        }
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount_minor: i64) -> AuthorizeRequest {
        AuthorizeRequest {
            order_id: Uuid::new_v4(),
            amount_minor: Amount::try_from(amount_minor).unwrap(),
            currency: Currency::try_from("EUR".to_owned()).unwrap(),
        }
    }

    #[test]
    fn amounts_ending_in_13_are_declined_whatever_the_rate() {
        for amount in [13, 1013, 99_913] {
            assert_eq!(
                request(amount).decide(Rate::ZERO, 0.99),
                Some(DeclineReason::CardDeclined)
            );
        }
        assert_eq!(request(1014).decide(Rate::ZERO, 0.0), None);
        assert_eq!(request(130).decide(Rate::ZERO, 0.0), None);
    }

    #[test]
    fn other_amounts_are_declined_at_the_configured_rate() {
        let half = Rate::new(0.5).unwrap();
        assert_eq!(
            request(1000).decide(half, 0.49),
            Some(DeclineReason::InsufficientFunds)
        );
        assert_eq!(request(1000).decide(half, 0.5), None);
    }

    #[test]
    fn authorization_ids_round_trip_through_their_text_form() {
        let id = AuthorizationId::generate();
        let text = id.to_string();
        assert!(text.starts_with("auth_"));
        assert_eq!(text.parse::<AuthorizationId>().unwrap(), id);
        assert!("auth_nope".parse::<AuthorizationId>().is_err());
        assert!(id.0.to_string().parse::<AuthorizationId>().is_err());
    }

    #[test]
    fn currencies_must_be_three_upper_case_letters() {
        assert!(Currency::try_from("EUR".to_owned()).is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert!(Currency::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_hold_1_to_255_characters() {
        assert!("".parse::<IdempotencyKey>().is_err());
        assert!("k".parse::<IdempotencyKey>().is_ok());
        assert!("é".repeat(255).parse::<IdempotencyKey>().is_ok());
        assert!("k".repeat(256).parse::<IdempotencyKey>().is_err());
    }
}
