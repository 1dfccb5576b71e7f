//! Passkeys and security keys (WebAuthn Level 2) as Palisade's phishing-resistant second
//! factor, in pure Rust (no OpenSSL).
//!
//! A [`RelyingParty`] builds the options for the browser and checks what the browser sends
//! back. The caller owns all state: it draws a fresh 32-byte challenge from a CSPRNG for every
//! ceremony, keeps it server-side (in the sign-in session) until the answer arrives, uses it
//! once, and stores the [`Credential`]s (they are `serde`-serialisable).
//!
//! # Registration (`navigator.credentials.create`)
//!
//! [`RelyingParty::registration_options`] offers ES256 (COSE -7) first, then EdDSA (-8) and
//! RS256 (-257) when those features are built, with `userVerification: "preferred"`,
//! `residentKey: "preferred"` and `attestation: "none"`. [`RelyingParty::finish_registration`]
//! (or [`RelyingParty::verify_registration`], which also reports flags and the attestation
//! outcome) checks, in this order:
//!
//! 1. the response is `{id, rawId, type: "public-key", response: {clientDataJSON,
//!    attestationObject}}` with base64url fields, `id` and `rawId` naming the same credential;
//! 2. `clientDataJSON` is JSON whose `type` is `webauthn.create`, whose `challenge` equals the
//!    ceremony's challenge (compared in constant time), whose `origin` is one of
//!    [`RelyingParty::origins`] (exact match), and whose `crossOrigin` is not `true`;
//! 3. the attestation object is a CBOR map of `fmt`, `attStmt` and `authData`;
//! 4. the authenticator data is well formed to its last byte; its `rpIdHash` is SHA-256 of
//!    [`RelyingParty::id`]; the user-present flag (UP) is set; backup state (BS) is not set
//!    without backup eligibility (BE); user verification (UV) is recorded, not required;
//! 5. it carries attested credential data (AT) whose credential id equals `rawId` and is at
//!    most 1023 bytes, and whose public key is a COSE key of a supported algorithm with
//!    matching key type and curve (ES256: kty 2, crv 1, 32-byte x and y on the curve);
//! 6. the attestation statement: `none` must be empty; `packed` self attestation (no
//!    certificate) is verified with the credential key over `authData || SHA-256(clientDataJSON)`;
//!    every other format (or `packed` with a certificate) is accepted **without** verifying
//!    the statement, as Palisade asks for no attestation and trusts no attestation roots:
//!    a browser is free to replace such a statement with `none`, so it proves nothing either
//!    way. [`AttestationType`] records which case applied; [`Credential::aaguid`] is therefore
//!    informational only.
//!
//! The caller must still refuse a credential id that is already registered (to anyone), and
//! must set [`Credential::user_handle`] when it used [`RelyingParty::finish_registration`]
//! (the browser does not echo it back; [`RelyingParty::verify_registration`] takes it).
//!
//! # Authentication (`navigator.credentials.get`)
//!
//! [`RelyingParty::authentication_options`] lists the user's credentials (an empty list asks
//! for a discoverable credential). The caller finds the stored credential named by the
//! response ([`response_credential_id`]) and calls [`RelyingParty::finish_authentication`]
//! (or [`RelyingParty::verify_authentication`]), which checks:
//!
//! 1. the response is `{id, rawId, type: "public-key", response: {clientDataJSON,
//!    authenticatorData, signature, userHandle?}}`, and `rawId` is the stored credential's id;
//! 2. a non-empty `userHandle` equals the stored [`Credential::user_handle`] (when that is set);
//! 3. `clientDataJSON`: type `webauthn.get`, challenge, origin and crossOrigin as above;
//! 4. authenticator data: well formed, `rpIdHash`, UP set, BS not without BE, BE unchanged
//!    since registration, UV recorded;
//! 5. the signature verifies under the stored COSE key over
//!    `authenticatorData || SHA-256(clientDataJSON)` (ES256: an ASN.1 DER ECDSA signature;
//!    high-S accepted);
//! 6. the signature counter: if both the stored and the received count are non-zero and the
//!    received one is not greater, [`WebauthnError::ClonedAuthenticator`]. A count of zero
//!    means the authenticator keeps none (synced passkeys); the returned count, which the
//!    caller stores, never decreases. (WebAuthn would also flag a received 0 after a stored
//!    non-zero count; Palisade accepts it and keeps the stored count, so a later replay
//!    of a lower non-zero count is still caught.)
//!
//! # In the browser
//!
//! The options are the JSON form of `PublicKeyCredentialCreationOptions` /
//! `PublicKeyCredentialRequestOptions`: every binary member (`challenge`, `user.id`, the `id`
//! of `excludeCredentials` / `allowCredentials` entries) is a base64url string. Browsers that
//! implement WebAuthn Level 3 take them as they are through
//! `PublicKeyCredential.parseCreationOptionsFromJSON(options)` /
//! `parseRequestOptionsFromJSON(options)`, and `credential.toJSON()` yields exactly the
//! response shape expected here. Elsewhere, convert by hand:
//!
//! ```js
//! const b64uToBuf = s => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0)).buffer;
//! const bufToB64u = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
//!
//! // Registration: options from registration_options().
//! options.challenge = b64uToBuf(options.challenge);
//! options.user.id = b64uToBuf(options.user.id);
//! options.excludeCredentials = options.excludeCredentials.map(c => ({ ...c, id: b64uToBuf(c.id) }));
//! const created = await navigator.credentials.create({ publicKey: options });
//! const registration = { id: created.id, rawId: bufToB64u(created.rawId), type: created.type,
//!   response: { clientDataJSON: bufToB64u(created.response.clientDataJSON),
//!               attestationObject: bufToB64u(created.response.attestationObject) } };
//!
//! // Authentication: options from authentication_options().
//! options.challenge = b64uToBuf(options.challenge);
//! options.allowCredentials = options.allowCredentials.map(c => ({ ...c, id: b64uToBuf(c.id) }));
//! const got = await navigator.credentials.get({ publicKey: options });
//! const assertion = { id: got.id, rawId: bufToB64u(got.rawId), type: got.type,
//!   response: { clientDataJSON: bufToB64u(got.response.clientDataJSON),
//!               authenticatorData: bufToB64u(got.response.authenticatorData),
//!               signature: bufToB64u(got.response.signature),
//!               userHandle: got.response.userHandle && bufToB64u(got.response.userHandle) } };
//! ```
//!
//! # Features
//!
//! - `eddsa` (default): Ed25519 credentials (COSE -8), via `ed25519-dalek` (strict verification).
//! - `rs256` (default): RSA PKCS#1 v1.5 SHA-256 credentials (COSE -257, 2048–4096 bits; e.g.
//!   Windows Hello), via `rsa` (verification only).
//! - `soft-authenticator`: the `soft` module, a software authenticator and browser that produce real
//!   attestation objects and assertions, for tests.
//!
//! # Robustness
//!
//! Everything in a response is hostile input: no input makes this crate panic, base64 fields
//! are capped at 64 KiB decoded, CBOR is decoded with bounded nesting and without allocating
//! ahead of the input, and every length in the authenticator data is bounds-checked.

