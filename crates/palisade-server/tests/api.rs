//! The API driven in-process (`oneshot`, no socket) on a real SQLite store, with a clock the
//! tests set: authentication, the token mandate on every request, authorization, audit,
//! rate limits, last use, and failing closed when the audit log cannot be written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palisade_core::lmv1;
use palisade_server::ops::tokens::{self, TokenRequest};
use palisade_server::portal::{Actor, Clock, Portal};
use palisade_server::{AppState, RateLimits};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;

struct Harness {
    state: Arc<AppState>,
    clock: Arc<common::TestClock>,
    dir: std::path::PathBuf,
    _tmp: common::TempDir,
    access_id: String,
    access_key: String,
    owner_id: i64,
    token_id: i64,
    role_id: i64,
}

async fn harness(limits: RateLimits, trusted: Vec<ipnet::IpNet>) -> Harness {
    let (portal, clock, tmp) = common::temp_portal("api").await;
    let dir = tmp.0.clone();
    let cli = Actor::cli();
    let role = palisade_server::ops::roles::create_checked(
        &portal,
        &cli,
        "automation".into(),
        String::new(),
        vec![
            palisade_core::privilege::Privilege::parse_triple("setting:useraccess:write").unwrap(),
            palisade_core::privilege::Privilege::parse_triple("setting:accesslogs:read").unwrap(),
        ],
        false,
    )
    .await
    .unwrap();
    let user = palisade_server::ops::users::create(
        &portal,
        &cli,
        serde_json::from_value(json!({"username": "automation", "email": "a@example.com", "apionly": true, "roles": [{"id": role.id}]})).unwrap(),
    )
    .await
    .unwrap();
    let created = tokens::create(&portal, &cli, user.id, TokenRequest::default())
        .await
        .unwrap();
    let (state, _task) = AppState::new(
        portal,
        palisade_server::AppOptions {
            limits,
            trusted_proxies: trusted,
            ..Default::default()
        },
    );
    Harness {
        state,
        clock,
        dir,
        _tmp: tmp,
        access_id: created.record.access_id.clone(),
        access_key: created.secret.expose().clone(),
        owner_id: user.id,
        token_id: created.record.id,
        role_id: role.id,
    }
}

impl Harness {
    fn portal(&self) -> &Portal {
        &self.state.portal
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        common::send(&self.state, req).await
    }

    fn signed(&self, method: &str, path: &str, body: &str, epoch: i64) -> Request<Body> {
        let resource = lmv1::resource_path(path);
        let auth = lmv1::authorization(
            &self.access_id,
            &self.access_key,
            method,
            epoch,
            body.as_bytes(),
            &resource,
        );
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(self.signed(method, path, body, self.now())).await;
        (s, b)
    }

    async fn last_audit(&self) -> palisade_store::AuditEntry {
        self.state.audit.flush().await;
        self.portal()
            .store
            .list_audit(None, 1)
            .await
            .unwrap()
            .remove(0)
    }
}

fn code(b: &Value) -> i64 {
    b["errorCode"].as_i64().unwrap_or_default()
}

#[tokio::test]
async fn signed_requests_work_and_are_audited_with_source_ip() {
    let h = harness(RateLimits::default(), vec![]).await;
    let (s, b) = h
        .call("GET", "/santaba/rest/setting/admins?size=2&offset=1", "")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 3); // palisade-support, admin, automation
    assert_eq!(b["items"].as_array().unwrap().len(), 2);
    let e = h.last_audit().await;
    assert_eq!(e.event.username, "automation");
    assert_eq!(e.event.ip, "127.0.0.1");
    assert_eq!(e.event.token_id, Some(h.token_id));
    assert_eq!(e.event.status, Some(200));
    assert!(e
        .event
        .description
        .contains("GET /santaba/rest/setting/admins?size=2&offset=1"));
}

#[tokio::test]
async fn authentication_failures_are_401_and_audited() {
    let h = harness(RateLimits::default(), vec![]).await;
    let path = "/santaba/rest/setting/admins";
    // Stale: 31 minutes old.
    let (s, _, b) = h
        .send(h.signed("GET", path, "", h.now() - 31 * 60 * 1000))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, 1401));
    assert!(b["errorMessage"].as_str().unwrap().contains("window"));
    let e = h.last_audit().await;
    assert_eq!(
        (
            e.event.action.as_str(),
            e.event.status,
            e.event.username.as_str()
        ),
        ("api.denied", Some(401), "automation")
    );
    // Signature over another path.
    let mut req = h.signed("GET", "/santaba/rest/setting/roles", "", h.now());
    *req.uri_mut() = path.parse().unwrap();
    let (s, _, b) = h.send(req).await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, 1401));
    // Body changed after signing.
    let mut req = h.signed("POST", path, "{\"a\": 1}", h.now());
    *req.body_mut() = Body::from("{\"a\": 2}");
    let (s, _, _) = h.send(req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Missing header, unknown scheme, malformed bearer.
    for auth in [None, Some("Basic YTpi"), Some("Bearer pal_nope")] {
        let mut b = Request::builder().uri(path);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let (s, _, body) = h.send(b.body(Body::empty()).unwrap()).await;
        assert_eq!(
            (s, code(&body)),
            (StatusCode::UNAUTHORIZED, 1401),
            "{auth:?}"
        );
    }
    let e = h.last_audit().await;
    assert_eq!(
        (e.event.username.as_str(), e.event.status),
        ("unknown", Some(401))
    );
}

