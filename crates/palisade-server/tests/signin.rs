//! Sign-in driven in-process on a real SQLite store with a clock the tests move: the
//! mandate gate as a deadline passes, TOTP enrolment and replay, lockout and its doubling,
//! voided attempts, CSRF, idle timeout and session id rotation.
//!
//! TOTP codes are computed by the small RFC 6238 implementation below, not by Palisade's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use hmac::{Hmac, Mac};
use palisade_server::portal::Actor;
use palisade_server::{AppOptions, AppState};
use serde_json::{json, Value};
use std::sync::Arc;

/// RFC 6238 (SHA-1, 6 digits, 30 s), independent of Palisade's code.
fn rfc6238(secret_b32: &str, unix: i64) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut key = Vec::new();
    for c in secret_b32.bytes().filter(|c| *c != b'=') {
        let v = alphabet
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            key.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&((unix / 30) as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let v = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]) % 1_000_000;
    format!("{v:06}")
}

struct Browser {
    state: Arc<AppState>,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browser {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("palisade_session={c}"));
        }
        if let Some(t) = &self.csrf {
            b = b.header("x-csrf-token", t);
        }
        let body = body.map(|v| v.to_string()).unwrap_or_default();
        let (status, headers, v) =
            common::send(&self.state, b.body(Body::from(body)).unwrap()).await;
        if let Some(set) = headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            if let Some(val) = set
                .strip_prefix("palisade_session=")
                .and_then(|r| r.split(';').next())
            {
                self.cookie = Some(val.to_string()).filter(|v| !v.is_empty());
            }
        }
        if let Some(t) = v
            .get("csrfToken")
            .or_else(|| v.get("session").and_then(|s| s.get("csrfToken")))
            .and_then(Value::as_str)
        {
            self.csrf = Some(t.to_string());
        }
        (status, v)
    }
}

async fn setup(grace_hours: &str) -> (Arc<AppState>, Arc<common::TestClock>, common::TempDir) {
    let (portal, clock, tmp) = common::temp_portal("signin").await;
    palisade_server::settings::set(&portal, &Actor::cli(), "mfa.grace_hours", grace_hours)
        .await
        .unwrap();
    let req = serde_json::from_value(json!({"username": "dana", "email": "dana@example.com", "roles": [{"name": "readonly"}], "password": "correct horse battery"})).unwrap();
    palisade_server::ops::users::create(&portal, &Actor::cli(), req)
        .await
        .unwrap();
    let (state, _task) = AppState::new(portal, AppOptions::default());
    (state, clock, tmp)
}

fn browser(state: &Arc<AppState>) -> Browser {
    Browser {
        state: state.clone(),
        cookie: None,
        csrf: None,
    }
}

fn secs(clock: &common::TestClock) -> i64 {
    use palisade_server::portal::Clock;
    clock.now_ms() / 1000
}

