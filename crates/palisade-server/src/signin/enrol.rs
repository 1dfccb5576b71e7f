//! Enrolling, listing and removing second factors, and recovery codes.
//!
//! A factor is added unconfirmed and becomes usable only when the user proves it works: a
//! first TOTP code, the code sent to the address or number, or a completed passkey
//! registration. Confirming a factor, or removing one, ends the user's other sessions. A user
//! who already has a factor must have verified one in this session within the last five
//! minutes (step-up) to add or remove factors or to renew recovery codes.

use super::flow::{self, check_challenge, FactorFailure};
use super::session::{self, Session, SessionState};
use crate::error::ApiError;
use crate::portal::Actor;
use crate::AppState;
use palisade_core::otp;
use palisade_core::secret::Secret;
use palisade_core::totp::{self, TotpSecret};
use palisade_store::{FactorRecord, NewFactor, UserRecord};
use rand::RngCore;
use serde_json::{json, Value};

/// How recent a second-factor verification must be for factor changes.
pub const STEP_UP_MS: i64 = 5 * 60 * 1000;

/// The session's owner as an audit actor.
pub fn actor(session: &Session, user: &UserRecord) -> Actor {
    Actor {
        username: user.username.clone(),
        user_id: Some(user.id),
        ip: session.record.ip.clone(),
        user_agent: session.record.user_agent.clone(),
        ..Default::default()
    }
}

/// The user's confirmed factors.
pub async fn confirmed(state: &AppState, user: &UserRecord) -> Result<Vec<FactorRecord>, ApiError> {
    Ok(state
        .portal
        .store
        .list_factors(user.id)
        .await?
        .into_iter()
        .filter(|f| f.confirmed)
        .collect())
}

/// Refuses factor changes without a recent second factor, once the user has one.
pub async fn require_step_up(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
) -> Result<(), ApiError> {
    if confirmed(state, user).await?.is_empty() {
        return Ok(());
    }
    if session.stepped_up_within(state.portal.now(), STEP_UP_MS) {
        return Ok(());
    }
    Err(ApiError::Forbidden(
        "verify a second factor first (POST /api/auth/factor): changes to factors need one within the last 5 minutes".into(),
    ))
}

/// A factor as shown to its owner and administrators (never a secret).
pub fn factor_json(f: &FactorRecord) -> Value {
    json!({
        "id": f.id,
        "kind": f.kind,
        "label": f.label,
        "confirmed": f.confirmed,
        "destination": f.data.get("to").and_then(Value::as_str).map(flow::mask),
        "createdOn": f.created_on / 1000,
        "lastUsedOn": f.last_used_on.map(|t| t / 1000).unwrap_or(0),
    })
}

/// Starts TOTP enrolment: a fresh 160-bit secret, its `otpauth://` URI and a QR code (SVG).
pub async fn start_totp(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    label: &str,
) -> Result<Value, ApiError> {
    require_step_up(state, session, user).await?;
    let mut raw = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = TotpSecret::from_random(raw);
    let sealed = state
        .portal
        .keys
        .seal(secret.expose(), &format!("totp:{}", user.id));
    let f = state
        .portal
        .store
        .add_factor(
            &NewFactor {
                user_id: user.id,
                kind: "totp".into(),
                label: if label.is_empty() {
                    "Authenticator app".into()
                } else {
                    label.chars().take(64).collect()
                },
                secret_enc: Some(sealed),
                data: json!({}),
                confirmed: false,
                created_on: state.portal.now(),
            },
            None,
        )
        .await?;
    let uri = totp::otpauth_uri("Palisade", &user.username, &secret);
    let svg = qr_svg(uri.expose());
    Ok(json!({
        "factorId": f.id,
        "secret": secret.to_base32().expose(),
        "otpauthUri": uri.expose(),
        "qrSvg": svg,
    }))
}

