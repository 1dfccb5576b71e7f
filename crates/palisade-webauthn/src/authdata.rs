//! Authenticator data (WebAuthn §6.1): the bytes the authenticator signs.
//!
//! ```text
//! rpIdHash (32) | flags (1) | signCount (4, big-endian)
//!   [AT: aaguid (16) | credentialIdLength (2, big-endian) | credentialId | credentialPublicKey (COSE, CBOR)]
//!   [ED: extensions (CBOR map)]
//! ```

use crate::{cbor, WebauthnError};

/// User present.
pub(crate) const FLAG_UP: u8 = 0x01;
/// User verified.
pub(crate) const FLAG_UV: u8 = 0x04;
/// Backup eligible.
pub(crate) const FLAG_BE: u8 = 0x08;
/// Backup state.
pub(crate) const FLAG_BS: u8 = 0x10;
/// Attested credential data included.
pub(crate) const FLAG_AT: u8 = 0x40;
/// Extension data included.
pub(crate) const FLAG_ED: u8 = 0x80;

/// The longest credential id WebAuthn allows.
pub(crate) const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// Parsed authenticator data, borrowing from the raw bytes.
#[derive(Debug)]
pub(crate) struct AuthenticatorData<'a> {
    pub(crate) rp_id_hash: &'a [u8; 32],
    pub(crate) flags: u8,
    pub(crate) sign_count: u32,
    pub(crate) attested: Option<AttestedCredentialData<'a>>,
}

/// The attested credential data of a registration.
#[derive(Debug)]
pub(crate) struct AttestedCredentialData<'a> {
    pub(crate) aaguid: [u8; 16],
    pub(crate) credential_id: &'a [u8],
    /// The exact CBOR bytes of the COSE key, as stored in [`crate::Credential::public_key_cose`].
    pub(crate) public_key_cose: &'a [u8],
}

fn malformed(what: &'static str) -> WebauthnError {
    WebauthnError::MalformedAuthenticatorData(what)
}

impl<'a> AuthenticatorData<'a> {
    /// Parses `data`; every byte must be accounted for.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self, WebauthnError> {
        let (rp_id_hash, rest) = data
            .split_first_chunk::<32>()
            .ok_or_else(|| malformed("shorter than 37 bytes"))?;
        let (&flags, rest) = rest
            .split_first()
            .ok_or_else(|| malformed("shorter than 37 bytes"))?;
        let (count, mut rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("shorter than 37 bytes"))?;
        let sign_count = u32::from_be_bytes(*count);

        let attested = if flags & FLAG_AT != 0 {
            let (aaguid, after) = rest
                .split_first_chunk::<16>()
                .ok_or_else(|| malformed("truncated attested credential data"))?;
            let (len, after) = after
                .split_first_chunk::<2>()
                .ok_or_else(|| malformed("truncated attested credential data"))?;
            let len = usize::from(u16::from_be_bytes(*len));
            if len == 0 || len > MAX_CREDENTIAL_ID_LEN {
                return Err(malformed("credential id length out of range"));
            }
            let (credential_id, after) = after
                .split_at_checked(len)
                .ok_or_else(|| malformed("truncated credential id"))?;
            let (_, used) = cbor::decode_prefix(after)
                .ok_or_else(|| malformed("credential public key is not CBOR"))?;
            let (public_key_cose, after) = after
                .split_at_checked(used)
                .ok_or_else(|| malformed("truncated credential public key"))?;
            rest = after;
            Some(AttestedCredentialData {
                aaguid: *aaguid,
                credential_id,
                public_key_cose,
            })
        } else {
            None
        };

        if flags & FLAG_ED != 0 {
            let (extensions, used) =
                cbor::decode_prefix(rest).ok_or_else(|| malformed("extensions are not CBOR"))?;
            if !extensions.is_map() {
                return Err(malformed("extensions are not a CBOR map"));
            }
            rest = rest
                .get(used..)
                .ok_or_else(|| malformed("truncated extensions"))?;
        }

        if !rest.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }

    pub(crate) fn user_present(&self) -> bool {
        self.flags & FLAG_UP != 0
    }

    pub(crate) fn user_verified(&self) -> bool {
        self.flags & FLAG_UV != 0
    }

    pub(crate) fn backup_eligible(&self) -> bool {
        self.flags & FLAG_BE != 0
    }

    pub(crate) fn backup_state(&self) -> bool {
        self.flags & FLAG_BS != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8) -> Vec<u8> {
        let mut data = vec![7u8; 32];
        data.push(flags);
        data.extend_from_slice(&42u32.to_be_bytes());
        data
    }

    #[test]
    fn plain_assertion_data() {
        let data = header(FLAG_UP | FLAG_UV);
        let parsed = AuthenticatorData::parse(&data).unwrap();
        assert_eq!(parsed.sign_count, 42);
        assert!(parsed.user_present() && parsed.user_verified());
        assert!(!parsed.backup_eligible() && !parsed.backup_state());
        assert!(parsed.attested.is_none());
    }

    #[test]
    fn attested_data_with_extensions_after_the_key() {
        let mut data = header(FLAG_UP | FLAG_AT | FLAG_ED);
        data.extend_from_slice(&[9u8; 16]);
        data.extend_from_slice(&3u16.to_be_bytes());
        data.extend_from_slice(b"abc");
        let key = [0xa1, 0x01, 0x02]; // {1: 2}
        data.extend_from_slice(&key);
        data.extend_from_slice(&[0xa1, 0x61, b'x', 0xf5]); // {"x": true}
        let parsed = AuthenticatorData::parse(&data).unwrap();
        let attested = parsed.attested.unwrap();
        assert_eq!(attested.aaguid, [9u8; 16]);
        assert_eq!(attested.credential_id, b"abc");
        assert_eq!(attested.public_key_cose, &key);
    }

    #[test]
    fn every_truncation_and_trailing_byte_is_refused() {
        let mut data = header(FLAG_UP | FLAG_AT);
        data.extend_from_slice(&[9u8; 16]);
        data.extend_from_slice(&3u16.to_be_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&[0xa1, 0x01, 0x02]);
        assert!(AuthenticatorData::parse(&data).is_ok());
        for len in 0..data.len() {
            assert!(AuthenticatorData::parse(&data[..len]).is_err(), "{len}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert!(AuthenticatorData::parse(&longer).is_err());
        let mut no_ext = header(FLAG_UP | FLAG_ED);
        assert!(AuthenticatorData::parse(&no_ext).is_err());
        no_ext.push(0x01); // an integer, not a map
        assert!(AuthenticatorData::parse(&no_ext).is_err());
    }

    #[test]
    fn credential_id_length_bounds() {
        for len in [0u16, 1024, u16::MAX] {
            let mut data = header(FLAG_UP | FLAG_AT);
            data.extend_from_slice(&[0u8; 16]);
            data.extend_from_slice(&len.to_be_bytes());
            data.extend(std::iter::repeat_n(1u8, usize::from(len)));
            data.extend_from_slice(&[0xa0]);
            assert!(AuthenticatorData::parse(&data).is_err(), "{len}");
        }
    }
}