#![deny(missing_docs)]

mod attestation;
mod authdata;
pub mod base64url;
mod cbor;
mod client_data;
mod cose;
mod error;
#[cfg(feature = "soft-authenticator")]
pub mod soft;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use attestation::AttestationType;
pub use cose::{supported_algorithms, EDDSA, ES256, RS256};
pub use error::WebauthnError;

use attestation::AttestationObject;
use authdata::AuthenticatorData;
use cose::CoseKey;

/// The `timeout` hint put in the options, in milliseconds (5 minutes). The caller should
/// expire unanswered challenges on the server after about as long.
pub const TIMEOUT_MS: u32 = 300_000;

/// The largest decoded base64url field accepted in a response.
const MAX_FIELD_BYTES: usize = 64 * 1024;

/// The Palisade deployment as a WebAuthn relying party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    /// The RP ID: the portal's host name or a registrable suffix of it, without scheme or
    /// port (e.g. `localhost`, `palisade.example.com`). Credentials are bound to it: changing
    /// it invalidates every registered credential.
    pub id: String,
    /// The name browsers may show, e.g. `Palisade`.
    pub name: String,
    /// The exact origins the portal is served from, scheme, host and non-default port
    /// (e.g. `http://localhost:8080`, `https://palisade.example.com`). A trailing `/` is
    /// ignored.
    pub origins: Vec<String>,
}

