//! The User-based Security Model (RFC 3414, RFC 3826, RFC 7860): key
//! localization, message authentication and privacy. Pure functions, no I/O.

use std::fmt;
use std::ops::Range;

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use cfb_mode::cipher::AsyncStreamCipher;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use crate::error::{DecodeError, UsmError};
use crate::message::{decode_located, Message, ScopedPdu, ScopedPduData, V3Message};

/// The length of the string hashed by the password-to-key algorithm.
const PASSWORD_EXPANSION: usize = 1_048_576;
/// The shortest password accepted (RFC 3414 section 11.2, as net-snmp).
pub const MIN_PASSWORD_LEN: usize = 8;
/// The timeliness window in seconds (RFC 3414 section 3.2 step 7).
pub const TIME_WINDOW_SECS: u32 = 150;

/// An authentication protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// HMAC-MD5-96 (RFC 3414).
    Md5,
    /// HMAC-SHA-96 (RFC 3414).
    Sha1,
    /// HMAC-SHA-224 truncated to 128 bits (RFC 7860).
    Sha224,
    /// HMAC-SHA-256 truncated to 192 bits (RFC 7860).
    Sha256,
    /// HMAC-SHA-384 truncated to 256 bits (RFC 7860).
    Sha384,
    /// HMAC-SHA-512 truncated to 384 bits (RFC 7860).
    Sha512,
}

/// A privacy (encryption) protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    /// CBC-DES (RFC 3414). Weak: use only for old agents.
    Des,
    /// CFB128-AES-128 (RFC 3826).
    Aes128,
    /// CFB128-AES-192 with the Blumenthal key extension (net-snmp "AES-192").
    Aes192,
    /// CFB128-AES-256 with the Blumenthal key extension (net-snmp "AES-256").
    Aes256,
}

macro_rules! with_digest {
    ($proto:expr, $d:ident => $body:expr) => {
        match $proto {
            AuthProtocol::Md5 => {
                type $d = Md5;
                $body
            }
            AuthProtocol::Sha1 => {
                type $d = Sha1;
                $body
            }
            AuthProtocol::Sha224 => {
                type $d = Sha224;
                $body
            }
            AuthProtocol::Sha256 => {
                type $d = Sha256;
                $body
            }
            AuthProtocol::Sha384 => {
                type $d = Sha384;
                $body
            }
            AuthProtocol::Sha512 => {
                type $d = Sha512;
                $body
            }
        }
    };
}

impl AuthProtocol {
    /// The digest (and key) length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            AuthProtocol::Md5 => 16,
            AuthProtocol::Sha1 => 20,
            AuthProtocol::Sha224 => 28,
            AuthProtocol::Sha256 => 32,
            AuthProtocol::Sha384 => 48,
            AuthProtocol::Sha512 => 64,
        }
    }

    /// The length of msgAuthenticationParameters (the truncated HMAC).
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Md5 | AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha224 => 16,
            AuthProtocol::Sha256 => 24,
            AuthProtocol::Sha384 => 32,
            AuthProtocol::Sha512 => 48,
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        with_digest!(self, D => {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        })
    }

    /// The full HMAC of `data` under `key`.
    fn hmac(self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, UsmError> {
        with_digest!(self, D => {
            let mut m = <Hmac<D> as Mac>::new_from_slice(key).map_err(|_| UsmError::BadKeyLength)?;
            m.update(data);
            Ok(m.finalize().into_bytes().to_vec())
        })
    }

    /// The password-to-key algorithm (RFC 3414 A.2, RFC 7860 9.3): hashes
    /// 1 MiB of the repeated password. The result (Ku) is not yet localized.
    pub fn password_to_key(self, password: &[u8]) -> Result<Vec<u8>, UsmError> {
        if password.len() < MIN_PASSWORD_LEN {
            return Err(UsmError::PasswordTooShort);
        }
        Ok(with_digest!(self, D => {
            let mut d = D::new();
            let mut block = [0u8; 64];
            let mut index = 0usize;
            for _ in 0..PASSWORD_EXPANSION / block.len() {
                for b in block.iter_mut() {
                    *b = password[index % password.len()];
                    index += 1;
                }
                d.update(block);
            }
            d.finalize().to_vec()
        }))
    }

    /// Localizes a master key to an engine: `H(Ku || engineID || Ku)`.
    pub fn localize_key(self, master_key: &[u8], engine_id: &[u8]) -> Vec<u8> {
        self.hash(&[master_key, engine_id, master_key])
    }
}

