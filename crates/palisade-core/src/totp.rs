//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits,
//! 30-second steps, the parameters every authenticator app honours.
//!
//! This module owns the TOTP secret ([`TotpSecret`], 160 random bits supplied by the caller),
//! code computation ([`code_at`]), verification with a ±1 step window and replay refusal
//! ([`verify`]), and the `otpauth://` enrolment URI ([`otpauth_uri`]).
//!
//! Replay protection is the caller's half of the contract: [`verify`] returns the matched
//! step, and the caller stores it atomically (`UPDATE … SET last_used_step = $step WHERE
//! last_used_step IS NULL OR last_used_step < $step`) and passes it back as
//! `last_used_step` next time. A step once used is then never accepted again (RFC 6238 §5.2).
//!
//! ```
//! use palisade_core::totp::{self, TotpError, TotpSecret};
//! let secret = TotpSecret::from_random(*b"12345678901234567890");
//! let now = 1_111_111_111; // unix seconds
//! let code = totp::code_at(&secret, totp::step_of(now) as u64, 6);
//! let step = totp::verify(&secret, &code, now, None).unwrap();
//! // The same code (the same step) is refused once it has been used.
//! assert_eq!(totp::verify(&secret, &code, now, Some(step)), Err(TotpError::Replayed));
//! ```

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::base32;
use crate::secret::Secret;

type HmacSha1 = Hmac<Sha1>;

/// Digits of a Palisade TOTP code.
pub const DIGITS: u32 = 6;
/// Length of a step in seconds.
pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of the current one.
pub const WINDOW_STEPS: i64 = 1;
/// Length of a secret Palisade generates: 160 bits (RFC 4226 §4 recommendation).
pub const SECRET_LEN: usize = 20;
/// Shortest secret accepted from elsewhere (80 bits, what older apps and exports use).
pub const MIN_SECRET_LEN: usize = 10;
/// Longest secret accepted (the SHA-1 block size; anything longer is a mistake).
pub const MAX_SECRET_LEN: usize = 64;

/// A TOTP shared secret. `Debug` prints `TotpSecret(Secret(***))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSecret(Secret<Vec<u8>>);

/// Why a TOTP secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpSecretError {
    /// Fewer than [`MIN_SECRET_LEN`] bytes.
    #[error("the TOTP secret is too short: at least 80 bits are required")]
    TooShort,
    /// More than [`MAX_SECRET_LEN`] bytes.
    #[error("the TOTP secret is too long: at most 512 bits are accepted")]
    TooLong,
    /// The base32 text is not valid base32.
    #[error("the TOTP secret is not valid base32")]
    Encoding(#[from] base32::Base32Error),
}

/// Why a presented TOTP code was refused. No variant carries the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    /// Not exactly six digits (spaces aside).
    #[error("enter the 6-digit code from your authenticator app")]
    Malformed,
    /// The code does not match the current time window.
    #[error("the code is not valid; check your device's clock and try again")]
    Invalid,
    /// The code matched a time step that has already been used.
    #[error("this code has already been used; wait for the next code")]
    Replayed,
}

impl TotpSecret {
    /// A new 160-bit secret from caller-supplied random bytes (use a CSPRNG).
    pub fn from_random(random: [u8; SECRET_LEN]) -> TotpSecret {
        TotpSecret(Secret::new(random.to_vec()))
    }

    /// An existing secret (decrypted from the store, imported), of
    /// [`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<TotpSecret, TotpSecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(TotpSecretError::TooShort);
        }
        if bytes.len() > MAX_SECRET_LEN {
            return Err(TotpSecretError::TooLong);
        }
        Ok(TotpSecret(Secret::new(bytes.to_vec())))
    }

    /// A secret typed or pasted as base32 (see [`base32::decode`] for what is accepted).
    pub fn from_base32(text: &str) -> Result<TotpSecret, TotpSecretError> {
        let bytes = Secret::new(base32::decode(text)?);
        TotpSecret::from_bytes(bytes.expose())
    }

    /// The secret as base32 without padding, for manual entry in an app.
    pub fn to_base32(&self) -> Secret<String> {
        Secret::new(base32::encode(self.0.expose()))
    }

    /// The raw secret bytes, to encrypt for storage. Keep call sites few.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