/// A registered credential, as stored by the caller.
///
/// Serialised with the byte fields as base64url strings and the AAGUID as a UUID string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The credential id (1 to 1023 bytes), unique across all users.
    #[serde(with = "base64url::serde_bytes")]
    pub id: Vec<u8>,
    /// The credential public key, the COSE_Key bytes exactly as the authenticator sent them.
    #[serde(with = "base64url::serde_bytes")]
    pub public_key_cose: Vec<u8>,
    /// The last signature counter seen (0 for authenticators without one).
    pub sign_count: u32,
    /// The WebAuthn user handle of the owner (`user.id` of the registration options).
    #[serde(with = "base64url::serde_bytes")]
    pub user_handle: Vec<u8>,
    /// Whether the credential may be backed up / synced (a passkey) rather than bound to one
    /// device. Permanent for a credential.
    pub backup_eligible: bool,
    /// The authenticator model's AAGUID as the authenticator claimed it (all zero when the
    /// browser anonymised it). Not verified: informational only.
    #[serde(with = "base64url::serde_aaguid")]
    pub aaguid: [u8; 16],
}

impl Credential {
    /// The COSE algorithm of the public key, if the stored key parses.
    pub fn algorithm(&self) -> Result<i64, WebauthnError> {
        CoseKey::parse(&self.public_key_cose).map(|key| key.algorithm())
    }

    /// The AAGUID as a hyphenated lower-case UUID string.
    pub fn aaguid_string(&self) -> String {
        aaguid_to_string(&self.aaguid)
    }
}

/// The outcome of a verified registration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// The credential to store.
    pub credential: Credential,
    /// The UV flag: the authenticator verified the user (PIN, biometrics).
    pub user_verified: bool,
    /// The BS flag: the credential is currently backed up (synced).
    pub backup_state: bool,
    /// The COSE algorithm of the credential key.
    pub algorithm: i64,
    /// The attestation statement format the client sent (`none`, `packed`, ...).
    pub attestation_format: String,
    /// What the attestation statement proved.
    pub attestation: AttestationType,
}

/// The outcome of a verified authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Authentication {
    /// The signature counter to store in [`Credential::sign_count`].
    pub sign_count: u32,
    /// The UV flag: the authenticator verified the user (PIN, biometrics).
    pub user_verified: bool,
    /// The BS flag: the credential is currently backed up (synced).
    pub backup_state: bool,
}

impl RelyingParty {
    /// `PublicKeyCredentialCreationOptions` for `navigator.credentials.create({publicKey})`,
    /// binary members base64url-encoded (see the crate documentation for the conversion).
    ///
    /// `user_handle` must be 1 to 64 opaque bytes that identify the account and contain no
    /// personal data (browsers refuse other lengths); `exclude` lists the user's existing
    /// credentials so that an authenticator is not registered twice.
    pub fn registration_options(
        &self,
        challenge: &[u8; 32],
        user_handle: &[u8],
        user_name: &str,
        display_name: &str,
        exclude: &[Credential],
    ) -> Value {
        let params: Vec<Value> = supported_algorithms()
            .into_iter()
            .map(|alg| json!({"type": "public-key", "alg": alg}))
            .collect();
        json!({
            "rp": {"id": self.id, "name": self.name},
            "user": {
                "id": base64url::encode(user_handle),
                "name": user_name,
                "displayName": display_name,
            },
            "challenge": base64url::encode(challenge),
            "pubKeyCredParams": params,
            "timeout": TIMEOUT_MS,
            "excludeCredentials": descriptors(exclude),
            "authenticatorSelection": {
                "residentKey": "preferred",
                "requireResidentKey": false,
                "userVerification": "preferred",
            },
            "attestation": "none",
            "extensions": {"credProps": true},
        })
    }