/// An SVG QR code of `text`.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Starts email, SMS or voice enrolment: stores the unconfirmed factor and sends a code.
pub async fn start_delivery(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    kind: &str,
    to: &str,
) -> Result<Value, ApiError> {
    require_step_up(state, session, user).await?;
    let to = to.trim();
    let valid = match kind {
        "email" => {
            to.len() <= 254
                && to
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') || d == "localhost")
        }
        "sms" | "voice" => {
            to.starts_with('+')
                && (8..=16).contains(&to.len())
                && to[1..].bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    };
    if !valid {
        return Err(ApiError::BadRequest(match kind {
            "email" => "enter an email address".into(),
            "sms" | "voice" => {
                "enter the phone number in international form, e.g. +33612345678".into()
            }
            other => format!("unknown factor kind `{other}`"),
        }));
    }
    if !state.delivery.available().contains(&kind) {
        return Err(ApiError::BadRequest(format!("{kind} delivery is not configured on this portal; ask an administrator or choose another method")));
    }
    let f = state
        .portal
        .store
        .add_factor(
            &NewFactor {
                user_id: user.id,
                kind: kind.into(),
                label: flow::mask(to),
                secret_enc: None,
                data: json!({ "to": to }),
                confirmed: false,
                created_on: state.portal.now(),
            },
            None,
        )
        .await?;
    let (challenge_id, sent_to) = flow::send_code(state, session, user, &f, "enrol").await?;
    Ok(json!({ "factorId": f.id, "challengeId": challenge_id, "sentTo": sent_to }))
}

/// What confirming a factor returns: the session (moved on when it was confined to
/// enrolment) and, for a first factor, fresh recovery codes.
#[derive(Debug)]
pub struct Confirmed {
    /// A new session id, when the session moved on.
    pub new_session: Option<(String, Session)>,
    /// Recovery codes, shown once.
    pub recovery_codes: Option<Vec<Secret<String>>>,
}

/// Confirms an unconfirmed factor with its first code.
pub async fn confirm(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    factor_id: i64,
    code: &str,
    challenge_id: Option<&str>,
) -> Result<Confirmed, ApiError> {
    let f = match state.portal.store.get_factor(factor_id).await? {
        Some(f) if f.user_id == user.id && !f.confirmed => f,
        _ => {
            return Err(ApiError::NotFound(format!(
                "no unconfirmed factor {factor_id}"
            )))
        }
    };
    let now = state.portal.now();
    let first = confirmed(state, user).await?.is_empty();
    let step = match f.kind.as_str() {
        "totp" => {
            let secret = flow::open_totp(state, &f)
                .ok_or_else(|| ApiError::Internal("cannot read TOTP secret".into()))?;
            match totp::verify(&secret, code, now.div_euclid(1000), None) {
                Ok(step) => Some(step),
                Err(totp::TotpError::Malformed) => {
                    return Err(ApiError::BadRequest(
                        "enter the 6-digit code shown by your authenticator app".into(),
                    ))
                }
                Err(_) => {
                    audit_failure(state, session, user, &f).await?;
                    return Err(ApiError::BadRequest(
                        "wrong code: check the time on your phone and try the next code".into(),
                    ));
                }
            }
        }
        "email" | "sms" | "voice" => {
            let id = challenge_id
                .ok_or_else(|| ApiError::BadRequest("`challengeId` is required".into()))?;
            match check_challenge(state, session, user, id, "enrol", code).await {
                Ok(_) => None,
                Err(FactorFailure::Malformed(m)) => return Err(ApiError::BadRequest(m)),
                Err(FactorFailure::Store(e)) => return Err(e),
                Err(FactorFailure::Wrong(m)) => {
                    audit_failure(state, session, user, &f).await?;
                    return Err(ApiError::BadRequest(m));
                }
                Err(FactorFailure::Exhausted) => {
                    audit_failure(state, session, user, &f).await?;
                    return Err(ApiError::BadRequest(
                        "too many wrong codes; start again".into(),
                    ));
                }
            }
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "factor kind `{other}` is confirmed at registration"
            )))
        }
    };
    let event = actor(session, user).event(
        now,
        "mfa.enrol",
        format!(
            "{} enrolled {} {} factor ({})",
            user.username,
            if f.kind == "email" { "an" } else { "a" },
            f.kind,
            f.label
        ),
    );
    state
        .portal
        .store
        .confirm_factor(f.id, step, &session.record.id_hash, event)
        .await?;
    finish_enrolment(state, session, user, first).await
}

