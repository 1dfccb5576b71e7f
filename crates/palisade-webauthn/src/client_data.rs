//! `clientDataJSON` (WebAuthn §5.8.1): what the browser says about the ceremony.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::{base64url, WebauthnError};

#[derive(Deserialize)]
struct CollectedClientData {
    #[serde(rename = "type")]
    ty: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

/// Checks type, challenge (in constant time), origin and crossOrigin. Unknown members (such
/// as `topOrigin`, `tokenBinding` or Chrome's `other_keys_can_be_added_here`) are ignored, as
/// the specification requires; duplicate members are refused.
pub(crate) fn verify(
    bytes: &[u8],
    expected_type: &'static str,
    challenge: &[u8; 32],
    origins: &[String],
) -> Result<(), WebauthnError> {
    let data: CollectedClientData = serde_json::from_slice(bytes)
        .map_err(|e| WebauthnError::MalformedClientData(e.to_string()))?;
    if data.ty != expected_type {
        return Err(WebauthnError::WrongCeremonyType {
            expected: expected_type,
            found: data.ty,
        });
    }
    let sent = base64url::decode(&data.challenge).ok_or(WebauthnError::ChallengeMismatch)?;
    if !bool::from(sent.as_slice().ct_eq(challenge.as_slice())) {
        return Err(WebauthnError::ChallengeMismatch);
    }
    if !origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/') == data.origin)
    {
        return Err(WebauthnError::OriginNotAllowed(data.origin));
    }
    if data.cross_origin == Some(true) {
        return Err(WebauthnError::CrossOrigin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: [u8; 32] = [5; 32];

    fn origins() -> Vec<String> {
        vec!["https://palisade.example.com/".to_owned()]
    }

    fn json(ty: &str, challenge: &str, origin: &str, extra: &str) -> Vec<u8> {
        format!(r#"{{"type":"{ty}","challenge":"{challenge}","origin":"{origin}"{extra}}}"#)
            .into_bytes()
    }

    #[test]
    fn checks() {
        let c = base64url::encode(&CHALLENGE);
        let o = "https://palisade.example.com";
        let ok = |bytes: Vec<u8>| verify(&bytes, "webauthn.get", &CHALLENGE, &origins());
        ok(json("webauthn.get", &c, o, "")).unwrap();
        ok(json(
            "webauthn.get",
            &c,
            o,
            r#","crossOrigin":false,"other_keys_can_be_added_here":"x""#,
        ))
        .unwrap();
        assert!(matches!(
            ok(json("webauthn.create", &c, o, "")),
            Err(WebauthnError::WrongCeremonyType { .. })
        ));
        assert_eq!(
            ok(json("webauthn.get", &base64url::encode(&[5; 31]), o, "")),
            Err(WebauthnError::ChallengeMismatch)
        );
        assert_eq!(
            ok(json("webauthn.get", "!!", o, "")),
            Err(WebauthnError::ChallengeMismatch)
        );
        assert!(matches!(
            ok(json(
                "webauthn.get",
                &c,
                "https://palisade.example.com.evil",
                ""
            )),
            Err(WebauthnError::OriginNotAllowed(_))
        ));
        assert_eq!(
            ok(json("webauthn.get", &c, o, r#","crossOrigin":true"#)),
            Err(WebauthnError::CrossOrigin)
        );
        assert!(matches!(
            ok(json("webauthn.get", &c, o, r#","type":"webauthn.get""#)),
            Err(WebauthnError::MalformedClientData(_))
        ));
        assert!(matches!(
            ok(json("webauthn.get", &c, o, r#","crossOrigin":"yes""#)),
            Err(WebauthnError::MalformedClientData(_))
        ));
        assert!(matches!(
            ok(b"\xff".to_vec()),
            Err(WebauthnError::MalformedClientData(_))
        ));
    }
}
