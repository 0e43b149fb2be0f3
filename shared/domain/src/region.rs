//! `Region`: the validated name of a region (a stamp) that owns one lane of every order stream.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// A region name such as `eu`. Names come from configuration, never from code, so a third
/// region needs no code change. They key the lanes of the event store and the slots of version
/// vectors, hence the narrow alphabet: safe in CQL keys, Kafka topic prefixes and JSON keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub const MAX_LEN: usize = 16;

    pub fn new(name: impl Into<String>) -> Result<Self, DomainError> {
        let value = name.into();
        let reason = if value.is_empty() {
            Some("must not be empty")
        } else if value.len() > Self::MAX_LEN {
            Some("must be at most 16 characters")
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Some("only lower-case ascii letters, digits and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(DomainError::InvalidRegion { value, reason }),
            None => Ok(Self(value)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Region {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for Region {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Region> for String {
    fn from(region: Region) -> Self {
        region.0
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