async fn audit_failure(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    f: &FactorRecord,
) -> Result<(), ApiError> {
    let event = actor(session, user).event(
        state.portal.now(),
        "mfa.enrol_failure",
        format!(
            "Wrong code while enrolling a {} factor for {}",
            f.kind, user.username
        ),
    );
    if state.audit.record(event).await {
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}

async fn finish_enrolment(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    first: bool,
) -> Result<Confirmed, ApiError> {
    let recovery_codes = if first {
        Some(new_recovery_codes(state, session, user).await?)
    } else {
        None
    };
    // Enrolling proves the factor: the session counts as stepped up, and one confined to
    // enrolment is released.
    let next = match session.state {
        SessionState::MustEnrol if user.force_password_change => SessionState::PasswordChange,
        SessionState::MustEnrol => SessionState::Active,
        s => s,
    };
    let method = format!("{}+enrolment", session.record.auth_method);
    let new_session = Some(session::step_up(&state.portal, session, next, &method, true).await?);
    Ok(Confirmed {
        new_session,
        recovery_codes,
    })
}

/// Replaces the user's recovery codes by ten new ones, returned once.
pub async fn new_recovery_codes(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
) -> Result<Vec<Secret<String>>, ApiError> {
    let mut codes = Vec::with_capacity(otp::RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(otp::RECOVERY_CODES);
    for _ in 0..otp::RECOVERY_CODES {
        let mut b = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let code = otp::recovery_code(b);
        let normal = otp::normalise_recovery_code(code.expose()).unwrap_or_default();
        hashes.push(hex::encode(otp::code_hash(
            &state.portal.keys.code_key(),
            &normal,
        )));
        codes.push(code);
    }
    let event = actor(session, user).event(
        state.portal.now(),
        "mfa.recovery_codes",
        format!("New recovery codes for {}", user.username),
    );
    state
        .portal
        .store
        .replace_recovery_codes(user.id, &hashes, event)
        .await?;
    Ok(codes)
}

/// Removes one of the user's own factors.
pub async fn remove(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    factor_id: i64,
) -> Result<(), ApiError> {
    let f = match state.portal.store.get_factor(factor_id).await? {
        Some(f) if f.user_id == user.id => f,
        _ => return Err(ApiError::NotFound(format!("no factor {factor_id}"))),
    };
    if f.confirmed {
        require_step_up(state, session, user).await?;
    }
    let event = actor(session, user).event(
        state.portal.now(),
        "mfa.remove",
        format!(
            "{} removed a {} factor ({})",
            user.username, f.kind, f.label
        ),
    );
    state
        .portal
        .store
        .delete_factor(f.id, &session.record.id_hash, event)
        .await?;
    Ok(())
}

fn webauthn_rp(state: &AppState) -> Result<&palisade_webauthn::RelyingParty, ApiError> {
    state.webauthn.as_ref().ok_or_else(|| {
        ApiError::BadRequest(
            "passkeys need the portal's public URL (`public_url` in the configuration)".into(),
        )
    })
}

fn challenge_bytes() -> [u8; 32] {
    let mut c = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut c);
    c
}

fn credential_of(f: &FactorRecord) -> Option<palisade_webauthn::Credential> {
    serde_json::from_value(f.data.get("credential")?.clone()).ok()
}

/// Passkey registration options; the challenge is kept in the session.
pub async fn webauthn_register_options(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
) -> Result<Value, ApiError> {
    require_step_up(state, session, user).await?;
    let rp = webauthn_rp(state)?;
    let challenge = challenge_bytes();
    let existing: Vec<_> = state
        .portal
        .store
        .list_factors(user.id)
        .await?
        .iter()
        .filter_map(credential_of)
        .collect();
    let handle = user.id.to_be_bytes();
    let options = rp.registration_options(
        &challenge,
        &handle,
        &user.username,
        &user.username,
        &existing,
    );
    remember_challenge(state, session, "webauthnRegister", &challenge).await?;
    Ok(options)
}

async fn remember_challenge(
    state: &AppState,
    session: &Session,
    key: &str,
    challenge: &[u8; 32],
) -> Result<(), ApiError> {
    let mut record = session.record.clone();
    if let Some(o) = record.data.as_object_mut() {
        o.insert(key.into(), json!(hex::encode(challenge)));
    }
    state.portal.store.update_session(&record).await?;
    Ok(())
}

fn take_challenge(session: &Session, key: &str) -> Option<[u8; 32]> {
    let text = session.record.data.get(key)?.as_str()?;
    let mut c = [0u8; 32];
    hex::decode_to_slice(text, &mut c).ok()?;
    Some(c)
}

/// Completes a passkey registration.
pub async fn webauthn_register(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    response: &Value,
    label: &str,
) -> Result<Confirmed, ApiError> {
    require_step_up(state, session, user).await?;
    let rp = webauthn_rp(state)?;
    let challenge = take_challenge(session, "webauthnRegister")
        .ok_or_else(|| ApiError::BadRequest("request registration options first".into()))?;
    let reg = rp
        .verify_registration(&challenge, &user.id.to_be_bytes(), response)
        .map_err(|e| ApiError::BadRequest(format!("passkey registration refused: {e}")))?;
    let first = confirmed(state, user).await?.is_empty();
    let now = state.portal.now();
    let event = actor(session, user).event(
        now,
        "mfa.enrol",
        format!(
            "{} enrolled a passkey ({})",
            user.username,
            if label.is_empty() { "passkey" } else { label }
        ),
    );
    let f = state
        .portal
        .store
        .add_factor(
            &NewFactor {
                user_id: user.id,
                kind: "webauthn".into(),
                label: if label.is_empty() {
                    "Passkey".into()
                } else {
                    label.chars().take(64).collect()
                },
                secret_enc: None,
                data: json!({ "credential": reg.credential }),
                confirmed: false,
                created_on: now,
            },
            None,
        )
        .await?;
    state
        .portal
        .store
        .confirm_factor(f.id, None, &session.record.id_hash, event)
        .await?;
    finish_enrolment(state, session, user, first).await
}

/// Passkey sign-in options for a session awaiting its factor.
pub async fn webauthn_signin_options(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
) -> Result<Value, ApiError> {
    let rp = webauthn_rp(state)?;
    let creds: Vec<_> = confirmed(state, user)
        .await?
        .iter()
        .filter(|f| f.kind == "webauthn")
        .filter_map(credential_of)
        .collect();
    if creds.is_empty() {
        return Err(ApiError::BadRequest(
            "no passkey is enrolled; use another method".into(),
        ));
    }
    let challenge = challenge_bytes();
    remember_challenge(state, session, "webauthnSignin", &challenge).await?;
    Ok(rp.authentication_options(&challenge, &creds))
}

/// Verifies a passkey assertion against the user's passkeys.
pub async fn verify_webauthn_assertion(
    state: &AppState,
    session: &Session,
    _user: &UserRecord,
    factors: &[FactorRecord],
    response: &Value,
) -> Result<(), FactorFailure> {
    let rp = webauthn_rp(state).map_err(FactorFailure::Store)?;
    let challenge = take_challenge(session, "webauthnSignin")
        .ok_or_else(|| FactorFailure::Malformed("request passkey options first".into()))?;
    let id = palisade_webauthn::response_credential_id(response)
        .map_err(|e| FactorFailure::Malformed(e.to_string()))?;
    let Some((f, cred)) = factors
        .iter()
        .filter(|f| f.kind == "webauthn")
        .filter_map(|f| credential_of(f).map(|c| (f, c)))
        .find(|(_, c)| c.id == id)
    else {
        return Err(FactorFailure::Wrong("unknown passkey".into()));
    };
    let count = rp
        .finish_authentication(&challenge, response, &cred)
        .map_err(|e| FactorFailure::Wrong(format!("passkey refused: {e}")))?;
    let mut updated = cred.clone();
    updated.sign_count = count;
    let mut data = f.data.clone();
    if let Some(o) = data.as_object_mut() {
        o.insert("credential".into(), json!(updated));
    }
    state
        .portal
        .store
        .touch_factor(f.id, state.portal.now())
        .await
        .map_err(|e| FactorFailure::Store(e.into()))?;
    state
        .portal
        .store
        .set_factor_data(f.id, &data)
        .await
        .map_err(|e| FactorFailure::Store(e.into()))?;
    Ok(())
}
