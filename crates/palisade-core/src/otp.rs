//! One-time codes delivered out of band (email, SMS, voice) and recovery codes.
//!
//! This module owns:
//! - [`six_digit_code`]: a uniformly distributed six-digit code from caller-supplied
//!   randomness (by rejection sampling, so the caller may have to draw again).
//! - [`Challenge`]: the pure state of one sent code: stored only as an HMAC-SHA256 under a
//!   server key, valid [`CODE_TTL_MS`] (10 minutes), single use, void after
//!   [`MAX_WRONG_ATTEMPTS`] (5) wrong entries. Wrong entries should also be counted against
//!   the account with [`crate::lockout::LockState::on_failure`].
//! - [`SendBudget`]: at most [`SEND_LIMIT`] (5) codes sent per [`SEND_WINDOW_MS`] (15 minutes),
//!   as a sliding window.
//! - Recovery codes: [`RECOVERY_CODES`] (10) codes of 64 bits shown as `xxxx-xxxx-xxxx-xxxx`
//!   ([`recovery_code`]), and [`normalise_recovery_code`] for what users type back. Hash them
//!   with the password hasher (they are under 112 bits); each is single use.
//! - [`codes_equal`]: constant-time comparison of codes as users type them.
//!
//! ```
//! use palisade_core::otp::{self, Challenge, ChallengeError};
//! let key = b"server-side challenge key";
//! // Draw 4 random bytes from a CSPRNG until a code comes out (almost always the first time).
//! let code = otp::six_digit_code(123_456_789).expect("accepted");
//! assert_eq!(code.expose(), "456789");
//! let mut challenge = Challenge::new(key, code.expose(), 0);
//! assert_eq!(challenge.check(key, "000000", 1_000), Err(ChallengeError::Wrong { attempts_left: 4 }));
//! assert_eq!(challenge.check(key, "456 789", 2_000), Ok(()));
//! assert_eq!(challenge.check(key, "456789", 3_000), Err(ChallengeError::Used));
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// How long a sent code is valid: 10 minutes (NIST SP 800-63B out-of-band, ASVS 6.5.5).
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong entries after which a challenge is void.
pub const MAX_WRONG_ATTEMPTS: u32 = 5;
/// Codes that may be sent to one user per [`SEND_WINDOW_MS`].
pub const SEND_LIMIT: usize = 5;
/// The sliding window of [`SEND_LIMIT`]: 15 minutes.
pub const SEND_WINDOW_MS: i64 = 15 * 60 * 1000;
/// How many recovery codes a user gets; regenerating replaces the whole set.
pub const RECOVERY_CODES: usize = 10;

/// The largest multiple of 1,000,000 that fits in a `u32` range: randoms at or above it are
/// rejected so that every code is equally likely.
pub const SIX_DIGIT_LIMIT: u32 = 4_294_000_000;

/// A uniformly random six-digit code (`000000`–`999999`) from a uniformly random `u32`, or
/// `None` when `random` falls in the biased tail (`>= SIX_DIGIT_LIMIT`, probability about
/// 2.3·10⁻⁴): the caller then draws a fresh `u32` and calls again.
pub fn six_digit_code(random: u32) -> Option<Secret<String>> {
    (random < SIX_DIGIT_LIMIT).then(|| Secret::new(format!("{:06}", random % 1_000_000)))
}

/// The first code that [`six_digit_code`] accepts from several candidate randoms, for
/// callers that prefer to draw a few at once (two candidates fail together with
/// probability about 5·10⁻⁸; `None` means draw again).
pub fn first_six_digit_code(randoms: &[u32]) -> Option<Secret<String>> {
    randoms.iter().find_map(|r| six_digit_code(*r))
}

/// What users type, reduced to its significant characters: surrounding whitespace trimmed,
/// ASCII spaces and `-` dropped, ASCII letters lower-cased.
fn normalise(code: &str) -> Vec<u8> {
    code.trim()
        .bytes()
        .filter(|b| *b != b' ' && *b != b'-')
        .map(|b| b.to_ascii_lowercase())
        .collect()
}

