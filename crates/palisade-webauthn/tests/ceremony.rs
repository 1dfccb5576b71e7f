#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Registration and authentication ceremonies against the software authenticator: the happy
//! paths, and one failing test per check.

use ciborium::Value as Cbor;
use palisade_webauthn::soft::{self, SoftAttestation, SoftAuthenticator, SoftError};
use palisade_webauthn::{
    base64url, response_credential_id, response_user_handle, AttestationType, Credential,
    RelyingParty, WebauthnError, ES256,
};
use serde_json::{json, Value};

type CborMap = Vec<(Cbor, Cbor)>;

const ORIGIN: &str = "http://localhost:8080";
const REG_CHALLENGE: [u8; 32] = [0x11; 32];
const AUTH_CHALLENGE: [u8; 32] = [0x22; 32];
const USER: &[u8] = b"user-handle-0001";

fn rp() -> RelyingParty {
    RelyingParty {
        id: "localhost".into(),
        name: "Palisade".into(),
        origins: vec![ORIGIN.into(), "https://palisade.example.com".into()],
    }
}

fn registration_options(exclude: &[Credential]) -> Value {
    rp().registration_options(&REG_CHALLENGE, USER, "alice", "Alice Example", exclude)
}

/// Registers a credential on `authenticator` and returns it as stored.
fn register(authenticator: &mut SoftAuthenticator) -> Credential {
    let response = authenticator
        .register(ORIGIN, &registration_options(&[]))
        .unwrap();
    rp().verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap()
        .credential
}

fn assertion(authenticator: &mut SoftAuthenticator, credential: &Credential) -> Value {
    let options = rp().authentication_options(&AUTH_CHALLENGE, std::slice::from_ref(credential));
    authenticator.authenticate(ORIGIN, &options).unwrap()
}

fn finish(response: &Value, credential: &Credential) -> Result<u32, WebauthnError> {
    rp().finish_authentication(&AUTH_CHALLENGE, response, credential)
}

/// Decodes, edits and re-encodes a base64url member of `response.response`.
fn edit_field(response: &mut Value, field: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let text = response["response"][field].as_str().unwrap();
    let mut bytes = base64url::decode(text).unwrap();
    edit(&mut bytes);
    response["response"][field] = Value::from(base64url::encode(&bytes));
}

fn cbor_encode(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).unwrap();
    out
}

#[test]
fn registration_then_authentication_succeed() {
    let mut key = SoftAuthenticator::new();
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert_eq!(registration.algorithm, ES256);
    assert_eq!(registration.attestation, AttestationType::None);
    assert_eq!(registration.attestation_format, "none");
    assert!(registration.user_verified);
    assert!(!registration.backup_state);
    let credential = registration.credential;
    assert_eq!(credential.id, key.credential_ids()[0]);
    assert_eq!(credential.user_handle, USER);
    assert_eq!(credential.sign_count, 0);
    assert_eq!(&credential.aaguid, b"palisade-softkey");
    assert!(!credential.backup_eligible);
    assert_eq!(credential.algorithm(), Ok(ES256));

    // finish_registration: the same credential, without the user handle.
    let plain = rp().finish_registration(&REG_CHALLENGE, &response).unwrap();
    assert_eq!(plain.id, credential.id);
    assert_eq!(plain.public_key_cose, credential.public_key_cose);
    assert!(plain.user_handle.is_empty());

    // The credential survives storage as JSON.
    let stored: Credential =
        serde_json::from_str(&serde_json::to_string(&credential).unwrap()).unwrap();
    assert_eq!(stored, credential);

    let mut stored = stored;
    for expected in 1..=3 {
        let response = assertion(&mut key, &stored);
        assert_eq!(response_credential_id(&response).unwrap(), stored.id);
        assert_eq!(
            response_user_handle(&response).unwrap().as_deref(),
            Some(USER)
        );
        let outcome = rp()
            .verify_authentication(&AUTH_CHALLENGE, &response, &stored)
            .unwrap();
        assert!(outcome.user_verified);
        assert!(!outcome.backup_state);
        assert_eq!(outcome.sign_count, expected);
        assert_eq!(finish(&response, &stored), Ok(expected));
        stored.sign_count = outcome.sign_count;
    }

    // Also from the second configured origin (rp id still "localhost").
    let response = key
        .authenticate(
            "https://palisade.example.com",
            &rp().authentication_options(&AUTH_CHALLENGE, &[]),
        )
        .unwrap();
    assert_eq!(finish(&response, &stored), Ok(4));
}

