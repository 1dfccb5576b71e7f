//! Shared fixtures of the in-process tests: a portal on a temporary SQLite data directory
//! with a clock the test moves, and a way to send requests to the router without a socket.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use palisade_server::portal::{Clock, Portal};
use palisade_server::{app, AppState, StoreConfig};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

/// A clock the test sets.
pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A data directory removed on drop.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static N: AtomicI64 = AtomicI64::new(0);

/// A fresh portal on SQLite in a temporary directory, with a test clock.
pub async fn temp_portal(tag: &str) -> (Portal, Arc<TestClock>, TempDir) {
    let dir = std::env::temp_dir().join(format!(
        "palisade-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = StoreConfig {
        data_dir: dir.clone(),
        database_url: None,
        master_key_file: None,
    };
    let (mut portal, first) = palisade_server::open_portal(&cfg).await.unwrap();
    assert!(
        first.is_some(),
        "a fresh portal creates its first administrator"
    );
    let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000_000)));
    portal.clock = clock.clone();
    (portal, clock, TempDir(dir))
}

/// Sends a request from 127.0.0.1 and decodes the JSON answer (or `Null`).
pub async fn send(state: &Arc<AppState>, mut req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let resp = app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// An API-only user holding a role with these privileges, and its LMv1 token
/// (access id, access key).
pub async fn token_for(portal: &Portal, name: &str, privileges: &[&str]) -> (String, String) {
    use palisade_server::ops::tokens::{self, TokenRequest};
    let cli = palisade_server::portal::Actor::cli();
    let role = palisade_server::ops::roles::create_checked(
        portal,
        &cli,
        format!("{name}-role"),
        String::new(),
        privileges
            .iter()
            .map(|p| palisade_core::privilege::Privilege::parse_triple(p).unwrap())
            .collect(),
        false,
    )
    .await
    .unwrap();
    let user = palisade_server::ops::users::create(
        portal,
        &cli,
        serde_json::from_value(serde_json::json!({"username": name, "email": format!("{name}@example.com"), "apionly": true, "roles": [{"id": role.id}]})).unwrap(),
    )
    .await
    .unwrap();
    let t = tokens::create(portal, &cli, user.id, TokenRequest::default())
        .await
        .unwrap();
    (t.record.access_id.clone(), t.secret.expose().clone())
}

/// Sends a JSON request signed with LMv1 at `now_ms`.
pub async fn lmv1_call(
    state: &Arc<AppState>,
    (id, key): (&str, &str),
    now_ms: i64,
    method: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let body = if method == "GET" {
        String::new()
    } else {
        body.to_string()
    };
    let auth = palisade_core::lmv1::authorization(
        id,
        key,
        method,
        now_ms,
        body.as_bytes(),
        &palisade_core::lmv1::resource_path(path),
    );
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (s, _, b) = send(state, req).await;
    (s, b)
}
