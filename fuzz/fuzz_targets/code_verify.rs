//! Fuzz the two-factor code parsers: arbitrary bytes, split at NUL bytes into a TOTP code,
//! a recovery code and base32 text, must never panic in `totp::verify`, `otp::codes_equal`,
//! `otp::normalise_recovery_code`, `otp::Challenge::check` or `base32::decode`; whatever
//! parses must be canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::{base32, otp, totp};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let code = String::from_utf8_lossy(parts.next().unwrap_or(&[]));
    let recovery = String::from_utf8_lossy(parts.next().unwrap_or(&[]));
    let encoded = String::from_utf8_lossy(parts.next().unwrap_or(&[]));

    // The time and the last used step come from the input too, to reach the edges.
    let mut word = [0u8; 8];
    for (slot, byte) in word.iter_mut().zip(data.iter().rev()) {
        *slot = *byte;
    }
    let now = i64::from_le_bytes(word);
    let secret = totp::TotpSecret::from_random(*b"12345678901234567890");
    let _ = totp::verify(&secret, &code, now, None);
    let _ = totp::verify(&secret, &code, now, Some(now.wrapping_div(30)));
    if let Ok(step) = totp::verify(&secret, &code, now, None) {
        assert_eq!(
            totp::verify(&secret, &code, now, Some(step)),
            Err(totp::TotpError::Replayed)
        );
    }

    let _ = otp::codes_equal(&code, &recovery);
    let mut challenge = otp::Challenge::new(b"fuzz", "123456", 0);
    let _ = challenge.check(b"fuzz", &code, 1);

    if let Some(normal) = otp::normalise_recovery_code(&recovery) {
        assert_eq!(normal.len(), 16);
        assert_eq!(
            otp::normalise_recovery_code(&normal).as_deref(),
            Some(normal.as_str())
        );
    }

    if let Ok(bytes) = base32::decode(&encoded) {
        assert_eq!(
            base32::decode(&base32::encode(&bytes)).ok(),
            Some(bytes.clone())
        );
        let _ = totp::TotpSecret::from_bytes(&bytes);
    }
    let _ = totp::TotpSecret::from_base32(&encoded);
});
