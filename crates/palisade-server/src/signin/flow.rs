//! The sign-in steps: password, second factor, code delivery, password change, sign-out.
//! Every outcome, good or bad, is an audit entry; failures count toward the account lockout
//! (kept in the database, so a restart does not reset it).

use super::session::{self, Session, SessionState};
use super::{requirement, Origin};
use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::settings::SigninSettings;
use crate::AppState;
use palisade_core::lockout::LockState;
use palisade_core::mfa::Requirement;
use palisade_core::otp::{self, Challenge, ChallengeError, SendBudget};
use palisade_core::totp::{self, TotpSecret};
use palisade_store::{ChallengeRecord, FactorRecord, LoginState, UserRecord};
use rand::RngCore;
use serde::Deserialize;

/// Wrong second-factor codes that void a sign-in attempt.
pub const MAX_FACTOR_FAILURES: i64 = 5;

/// The generic answer to a failed password step (it does not say which part was wrong).
fn bad_credentials() -> ApiError {
    ApiError::Unauthenticated("invalid username or password".into())
}

fn actor_for(user: Option<&UserRecord>, name: &str, origin: &Origin) -> Actor {
    Actor {
        username: user
            .map(|u| u.username.clone())
            .unwrap_or_else(|| name.chars().take(64).collect()),
        user_id: user.map(|u| u.id),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        method: "POST".into(),
        path: "/api/auth".into(),
        ..Default::default()
    }
}

async fn audit(
    state: &AppState,
    actor: &Actor,
    action: &str,
    description: String,
) -> Result<(), ApiError> {
    let event = actor.event(state.portal.now(), action, description);
    if state.audit.record(event).await {
        Ok(())
    } else {
        Err(ApiError::Unavailable)
    }
}

fn lock_of(s: &LoginState) -> LockState {
    LockState {
        failures: u32::try_from(s.failures).unwrap_or(u32::MAX),
        locked_until_ms: s.locked_until,
        lock_count: u32::try_from(s.lock_count).unwrap_or(u32::MAX),
    }
}

fn store_of(l: &LockState, sends: Vec<i64>) -> LoginState {
    LoginState {
        failures: i64::from(l.failures),
        locked_until: l.locked_until_ms,
        lock_count: i64::from(l.lock_count),
        sends,
    }
}

/// Refuses when the account is locked.
async fn check_lock(state: &AppState, user: &UserRecord, actor: &Actor) -> Result<(), ApiError> {
    let ls = state.portal.store.get_login_state(user.id).await?;
    if let Some(secs) = lock_of(&ls).locked(state.portal.now()) {
        audit(
            state,
            actor,
            "signin.locked",
            format!(
                "Sign-in refused for {}: account locked for {secs} s",
                user.username
            ),
        )
        .await?;
        return Err(ApiError::Forbidden(format!(
            "the account is locked after repeated failures; try again in {} minute(s)",
            (secs + 59) / 60
        )));
    }
    Ok(())
}

/// Counts a failure toward the lockout; audits a new lock.
async fn count_failure(state: &AppState, user: &UserRecord, actor: &Actor) -> Result<(), ApiError> {
    let now = state.portal.now();
    // Read, count and write under the store's write lock: concurrent failures all count.
    let (before, after) = state
        .portal
        .store
        .modify_login_state(
            user.id,
            Box::new(move |ls| store_of(&lock_of(ls).on_failure(now), ls.sends.clone())),
        )
        .await?;
    let (before, after) = (lock_of(&before), lock_of(&after));
    if after.locked(now).is_some() && before.locked(now).is_none() {
        let minutes = (after.locked_until_ms.unwrap_or(now) - now + 59_999) / 60_000;
        audit(
            state,
            actor,
            "signin.lockout",
            format!(
                "Account {} locked for {minutes} minute(s) after repeated failures",
                user.username
            ),
        )
        .await?;
        let ended = state.portal.store.delete_user_sessions(user.id).await?;
        if ended > 0 {
            tracing::info!(user = %user.username, ended, "sessions ended by lockout");
        }
    }
    Ok(())
}