/// The step (RFC 6238 `T`) that contains `unix_secs`: `floor(unix_secs / 30)`.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// HOTP value before reduction: dynamic truncation of HMAC-SHA1(secret, counter) to 31 bits.
fn truncated(secret: &TotpSecret, counter: u64) -> u32 {
    let mut mac = HmacSha1::new_from_slice(secret.expose())
        .unwrap_or_else(|_| <HmacSha1 as Mac>::new(&Default::default()));
    mac.update(&counter.to_be_bytes());
    let digest: [u8; 20] = mac.finalize().into_bytes().into();
    let byte = |i: usize| u32::from(digest.get(i).copied().unwrap_or(0));
    let offset = (byte(19) & 0x0f) as usize;
    ((byte(offset) & 0x7f) << 24)
        | (byte(offset + 1) << 16)
        | (byte(offset + 2) << 8)
        | byte(offset + 3)
}

/// The code for `step`, zero-padded to `digits`. `digits` outside 6..=8 (what RFC 4226
/// allows and apps support) is clamped into that range; Palisade itself uses [`DIGITS`].
pub fn code_at(secret: &TotpSecret, step: u64, digits: u32) -> String {
    let digits = digits.clamp(6, 8);
    let value = truncated(secret, step) % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// Parses a presented code: ASCII spaces anywhere are dropped (apps show `123 456`), other
/// surrounding whitespace is trimmed, and what remains must be exactly six ASCII digits.
fn parse_code(code: &str) -> Option<u32> {
    let mut value: u32 = 0;
    let mut count = 0usize;
    for c in code.trim().bytes().filter(|c| *c != b' ') {
        if !c.is_ascii_digit() || count >= DIGITS as usize {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
        count += 1;
    }
    (count == DIGITS as usize).then_some(value)
}

/// Verifies a six-digit code at `now_unix_secs`, accepting the current step and one step
/// either side, and returns the matched step for the caller to store.
///
/// A step `<= last_used_step` is refused with [`TotpError::Replayed`]. All three candidate
/// steps are computed and compared in constant time, and the outcome is decided only after
/// all three, so timing does not reveal which step matched. If the code matches more than
/// one fresh step (a one-in-a-million coincidence), the latest one is returned.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    now_unix_secs: i64,
    last_used_step: Option<i64>,
) -> Result<i64, TotpError> {
    let presented = parse_code(code).ok_or(TotpError::Malformed)?;
    let current = step_of(now_unix_secs);
    let modulus = 10u32.pow(DIGITS);

    let mut fresh_match = Choice::from(0);
    let mut replayed_match = Choice::from(0);
    let mut matched_step: i64 = 0;
    for delta in -WINDOW_STEPS..=WINDOW_STEPS {
        let candidate = current.saturating_add(delta);
        // Steps before 1970 do not exist; compute anyway so every path does the same work.
        let valid = Choice::from(u8::from(candidate >= 0));
        let counter = u64::try_from(candidate).unwrap_or(0);
        let expected = truncated(secret, counter) % modulus;
        let matches = expected.ct_eq(&presented) & valid;
        let fresh = Choice::from(u8::from(last_used_step.is_none_or(|used| candidate > used)));
        let fresh_here = matches & fresh;
        matched_step = i64::conditional_select(&matched_step, &candidate, fresh_here);
        fresh_match |= fresh_here;
        replayed_match |= matches & !fresh;
    }

    if bool::from(fresh_match) {
        Ok(matched_step)
    } else if bool::from(replayed_match) {
        Err(TotpError::Replayed)
    } else {
        Err(TotpError::Invalid)
    }
}

/// Characters left as they are in the label and the `issuer` parameter: RFC 3986
/// unreserved. Everything else, `:` `@` and space included, is percent-encoded (`%20`, which
/// Google Authenticator wants, never `+`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The Key URI for enrolment (QR code or link):
/// `otpauth://totp/{issuer}:{account}?secret={base32}&issuer={issuer}&algorithm=SHA1&digits=6&period=30`.
///
/// Issuer and account are percent-encoded, so a `:` inside either cannot be mistaken for the
/// label separator. The URI contains the secret, hence the [`Secret`] wrapper.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &TotpSecret) -> Secret<String> {
    let issuer = utf8_percent_encode(issuer, COMPONENT).to_string();
    let account = utf8_percent_encode(account, COMPONENT);
    let secret = secret.to_base32();
    Secret::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        secret.expose()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../../tests/vectors/totp-rfc6238.json");

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vectors {
        secret_ascii: String,
        secret_base32: String,
        period: i64,
        algorithm: String,
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Case {
        unix_time: i64,
        code8: String,
        code6: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(VECTORS).expect("vector file is valid JSON")
    }

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_random(*b"12345678901234567890")
    }

    #[test]
    fn rfc6238_vectors_8_and_6_digits() {
        let v = vectors();
        assert_eq!(v.period, STEP_SECS);
        assert_eq!(v.algorithm, "SHA1");
        let secret = TotpSecret::from_bytes(v.secret_ascii.as_bytes()).unwrap();
        assert_eq!(secret.to_base32().expose(), &v.secret_base32);
        assert_eq!(TotpSecret::from_base32(&v.secret_base32).unwrap(), secret);
        assert_eq!(v.cases.len(), 6);
        for c in &v.cases {
            let step = step_of(c.unix_time) as u64;
            assert_eq!(code_at(&secret, step, 8), c.code8, "t={}", c.unix_time);
            assert_eq!(code_at(&secret, step, 6), c.code6, "t={}", c.unix_time);
            assert_eq!(
                verify(&secret, &c.code6, c.unix_time, None),
                Ok(step as i64)
            );
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_at(&rfc_secret(), counter as u64, 6), *code);
        }
    }

    #[test]
    fn digits_are_clamped() {
        let s = rfc_secret();
        assert_eq!(code_at(&s, 1, 0), "287082");
        assert_eq!(code_at(&s, 1, 99), "94287082");
    }

    #[test]
    fn window_is_one_step_either_side() {
        let s = rfc_secret();
        let now = 1_700_000_015;
        let step = step_of(now);
        for delta in -1..=1 {
            let code = code_at(&s, (step + delta) as u64, 6);
            assert_eq!(
                verify(&s, &code, now, None),
                Ok(step + delta),
                "delta {delta}"
            );
        }
        for delta in [-3, -2, 2, 3] {
            let code = code_at(&s, (step + delta) as u64, 6);
            assert_eq!(
                verify(&s, &code, now, None),
                Err(TotpError::Invalid),
                "delta {delta}"
            );
        }
    }

    #[test]
    fn a_used_step_is_never_accepted_again() {
        let s = rfc_secret();
        let now = 1_700_000_015;
        let step = step_of(now);
        let code = code_at(&s, step as u64, 6);
        let used = verify(&s, &code, now, None).unwrap();
        assert_eq!(verify(&s, &code, now, Some(used)), Err(TotpError::Replayed));
        // still refused in the next step, where it is inside the window
        assert_eq!(
            verify(&s, &code, now + 30, Some(used)),
            Err(TotpError::Replayed)
        );
        // an earlier step after a later one was used is refused too
        let previous = code_at(&s, (step - 1) as u64, 6);
        assert_eq!(
            verify(&s, &previous, now, Some(used)),
            Err(TotpError::Replayed)
        );
        // the next step is fine
        let next = code_at(&s, (step + 1) as u64, 6);
        assert_eq!(verify(&s, &next, now, Some(used)), Ok(step + 1));
        // a wrong code is Invalid, not Replayed
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        if wrong != previous && wrong != next {
            assert_eq!(verify(&s, &wrong, now, Some(used)), Err(TotpError::Invalid));
        }
    }

    #[test]
    fn spaces_are_tolerated_and_everything_else_is_malformed() {
        let s = rfc_secret();
        assert_eq!(verify(&s, "287082", 59, None), Ok(1));
        assert_eq!(verify(&s, " 287 082 ", 59, None), Ok(1));
        assert_eq!(verify(&s, "\t287082\n", 59, None), Ok(1));
        for bad in [
            "",
            " ",
            "28708",
            "2870822",
            "94287082",
            "28708a",
            "287-082",
            "２８７０８２",
            "+28708",
            "-28708",
            "287\t082",
            "0x1234",
        ] {
            assert_eq!(
                verify(&s, bad, 59, None),
                Err(TotpError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(verify(&s, "000000", 59, None), Err(TotpError::Invalid));
    }

    #[test]
    fn time_before_the_epoch_and_extremes_do_not_panic() {
        let s = rfc_secret();
        // step 0 is valid at t=-1 (current step -1, window reaches 0)
        assert_eq!(verify(&s, "755224", -1, None), Ok(0));
        assert_eq!(verify(&s, "755224", -31, None), Err(TotpError::Invalid));
        for t in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            assert!(verify(&s, "123456", t, Some(i64::MAX)).is_err());
            let _ = verify(&s, "123456", t, None);
        }
    }

    #[test]
    fn secret_lengths() {
        assert_eq!(
            TotpSecret::from_bytes(&[7; 9]),
            Err(TotpSecretError::TooShort)
        );
        assert!(TotpSecret::from_bytes(&[7; 10]).is_ok());
        assert!(TotpSecret::from_bytes(&[7; 64]).is_ok());
        assert_eq!(
            TotpSecret::from_bytes(&[7; 65]),
            Err(TotpSecretError::TooLong)
        );
        assert_eq!(
            TotpSecret::from_base32("GEZD GNBV 1"),
            Err(TotpSecretError::Encoding(
                base32::Base32Error::InvalidCharacter
            ))
        );
        assert_eq!(
            TotpSecret::from_base32("GEZDGNBV"),
            Err(TotpSecretError::TooShort)
        );
        let lower = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(lower, rfc_secret());
    }

    #[test]
    fn secrets_never_print() {
        let s = rfc_secret();
        let shown = format!("{s:?} {:?} {:?}", s.to_base32(), otpauth_uri("a", "b", &s));
        assert!(!shown.contains("GEZD"));
        assert!(!shown.contains("1234"));
    }

    #[test]
    fn otpauth_uri_format_and_encoding() {
        let s = rfc_secret();
        assert_eq!(
            otpauth_uri("Palisade", "alice", &s).expose(),
            "otpauth://totp/Palisade:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Palisade&algorithm=SHA1&digits=6&period=30"
        );
        let uri = otpauth_uri("ACME Monitoring: prod", "alice@example.com", &s);
        assert_eq!(
            uri.expose(),
            "otpauth://totp/ACME%20Monitoring%3A%20prod:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Monitoring%3A%20prod&algorithm=SHA1&digits=6&period=30"
        );
        let odd = otpauth_uri("a&b=c?d/#", "ü:x+y", &s);
        assert!(odd
            .expose()
            .starts_with("otpauth://totp/a%26b%3Dc%3Fd%2F%23:%C3%BC%3Ax%2By?secret="));
        assert!(odd.expose().contains("&issuer=a%26b%3Dc%3Fd%2F%23&"));
    }

    #[test]
    fn error_messages_carry_no_code() {
        for e in [
            TotpError::Malformed,
            TotpError::Invalid,
            TotpError::Replayed,
        ] {
            assert!(!e
                .to_string()
                .chars()
                .any(|c| c.is_ascii_digit() && c != '6'));
        }
    }
}