/// Whether two codes are the same once normalised (surrounding whitespace trimmed, spaces
/// and `-` dropped, ASCII case ignored), compared in constant time for equal lengths. An
/// empty code never equals anything.
pub fn codes_equal(a: &str, b: &str) -> bool {
    let a = normalise(a);
    let b = normalise(b);
    !a.is_empty() && bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// The stored form of a sent code: HMAC-SHA256 under `key` of the normalised code, so the
/// database never holds the code itself.
pub fn code_hash(key: &[u8], code: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(&normalise(code));
    mac.finalize().into_bytes().into()
}

/// Why a presented out-of-band code was refused. Messages never contain the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// Not six digits once spaces and dashes are dropped. Not counted as an attempt.
    #[error("enter the 6-digit code we sent you")]
    Malformed,
    /// Wrong code; `attempts_left` more tries before the code is void.
    #[error("the code is not correct; {attempts_left} attempts left")]
    Wrong {
        /// Wrong entries still allowed.
        attempts_left: u32,
    },
    /// Too many wrong entries: the code is void, request a new one.
    #[error("too many wrong codes; request a new code")]
    Exhausted,
    /// The code is older than 10 minutes.
    #[error("the code has expired; request a new code")]
    Expired,
    /// The code was already used.
    #[error("the code has already been used; request a new code")]
    Used,
}

/// The state of one code sent by email, SMS or voice, bound to one sign-in attempt (the
/// caller keeps it with that attempt). Plain data so that the store can persist it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Challenge {
    /// [`code_hash`] of the code that was sent.
    pub code_hash: [u8; 32],
    /// When the code stops being accepted (milliseconds since the epoch).
    pub expires_at_ms: i64,
    /// Wrong entries so far.
    pub attempts: u32,
    /// Whether the code has been accepted once.
    pub used: bool,
}

impl Challenge {
    /// A challenge for `code`, sent at `now_ms`, valid for [`CODE_TTL_MS`].
    pub fn new(key: &[u8], code: &str, now_ms: i64) -> Challenge {
        Challenge {
            code_hash: code_hash(key, code),
            expires_at_ms: now_ms.saturating_add(CODE_TTL_MS),
            attempts: 0,
            used: false,
        }
    }

    /// Checks a presented code at `now_ms`, updating the state; persist it whatever the
    /// outcome.
    ///
    /// In order: a used challenge answers [`ChallengeError::Used`]; one with
    /// [`MAX_WRONG_ATTEMPTS`] wrong entries [`ChallengeError::Exhausted`]; at or after
    /// `expires_at_ms` [`ChallengeError::Expired`]; input that is not six digits
    /// [`ChallengeError::Malformed`] (not counted). A match marks the challenge used. A
    /// mismatch counts one attempt and answers [`ChallengeError::Wrong`], or
    /// [`ChallengeError::Exhausted`] on the fifth.
    pub fn check(
        &mut self,
        key: &[u8],
        presented: &str,
        now_ms: i64,
    ) -> Result<(), ChallengeError> {
        if self.used {
            return Err(ChallengeError::Used);
        }
        if self.attempts >= MAX_WRONG_ATTEMPTS {
            return Err(ChallengeError::Exhausted);
        }
        if now_ms >= self.expires_at_ms {
            return Err(ChallengeError::Expired);
        }
        let normal = normalise(presented);
        if normal.len() != 6 || !normal.iter().all(u8::is_ascii_digit) {
            return Err(ChallengeError::Malformed);
        }
        let hash = code_hash(key, presented);
        if bool::from(hash.ct_eq(&self.code_hash)) {
            self.used = true;
            return Ok(());
        }
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts >= MAX_WRONG_ATTEMPTS {
            Err(ChallengeError::Exhausted)
        } else {
            Err(ChallengeError::Wrong {
                attempts_left: MAX_WRONG_ATTEMPTS - self.attempts,
            })
        }
    }

