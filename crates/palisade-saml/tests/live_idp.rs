//! A live round trip with pysaml2 as the IdP (`tests/fixtures/idp.py`): Palisade's
//! AuthnRequest goes to pysaml2, which parses it and answers with a fresh signed response
//! that Palisade consumes. Needs `PALISADE_SAML_IDP_PYTHON` naming a Python with pysaml2 (and
//! `xmlsec1` installed): without it the test fails, saying how to set it (`scripts/test` sets
//! it to the repository's `.venv/bin/python`), rather than passing without having run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use palisade_saml::{MemoryReplayCache, SamlError};

fn idp(python: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(fixture_path("idp.py"))
        .args(args)
        .output()
        .expect("run idp.py");
    assert!(
        out.status.success(),
        "idp.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn round_trip_with_pysaml2() {
    let python = match std::env::var("PALISADE_SAML_IDP_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "PALISADE_SAML_IDP_PYTHON is not set: this test needs a Python with pysaml2 and the \
             `xmlsec1` tool. Run `scripts/test` (it installs both and sets \
             PALISADE_SAML_IDP_PYTHON=$PWD/.venv/bin/python), or by hand: \
             `apt-get install -y xmlsec1 && python3 -m venv .venv && .venv/bin/pip install pysaml2 \
             && PALISADE_SAML_IDP_PYTHON=$PWD/.venv/bin/python cargo test -p palisade-saml`"
        ),
    };
    let config = config();
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let request = config.authn_request(&[7; 16], "relay-1", now);
    let response = idp(
        &python,
        &[
            "--username",
            "carol@example.test",
            "--sp-entity-id",
            SP_ENTITY_ID,
            "--acs-url",
            ACS_URL,
            "--idp-entity-id",
            IDP_ENTITY_ID,
            "--idp-sso-url",
            IDP_SSO_URL,
            "--authn-request-url",
            &request.redirect_url,
            "--attribute",
            "mail=carol@example.test",
            "--sign-response",
        ],
    );
    let mut cache = MemoryReplayCache::new();
    let identity = config
        .consume(&response, Some(&request.id), now, &mut cache)
        .unwrap();
    assert_eq!(identity.name_id, "carol@example.test");
    assert_eq!(identity.idp, IDP_ENTITY_ID);
    assert_eq!(
        identity.attributes.get("urn:oid:0.9.2342.19200300.100.1.3"),
        Some(&vec!["carol@example.test".to_string()])
    );
    assert_eq!(
        config.consume(&response, Some(&request.id), now, &mut cache),
        Err(SamlError::Replay(identity.assertion_id))
    );
}
