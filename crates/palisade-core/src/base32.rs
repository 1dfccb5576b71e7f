//! RFC 4648 base32 (the upper-case `A`–`Z`, `2`–`7` alphabet), as used for TOTP secrets in
//! `otpauth://` URIs and for keys typed into authenticator apps.
//!
//! [`encode`] writes upper case without `=` padding (the Key URI format wants none).
//! [`decode`] is forgiving about presentation and strict about content: it accepts either
//! case, ignores ASCII whitespace (apps show secrets in groups of four) and `=` padding
//! anywhere, and rejects any other character and any length that no byte string encodes to
//! (1, 3 or 6 characters left over after the last full group of 8). Unused low bits in the
//! last character are ignored, as most decoders do.
//!
//! ```
//! use palisade_core::base32;
//! assert_eq!(base32::encode(b"foobar"), "MZXW6YTBOI");
//! assert_eq!(base32::decode("mzxw 6ytb oi======").unwrap(), b"foobar");
//! assert!(base32::decode("MZXW1").is_err());
//! ```

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Why a base32 text was refused. The messages never echo the input (it may be a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    /// A character outside `A`–`Z`, `a`–`z`, `2`–`7`, whitespace and `=`.
    #[error("invalid base32: only the letters A-Z and the digits 2-7 are allowed")]
    InvalidCharacter,
    /// The number of significant characters is not one that any byte string encodes to.
    #[error("invalid base32: the text has the wrong length; check that nothing was cut off")]
    InvalidLength,
}

/// Encodes bytes as upper-case base32 without padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            push_symbol(&mut out, (buffer >> bits) & 0x1f);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        push_symbol(&mut out, (buffer << (5 - bits)) & 0x1f);
    }
    out
}

fn push_symbol(out: &mut String, index: u32) {
    if let Some(&c) = ALPHABET.get(index as usize) {
        out.push(char::from(c));
    }
}

fn symbol_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'2'..=b'7' => Some(u32::from(c - b'2') + 26),
        _ => None,
    }
}

/// Decodes base32 text: case-insensitive, ignoring ASCII whitespace and `=`.
pub fn decode(text: &str) -> Result<Vec<u8>, Base32Error> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    let mut symbols: usize = 0;
    for &c in text.as_bytes() {
        if c == b'=' || c.is_ascii_whitespace() {
            continue;
        }
        let value = symbol_value(c).ok_or(Base32Error::InvalidCharacter)?;
        symbols += 1;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // 8 symbols carry 5 bytes; a partial group of 2, 4, 5 or 7 symbols carries 1 to 4
    // bytes. 1, 3 or 6 left over cannot come from an encoder.
    if matches!(symbols % 8, 1 | 3 | 6) {
        return Err(Base32Error::InvalidLength);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "MY"),
            (b"fo", "MZXQ"),
            (b"foo", "MZXW6"),
            (b"foob", "MZXW6YQ"),
            (b"fooba", "MZXW6YTB"),
            (b"foobar", "MZXW6YTBOI"),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode(raw), enc);
            assert_eq!(decode(enc).unwrap(), raw);
        }
    }

    #[test]
    fn padded_lower_case_and_spaced_input() {
        assert_eq!(decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(decode("my======").unwrap(), b"f");
        assert_eq!(decode(" mzxw 6ytb\toi\n").unwrap(), b"foobar");
        assert_eq!(
            decode("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(decode("=  =").unwrap(), b"");
    }

    #[test]
    fn rejects_bad_characters_and_lengths() {
        for bad in ["MZXW1", "MZXW0", "MZXW8", "MZ-XW", "MZXWé", "MZ_X"] {
            assert_eq!(decode(bad), Err(Base32Error::InvalidCharacter), "{bad}");
        }
        for bad in ["M", "MZX", "MZXW6Y", "MZXW6YTBO"] {
            assert_eq!(decode(bad), Err(Base32Error::InvalidLength), "{bad}");
        }
    }

    #[test]
    fn round_trips_every_length() {
        let data: Vec<u8> = (0u8..=255).collect();
        for len in 0..64 {
            let slice = data.get(len..len * 3).unwrap_or(&[]);
            let enc = encode(slice);
            assert!(!enc.contains('='));
            assert_eq!(decode(&enc).unwrap(), slice);
            assert_eq!(decode(&enc.to_lowercase()).unwrap(), slice);
        }
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        let e = decode("SECRETSECRET1").unwrap_err().to_string();
        assert!(!e.contains("SECRET"));
    }
}