#[tokio::test]
async fn deadline_passing_while_signed_in_confines_to_enrolment_then_totp_frees() {
    let (state, clock, _tmp) = setup("1").await;
    let mut b = browser(&state);
    let (s, v) = b
        .call(
            "POST",
            "/api/auth/login",
            Some(json!({"username": "dana", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("active")));
    let (s, v) = b.call("GET", "/api/me", None).await;
    assert_eq!(
        (s, v["twoFactor"]["status"].as_str()),
        (StatusCode::OK, Some("grace"))
    );
    // The grace hour passes while signed in (active, so no idle timeout): the next request
    // is confined.
    for _ in 0..3 {
        clock.advance(20 * 60 * 1000 + 20_000);
        b.call("GET", "/api/me", None).await;
    }
    let (s, _) = b.call("GET", "/api/me", None).await;
    assert_eq!(s, StatusCode::OK, "enrolment routes stay open");
    for path in ["/santaba/rest/setting/roles", "/api/me/recovery-codes"] {
        let method = if path.ends_with("codes") {
            "POST"
        } else {
            "GET"
        };
        let (s, v) = b.call(method, path, None).await;
        assert_eq!(
            (s, v["errorCode"].as_i64()),
            (StatusCode::FORBIDDEN, Some(1412)),
            "{path}"
        );
    }
    let (s, v) = b
        .call("POST", "/api/me/factors/totp", Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK);
    let secret = v["secret"].as_str().unwrap().to_string();
    assert!(v["otpauthUri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Palisade:dana?secret="));
    assert!(v["qrSvg"].as_str().unwrap().contains("<svg"));
    let id = v["factorId"].as_i64().unwrap();
    let (s, v) = b
        .call(
            "POST",
            &format!("/api/me/factors/{id}/confirm"),
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let code = rfc6238(&secret, secs(&clock));
    let (s, v) = b
        .call(
            "POST",
            &format!("/api/me/factors/{id}/confirm"),
            Some(json!({"code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["recoveryCodes"].as_array().unwrap().len(), 10);
    assert_eq!(v["session"]["state"], "active");
    // Released: the API now answers on privileges (readonly lacks user access: 1403, not 1412).
    let (s, v) = b.call("GET", "/santaba/rest/setting/roles", None).await;
    assert_eq!(
        (s, v["errorCode"].as_i64()),
        (StatusCode::FORBIDDEN, Some(1403))
    );

    // Sign out, sign in again: the same time step is refused (replay), the next one works.
    b.call("POST", "/api/auth/logout", None).await;
    b.csrf = None;
    let (_, v) = b
        .call(
            "POST",
            "/api/auth/login",
            Some(json!({"username": "dana", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(v["state"], "await_factor");
    assert_eq!(v["methods"], json!(["totp", "recovery"]));
    let (s, v) = b
        .call(
            "POST",
            "/api/auth/factor",
            Some(json!({"method": "totp", "code": code})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["errorMessage"].as_str().unwrap().contains("already used"));
    clock.advance(30_000);
    let next = rfc6238(&secret, secs(&clock));
    let before = b.cookie.clone();
    let (s, v) = b
        .call(
            "POST",
            "/api/auth/factor",
            Some(json!({"method": "totp", "code": next})),
        )
        .await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("active")),
        "{v}"
    );
    assert_ne!(
        b.cookie, before,
        "the session id is replaced at the step up"
    );
    // The old id no longer works.
    let mut old = browser(&state);
    old.cookie = before;
    assert_eq!(
        old.call("GET", "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_passwords_lock_the_account_and_the_lock_doubles() {
    let (state, clock, _tmp) = setup("72").await;
    let mut b = browser(&state);
    let login = |pw: &str| json!({"username": "dana", "password": pw});
    for i in 0..10 {
        let (s, v) = b
            .call("POST", "/api/auth/login", Some(login("wrong password!!")))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {i}: {v}");
        // Stay under the per-address limit of 10 a minute.
        clock.advance(7_000);
    }
    let (s, v) = b
        .call(
            "POST",
            "/api/auth/login",
            Some(login("correct horse battery")),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "locked even with the right password: {v}"
    );
    assert!(v["errorMessage"].as_str().unwrap().contains("locked"));
    clock.advance(15 * 60 * 1000);
    for _ in 0..10 {
        b.call("POST", "/api/auth/login", Some(login("wrong password!!")))
            .await;
        clock.advance(7_000);
    }
    clock.advance(16 * 60 * 1000);
    let (s, _) = b
        .call(
            "POST",
            "/api/auth/login",
            Some(login("correct horse battery")),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the second lock lasts 30 minutes");
    clock.advance(15 * 60 * 1000);
    let (s, _) = b
        .call(
            "POST",
            "/api/auth/login",
            Some(login("correct horse battery")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    state.audit.flush().await;
    let entries = state.portal.store.list_audit(None, 200).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.event.action == "signin.lockout")
            .count(),
        2
    );
    assert!(
        entries
            .iter()
            .filter(|e| e.event.action == "signin.failure")
            .count()
            >= 20
    );
}

#[tokio::test]
async fn five_wrong_codes_void_the_attempt_and_csrf_and_idle_timeout_hold() {
    let (state, clock, _tmp) = setup("72").await;
    let mut b = browser(&state);
    b.call(
        "POST",
        "/api/auth/login",
        Some(json!({"username": "dana", "password": "correct horse battery"})),
    )
    .await;
    let (_, v) = b
        .call("POST", "/api/me/factors/totp", Some(json!({})))
        .await;
    let secret = v["secret"].as_str().unwrap().to_string();
    let id = v["factorId"].as_i64().unwrap();
    let (s, _) = b
        .call(
            "POST",
            &format!("/api/me/factors/{id}/confirm"),
            Some(json!({"code": rfc6238(&secret, secs(&clock))})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // CSRF: a state-changing call without the token is refused.
    let csrf = b.csrf.take();
    let (s, v) = b.call("POST", "/api/me/recovery-codes", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    b.csrf = csrf;
    // Idle for 31 minutes: the session is over.
    clock.advance(31 * 60 * 1000);
    assert_eq!(
        b.call("GET", "/api/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    b.cookie = None;
    b.csrf = None;
    b.call(
        "POST",
        "/api/auth/login",
        Some(json!({"username": "dana", "password": "correct horse battery"})),
    )
    .await;
    for i in 0..4 {
        let (s, _) = b
            .call(
                "POST",
                "/api/auth/factor",
                Some(json!({"method": "totp", "code": "111111"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "wrong code {i}");
    }
    let (s, v) = b
        .call(
            "POST",
            "/api/auth/factor",
            Some(json!({"method": "totp", "code": "111111"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{v}"
    );
    // The attempt is void: even the right code no longer helps.
    clock.advance(30_000);
    let (s, _) = b
        .call(
            "POST",
            "/api/auth/factor",
            Some(json!({"method": "totp", "code": rfc6238(&secret, secs(&clock))})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[test]
fn independent_totp_matches_the_rfc_vectors() {
    // RFC 6238 appendix B, secret "12345678901234567890", 6-digit truncation.
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(rfc6238(secret, 59), "287082");
    assert_eq!(rfc6238(secret, 1_111_111_109), "081804");
}