#[tokio::test]
async fn disabled_expired_and_deleted_tokens_are_refused() {
    let h = harness(RateLimits::default(), vec![]).await;
    let cli = Actor::cli();
    tokens::update(h.portal(), &cli, h.owner_id, h.token_id, Some(1), None)
        .await
        .unwrap();
    let (s, b) = h.call("GET", "/santaba/rest/setting/admins", "").await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, 1401));
    assert!(b["errorMessage"].as_str().unwrap().contains("disabled"));
    tokens::update(h.portal(), &cli, h.owner_id, h.token_id, Some(2), None)
        .await
        .unwrap();
    assert_eq!(
        h.call("GET", "/santaba/rest/setting/admins", "").await.0,
        StatusCode::OK
    );

    let exp = tokens::create(
        h.portal(),
        &cli,
        h.owner_id,
        TokenRequest {
            bearer: true,
            note: String::new(),
            expires_on: Some(h.now() + 1000),
        },
    )
    .await
    .unwrap();
    let bearer = |t: &str| {
        Request::builder()
            .uri("/santaba/rest/setting/roles")
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(h.send(bearer(exp.secret.expose())).await.0, StatusCode::OK);
    h.clock.0.fetch_add(2000, Ordering::SeqCst);
    let (s, _, b) = h.send(bearer(exp.secret.expose())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(b["errorMessage"].as_str().unwrap().contains("expired"));

    tokens::delete(h.portal(), &cli, h.owner_id, h.token_id)
        .await
        .unwrap();
    let (s, b) = h.call("GET", "/santaba/rest/setting/admins", "").await;
    assert_eq!((s, code(&b)), (StatusCode::UNAUTHORIZED, 1401));
}

#[tokio::test]
async fn the_owner_s_privileges_at_request_time_decide() {
    let h = harness(RateLimits::default(), vec![]).await;
    assert_eq!(
        h.call("GET", "/santaba/rest/setting/accesslogs", "")
            .await
            .0,
        StatusCode::OK
    );
    // The role loses accesslogs: the next request is refused.
    let body = json!({"privileges": [{"objectType": "setting", "objectId": "useraccess", "operation": "write"}]}).to_string();
    let (s, _) = h
        .call(
            "PATCH",
            &format!("/santaba/rest/setting/roles/{}", h.role_id),
            &body,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = h.call("GET", "/santaba/rest/setting/accesslogs", "").await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, 1403));
    assert!(b["errorMessage"]
        .as_str()
        .unwrap()
        .contains("setting:accesslogs:read"));
}

#[tokio::test]
async fn a_token_whose_owner_became_administrator_behind_our_back_is_refused() {
    let h = harness(RateLimits::default(), vec![]).await;
    // A direct database edit, bypassing every rule.
    let url = format!("sqlite://{}", h.dir.join("palisade.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO user_roles (user_id, role_id) SELECT $1, id FROM roles WHERE name = 'administrator'")
        .bind(h.owner_id)
        .execute(&pool)
        .await
        .unwrap();
    let (s, b) = h.call("GET", "/santaba/rest/setting/admins", "").await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, 1403));
    assert!(b["errorMessage"]
        .as_str()
        .unwrap()
        .contains("administrator"));
    let e = h.last_audit().await;
    assert_eq!(
        (e.event.action.as_str(), e.event.status),
        ("api.denied", Some(403))
    );
}

