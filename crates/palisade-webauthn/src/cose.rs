//! COSE public keys (RFC 9052/9053) of credentials, and assertion signature verification.

use ciborium::Value;

use crate::{cbor, WebauthnError};

/// COSE algorithm ES256: ECDSA over P-256 with SHA-256.
pub const ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519 for WebAuthn).
pub const EDDSA: i64 = -8;
/// COSE algorithm RS256: RSASSA-PKCS1-v1_5 with SHA-256.
pub const RS256: i64 = -257;

/// The COSE algorithms this build verifies, in the order offered to authenticators.
pub fn supported_algorithms() -> Vec<i64> {
    let mut algorithms = vec![ES256];
    if cfg!(feature = "eddsa") {
        algorithms.push(EDDSA);
    }
    if cfg!(feature = "rs256") {
        algorithms.push(RS256);
    }
    algorithms
}

const LABEL_KTY: i64 = 1;
const LABEL_ALG: i64 = 3;
const LABEL_CRV: i64 = -1;
const LABEL_X: i64 = -2;
const LABEL_Y: i64 = -3;
#[cfg(feature = "rs256")]
const LABEL_N: i64 = -1;
#[cfg(feature = "rs256")]
const LABEL_E: i64 = -2;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV_P256: i64 = 1;
#[cfg(feature = "eddsa")]
const CRV_ED25519: i64 = 6;

#[cfg(feature = "rs256")]
const RSA_MIN_BITS: usize = 2048;
#[cfg(feature = "rs256")]
const RSA_MAX_BITS: usize = 4096;

/// A credential public key of a supported algorithm.
#[derive(Debug, Clone)]
pub(crate) enum CoseKey {
    Es256(p256::ecdsa::VerifyingKey),
    #[cfg(feature = "eddsa")]
    Ed25519(ed25519_dalek::VerifyingKey),
    #[cfg(feature = "rs256")]
    Rs256(rsa::RsaPublicKey),
}

fn malformed(what: &'static str) -> WebauthnError {
    WebauthnError::MalformedPublicKey(what)
}

fn int_param(
    entries: &[(Value, Value)],
    label: i64,
    what: &'static str,
) -> Result<i64, WebauthnError> {
    cbor::int_key(entries, label)
        .and_then(cbor::as_i64)
        .ok_or_else(|| malformed(what))
}

fn bytes_param<'a>(
    entries: &'a [(Value, Value)],
    label: i64,
    what: &'static str,
) -> Result<&'a [u8], WebauthnError> {
    cbor::int_key(entries, label)
        .and_then(Value::as_bytes)
        .map(Vec::as_slice)
        .ok_or_else(|| malformed(what))
}

