//! A live round trip with pysaml2 as the IdP (`tests/fixtures/idp.py`): Palisade's
//! AuthnRequest goes to pysaml2, which parses it and answers with a fresh signed response
//! that Palisade consumes. Runs only when `PALISADE_SAML_IDP_PYTHON` names a Python with
//! pysaml2 (and `xmlsec1` is installed); otherwise it says so and passes.
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
    let Ok(python) = std::env::var("PALISADE_SAML_IDP_PYTHON") else {
        eprintln!("skipped: set PALISADE_SAML_IDP_PYTHON to a python with pysaml2 to run it");
        return;
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
