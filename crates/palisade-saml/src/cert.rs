//! IdP certificates: PEM parsing and RSA public key extraction.

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::SamlError;

/// Smallest RSA modulus accepted for an IdP key.
const MIN_RSA_BITS: usize = 2048;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Parse every `CERTIFICATE` block of a PEM text into DER, checking that each is an X.509
/// certificate with an RSA public key of at least 2048 bits (the only kind this crate can
/// verify with). Text outside the blocks is ignored; no block at all is an error.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, SamlError> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body_start = start + BEGIN.len();
        let after = rest
            .get(body_start..)
            .ok_or_else(|| SamlError::Certificate("truncated PEM".into()))?;
        let end = after
            .find(END)
            .ok_or_else(|| SamlError::Certificate("PEM block without END line".into()))?;
        let body: String = after
            .get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| SamlError::Certificate("PEM body is not base64".into()))?;
        rsa_key(&der)?;
        out.push(der);
        rest = after.get(end + END.len()..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(SamlError::Certificate("no CERTIFICATE block in PEM".into()));
    }
    Ok(out)
}

/// The RSA public key of a DER X.509 certificate. The certificate's validity period and
/// issuer are deliberately not checked: SAML metadata uses certificates as key containers,
/// and trust comes from the configuration, not from a CA.
pub(crate) fn rsa_key(der: &[u8]) -> Result<RsaPublicKey, SamlError> {
    let cert = Certificate::from_der(der)
        .map_err(|e| SamlError::Certificate(format!("not X.509 DER: {e}")))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SamlError::Certificate(format!("public key: {e}")))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| SamlError::Certificate(format!("not an RSA key: {e}")))?;
    if key.n().bits() < MIN_RSA_BITS {
        return Err(SamlError::Certificate(format!(
            "RSA key of {} bits, at least {MIN_RSA_BITS} required",
            key.n().bits()
        )));
    }
    Ok(key)
}