    /// Whether the challenge can still accept a code at `now_ms`.
    pub fn is_open(&self, now_ms: i64) -> bool {
        !self.used && self.attempts < MAX_WRONG_ATTEMPTS && now_ms < self.expires_at_ms
    }
}

/// A recovery code from 8 random bytes: 16 lowercase hex digits in groups of four,
/// `xxxx-xxxx-xxxx-xxxx` (64 bits).
pub fn recovery_code(random: [u8; 8]) -> Secret<String> {
    let hex = hex::encode(random);
    let mut out = String::with_capacity(19);
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    Secret::new(out)
}

/// A typed recovery code in canonical form (16 lowercase hex digits, no dashes), to hash
/// and compare; `None` unless the input is 16 hex digits once surrounding whitespace, ASCII
/// spaces and dashes are dropped. Any case is accepted.
pub fn normalise_recovery_code(input: &str) -> Option<String> {
    let normal = normalise(input);
    if normal.len() != 16 || !normal.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    String::from_utf8(normal).ok()
}

/// Seconds to wait before another code may be sent (for `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many codes sent; try again in {0} seconds")]
pub struct RetryAfterSecs(pub i64);

/// How many codes were sent to one user recently: a sliding window of [`SEND_LIMIT`] sends
/// per [`SEND_WINDOW_MS`]. Plain data so that the store can persist it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendBudget {
    /// Times of the recent sends (milliseconds since the epoch), oldest first; at most
    /// [`SEND_LIMIT`] entries are kept.
    pub sent_ms: Vec<i64>,
}

