#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Alerting driven in-process on a real SQLite store and an embedded time-series store,
//! with a clock the tests set: thresholds and their overrides, trigger and clear intervals,
//! no data, SDT, acknowledgement, and notifications received by a real SMTP server and a
//! real HTTP webhook receiver on 127.0.0.1 (small tokio servers written here).

mod common;

use axum::http::StatusCode;
use palisade_server::monitor::pipeline::{self, Point};
use palisade_server::monitor::TsdbHandle;
use palisade_server::portal::Clock;
use palisade_server::signin::delivery::Delivery;
use palisade_server::{AppOptions, AppState};
use palisade_store::inventory::DatasourceDoc;
use palisade_store::objects;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const MINUTE: i64 = 60_000;
const HOOK_SECRET: &str = "0123456789abcdef-hook-secret";

// ---------------------------------------------------------------- receivers

/// A minimal SMTP server: every message's DATA goes to the channel.
async fn smtp_receiver() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let _ = write.write_all(b"220 mx.test ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-mx.test\r\n250 8BITMIME\r\n",
                        "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            loop {
                                line.clear();
                                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line.trim_end_matches(['\r', '\n']) == "." {
                                    break;
                                }
                                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                            }
                            let _ = tx.send(data);
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"502 no\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (port, rx)
}

/// One request the webhook receiver got.
#[derive(Debug)]
struct Hook {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 server answering every request with the status in `status`.
async fn webhook_receiver(status: Arc<AtomicU16>) -> (u16, mpsc::UnboundedReceiver<Hook>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (tx, status) = (tx.clone(), status.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut headers = HashMap::new();
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end_matches(['\r', '\n']);
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':') {
                            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                        }
                    }
                    let len: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let code = status.load(Ordering::SeqCst);
                    if code == 200 {
                        let _ = tx.send(Hook { headers, body });
                    }
                    let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, rx)
}

// ---------------------------------------------------------------- harness

struct H {
    state: Arc<AppState>,
    clock: Arc<common::TestClock>,
    _tmp: common::TempDir,
    access_id: String,
    access_key: String,
    mail: mpsc::UnboundedReceiver<String>,
    hooks: mpsc::UnboundedReceiver<Hook>,
    hook_status: Arc<AtomicU16>,
    hook_port: u16,
    device: i64,
}