async fn reset_failures(state: &AppState, user: &UserRecord) -> Result<(), ApiError> {
    let ls = state.portal.store.get_login_state(user.id).await?;
    if ls.failures != 0 || ls.locked_until.is_some() || ls.lock_count != 0 {
        state
            .portal
            .store
            .modify_login_state(
                user.id,
                Box::new(|ls| store_of(&lock_of(ls).on_success(), ls.sends.clone())),
            )
            .await?;
    }
    Ok(())
}

/// Whether the support account's window is open now.
pub fn support_window_open(user: &UserRecord, now_ms: i64) -> bool {
    !user.is_support() || user.support_until.is_some_and(|t| t > now_ms)
}

/// The state a session reaches once the user is who they claim (password, and the factor
/// when one is due): confined to enrolment, to a password change, or signed in.
async fn settled_state(
    state: &AppState,
    user: &UserRecord,
    settings: &SigninSettings,
) -> Result<(SessionState, Requirement), ApiError> {
    let roles = state.portal.store.list_roles().await?;
    let has = super::has_factor(&state.portal, user.id).await?;
    let req = requirement(user, &roles, has, settings, state.portal.now());
    let s = if req.must_enrol() {
        SessionState::MustEnrol
    } else if user.force_password_change {
        SessionState::PasswordChange
    } else {
        SessionState::Active
    };
    Ok((s, req))
}

/// What the password step produced.
#[derive(Debug)]
pub struct Started {
    /// The new session id (for the cookie).
    pub id: String,
    /// The session.
    pub session: Session,
    /// Confirmed factors the user may use now (when a factor is due).
    pub factors: Vec<FactorRecord>,
}

