//! A software authenticator with the browser around it, for tests (feature
//! `soft-authenticator`).
//!
//! [`SoftAuthenticator`] takes the options JSON of [`RelyingParty::registration_options`]
//! and [`RelyingParty::authentication_options`] (bare or wrapped as `{"publicKey": ...}`) and
//! answers with the JSON a browser's `credential.toJSON()` produces: a real
//! `clientDataJSON`, real CBOR authenticator data and attestation objects, real signatures
//! with keys it generates (ES256 from `p256::ecdsa::SigningKey::random(&mut OsRng)` by
//! default). Its public fields change its behaviour, and [`ClientOverrides`] makes the
//! "browser" lie, so that tests can produce every kind of bad response.
//!
//! Unlike a browser it does not check that the RP ID suits the origin: it signs whatever it
//! is asked to, like an authenticator driven by a phishing proxy would.
//!
//! ```
//! use palisade_webauthn::{soft::SoftAuthenticator, RelyingParty};
//!
//! let rp = RelyingParty {
//!     id: "localhost".into(),
//!     name: "Palisade".into(),
//!     origins: vec!["http://localhost:8080".into()],
//! };
//! let mut key = SoftAuthenticator::new();
//! let challenge = [1u8; 32];
//! let options = rp.registration_options(&challenge, b"user-1", "alice", "Alice", &[]);
//! let response = key.register("http://localhost:8080", &options).unwrap();
//! let mut credential = rp.finish_registration(&challenge, &response).unwrap();
//!
//! let challenge = [2u8; 32];
//! let options = rp.authentication_options(&challenge, std::slice::from_ref(&credential));
//! let response = key.authenticate("http://localhost:8080", &options).unwrap();
//! credential.sign_count = rp.finish_authentication(&challenge, &response, &credential).unwrap();
//! assert_eq!(credential.sign_count, 1);
//! ```
//!
//! [`RelyingParty::registration_options`]: crate::RelyingParty::registration_options
//! [`RelyingParty::authentication_options`]: crate::RelyingParty::authentication_options

use std::fmt;

use ciborium::Value as Cbor;
use rand::rngs::OsRng;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{authdata, base64url};

/// Authenticator data flag: user present.
pub const FLAG_UP: u8 = authdata::FLAG_UP;
/// Authenticator data flag: user verified.
pub const FLAG_UV: u8 = authdata::FLAG_UV;
/// Authenticator data flag: backup eligible.
pub const FLAG_BE: u8 = authdata::FLAG_BE;
/// Authenticator data flag: backup state.
pub const FLAG_BS: u8 = authdata::FLAG_BS;
/// Authenticator data flag: attested credential data included.
pub const FLAG_AT: u8 = authdata::FLAG_AT;
/// Authenticator data flag: extension data included.
pub const FLAG_ED: u8 = authdata::FLAG_ED;

/// Why the software authenticator (or its browser) refused, as a browser would reject the
/// `navigator.credentials` promise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftError {
    /// The options lack a member or have one of the wrong type (`TypeError`).
    #[error("invalid options: {0}")]
    Options(&'static str),
    /// `pubKeyCredParams` does not offer this authenticator's algorithm (`NotSupportedError`).
    #[error("no offered algorithm is supported by this authenticator")]
    NoSupportedAlgorithm,
    /// A credential in `excludeCredentials` lives on this authenticator (`InvalidStateError`).
    #[error("this authenticator is already registered")]
    Excluded,
    /// No credential on this authenticator fits the request (`NotAllowedError`).
    #[error("no credential for this request")]
    NoCredential,
    /// Key generation, signing or CBOR encoding failed.
    #[error("authenticator failure: {0}")]
    Internal(String),
}

/// The key type the authenticator creates credentials with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SoftAlgorithm {
    /// ECDSA P-256 with SHA-256 (COSE -7).
    #[default]
    Es256,
    /// Ed25519 (COSE -8).
    #[cfg(feature = "eddsa")]
    Ed25519,
    /// RSA 2048 PKCS#1 v1.5 with SHA-256 (COSE -257). Key generation is slow in debug builds.
    #[cfg(feature = "rs256")]
    Rs256,
}