#[test]
fn options_have_the_browser_shape() {
    let existing = Credential {
        id: vec![1, 2, 3],
        public_key_cose: vec![],
        sign_count: 0,
        user_handle: USER.to_vec(),
        backup_eligible: false,
        aaguid: [0; 16],
    };
    let options = registration_options(std::slice::from_ref(&existing));
    assert_eq!(
        options["rp"],
        json!({"id": "localhost", "name": "Palisade"})
    );
    assert_eq!(
        options["user"],
        json!({"id": base64url::encode(USER), "name": "alice", "displayName": "Alice Example"})
    );
    assert_eq!(options["challenge"], base64url::encode(&REG_CHALLENGE));
    assert_eq!(
        options["pubKeyCredParams"][0],
        json!({"type": "public-key", "alg": -7})
    );
    let algs: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert_eq!(algs, palisade_webauthn::supported_algorithms());
    assert_eq!(options["attestation"], "none");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    assert_eq!(
        options["authenticatorSelection"]["residentKey"],
        "preferred"
    );
    assert_eq!(
        options["excludeCredentials"],
        json!([{"type": "public-key", "id": "AQID"}])
    );
    assert!(options["timeout"].as_u64().unwrap() > 0);

    let options = rp().authentication_options(&AUTH_CHALLENGE, std::slice::from_ref(&existing));
    assert_eq!(options["challenge"], base64url::encode(&AUTH_CHALLENGE));
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "preferred");
    assert_eq!(
        options["allowCredentials"],
        json!([{"type": "public-key", "id": "AQID"}])
    );
    assert_eq!(
        rp().authentication_options(&AUTH_CHALLENGE, &[])["allowCredentials"],
        json!([])
    );
}

#[test]
fn excluded_authenticator_is_not_registered_twice() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);
    assert!(matches!(
        key.register(ORIGIN, &registration_options(&[credential])),
        Err(SoftError::Excluded)
    ));
}

#[test]
fn wrong_challenge() {
    let mut key = SoftAuthenticator::new();
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&[0x12; 32], &response),
        Err(WebauthnError::ChallengeMismatch)
    );
    let credential = rp().finish_registration(&REG_CHALLENGE, &response).unwrap();

    let response = assertion(&mut key, &credential);
    assert_eq!(
        rp().finish_authentication(&REG_CHALLENGE, &response, &credential),
        Err(WebauthnError::ChallengeMismatch)
    );
    // A browser that reports another challenge than the one signed for.
    key.overrides.challenge = Some(vec![0x22; 31]);
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::ChallengeMismatch)
    );
}

#[test]
fn wrong_origin() {
    let mut key = SoftAuthenticator::new();
    let phished = key
        .register(
            "https://palisade.example.com.evil",
            &registration_options(&[]),
        )
        .unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &phished),
        Err(WebauthnError::OriginNotAllowed(
            "https://palisade.example.com.evil".into()
        ))
    );
    let credential = register(&mut key);
    for origin in [
        "http://localhost:8081",
        "https://localhost:8080",
        "http://localhost",
    ] {
        let response = key
            .authenticate(origin, &rp().authentication_options(&AUTH_CHALLENGE, &[]))
            .unwrap();
        assert_eq!(
            finish(&response, &credential),
            Err(WebauthnError::OriginNotAllowed(origin.into()))
        );
    }
}

#[test]
fn cross_origin_iframe_is_refused() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);
    key.overrides.cross_origin = Some(true);
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::CrossOrigin)
    );
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::CrossOrigin)
    );
}

#[test]
fn wrong_rp_id_hash() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);

    // The authenticator was asked for another RP ID (a phishing proxy relaying the options).
    key.overrides.rp_id = Some("evil.example".into());
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::RpIdHashMismatch)
    );
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::RpIdHashMismatch)
    );

    // A relying party with another id refuses honest responses made for "localhost".
    key.overrides.rp_id = None;
    let response = assertion(&mut key, &credential);
    let other = RelyingParty {
        id: "palisade.example.com".into(),
        ..rp()
    };
    assert_eq!(
        other.finish_authentication(&AUTH_CHALLENGE, &response, &credential),
        Err(WebauthnError::RpIdHashMismatch)
    );
}

