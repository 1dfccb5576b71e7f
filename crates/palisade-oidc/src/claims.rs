//! ID token claim checks (OpenID Connect Core 1.0 §3.1.3.7), after the signature verified.

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::{Identity, OidcError};

/// The clock skew allowed between Palisade and the identity provider, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// What the claims are checked against.
pub(crate) struct Expected<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) now_unix_secs: i64,
}

/// A NumericDate: seconds since the epoch, as an integer or (some providers) a number with
/// a fraction, which is truncated.
fn numeric_date(value: &Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    if f.is_finite() && f.abs() < 1e15 {
        Some(f.trunc() as i64)
    } else {
        None
    }
}

fn required_date(claims: &Map<String, Value>, name: &'static str) -> Result<i64, OidcError> {
    claims
        .get(name)
        .and_then(numeric_date)
        .ok_or(OidcError::InvalidClaim(name))
}

fn optional_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, OidcError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => numeric_date(v)
            .map(Some)
            .ok_or(OidcError::InvalidClaim(name)),
    }
}

fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, OidcError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OidcError::InvalidClaim(name)),
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Checks a verified ID token's claims and returns who signed in.
pub(crate) fn validate(payload: &[u8], expected: &Expected<'_>) -> Result<Identity, OidcError> {
    let claims: Value = serde_json::from_slice(payload)
        .map_err(|_| OidcError::MalformedIdToken("claims are not JSON"))?;
    let Value::Object(claims) = claims else {
        return Err(OidcError::MalformedIdToken("claims are not a JSON object"));
    };

    // iss: exactly the configured issuer, byte for byte.
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expected.issuer => {}
        Some(Value::String(_)) => return Err(OidcError::WrongIssuer),
        _ => return Err(OidcError::InvalidClaim("iss")),
    }

    // aud: a string or an array of strings that contains the client ID.
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or(OidcError::InvalidClaim("aud"))?,
        _ => return Err(OidcError::InvalidClaim("aud")),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(OidcError::WrongAudience);
    }
    // azp: required to be the client ID when there are several audiences; when present it
    // must be the client ID in any case.
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        Some(_) => return Err(OidcError::WrongAuthorizedParty),
        None if audiences.len() > 1 => return Err(OidcError::WrongAuthorizedParty),
        None => {}
    }

    let now = expected.now_unix_secs;
    let exp = required_date(&claims, "exp")?;
    if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(OidcError::Expired);
    }
    let iat = required_date(&claims, "iat")?;
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(OidcError::IssuedInFuture);
    }
    if let Some(nbf) = optional_date(&claims, "nbf")? {
        if nbf > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(OidcError::NotYetValid);
        }
    }

    match claims.get("nonce") {
        Some(Value::String(nonce)) if ct_eq(nonce, expected.nonce) => {}
        Some(Value::String(_)) | None => return Err(OidcError::NonceMismatch),
        Some(_) => return Err(OidcError::InvalidClaim("nonce")),
    }

    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() && sub.len() <= 255 => sub.clone(),
        _ => return Err(OidcError::InvalidClaim("sub")),
    };
    let email_verified = match claims.get("email_verified") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        // Some providers send the boolean as a string.
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        Some(_) => return Err(OidcError::InvalidClaim("email_verified")),
    };
    let amr = match claims.get("amr") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(methods)) => methods
            .iter()
            .map(|m| m.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(OidcError::InvalidClaim("amr"))?,
        Some(_) => return Err(OidcError::InvalidClaim("amr")),
    };

    Ok(Identity {
        issuer: expected.issuer.to_owned(),
        subject,
        email: optional_string(&claims, "email")?,
        email_verified,
        name: optional_string(&claims, "name")?,
        preferred_username: optional_string(&claims, "preferred_username")?,
        amr,
        acr: optional_string(&claims, "acr")?,
        auth_time: optional_date(&claims, "auth_time")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            client_id: "palisade",
            nonce: "n-0S6_WzA2Mj",
            now_unix_secs: NOW,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "https://idp.example", "sub": "248289761001", "aud": "palisade",
            "exp": NOW + 300, "iat": NOW, "nonce": "n-0S6_WzA2Mj",
            "amr": ["pwd", "otp"], "acr": "urn:mace:incommon:iap:silver",
            "auth_time": NOW - 5, "email": "jane@example.com", "email_verified": "true",
        })
    }

    fn check(mutate: impl FnOnce(&mut Map<String, Value>)) -> Result<Identity, OidcError> {
        let mut c = claims();
        mutate(c.as_object_mut().unwrap());
        validate(&serde_json::to_vec(&c).unwrap(), &expected())
    }

    #[test]
    fn accepts_valid_claims() {
        let id = check(|_| {}).unwrap();
        assert_eq!(id.subject, "248289761001");
        assert_eq!(id.amr, ["pwd", "otp"]);
        assert_eq!(id.email_verified, Some(true));
        assert_eq!(id.auth_time, Some(NOW - 5));
        assert_eq!(id.acr.as_deref(), Some("urn:mace:incommon:iap:silver"));
    }

    #[test]
    fn time_claims_allow_sixty_seconds_of_skew_and_no_more() {
        assert!(check(|c| {
            c.insert("exp".into(), json!(NOW - 59));
        })
        .is_ok());
        assert!(matches!(
            check(|c| {
                c.insert("exp".into(), json!(NOW - 60));
            }),
            Err(OidcError::Expired)
        ));
        assert!(check(|c| {
            c.insert("iat".into(), json!(NOW + 60));
        })
        .is_ok());
        assert!(matches!(
            check(|c| {
                c.insert("iat".into(), json!(NOW + 61));
            }),
            Err(OidcError::IssuedInFuture)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("nbf".into(), json!(NOW + 61));
            }),
            Err(OidcError::NotYetValid)
        ));
        assert!(check(|c| {
            c.insert("exp".into(), json!((NOW + 10) as f64 + 0.5));
        })
        .is_ok());
        for name in ["exp", "iat"] {
            assert!(matches!(
                check(|c| {
                    c.remove(name);
                }),
                Err(OidcError::InvalidClaim(n)) if n == name
            ));
        }
    }

    #[test]
    fn audience_and_authorized_party() {
        assert!(check(|c| {
            c.insert("aud".into(), json!(["other", "palisade"]));
            c.insert("azp".into(), json!("palisade"));
        })
        .is_ok());
        assert!(matches!(
            check(|c| {
                c.insert("aud".into(), json!(["other", "palisade"]));
            }),
            Err(OidcError::WrongAuthorizedParty)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("azp".into(), json!("other"));
            }),
            Err(OidcError::WrongAuthorizedParty)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("aud".into(), json!(["palisade-other"]));
            }),
            Err(OidcError::WrongAudience)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("aud".into(), json!(["palisade", 5]));
            }),
            Err(OidcError::InvalidClaim("aud"))
        ));
    }

    #[test]
    fn issuer_nonce_and_subject() {
        assert!(matches!(
            check(|c| {
                c.insert("iss".into(), json!("https://idp.example/"));
            }),
            Err(OidcError::WrongIssuer)
        ));
        assert!(matches!(
            check(|c| {
                c.remove("nonce");
            }),
            Err(OidcError::NonceMismatch)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("nonce".into(), json!("n-0S6_WzA2Mk"));
            }),
            Err(OidcError::NonceMismatch)
        ));
        assert!(matches!(
            check(|c| {
                c.insert("sub".into(), json!(""));
            }),
            Err(OidcError::InvalidClaim("sub"))
        ));
        assert!(matches!(
            check(|c| {
                c.insert("amr".into(), json!("pwd"));
            }),
            Err(OidcError::InvalidClaim("amr"))
        ));
    }
}