impl SoftAlgorithm {
    /// The COSE algorithm identifier.
    pub fn cose_alg(self) -> i64 {
        match self {
            SoftAlgorithm::Es256 => crate::ES256,
            #[cfg(feature = "eddsa")]
            SoftAlgorithm::Ed25519 => crate::EDDSA,
            #[cfg(feature = "rs256")]
            SoftAlgorithm::Rs256 => crate::RS256,
        }
    }
}

/// The attestation statement of new credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SoftAttestation {
    /// Format `none`, what browsers send for `attestation: "none"`.
    #[default]
    None,
    /// Format `packed` self attestation: signed with the new credential's own key.
    PackedSelf,
}

/// Lies the "browser" tells, for negative tests. `None` means the truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOverrides {
    /// `clientDataJSON.type` instead of `webauthn.create` / `webauthn.get`.
    pub client_data_type: Option<String>,
    /// `clientDataJSON.challenge` instead of the options' challenge.
    pub challenge: Option<Vec<u8>>,
    /// The RP ID hashed into the authenticator data instead of the options' RP ID.
    pub rp_id: Option<String>,
    /// `clientDataJSON.crossOrigin` instead of `false`.
    pub cross_origin: Option<bool>,
}

#[derive(Clone)]
enum SoftKey {
    Es256(p256::ecdsa::SigningKey),
    #[cfg(feature = "eddsa")]
    Ed25519(ed25519_dalek::SigningKey),
    #[cfg(feature = "rs256")]
    Rs256(Box<rsa::RsaPrivateKey>),
}

fn internal(error: impl fmt::Display) -> SoftError {
    SoftError::Internal(error.to_string())
}

fn cbor_bytes(value: &Cbor) -> Result<Vec<u8>, SoftError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).map_err(internal)?;
    Ok(out)
}

fn cbor_int(value: i64) -> Cbor {
    Cbor::from(value)
}

impl SoftKey {
    fn generate(algorithm: SoftAlgorithm) -> Result<Self, SoftError> {
        Ok(match algorithm {
            SoftAlgorithm::Es256 => SoftKey::Es256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            #[cfg(feature = "eddsa")]
            SoftAlgorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                OsRng.fill_bytes(&mut seed);
                SoftKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            #[cfg(feature = "rs256")]
            SoftAlgorithm::Rs256 => SoftKey::Rs256(Box::new(
                rsa::RsaPrivateKey::new(&mut OsRng, 2048).map_err(internal)?,
            )),
        })
    }

    /// The COSE_Key of the public key, in CTAP2 canonical order.
    fn cose(&self) -> Result<Vec<u8>, SoftError> {
        let map = match self {
            SoftKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let x = point.x().ok_or_else(|| internal("point at infinity"))?;
                let y = point.y().ok_or_else(|| internal("point at infinity"))?;
                vec![
                    (cbor_int(1), cbor_int(2)),
                    (cbor_int(3), cbor_int(crate::ES256)),
                    (cbor_int(-1), cbor_int(1)),
                    (cbor_int(-2), Cbor::Bytes(x.to_vec())),
                    (cbor_int(-3), Cbor::Bytes(y.to_vec())),
                ]
            }
            #[cfg(feature = "eddsa")]
            SoftKey::Ed25519(key) => vec![
                (cbor_int(1), cbor_int(1)),
                (cbor_int(3), cbor_int(crate::EDDSA)),
                (cbor_int(-1), cbor_int(6)),
                (
                    cbor_int(-2),
                    Cbor::Bytes(key.verifying_key().to_bytes().to_vec()),
                ),
            ],
            #[cfg(feature = "rs256")]
            SoftKey::Rs256(key) => {
                use rsa::traits::PublicKeyParts;
                vec![
                    (cbor_int(1), cbor_int(3)),
                    (cbor_int(3), cbor_int(crate::RS256)),
                    (cbor_int(-1), Cbor::Bytes(key.n().to_bytes_be())),
                    (cbor_int(-2), Cbor::Bytes(key.e().to_bytes_be())),
                ]
            }
        };
        cbor_bytes(&Cbor::Map(map))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SoftError> {
        match self {
            SoftKey::Es256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.try_sign(message).map_err(internal)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }
            #[cfg(feature = "eddsa")]
            SoftKey::Ed25519(key) => {
                use ed25519_dalek::Signer;
                Ok(key.try_sign(message).map_err(internal)?.to_bytes().to_vec())
            }
            #[cfg(feature = "rs256")]
            SoftKey::Rs256(key) => {
                use rsa::signature::{SignatureEncoding, Signer};
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new((**key).clone());
                Ok(signer.try_sign(message).map_err(internal)?.to_vec())
            }
        }
    }
}