    /// Verifies a registration response (see the crate documentation for every check) and
    /// returns the credential to store.
    ///
    /// [`Credential::user_handle`] is left empty: set it to the handle given to
    /// [`RelyingParty::registration_options`], or use [`RelyingParty::verify_registration`].
    pub fn finish_registration(
        &self,
        challenge: &[u8; 32],
        response: &Value,
    ) -> Result<Credential, WebauthnError> {
        self.verify_registration(challenge, &[], response)
            .map(|registration| registration.credential)
    }

    /// [`RelyingParty::finish_registration`] that records `user_handle` in the credential
    /// and reports the flags and the attestation outcome.
    pub fn verify_registration(
        &self,
        challenge: &[u8; 32],
        user_handle: &[u8],
        response: &Value,
    ) -> Result<Registration, WebauthnError> {
        let (raw_id, inner) = envelope(response)?;
        let client_data_json = b64_field(inner, "clientDataJSON")?;
        let attestation_object = b64_field(inner, "attestationObject")?;

        client_data::verify(
            &client_data_json,
            "webauthn.create",
            challenge,
            &self.origins,
        )?;
        let client_data_hash: [u8; 32] = Sha256::digest(&client_data_json).into();

        let attestation = AttestationObject::parse(&attestation_object)?;
        let auth_data = AuthenticatorData::parse(&attestation.auth_data)?;
        self.check_authenticator_data(&auth_data)?;
        let attested = auth_data
            .attested
            .as_ref()
            .ok_or(WebauthnError::MissingCredentialData)?;
        if attested.credential_id != raw_id.as_slice() {
            return Err(WebauthnError::CredentialIdMismatch);
        }
        let key = CoseKey::parse(attested.public_key_cose)?;
        let attestation_type = attestation.verify(&client_data_hash, &key)?;

        Ok(Registration {
            credential: Credential {
                id: raw_id,
                public_key_cose: attested.public_key_cose.to_vec(),
                sign_count: auth_data.sign_count,
                user_handle: user_handle.to_vec(),
                backup_eligible: auth_data.backup_eligible(),
                aaguid: attested.aaguid,
            },
            user_verified: auth_data.user_verified(),
            backup_state: auth_data.backup_state(),
            algorithm: key.algorithm(),
            attestation_format: attestation.fmt.clone(),
            attestation: attestation_type,
        })
    }

    /// `PublicKeyCredentialRequestOptions` for `navigator.credentials.get({publicKey})`,
    /// binary members base64url-encoded. An empty `allow` asks for a discoverable credential
    /// (passkey sign-in without a user name).
    pub fn authentication_options(&self, challenge: &[u8; 32], allow: &[Credential]) -> Value {
        json!({
            "challenge": base64url::encode(challenge),
            "rpId": self.id,
            "timeout": TIMEOUT_MS,
            "allowCredentials": descriptors(allow),
            "userVerification": "preferred",
        })
    }

    /// Verifies an authentication response against the stored `credential` (see the crate
    /// documentation for every check) and returns the signature counter to store.
    pub fn finish_authentication(
        &self,
        challenge: &[u8; 32],
        response: &Value,
        credential: &Credential,
    ) -> Result<u32, WebauthnError> {
        self.verify_authentication(challenge, response, credential)
            .map(|authentication| authentication.sign_count)
    }

