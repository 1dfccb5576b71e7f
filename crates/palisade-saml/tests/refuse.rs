//! Each check of `consume` refuses what it must, with its own error: the fixtures are validly
//! signed by the IdP (pysaml2 + xmlsec1), so only the check under test can refuse them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use palisade_saml::{pem_certificates, MemoryReplayCache, SamlError};

#[test]
fn tampered_attribute_value_breaks_the_digest() {
    for name in [
        "assertion_signed",
        "response_signed",
        "response_and_assertion_signed",
    ] {
        let xml = fixture(name);
        let tampered = replace_once(&xml, ">palisade-viewers<", ">palisade-admins<");
        assert_eq!(consume(&tampered), Err(SamlError::DigestMismatch), "{name}");
    }
}

#[test]
fn tampered_name_id_breaks_the_digest() {
    let xml = fixture("assertion_signed");
    let tampered = replace_once(
        &xml,
        ">alice@example.test</ns1:NameID>",
        ">admin@example.test</ns1:NameID>",
    );
    assert_eq!(consume(&tampered), Err(SamlError::DigestMismatch));
    // Text written differently but canonically equal is the same signed content.
    let same = replace_once(
        &xml,
        ">alice@example.test</ns1:NameID>",
        ">&#97;lice@example.test</ns1:NameID>",
    );
    assert_eq!(consume(&same).unwrap().name_id, "alice@example.test");
}

#[test]
fn tampered_signed_info_or_signature_value() {
    let xml = fixture("assertion_signed");
    // A changed DigestValue (same length, still base64).
    let digest = element(&xml, "<ns2:DigestValue>", "</ns2:DigestValue>").to_string();
    let changed = flip_base64_char(&digest, "<ns2:DigestValue>".len() + 5);
    assert_eq!(
        consume(&replace_once(&xml, &digest, &changed)),
        Err(SamlError::DigestMismatch)
    );

    // A changed SignatureValue fails the RSA check.
    let value = element(&xml, "<ns2:SignatureValue>", "</ns2:SignatureValue>").to_string();
    let changed = flip_base64_char(&value, "<ns2:SignatureValue>".len() + 10);
    assert_eq!(
        consume(&replace_once(&xml, &value, &changed)),
        Err(SamlError::BadSignature)
    );

    // SignedInfo itself is signed: changing something the digest does not cover (the
    // Reference Id attribute, added) fails the signature.
    let tampered = replace_once(&xml, "<ns2:Reference URI=", "<ns2:Reference Id=\"x\" URI=");
    assert_eq!(consume(&tampered), Err(SamlError::BadSignature));
}

