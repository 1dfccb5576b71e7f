//! Server time of every web UI page on a seeded portal, measured in-process (the router
//! driven without a socket, from the request to the last byte of the body).
//!
//! The portal is seeded like `scripts/quickstart` after a week: the collector's own host
//! with the built-in HostCPU, HostMemory, HostDisk and HostNetwork datapoints every minute
//! for 7 days (49 series, ~494,000 samples), plus 24 SNMP switches with a day of interface
//! data in 4 groups, open alerts, downtime, 12 users with tokens and 5,000 audit entries.
//! Target: every page under 100 ms.
//!
//! Run: `cargo bench -p palisade-server --bench ui` (prints a table; `UI_BENCH_ITERS=N`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade_core::privilege::administrator_privileges;
use palisade_server::auth::Caller;
use palisade_server::monitor::pipeline::{self, Point};
use palisade_server::monitor::{alerts, devices::Owner, TsdbHandle};
use palisade_server::portal::Actor;
use palisade_server::signin::session::{self, SessionState};
use palisade_server::{app, AppOptions, AppState, StoreConfig};
use palisade_store::inventory::{CollectorDoc, CollectorReport};
use palisade_store::{objects, AuditEvent};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const MIN: i64 = 60_000;
const DAY: i64 = 1440 * MIN;

/// The quickstart host's series: (datasource, instance, datapoints).
fn host_series() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "HostCPU",
            "cpu",
            vec![
                "User",
                "System",
                "Idle",
                "IOWait",
                "Steal",
                "Total",
                "ContextSwitches",
                "ProcsRunning",
                "ProcsBlocked",
                "CPUBusyPercent",
                "IOWaitPercent",
                "StealPercent",
            ],
        ),
        (
            "HostMemory",
            "memory",
            vec![
                "MemTotal",
                "MemFree",
                "MemAvailable",
                "Buffers",
                "Cached",
                "SwapTotal",
                "SwapFree",
                "MemUsedPercent",
                "SwapUsedPercent",
            ],
        ),
        (
            "HostDisk",
            "/",
            vec!["Total", "Used", "Available", "UsedPercent"],
        ),
        (
            "HostDisk",
            "/var",
            vec!["Total", "Used", "Available", "UsedPercent"],
        ),
        (
            "HostNetwork",
            "eth0",
            vec![
                "RxBytes",
                "TxBytes",
                "RxPackets",
                "TxPackets",
                "RxErrors",
                "TxErrors",
                "RxDrops",
                "TxDrops",
                "RxBitsPerSecond",
                "TxBitsPerSecond",
            ],
        ),
        (
            "HostNetwork",
            "lo",
            vec![
                "RxBytes",
                "TxBytes",
                "RxPackets",
                "TxPackets",
                "RxErrors",
                "TxErrors",
                "RxDrops",
                "TxDrops",
                "RxBitsPerSecond",
                "TxBitsPerSecond",
            ],
        ),
    ]
}

fn wave(t: i64, seed: u64) -> f64 {
    let x = (t / MIN) as f64;
    50.0 + 30.0 * (x / 90.0 + seed as f64).sin() + 10.0 * ((x * 7.0 + seed as f64 * 13.0).sin())
}

async fn push(state: &AppState, points: Vec<Point>) {
    for chunk in points.chunks(200_000) {
        pipeline::accept(state, chunk.to_vec(), &BTreeMap::new())
            .await
            .unwrap();
    }
}

struct Seeded {
    state: Arc<AppState>,
    cookie: String,
    host: i64,
    group: i64,
    collector: i64,
    user: i64,
    alert: String,
}