#[test]
fn ceremony_type_mismatch() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);

    key.overrides.client_data_type = Some("webauthn.get".into());
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::WrongCeremonyType {
            expected: "webauthn.create",
            found: "webauthn.get".into()
        })
    );

    key.overrides.client_data_type = Some("webauthn.create".into());
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::WrongCeremonyType {
            expected: "webauthn.get",
            found: "webauthn.create".into()
        })
    );

    key.overrides.client_data_type = Some("payment.get".into());
    let response = assertion(&mut key, &credential);
    assert!(matches!(
        finish(&response, &credential),
        Err(WebauthnError::WrongCeremonyType { .. })
    ));
}

#[test]
fn user_presence_is_required_and_verification_recorded() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);

    key.user_present = false;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::UserNotPresent)
    );
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::UserNotPresent)
    );

    // Without user verification both ceremonies pass ("preferred") and say so.
    key.user_present = true;
    key.user_verified = false;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert!(!registration.user_verified);
    let response = assertion(&mut key, &credential);
    let outcome = rp()
        .verify_authentication(&AUTH_CHALLENGE, &response, &credential)
        .unwrap();
    assert!(!outcome.user_verified);
}

#[test]
fn signature_by_another_key() {
    let mut key = SoftAuthenticator::new();
    let first = register(&mut key);
    let second = register(&mut key);
    assert_ne!(first.public_key_cose, second.public_key_cose);
    let response = assertion(&mut key, &first);
    let impostor = Credential {
        public_key_cose: second.public_key_cose.clone(),
        ..first.clone()
    };
    assert_eq!(
        finish(&response, &impostor),
        Err(WebauthnError::InvalidSignature)
    );
    assert_eq!(finish(&response, &first), Ok(1));

    // A key on another authenticator altogether, with the same credential id and user.
    let mut other = SoftAuthenticator::new();
    let foreign = register(&mut other);
    let impostor = Credential {
        public_key_cose: foreign.public_key_cose,
        ..first.clone()
    };
    let response = assertion(&mut key, &first);
    assert_eq!(
        finish(&response, &impostor),
        Err(WebauthnError::InvalidSignature)
    );
}

#[test]
fn tampered_client_data_json() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);
    let honest = assertion(&mut key, &credential);

    // Still valid JSON with the right type, challenge and origin: only the signature notices.
    let mut response = honest.clone();
    edit_field(&mut response, "clientDataJSON", |bytes| {
        bytes.pop();
        bytes.extend_from_slice(br#","extra":1}"#);
    });
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    let mut response = honest.clone();
    edit_field(&mut response, "clientDataJSON", |bytes| {
        bytes.insert(1, b' ')
    });
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    let mut response = honest.clone();
    edit_field(&mut response, "clientDataJSON", |bytes| bytes.truncate(10));
    assert!(matches!(
        finish(&response, &credential),
        Err(WebauthnError::MalformedClientData(_))
    ));

    assert_eq!(finish(&honest, &credential), Ok(1));
}

#[test]
fn tampered_authenticator_data_and_signature() {
    let mut key = SoftAuthenticator::new();
    key.user_verified = false;
    let credential = register(&mut key);
    let honest = assertion(&mut key, &credential);

    // Claiming user verification after the fact.
    let mut response = honest.clone();
    edit_field(&mut response, "authenticatorData", |bytes| {
        bytes[32] |= soft::FLAG_UV
    });
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    // Raising the counter.
    let mut response = honest.clone();
    edit_field(&mut response, "authenticatorData", |bytes| bytes[36] = 0x7f);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    let mut response = honest.clone();
    edit_field(&mut response, "signature", |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    });
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    let mut response = honest.clone();
    edit_field(&mut response, "signature", |bytes| bytes.truncate(8));
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );

    assert_eq!(finish(&honest, &credential), Ok(1));
}

#[test]
fn sign_count_regression_means_cloned() {
    let mut key = SoftAuthenticator::new();
    let mut credential = register(&mut key);
    let mut clone = key.clone();

    for _ in 0..2 {
        let response = assertion(&mut key, &credential);
        credential.sign_count = finish(&response, &credential).unwrap();
    }
    assert_eq!(credential.sign_count, 2);

    // The clone's counter is behind (1), then equal (2): both refused.
    let response = assertion(&mut clone, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::ClonedAuthenticator)
    );
    let response = assertion(&mut clone, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::ClonedAuthenticator)
    );
    // Ahead of the stored count it passes (a clone cannot be told from the original then).
    let response = assertion(&mut clone, &credential);
    assert_eq!(finish(&response, &credential), Ok(3));

    // Replaying an old, valid assertion against a newer stored count.
    let response = assertion(&mut key, &credential);
    credential.sign_count = 10;
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::ClonedAuthenticator)
    );
    assert!(key.set_sign_count(&credential.id, 11));
    let response = assertion(&mut key, &credential);
    assert_eq!(finish(&response, &credential), Ok(12));
    assert!(!key.set_sign_count(b"no such credential", 1));
}