#[tokio::test]
async fn mandate_on_creation_and_on_role_change() {
    let h = harness(RateLimits::default(), vec![]).await;
    let users = h.portal().store.list_users().await.unwrap();
    let admin = users.iter().find(|u| u.username == "admin").unwrap();
    let support = users
        .iter()
        .find(|u| u.username == "palisade-support")
        .unwrap();
    for owner in [admin.id, support.id] {
        let (s, b) = h
            .call(
                "POST",
                &format!("/santaba/rest/setting/admins/{owner}/apitokens"),
                "{}",
            )
            .await;
        assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, 1403));
    }
    // The CLI path refuses too.
    let err = tokens::create(h.portal(), &Actor::cli(), admin.id, TokenRequest::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("administrator"));
    // Granting administrator to a token holder is refused (by the operator, who holds every privilege).
    let roles = h.portal().store.list_roles().await.unwrap();
    let admin_role = roles.iter().find(|r| r.is_administrator()).unwrap();
    let req = serde_json::from_value(json!({"roles": [{"id": admin_role.id}, {"id": h.role_id}]}))
        .unwrap();
    let err = palisade_server::ops::users::update(
        h.portal(),
        &Actor::cli(),
        h.owner_id,
        req,
        palisade_server::ops::users::UpdateMode {
            change_password: false,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert!(err.to_string().contains("disable or delete"));
    // The last administrator can be neither suspended nor deleted.
    let (s, b) = h
        .call(
            "DELETE",
            &format!("/santaba/rest/setting/admins/{}", admin.id),
            "{}",
        )
        .await;
    assert_eq!((s, code(&b)), (StatusCode::FORBIDDEN, 1403));
    let err = palisade_server::ops::users::update(
        h.portal(),
        &Actor::cli(),
        admin.id,
        serde_json::from_value(json!({"status": "suspended"})).unwrap(),
        palisade_server::ops::users::UpdateMode {
            change_password: false,
        },
    )
    .await
    .unwrap_err();
    assert!(err
        .to_string()
        .contains("at least one active administrator"));
}

#[tokio::test]
async fn secrets_are_shown_once_and_stored_protected() {
    let h = harness(RateLimits::default(), vec![]).await;
    let (s, created) = h
        .call(
            "POST",
            &format!(
                "/santaba/rest/setting/admins/{}/apitokens?type=bearer",
                h.owner_id
            ),
            "{\"note\": \"ci\"}",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let secret = created["accessKey"].as_str().unwrap().to_string();
    assert!(secret.starts_with("pal_"));
    let (_, listed) = h
        .call("GET", "/santaba/rest/setting/admins/apitokens", "")
        .await;
    let text = listed.to_string();
    assert!(!text.contains(&secret));
    assert!(!text.contains(&h.access_key));
    // Nothing in the database holds a secret in the clear.
    let db = std::fs::read(h.dir.join("palisade.db")).unwrap();
    let wal = std::fs::read(h.dir.join("palisade.db-wal")).unwrap_or_default();
    for hay in [&db, &wal] {
        assert!(!hay.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!hay
            .windows(h.access_key.len())
            .any(|w| w == h.access_key.as_bytes()));
    }
    // The bearer token works.
    let req = Request::builder()
        .uri("/santaba/rest/setting/roles")
        .header("authorization", format!("Bearer {secret}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn last_use_is_recorded_and_a_new_address_is_an_audit_event() {
    let h = harness(RateLimits::default(), vec!["127.0.0.0/8".parse().unwrap()]).await;
    h.call("GET", "/santaba/rest/setting/roles", "").await;
    let t = h
        .portal()
        .store
        .get_token(h.token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.last_used_on, Some(h.now()));
    assert_eq!(t.last_auth_ip.as_deref(), Some("127.0.0.1"));
    // Through a trusted proxy, from a new address.
    let mut req = h.signed("GET", "/santaba/rest/setting/roles", "", h.now());
    req.headers_mut()
        .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    h.send(req).await;
    let t = h
        .portal()
        .store
        .get_token(h.token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.recent_ips,
        vec!["203.0.113.9".to_string(), "127.0.0.1".to_string()]
    );
    h.state.audit.flush().await;
    let recent = h.portal().store.list_audit(None, 5).await.unwrap();
    assert!(recent
        .iter()
        .any(|e| e.event.action == "token.new_ip" && e.event.ip == "203.0.113.9"));
    // Within the minute, the same address is not written again.
    h.clock.0.fetch_add(10_000, Ordering::SeqCst);
    h.call("GET", "/santaba/rest/setting/roles", "").await;
    let t2 = h
        .portal()
        .store
        .get_token(h.token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t2.last_used_on, t.last_used_on);
    h.clock.0.fetch_add(60_000, Ordering::SeqCst);
    h.call("GET", "/santaba/rest/setting/roles", "").await;
    let t3 = h
        .portal()
        .store
        .get_token(h.token_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t3.last_used_on, Some(h.now()));
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers() {
    let h = harness(
        RateLimits {
            per_token: 3,
            per_ip: 100,
            signin_per_ip: 10,
            window_secs: 60,
        },
        vec![],
    )
    .await;
    for remaining in ["2", "1", "0"] {
        let (s, headers, _) = h
            .send(h.signed("GET", "/santaba/rest/setting/roles", "", h.now()))
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(headers["x-rate-limit-remaining"], remaining);
        assert_eq!(headers["x-rate-limit-limit"], "3");
        assert_eq!(headers["x-rate-limit-window"], "60");
    }
    let (s, headers, b) = h
        .send(h.signed("GET", "/santaba/rest/setting/roles", "", h.now()))
        .await;
    assert_eq!((s, code(&b)), (StatusCode::TOO_MANY_REQUESTS, 1429));
    assert!(headers.contains_key("retry-after"));
    h.clock.0.fetch_add(60_000, Ordering::SeqCst);
    assert_eq!(
        h.call("GET", "/santaba/rest/setting/roles", "").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_change_fails_closed_when_the_audit_log_cannot_be_written() {
    let h = harness(RateLimits::default(), vec![]).await;
    let url = format!("sqlite://{}", h.dir.join("palisade.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit blocked'); END")
        .execute(&pool)
        .await
        .unwrap();
    let body = json!({"username": "eve", "email": "e@example.com", "apionly": true, "roles": [{"id": h.role_id}]}).to_string();
    let (s, b) = h.call("POST", "/santaba/rest/setting/admins", &body).await;
    assert_eq!((s, code(&b)), (StatusCode::SERVICE_UNAVAILABLE, 1503));
    assert!(
        h.portal()
            .store
            .get_user_by_name("eve")
            .await
            .unwrap()
            .is_none(),
        "nothing was changed"
    );
    sqlx::query("DROP TRIGGER audit_blocked")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        h.call("POST", "/santaba/rest/setting/admins", &body)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let h = harness(RateLimits::default(), vec![]).await;
    let cases = [
        ("POST", "/santaba/rest/setting/admins", "{not json", 400),
        ("POST", "/santaba/rest/setting/admins", "{\"username\": \"x\", \"email\": \"x@y.z\"}", 400),
        ("POST", "/santaba/rest/setting/admins", &json!({"username": "x", "email": "x@y.z", "roles": [{"id": 999}]}).to_string(), 400),
        ("POST", "/santaba/rest/setting/admins", &json!({"username": "x", "email": "x@y.z", "roles": [{"id": 5}], "password": "short"}).to_string(), 400),
        ("POST", "/santaba/rest/setting/admins", &json!({"username": "automation", "email": "x@y.z", "roles": [{"id": 5}], "apionly": true}).to_string(), 409),
        ("GET", "/santaba/rest/setting/admins?size=5000", "", 400),
        ("GET", "/santaba/rest/setting/admins?filter=username", "", 400),
        ("GET", "/santaba/rest/setting/admins/abc", "", 404),
        ("GET", "/santaba/rest/setting/admins/999", "", 404),
        ("POST", "/santaba/rest/setting/roles", &json!({"name": "r", "privileges": [{"objectType": "setting", "objectId": "bogus", "operation": "read"}]}).to_string(), 400),
        ("PATCH", &format!("/santaba/rest/setting/admins/{}/apitokens/{}", 1, 1), "{\"status\": 2}", 404),
        ("GET", "/santaba/rest/nowhere", "", 404),
    ];
    for (method, path, body, want) in cases {
        let (s, b) = h.call(method, path, body).await;
        assert_eq!(s.as_u16(), want, "{method} {path} {body}: {b}");
        assert_eq!(code(&b), i64::from(want) + 1000);
        assert!(!b["errorMessage"].as_str().unwrap().is_empty());
    }
    let (_, b) = h
        .call(
            "POST",
            "/santaba/rest/setting/admins",
            &json!({"username": "x", "email": "x@y.z", "roles": [{"id": 5}], "password": "short"})
                .to_string(),
        )
        .await;
    assert!(b["errorMessage"].as_str().unwrap().contains("at least 12"));
}

#[tokio::test]
async fn passwords_change_only_with_change_password() {
    let h = harness(RateLimits::default(), vec![]).await;
    let body = json!({"username": "pat", "email": "p@example.com", "roles": [{"id": h.role_id}], "password": "first long passphrase"}).to_string();
    let (s, created) = h.call("POST", "/santaba/rest/setting/admins", &body).await;
    assert_eq!(s, StatusCode::OK);
    let id = created["id"].as_i64().unwrap();
    let before = h
        .portal()
        .store
        .get_user(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    let patch = json!({"password": "second long passphrase"}).to_string();
    assert_eq!(
        h.call(
            "PATCH",
            &format!("/santaba/rest/setting/admins/{id}"),
            &patch
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        h.portal()
            .store
            .get_user(id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        before
    );
    assert_eq!(
        h.call(
            "PATCH",
            &format!("/santaba/rest/setting/admins/{id}?changePassword=True"),
            &patch
        )
        .await
        .0,
        StatusCode::OK
    );
    let after = h
        .portal()
        .store
        .get_user(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_ne!(after, before);
    assert!(!created.to_string().contains("passphrase"));
    assert!(after.unwrap().starts_with("$argon2id$"));
}