impl PrivProtocol {
    /// The length of localized key material the protocol uses (for DES:
    /// 8 key bytes plus the 8-byte pre-IV).
    pub fn key_len(self) -> usize {
        match self {
            PrivProtocol::Des | PrivProtocol::Aes128 => 16,
            PrivProtocol::Aes192 => 24,
            PrivProtocol::Aes256 => 32,
        }
    }
}

/// Localizes a privacy key (with the user's authentication hash, as
/// RFC 3414 and RFC 3826 require) and extends it, when the hash is too
/// short for the cipher, by the Blumenthal method: `K || H(K)`, repeated.
pub fn localize_priv_key(
    auth: AuthProtocol,
    privacy: PrivProtocol,
    master_key: &[u8],
    engine_id: &[u8],
) -> Vec<u8> {
    let mut key = auth.localize_key(master_key, engine_id);
    while key.len() < privacy.key_len() {
        let more = auth.hash(&[&key]);
        key.extend_from_slice(&more);
    }
    key.truncate(privacy.key_len());
    key
}

/// A user's localized keys for one engine. `Debug` never shows the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalizedKeys {
    auth: AuthProtocol,
    auth_key: Vec<u8>,
    privacy: Option<(PrivProtocol, Vec<u8>)>,
}

impl fmt::Debug for LocalizedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalizedKeys")
            .field("auth", &self.auth)
            .field("privacy", &self.privacy.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

impl LocalizedKeys {
    /// Derives keys from passwords (runs the 1 MiB password-to-key hash once
    /// per password).
    pub fn from_passwords(
        auth: AuthProtocol,
        auth_password: &[u8],
        privacy: Option<(PrivProtocol, &[u8])>,
        engine_id: &[u8],
    ) -> Result<Self, UsmError> {
        let auth_master = auth.password_to_key(auth_password)?;
        let priv_master = match privacy {
            Some((p, pw)) => Some((p, auth.password_to_key(pw)?)),
            None => None,
        };
        Ok(Self::from_master_keys(
            auth,
            &auth_master,
            priv_master.as_ref().map(|(p, k)| (*p, k.as_slice())),
            engine_id,
        ))
    }

    /// Localizes master keys (Ku) to `engine_id`.
    pub fn from_master_keys(
        auth: AuthProtocol,
        auth_master: &[u8],
        privacy: Option<(PrivProtocol, &[u8])>,
        engine_id: &[u8],
    ) -> Self {
        LocalizedKeys {
            auth,
            auth_key: auth.localize_key(auth_master, engine_id),
            privacy: privacy.map(|(p, k)| (p, localize_priv_key(auth, p, k, engine_id))),
        }
    }

    /// Uses already-localized keys (e.g. from a device's configuration).
    pub fn from_localized(
        auth: AuthProtocol,
        auth_key: Vec<u8>,
        privacy: Option<(PrivProtocol, Vec<u8>)>,
    ) -> Result<Self, UsmError> {
        if auth_key.len() != auth.key_len() {
            return Err(UsmError::BadKeyLength);
        }
        if let Some((p, k)) = &privacy {
            if k.len() < p.key_len() {
                return Err(UsmError::BadKeyLength);
            }
        }
        Ok(LocalizedKeys {
            auth,
            auth_key,
            privacy,
        })
    }

    /// The authentication protocol.
    pub fn auth_protocol(&self) -> AuthProtocol {
        self.auth
    }

    /// The privacy protocol, if any.
    pub fn priv_protocol(&self) -> Option<PrivProtocol> {
        self.privacy.as_ref().map(|(p, _)| *p)
    }
}

/// Computes the truncated HMAC of a whole message whose authentication
/// parameters (at `range`) are zero, and writes it there.
pub fn sign(
    auth: AuthProtocol,
    key: &[u8],
    msg: &mut [u8],
    range: Range<usize>,
) -> Result<(), UsmError> {
    if range.len() != auth.mac_len() {
        return Err(UsmError::BadAuthParams);
    }
    let slot = msg.get_mut(range.clone()).ok_or(UsmError::BadAuthParams)?;
    slot.fill(0);
    let mac = auth.hmac(key, msg)?;
    let slot = msg.get_mut(range).ok_or(UsmError::BadAuthParams)?;
    slot.copy_from_slice(mac.get(..slot.len()).ok_or(UsmError::BadAuthParams)?);
    Ok(())
}

/// Checks the truncated HMAC of a received message (constant time).
pub fn verify(
    auth: AuthProtocol,
    key: &[u8],
    msg: &[u8],
    range: Range<usize>,
) -> Result<bool, UsmError> {
    if range.len() != auth.mac_len() {
        return Ok(false);
    }
    let received = msg.get(range.clone()).ok_or(UsmError::BadAuthParams)?;
    let mut zeroed = msg.to_vec();
    if let Some(slot) = zeroed.get_mut(range) {
        slot.fill(0);
    }
    let mac = auth.hmac(key, &zeroed)?;
    let expected = mac.get(..received.len()).ok_or(UsmError::BadAuthParams)?;
    let diff = expected
        .iter()
        .zip(received)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    Ok(diff == 0)
}

/// Encrypts a plaintext ScopedPDU. Returns the ciphertext and the
/// msgPrivacyParameters (salt). `salt` must not repeat for a key.
pub fn encrypt(
    privacy: PrivProtocol,
    key: &[u8],
    engine_boots: u32,
    engine_time: u32,
    salt: u64,
    plaintext: &[u8],
) -> Result<(Vec<u8>, [u8; 8]), UsmError> {
    match privacy {
        PrivProtocol::Des => {
            let (des_key, pre_iv) = des_key_parts(key)?;
            let mut params = [0u8; 8];
            params[..4].copy_from_slice(&engine_boots.to_be_bytes());
            params[4..].copy_from_slice(&(salt as u32).to_be_bytes());
            let iv = xor8(pre_iv, &params);
            // The padding is arbitrary (RFC 3414 8.1.1.2); like net-snmp,
            // fill it with its length.
            let padded_len = plaintext.len().div_ceil(8).max(1) * 8;
            let pad = (padded_len - plaintext.len()) as u8;
            let mut buf = vec![pad; padded_len];
            buf[..plaintext.len()].copy_from_slice(plaintext);
            let enc = cbc::Encryptor::<des::Des>::new_from_slices(des_key, &iv)
                .map_err(|_| UsmError::BadKeyLength)?;
            enc.encrypt_padded_mut::<NoPadding>(&mut buf, padded_len)
                .map_err(|_| UsmError::BadCiphertext)?;
            Ok((buf, params))
        }
        PrivProtocol::Aes128 | PrivProtocol::Aes192 | PrivProtocol::Aes256 => {
            let params = salt.to_be_bytes();
            let iv = aes_iv(engine_boots, engine_time, &params);
            let mut buf = plaintext.to_vec();
            aes_cfb(privacy, key, &iv, &mut buf, true)?;
            Ok((buf, params))
        }
    }
}

/// Decrypts an encrypted ScopedPDU (the result may carry DES padding).
pub fn decrypt(
    privacy: PrivProtocol,
    key: &[u8],
    engine_boots: u32,
    engine_time: u32,
    priv_params: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, UsmError> {
    let params: &[u8; 8] = priv_params
        .try_into()
        .map_err(|_| UsmError::BadPrivParams)?;
    if ciphertext.is_empty() {
        return Err(UsmError::BadCiphertext);
    }
    match privacy {
        PrivProtocol::Des => {
            if !ciphertext.len().is_multiple_of(8) {
                return Err(UsmError::BadCiphertext);
            }
            let (des_key, pre_iv) = des_key_parts(key)?;
            let iv = xor8(pre_iv, params);
            let mut buf = ciphertext.to_vec();
            let dec = cbc::Decryptor::<des::Des>::new_from_slices(des_key, &iv)
                .map_err(|_| UsmError::BadKeyLength)?;
            dec.decrypt_padded_mut::<NoPadding>(&mut buf)
                .map_err(|_| UsmError::BadCiphertext)?;
            Ok(buf)
        }
        PrivProtocol::Aes128 | PrivProtocol::Aes192 | PrivProtocol::Aes256 => {
            let iv = aes_iv(engine_boots, engine_time, params);
            let mut buf = ciphertext.to_vec();
            aes_cfb(privacy, key, &iv, &mut buf, false)?;
            Ok(buf)
        }
    }
}

fn des_key_parts(key: &[u8]) -> Result<(&[u8], &[u8]), UsmError> {
    match (key.get(..8), key.get(8..16)) {
        (Some(k), Some(iv)) => Ok((k, iv)),
        _ => Err(UsmError::BadKeyLength),
    }
}

fn xor8(a: &[u8], b: &[u8; 8]) -> [u8; 8] {
    let mut out = *b;
    for (o, x) in out.iter_mut().zip(a) {
        *o ^= x;
    }
    out
}

fn aes_iv(boots: u32, time: u32, salt: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    iv
}

fn aes_cfb(
    p: PrivProtocol,
    key: &[u8],
    iv: &[u8; 16],
    buf: &mut [u8],
    encrypt: bool,
) -> Result<(), UsmError> {
    let key = key.get(..p.key_len()).ok_or(UsmError::BadKeyLength)?;
    macro_rules! run {
        ($c:ty) => {{
            if encrypt {
                cfb_mode::Encryptor::<$c>::new_from_slices(key, iv)
                    .map_err(|_| UsmError::BadKeyLength)?
                    .encrypt(buf);
            } else {
                cfb_mode::Decryptor::<$c>::new_from_slices(key, iv)
                    .map_err(|_| UsmError::BadKeyLength)?
                    .decrypt(buf);
            }
        }};
    }
    match p {
        PrivProtocol::Aes128 => run!(Aes128),
        PrivProtocol::Aes192 => run!(Aes192),
        PrivProtocol::Aes256 => run!(Aes256),
        PrivProtocol::Des => return Err(UsmError::BadKeyLength),
    }
    Ok(())
}

/// Turns an outgoing v3 message with a plaintext ScopedPDU into wire bytes:
/// encrypts it when `msg.flags.privacy`, and signs it when `msg.flags.auth`.
/// The message's `auth_params` and `priv_params` are replaced.
pub fn seal(msg: &V3Message, keys: Option<&LocalizedKeys>, salt: u64) -> Result<Vec<u8>, UsmError> {
    let mut msg = msg.clone();
    if msg.flags.auth {
        let keys = keys.ok_or(UsmError::NotAuthenticated)?;
        if msg.flags.privacy {
            let (p, k) = keys.privacy.as_ref().ok_or(UsmError::BadKeyLength)?;
            if let ScopedPduData::Plaintext(s) = &msg.data {
                let (ct, params) = encrypt(
                    *p,
                    k,
                    msg.usm.engine_boots,
                    msg.usm.engine_time,
                    salt,
                    &s.encode(),
                )?;
                msg.data = ScopedPduData::Encrypted(ct);
                msg.usm.priv_params = params.to_vec();
            }
        } else {
            msg.usm.priv_params.clear();
        }
        msg.usm.auth_params = vec![0; keys.auth.mac_len()];
        let (mut bytes, range) = msg.encode_locating_auth();
        sign(keys.auth, &keys.auth_key, &mut bytes, range)?;
        Ok(bytes)
    } else {
        msg.usm.auth_params.clear();
        msg.usm.priv_params.clear();
        Ok(Message::V3(msg).encode())
    }
}

/// A received v3 message after USM processing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The message; its data is always [`ScopedPduData::Plaintext`].
    pub message: V3Message,
    /// Whether the digest was checked and found valid.
    pub authenticated: bool,
}

/// Why a received v3 message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Not an SNMPv3 message.
    #[error("not an SNMPv3 message")]
    NotV3,
    /// The message claims authentication but we hold no key.
    #[error("authenticated message but no key configured")]
    NoKey,
    /// The digest does not match.
    #[error("wrong message digest")]
    WrongDigest,
    /// The encrypted PDU could not be decrypted or decoded.
    #[error("decryption failed")]
    Decryption,
}

