//! JWS compact serialization, JSON Web Keys, and signature verification (RS256, ES256).
//!
//! Only two algorithms exist here: RS256 (RSASSA-PKCS1-v1_5 with SHA-256, moduli of 2048 to
//! 8192 bits) and ES256 (ECDSA on P-256 with SHA-256). `none`, the HMAC algorithms and every
//! other name are refused before any key is looked at, and a key is used only for the
//! algorithm that its `kty` (and `crv`) allows, so a public key can never become an HMAC
//! secret. Signatures are checked by `ring`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature;
use serde_json::Value;

use crate::OidcError;

/// The longest ID token accepted, in bytes.
pub(crate) const MAX_TOKEN_LEN: usize = 64 * 1024;

/// A signature algorithm this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    /// The allow-list: exactly "RS256" and "ES256", case-sensitive (RFC 7515 names are).
    pub(crate) fn from_name(name: &str) -> Result<Alg, OidcError> {
        match name {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            _ => Err(OidcError::AlgorithmNotAllowed),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// A JWS in compact serialization, split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct CompactJws<'a> {
    pub(crate) alg: Alg,
    pub(crate) kid: Option<String>,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes that were signed.
    pub(crate) signing_input: &'a [u8],
    pub(crate) payload: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

fn b64(part: &str, what: &'static str) -> Result<Vec<u8>, OidcError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| OidcError::MalformedIdToken(what))
}

/// Splits and decodes a compact JWS and checks its header against the allow-list.
pub(crate) fn parse_compact(token: &str) -> Result<CompactJws<'_>, OidcError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(OidcError::MalformedIdToken("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::MalformedIdToken("not three dot-separated parts"));
    };
    let header: Value = serde_json::from_slice(&b64(header_b64, "header is not base64url")?)
        .map_err(|_| OidcError::MalformedIdToken("header is not JSON"))?;
    let Value::Object(header) = header else {
        return Err(OidcError::MalformedIdToken("header is not a JSON object"));
    };
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => Alg::from_name(alg)?,
        _ => return Err(OidcError::MalformedIdToken("header has no alg")),
    };
    // RFC 7515 §4.1.11: extensions the recipient does not understand must be refused.
    if header.contains_key("crit") {
        return Err(OidcError::MalformedIdToken(
            "header has critical extensions",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(OidcError::MalformedIdToken("kid is not a string")),
    };
    let payload = b64(payload_b64, "payload is not base64url")?;
    let signature = b64(signature_b64, "signature is not base64url")?;
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .as_bytes()
        .get(..signing_input_len)
        .ok_or(OidcError::MalformedIdToken("truncated"))?;
    Ok(CompactJws {
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

/// The key material of one usable JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyMaterial {
    /// An RSA public key: modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A P-256 public key as an uncompressed SEC1 point (`04 || x || y`).
    EcP256 { point: Vec<u8> },
}

/// A JWK from the provider's key set that this crate can verify with.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Jwk {
    pub(crate) kid: Option<String>,
    /// The JWK's own `alg`, if it names one.
    pub(crate) alg: Option<String>,
    pub(crate) material: KeyMaterial,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match self.material {
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::EcP256 { .. } => "EC P-256",
        };
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &kty)
            .finish()
    }
}

impl Jwk {
    /// Whether this key may verify signatures made with `alg`: the key type must be the one
    /// the algorithm is defined for, and a key that names its own `alg` must name this one.
    fn fits(&self, alg: Alg) -> bool {
        let kty_fits = matches!(
            (&self.material, alg),
            (KeyMaterial::Rsa { .. }, Alg::Rs256) | (KeyMaterial::EcP256 { .. }, Alg::Es256)
        );
        kty_fits && self.alg.as_deref().is_none_or(|a| a == alg.name())
    }

