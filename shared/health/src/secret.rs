//! A secret string that never prints, and the constant-time comparison used to check it.

use std::fmt;

use serde::Deserialize;

/// Holds a credential (the operator token); `Debug` and `Display` print `[redacted]` so it
/// cannot leak through logs or config dumps.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares without an early exit, so the response time does not tell an attacker how many
    /// leading bytes of a guess were right. The length is folded into the result instead of
    /// returned early for the same reason.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = u8::from(expected.len() != candidate.len());
        for (index, byte) in expected.iter().enumerate() {
            let other = candidate.get(index).copied().unwrap_or(0);
            difference |= byte ^ other;
        }
        std::hint::black_box(difference) == 0 && !expected.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_redacted_in_debug_and_display() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn only_the_exact_token_matches() {
        let secret = Secret::new("s3cret-token");
        assert!(secret.matches(b"s3cret-token"));
        assert!(!secret.matches(b"s3cret-tokeN"));
        assert!(!secret.matches(b"s3cret-token-and-more"));
        assert!(!secret.matches(b"s3cret"));
        assert!(!secret.matches(b""));
    }

    #[test]
    fn an_empty_secret_matches_nothing_so_a_missing_token_never_opens_the_door() {
        assert!(!Secret::new("").matches(b""));
    }
}