impl CoseKey {
    /// Parses exactly one COSE_Key and checks that its key type, curve and algorithm agree.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WebauthnError> {
        let value = cbor::decode_exact(bytes).ok_or_else(|| malformed("not one CBOR item"))?;
        let entries =
            cbor::unique_map(&value).ok_or_else(|| malformed("not a CBOR map with unique keys"))?;
        let kty = int_param(entries, LABEL_KTY, "missing kty")?;
        let alg = int_param(entries, LABEL_ALG, "missing alg")?;
        match (kty, alg) {
            (KTY_EC2, ES256) => {
                if int_param(entries, LABEL_CRV, "missing crv")? != CRV_P256 {
                    return Err(malformed("ES256 key not on curve P-256"));
                }
                let x = bytes_param(entries, LABEL_X, "missing x")?;
                let y = bytes_param(entries, LABEL_Y, "missing y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(malformed("P-256 coordinates are not 32 bytes"));
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(CoseKey::Es256)
                    .map_err(|_| malformed("P-256 point not on the curve"))
            }
            #[cfg(feature = "eddsa")]
            (KTY_OKP, EDDSA) => {
                if int_param(entries, LABEL_CRV, "missing crv")? != CRV_ED25519 {
                    return Err(malformed("EdDSA key not on curve Ed25519"));
                }
                let x: &[u8; 32] = bytes_param(entries, LABEL_X, "missing x")?
                    .try_into()
                    .map_err(|_| malformed("Ed25519 key is not 32 bytes"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(x)
                    .map_err(|_| malformed("Ed25519 key is not a curve point"))?;
                if key.is_weak() {
                    return Err(malformed("Ed25519 key of small order"));
                }
                Ok(CoseKey::Ed25519(key))
            }
            #[cfg(feature = "rs256")]
            (KTY_RSA, RS256) => {
                let n = strip_leading_zeros(bytes_param(entries, LABEL_N, "missing n")?);
                let e = strip_leading_zeros(bytes_param(entries, LABEL_E, "missing e")?);
                if n.len() > RSA_MAX_BITS / 8 || e.len() > 8 {
                    return Err(malformed("RSA key too large"));
                }
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                )
                .map_err(|_| malformed("invalid RSA key"))?;
                if rsa::traits::PublicKeyParts::n(&key).bits() < RSA_MIN_BITS {
                    return Err(malformed("RSA key shorter than 2048 bits"));
                }
                Ok(CoseKey::Rs256(key))
            }
            (KTY_OKP | KTY_EC2 | KTY_RSA, alg) if !supported_algorithms().contains(&alg) => {
                Err(WebauthnError::UnsupportedAlgorithm(alg))
            }
            (KTY_OKP | KTY_EC2 | KTY_RSA, _) => Err(malformed("key type does not match alg")),
            _ => Err(malformed("unknown key type")),
        }
    }

    /// The COSE algorithm of the key.
    pub(crate) fn algorithm(&self) -> i64 {
        match self {
            CoseKey::Es256(_) => ES256,
            #[cfg(feature = "eddsa")]
            CoseKey::Ed25519(_) => EDDSA,
            #[cfg(feature = "rs256")]
            CoseKey::Rs256(_) => RS256,
        }
    }

    /// Verifies `signature` over `message` (ES256: DER-encoded ECDSA signature; EdDSA: 64
    /// bytes; RS256: PKCS#1 v1.5). High-S ECDSA signatures are accepted, as authenticators
    /// are not required to normalise them.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebauthnError> {
        let verified = match self {
            CoseKey::Es256(key) => {
                use p256::ecdsa::signature::Verifier;
                p256::ecdsa::Signature::from_der(signature)
                    .ok()
                    .is_some_and(|sig| key.verify(message, &sig).is_ok())
            }
            #[cfg(feature = "eddsa")]
            CoseKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .ok()
                .is_some_and(|sig| key.verify_strict(message, &sig).is_ok()),
            #[cfg(feature = "rs256")]
            CoseKey::Rs256(key) => {
                use rsa::signature::Verifier;
                let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone());
                rsa::pkcs1v15::Signature::try_from(signature)
                    .ok()
                    .is_some_and(|sig| key.verify(message, &sig).is_ok())
            }
        };
        if verified {
            Ok(())
        } else {
            Err(WebauthnError::InvalidSignature)
        }
    }
}