    /// Verifies `signature` over `message` with this key under `alg`.
    pub(crate) fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> Result<(), OidcError> {
        if !self.fits(alg) {
            return Err(OidcError::KeyAlgorithmMismatch);
        }
        let verified = match &self.material {
            KeyMaterial::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                sig,
            ),
            KeyMaterial::EcP256 { point } => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
        };
        verified.map_err(|_| OidcError::BadSignature)
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn b64_member(key: &serde_json::Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    match key.get(name) {
        Some(Value::String(s)) => URL_SAFE_NO_PAD.decode(s).ok(),
        _ => None,
    }
}

/// Reads one JWK; `None` for keys this crate cannot or must not use for signatures
/// (other key types and curves, `use` other than `sig`, `key_ops` without `verify`,
/// malformed members).
fn parse_jwk(key: &Value) -> Option<Jwk> {
    let key = key.as_object()?;
    if let Some(usage) = key.get("use") {
        if usage.as_str() != Some("sig") {
            return None;
        }
    }
    if let Some(ops) = key.get("key_ops") {
        let ops = ops.as_array()?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return None;
        }
    }
    let kid = match key.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    let alg = match key.get("alg") {
        None => None,
        Some(Value::String(alg)) => Some(alg.clone()),
        Some(_) => return None,
    };
    let material = match key.get("kty")?.as_str()? {
        "RSA" => {
            let n = strip_leading_zeros(b64_member(key, "n")?);
            let e = strip_leading_zeros(b64_member(key, "e")?);
            if n.is_empty() || e.is_empty() {
                return None;
            }
            KeyMaterial::Rsa { n, e }
        }
        "EC" => {
            if key.get("crv")?.as_str()? != "P-256" {
                return None;
            }
            let x = b64_member(key, "x")?;
            let y = b64_member(key, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            KeyMaterial::EcP256 { point }
        }
        _ => return None,
    };
    Some(Jwk { kid, alg, material })
}

/// Reads a JWK Set document (`{"keys": [...]}`), keeping the keys usable for signatures.
pub(crate) fn parse_jwks(document: &Value) -> Option<Vec<Jwk>> {
    let keys = document.as_object()?.get("keys")?.as_array()?;
    Some(keys.iter().filter_map(parse_jwk).collect())
}

/// The outcome of looking a token's key up in a key set.
#[derive(Debug)]
pub(crate) enum KeyLookup<'a> {
    Found(&'a Jwk),
    /// The `kid` names keys, but none of a type the token's `alg` may use.
    Mismatch,
    NotFound,
    /// No `kid` in the token and more than one key fits.
    Ambiguous,
}

/// Chooses the key for a token: by `kid` when the token names one; otherwise the only key
/// that fits the algorithm.
pub(crate) fn select_key<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: Alg) -> KeyLookup<'a> {
    match kid {
        Some(kid) => {
            let mut named = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .peekable();
            if named.peek().is_none() {
                return KeyLookup::NotFound;
            }
            match named.find(|k| k.fits(alg)) {
                Some(key) => KeyLookup::Found(key),
                None => KeyLookup::Mismatch,
            }
        }
        None => {
            let mut fitting = keys.iter().filter(|k| k.fits(alg));
            match (fitting.next(), fitting.next()) {
                (Some(key), None) => KeyLookup::Found(key),
                (Some(_), Some(_)) => KeyLookup::Ambiguous,
                (None, _) => KeyLookup::NotFound,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn enc(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn refuses_algorithms_outside_the_allow_list() {
        for alg in [
            "none", "None", "HS256", "HS512", "RS384", "PS256", "ES384", "rs256", "",
        ] {
            let token = format!("{}.{}.", enc(&json!({"alg": alg})), enc(&json!({})));
            assert!(
                matches!(parse_compact(&token), Err(OidcError::AlgorithmNotAllowed)),
                "{alg}"
            );
        }
        let token = format!("{}.{}.", enc(&json!({"typ": "JWT"})), enc(&json!({})));
        assert!(matches!(
            parse_compact(&token),
            Err(OidcError::MalformedIdToken(_))
        ));
    }

    #[test]
    fn refuses_malformed_compact_forms() {
        let h = enc(&json!({"alg": "RS256", "kid": "k"}));
        let p = enc(&json!({"sub": "x"}));
        for token in [
            String::new(),
            format!("{h}.{p}"),
            format!("{h}.{p}.AA.AA"),
            format!("{h}=.{p}.AA"),
            format!("{h}.{p}.A+/A"),
            format!("{}.{p}.AA", enc(&json!(["alg", "RS256"]))),
            format!("{}.{p}.AA", enc(&json!({"alg": "RS256", "crit": ["exp"]}))),
            format!("{}.{p}.AA", enc(&json!({"alg": "RS256", "kid": 7}))),
            "a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(
                matches!(parse_compact(&token), Err(OidcError::MalformedIdToken(_))),
                "{token:.40}"
            );
        }
        let token = format!("{h}.{p}.AAAA");
        let ok = parse_compact(&token).unwrap();
        assert_eq!(ok.alg, Alg::Rs256);
        assert_eq!(ok.kid.as_deref(), Some("k"));
        assert_eq!(ok.signing_input, format!("{h}.{p}").as_bytes());
        assert_eq!(ok.signature, vec![0, 0, 0]);
    }

    #[test]
    fn key_set_keeps_only_signature_keys_and_selects_by_kid_and_type() {
        let n = URL_SAFE_NO_PAD.encode([0u8, 0xc3, 0x01]);
        let coord = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": coord, "y": coord},
            {"kty": "EC", "kid": "e384", "crv": "P-384", "x": coord, "y": coord},
            {"kty": "RSA", "kid": "bad", "n": "!!", "e": "AQAB"},
        ]});
        let keys = parse_jwks(&jwks).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["r", "e"]);
        assert_eq!(
            keys[0].material,
            KeyMaterial::Rsa {
                n: vec![0xc3, 0x01],
                e: vec![1, 0, 1]
            }
        );
        assert!(matches!(
            select_key(&keys, Some("r"), Alg::Rs256),
            KeyLookup::Found(_)
        ));
        assert!(matches!(
            select_key(&keys, Some("r"), Alg::Es256),
            KeyLookup::Mismatch
        ));
        assert!(matches!(
            select_key(&keys, Some("e"), Alg::Rs256),
            KeyLookup::Mismatch
        ));
        assert!(matches!(
            select_key(&keys, Some("h"), Alg::Rs256),
            KeyLookup::NotFound
        ));
        assert!(matches!(
            select_key(&keys, None, Alg::Es256),
            KeyLookup::Found(_)
        ));
        let two_rsa = [keys[0].clone(), keys[0].clone()];
        assert!(matches!(
            select_key(&two_rsa, None, Alg::Rs256),
            KeyLookup::Ambiguous
        ));
        let pinned = Jwk {
            alg: Some("RS512".into()),
            ..keys[0].clone()
        };
        assert!(matches!(
            select_key(std::slice::from_ref(&pinned), Some("r"), Alg::Rs256),
            KeyLookup::Mismatch
        ));
        assert!(matches!(
            pinned.verify(Alg::Rs256, b"m", b"s"),
            Err(OidcError::KeyAlgorithmMismatch)
        ));
        assert!(parse_jwks(&json!({"nokeys": []})).is_none());
    }
}
