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