/// Step one: username and password.
pub async fn password_step(
    state: &AppState,
    username: &str,
    password: &str,
    origin: &Origin,
) -> Result<Started, ApiError> {
    let now = state.portal.now();
    let ip_decision = state.signin_ip_limiter.hit(&origin.ip, now);
    if !ip_decision.allowed {
        let actor = actor_for(None, username, origin);
        audit(
            state,
            &actor,
            "signin.ratelimited",
            format!("Sign-in attempts from {} rate limited", origin.ip),
        )
        .await?;
        return Err(ApiError::RateLimited {
            limit: ip_decision.limit,
            window_secs: ip_decision.window_secs,
            retry_after: ip_decision.reset_secs,
        });
    }
    let user = state.portal.store.get_user_by_name(username.trim()).await?;
    let actor = actor_for(user.as_ref(), username, origin);
    let Some(user) = user else {
        // Same cost as a real check, so timing does not reveal which names exist.
        let _ = state.portal.hashing.hash(password.to_string()).await;
        audit(
            state,
            &actor,
            "signin.failure",
            "Sign-in failed: unknown username".into(),
        )
        .await?;
        return Err(bad_credentials());
    };
    let refuse = |why: &str| format!("Sign-in refused for {}: {why}", user.username);
    if user.apionly {
        audit(
            state,
            &actor,
            "signin.failure",
            refuse("API-only users cannot sign in"),
        )
        .await?;
        return Err(bad_credentials());
    }
    if user.is_sso() {
        audit(
            state,
            &actor,
            "signin.failure",
            refuse("single sign-on user tried a password"),
        )
        .await?;
        return Err(ApiError::Forbidden(
            "this account signs in through single sign-on".into(),
        ));
    }
    if !support_window_open(&user, now) {
        audit(
            state,
            &actor,
            "signin.failure",
            refuse("the support account is not enabled").to_string() + " [support access]",
        )
        .await?;
        return Err(bad_credentials());
    }
    if user.is_support() {
        // The support account's status is governed by its window, not by `status`.
    } else if !user.is_active() {
        audit(state, &actor, "signin.failure", refuse("account suspended")).await?;
        return Err(bad_credentials());
    }
    check_lock(state, &user, &actor).await?;
    let Some(phc) = user.password_hash.clone() else {
        let _ = state.portal.hashing.hash(password.to_string()).await;
        audit(state, &actor, "signin.failure", refuse("no password set")).await?;
        return Err(bad_credentials());
    };
    if !state.portal.hashing.verify(password.to_string(), phc).await {
        audit(state, &actor, "signin.failure", refuse("wrong password")).await?;
        count_failure(state, &user, &actor).await?;
        return Err(bad_credentials());
    }
    let settings = SigninSettings::load(&state.portal).await?;
    if settings.restrict_to_sso && !settings.is_break_glass(&user.username) && !user.is_support() {
        audit(
            state,
            &actor,
            "signin.failure",
            refuse("password sign-in is restricted to SSO"),
        )
        .await?;
        return Err(ApiError::Forbidden(
            "password sign-in is restricted to single sign-on; sign in through your identity provider".into(),
        ));
    }
    let factors: Vec<FactorRecord> = state
        .portal
        .store
        .list_factors(user.id)
        .await?
        .into_iter()
        .filter(|f| f.confirmed)
        .collect();
    let (next, req) = if factors.is_empty() {
        settled_state(state, &user, &settings).await?
    } else {
        (SessionState::AwaitFactor, Requirement::Satisfied)
    };
    let (id, session) = session::start(
        &state.portal,
        user.id,
        next,
        "password",
        &origin.ip,
        &origin.user_agent,
        false,
    )
    .await?;
    let what = match next {
        SessionState::AwaitFactor => "password accepted; second factor due".to_string(),
        SessionState::MustEnrol => {
            "password accepted; enrolment of a second factor required (deadline passed)".to_string()
        }
        SessionState::PasswordChange => {
            "password accepted; the one-time password must be changed".to_string()
        }
        SessionState::Active => match req {
            Requirement::Grace { deadline_ms } => format!(
                "signed in with a password; second factor due by {}",
                crate::wire::utc_text(deadline_ms)
            ),
            _ => "signed in with a password".to_string(),
        },
    };
    audit(
        state,
        &actor,
        "signin.password",
        format!("{} for {}", capitalise(&what), user.username),
    )
    .await?;
    if next != SessionState::AwaitFactor {
        reset_failures(state, &user).await?;
        record_login(&state.portal, &user).await?;
    }
    Ok(Started {
        id,
        session,
        factors,
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

async fn record_login(portal: &Portal, user: &UserRecord) -> Result<(), ApiError> {
    let change = palisade_store::UserChange {
        last_login_on: Some(portal.now()),
        ..Default::default()
    };
    let audit = Actor::system("signin").event(
        portal.now(),
        "user.login",
        format!("Recorded sign-in time of {}", user.username),
    );
    portal.store.update_user(user.id, change, audit).await?;
    Ok(())
}

/// The session's user as of now, where the session came from, and the audit actor.
async fn session_user(
    state: &AppState,
    session: &Session,
) -> Result<(UserRecord, Origin, Actor), ApiError> {
    let user = state
        .portal
        .store
        .get_user(session.record.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("session ended".into()))?;
    let origin = Origin {
        ip: session.record.ip.clone(),
        user_agent: session.record.user_agent.clone(),
    };
    let actor = actor_for(Some(&user), &user.username, &origin);
    Ok((user, origin, actor))
}

/// A presented second factor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FactorInput {
    /// `totp`, `email`, `sms`, `voice`, `recovery` or `webauthn`.
    pub method: String,
    /// The code (not for `webauthn`).
    #[serde(default)]
    pub code: Option<String>,
    /// The challenge the code answers (`email`, `sms`, `voice`).
    #[serde(default)]
    pub challenge_id: Option<String>,
    /// The WebAuthn assertion.
    #[serde(default)]
    pub credential: Option<serde_json::Value>,
}

/// Verifies a presented factor for `user` within `session`; returns the method name.
pub async fn verify_factor(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    input: &FactorInput,
) -> Result<String, FactorFailure> {
    let now = state.portal.now();
    let factors: Vec<FactorRecord> = state
        .portal
        .store
        .list_factors(user.id)
        .await
        .map_err(store_err)?
        .into_iter()
        .filter(|f| f.confirmed)
        .collect();
    let code = input.code.as_deref().unwrap_or_default();
    match input.method.as_str() {
        "totp" => {
            for f in factors.iter().filter(|f| f.kind == "totp") {
                let Some(secret) = open_totp(state, f) else {
                    continue;
                };
                match totp::verify(&secret, code, now.div_euclid(1000), f.last_used_step) {
                    Ok(step) => {
                        if state
                            .portal
                            .store
                            .consume_totp_step(f.id, step, now)
                            .await
                            .map_err(store_err)?
                        {
                            return Ok("totp".into());
                        }
                        return Err(FactorFailure::Wrong(
                            "this code was already used; wait for the next one".into(),
                        ));
                    }
                    Err(totp::TotpError::Replayed) => {
                        return Err(FactorFailure::Wrong(
                            "this code was already used; wait for the next one".into(),
                        ))
                    }
                    Err(totp::TotpError::Malformed) => {
                        return Err(FactorFailure::Malformed(
                            "enter the 6-digit code from your authenticator app".into(),
                        ))
                    }
                    Err(_) => {}
                }
            }
            Err(FactorFailure::Wrong("wrong code".into()))
        }
        "email" | "sms" | "voice" => {
            let id = input.challenge_id.as_deref().ok_or_else(|| {
                FactorFailure::Malformed("`challengeId` is required; request a code first".into())
            })?;
            check_challenge(state, session, user, id, "signin", code).await?;
            Ok(input.method.clone())
        }
        "recovery" => {
            let normal = otp::normalise_recovery_code(code).ok_or_else(|| {
                FactorFailure::Malformed("a recovery code has 16 hexadecimal digits".into())
            })?;
            let hash = hex::encode(otp::code_hash(&state.portal.keys.code_key(), &normal));
            let actor = actor_for(
                Some(user),
                &user.username,
                &Origin {
                    ip: session.record.ip.clone(),
                    user_agent: session.record.user_agent.clone(),
                },
            );
            let event = actor.event(
                now,
                "mfa.recovery_used",
                format!("Recovery code used by {}", user.username),
            );
            if state
                .portal
                .store
                .use_recovery_code(user.id, &hash, now, event)
                .await
                .map_err(store_err)?
            {
                Ok("recovery".into())
            } else {
                Err(FactorFailure::Wrong(
                    "unknown or already used recovery code".into(),
                ))
            }
        }
        "webauthn" => {
            let cred = input
                .credential
                .as_ref()
                .ok_or_else(|| FactorFailure::Malformed("`credential` is required".into()))?;
            super::enrol::verify_webauthn_assertion(state, session, user, &factors, cred).await?;
            Ok("webauthn".into())
        }
        other => Err(FactorFailure::Malformed(format!(
            "unknown method `{other}` (use totp, email, sms, voice, recovery or webauthn)"
        ))),
    }
}

/// Why a factor was not accepted.
#[derive(Debug)]
pub enum FactorFailure {
    /// Input of the wrong shape (not counted as a failure).
    Malformed(String),
    /// A wrong, replayed or expired code (counted).
    Wrong(String),
    /// The challenge is void after too many wrong codes (counted).
    Exhausted,
    /// Storage failed.
    Store(ApiError),
}

fn store_err(e: palisade_store::StoreError) -> FactorFailure {
    FactorFailure::Store(e.into())
}

/// The TOTP secret of a factor.
pub fn open_totp(state: &AppState, f: &FactorRecord) -> Option<TotpSecret> {
    let sealed = f.secret_enc.as_deref()?;
    let raw = state
        .portal
        .keys
        .open(sealed, &format!("totp:{}", f.user_id))
        .ok()?;
    TotpSecret::from_bytes(raw.expose()).ok()
}

/// Checks a code against a stored challenge bound to this session and user.
pub async fn check_challenge(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    id: &str,
    purpose: &str,
    code: &str,
) -> Result<ChallengeRecord, FactorFailure> {
    let now = state.portal.now();
    let key = state.portal.keys.code_key();
    let owner = (user.id, session.record.id_hash.clone(), purpose.to_string());
    let outcome: std::sync::Arc<std::sync::Mutex<Option<Result<(), ChallengeError>>>> =
        Default::default();
    let out = outcome.clone();
    let code = code.to_string();
    // Checked and counted under the store's write lock: concurrent guesses each count, and a
    // code is accepted once.
    let changed = state
        .portal
        .store
        .modify_challenge(
            id,
            Box::new(move |c| {
                if (c.user_id, &c.session_hash, &c.purpose) != (owner.0, &owner.1, &owner.2) {
                    return;
                }
                let mut hash = [0u8; 32];
                if hex::decode_to_slice(&c.code_hash, &mut hash).is_err() {
                    return;
                }
                let mut ch = Challenge {
                    code_hash: hash,
                    expires_at_ms: c.expires_on,
                    attempts: u32::try_from(c.attempts).unwrap_or(u32::MAX),
                    used: c.used,
                };
                let result = ch.check(&key, &code, now);
                c.attempts = i64::from(ch.attempts);
                c.used = ch.used;
                if let Ok(mut slot) = out.lock() {
                    *slot = Some(result);
                }
            }),
        )
        .await
        .map_err(store_err)?;
    let result = outcome.lock().ok().and_then(|mut o| o.take());
    match (changed, result) {
        (Some((_, after)), Some(Ok(()))) => Ok(after),
        (_, Some(Err(ChallengeError::Malformed))) => Err(FactorFailure::Malformed(
            "enter the 6-digit code you received".into(),
        )),
        (_, Some(Err(ChallengeError::Exhausted))) => Err(FactorFailure::Exhausted),
        (_, Some(Err(e))) => Err(FactorFailure::Wrong(e.to_string())),
        _ => Err(FactorFailure::Wrong(
            "unknown challenge; request a new code".into(),
        )),
    }
}

/// Step two: the second factor. On success the session moves on under a new id.
pub async fn factor_step(
    state: &AppState,
    session: &Session,
    input: &FactorInput,
) -> Result<(String, Session), ApiError> {
    let (user, origin, actor) = session_user(state, session).await?;
    // Codes share the per-address budget of password attempts.
    let decision = state.signin_ip_limiter.hit(&origin.ip, state.portal.now());
    if !decision.allowed {
        audit(
            state,
            &actor,
            "signin.ratelimited",
            format!("Second-factor attempts from {} rate limited", origin.ip),
        )
        .await?;
        return Err(ApiError::RateLimited {
            limit: decision.limit,
            window_secs: decision.window_secs,
            retry_after: decision.reset_secs,
        });
    }
    check_lock(state, &user, &actor).await?;
    match verify_factor(state, session, &user, input).await {
        Ok(method) => {
            reset_failures(state, &user).await?;
            let settings = SigninSettings::load(&state.portal).await?;
            let (next, _) = settled_state(state, &user, &settings).await?;
            let (id, s) = session::step_up(
                &state.portal,
                session,
                next,
                &format!("password+{method}"),
                true,
            )
            .await?;
            audit(
                state,
                &actor,
                "signin.success",
                format!("Signed in {} with password and {method}", user.username),
            )
            .await?;
            record_login(&state.portal, &user).await?;
            Ok((id, s))
        }
        Err(FactorFailure::Malformed(m)) => Err(ApiError::BadRequest(m)),
        Err(FactorFailure::Store(e)) => Err(e),
        Err(failure) => {
            let message = match &failure {
                FactorFailure::Wrong(m) => m.clone(),
                _ => "too many wrong codes for this challenge; request a new code".into(),
            };
            audit(
                state,
                &actor,
                "signin.factor_failure",
                format!(
                    "Second factor ({}) refused for {}: {message}",
                    input.method, user.username
                ),
            )
            .await?;
            count_failure(state, &user, &actor).await?;
            // Five wrong codes void the sign-in attempt; counted under the write lock.
            let counted = state
                .portal
                .store
                .modify_session(
                    &session.record.id_hash,
                    Box::new(|r| {
                        let n = r
                            .data
                            .get("factorFailures")
                            .and_then(serde_json::Value::as_i64)
                            .unwrap_or(0)
                            + 1;
                        if let Some(obj) = r.data.as_object_mut() {
                            obj.insert("factorFailures".into(), n.into());
                        }
                    }),
                )
                .await?;
            let failures = counted
                .as_ref()
                .and_then(|r| {
                    r.data
                        .get("factorFailures")
                        .and_then(serde_json::Value::as_i64)
                })
                .unwrap_or(MAX_FACTOR_FAILURES);
            if failures >= MAX_FACTOR_FAILURES || matches!(failure, FactorFailure::Exhausted) {
                state
                    .portal
                    .store
                    .delete_session(&session.record.id_hash)
                    .await?;
                audit(
                    state,
                    &actor,
                    "signin.voided",
                    format!(
                        "Sign-in attempt of {} voided after {failures} wrong codes",
                        user.username
                    ),
                )
                .await?;
                return Err(ApiError::Unauthenticated(
                    "too many wrong codes; sign in again".into(),
                ));
            }
            Err(ApiError::Unauthenticated(message))
        }
    }
}

/// Sends a sign-in code by email, SMS or voice to the user's confirmed factor of that kind.
pub async fn send_signin_code(
    state: &AppState,
    session: &Session,
    channel: &str,
) -> Result<(String, String), ApiError> {
    let user = state
        .portal
        .store
        .get_user(session.record.user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("session ended".into()))?;
    let factor = state
        .portal
        .store
        .list_factors(user.id)
        .await?
        .into_iter()
        .find(|f| f.confirmed && f.kind == channel)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("no confirmed {channel} factor; use another method"))
        })?;
    send_code(state, session, &user, &factor, "signin").await
}