impl SendBudget {
    /// Records a send at `now_ms` if the budget allows it; otherwise says how long to wait
    /// (at least one second). Sends recorded "in the future" (a clock that went back) keep
    /// counting until they fall out of the window.
    pub fn try_send(&mut self, now_ms: i64) -> Result<(), RetryAfterSecs> {
        let window_start = now_ms.saturating_sub(SEND_WINDOW_MS);
        self.sent_ms.retain(|t| *t > window_start);
        self.sent_ms.sort_unstable();
        if self.sent_ms.len() >= SEND_LIMIT {
            let oldest = self.sent_ms.first().copied().unwrap_or(now_ms);
            let wait_ms = oldest.saturating_add(SEND_WINDOW_MS).saturating_sub(now_ms);
            return Err(RetryAfterSecs((wait_ms.saturating_add(999) / 1000).max(1)));
        }
        self.sent_ms.push(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"challenge-key";

    #[test]
    fn six_digit_codes_are_padded_and_uniform_by_rejection() {
        assert_eq!(six_digit_code(0).unwrap().expose(), "000000");
        assert_eq!(six_digit_code(42).unwrap().expose(), "000042");
        assert_eq!(six_digit_code(999_999).unwrap().expose(), "999999");
        assert_eq!(six_digit_code(1_000_000).unwrap().expose(), "000000");
        assert_eq!(
            six_digit_code(SIX_DIGIT_LIMIT - 1).unwrap().expose(),
            "999999"
        );
        assert!(six_digit_code(SIX_DIGIT_LIMIT).is_none());
        assert!(six_digit_code(u32::MAX).is_none());
        assert_eq!(SIX_DIGIT_LIMIT % 1_000_000, 0);
        assert!(u64::from(SIX_DIGIT_LIMIT) + 1_000_000 > u64::from(u32::MAX) + 1);
        assert_eq!(
            first_six_digit_code(&[u32::MAX, SIX_DIGIT_LIMIT, 7])
                .unwrap()
                .expose(),
            "000007"
        );
        assert!(first_six_digit_code(&[u32::MAX]).is_none());
        assert!(first_six_digit_code(&[]).is_none());
    }

    #[test]
    fn codes_equal_normalises() {
        assert!(codes_equal("123456", "123456"));
        assert!(codes_equal(" 123 456 ", "123-456"));
        assert!(codes_equal("ABCD-ef01", "abcdef01"));
        assert!(!codes_equal("123456", "123457"));
        assert!(!codes_equal("123456", "1234567"));
        assert!(!codes_equal("", ""));
        assert!(!codes_equal(" - ", ""));
        assert!(!codes_equal("12345６", "123456"));
    }

    #[test]
    fn challenge_accepts_once() {
        let mut c = Challenge::new(KEY, "042042", 1_000);
        assert_ne!(c.code_hash, code_hash(b"other key", "042042"));
        assert_eq!(c.check(KEY, "042-042", 2_000), Ok(()));
        assert!(c.used);
        assert_eq!(c.check(KEY, "042042", 2_001), Err(ChallengeError::Used));
        assert!(!c.is_open(2_002));
    }

    #[test]
    fn challenge_expires_after_ten_minutes() {
        let mut c = Challenge::new(KEY, "042042", 0);
        assert!(c.is_open(CODE_TTL_MS - 1));
        assert!(!c.is_open(CODE_TTL_MS));
        assert_eq!(
            c.check(KEY, "042042", CODE_TTL_MS),
            Err(ChallengeError::Expired)
        );
        let mut c = Challenge::new(KEY, "042042", 0);
        assert_eq!(c.check(KEY, "042042", CODE_TTL_MS - 1), Ok(()));
    }

    #[test]
    fn five_wrong_entries_void_the_challenge() {
        let mut c = Challenge::new(KEY, "042042", 0);
        for left in (1..MAX_WRONG_ATTEMPTS).rev() {
            assert_eq!(
                c.check(KEY, "111111", 1),
                Err(ChallengeError::Wrong {
                    attempts_left: left
                })
            );
        }
        assert_eq!(c.check(KEY, "111111", 1), Err(ChallengeError::Exhausted));
        assert_eq!(c.attempts, MAX_WRONG_ATTEMPTS);
        // the right code no longer helps
        assert_eq!(c.check(KEY, "042042", 2), Err(ChallengeError::Exhausted));
        assert_eq!(c.attempts, MAX_WRONG_ATTEMPTS);
    }

    #[test]
    fn malformed_entries_are_not_counted() {
        let mut c = Challenge::new(KEY, "042042", 0);
        for bad in ["", "42042", "0420420", "04204a", "０４２０４２"] {
            assert_eq!(
                c.check(KEY, bad, 1),
                Err(ChallengeError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(c.attempts, 0);
        assert_eq!(c.check(KEY, "042042", 1), Ok(()));
    }

    #[test]
    fn challenge_serialises_as_plain_data() {
        let c = Challenge::new(KEY, "042042", 5);
        let json = serde_json::to_string(&c).unwrap();
        assert!(!json.contains("042042"));
        assert_eq!(serde_json::from_str::<Challenge>(&json).unwrap(), c);
    }

    #[test]
    fn error_messages_carry_no_code() {
        let mut c = Challenge::new(KEY, "987654", 0);
        let e = c.check(KEY, "123456", 1).unwrap_err().to_string();
        assert_eq!(e, "the code is not correct; 4 attempts left");
    }

    #[test]
    fn recovery_codes_format_and_normalise() {
        let code = recovery_code([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(code.expose(), "0123-4567-89ab-cdef");
        assert_eq!(
            normalise_recovery_code(code.expose()).as_deref(),
            Some("0123456789abcdef")
        );
        for ok in [
            "0123456789ABCDEF",
            " 0123-4567-89AB-cdef ",
            "0123 4567 89ab cdef",
            "01234567-89abcdef",
        ] {
            assert_eq!(
                normalise_recovery_code(ok).as_deref(),
                Some("0123456789abcdef"),
                "{ok}"
            );
        }
        for bad in [
            "",
            "0123-4567-89ab-cde",
            "0123-4567-89ab-cdef0",
            "0123-4567-89ab-cdeg",
            "0123_4567_89ab_cdef",
            "0123-4567-89ab-cdéf",
        ] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad}");
        }
        assert_eq!(recovery_code([0; 8]).expose(), "0000-0000-0000-0000");
        assert!(!format!("{code:?}").contains("0123"));
    }

    #[test]
    fn send_budget_is_a_sliding_window() {
        let mut b = SendBudget::default();
        let minute = 60_000;
        for i in 0..5 {
            assert_eq!(b.try_send(i * minute), Ok(()));
        }
        // sixth send at minute 5: the oldest (minute 0) leaves the window at minute 15
        assert_eq!(b.try_send(5 * minute), Err(RetryAfterSecs(10 * 60)));
        assert_eq!(b.try_send(15 * minute - 1), Err(RetryAfterSecs(1)));
        assert_eq!(b.sent_ms.len(), 5);
        assert_eq!(b.try_send(15 * minute), Ok(()));
        // now sends at 1,2,3,4,15: next free slot at 16 minutes
        assert_eq!(b.try_send(15 * minute + 500), Err(RetryAfterSecs(60)));
        assert_eq!(b.try_send(16 * minute), Ok(()));
        assert!(b.sent_ms.len() <= SEND_LIMIT);
        // a long pause empties the window
        for i in 0..5 {
            assert_eq!(b.try_send(100 * minute + i), Ok(()));
        }
        assert!(b.try_send(100 * minute + 10).is_err());
    }

    #[test]
    fn send_budget_survives_extreme_times() {
        let mut b = SendBudget {
            sent_ms: vec![i64::MAX; 5],
        };
        let r = b.try_send(i64::MIN);
        assert!(r.is_err());
        let mut b = SendBudget::default();
        for _ in 0..5 {
            assert!(b.try_send(i64::MAX).is_ok());
        }
        assert_eq!(b.try_send(i64::MAX), Err(RetryAfterSecs(1)));
        let mut b = SendBudget::default();
        assert!(b.try_send(i64::MIN).is_ok());
    }

    /// xorshift64: deterministic, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Random strings through every code parser in `otp`, `totp` and `base32`: nothing may
    /// panic, and whatever parses must be canonical.
    #[test]
    fn random_input_never_panics() {
        const ANY: &[&str] = &[
            "0", "1", "5", "9", "a", "F", "f", "g", "Z", "z", "2", "7", "8", "-", "-", " ", " ",
            "=", "\t", "\n", "é", "６", "\u{0}", "0123", "cdef", "GEZD", "======", "+", "x",
        ];
        const HEXISH: &[&str] = &["0", "9", "a", "F", "-", " ", "0123", "cdef", "g"];
        const DIGITISH: &[&str] = &["0", "1", "5", "9", " ", " ", "\t", "x"];
        let secret = crate::totp::TotpSecret::from_random(*b"12345678901234567890");
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut recovered = 0usize;
        let mut totp_parsed = 0usize;
        let mut decoded = 0usize;
        for _ in 0..20_000 {
            let pieces = match rng.below(3) {
                0 => ANY,
                1 => HEXISH,
                _ => DIGITISH,
            };
            let len = rng.below(24);
            let mut s = String::new();
            for _ in 0..len {
                s.push_str(pieces.get(rng.below(pieces.len())).copied().unwrap_or(""));
            }
            if let Some(n) = normalise_recovery_code(&s) {
                recovered += 1;
                assert_eq!(n.len(), 16);
                assert!(n
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                assert_eq!(normalise_recovery_code(&n).as_deref(), Some(n.as_str()));
            }
            let now = rng.next() as i64;
            let last = if rng.below(2) == 0 {
                None
            } else {
                Some(rng.next() as i64)
            };
            if crate::totp::verify(&secret, &s, now, last) != Err(crate::totp::TotpError::Malformed)
            {
                totp_parsed += 1;
            }
            if let Ok(bytes) = crate::base32::decode(&s) {
                decoded += 1;
                let again = crate::base32::encode(&bytes);
                assert_eq!(crate::base32::decode(&again).unwrap(), bytes);
            }
            let _ = codes_equal(&s, "123456");
            let mut c = Challenge::new(KEY, "123456", 0);
            let _ = c.check(KEY, &s, 1);
            assert!(c.attempts <= 1);
        }
        // the generator reaches the accepting paths too
        assert!(recovered > 0 && totp_parsed > 0 && decoded > 0);
    }
}
