//! The collector's `snmp` method against a real net-snmp `snmpd` (started by the test on a
//! free 127.0.0.1 port with its own configuration) and a real portal: SNMP_System and
//! SNMP_Interfaces data over v2c and v3 authPriv reach the portal, and a wrong community
//! or a wrong v3 authentication password shows as an `error` collection status that names
//! the problem without the secret. Fails (never skips) when snmpd is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::peers::{Agent, AUTH_TOKEN, COMMUNITY, PRIV_TOKEN, V3_USER};
use common::{temp_dir, Collector, Portal};
use serde_json::Value;

const WRONG_COMMUNITY: &str = "wrong-community-s3cret";
const WRONG_AUTH_TOKEN: &str = "wrong-authpass-s3cret";

/// The device's datasource entry once it has a collection status other than `ok`.
async fn wait_status(portal: &Portal, device: i64, datasource: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let dss = portal
            .ok(
                "GET",
                &format!("/device/devices/{device}/devicedatasources"),
                None,
            )
            .await;
        let found = dss["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataSourceName"] == datasource && d["collectionStatus"] != "ok")
            .cloned();
        if let Some(d) = found {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "no failed {datasource} on device {device} within {timeout:?}: {dss}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [
        COMMUNITY,
        WRONG_COMMUNITY,
        AUTH_TOKEN,
        PRIV_TOKEN,
        WRONG_AUTH_TOKEN,
    ] {
        assert!(!text.contains(s), "{what} contains a secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snmp_v2c_and_v3_data_reach_the_portal_and_failures_are_named() {
    let started = Instant::now();
    let agent = Agent::start().await;
    let port = agent.addr.port().to_string();
    let portal = Portal::start("snmp");
    // The built-ins' own appliesTo: a credential property counts as set (masked).
    portal.import_builtin_fast("SNMP_System", |_| {}).await;
    portal.import_builtin_fast("SNMP_Interfaces", |_| {}).await;
    let (cid, secret) = portal.add_collector("it-snmp");
    let mut col = Collector::register(&portal, &secret, &temp_dir("snmp-col"));

    let v2 = portal
        .add_device(
            "127.0.0.1",
            "snmp-v2c",
            cid,
            &[("snmp.community", COMMUNITY), ("snmp.port", &port)],
        )
        .await;
    let v3_props = |auth_token: &'static str| -> Vec<(&str, &str)> {
        vec![
            ("snmp.version", "v3"),
            ("snmp.security", V3_USER),
            ("snmp.auth", "SHA256"),
            ("snmp.authToken", auth_token),
            ("snmp.priv", "AES"),
            ("snmp.privToken", PRIV_TOKEN),
            ("snmp.port", port.as_str()),
        ]
    };
    let props = v3_props(AUTH_TOKEN);
    let v3 = portal.add_device("127.0.0.1", "snmp-v3", cid, &props).await;
    let bad = portal
        .add_device(
            "127.0.0.1",
            "snmp-bad-community",
            cid,
            &[("snmp.community", WRONG_COMMUNITY), ("snmp.port", &port)],
        )
        .await;
    let props = v3_props(WRONG_AUTH_TOKEN);
    let bad_auth = portal
        .add_device("127.0.0.1", "snmp-bad-auth", cid, &props)
        .await;
    col.start(&[]);

    // SNMP_System: sysUpTime (TimeTicks) and its expression, over v2c and v3 authPriv.
    for dev in [v2, v3] {
        let up = portal
            .wait_samples(
                dev,
                "SNMP_System",
                "SNMP_System",
                "sysUpTime",
                Duration::from_secs(40),
            )
            .await;
        assert!(up[0].1 > 0.0, "{up:?}");
        let secs = portal
            .wait_samples(
                dev,
                "SNMP_System",
                "SNMP_System",
                "UptimeSeconds",
                Duration::from_secs(5),
            )
            .await;
        assert!(secs[0].1 >= 0.0, "{secs:?}");
        let n = portal
            .wait_samples(
                dev,
                "SNMP_System",
                "SNMP_System",
                "ifNumber",
                Duration::from_secs(5),
            )
            .await;
        assert!(n[0].1 >= 1.0, "{n:?}");
    }

    // SNMP_Interfaces: instances named by ifName; octet counters become rates after the
    // second poll (10 s apart). SNMP itself runs over lo, so lo's rate is above zero.
    for dev in [v2, v3] {
        let rx = portal
            .wait_samples(
                dev,
                "SNMP_Interfaces",
                "lo",
                "ifHCInOctets",
                Duration::from_secs(60),
            )
            .await;
        assert!(rx.iter().all(|(_, v)| *v >= 0.0), "{rx:?}");
        assert!(rx.iter().any(|(_, v)| *v > 0.0), "{rx:?}");
        let tx = portal
            .wait_samples(
                dev,
                "SNMP_Interfaces",
                "lo",
                "ifHCOutOctets",
                Duration::from_secs(10),
            )
            .await;
        assert!(tx.iter().all(|(_, v)| *v >= 0.0), "{tx:?}");
        let bits = portal
            .wait_samples(
                dev,
                "SNMP_Interfaces",
                "lo",
                "InBitsPerSecond",
                Duration::from_secs(10),
            )
            .await;
        assert!(bits[0].1 >= 0.0, "{bits:?}");
        let status = portal
            .wait_samples(
                dev,
                "SNMP_Interfaces",
                "lo",
                "ifOperStatus",
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(status[0].1, 1.0, "lo is up: {status:?}");
    }
    // The instance carries its SNMP index.
    let hds = portal
        .ok(
            "GET",
            &format!("/device/devices/{v2}/devicedatasources"),
            None,
        )
        .await;
    let ifs = hds["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataSourceName"] == "SNMP_Interfaces")
        .unwrap()
        .clone();
    assert_eq!(ifs["collectionStatus"], "ok", "{ifs}");
    let insts = portal
        .ok(
            "GET",
            &format!(
                "/device/devices/{v2}/devicedatasources/{}/instances",
                ifs["id"]
            ),
            None,
        )
        .await;
    let lo = insts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "lo")
        .unwrap_or_else(|| panic!("no lo instance: {insts}"))
        .clone();
    assert!(
        lo["customProperties"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "snmp.index"),
        "{lo}"
    );

    // The Prometheus-compatible query API sees the same series.
    let q = reqwest::Client::new()
        .get(format!("{}/api/v1/query", portal.base()))
        .bearer_auth(&portal.token)
        .query(&[("query", "SNMP_System_sysUpTime{device=\"snmp-v3\"}")])
        .send()
        .await
        .unwrap();
    assert_eq!(q.status().as_u16(), 200);
    let qv: Value = q.json().await.unwrap();
    assert!(
        qv["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|v| v > 0.0),
        "{qv}"
    );

    // A wrong community: no answer, an error naming what to check, never the community.
    let e = wait_status(&portal, bad, "SNMP_System", Duration::from_secs(40)).await;
    assert_eq!(e["collectionStatus"], "error", "{e}");
    let msg = e["collectionMessage"].as_str().unwrap();
    assert!(
        msg.starts_with("SNMP timeout (check snmp.community / v3 credentials, reachability)"),
        "{msg}"
    );
    assert_no_secret("the collection message", &e.to_string());

    // A wrong v3 authentication password: the USM problem, never the password.
    let e = wait_status(&portal, bad_auth, "SNMP_System", Duration::from_secs(40)).await;
    assert_eq!(e["collectionStatus"], "error", "{e}");
    let msg = e["collectionMessage"].as_str().unwrap();
    assert!(
        msg.contains("usmStatsWrongDigests") && msg.contains("snmp.authToken"),
        "{msg}"
    );
    assert_no_secret("the collection message", &e.to_string());

    // Credentials reach neither the log nor the disk.
    let log = col.log_text();
    assert!(log.contains("collection failed"), "{log}");
    assert_no_secret("the collector log", &log);
    let cache = std::fs::read_to_string(col.state.join("work.json")).unwrap();
    assert!(cache.contains("snmp.port"));
    assert_no_secret("work.json", &cache);
    for entry in std::fs::read_dir(col.state.join("buffer")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert_no_secret("a buffered batch", &String::from_utf8_lossy(&bytes));
        }
    }
    assert!(col.stop(), "{}", col.log_text());
    eprintln!("snmp end-to-end test took {:?}", started.elapsed());
}