#[test]
fn authenticators_without_counters() {
    let mut key = SoftAuthenticator::new();
    key.counter_step = 0;
    let mut credential = register(&mut key);
    for _ in 0..3 {
        let response = assertion(&mut key, &credential);
        credential.sign_count = finish(&response, &credential).unwrap();
        assert_eq!(credential.sign_count, 0);
    }
    // A stored non-zero count and a received zero: accepted, the stored count is kept.
    credential.sign_count = 5;
    let response = assertion(&mut key, &credential);
    assert_eq!(finish(&response, &credential), Ok(5));
}

#[test]
fn credential_id_and_user_handle_must_match() {
    let mut key = SoftAuthenticator::new();
    let first = register(&mut key);
    let second = register(&mut key);
    let response = assertion(&mut key, &first);
    assert_eq!(
        finish(&response, &second),
        Err(WebauthnError::CredentialIdMismatch)
    );

    let mut response = assertion(&mut key, &first);
    response["rawId"] = Value::from(base64url::encode(&second.id));
    response["id"] = Value::from(base64url::encode(&second.id));
    assert_eq!(
        finish(&response, &first),
        Err(WebauthnError::CredentialIdMismatch)
    );

    let mut response = assertion(&mut key, &first);
    response["id"] = Value::from(base64url::encode(&second.id));
    assert_eq!(
        finish(&response, &first),
        Err(WebauthnError::MalformedResponse("id and rawId differ"))
    );

    let mut response = assertion(&mut key, &first);
    response["response"]["userHandle"] = Value::from(base64url::encode(b"someone else"));
    assert_eq!(
        finish(&response, &first),
        Err(WebauthnError::UserHandleMismatch)
    );

    // Absent, null or empty user handles are fine (non-discoverable credentials).
    for handle in [Value::Null, Value::from("")] {
        let mut response = assertion(&mut key, &first);
        response["response"]["userHandle"] = handle;
        assert!(finish(&response, &first).is_ok());
    }
    let mut response = assertion(&mut key, &first);
    response["response"]
        .as_object_mut()
        .unwrap()
        .remove("userHandle");
    assert!(finish(&response, &first).is_ok());

    // A registration whose rawId is not the attested credential id.
    let mut response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    response["rawId"] = Value::from(base64url::encode(&first.id));
    response["id"] = Value::from(base64url::encode(&first.id));
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::CredentialIdMismatch)
    );
}

#[test]
fn discoverable_credential_sign_in() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);
    let response = key
        .authenticate(ORIGIN, &rp().authentication_options(&AUTH_CHALLENGE, &[]))
        .unwrap();
    // The portal finds the account by user handle and the credential by id.
    assert_eq!(
        response_user_handle(&response).unwrap().as_deref(),
        Some(USER)
    );
    assert_eq!(response_credential_id(&response).unwrap(), credential.id);
    assert_eq!(finish(&response, &credential), Ok(1));
    // Nothing registered for another RP ID.
    let other = RelyingParty {
        id: "palisade.example.com".into(),
        ..rp()
    };
    assert!(matches!(
        key.authenticate(ORIGIN, &other.authentication_options(&AUTH_CHALLENGE, &[])),
        Err(SoftError::NoCredential)
    ));
}

#[test]
fn backup_flags() {
    let mut key = SoftAuthenticator::new();
    key.backup_eligible = true;
    key.backup_state = true;
    key.counter_step = 0;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert!(registration.credential.backup_eligible);
    assert!(registration.backup_state);
    let credential = registration.credential;
    let response = assertion(&mut key, &credential);
    let outcome = rp()
        .verify_authentication(&AUTH_CHALLENGE, &response, &credential)
        .unwrap();
    assert!(outcome.backup_state);

    // BE is permanent.
    key.backup_eligible = false;
    key.backup_state = false;
    let response = assertion(&mut key, &credential);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::BackupEligibilityChanged)
    );
    // BS without BE is contradictory.
    key.backup_state = true;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::InvalidBackupFlags)
    );
}

