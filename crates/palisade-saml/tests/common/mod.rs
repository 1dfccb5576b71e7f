//! Shared helpers of the integration tests: the fixtures' SP/IdP values (those of
//! `fixtures/make_responses.py`) and small string surgery on the XML.
#![allow(dead_code)]

use base64::Engine;
use palisade_saml::{pem_certificates, Identity, MemoryReplayCache, SamlError, SpConfig};

pub const SP_ENTITY_ID: &str = "https://palisade.example.test/saml/metadata";
pub const ACS_URL: &str = "https://palisade.example.test/saml/acs";
pub const IDP_ENTITY_ID: &str = "https://idp.example.test/saml";
pub const IDP_SSO_URL: &str = "https://idp.example.test/sso";
pub const REQUEST_ID: &str = "_00112233445566778899aabbccddeeff";
/// 2025-01-15T10:00:00Z, the fixtures' IssueInstant.
pub const ISSUED: i64 = 1_736_935_200;
/// When the tests consume the fixtures.
pub const NOW: i64 = ISSUED + 10;

pub const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const PASSWORD_PROTECTED_TRANSPORT: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";

pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(&format!("{name}.xml"))).unwrap()
}

pub fn config_with_cert(cert_file: &str) -> SpConfig {
    let pem = std::fs::read_to_string(fixture_path(cert_file)).unwrap();
    SpConfig::new(
        SP_ENTITY_ID,
        ACS_URL,
        IDP_ENTITY_ID,
        IDP_SSO_URL,
        pem_certificates(&pem).unwrap(),
    )
}

pub fn config() -> SpConfig {
    config_with_cert("idp-cert.pem")
}

pub fn b64(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

/// Consume XML with a fresh replay cache.
pub fn consume_at(xml: &str, expected: Option<&str>, now: i64) -> Result<Identity, SamlError> {
    config().consume(&b64(xml), expected, now, &mut MemoryReplayCache::new())
}

pub fn consume(xml: &str) -> Result<Identity, SamlError> {
    consume_at(xml, Some(REQUEST_ID), NOW)
}

/// Byte range of the first element that starts with `open` (e.g. `<ns1:Assertion `), up to
/// and including its matching `close` tag (no nesting of the same name assumed).
pub fn element_range(xml: &str, open: &str, close: &str) -> std::ops::Range<usize> {
    let start = xml.find(open).unwrap_or_else(|| panic!("{open} not found"));
    let end = xml[start..]
        .find(close)
        .unwrap_or_else(|| panic!("{close} not found"))
        + start
        + close.len();
    start..end
}

pub fn element<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
    &xml[element_range(xml, open, close)]
}

/// The value of `attr="..."` in the first tag starting with `open`.
pub fn attr(xml: &str, open: &str, attr: &str) -> String {
    let start = xml.find(open).unwrap_or_else(|| panic!("{open} not found"));
    let tag_end = xml[start..].find('>').unwrap() + start;
    let tag = &xml[start..tag_end];
    let needle = format!(" {attr}=\"");
    let at = tag
        .find(&needle)
        .unwrap_or_else(|| panic!("{attr} not in {tag}"))
        + needle.len();
    let len = tag[at..].find('"').unwrap();
    tag[at..at + len].to_string()
}

/// Replace exactly one occurrence (the test must know what it changes).
pub fn replace_once(xml: &str, from: &str, to: &str) -> String {
    assert_eq!(xml.matches(from).count(), 1, "{from:?} must occur once");
    xml.replacen(from, to, 1)
}

pub const ASSERTION_OPEN: &str = "<ns1:Assertion ";
pub const ASSERTION_CLOSE: &str = "</ns1:Assertion>";
pub const SIGNATURE_OPEN: &str = "<ns2:Signature ";
pub const SIGNATURE_CLOSE: &str = "</ns2:Signature>";
