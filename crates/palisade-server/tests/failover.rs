#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Collector-group failover, in-process with a clock the test moves: the devices of a
//! collector that stops heartbeating move to the other collector of its group (with their
//! credentials), and come back when it heartbeats again.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palisade_server::portal::Clock;
use palisade_server::{AppOptions, AppState};
use serde_json::{json, Value};
use std::sync::Arc;

const MINUTE: i64 = 60_000;

struct H {
    state: Arc<AppState>,
    clock: Arc<common::TestClock>,
    token: (String, String),
    _tmp: common::TempDir,
}

impl H {
    async fn call(&self, method: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let (id, key) = (&self.token.0, &self.token.1);
        common::lmv1_call(
            &self.state,
            (id, key),
            self.clock.now_ms(),
            method,
            &format!("/santaba/rest{path}"),
            body,
        )
        .await
    }

    async fn ok(&self, method: &str, path: &str, body: &Value) -> Value {
        let (s, b) = self.call(method, path, body).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {b}");
        b
    }

    async fn protocol(&self, key: &str, method: &str, path: &str, body: &Value) -> Value {
        let req = Request::builder()
            .method(method)
            .uri(format!("/api/collector/v1{path}"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(if method == "GET" {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .unwrap();
        let (s, _, b) = common::send(&self.state, req).await;
        assert_eq!(s, StatusCode::OK, "{method} {path}: {b}");
        b
    }

    /// Creates a collector in the group and registers it; returns (id, key).
    async fn collector(&self, group: i64, name: &str, backup: i64) -> (i64, String) {
        let c = self
            .ok(
                "POST",
                "/setting/collector/collectors",
                &json!({"description": name, "collectorGroupId": group, "backupAgentId": backup}),
            )
            .await;
        let req = Request::builder()
            .method("POST")
            .uri("/api/collector/v1/register")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"registrationSecret": c["registrationSecret"], "report": self.report(name)})
                    .to_string(),
            ))
            .unwrap();
        let (s, _, b) = common::send(&self.state, req).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        (
            b["collectorId"].as_i64().unwrap(),
            b["collectorKey"].as_str().unwrap().to_string(),
        )
    }

    fn report(&self, name: &str) -> Value {
        json!({"hostname": format!("{name}.example"), "platform": "Linux",
               "isAdminAccount": false, "startedOn": self.clock.now_ms()})
    }

    async fn heartbeat(&self, key: &str, name: &str) {
        self.protocol(
            key,
            "POST",
            "/heartbeat",
            &json!({"report": self.report(name)}),
        )
        .await;
    }

    /// The device ids in a collector's work, with the `snmp.community` each carries.
    async fn work(&self, key: &str) -> Vec<(i64, Option<String>)> {
        let w = self.protocol(key, "GET", "/work", &Value::Null).await;
        w["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["id"].as_i64().unwrap(),
                    d["properties"]["snmp.community"]
                        .as_str()
                        .map(str::to_string),
                )
            })
            .collect()
    }
}

async fn harness() -> H {
    let (portal, clock, tmp) = common::temp_portal("failover").await;
    let token = common::token_for(
        &portal,
        "ops",
        &["host_group:*:manage", "setting:collectorgroup.*:write"],
    )
    .await;
    let (state, _audit) = AppState::new(portal, AppOptions::default());
    H {
        state,
        clock,
        token,
        _tmp: tmp,
    }
}

fn ids(work: &[(i64, Option<String>)]) -> Vec<i64> {
    work.iter().map(|(id, _)| *id).collect()
}

