//! Attestation objects (WebAuthn §6.5) and the statement formats this crate checks.

use ciborium::Value;

use crate::cose::CoseKey;
use crate::{cbor, WebauthnError};

/// What the attestation statement of a registration proved.
///
/// Palisade requests `attestation: "none"` and keeps no attestation trust anchors, so no
/// outcome makes a credential more trusted than another; this is recorded for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationType {
    /// Format `none` with an empty statement.
    None,
    /// Format `packed` without a certificate: a signature by the credential key itself,
    /// verified.
    SelfAttestation,
    /// Any other format, or `packed` with a certificate chain: accepted without verifying the
    /// statement, exactly as if the browser had replaced it with `none` (which attestation
    /// conveyance "none" allows it to do). The AAGUID is then only a claim.
    Unverified,
}

/// The parts of an attestation object.
#[derive(Debug)]
pub(crate) struct AttestationObject {
    pub(crate) fmt: String,
    pub(crate) att_stmt: Value,
    pub(crate) auth_data: Vec<u8>,
}

fn malformed(what: &'static str) -> WebauthnError {
    WebauthnError::MalformedAttestation(what)
}

/// The longest format identifier WebAuthn registers is 17 characters; allow some slack.
const MAX_FMT_LEN: usize = 64;

impl AttestationObject {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WebauthnError> {
        let value = cbor::decode_exact(bytes).ok_or_else(|| malformed("not one CBOR item"))?;
        let entries =
            cbor::unique_map(&value).ok_or_else(|| malformed("not a CBOR map with unique keys"))?;
        let fmt = cbor::text_key(entries, "fmt")
            .and_then(Value::as_text)
            .ok_or_else(|| malformed("missing fmt"))?;
        if fmt.is_empty() || fmt.len() > MAX_FMT_LEN || !fmt.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(malformed("invalid fmt"));
        }
        let att_stmt =
            cbor::text_key(entries, "attStmt").ok_or_else(|| malformed("missing attStmt"))?;
        if !att_stmt.is_map() {
            return Err(malformed("attStmt is not a map"));
        }
        let auth_data = cbor::text_key(entries, "authData")
            .and_then(Value::as_bytes)
            .ok_or_else(|| malformed("missing authData"))?;
        Ok(Self {
            fmt: fmt.to_owned(),
            att_stmt: att_stmt.clone(),
            auth_data: auth_data.clone(),
        })
    }

    /// Checks the statement of the formats this crate understands (see [`AttestationType`]).
    pub(crate) fn verify(
        &self,
        client_data_hash: &[u8; 32],
        credential_key: &CoseKey,
    ) -> Result<AttestationType, WebauthnError> {
        match self.fmt.as_str() {
            "none" => {
                if self.att_stmt.as_map().is_some_and(Vec::is_empty) {
                    Ok(AttestationType::None)
                } else {
                    Err(WebauthnError::InvalidAttestation(
                        "none attestation with a statement",
                    ))
                }
            }
            "packed" => {
                let entries = cbor::unique_map(&self.att_stmt).ok_or(
                    WebauthnError::InvalidAttestation("packed statement has duplicate keys"),
                )?;
                let alg = cbor::text_key(entries, "alg")
                    .and_then(cbor::as_i64)
                    .ok_or(WebauthnError::InvalidAttestation(
                        "packed statement without alg",
                    ))?;
                let sig = cbor::text_key(entries, "sig")
                    .and_then(Value::as_bytes)
                    .ok_or(WebauthnError::InvalidAttestation(
                        "packed statement without sig",
                    ))?;
                if cbor::text_key(entries, "x5c").is_some()
                    || cbor::text_key(entries, "ecdaaKeyId").is_some()
                {
                    return Ok(AttestationType::Unverified);
                }
                if alg != credential_key.algorithm() {
                    return Err(WebauthnError::InvalidAttestation(
                        "self attestation alg differs from the credential's",
                    ));
                }
                let mut signed = Vec::with_capacity(self.auth_data.len() + 32);
                signed.extend_from_slice(&self.auth_data);
                signed.extend_from_slice(client_data_hash);
                credential_key
                    .verify(&signed, sig)
                    .map_err(|_| WebauthnError::InvalidAttestation("self attestation signature"))?;
                Ok(AttestationType::SelfAttestation)
            }
            _ => Ok(AttestationType::Unverified),
        }
    }
}
