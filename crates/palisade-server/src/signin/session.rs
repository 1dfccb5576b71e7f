//! Browser sessions: opaque ids stored hashed, cookies, timeouts, rotation and CSRF.
//!
//! A session id is 256 random bits, sent only in a cookie (`HttpOnly`, `SameSite=Lax`; over
//! TLS also `Secure` and named with the `__Host-` prefix) and stored only as its SHA-256.
//! Sessions end after 30 minutes idle or 12 hours in all; the id is replaced at every step up
//! (password → second factor → signed in). Every state-changing request of a session carries
//! its CSRF token (`X-CSRF-Token` header, or a `csrf` form field), compared in constant time.

use crate::portal::Portal;
use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use palisade_store::{SessionRecord, StoreError};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Idle timeout.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// Absolute timeout.
pub const ABSOLUTE_MS: i64 = 12 * 60 * 60 * 1000;
/// How often `last_seen` is written at most.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Password accepted; a second factor is due.
    AwaitFactor,
    /// Signed in but confined to enrolling a second factor.
    MustEnrol,
    /// Signed in but confined to changing the password.
    PasswordChange,
    /// Signed in.
    Active,
}

impl SessionState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::AwaitFactor => "await_factor",
            SessionState::MustEnrol => "must_enrol",
            SessionState::PasswordChange => "password_change",
            SessionState::Active => "active",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "await_factor" => Some(SessionState::AwaitFactor),
            "must_enrol" => Some(SessionState::MustEnrol),
            "password_change" => Some(SessionState::PasswordChange),
            "active" => Some(SessionState::Active),
            _ => None,
        }
    }
}

/// A loaded session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The stored record.
    pub record: SessionRecord,
    /// Its state.
    pub state: SessionState,
}

impl Session {
    /// Whether a second factor was verified in this session within `window_ms`.
    pub fn stepped_up_within(&self, now_ms: i64, window_ms: i64) -> bool {
        self.record
            .factor_verified_on
            .is_some_and(|t| now_ms - t <= window_ms)
    }
}

/// The cookie name for plain HTTP or TLS.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-palisade_session"
    } else {
        "palisade_session"
    }
}

/// SHA-256 (hex) of a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64URL.encode(b)
}

/// The value of cookie `name` in the request, if present, non-empty and at most 4 KiB.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 4096)
}

/// Reads the session id from the request's cookies.
pub fn id_from_headers(headers: &HeaderMap, secure: bool) -> Option<String> {
    cookie_value(headers, cookie_name(secure)).filter(|v| v.len() <= 128)
}

/// The `Set-Cookie` value that installs a session id.
pub fn set_cookie(id: &str, secure: bool) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    let v = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure_attr}",
        cookie_name(secure),
        ABSOLUTE_MS / 1000
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    let v = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure_attr}",
        cookie_name(secure)
    );
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
}

/// Starts a session; returns the id (for the cookie) and the session.
pub async fn start(
    portal: &Portal,
    user_id: i64,
    state: SessionState,
    auth_method: &str,
    ip: &str,
    user_agent: &str,
    factor_verified: bool,
) -> Result<(String, Session), StoreError> {
    let now = portal.now();
    let id = random_token();
    let record = SessionRecord {
        id_hash: hash_id(&id),
        user_id,
        state: state.as_str().into(),
        auth_method: auth_method.into(),
        csrf: random_token(),
        ip: ip.into(),
        user_agent: user_agent.chars().take(256).collect(),
        created_on: now,
        last_seen: now,
        expires_on: now + ABSOLUTE_MS,
        factor_verified_on: factor_verified.then_some(now),
        data: Value::Object(Default::default()),
    };
    portal.store.create_session(&record).await?;
    Ok((id, Session { record, state }))
}

/// Moves a session to a new state under a new id (and a new CSRF token); the old id stops
/// working at once.
pub async fn step_up(
    portal: &Portal,
    session: &Session,
    state: SessionState,
    auth_method: &str,
    factor_verified: bool,
) -> Result<(String, Session), StoreError> {
    let now = portal.now();
    let id = random_token();
    let mut record = session.record.clone();
    record.id_hash = hash_id(&id);
    record.state = state.as_str().into();
    record.auth_method = auth_method.into();
    record.csrf = random_token();
    record.last_seen = now;
    if factor_verified {
        record.factor_verified_on = Some(now);
    }
    record.data = Value::Object(Default::default());
    portal
        .store
        .rotate_session(&session.record.id_hash, &record)
        .await?;
    Ok((id, Session { record, state }))
}

/// Loads the session of a request, ending it if it timed out.
pub async fn load(portal: &Portal, id: &str) -> Result<Option<Session>, StoreError> {
    let now = portal.now();
    let hash = hash_id(id);
    let Some(mut record) = portal.store.get_session(&hash).await? else {
        return Ok(None);
    };
    if now >= record.expires_on || now - record.last_seen >= IDLE_MS {
        portal.store.delete_session(&hash).await?;
        return Ok(None);
    }
    let Some(state) = SessionState::parse(&record.state) else {
        portal.store.delete_session(&hash).await?;
        return Ok(None);
    };
    if now - record.last_seen >= TOUCH_EVERY_MS {
        record.last_seen = now;
        portal.store.update_session(&record).await?;
    }
    Ok(Some(Session { record, state }))
}

/// Whether a presented CSRF token matches the session's.
pub fn csrf_ok(session: &Session, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !p.is_empty() => bool::from(p.as_bytes().ct_eq(session.record.csrf.as_bytes())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing_and_attributes() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; palisade_session=abc; b=2"),
        );
        assert_eq!(id_from_headers(&h, false).as_deref(), Some("abc"));
        assert_eq!(id_from_headers(&h, true), None);
        let c = set_cookie("xyz", true);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("__Host-palisade_session=xyz; Path=/; HttpOnly; SameSite=Lax"));
        assert!(c.ends_with("Secure"));
        assert!(!set_cookie("xyz", false)
            .to_str()
            .unwrap()
            .contains("Secure"));
        assert_eq!(hash_id("abc").len(), 64);
    }
}
