//! The format of Palisade's API token secrets.
//!
//! A Bearer token reads `pal_<43 base62 chars>_<6 base62 chars>`, an LMv1 access key reads
//! `palk_<43 base62 chars>_<6 base62 chars>` and a dashboard widget token (read-only, one
//! dashboard) reads `palw_<43 base62 chars>_<6 base62 chars>`: 256 random bits, then a CRC32 of everything
//! before the last `_`. The prefix lets secret scanners find a leaked token; the checksum
//! makes a mistyped or truncated token fail before any database lookup.
//!
//! Randomness is an input: callers pass 32 bytes from a CSPRNG.
//!
//! ```
//! use palisade_core::token::{self, TokenKind};
//! let t = token::encode(TokenKind::Bearer, &[7u8; 32]);
//! assert!(t.expose().starts_with("pal_"));
//! assert_eq!(token::check(t.expose()), Ok(TokenKind::Bearer));
//! ```

use crate::secret::Secret;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;

/// Which kind of secret a string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A Bearer token, sent as `Authorization: Bearer <token>`.
    Bearer,
    /// An LMv1 access key, used to sign requests and never sent.
    Lmv1Key,
    /// A dashboard widget token, sent as `Authorization: Bearer <token>`: read-only, one
    /// dashboard (`docs/dashboards.md`).
    Widget,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Bearer => "pal_",
            TokenKind::Lmv1Key => "palk_",
            TokenKind::Widget => "palw_",
        }
    }
}

/// Why a string is not a well-formed token. Never includes the string itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// The prefix is not a Palisade prefix.
    #[error("not a Palisade token (unknown prefix)")]
    UnknownPrefix,
    /// The length or the alphabet is wrong.
    #[error("token is malformed (wrong length or characters)")]
    Malformed,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("token checksum does not match (mistyped or truncated)")]
    Checksum,
}

/// Encodes 32 random bytes as a token of the given kind.
pub fn encode(kind: TokenKind, random: &[u8; 32]) -> Secret<String> {
    let mut out = String::with_capacity(5 + BODY_LEN + 1 + CHECK_LEN);
    out.push_str(kind.prefix());
    out.push_str(&base62_fixed(random, BODY_LEN));
    let crc = crc32fast::hash(out.as_bytes());
    out.push('_');
    out.push_str(&base62_fixed(&crc.to_be_bytes(), CHECK_LEN));
    Secret::new(out)
}

/// Checks a token's prefix, shape and checksum without any lookup.
pub fn check(token: &str) -> Result<TokenKind, TokenFormatError> {
    let kind = if token.starts_with(TokenKind::Lmv1Key.prefix()) {
        TokenKind::Lmv1Key
    } else if token.starts_with(TokenKind::Widget.prefix()) {
        TokenKind::Widget
    } else if token.starts_with(TokenKind::Bearer.prefix()) {
        TokenKind::Bearer
    } else {
        return Err(TokenFormatError::UnknownPrefix);
    };
    let expected_len = kind.prefix().len() + BODY_LEN + 1 + CHECK_LEN;
    if token.len() != expected_len {
        return Err(TokenFormatError::Malformed);
    }
    let (head, check) = token.split_at(expected_len - CHECK_LEN - 1);
    let Some(check) = check.strip_prefix('_') else {
        return Err(TokenFormatError::Malformed);
    };
    let body = head.get(kind.prefix().len()..).unwrap_or_default();
    if !body
        .bytes()
        .chain(check.bytes())
        .all(|b| b.is_ascii_alphanumeric())
    {
        return Err(TokenFormatError::Malformed);
    }
    let crc = crc32fast::hash(head.as_bytes());
    if base62_fixed(&crc.to_be_bytes(), CHECK_LEN) != check {
        return Err(TokenFormatError::Checksum);
    }
    Ok(kind)
}

/// A non-secret access id of 20 alphanumeric characters from 20 random bytes.
pub fn access_id(random: &[u8; 20]) -> String {
    random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Big-endian base62 of `bytes`, left-padded with `0` to `width` digits (or longer if needed).
fn base62_fixed(bytes: &[u8], width: usize) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits: Vec<u8> = Vec::with_capacity(width);
    while num.iter().any(|&b| b != 0) {
        let mut rem: u32 = 0;
        for byte in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            rem = acc % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_shape() {
        for seed in [[0u8; 32], [255u8; 32], [42u8; 32]] {
            for kind in [TokenKind::Bearer, TokenKind::Lmv1Key, TokenKind::Widget] {
                let t = encode(kind, &seed);
                assert_eq!(check(t.expose()), Ok(kind));
                assert_eq!(t.expose().len(), kind.prefix().len() + 50);
            }
        }
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let t = encode(TokenKind::Bearer, &[9u8; 32]).into_inner();
        for i in 4..t.len() {
            let mut b = t.clone().into_bytes();
            if b[i] == b'_' {
                continue;
            }
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(b).unwrap();
            assert!(check(&typo).is_err(), "typo at {i} not caught");
        }
        assert_eq!(check(&t[..t.len() - 1]), Err(TokenFormatError::Malformed));
        assert_eq!(check("ghp_abc"), Err(TokenFormatError::UnknownPrefix));
    }

    #[test]
    fn distinct_inputs_give_distinct_tokens() {
        let a = encode(TokenKind::Bearer, &[1u8; 32]);
        let mut other = [1u8; 32];
        other[31] = 2;
        let b = encode(TokenKind::Bearer, &other);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn access_id_is_twenty_alphanumerics() {
        let id = access_id(&[200u8; 20]);
        assert_eq!(id.len(), 20);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