/// Decodes, authenticates and decrypts a received v3 message. A message
/// without the auth flag is returned with `authenticated: false`; callers
/// must only act on such messages where RFC 3414 allows it (Reports).
pub fn open(buf: &[u8], keys: Option<&LocalizedKeys>) -> Result<Opened, OpenError> {
    let (msg, range) = decode_located(buf)?;
    let Message::V3(mut msg) = msg else {
        return Err(OpenError::NotV3);
    };
    if !msg.flags.auth {
        return Ok(Opened {
            message: msg,
            authenticated: false,
        });
    }
    let keys = keys.ok_or(OpenError::NoKey)?;
    if !verify(keys.auth, &keys.auth_key, buf, range).map_err(|_| OpenError::WrongDigest)? {
        return Err(OpenError::WrongDigest);
    }
    if let ScopedPduData::Encrypted(ct) = &msg.data {
        let (p, k) = keys.privacy.as_ref().ok_or(OpenError::Decryption)?;
        let plain = decrypt(
            *p,
            k,
            msg.usm.engine_boots,
            msg.usm.engine_time,
            &msg.usm.priv_params,
            ct,
        )
        .map_err(|_| OpenError::Decryption)?;
        let scoped = ScopedPdu::decode_padded(&plain).map_err(|_| OpenError::Decryption)?;
        msg.data = ScopedPduData::Plaintext(scoped);
    }
    Ok(Opened {
        message: msg,
        authenticated: true,
    })
}

/// The receiver-side timeliness check of RFC 3414 section 3.2 step 7b for a
/// non-authoritative engine: is an authenticated message with
/// (`boots`, `time`) acceptable given our notion (`local_boots`,
/// `latest_time`) of the authoritative engine's clock?
pub fn in_time_window(boots: u32, time: u32, local_boots: u32, latest_time: u32) -> bool {
    if boots >= i32::MAX as u32 || boots < local_boots {
        return false;
    }
    !(boots == local_boots && time.saturating_add(TIME_WINDOW_SECS) < latest_time)
}