/// Sends a one-time code for `factor` (sign-in or enrolment); returns (challenge id, masked
/// destination).
pub async fn send_code(
    state: &AppState,
    session: &Session,
    user: &UserRecord,
    factor: &FactorRecord,
    purpose: &str,
) -> Result<(String, String), ApiError> {
    let now = state.portal.now();
    let origin = Origin {
        ip: session.record.ip.clone(),
        user_agent: session.record.user_agent.clone(),
    };
    let actor = actor_for(Some(user), &user.username, &origin);
    let refused: std::sync::Arc<std::sync::Mutex<Option<i64>>> = Default::default();
    let slot = refused.clone();
    // The budget is read and spent under the store's write lock.
    state
        .portal
        .store
        .modify_login_state(
            user.id,
            Box::new(move |ls| {
                let mut budget = SendBudget {
                    sent_ms: ls.sends.clone(),
                };
                if let Err(wait) = budget.try_send(now) {
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(wait.0);
                    }
                }
                palisade_store::LoginState {
                    sends: budget.sent_ms,
                    ..ls.clone()
                }
            }),
        )
        .await?;
    let wait = refused.lock().ok().and_then(|w| *w);
    if let Some(wait) = wait {
        audit(
            state,
            &actor,
            "mfa.send_limited",
            format!("Code delivery to {} refused: send limit", user.username),
        )
        .await?;
        return Err(ApiError::RateLimited {
            limit: u32::try_from(otp::SEND_LIMIT).unwrap_or(5),
            window_secs: otp::SEND_WINDOW_MS / 1000,
            retry_after: wait,
        });
    }
    let destination = factor
        .data
        .get("to")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let code = loop {
        let mut b = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut b);
        if let Some(c) = otp::six_digit_code(u32::from_le_bytes(b)) {
            break c;
        }
    };
    let mut idb = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut idb);
    let challenge = Challenge::new(&state.portal.keys.code_key(), code.expose(), now);
    let record = ChallengeRecord {
        id: hex::encode(idb),
        user_id: user.id,
        session_hash: session.record.id_hash.clone(),
        purpose: purpose.into(),
        channel: factor.kind.clone(),
        factor_id: Some(factor.id),
        code_hash: hex::encode(challenge.code_hash),
        created_on: now,
        expires_on: challenge.expires_at_ms,
        attempts: 0,
        used: false,
    };
    state.portal.store.put_challenge(&record).await?;
    let masked = mask(&destination);
    match state
        .delivery
        .send(&factor.kind, &destination, code.expose())
        .await
    {
        Ok(()) => {
            audit(
                state,
                &actor,
                "mfa.code_sent",
                format!(
                    "{} code for {purpose} sent to {masked} for {}",
                    factor.kind, user.username
                ),
            )
            .await?;
            Ok((record.id, masked))
        }
        Err(e) => {
            audit(
                state,
                &actor,
                "mfa.code_failed",
                format!(
                    "{} code for {} could not be delivered: {e}",
                    factor.kind, user.username
                ),
            )
            .await?;
            Err(ApiError::Unavailable)
        }
    }
}