/// A portal with an SMTP sender pointing at the test's SMTP server, a time-series store, a
/// device `web-1` and the datasource `AppCPU` (datapoint `usage`) with `datapoint` fields.
async fn harness(datapoint: Value) -> H {
    let (portal, clock, tmp) = common::temp_portal("alerting").await;
    let (access_id, access_key) = common::token_for(&portal, "ops", &["host_group:*:manage"]).await;
    let (smtp_port, mail) = smtp_receiver().await;
    let hook_status = Arc::new(AtomicU16::new(200));
    let (hook_port, hooks) = webhook_receiver(hook_status.clone()).await;
    let sender = palisade_notify::SmtpSender::new(palisade_notify::SmtpConfig::new(
        format!("smtp://127.0.0.1:{smtp_port}"),
        "palisade@example.com",
    ))
    .unwrap();
    let tsdb = palisade_tsdb::Tsdb::open(
        tmp.0.join("tsdb"),
        palisade_tsdb::Options {
            background: false,
            ..Default::default()
        },
    )
    .unwrap();
    let mut dp = json!({"name": "usage", "type": "gauge"});
    if let (Value::Object(m), Value::Object(extra)) = (&mut dp, datapoint) {
        m.extend(extra);
    }
    objects::create(
        portal.store.as_ref(),
        &DatasourceDoc {
            name: "AppCPU".into(),
            version: 1,
            definition: json!({"name": "AppCPU", "collectInterval": 60, "dataPoints": [dp]}),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    let (state, _audit) = AppState::new(
        portal,
        AppOptions {
            delivery: Delivery {
                email: Some(Arc::new(sender)),
                phone: None,
            },
            tsdb: Some(TsdbHandle(Arc::new(tsdb))),
            ..Default::default()
        },
    );
    let mut h = H {
        state,
        clock,
        _tmp: tmp,
        access_id,
        access_key,
        mail,
        hooks,
        hook_status,
        hook_port,
        device: 0,
    };
    let (s, b) = h
        .call(
            "POST",
            "/santaba/rest/device/devices",
            &json!({"name": "10.0.0.1", "displayName": "web-1", "preferredCollectorId": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    h.device = b["id"].as_i64().unwrap();
    h
}

impl H {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn call_as(
        &self,
        id: &str,
        key: &str,
        method: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        common::lmv1_call(&self.state, (id, key), self.now(), method, path, body).await
    }

    async fn call(&self, method: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call_as(
            &self.access_id.clone(),
            &self.access_key.clone(),
            method,
            path,
            body,
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        let (s, b) = self.call("GET", path, &Value::Null).await;
        assert_eq!(s, StatusCode::OK, "{path}: {b}");
        b
    }

    /// One sample of `AppCPU/cpu0/usage` at the clock's time, then the clock moves on a
    /// minute.
    async fn poll(&self, value: f64) {
        let p = Point {
            device_id: self.device,
            device: "web-1".into(),
            datasource: "AppCPU".into(),
            instance: "cpu0".into(),
            datapoint: "usage".into(),
            ts_ms: self.now(),
            value,
        };
        pipeline::accept(&self.state, vec![p], &BTreeMap::new())
            .await
            .unwrap();
        self.clock.advance(MINUTE);
    }

    async fn active(&self) -> Vec<Value> {
        self.get("/santaba/rest/alert/alerts").await["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn only_active(&self) -> Value {
        let items = self.active().await;
        assert_eq!(items.len(), 1, "{items:?}");
        items[0].clone()
    }

    /// A chain with an email and a webhook destination, and a rule sending everything on
    /// `web-*` to it.
    async fn chain_and_rule(&self, repeat_minutes: i64) {
        let (s, chain) = self
            .call(
                "POST",
                "/santaba/rest/setting/alert/chains",
                &json!({"name": "ops", "repeatInterval": repeat_minutes, "destinations": [
                    {"type": "email", "addr": "oncall@example.com"},
                    {"type": "webhook", "url": format!("http://127.0.0.1:{}/hook", self.hook_port), "secret": HOOK_SECRET},
                ]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{chain}");
        assert!(
            !chain.to_string().contains(HOOK_SECRET),
            "the secret is never returned"
        );
        // A rule of higher priority that does not match comes first and is skipped.
        let (s, other) = self
            .call("POST", "/santaba/rest/setting/alert/rules", &json!({"name": "other", "priority": 1, "datasource": "Other*", "escalatingChainId": chain["id"]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{other}");
        let (s, rule) = self
            .call("POST", "/santaba/rest/setting/alert/rules", &json!({"name": "web", "priority": 10, "levelStr": "Warn", "devices": ["web-*"], "datasource": "App*", "escalatingChainId": chain["id"]}))
            .await;
        assert_eq!(s, StatusCode::OK, "{rule}");
        assert_eq!(rule["escalatingChain"]["name"], "ops");
    }

    async fn notify(&self) {
        self.state.alerts.notifier.run_now(&self.state).await;
    }

    async fn next_mail(&mut self) -> String {
        let m = tokio::time::timeout(Duration::from_secs(10), self.mail.recv())
            .await
            .expect("an email")
            .unwrap();
        m.replace("\r\n ", " ")
    }

    async fn next_hook(&mut self) -> Hook {
        tokio::time::timeout(Duration::from_secs(10), self.hooks.recv())
            .await
            .expect("a webhook")
            .unwrap()
    }

    /// Nothing more arrives for a moment.
    async fn quiet(&mut self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(m) = self.mail.try_recv() {
            panic!(
                "no email expected, got {}",
                subject(&m.replace("\r\n ", " "))
            );
        }
        if let Ok(h) = self.hooks.try_recv() {
            panic!("no webhook expected, got {}", h.json());
        }
    }
}

fn subject(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn verify(hook: &Hook) {
    let ts = &hook.headers[&palisade_notify::TIMESTAMP_HEADER.to_ascii_lowercase()];
    let sig = &hook.headers[&palisade_notify::SIGNATURE_HEADER.to_ascii_lowercase()];
    assert!(
        palisade_notify::verify_webhook_signature(HOOK_SECRET.as_bytes(), ts, &hook.body, sig),
        "signature verifies"
    );
    assert!(!palisade_notify::verify_webhook_signature(
        b"another secret of 16+",
        ts,
        &hook.body,
        sig
    ));
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_threshold_held_n_polls_opens_with_its_severity_and_clears_after_m() {
    let h = harness(json!({"alertExpr": "> 80 90 95", "alertTransitionInterval": 3, "alertClearTransitionInterval": 2})).await;
    h.poll(96.0).await;
    h.poll(96.0).await;
    assert!(h.active().await.is_empty(), "two polls are not enough");
    h.poll(96.0).await;
    let a = h.only_active().await;
    assert_eq!(a["severity"], 4);
    assert_eq!(a["threshold"], "> 95");
    assert_eq!(a["alertValue"], "96");
    assert_eq!(a["type"], "dataSourceAlert");
    assert_eq!(a["monitorObjectName"], "web-1");
    assert_eq!(a["monitorObjectType"], "device");
    assert_eq!(a["resourceTemplateName"], "AppCPU");
    assert_eq!(a["instanceName"], "cpu0");
    assert_eq!(a["dataPointName"], "usage");
    assert_eq!(a["cleared"], false);
    assert_eq!(a["sdted"], false);
    let id = a["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("DS"), "{id}");
    let one = h.get(&format!("/santaba/rest/alert/alerts/{id}")).await;
    assert_eq!(one["id"], a["id"]);
    // The evaluation state is persisted with the transition.
    let saved = h.state.portal.store.load_alert_states().await.unwrap();
    assert!(saved.iter().any(|(k, _)| k.contains("AppCPU")), "{saved:?}");
    // One clean poll is not enough; the second clears.
    h.poll(10.0).await;
    assert_eq!(h.active().await.len(), 1);
    h.poll(10.0).await;
    assert!(h.active().await.is_empty());
    let cleared = h
        .get("/santaba/rest/alert/alerts?filter=cleared:true")
        .await;
    assert_eq!(cleared["total"], 1);
    let c = &cleared["items"][0];
    assert_eq!(c["cleared"], true);
    assert_eq!(c["clearValue"], "10");
    assert!(c["endEpoch"].as_i64().unwrap() >= c["startEpoch"].as_i64().unwrap());
    assert_eq!(
        h.get("/santaba/rest/alert/alerts?filter=cleared:*").await["total"],
        1
    );
    assert_eq!(
        h.get("/santaba/rest/alert/alerts?filter=severity:4,cleared:*&fields=severity")
            .await["items"][0]["id"],
        a["id"]
    );
}

#[tokio::test]
async fn overrides_device_beats_group_beats_datasource() {
    let h = harness(json!({"alertExpr": "> 90"})).await;
    let (s, b) = h
        .call("PUT", "/santaba/rest/device/groups/1/alertsettings", &json!({"thresholds": [{"datasource": "AppCPU", "datapoint": "usage", "alertExpr": ">  50  60"}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["thresholds"][0]["alertExpr"], "> 50 60",
        "stored canonical"
    );
    h.poll(55.0).await;
    let a = h.only_active().await;
    assert_eq!(
        (a["severity"].as_i64(), a["threshold"].as_str()),
        (Some(2), Some("> 50"))
    );
    // The device's own override wins: 55 is now fine.
    let path = format!("/santaba/rest/device/devices/{}/alertsettings", h.device);
    let (s, b) = h.call("PUT", &path, &json!({"thresholds": [{"datasource": "AppCPU", "datapoint": "usage", "alertExpr": "> 70"}]})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h.get(&path).await["thresholds"][0]["alertExpr"], "> 70");
    h.poll(55.0).await;
    assert!(h.active().await.is_empty());
    h.poll(75.0).await;
    assert_eq!(h.only_active().await["threshold"], "> 70");
    // An empty override disables alerting: the alert clears with the next sample.
    h.call(
        "PUT",
        &path,
        &json!({"thresholds": [{"datasource": "AppCPU", "datapoint": "usage", "alertExpr": ""}]}),
    )
    .await;
    h.poll(99.0).await;
    assert!(h.active().await.is_empty());
    // Invalid expressions are refused.
    let (s, b) = h.call("PUT", &path, &json!({"thresholds": [{"datasource": "AppCPU", "datapoint": "usage", "alertExpr": "=> 5"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["errorMessage"].as_str().unwrap().contains("operator"),
        "{b}"
    );
    // Alerting disabled on the device: no alert at all.
    h.call("PUT", &path, &json!({"thresholds": []})).await;
    let (s, _) = h
        .call(
            "PATCH",
            &format!("/santaba/rest/device/devices/{}", h.device),
            &json!({"disableAlerting": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    h.poll(99.0).await;
    assert!(h.active().await.is_empty());
}

#[tokio::test]
async fn notifications_reach_smtp_and_a_signed_webhook_and_repeat() {
    let mut h = harness(json!({"alertExpr": "> 80 90 95"})).await;
    h.chain_and_rule(5).await;
    // The webhook fails at first: the email goes, the webhook is retried later.
    h.hook_status.store(500, Ordering::SeqCst);
    h.poll(96.0).await;
    h.notify().await;
    let mail = h.next_mail().await;
    assert_eq!(
        subject(&mail),
        "[Palisade] critical: web-1 AppCPU cpu0 usage = 96 (> 95)",
        "{mail}"
    );
    assert!(mail.contains("oncall@example.com"));
    h.hook_status.store(200, Ordering::SeqCst);
    h.notify().await;
    let hook = h.next_hook().await;
    verify(&hook);
    let body = hook.json();
    assert_eq!(body["event"], "open");
    assert_eq!(body["alert"]["severity"], 4);
    assert_eq!(body["alert"]["rule"], "web");
    assert_eq!(body["alert"]["chain"], "ops");
    assert_eq!(hook.headers["x-palisade-event"], "open");
    h.quiet().await;
    let a = h.only_active().await;
    assert_eq!(
        (a["rule"].as_str(), a["chain"].as_str()),
        (Some("web"), Some("ops"))
    );
    // Nothing more within the repeat interval (5 minutes); both again after it.
    h.notify().await;
    h.quiet().await;
    h.clock.advance(5 * MINUTE);
    h.notify().await;
    assert_eq!(
        subject(&h.next_mail().await),
        "[Palisade] critical: web-1 AppCPU cpu0 usage = 96 (> 95)"
    );
    let repeat = h.next_hook().await;
    verify(&repeat);
    assert_eq!(repeat.json()["event"], "repeat");
    // Acknowledged: no more repeats.
    let id = a["id"].as_str().unwrap();
    let (s, b) = h
        .call(
            "POST",
            &format!("/santaba/rest/alert/alerts/{id}/ack"),
            &json!({"ackComment": "looking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    h.clock.advance(20 * MINUTE);
    h.notify().await;
    h.quiet().await;
    // The clear goes to both.
    h.poll(10.0).await;
    h.notify().await;
    let clear = h.next_mail().await;
    assert_eq!(
        subject(&clear),
        "[Palisade] cleared: web-1 AppCPU cpu0 usage = 10",
        "{clear}"
    );
    let hook = h.next_hook().await;
    verify(&hook);
    assert_eq!(hook.json()["event"], "clear");
    assert_eq!(hook.json()["alert"]["cleared"], true);
    h.notify().await;
    h.quiet().await;
}

#[tokio::test]
async fn an_sdt_on_the_device_marks_the_alert_and_holds_notifications_until_it_ends() {
    let mut h = harness(json!({"alertExpr": "> 90"})).await;
    h.chain_and_rule(0).await;
    let now = h.now();
    let (s, sdt) = h
        .call("POST", "/santaba/rest/sdt/sdts", &json!({"type": "ResourceSDT", "sdtType": "oneTime", "deviceId": h.device, "startDateTime": now - MINUTE, "endDateTime": now + 10 * MINUTE, "comment": "patching"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{sdt}");
    let sdt_id = sdt["id"].as_str().unwrap().to_string();
    assert!(sdt_id.starts_with("R_"), "{sdt_id}");
    assert_eq!(sdt["isEffective"], true);
    assert_eq!(sdt["deviceDisplayName"], "web-1");
    assert_eq!(sdt["admin"], "ops");
    assert_eq!(sdt["duration"], 11);
    let listed = h
        .get(&format!("/santaba/rest/device/devices/{}/sdts", h.device))
        .await;
    assert_eq!(listed["items"][0]["id"], sdt["id"]);
    assert_eq!(h.get("/santaba/rest/sdt/sdts").await["total"], 1);

    h.poll(95.0).await;
    let a = h.only_active().await;
    assert_eq!(a["sdted"], true);
    h.notify().await;
    h.quiet().await;

    // Still in SDT a few minutes later; then it ends and the alert is announced.
    h.clock.advance(3 * MINUTE);
    h.state.alerts.tick(&h.state).await;
    h.notify().await;
    h.quiet().await;
    h.clock.advance(10 * MINUTE);
    h.state.alerts.tick(&h.state).await;
    assert_eq!(h.only_active().await["sdted"], false);
    h.notify().await;
    assert_eq!(
        subject(&h.next_mail().await),
        "[Palisade] warning: web-1 AppCPU cpu0 usage = 95 (> 90)"
    );
    verify(&h.next_hook().await);
    let over = h.get(&format!("/santaba/rest/sdt/sdts/{sdt_id}")).await;
    assert_eq!(over["isEffective"], false);

    // A group SDT set while the alert is active marks it again.
    let (s, g) = h
        .call("POST", "/santaba/rest/sdt/sdts", &json!({"type": "ResourceGroupSDT", "sdtType": "daily", "deviceGroupId": 1, "hour": 0, "minute": 0, "endHour": 23, "endMinute": 59, "timezone": "UTC"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert!(g["id"].as_str().unwrap().starts_with("RG_"));
    h.state.alerts.tick(&h.state).await;
    assert_eq!(h.only_active().await["sdted"], true);
    let (s, _) = h
        .call(
            "DELETE",
            &format!("/santaba/rest/sdt/sdts/{}", g["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = h
        .call(
            "DELETE",
            &format!("/santaba/rest/sdt/sdts/{sdt_id}"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("/santaba/rest/sdt/sdts").await["total"], 0);
}

#[tokio::test]
async fn ack_needs_a_comment_and_the_ack_privilege_and_is_audited() {
    let h = harness(json!({"alertExpr": "> 90"})).await;
    h.poll(95.0).await;
    let id = h.only_active().await["id"].as_str().unwrap().to_string();
    let path = format!("/santaba/rest/alert/alerts/{id}/ack");
    let (s, b) = h.call("POST", &path, &json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["errorMessage"].as_str().unwrap().contains("ackComment"),
        "{b}"
    );
    let (rid, rkey) = common::token_for(&h.state.portal, "viewer", &["host_group:*:read"]).await;
    assert_eq!(
        h.call_as(
            &rid,
            &rkey,
            "GET",
            "/santaba/rest/alert/alerts",
            &Value::Null
        )
        .await
        .1["total"],
        1
    );
    let (s, _) = h
        .call_as(&rid, &rkey, "POST", &path, &json!({"ackComment": "mine"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = h.call("POST", &path, &json!({"ackComment": "on it"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let a = h.only_active().await;
    assert_eq!(a["acked"], true);
    assert_eq!(a["ackedBy"], "ops");
    assert_eq!(a["ackComment"], "on it");
    assert!(a["ackedEpoch"].as_i64().unwrap() > 0);
    let (s, b) = h
        .call(
            "POST",
            &format!("/santaba/rest/alert/alerts/{id}/note"),
            &json!({"ackComment": "disk full"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["notes"][0]["comment"], "disk full");
    h.state.audit.flush().await;
    let log = h.state.portal.store.list_audit(None, 50).await.unwrap();
    assert!(
        log.iter()
            .any(|e| e.event.action == "alert.ack" && e.event.username == "ops"),
        "{log:?}"
    );
    let (s, _) = h
        .call("GET", "/santaba/rest/alert/alerts/DS999999", &Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_data_opens_after_the_configured_polls_and_clears_with_data() {
    let h = harness(json!({"alertExpr": "", "alertForNoData": 3})).await;
    h.poll(5.0).await; // the clock is now one poll interval after the sample
    h.clock.advance(2 * MINUTE - 1_000);
    h.state.alerts.tick(&h.state).await;
    assert!(h.active().await.is_empty(), "not yet three intervals");
    h.clock.advance(1_000);
    h.state.alerts.tick(&h.state).await;
    let a = h.only_active().await;
    assert_eq!(a["type"], "noData");
    assert_eq!(a["severity"], 3);
    assert_eq!(a["threshold"], "No Data");
    h.poll(6.0).await;
    assert!(h.active().await.is_empty());
}

#[tokio::test]
async fn bad_sdt_input_is_a_400_with_a_clear_message() {
    let h = harness(json!({"alertExpr": "> 90"})).await;
    let now = h.now();
    let d = h.device;
    for (body, needle) in [
        (
            json!({"sdtType": "oneTime", "deviceId": d, "startDateTime": now, "endDateTime": now + MINUTE}),
            "`type` is required",
        ),
        (
            json!({"type": "WebsiteSDT", "sdtType": "oneTime", "startDateTime": now, "endDateTime": now + MINUTE}),
            "not supported",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "oneTime", "deviceId": d, "startDateTime": now, "endDateTime": now - MINUTE}),
            "endDateTime",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "daily", "deviceId": d, "hour": 25, "minute": 0, "endHour": 1, "endMinute": 0}),
            "hour must be 0 to 23",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "weekly", "deviceId": d, "hour": 1, "minute": 0, "endHour": 2, "endMinute": 0, "weekDay": "Funday"}),
            "weekDay",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "oneTime", "deviceId": d, "startDateTime": now, "endDateTime": now + MINUTE, "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "sometimes", "deviceId": d}),
            "sdtType",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "oneTime", "startDateTime": now, "endDateTime": now + MINUTE}),
            "deviceId",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "oneTime", "deviceId": 424242, "startDateTime": now, "endDateTime": now + MINUTE}),
            "does not exist",
        ),
        (
            json!({"type": "ResourceSDT", "sdtType": "oneTime", "deviceId": d, "startDateTime": "soon", "endDateTime": now}),
            "SDT",
        ),
    ] {
        let (s, b) = h.call("POST", "/santaba/rest/sdt/sdts", &body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(b["errorCode"], 1400);
        let msg = b["errorMessage"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let (s, b) = h
        .call("GET", "/santaba/rest/sdt/sdts/R_999", &Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    // A valid one, then a PATCH that breaks it is refused and changes nothing.
    let (s, sdt) = h
        .call("POST", "/santaba/rest/sdt/sdts", &json!({"type": "DeviceSDT", "sdtType": "weekly", "deviceId": d, "weekDay": "Saturday", "hour": 23, "minute": 0, "endHour": 1, "endMinute": 0, "timezone": "Europe/Berlin"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{sdt}");
    assert_eq!(sdt["type"], "ResourceSDT");
    assert_eq!(sdt["duration"], 120);
    let path = format!("/santaba/rest/sdt/sdts/{}", sdt["id"].as_str().unwrap());
    let (s, b) = h
        .call("PATCH", &path, &json!({"endHour": 23, "endMinute": 0}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = h
        .call(
            "PATCH",
            &path,
            &json!({"comment": "weekend", "weekDay": "Sunday"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["comment"].as_str(),
            b["weekDay"].as_str(),
            b["hour"].as_i64()
        ),
        (Some("weekend"), Some("Sunday"), Some(23))
    );
    // Chains and rules refuse bad input too.
    for body in [
        json!({"name": "x", "destinations": [{"type": "webhook", "url": "http://hooks.example.com/x", "secret": HOOK_SECRET}]}),
        json!({"name": "x", "destinations": [{"type": "webhook", "url": "https://hooks.example.com/x"}]}),
        json!({"name": "x", "destinations": [{"type": "email", "addr": "not an address"}]}),
        json!({"destinations": []}),
    ] {
        let (s, b) = h
            .call("POST", "/santaba/rest/setting/alert/chains", &body)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
    }
    let (s, b) = h
        .call(
            "POST",
            "/santaba/rest/setting/alert/rules",
            &json!({"name": "r", "priority": 1, "escalatingChainId": 77}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    h.chain_and_rule(0).await;
    let chains = h.get("/santaba/rest/setting/alert/chains").await;
    let chain_id = chains["items"][0]["id"].as_i64().unwrap();
    let (s, b) = h
        .call(
            "DELETE",
            &format!("/santaba/rest/setting/alert/chains/{chain_id}"),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // A PATCH without the secret keeps it.
    let (s, b) = h
        .call("PATCH", &format!("/santaba/rest/setting/alert/chains/{chain_id}"), &json!({"destinations": [{"type": "webhook", "url": format!("http://127.0.0.1:{}/hook", h.hook_port)}]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["destinations"].as_array().unwrap().len(), 1);
}