    /// [`RelyingParty::finish_authentication`] that also reports the UV and BS flags.
    pub fn verify_authentication(
        &self,
        challenge: &[u8; 32],
        response: &Value,
        credential: &Credential,
    ) -> Result<Authentication, WebauthnError> {
        let (raw_id, inner) = envelope(response)?;
        if raw_id != credential.id {
            return Err(WebauthnError::CredentialIdMismatch);
        }
        let client_data_json = b64_field(inner, "clientDataJSON")?;
        let authenticator_data = b64_field(inner, "authenticatorData")?;
        let signature = b64_field(inner, "signature")?;
        if let Some(user_handle) = optional_b64_field(inner, "userHandle")? {
            if !credential.user_handle.is_empty() && user_handle != credential.user_handle {
                return Err(WebauthnError::UserHandleMismatch);
            }
        }

        client_data::verify(&client_data_json, "webauthn.get", challenge, &self.origins)?;

        let auth_data = AuthenticatorData::parse(&authenticator_data)?;
        self.check_authenticator_data(&auth_data)?;
        if auth_data.backup_eligible() != credential.backup_eligible {
            return Err(WebauthnError::BackupEligibilityChanged);
        }

        let key = CoseKey::parse(&credential.public_key_cose)?;
        let mut signed = Vec::with_capacity(authenticator_data.len() + 32);
        signed.extend_from_slice(&authenticator_data);
        signed.extend_from_slice(&Sha256::digest(&client_data_json));
        key.verify(&signed, &signature)?;

        let stored = credential.sign_count;
        let received = auth_data.sign_count;
        if stored != 0 && received != 0 && received <= stored {
            return Err(WebauthnError::ClonedAuthenticator);
        }
        Ok(Authentication {
            sign_count: stored.max(received),
            user_verified: auth_data.user_verified(),
            backup_state: auth_data.backup_state(),
        })
    }

    /// The checks on authenticator data shared by both ceremonies.
    fn check_authenticator_data(
        &self,
        auth_data: &AuthenticatorData<'_>,
    ) -> Result<(), WebauthnError> {
        let expected: [u8; 32] = Sha256::digest(self.id.as_bytes()).into();
        if auth_data.rp_id_hash != &expected {
            return Err(WebauthnError::RpIdHashMismatch);
        }
        if !auth_data.user_present() {
            return Err(WebauthnError::UserNotPresent);
        }
        if auth_data.backup_state() && !auth_data.backup_eligible() {
            return Err(WebauthnError::InvalidBackupFlags);
        }
        Ok(())
    }
}

/// The credential id a response names (its `rawId`, or `id`), to look up the stored
/// [`Credential`] before [`RelyingParty::finish_authentication`].
pub fn response_credential_id(response: &Value) -> Result<Vec<u8>, WebauthnError> {
    envelope(response).map(|(raw_id, _)| raw_id)
}

/// The user handle an authentication response carries, if any: set for discoverable
/// credentials, which is how a sign-in without a user name finds the account.
pub fn response_user_handle(response: &Value) -> Result<Option<Vec<u8>>, WebauthnError> {
    let (_, inner) = envelope(response)?;
    optional_b64_field(inner, "userHandle")
}

fn descriptors(credentials: &[Credential]) -> Vec<Value> {
    credentials
        .iter()
        .map(|c| json!({"type": "public-key", "id": base64url::encode(&c.id)}))
        .collect()
}

/// The checked outer shape of a response: credential id and the inner `response` object.
fn envelope(response: &Value) -> Result<(Vec<u8>, &Map<String, Value>), WebauthnError> {
    let outer = response
        .as_object()
        .ok_or(WebauthnError::MalformedResponse(
            "response is not a JSON object",
        ))?;
    match outer.get("type").map(Value::as_str) {
        Some(Some("public-key")) => {}
        Some(Some(_)) => return Err(WebauthnError::WrongCredentialType),
        _ => return Err(WebauthnError::MalformedResponse("type")),
    }
    let raw_id = optional_b64_field(outer, "rawId")?;
    let id = optional_b64_field(outer, "id")?;
    let raw_id = match (raw_id, id) {
        (Some(raw_id), Some(id)) if raw_id != id => {
            return Err(WebauthnError::MalformedResponse("id and rawId differ"))
        }
        (Some(raw_id), _) | (None, Some(raw_id)) => raw_id,
        (None, None) => return Err(WebauthnError::MalformedResponse("rawId")),
    };
    if raw_id.is_empty() || raw_id.len() > authdata::MAX_CREDENTIAL_ID_LEN {
        return Err(WebauthnError::MalformedResponse("credential id length"));
    }
    let inner = outer
        .get("response")
        .and_then(Value::as_object)
        .ok_or(WebauthnError::MalformedResponse("response"))?;
    Ok((raw_id, inner))
}