/// `j***@example.com`, `+33******89`.
pub fn mask(destination: &str) -> String {
    if let Some((local, domain)) = destination.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = destination.chars().collect();
    let n = chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 2 >= n { *c } else { '*' })
        .collect()
}

/// Changes the signed-in user's password (required after a one-time password); ends the
/// user's other sessions and moves this one on.
pub async fn change_password(
    state: &AppState,
    session: &Session,
    current: &str,
    new: &str,
) -> Result<(String, Session), ApiError> {
    let (user, origin, actor) = session_user(state, session).await?;
    let verified = match user.password_hash.clone() {
        Some(phc) => state.portal.hashing.verify(current.to_string(), phc).await,
        None => false,
    };
    if !verified {
        audit(
            state,
            &actor,
            "signin.failure",
            format!(
                "Password change refused for {}: wrong current password",
                user.username
            ),
        )
        .await?;
        count_failure(state, &user, &actor).await?;
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    if current == new {
        return Err(ApiError::BadRequest(
            "the new password must differ from the current one".into(),
        ));
    }
    palisade_core::password::check(new, &user.username)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let hash = state
        .portal
        .hashing
        .hash(new.to_string())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let change = palisade_store::UserChange {
        password_hash: Some(Some(hash)),
        force_password_change: Some(false),
        ..Default::default()
    };
    let event = actor.event(
        state.portal.now(),
        "user.password",
        format!("{} changed their password", user.username),
    );
    let user = state
        .portal
        .store
        .update_user(user.id, change, event)
        .await?;
    state.portal.store.delete_user_sessions(user.id).await?;
    let settings = SigninSettings::load(&state.portal).await?;
    let (next, _) = settled_state(state, &user, &settings).await?;
    let (id, s) = session::start(
        &state.portal,
        user.id,
        next,
        &session.record.auth_method,
        &origin.ip,
        &origin.user_agent,
        session.record.factor_verified_on.is_some(),
    )
    .await?;
    Ok((id, s))
}

/// Ends a session.
pub async fn sign_out(state: &AppState, session: &Session) -> Result<(), ApiError> {
    state
        .portal
        .store
        .delete_session(&session.record.id_hash)
        .await?;
    if let Some(user) = state.portal.store.get_user(session.record.user_id).await? {
        let origin = Origin {
            ip: session.record.ip.clone(),
            user_agent: session.record.user_agent.clone(),
        };
        audit(
            state,
            &actor_for(Some(&user), &user.username, &origin),
            "signin.signout",
            format!("{} signed out", user.username),
        )
        .await?;
    }
    Ok(())
}
