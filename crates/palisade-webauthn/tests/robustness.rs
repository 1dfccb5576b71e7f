#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Hostile responses: malformed base64, JSON, CBOR and truncated authenticator data give
//! errors, never panics; a deterministic random-mutation run checks that no mutated
//! assertion is accepted.

use palisade_webauthn::soft::SoftAuthenticator;
use palisade_webauthn::{base64url, Credential, RelyingParty, WebauthnError};
use serde_json::{json, Value};

const ORIGIN: &str = "http://localhost:8080";
const REG_CHALLENGE: [u8; 32] = [0x33; 32];
const AUTH_CHALLENGE: [u8; 32] = [0x44; 32];

fn rp() -> RelyingParty {
    RelyingParty {
        id: "localhost".into(),
        name: "Palisade".into(),
        origins: vec![ORIGIN.into()],
    }
}

/// A registration response, its credential, and an assertion for it.
fn fixtures() -> (Value, Credential, Value) {
    let mut key = SoftAuthenticator::new();
    key.cred_protect = Some(1);
    let options = rp().registration_options(&REG_CHALLENGE, b"user", "u", "U", &[]);
    let registration = key.register(ORIGIN, &options).unwrap();
    let credential = rp()
        .verify_registration(&REG_CHALLENGE, b"user", &registration)
        .unwrap()
        .credential;
    let options = rp().authentication_options(&AUTH_CHALLENGE, std::slice::from_ref(&credential));
    let assertion = key.authenticate(ORIGIN, &options).unwrap();
    rp().finish_authentication(&AUTH_CHALLENGE, &assertion, &credential)
        .unwrap();
    (registration, credential, assertion)
}

fn field(response: &Value, name: &str) -> Vec<u8> {
    base64url::decode(response["response"][name].as_str().unwrap()).unwrap()
}

fn with_field(response: &Value, name: &str, bytes: &[u8]) -> Value {
    let mut response = response.clone();
    response["response"][name] = Value::from(base64url::encode(bytes));
    response
}

fn register(response: &Value) -> Result<Credential, WebauthnError> {
    rp().finish_registration(&REG_CHALLENGE, response)
}

fn authenticate(response: &Value, credential: &Credential) -> Result<u32, WebauthnError> {
    rp().finish_authentication(&AUTH_CHALLENGE, response, credential)
}

/// SplitMix64: a tiny deterministic generator, so every run mutates the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// One to four random edits: bit flips, byte overwrites, insertions, deletions, truncation,
/// duplication of a slice. Always returns something different from `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    loop {
        let mut out = input.to_vec();
        for _ in 0..=rng.below(4) {
            let at = rng.below(out.len() + 1);
            match rng.below(6) {
                0 if !out.is_empty() => {
                    let i = at.min(out.len() - 1);
                    out[i] ^= 1 << rng.below(8);
                }
                1 if !out.is_empty() => {
                    let i = at.min(out.len() - 1);
                    out[i] = rng.byte();
                }
                2 => out.insert(at, rng.byte()),
                3 if !out.is_empty() => {
                    out.remove(at.min(out.len() - 1));
                }
                4 => out.truncate(at),
                _ => {
                    let end = (at + rng.below(16)).min(out.len());
                    let slice = out[at..end].to_vec();
                    out.splice(at..at, slice);
                }
            }
        }
        if out != input {
            return out;
        }
    }
}

#[test]
fn every_truncation_of_authenticator_data_is_an_error() {
    let (_, credential, assertion) = fixtures();
    let data = field(&assertion, "authenticatorData");
    for len in 0..data.len() {
        let response = with_field(&assertion, "authenticatorData", &data[..len]);
        let result = authenticate(&response, &credential);
        assert!(
            result.is_err(),
            "accepted authenticator data cut to {len} bytes"
        );
        if len == 0 {
            assert_eq!(
                result,
                Err(WebauthnError::MalformedResponse("authenticatorData"))
            );
        } else if len < 37 {
            assert!(matches!(
                result,
                Err(WebauthnError::MalformedAuthenticatorData(_))
            ));
        }
    }
    let mut longer = data.clone();
    longer.push(0);
    assert_eq!(
        authenticate(
            &with_field(&assertion, "authenticatorData", &longer),
            &credential
        ),
        Err(WebauthnError::MalformedAuthenticatorData("trailing bytes"))
    );
}

#[test]
fn every_truncation_of_the_attestation_object_is_an_error() {
    let (registration, _, _) = fixtures();
    let object = field(&registration, "attestationObject");
    for len in 0..object.len() {
        let response = with_field(&registration, "attestationObject", &object[..len]);
        assert!(
            register(&response).is_err(),
            "accepted an attestation object cut to {len} bytes"
        );
    }
    let mut longer = object.clone();
    longer.push(0xf6);
    assert_eq!(
        register(&with_field(&registration, "attestationObject", &longer)),
        Err(WebauthnError::MalformedAttestation("not one CBOR item"))
    );
}

