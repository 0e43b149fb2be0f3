//! Page tokens: the cursor of the last row a page showed, signed so that only tokens this
//! deployment issued are accepted.
//!
//! A token is base64url (no padding) of `version || placed_at (ms, i64 BE) || order_id || tag`, the
//! tag being HMAC-SHA256 (RFC 2104) over the version, the customer id and the cursor. The customer
//! id is signed but not carried, so a token only pages the listing it came from. Nothing the
//! client sends reaches the database before its tag checks out, and then only as typed values.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use orders_store::customers::Cursor;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const VERSION: u8 = 1;
const CURSOR_LEN: usize = 1 + 8 + 16;
const TAG_LEN: usize = 32;
/// The key is derived from the configured secret, so the secret itself (possibly the operator
/// token) never keys anything else's MAC here.
const KEY_CONTEXT: &[u8] = b"orders page tokens v1";

/// The token was not issued by this deployment for this listing, or was altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("page_token is not a token this listing issued")]
pub struct InvalidPageToken;

/// Issues and checks page tokens with one deployment-wide secret.
pub struct PageTokens {
    key: [u8; TAG_LEN],
}

impl PageTokens {
    pub fn new(secret: &[u8]) -> Self {
        PageTokens {
            key: hmac_sha256(secret, &[KEY_CONTEXT]),
        }
    }

    pub fn issue(&self, customer_id: Uuid, cursor: &Cursor) -> String {
        let mut bytes = Vec::with_capacity(CURSOR_LEN + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(&cursor.placed_at.timestamp_millis().to_be_bytes());
        bytes.extend_from_slice(cursor.order_id.as_bytes());
        let tag = self.tag(customer_id, &bytes);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor inside `token`, once its tag proves this deployment issued it for `customer_id`.
    pub fn open(&self, customer_id: Uuid, token: &str) -> Result<Cursor, InvalidPageToken> {
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidPageToken)?;
        if bytes.len() != CURSOR_LEN + TAG_LEN {
            return Err(InvalidPageToken);
        }
        let (cursor, tag) = bytes.split_at(CURSOR_LEN);
        if !constant_time_eq(&self.tag(customer_id, cursor), tag) || cursor[0] != VERSION {
            return Err(InvalidPageToken);
        }
        let millis = i64::from_be_bytes(cursor[1..9].try_into().map_err(|_| InvalidPageToken)?);
        let order_id = Uuid::from_slice(&cursor[9..]).map_err(|_| InvalidPageToken)?;
        let placed_at = DateTime::from_timestamp_millis(millis).ok_or(InvalidPageToken)?;
        Ok(Cursor { placed_at, order_id })
    }

    fn tag(&self, customer_id: Uuid, cursor: &[u8]) -> [u8; TAG_LEN] {
        hmac_sha256(&self.key, &[customer_id.as_bytes(), cursor])
    }
}

/// HMAC-SHA256 as RFC 2104 defines it, over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; TAG_LEN] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..TAG_LEN].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without an early exit, so timing does not tell how much of a forged tag was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let difference = a
        .iter()
        .zip(b)
        .fold(u8::from(a.len() != b.len()), |d, (x, y)| d | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> Cursor {
        Cursor {
            placed_at: DateTime::from_timestamp_millis(1_767_225_600_123).unwrap(),
            order_id: Uuid::now_v7(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_test_vectors() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (test case 6).
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn an_issued_token_opens_to_its_cursor() {
        let tokens = PageTokens::new(b"deployment secret");
        let (customer, cursor) = (Uuid::now_v7(), cursor());
        let token = tokens.issue(customer, &cursor);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(tokens.open(customer, &token), Ok(cursor));
    }

    #[test]
    fn a_token_with_any_byte_changed_is_refused() {
        let tokens = PageTokens::new(b"deployment secret");
        let customer = Uuid::now_v7();
        let bytes = URL_SAFE_NO_PAD.decode(tokens.issue(customer, &cursor())).unwrap();
        for index in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut tampered = bytes.clone();
                tampered[index] ^= flip;
                let token = URL_SAFE_NO_PAD.encode(&tampered);
                assert_eq!(
                    tokens.open(customer, &token),
                    Err(InvalidPageToken),
                    "byte {index}"
                );
            }
        }
        let mut truncated = bytes.clone();
        truncated.pop();
        assert_eq!(
            tokens.open(customer, &URL_SAFE_NO_PAD.encode(&truncated)),
            Err(InvalidPageToken)
        );
        let mut extended = bytes;
        extended.push(0);
        assert_eq!(
            tokens.open(customer, &URL_SAFE_NO_PAD.encode(&extended)),
            Err(InvalidPageToken)
        );
    }

    #[test]
    fn a_token_of_another_secret_or_another_customer_is_refused() {
        let (customer, cursor) = (Uuid::now_v7(), cursor());
        let token = PageTokens::new(b"another deployment").issue(customer, &cursor);
        let tokens = PageTokens::new(b"deployment secret");
        assert_eq!(tokens.open(customer, &token), Err(InvalidPageToken));
        let token = tokens.issue(customer, &cursor);
        assert_eq!(tokens.open(Uuid::now_v7(), &token), Err(InvalidPageToken));
    }

    #[test]
    fn garbage_is_refused() {
        let tokens = PageTokens::new(b"deployment secret");
        let customer = Uuid::now_v7();
        let long = "A".repeat(76);
        for garbage in [
            "",
            "abc",
            "not base64!",
            "====",
            "AAAA",
            long.as_str(),
            "\u{e9}t\u{e9}",
        ] {
            assert_eq!(
                tokens.open(customer, garbage),
                Err(InvalidPageToken),
                "{garbage:?}"
            );
        }
    }
}