/// A required base64url string member.
fn b64_field(object: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, WebauthnError> {
    optional_b64_field(object, name)?.ok_or(WebauthnError::MalformedResponse(name))
}

/// An optional base64url string member: absent, `null` and `""` are `None`.
fn optional_b64_field(
    object: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<Vec<u8>>, WebauthnError> {
    let text = match object.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text,
        Some(_) => return Err(WebauthnError::MalformedResponse(name)),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_FIELD_BYTES / 3 * 4 + 4 {
        return Err(WebauthnError::TooLarge(name));
    }
    base64url::decode(text)
        .map(Some)
        .ok_or(WebauthnError::InvalidBase64(name))
}

/// `00112233-4455-6677-8899-aabbccddeeff`.
pub(crate) fn aaguid_to_string(aaguid: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in aaguid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Parses a UUID string, with or without hyphens.
pub(crate) fn aaguid_from_str(text: &str) -> Option<[u8; 16]> {
    let digits: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    if digits.len() != 32 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aaguid_text_round_trip() {
        let aaguid = *b"\x01\x23\x45\x67\x89\xab\xcd\xef\x00\x11\x22\x33\x44\x55\x66\x77";
        let text = aaguid_to_string(&aaguid);
        assert_eq!(text, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(aaguid_from_str(&text), Some(aaguid));
        assert_eq!(
            aaguid_from_str("0123456789abcdef0011223344556677"),
            Some(aaguid)
        );
        assert_eq!(aaguid_from_str("0123456789abcdef001122334455667"), None);
        assert_eq!(aaguid_from_str("+123456789abcdef0011223344556677"), None);
        assert_eq!(aaguid_from_str("é123456789abcdef001122334455667"), None);
    }

    #[test]
    fn envelope_shape() {
        let ok = json!({"id": "AQI", "rawId": "AQI", "type": "public-key", "response": {}});
        assert_eq!(response_credential_id(&ok).unwrap(), vec![1, 2]);
        let only_id = json!({"id": "AQI", "type": "public-key", "response": {}});
        assert_eq!(response_credential_id(&only_id).unwrap(), vec![1, 2]);
        for (bad, expected) in [
            (
                json!([]),
                WebauthnError::MalformedResponse("response is not a JSON object"),
            ),
            (
                json!({"id": "AQI", "rawId": "AQM", "type": "public-key", "response": {}}),
                WebauthnError::MalformedResponse("id and rawId differ"),
            ),
            (
                json!({"rawId": "AQI", "type": "password", "response": {}}),
                WebauthnError::WrongCredentialType,
            ),
            (
                json!({"rawId": "AQI", "response": {}}),
                WebauthnError::MalformedResponse("type"),
            ),
            (
                json!({"rawId": "A", "type": "public-key", "response": {}}),
                WebauthnError::InvalidBase64("rawId"),
            ),
            (
                json!({"rawId": 5, "type": "public-key", "response": {}}),
                WebauthnError::MalformedResponse("rawId"),
            ),
            (
                json!({"type": "public-key", "response": {}}),
                WebauthnError::MalformedResponse("rawId"),
            ),
            (
                json!({"rawId": "AQI", "type": "public-key", "response": "x"}),
                WebauthnError::MalformedResponse("response"),
            ),
            (
                json!({"rawId": "A".repeat(100_000), "type": "public-key", "response": {}}),
                WebauthnError::TooLarge("rawId"),
            ),
        ] {
            assert_eq!(response_credential_id(&bad).unwrap_err(), expected, "{bad}");
        }
    }

    #[test]
    fn credential_serialisation() {
        let credential = Credential {
            id: vec![1, 2, 3],
            public_key_cose: vec![0xa0],
            sign_count: 7,
            user_handle: vec![9; 16],
            backup_eligible: true,
            aaguid: [0xab; 16],
        };
        let json = serde_json::to_value(&credential).unwrap();
        assert_eq!(json["id"], "AQID");
        assert_eq!(json["aaguid"], "abababab-abab-abab-abab-abababababab");
        let back: Credential = serde_json::from_value(json).unwrap();
        assert_eq!(back, credential);
        assert!(serde_json::from_value::<Credential>(json!({
            "id": "!", "public_key_cose": "oA", "sign_count": 0, "user_handle": "",
            "backup_eligible": false, "aaguid": "00000000-0000-0000-0000-000000000000"
        }))
        .is_err());
    }
}