#[tokio::test]
async fn a_silent_collector_hands_its_devices_to_its_group_and_takes_them_back() {
    let h = harness().await;
    let group = h
        .ok(
            "POST",
            "/setting/collector/groups",
            &json!({"name": "dc-1"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (c1, key1) = h.collector(group, "col-1", 0).await;
    let (c2, key2) = h.collector(group, "col-2", 0).await;
    let (_c3, key3) = h.collector(0, "col-3", 0).await;
    let device = h
        .ok(
            "POST",
            "/device/devices",
            &json!({"name": "10.0.0.5", "displayName": "db-1", "preferredCollectorId": c1,
                    "customProperties": [{"name": "snmp.community", "value": "s3cret-c"}]}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for (k, n) in [(&key1, "col-1"), (&key2, "col-2"), (&key3, "col-3")] {
        h.heartbeat(k, n).await;
    }
    assert!(ids(&h.work(&key1).await).contains(&device));
    assert!(!ids(&h.work(&key2).await).contains(&device));

    // col-1 falls silent; col-2 and col-3 keep heartbeating. After the 3-minute threshold
    // the device (with its credential) is col-2's — never col-3's, another group's.
    for _ in 0..4 {
        h.clock.advance(MINUTE);
        h.heartbeat(&key2, "col-2").await;
        h.heartbeat(&key3, "col-3").await;
    }
    let w2 = h.work(&key2).await;
    assert!(
        w2.contains(&(device, Some("s3cret-c".to_string()))),
        "{w2:?}"
    );
    assert!(!ids(&h.work(&key1).await).contains(&device));
    assert!(!ids(&h.work(&key3).await).contains(&device));
    let d = h
        .ok("GET", &format!("/device/devices/{device}"), &Value::Null)
        .await;
    assert_eq!(d["preferredCollectorId"], json!(c1));
    assert_eq!(d["currentCollectorId"], json!(c2));
    let col1 = h
        .ok(
            "GET",
            &format!("/setting/collector/collectors/{c1}"),
            &Value::Null,
        )
        .await;
    assert_eq!(col1["isDown"], json!(true));
    // col-1's own host device stays with it.
    let own = col1["collectorDeviceId"].as_i64().unwrap();
    assert!(!ids(&h.work(&key2).await).contains(&own));

    // col-1 is back: the device returns at once.
    h.heartbeat(&key1, "col-1").await;
    assert!(ids(&h.work(&key1).await).contains(&device));
    assert!(!ids(&h.work(&key2).await).contains(&device));
    let d = h
        .ok("GET", &format!("/device/devices/{device}"), &Value::Null)
        .await;
    assert_eq!(d["currentCollectorId"], json!(c1));
}

#[tokio::test]
async fn the_backup_collector_comes_first_and_the_threshold_is_a_setting() {
    let h = harness().await;
    let group = h
        .ok(
            "POST",
            "/setting/collector/groups",
            &json!({"name": "dc-2"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let (c3, key3) = h.collector(0, "backup", 0).await;
    let backup = h
        .ok(
            "GET",
            &format!("/setting/collector/collectors/{c3}"),
            &Value::Null,
        )
        .await;
    assert_eq!(backup["backupAgentId"], json!(0));
    let (c1, key1) = h.collector(group, "primary", c3).await;
    let (_c2, key2) = h.collector(group, "peer", 0).await;
    let device = h
        .ok(
            "POST",
            "/device/devices",
            &json!({"name": "10.0.0.6", "displayName": "web-9", "preferredCollectorId": c1}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // A longer threshold: 10 minutes.
    // A backup must exist and not be the collector itself.
    for bad in [json!(999), json!(c1), json!("x")] {
        let (s, b) = h
            .call(
                "PATCH",
                &format!("/setting/collector/collectors/{c1}"),
                &json!({"backupAgentId": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(
            b["errorMessage"]
                .as_str()
                .unwrap()
                .contains("backupAgentId"),
            "{b}"
        );
    }
    palisade_server::settings::set(
        &h.state.portal,
        &palisade_server::portal::Actor::cli(),
        "collector.down_after_seconds",
        "600",
    )
    .await
    .unwrap();
    for (k, n) in [(&key1, "primary"), (&key2, "peer"), (&key3, "backup")] {
        h.heartbeat(k, n).await;
    }
    for _ in 0..5 {
        h.clock.advance(MINUTE);
        h.heartbeat(&key2, "peer").await;
        h.heartbeat(&key3, "backup").await;
    }
    assert!(
        ids(&h.work(&key1).await).contains(&device),
        "5 min < 10 min"
    );
    for _ in 0..6 {
        h.clock.advance(MINUTE);
        h.heartbeat(&key2, "peer").await;
        h.heartbeat(&key3, "backup").await;
    }
    assert!(
        ids(&h.work(&key3).await).contains(&device),
        "the backup first"
    );
    assert!(!ids(&h.work(&key2).await).contains(&device));
    // The backup falls silent too: the group peer takes over.
    for _ in 0..11 {
        h.clock.advance(MINUTE);
        h.heartbeat(&key2, "peer").await;
    }
    assert!(ids(&h.work(&key2).await).contains(&device));
    // Bad threshold values are refused.
    for bad in ["5", "0", "-1", "ten", "100000"] {
        assert!(palisade_server::settings::set(
            &h.state.portal,
            &palisade_server::portal::Actor::cli(),
            "collector.down_after_seconds",
            bad,
        )
        .await
        .is_err());
    }
}