#[test]
fn malformed_cbor_is_an_error() {
    let (registration, _, _) = fixtures();
    assert_eq!(
        register(&with_field(&registration, "attestationObject", &[])),
        Err(WebauthnError::MalformedResponse("attestationObject"))
    );
    for bytes in [
        &[0xff][..], // break outside of indefinite item
        &[0xa1][..], // map without its entry
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // huge byte string
        &[0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00][..], // map of 2^32 entries
        &[0xa0][..], // empty map: no fmt
        &[0x80][..], // an array
        &[0xa1, 0x63, b'f', b'm', b't', 0x01][..], // fmt is an integer
        &[0xd9, 0xd9, 0xf7, 0xa0][..], // tagged empty map
    ] {
        let response = with_field(&registration, "attestationObject", bytes);
        assert!(
            matches!(
                register(&response),
                Err(WebauthnError::MalformedAttestation(_))
            ),
            "{bytes:02x?}"
        );
    }
    // 100 000 nested arrays.
    let deep = vec![0x81u8; 100_000];
    assert!(register(&with_field(&registration, "attestationObject", &deep)).is_err());
    // Duplicate keys: a second "fmt".
    let mut object = field(&registration, "attestationObject");
    object[0] += 1; // map of 4 entries instead of 3
    object.extend_from_slice(&[0x63, b'f', b'm', b't', 0x64, b'n', b'o', b'n', b'e']);
    assert_eq!(
        register(&with_field(&registration, "attestationObject", &object)),
        Err(WebauthnError::MalformedAttestation(
            "not a CBOR map with unique keys"
        ))
    );
}

#[test]
fn malformed_base64_and_json_are_errors() {
    let (registration, credential, assertion) = fixtures();
    for name in ["clientDataJSON", "attestationObject"] {
        for bad in [
            json!("not base64!"),
            json!("A"),
            json!(12),
            json!(["AA"]),
            json!(null),
        ] {
            let mut response = registration.clone();
            response["response"][name] = bad;
            assert!(register(&response).is_err(), "{name}");
        }
        let mut response = registration.clone();
        response["response"].as_object_mut().unwrap().remove(name);
        assert_eq!(
            register(&response),
            Err(WebauthnError::MalformedResponse(name))
        );
    }
    for name in ["clientDataJSON", "authenticatorData", "signature"] {
        let mut response = assertion.clone();
        response["response"][name] = json!("*");
        assert_eq!(
            authenticate(&response, &credential),
            Err(WebauthnError::InvalidBase64(name))
        );
        response["response"][name] = json!("A".repeat(200_000));
        assert_eq!(
            authenticate(&response, &credential),
            Err(WebauthnError::TooLarge(name))
        );
    }
    for whole in [
        json!(null),
        json!("x"),
        json!({}),
        json!({"type": "public-key"}),
        json!({"type": "public-key", "rawId": "AQ"}),
        json!({"type": "public-key", "rawId": "AQ", "response": []}),
    ] {
        assert!(register(&whole).is_err());
        assert!(authenticate(&whole, &credential).is_err());
    }
    // clientDataJSON that is not UTF-8, not an object, or nested beyond any sense.
    for bytes in [
        &b"\xff\xfe"[..],
        b"[]",
        b"{\"type\":1}",
        &b"[".repeat(50_000),
    ] {
        let response = with_field(&assertion, "clientDataJSON", bytes);
        assert!(matches!(
            authenticate(&response, &credential),
            Err(WebauthnError::MalformedClientData(_))
        ));
    }
}

#[test]
fn random_mutations_of_assertions_are_all_refused() {
    let (_, credential, assertion) = fixtures();
    let mut rng = Rng(0x5eed_0001);
    let fields = ["clientDataJSON", "authenticatorData", "signature"];
    for round in 0..3000 {
        let name = fields[round % fields.len()];
        let original = field(&assertion, name);
        let mutated = mutate(&mut rng, &original);
        let response = with_field(&assertion, name, &mutated);
        let result = authenticate(&response, &credential);
        assert!(
            result.is_err(),
            "round {round}: mutated {name} {mutated:02x?} was accepted"
        );
    }
    // Mutating the base64 text itself.
    for round in 0..1000 {
        let name = fields[round % fields.len()];
        let text = assertion["response"][name].as_str().unwrap();
        let mutated = mutate(&mut rng, text.as_bytes());
        let mut response = assertion.clone();
        response["response"][name] = Value::from(String::from_utf8_lossy(&mutated).into_owned());
        if let Some(decoded) = base64url::decode(response["response"][name].as_str().unwrap()) {
            if decoded == field(&assertion, name) {
                continue; // e.g. padding added: the same bytes
            }
        }
        assert!(
            authenticate(&response, &credential).is_err(),
            "round {round}"
        );
    }
    // The unmutated assertion still verifies: the mutations were the only cause.
    assert_eq!(authenticate(&assertion, &credential), Ok(1));
}

#[test]
fn random_mutations_of_registrations_never_panic() {
    let (registration, credential, _) = fixtures();
    let mut rng = Rng(0x5eed_0002);
    let mut accepted = 0;
    for round in 0..3000 {
        let name = if round % 2 == 0 {
            "attestationObject"
        } else {
            "clientDataJSON"
        };
        let mutated = mutate(&mut rng, &field(&registration, name));
        let response = with_field(&registration, name, &mutated);
        if let Ok(new) = register(&response) {
            // Unsigned parts (AAGUID, counter, flags, extension values) may change under
            // "none" attestation, but never into a credential with another id.
            assert_eq!(new.id, credential.id, "round {round}");
            accepted += 1;
        }
    }
    // A mutation that leaves the CBOR and every check intact is rare.
    assert!(accepted < 600, "{accepted} mutated registrations accepted");
}

#[test]
fn random_stored_credentials_never_panic() {
    let (_, credential, assertion) = fixtures();
    let mut rng = Rng(0x5eed_0003);
    for round in 0..2000 {
        let broken = Credential {
            public_key_cose: mutate(&mut rng, &credential.public_key_cose),
            ..credential.clone()
        };
        assert!(authenticate(&assertion, &broken).is_err(), "round {round}");
        let _ = broken.algorithm();
    }
}