#[derive(Clone)]
struct SoftCredential {
    id: Vec<u8>,
    rp_id: String,
    user_handle: Vec<u8>,
    key: SoftKey,
    counter: u32,
}

/// A software authenticator (think: a security key plus the browser talking to it).
///
/// `Clone` copies the private keys and counters: a clone is a cloned authenticator.
#[derive(Clone)]
pub struct SoftAuthenticator {
    /// The AAGUID put in attested credential data.
    pub aaguid: [u8; 16],
    /// Set the UP flag (a real authenticator always does after a touch).
    pub user_present: bool,
    /// Set the UV flag (PIN or biometrics checked).
    pub user_verified: bool,
    /// Set the BE flag (a passkey that may be synced).
    pub backup_eligible: bool,
    /// Set the BS flag (a passkey that is synced).
    pub backup_state: bool,
    /// Added to a credential's counter at each assertion; 0 for an authenticator without
    /// counters (like synced passkeys).
    pub counter_step: u32,
    /// The key type of new credentials.
    pub algorithm: SoftAlgorithm,
    /// The attestation statement of new credentials.
    pub attestation: SoftAttestation,
    /// When set, registrations carry the `credProtect` extension output with this value
    /// (ED flag and a CBOR map after the credential key), as many security keys send.
    pub cred_protect: Option<u8>,
    /// Lies the browser tells.
    pub overrides: ClientOverrides,
    credentials: Vec<SoftCredential>,
}

impl fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("aaguid", &crate::aaguid_to_string(&self.aaguid))
            .field("user_present", &self.user_present)
            .field("user_verified", &self.user_verified)
            .field("backup_eligible", &self.backup_eligible)
            .field("backup_state", &self.backup_state)
            .field("counter_step", &self.counter_step)
            .field("algorithm", &self.algorithm)
            .field("attestation", &self.attestation)
            .field("cred_protect", &self.cred_protect)
            .field("overrides", &self.overrides)
            .field("credentials", &self.credentials.len())
            .finish()
    }
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

/// The attested credential data to put in [`authenticator_data`].
#[derive(Debug, Clone, Copy)]
pub struct AttestedCredential<'a> {
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: &'a [u8],
    /// The COSE_Key bytes of the credential public key.
    pub public_key_cose: &'a [u8],
}

/// `clientDataJSON` byte for byte as Chrome writes it:
/// `{"type":...,"challenge":...,"origin":...,"crossOrigin":...}`.
pub fn client_data_json(ty: &str, challenge: &[u8], origin: &str, cross_origin: bool) -> Vec<u8> {
    format!(
        r#"{{"type":{},"challenge":"{}","origin":{},"crossOrigin":{}}}"#,
        Value::from(ty),
        base64url::encode(challenge),
        Value::from(origin),
        cross_origin
    )
    .into_bytes()
}

/// Authenticator data: SHA-256(`rp_id`), `flags`, `sign_count`, then the attested credential
/// data (the AT flag is added when given) and the extensions CBOR (the ED flag is added when
/// given).
pub fn authenticator_data(
    rp_id: &str,
    flags: u8,
    sign_count: u32,
    attested: Option<&AttestedCredential<'_>>,
    extensions: Option<&[u8]>,
) -> Vec<u8> {
    let mut flags = flags;
    if attested.is_some() {
        flags |= FLAG_AT;
    }
    if extensions.is_some() {
        flags |= FLAG_ED;
    }
    let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
    data.push(flags);
    data.extend_from_slice(&sign_count.to_be_bytes());
    if let Some(attested) = attested {
        data.extend_from_slice(&attested.aaguid);
        let len = u16::try_from(attested.credential_id.len()).unwrap_or(u16::MAX);
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(attested.credential_id);
        data.extend_from_slice(attested.public_key_cose);
    }
    if let Some(extensions) = extensions {
        data.extend_from_slice(extensions);
    }
    data
}

