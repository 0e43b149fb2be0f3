//! `Money`: an amount in minor units (cents) of one ISO 4217 currency.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Integer minor units, because floating point cannot represent most decimal prices exactly.
/// The currency travels with every amount so that sums across currencies are refused rather
/// than silently wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

impl Money {
    pub fn new(amount_minor: i64, currency: impl Into<String>) -> Result<Self, DomainError> {
        let currency = currency.into();
        if !is_currency_code(&currency) {
            return Err(DomainError::InvalidCurrency { value: currency });
        }
        Ok(Self {
            amount_minor,
            currency,
        })
    }

    /// `None` on overflow: a price times a quantity must never wrap around.
    pub fn checked_mul(&self, factor: u32) -> Option<Self> {
        Some(Self {
            amount_minor: self.amount_minor.checked_mul(i64::from(factor))?,
            currency: self.currency.clone(),
        })
    }
}

/// Three upper-case ASCII letters: the shape of an ISO 4217 code. Whether the code is assigned
/// is the catalog's business, not the domain's.
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}