#[test]
fn extensions_after_the_credential_key() {
    let mut key = SoftAuthenticator::new();
    key.cred_protect = Some(2);
    let credential = register(&mut key);
    assert_eq!(credential.algorithm(), Ok(ES256));
    let response = assertion(&mut key, &credential);
    assert_eq!(finish(&response, &credential), Ok(1));
}

#[test]
fn packed_self_attestation_is_verified() {
    let mut key = SoftAuthenticator::new();
    key.attestation = SoftAttestation::PackedSelf;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert_eq!(registration.attestation, AttestationType::SelfAttestation);
    assert_eq!(registration.attestation_format, "packed");

    // Edit the attestation statement and re-encode the object.
    let rewrite = |edit: &dyn Fn(&mut CborMap)| {
        let mut response = response.clone();
        edit_field(&mut response, "attestationObject", |bytes| {
            let mut object: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
            let entries = object.as_map_mut().unwrap();
            let stmt = entries
                .iter_mut()
                .find(|(k, _)| k.as_text() == Some("attStmt"))
                .unwrap();
            edit(stmt.1.as_map_mut().unwrap());
            *bytes = cbor_encode(&object);
        });
        rp().finish_registration(&REG_CHALLENGE, &response)
    };
    // Unchanged round trip still verifies.
    assert!(rewrite(&|_| {}).is_ok());
    let bad_sig = rewrite(&|stmt| {
        let sig = stmt[1].1.as_bytes_mut().unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
    });
    assert_eq!(
        bad_sig,
        Err(WebauthnError::InvalidAttestation(
            "self attestation signature"
        ))
    );
    let wrong_alg = rewrite(&|stmt| stmt[0].1 = Cbor::from(-257));
    assert!(matches!(
        wrong_alg,
        Err(WebauthnError::InvalidAttestation(_))
    ));
    let no_sig = rewrite(&|stmt| {
        stmt.remove(1);
    });
    assert!(matches!(no_sig, Err(WebauthnError::InvalidAttestation(_))));
    // With a certificate chain it is accepted unverified, like any format Palisade does not check.
    let mut response = response.clone();
    edit_field(&mut response, "attestationObject", |bytes| {
        let mut object: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        for (k, v) in object.as_map_mut().unwrap() {
            if k.as_text() == Some("attStmt") {
                v.as_map_mut().unwrap().push((
                    Cbor::from("x5c"),
                    Cbor::Array(vec![Cbor::Bytes(vec![0x30])]),
                ));
            }
        }
        *bytes = cbor_encode(&object);
    });
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert_eq!(registration.attestation, AttestationType::Unverified);
}

#[test]
fn attestation_formats() {
    let mut key = SoftAuthenticator::new();
    let honest = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let with_object = |fmt: &str, stmt: Cbor| {
        let mut response = honest.clone();
        edit_field(&mut response, "attestationObject", |bytes| {
            let object: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap();
            let auth_data = object
                .as_map()
                .unwrap()
                .iter()
                .find(|(k, _)| k.as_text() == Some("authData"))
                .unwrap()
                .1
                .clone();
            *bytes = cbor_encode(&Cbor::Map(vec![
                (Cbor::from("fmt"), Cbor::from(fmt)),
                (Cbor::from("attStmt"), stmt),
                (Cbor::from("authData"), auth_data),
            ]));
        });
        rp().verify_registration(&REG_CHALLENGE, USER, &response)
    };
    assert_eq!(
        with_object("none", Cbor::Map(vec![])).unwrap().attestation,
        AttestationType::None
    );
    assert_eq!(
        with_object(
            "none",
            Cbor::Map(vec![(Cbor::from("sig"), Cbor::Bytes(vec![1]))])
        ),
        Err(WebauthnError::InvalidAttestation(
            "none attestation with a statement"
        ))
    );
    let fido_u2f = with_object(
        "fido-u2f",
        Cbor::Map(vec![(Cbor::from("sig"), Cbor::Bytes(vec![1]))]),
    )
    .unwrap();
    assert_eq!(fido_u2f.attestation, AttestationType::Unverified);
    assert_eq!(fido_u2f.attestation_format, "fido-u2f");
    assert_eq!(
        with_object("", Cbor::Map(vec![])),
        Err(WebauthnError::MalformedAttestation("invalid fmt"))
    );
    assert_eq!(
        with_object("none", Cbor::Array(vec![])),
        Err(WebauthnError::MalformedAttestation("attStmt is not a map"))
    );
}