/// An attestation object `{"fmt": fmt, "attStmt": {}, "authData": auth_data}`.
pub fn attestation_object_none(fmt: &str, auth_data: &[u8]) -> Result<Vec<u8>, SoftError> {
    attestation_object(fmt, Cbor::Map(Vec::new()), auth_data)
}

fn attestation_object(fmt: &str, att_stmt: Cbor, auth_data: &[u8]) -> Result<Vec<u8>, SoftError> {
    cbor_bytes(&Cbor::Map(vec![
        (Cbor::from("fmt"), Cbor::from(fmt)),
        (Cbor::from("attStmt"), att_stmt),
        (Cbor::from("authData"), Cbor::Bytes(auth_data.to_vec())),
    ]))
}

/// The host of an origin such as `https://host:port`.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    authority.split(':').next()
}

fn b64_member(object: &Value, name: &'static str) -> Result<Vec<u8>, SoftError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .and_then(base64url::decode)
        .ok_or(SoftError::Options(name))
}

fn descriptor_ids(options: &Value, name: &'static str) -> Result<Vec<Vec<u8>>, SoftError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(|d| b64_member(d, "id")).collect(),
        Some(_) => Err(SoftError::Options(name)),
    }
}

impl SoftAuthenticator {
    /// A security key with user verification, ES256, a counter that counts, `none`
    /// attestation and no credentials.
    pub fn new() -> Self {
        Self {
            aaguid: *b"palisade-softkey",
            user_present: true,
            user_verified: true,
            backup_eligible: false,
            backup_state: false,
            counter_step: 1,
            algorithm: SoftAlgorithm::default(),
            attestation: SoftAttestation::default(),
            cred_protect: None,
            overrides: ClientOverrides::default(),
            credentials: Vec::new(),
        }
    }