async fn seed(dir: &std::path::Path) -> Seeded {
    let cfg = StoreConfig {
        data_dir: dir.to_path_buf(),
        database_url: None,
        master_key_file: None,
    };
    let (portal, _) = palisade_server::open_portal(&cfg).await.unwrap();
    let tsdb =
        palisade_tsdb::Tsdb::open(dir.join("tsdb"), palisade_tsdb::Options::default()).unwrap();
    let (state, _audit) = AppState::new(
        portal,
        AppOptions {
            tsdb: Some(TsdbHandle(Arc::new(tsdb))),
            ..Default::default()
        },
    );
    let portal = &state.portal;
    let cli = Actor::cli();
    let now = portal.now();

    // The administrator who browses.
    let admin_role = portal
        .store
        .get_role_by_name("administrator")
        .await
        .unwrap()
        .unwrap();
    let admin = palisade_server::ops::users::create(
        portal,
        &cli,
        serde_json::from_value(json!({"username": "bench-admin", "email": "a@example.com", "roles": [{"id": admin_role.id}]}))
            .unwrap(),
    )
    .await
    .unwrap();
    let caller = Caller {
        actor: cli.clone(),
        user: admin.clone(),
        token: None,
        privileges: administrator_privileges(),
    };
    let (sid, _) = session::start(
        portal,
        admin.id,
        SessionState::Active,
        "password",
        "127.0.0.1",
        "bench",
        true,
    )
    .await
    .unwrap();

    // The quickstart collector, registered and reporting, not root.
    let collector = objects::create(
        portal.store.as_ref(),
        &CollectorDoc {
            description: "quickstart: this host".into(),
            key_hash: Some("bench".into()),
            registered_on: Some(now - 7 * DAY),
            last_heartbeat: Some(now - 20_000),
            last_ip: "127.0.0.1".into(),
            report: Some(CollectorReport {
                hostname: "quickstart-host".into(),
                platform: "Linux".into(),
                arch: "x86_64".into(),
                build: "0.1.0".into(),
                is_admin_account: false,
                privilege: json!({"user": "nobody", "uid": 65534, "gid": 65534, "groups": ["nogroup"], "capabilities": [], "elevated": false}),
                started_on: now - 7 * DAY,
                buffered_batches: 0,
            }),
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();

    // Groups and devices.
    use palisade_server::monitor::devices as dev;
    let mut groups = Vec::new();
    for name in ["core", "access", "dc1", "branch"] {
        groups.push(
            dev::create_group(&state, &caller, &json!({"name": name}))
                .await
                .unwrap(),
        );
    }
    let host = dev::create_device(
        &state,
        &caller,
        &json!({"name": "127.0.0.1", "displayName": "quickstart-host", "preferredCollectorId": collector.id}),
    )
    .await
    .unwrap();
    let mut switches = Vec::new();
    for i in 0..24 {
        let g = groups[i % groups.len()];
        let id = dev::create_device(
            &state,
            &caller,
            &json!({"name": format!("10.1.{}.{}", i / 8, i), "displayName": format!("switch-{i:02}"),
                    "hostGroupIds": g.to_string(), "preferredCollectorId": collector.id,
                    "customProperties": [{"name": "snmp.version", "value": "v2c"}, {"name": "snmp.community", "value": "bench-community"}]}),
        )
        .await
        .unwrap();
        switches.push((id, format!("switch-{i:02}")));
    }
    alerts::put_settings(
        &state,
        &caller,
        Owner::Device(host),
        &json!({"thresholds": [{"datasource": "HostCPU", "datapoint": "CPUBusyPercent", "alertExpr": "> 85 90 95"}]}),
    )
    .await
    .unwrap();
    alerts::put_settings(
        &state,
        &caller,
        Owner::Group(groups[0]),
        &json!({"thresholds": [{"datasource": "SNMP_Interfaces", "datapoint": "ifInErrors", "alertExpr": "> 5 10 20"}]}),
    )
    .await
    .unwrap();

    // A week of the host, a minute apart; CPU busy spikes in the last minutes.
    let start = now - 7 * DAY;
    for day in 0..7 {
        let mut pts = Vec::new();
        for (ds, inst, dps) in host_series() {
            for (k, dp) in dps.iter().enumerate() {
                let mut t = start + day * DAY;
                while t < (start + (day + 1) * DAY).min(now) {
                    let mut v = wave(t, k as u64);
                    if dp == &"CPUBusyPercent" && now - t < 5 * MIN {
                        v = 97.0;
                    }
                    pts.push(Point {
                        device_id: host,
                        device: "quickstart-host".into(),
                        datasource: ds.into(),
                        instance: inst.into(),
                        datapoint: (*dp).into(),
                        ts_ms: t,
                        value: v,
                    });
                    t += MIN;
                }
            }
        }
        push(&state, pts).await;
    }
    // A day of two interfaces per switch; errors on a few core switches.
    let mut pts = Vec::new();
    for (n, (id, name)) in switches.iter().enumerate() {
        for inst in ["Gi0/1", "Gi0/2"] {
            for (k, dp) in ["ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOutErrors"]
                .iter()
                .enumerate()
            {
                let mut t = now - DAY;
                while t < now {
                    let v = if *dp == "ifInErrors" {
                        if n % 8 == 0 && now - t < 10 * MIN {
                            25.0
                        } else {
                            0.0
                        }
                    } else {
                        wave(t, (n * 4 + k) as u64) * 1e6
                    };
                    pts.push(Point {
                        device_id: *id,
                        device: name.clone(),
                        datasource: "SNMP_Interfaces".into(),
                        instance: inst.into(),
                        datapoint: (*dp).into(),
                        ts_ms: t,
                        value: v,
                    });
                    t += MIN;
                }
            }
        }
    }
    push(&state, pts).await;

    // Downtime, users, tokens, and audit history.
    palisade_server::monitor::sdt::create(
        &state,
        &caller,
        &json!({"type": "ResourceGroupSDT", "deviceGroupId": groups[3], "sdtType": "oneTime",
                "startDateTime": now - 3_600_000, "endDateTime": now + 3_600_000, "comment": "branch maintenance"}),
    )
    .await
    .unwrap();
    let readonly = portal
        .store
        .get_role_by_name("readonly")
        .await
        .unwrap()
        .unwrap();
    let mut last_user = 0;
    for i in 0..12 {
        let api_only = i % 2 == 0;
        let u = palisade_server::ops::users::create(
            portal,
            &cli,
            serde_json::from_value(
                json!({"username": format!("user{i}"), "email": format!("u{i}@example.com"),
                                          "roles": [{"id": readonly.id}], "apionly": api_only}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
        if api_only {
            palisade_server::ops::tokens::create(portal, &cli, u.id, Default::default())
                .await
                .unwrap();
        }
        last_user = u.id;
    }
    for batch in 0..10 {
        let events: Vec<AuditEvent> = (0..500)
            .map(|i| {
                let mut e = cli.event(
                    now - (5000 - batch * 500 - i) * 1000,
                    "api.call",
                    format!("API call GET /santaba/rest/device/devices?size=50 -> 200 via LMv1 token {i}"),
                );
                e.ip = format!("192.0.2.{}", i % 200);
                e.status = Some(200);
                e.method = "GET".into();
                e.path = "/santaba/rest/device/devices?size=50".into();
                e
            })
            .collect();
        portal.store.append_audit(events).await.unwrap();
    }
    state.audit.flush().await;
    state.estate.invalidate();
    let active = alerts::list_alerts(&state, &caller, None).await.unwrap();
    let alert = active
        .first()
        .and_then(|a| a["id"].as_str())
        .unwrap_or("DS1")
        .to_string();
    Seeded {
        state,
        cookie: format!("palisade_session={sid}"),
        host,
        group: groups[0],
        collector: collector.id,
        user: last_user,
        alert,
    }
}

async fn get(s: &Seeded, path: &str) -> (StatusCode, usize) {
    let mut req = Request::builder()
        .uri(path)
        .header("cookie", &s.cookie)
        .body(Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let resp = app(s.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let iters: usize = std::env::var("UI_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("palisade-ui-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(async {
        let t0 = Instant::now();
        let s = seed(&dir).await;
        println!("seeded in {:.1} s", t0.elapsed().as_secs_f64());
        let pages = vec![
            "/ui".to_string(),
            "/ui?wall=1".to_string(),
            "/ui/devices".to_string(),
            "/ui/devices?q=switch-1&health=alerting".to_string(),
            format!("/ui/devices/{}", s.host),
            format!("/ui/devices/{}?range=6h", s.host),
            format!("/ui/devices/{}?range=24h", s.host),
            format!("/ui/devices/{}?range=7d", s.host),
            format!("/ui/devices/{}?range=30d", s.host),
            "/ui/devices/new".to_string(),
            format!("/ui/groups/{}", s.group),
            "/ui/alerts".to_string(),
            "/ui/alerts?status=all".to_string(),
            format!("/ui/alerts/{}", s.alert),
            "/ui/sdts".to_string(),
            "/ui/sdts/new".to_string(),
            "/ui/collectors".to_string(),
            format!("/ui/collectors/{}", s.collector),
            "/ui/users".to_string(),
            format!("/ui/users/{}", s.user),
            "/ui/roles".to_string(),
            "/ui/tokens".to_string(),
            "/ui/tokens/new".to_string(),
            "/ui/audit".to_string(),
            "/ui/audit?action=api.call".to_string(),
            "/ui/audit?action=api.call&ip=192.0.2.7".to_string(),
            "/ui/audit/report.csv".to_string(),
            "/ui/audit/report.html?action=user.".to_string(),
            "/ui/settings".to_string(),
        ];
        println!(
            "{:<44} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "page", "min ms", "p50 ms", "p95 ms", "max ms", "bytes"
        );
        let mut worst: f64 = 0.0;
        for p in &pages {
            // Warm up (caches of the estate, the SDTs, the time-series store).
            for _ in 0..3 {
                let (status, _) = get(&s, p).await;
                assert_eq!(status, StatusCode::OK, "{p}");
            }
            let mut times = Vec::with_capacity(iters);
            let mut bytes = 0;
            for _ in 0..iters {
                let t = Instant::now();
                let (status, n) = get(&s, p).await;
                times.push(t.elapsed());
                assert_eq!(status, StatusCode::OK, "{p}");
                bytes = n;
            }
            times.sort();
            let p50 = times[times.len() / 2];
            let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
            worst = worst.max(ms(p95));
            println!(
                "{:<44} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9}",
                p,
                ms(times[0]),
                ms(p50),
                ms(p95),
                ms(times[times.len() - 1]),
                bytes
            );
        }
        println!("slowest p95: {worst:.2} ms (target: under 100 ms)");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