#[cfg(feature = "rs256")]
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;

    fn encode(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    fn es256_entries(key: &p256::ecdsa::VerifyingKey) -> Vec<(Value, Value)> {
        let point = key.to_encoded_point(false);
        vec![
            (Value::from(LABEL_KTY), Value::from(KTY_EC2)),
            (Value::from(LABEL_ALG), Value::from(ES256)),
            (Value::from(LABEL_CRV), Value::from(CRV_P256)),
            (
                Value::from(LABEL_X),
                Value::Bytes(point.x().unwrap().to_vec()),
            ),
            (
                Value::from(LABEL_Y),
                Value::Bytes(point.y().unwrap().to_vec()),
            ),
        ]
    }

    #[test]
    fn es256_parse_verify_and_high_s() {
        let signing = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let bytes = encode(&Value::Map(es256_entries(signing.verifying_key())));
        let key = CoseKey::parse(&bytes).unwrap();
        assert_eq!(key.algorithm(), ES256);
        let sig: p256::ecdsa::Signature = signing.sign(b"message");
        key.verify(b"message", sig.to_der().as_bytes()).unwrap();
        assert_eq!(
            key.verify(b"massage", sig.to_der().as_bytes()),
            Err(WebauthnError::InvalidSignature)
        );
        // The same signature with s replaced by n - s still verifies (authenticators may emit it).
        let (r, s) = sig.split_scalars();
        let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        key.verify(b"message", high.to_der().as_bytes()).unwrap();
        // Raw r||s is not DER.
        assert!(key.verify(b"message", &sig.to_bytes()).is_err());
    }

    #[test]
    fn es256_key_checks() {
        let signing = p256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap();
        let good = es256_entries(signing.verifying_key());

        let mut wrong_curve = good.clone();
        wrong_curve[2].1 = Value::from(2);
        let mut off_curve = good.clone();
        let mut y = off_curve[4].1.as_bytes().unwrap().clone();
        y[31] ^= 1;
        off_curve[4].1 = Value::Bytes(y);
        let mut short_x = good.clone();
        short_x[3].1 = Value::Bytes(vec![1; 31]);
        let mut kty_mismatch = good.clone();
        kty_mismatch[0].1 = Value::from(KTY_RSA);
        let mut duplicate = good.clone();
        duplicate.push((Value::from(LABEL_X), Value::Bytes(vec![0; 32])));
        let mut no_alg = good.clone();
        no_alg.remove(1);
        let mut unknown_alg = good.clone();
        unknown_alg[1].1 = Value::from(-36);

        for (entries, what) in [
            (wrong_curve, "curve"),
            (off_curve, "off curve"),
            (short_x, "short x"),
            (kty_mismatch, "kty"),
            (duplicate, "duplicate"),
            (no_alg, "no alg"),
        ] {
            assert!(
                matches!(
                    CoseKey::parse(&encode(&Value::Map(entries))),
                    Err(WebauthnError::MalformedPublicKey(_))
                ),
                "{what}"
            );
        }
        assert_eq!(
            CoseKey::parse(&encode(&Value::Map(unknown_alg))).unwrap_err(),
            WebauthnError::UnsupportedAlgorithm(-36)
        );
        let mut trailing = encode(&Value::Map(good));
        trailing.push(0);
        assert!(CoseKey::parse(&trailing).is_err());
        assert!(CoseKey::parse(&[]).is_err());
    }

    #[cfg(feature = "eddsa")]
    #[test]
    fn ed25519_parse_and_verify() {
        use ed25519_dalek::Signer as _;
        let signing = ed25519_dalek::SigningKey::from_bytes(&[0x33; 32]);
        let entries = vec![
            (Value::from(LABEL_KTY), Value::from(KTY_OKP)),
            (Value::from(LABEL_ALG), Value::from(EDDSA)),
            (Value::from(LABEL_CRV), Value::from(CRV_ED25519)),
            (
                Value::from(LABEL_X),
                Value::Bytes(signing.verifying_key().to_bytes().to_vec()),
            ),
        ];
        let key = CoseKey::parse(&encode(&Value::Map(entries.clone()))).unwrap();
        let sig = signing.sign(b"message").to_bytes();
        key.verify(b"message", &sig).unwrap();
        assert!(key.verify(b"messag", &sig).is_err());
        assert!(key.verify(b"message", &sig[..63]).is_err());
        // The identity point (small order) is refused.
        let mut weak = entries;
        let mut identity = [0u8; 32];
        identity[0] = 1;
        weak[3].1 = Value::Bytes(identity.to_vec());
        assert!(CoseKey::parse(&encode(&Value::Map(weak))).is_err());
    }

    #[cfg(feature = "rs256")]
    #[test]
    fn rsa_key_size_limits() {
        // A 1024-bit odd modulus is refused before any signature is looked at.
        let mut n = vec![0xffu8; 128];
        n[127] = 0xfb;
        let entries = vec![
            (Value::from(LABEL_KTY), Value::from(KTY_RSA)),
            (Value::from(LABEL_ALG), Value::from(RS256)),
            (Value::from(LABEL_N), Value::Bytes(n)),
            (Value::from(LABEL_E), Value::Bytes(vec![1, 0, 1])),
        ];
        assert_eq!(
            CoseKey::parse(&encode(&Value::Map(entries))).unwrap_err(),
            WebauthnError::MalformedPublicKey("RSA key shorter than 2048 bits")
        );
        let huge = vec![
            (Value::from(LABEL_KTY), Value::from(KTY_RSA)),
            (Value::from(LABEL_ALG), Value::from(RS256)),
            (Value::from(LABEL_N), Value::Bytes(vec![0xff; 1024])),
            (Value::from(LABEL_E), Value::Bytes(vec![1, 0, 1])),
        ];
        assert!(CoseKey::parse(&encode(&Value::Map(huge))).is_err());
    }
}