    /// `navigator.credentials.create({publicKey: options})` on a page of `origin`: creates a
    /// credential (a discoverable one, bound to the options' RP ID, or the origin's host) and
    /// returns the registration response JSON.
    pub fn register(&mut self, origin: &str, options: &Value) -> Result<Value, SoftError> {
        let options = options.get("publicKey").unwrap_or(options);
        let challenge = b64_member(options, "challenge")?;
        let rp_id = match options.get("rp").and_then(|rp| rp.get("id")) {
            Some(id) => id.as_str().ok_or(SoftError::Options("rp.id"))?,
            None => origin_host(origin).ok_or(SoftError::Options("origin"))?,
        }
        .to_owned();
        let user_handle = b64_member(options.get("user").ok_or(SoftError::Options("user"))?, "id")?;
        let offered = options
            .get("pubKeyCredParams")
            .and_then(Value::as_array)
            .ok_or(SoftError::Options("pubKeyCredParams"))?;
        if !offered.iter().any(|p| {
            p.get("alg").and_then(Value::as_i64) == Some(self.algorithm.cose_alg())
                && p.get("type").and_then(Value::as_str) == Some("public-key")
        }) {
            return Err(SoftError::NoSupportedAlgorithm);
        }
        let excluded = descriptor_ids(options, "excludeCredentials")?;
        if self
            .credentials
            .iter()
            .any(|c| c.rp_id == rp_id && excluded.contains(&c.id))
        {
            return Err(SoftError::Excluded);
        }

        let key = SoftKey::generate(self.algorithm)?;
        let mut id = vec![0u8; 32];
        OsRng.fill_bytes(&mut id);
        let public_key_cose = key.cose()?;
        let extensions = match self.cred_protect {
            Some(level) => Some(cbor_bytes(&Cbor::Map(vec![(
                Cbor::from("credProtect"),
                Cbor::from(level),
            )]))?),
            None => None,
        };
        let credential = SoftCredential {
            id,
            rp_id,
            user_handle,
            key,
            counter: 0,
        };
        let auth_data = authenticator_data(
            self.overrides.rp_id.as_deref().unwrap_or(&credential.rp_id),
            self.flags(),
            credential.counter,
            Some(&AttestedCredential {
                aaguid: self.aaguid,
                credential_id: &credential.id,
                public_key_cose: &public_key_cose,
            }),
            extensions.as_deref(),
        );
        let client_data = self.client_data("webauthn.create", &challenge, origin);
        let attestation_object = match self.attestation {
            SoftAttestation::None => attestation_object_none("none", &auth_data)?,
            SoftAttestation::PackedSelf => {
                let mut signed = auth_data.clone();
                signed.extend_from_slice(&Sha256::digest(&client_data));
                let att_stmt = Cbor::Map(vec![
                    (Cbor::from("alg"), cbor_int(self.algorithm.cose_alg())),
                    (
                        Cbor::from("sig"),
                        Cbor::Bytes(credential.key.sign(&signed)?),
                    ),
                ]);
                attestation_object("packed", att_stmt, &auth_data)?
            }
        };
        let id = base64url::encode(&credential.id);
        self.credentials.push(credential);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "response": {
                "clientDataJSON": base64url::encode(&client_data),
                "attestationObject": base64url::encode(&attestation_object),
                "transports": ["usb"],
            },
            "clientExtensionResults": {},
        }))
    }

    /// `navigator.credentials.get({publicKey: options})` on a page of `origin`: signs with
    /// the first credential of `allowCredentials` it holds for the RP ID, or, when that list
    /// is empty, the newest one it holds for the RP ID; returns the authentication response
    /// JSON (with `userHandle`).
    pub fn authenticate(&mut self, origin: &str, options: &Value) -> Result<Value, SoftError> {
        let options = options.get("publicKey").unwrap_or(options);
        let challenge = b64_member(options, "challenge")?;
        let rp_id = match options.get("rpId") {
            Some(id) => id.as_str().ok_or(SoftError::Options("rpId"))?,
            None => origin_host(origin).ok_or(SoftError::Options("origin"))?,
        }
        .to_owned();
        let allowed = descriptor_ids(options, "allowCredentials")?;
        let flags = self.flags();
        let step = self.counter_step;
        let credential = if allowed.is_empty() {
            self.credentials.iter_mut().rev().find(|c| c.rp_id == rp_id)
        } else {
            self.credentials
                .iter_mut()
                .find(|c| c.rp_id == rp_id && allowed.contains(&c.id))
        }
        .ok_or(SoftError::NoCredential)?;
        credential.counter = credential.counter.saturating_add(step);
        let credential = credential.clone();

        let auth_data = authenticator_data(
            self.overrides.rp_id.as_deref().unwrap_or(&credential.rp_id),
            flags,
            credential.counter,
            None,
            None,
        );
        let client_data = self.client_data("webauthn.get", &challenge, origin);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = credential.key.sign(&signed)?;
        let id = base64url::encode(&credential.id);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "response": {
                "clientDataJSON": base64url::encode(&client_data),
                "authenticatorData": base64url::encode(&auth_data),
                "signature": base64url::encode(&signature),
                "userHandle": base64url::encode(&credential.user_handle),
            },
            "clientExtensionResults": {},
        }))
    }

    /// The ids of the credentials on this authenticator, oldest first.
    pub fn credential_ids(&self) -> Vec<Vec<u8>> {
        self.credentials.iter().map(|c| c.id.clone()).collect()
    }

    /// Sets the signature counter of a credential; false if there is no such credential.
    pub fn set_sign_count(&mut self, credential_id: &[u8], count: u32) -> bool {
        match self.credentials.iter_mut().find(|c| c.id == credential_id) {
            Some(credential) => {
                credential.counter = count;
                true
            }
            None => false,
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        for (on, flag) in [
            (self.user_present, FLAG_UP),
            (self.user_verified, FLAG_UV),
            (self.backup_eligible, FLAG_BE),
            (self.backup_state, FLAG_BS),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }

    fn client_data(&self, ty: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
        client_data_json(
            self.overrides.client_data_type.as_deref().unwrap_or(ty),
            self.overrides.challenge.as_deref().unwrap_or(challenge),
            origin,
            self.overrides.cross_origin.unwrap_or(false),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts() {
        assert_eq!(origin_host("http://localhost:8080"), Some("localhost"));
        assert_eq!(
            origin_host("https://palisade.example.com"),
            Some("palisade.example.com")
        );
        assert_eq!(origin_host("https://[::1]:8443/x"), Some("::1"));
        assert_eq!(origin_host("localhost"), None);
    }

    #[test]
    fn client_data_is_chrome_shaped() {
        let bytes = client_data_json("webauthn.get", &[0xff; 2], "http://localhost:8080", false);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":"webauthn.get","challenge":"__8","origin":"http://localhost:8080","crossOrigin":false}"#
        );
    }
}