fn flip_base64_char(s: &str, at: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn unsigned_assertion_is_refused() {
    assert_eq!(consume(&fixture("unsigned")), Err(SamlError::Unsigned));
    // Removing the signature from a signed fixture: same answer.
    let xml = fixture("assertion_signed");
    let signature = element(&xml, SIGNATURE_OPEN, SIGNATURE_CLOSE).to_string();
    assert_eq!(
        consume(&xml.replace(&signature, "")),
        Err(SamlError::Unsigned)
    );
}

#[test]
fn certificate_not_configured() {
    let xml = fixture("assertion_signed");
    let other = config_with_cert("other-idp-cert.pem");
    let result = other.consume(
        &b64(&xml),
        Some(REQUEST_ID),
        NOW,
        &mut MemoryReplayCache::new(),
    );
    assert_eq!(result, Err(SamlError::BadSignature));
    // The certificate inside the message's KeyInfo is never used: replacing it with the
    // other IdP's certificate changes nothing for the configured key, and the other
    // configuration still refuses.
    let other_b64: String = std::fs::read_to_string(fixture_path("other-idp-cert.pem"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let cert = element(&xml, "<ns2:X509Certificate>", "</ns2:X509Certificate>").to_string();
    let swapped = xml.replace(
        &cert,
        &format!("<ns2:X509Certificate>{other_b64}</ns2:X509Certificate>"),
    );
    assert!(consume(&swapped).is_ok());
    let result = other.consume(
        &b64(&swapped),
        Some(REQUEST_ID),
        NOW,
        &mut MemoryReplayCache::new(),
    );
    assert_eq!(result, Err(SamlError::BadSignature));
    // Key rollover: the old and the new certificate configured, either signs.
    let mut both = other.clone();
    both.idp_certificates.extend(config().idp_certificates);
    assert!(both
        .consume(
            &b64(&xml),
            Some(REQUEST_ID),
            NOW,
            &mut MemoryReplayCache::new()
        )
        .is_ok());
    // Nothing configured.
    let mut none = config();
    none.idp_certificates.clear();
    let result = none.consume(
        &b64(&xml),
        Some(REQUEST_ID),
        NOW,
        &mut MemoryReplayCache::new(),
    );
    assert_eq!(result, Err(SamlError::NoCertificate));
}

#[test]
fn wrong_audience() {
    assert_eq!(
        consume(&fixture("wrong_audience")),
        Err(SamlError::Audience)
    );
}

#[test]
fn wrong_recipient() {
    assert!(matches!(
        consume(&fixture("wrong_recipient")),
        Err(SamlError::SubjectConfirmation(m)) if m.contains("Recipient")
    ));
}

#[test]
fn wrong_destination() {
    assert_eq!(
        consume(&fixture("wrong_destination")),
        Err(SamlError::Destination(
            "https://other-sp.example.test/saml/acs".into()
        ))
    );
}

#[test]
fn wrong_in_response_to() {
    // The bearer confirmation answers another request (the Response itself is right).
    assert_eq!(
        consume(&fixture("wrong_subject_in_response_to")),
        Err(SamlError::InResponseTo)
    );
    let xml = fixture("assertion_signed");
    // Another outstanding request.
    assert_eq!(
        consume_at(&xml, Some("_another"), NOW),
        Err(SamlError::InResponseTo)
    );
    // A solicited response presented where none was expected.
    assert_eq!(consume_at(&xml, None, NOW), Err(SamlError::InResponseTo));
    // An unsolicited response presented for an outstanding request.
    assert_eq!(
        consume_at(&fixture("unsolicited"), Some(REQUEST_ID), NOW),
        Err(SamlError::InResponseTo)
    );
}

#[test]
fn wrong_issuer() {
    assert_eq!(
        consume(&fixture("wrong_issuer")),
        Err(SamlError::Issuer(
            "https://evil-idp.example.test/saml".into()
        ))
    );
}

#[test]
fn rsa_sha1_is_refused() {
    assert_eq!(
        consume(&fixture("rsa_sha1")),
        Err(SamlError::UnsupportedAlgorithm(
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1".into()
        ))
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let xml = fixture("assertion_signed");
    // Bearer and Conditions NotOnOrAfter = ISSUED + 300, skew 120.
    assert!(matches!(
        consume_at(&xml, Some(REQUEST_ID), ISSUED + 420),
        Err(SamlError::Expired(_))
    ));
    assert!(matches!(
        consume_at(&xml, Some(REQUEST_ID), ISSUED + 86_400),
        Err(SamlError::Expired(_))
    ));
    // NotBefore = IssueInstant = ISSUED.
    assert!(matches!(
        consume_at(&xml, Some(REQUEST_ID), ISSUED - 121),
        Err(SamlError::NotYetValid(_))
    ));
    // A longer lifetime does not beat the maximum assertion age.
    let mut config = config();
    config.max_assertion_age_secs = 60;
    let result = config.consume(
        &b64(&xml),
        Some(REQUEST_ID),
        ISSUED + 181,
        &mut MemoryReplayCache::new(),
    );
    assert!(matches!(result, Err(SamlError::Expired(m)) if m.contains("maximum age")));
    assert!(config
        .consume(
            &b64(&xml),
            Some(REQUEST_ID),
            ISSUED + 180,
            &mut MemoryReplayCache::new()
        )
        .is_ok());
    // No skew at all.
    config.clock_skew_secs = 0;
    let result = config.consume(
        &b64(&xml),
        Some(REQUEST_ID),
        ISSUED - 1,
        &mut MemoryReplayCache::new(),
    );
    assert!(matches!(result, Err(SamlError::NotYetValid(_))));
}

#[test]
fn status_other_than_success() {
    // The Response is not signed in this fixture, so its Status can be edited.
    let xml = fixture("assertion_signed");
    let failed = replace_once(
        &xml,
        r#"<ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>"#,
        r#"<ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></ns0:StatusCode>"#,
    );
    assert_eq!(
        consume(&failed),
        Err(SamlError::Status {
            code: "urn:oasis:names:tc:SAML:2.0:status:Responder".into(),
            sub_code: Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed".into()),
        })
    );
}

#[test]
fn response_level_issuer_must_match_too() {
    let xml = fixture("assertion_signed");
    let response_issuer = format!("<ns1:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">{IDP_ENTITY_ID}</ns1:Issuer><ns0:Status>");
    let evil = replace_once(
        &xml,
        &response_issuer,
        "<ns1:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">https://evil.example.test</ns1:Issuer><ns0:Status>",
    );
    assert_eq!(
        consume(&evil),
        Err(SamlError::Issuer("https://evil.example.test".into()))
    );
}

#[test]
fn encrypted_assertion_is_unsupported() {
    let xml = fixture("assertion_signed");
    let assertion = element(&xml, ASSERTION_OPEN, ASSERTION_CLOSE).to_string();
    let encrypted = xml.replace(
        &assertion,
        "<ns1:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"/></ns1:EncryptedAssertion>",
    );
    assert_eq!(
        consume(&encrypted),
        Err(SamlError::EncryptedAssertionUnsupported)
    );
}

#[test]
fn root_must_be_a_protocol_response_by_namespace() {
    let xml = fixture("assertion_signed");
    // Same local name and prefix, other namespace URI.
    let wrong_ns = replace_once(
        &xml,
        r#"xmlns:ns0="urn:oasis:names:tc:SAML:2.0:protocol""#,
        r#"xmlns:ns0="urn:oasis:names:tc:SAML:2.0:protocoI""#,
    );
    assert_eq!(consume(&wrong_ns), Err(SamlError::NotAResponse));
    // The signed assertion alone is not a response.
    let assertion = element(&xml, ASSERTION_OPEN, ASSERTION_CLOSE).replacen(
        ASSERTION_OPEN,
        "<ns1:Assertion xmlns:ns1=\"urn:oasis:names:tc:SAML:2.0:assertion\" xmlns:ns2=\"http://www.w3.org/2000/09/xmldsig#\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" ",
        1,
    );
    assert_eq!(consume(&assertion), Err(SamlError::NotAResponse));
}

#[test]
fn pem_parsing() {
    let pem = std::fs::read_to_string(fixture_path("idp-cert.pem")).unwrap();
    let other = std::fs::read_to_string(fixture_path("other-idp-cert.pem")).unwrap();
    assert_eq!(
        pem_certificates(&format!("junk\n{pem}\n{other}"))
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        pem_certificates(""),
        Err(SamlError::Certificate(_))
    ));
    assert!(matches!(
        pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(SamlError::Certificate(_))
    ));
    assert!(matches!(
        pem_certificates("-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n"),
        Err(SamlError::Certificate(_))
    ));
    assert!(matches!(
        pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n"),
        Err(SamlError::Certificate(_))
    ));
}