#[test]
fn registration_without_attested_credential_data() {
    let client_data = soft::client_data_json("webauthn.create", &REG_CHALLENGE, ORIGIN, false);
    let auth_data = soft::authenticator_data("localhost", soft::FLAG_UP, 0, None, None);
    let object = soft::attestation_object_none("none", &auth_data).unwrap();
    let response = json!({
        "id": "AQID", "rawId": "AQID", "type": "public-key",
        "response": {
            "clientDataJSON": base64url::encode(&client_data),
            "attestationObject": base64url::encode(&object),
        },
    });
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::MissingCredentialData)
    );
}

#[test]
fn unsupported_credential_algorithm() {
    // An ES384 (-35) key on P-384: well-formed COSE, but not an algorithm Palisade offers.
    let cose = cbor_encode(&Cbor::Map(vec![
        (Cbor::from(1), Cbor::from(2)),
        (Cbor::from(3), Cbor::from(-35)),
        (Cbor::from(-1), Cbor::from(2)),
        (Cbor::from(-2), Cbor::Bytes(vec![1; 48])),
        (Cbor::from(-3), Cbor::Bytes(vec![2; 48])),
    ]));
    let attested = soft::AttestedCredential {
        aaguid: [0; 16],
        credential_id: &[7; 16],
        public_key_cose: &cose,
    };
    let auth_data = soft::authenticator_data("localhost", soft::FLAG_UP, 0, Some(&attested), None);
    let client_data = soft::client_data_json("webauthn.create", &REG_CHALLENGE, ORIGIN, false);
    let object = soft::attestation_object_none("none", &auth_data).unwrap();
    let id = base64url::encode(&[7; 16]);
    let response = json!({
        "id": id, "rawId": id, "type": "public-key",
        "response": {
            "clientDataJSON": base64url::encode(&client_data),
            "attestationObject": base64url::encode(&object),
        },
    });
    assert_eq!(
        rp().finish_registration(&REG_CHALLENGE, &response),
        Err(WebauthnError::UnsupportedAlgorithm(-35))
    );

    // The authenticator refuses options that offer none of its algorithms.
    let mut options = registration_options(&[]);
    options["pubKeyCredParams"] = json!([{"type": "public-key", "alg": -35}]);
    assert!(matches!(
        SoftAuthenticator::new().register(ORIGIN, &options),
        Err(SoftError::NoSupportedAlgorithm)
    ));
}

#[test]
fn stored_credential_with_a_broken_key_is_an_error() {
    let mut key = SoftAuthenticator::new();
    let credential = register(&mut key);
    let response = assertion(&mut key, &credential);
    let broken = Credential {
        public_key_cose: vec![0xa1, 0x01],
        ..credential
    };
    assert!(matches!(
        finish(&response, &broken),
        Err(WebauthnError::MalformedPublicKey(_))
    ));
}

#[cfg(feature = "eddsa")]
#[test]
fn eddsa_credentials() {
    let mut key = SoftAuthenticator::new();
    key.algorithm = soft::SoftAlgorithm::Ed25519;
    key.attestation = SoftAttestation::PackedSelf;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert_eq!(registration.algorithm, palisade_webauthn::EDDSA);
    assert_eq!(registration.attestation, AttestationType::SelfAttestation);
    let credential = registration.credential;
    let response = assertion(&mut key, &credential);
    assert_eq!(finish(&response, &credential), Ok(1));
    let mut response = assertion(&mut key, &credential);
    edit_field(&mut response, "signature", |bytes| bytes[0] ^= 1);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );
}

#[cfg(feature = "rs256")]
#[test]
fn rs256_credentials() {
    let mut key = SoftAuthenticator::new();
    key.algorithm = soft::SoftAlgorithm::Rs256;
    let response = key.register(ORIGIN, &registration_options(&[])).unwrap();
    let registration = rp()
        .verify_registration(&REG_CHALLENGE, USER, &response)
        .unwrap();
    assert_eq!(registration.algorithm, palisade_webauthn::RS256);
    let credential = registration.credential;
    let response = assertion(&mut key, &credential);
    assert_eq!(finish(&response, &credential), Ok(1));
    let mut response = assertion(&mut key, &credential);
    edit_field(&mut response, "signature", |bytes| bytes[100] ^= 1);
    assert_eq!(
        finish(&response, &credential),
        Err(WebauthnError::InvalidSignature)
    );
}
