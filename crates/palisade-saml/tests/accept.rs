//! Responses produced by pysaml2 + xmlsec1 (the real peer) are accepted with the right
//! identity; the AuthnRequest is well formed; replays are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use common::*;
use palisade_saml::{Identity, MemoryReplayCache, ReplayCache, SamlError};

const MAIL: &str = "urn:oid:0.9.2342.19200300.100.1.3";
const DISPLAY_NAME: &str = "urn:oid:2.16.840.1.113730.3.1.241";

fn assertion_id(xml: &str) -> String {
    attr(xml, ASSERTION_OPEN, "ID")
}

fn alice_attributes() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([
        (MAIL.to_string(), vec!["alice@example.test".to_string()]),
        (
            DISPLAY_NAME.to_string(),
            vec!["Alice Liddell & Zoë <Ops>".to_string()],
        ),
        (
            "groups".to_string(),
            vec![
                "palisade-admins".to_string(),
                "palisade-viewers".to_string(),
            ],
        ),
    ])
}

fn expect_alice(xml: &str, identity: Identity) {
    assert_eq!(
        identity,
        Identity {
            idp: IDP_ENTITY_ID.to_string(),
            name_id: "alice@example.test".to_string(),
            name_id_format: Some(EMAIL.to_string()),
            session_index: Some(attr(xml, "<ns1:AuthnStatement ", "SessionIndex")),
            attributes: alice_attributes(),
            authn_context_class: Some(PASSWORD_PROTECTED_TRANSPORT.to_string()),
            assertion_id: assertion_id(xml),
        }
    );
}

#[test]
fn signed_assertion_in_unsigned_response() {
    let xml = fixture("assertion_signed");
    expect_alice(&xml, consume(&xml).unwrap());
}

#[test]
fn signed_response_with_signed_assertion() {
    let xml = fixture("response_and_assertion_signed");
    assert_eq!(xml.matches(SIGNATURE_OPEN).count(), 2);
    expect_alice(&xml, consume(&xml).unwrap());
}

#[test]
fn signed_response_with_unsigned_assertion() {
    let xml = fixture("response_signed");
    let assertion = element(&xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    assert!(
        !assertion.contains(SIGNATURE_OPEN),
        "the fixture's assertion must be unsigned"
    );
    assert!(xml.contains(SIGNATURE_OPEN));
    expect_alice(&xml, consume(&xml).unwrap());
}

#[test]
fn name_id_formats() {
    for (name, value, format) in [
        (
            "nameid_persistent",
            "a1b2c3d4-persistent",
            "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        ),
        (
            "nameid_transient",
            "_transient-9f8e7d",
            "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
        ),
    ] {
        let xml = fixture(name);
        let identity = consume(&xml).unwrap();
        assert_eq!(identity.name_id, value);
        assert_eq!(identity.name_id_format.as_deref(), Some(format));
        assert!(identity.attributes.is_empty());
        assert_eq!(identity.assertion_id, assertion_id(&xml));
    }
}

#[test]
fn unsolicited_response_needs_no_request_id() {
    let xml = fixture("unsolicited");
    assert!(!xml.contains("InResponseTo"));
    expect_alice(&xml, consume_at(&xml, None, NOW).unwrap());
}

#[test]
fn inclusive_namespaces_prefix_lists() {
    let xml = fixture("inclusive_namespaces");
    assert!(xml.contains(r#"PrefixList="xs xsi #default""#) && xml.contains(r#"PrefixList="ns0""#));
    expect_alice(&xml, consume(&xml).unwrap());
}

#[test]
fn pretty_printed_default_namespace_style() {
    let xml = fixture("adfs_style");
    let identity = consume(&xml).unwrap();
    assert_eq!(
        identity,
        Identity {
            idp: IDP_ENTITY_ID.to_string(),
            name_id: "zoë.o'brien@example.test".to_string(),
            name_id_format: Some(EMAIL.to_string()),
            session_index: Some("_sess-adfs-style".to_string()),
            attributes: BTreeMap::from([
                (
                    "http://schemas.xmlsoap.org/claims/Group".to_string(),
                    vec![
                        "Domain Users".to_string(),
                        "a & b <c> \"q\" 'r'  tail\r".to_string(),
                        "<cdata> & more".to_string(),
                    ]
                ),
                ("structured".to_string(), vec!["plain".to_string()]),
            ]),
            authn_context_class: Some(PASSWORD_PROTECTED_TRANSPORT.to_string()),
            assertion_id: "_assert-adfs-style".to_string(),
        }
    );
}

#[test]
fn prefixes_do_not_matter_only_namespaces() {
    // The Response is unsigned in this fixture: renaming its protocol prefix keeps it valid.
    let xml = fixture("assertion_signed")
        .replace("xmlns:ns0=", "xmlns:samlp=")
        .replace("<ns0:", "<samlp:")
        .replace("</ns0:", "</samlp:");
    expect_alice(&xml, consume(&xml).unwrap());
}

#[test]
fn base64_with_line_breaks() {
    let xml = fixture("assertion_signed");
    let wrapped: String = b64(&xml)
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let identity = config()
        .consume(
            &wrapped,
            Some(REQUEST_ID),
            NOW,
            &mut MemoryReplayCache::new(),
        )
        .unwrap();
    assert_eq!(identity.name_id, "alice@example.test");
}

#[test]
fn comment_injection_in_name_id_does_not_truncate_the_identity() {
    let xml = fixture("comment_nameid");
    assert_eq!(consume(&xml).unwrap().name_id, "user@evil.com.example.com");
    // The classic attack: a comment splits the signed text; the signature stays valid
    // (exc-c14n drops comments), and a naive SP reads only the first text node.
    let injected = replace_once(
        &xml,
        ">user@evil.com.example.com<",
        ">user@evil.com<!---->.example.com<",
    );
    let identity = consume(&injected).unwrap();
    assert_eq!(identity.name_id, "user@evil.com.example.com");
    // Same with the split placed elsewhere and with a character reference.
    let injected = replace_once(
        &xml,
        ">user@evil.com.example.com<",
        ">user@evil.com<!-- x -->&#46;example<!---->.com<",
    );
    assert_eq!(
        consume(&injected).unwrap().name_id,
        "user@evil.com.example.com"
    );
}

#[test]
fn clock_skew_boundaries() {
    let xml = fixture("assertion_signed");
    // NotBefore = IssueInstant = ISSUED; NotOnOrAfter = ISSUED + 300; skew 120.
    assert!(consume_at(&xml, Some(REQUEST_ID), ISSUED - 120).is_ok());
    assert!(consume_at(&xml, Some(REQUEST_ID), ISSUED + 419).is_ok());
}

#[test]
fn replayed_assertion_is_refused_the_second_time() {
    let xml = fixture("assertion_signed");
    let config = config();
    let mut cache = MemoryReplayCache::new();
    let first = config
        .consume(&b64(&xml), Some(REQUEST_ID), NOW, &mut cache)
        .unwrap();
    let again = config.consume(&b64(&xml), Some(REQUEST_ID), NOW + 1, &mut cache);
    assert_eq!(again, Err(SamlError::Replay(first.assertion_id.clone())));
    assert_eq!(cache.len(), 1);
    cache.purge_expired(ISSUED + 300 + 120);
    assert_eq!(cache.len(), 1, "kept until NotOnOrAfter + skew");
    cache.purge_expired(ISSUED + 300 + 121);
    assert!(cache.is_empty());
}

#[test]
fn refused_response_does_not_burn_the_assertion_id() {
    let xml = fixture("assertion_signed");
    let config = config();
    let mut cache = MemoryReplayCache::new();
    assert!(config
        .consume(&b64(&xml), Some("_wrong"), NOW, &mut cache)
        .is_err());
    assert!(cache.is_empty());
    assert!(config
        .consume(&b64(&xml), Some(REQUEST_ID), NOW, &mut cache)
        .is_ok());
}

#[test]
fn replay_cache_expiry_is_not_on_or_after_plus_skew() {
    struct Recorder(Vec<(String, i64)>);
    impl ReplayCache for Recorder {
        fn check_and_remember(&mut self, id: &str, expires: i64) -> bool {
            self.0.push((id.to_string(), expires));
            true
        }
    }
    let xml = fixture("assertion_signed");
    let mut recorder = Recorder(Vec::new());
    config()
        .consume(&b64(&xml), Some(REQUEST_ID), NOW, &mut recorder)
        .unwrap();
    assert_eq!(recorder.0, vec![(assertion_id(&xml), ISSUED + 300 + 120)]);
}

#[test]
fn authn_request_for_the_redirect_binding() {
    let config = config();
    let random = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ];
    let request = config.authn_request(&random, "state/ä&x", ISSUED);
    assert_eq!(request.id, REQUEST_ID);
    let (base, query) = request.redirect_url.split_once('?').unwrap();
    assert_eq!(base, IDP_SSO_URL);
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|p| p.split_once('=').unwrap())
        .collect();
    assert_eq!(params[0].0, "SAMLRequest");
    assert_eq!(params[1], ("RelayState", "state%2F%C3%A4%26x"));
    assert_eq!(params.len(), 2);
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(percent_decode(params[0].1))
        .unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .read_to_string(&mut xml)
        .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name(("urn:oasis:names:tc:SAML:2.0:protocol", "AuthnRequest")));
    assert_eq!(root.attribute("ID"), Some(REQUEST_ID));
    assert_eq!(root.attribute("Version"), Some("2.0"));
    assert_eq!(root.attribute("IssueInstant"), Some("2025-01-15T10:00:00Z"));
    assert_eq!(root.attribute("Destination"), Some(IDP_SSO_URL));
    assert_eq!(root.attribute("AssertionConsumerServiceURL"), Some(ACS_URL));
    assert_eq!(
        root.attribute("ProtocolBinding"),
        Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    );
    let issuer = root.first_element_child().unwrap();
    assert!(issuer.has_tag_name(("urn:oasis:names:tc:SAML:2.0:assertion", "Issuer")));
    assert_eq!(issuer.text(), Some(SP_ENTITY_ID));

    // No RelayState parameter when empty; an SSO URL with a query keeps it.
    let mut with_query = config.clone();
    with_query.idp_sso_url = format!("{IDP_SSO_URL}?tenant=1");
    let request = with_query.authn_request(&random, "", ISSUED);
    assert!(request
        .redirect_url
        .starts_with(&format!("{IDP_SSO_URL}?tenant=1&SAMLRequest=")));
    assert!(!request.redirect_url.contains("RelayState"));
}

#[test]
fn sp_metadata_names_the_acs() {
    let metadata = config().sp_metadata_xml();
    let doc = roxmltree::Document::parse(&metadata).unwrap();
    assert_eq!(doc.root_element().attribute("entityID"), Some(SP_ENTITY_ID));
    let acs = doc
        .descendants()
        .find(|n| {
            n.has_tag_name((
                "urn:oasis:names:tc:SAML:2.0:metadata",
                "AssertionConsumerService",
            ))
        })
        .unwrap();
    assert_eq!(acs.attribute("Location"), Some(ACS_URL));
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
