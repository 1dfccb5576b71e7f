//! The collector against a real portal: registration, the privilege report, host, HTTP and
//! Prometheus collection reaching the portal's data endpoint, root refusal, and no loss of
//! buffered results across a portal outage and a `kill -9` of the collector.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{chown_tree, collector_bin, is_root, temp_dir, Collector, Portal, Target};
use palisade_collector::buffer;
use palisade_collector::process::ResultItem;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_and_delivers_host_http_and_prometheus_data() {
    let portal = Portal::start("e2e");
    let target = Target::start();
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(common::http_datasource("TestHTTP")),
        )
        .await;
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(common::prometheus_datasource("TestProm")),
        )
        .await;
    let (cid, secret) = portal.add_collector("it-e2e");
    let mut col = Collector::register(&portal, &secret, &temp_dir("e2e-col"));
    // The secret was single use.
    let again = Command::new(collector_bin())
        .args([
            "register",
            "--portal",
            &portal.base(),
            "--replace",
            "--secret-file",
        ])
        .arg(col.state.parent().unwrap().join("secret"))
        .arg("--state-dir")
        .arg(col.state.parent().unwrap().join("other"))
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(palisade_collector::EXIT_UNAVAILABLE as i32)
    );
    // The key file is the identity: mode 0600.
    use std::os::unix::fs::PermissionsExt;
    let key = col.state.join("collector.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The collector's own host (loopback address; ssh.user makes the built-in host
    // datasources apply) plus the HTTP and Prometheus targets.
    let port = target.port.to_string();
    let dev = portal
        .add_device(
            "127.0.0.1",
            "collector-host",
            cid,
            &[
                ("ssh.user", "monitor"),
                ("web.port", &port),
                ("prom.port", &port),
            ],
        )
        .await;
    col.start(&[]);

    let mem = portal
        .wait_samples(
            dev,
            "HostMemory",
            "HostMemory",
            "MemTotal",
            Duration::from_secs(40),
        )
        .await;
    assert!(mem[0].1 > 0.0, "{mem:?}");
    let used = portal
        .wait_samples(
            dev,
            "HostMemory",
            "HostMemory",
            "MemUsedPercent",
            Duration::from_secs(5),
        )
        .await;
    assert!((0.0..=100.0).contains(&used[0].1));
    let procs = portal
        .wait_samples(
            dev,
            "HostCPU",
            "HostCPU",
            "ProcsRunning",
            Duration::from_secs(20),
        )
        .await;
    assert!(procs[0].1 >= 1.0, "{procs:?}");

    let status = portal
        .wait_samples(
            dev,
            "TestHTTP",
            "TestHTTP",
            "Status",
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(status[0].1, 200.0);
    let queue2 = portal
        .wait_samples(
            dev,
            "TestHTTP",
            "TestHTTP",
            "QueueTimesTwo",
            Duration::from_secs(5),
        )
        .await;
    assert_eq!(queue2[0].1, 14.0);
    let bytes = portal
        .wait_samples(dev, "TestHTTP", "TestHTTP", "Bytes", Duration::from_secs(5))
        .await;
    assert!(bytes[0].1 > 10.0);
    let latency = portal
        .wait_samples(
            dev,
            "TestHTTP",
            "TestHTTP",
            "Latency",
            Duration::from_secs(5),
        )
        .await;
    assert!(latency[0].1 >= 0.0 && latency[0].1 < 5000.0);

    let shard_a = portal
        .wait_samples(dev, "TestProm", "a", "Requests", Duration::from_secs(20))
        .await;
    assert_eq!(shard_a[0].1, 105.0);
    let ok_a = portal
        .wait_samples(dev, "TestProm", "a", "Ok", Duration::from_secs(5))
        .await;
    assert_eq!(ok_a[0].1, 100.0);
    let queue_b = portal
        .wait_samples(dev, "TestProm", "b", "Queue", Duration::from_secs(5))
        .await;
    assert_eq!(queue_b[0].1, 9.0);

    // The Prometheus-compatible query API sees the same series.
    let q = reqwest::Client::new()
        .get(format!("{}/api/v1/query", portal.base()))
        .bearer_auth(&portal.token)
        .query(&[(
            "query",
            "TestProm_Queue{device=\"collector-host\",instance=\"b\"}",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(q.status().as_u16(), 200);
    let qv: Value = q.json().await.unwrap();
    assert_eq!(qv["data"]["result"][0]["value"][1], "9", "{qv}");

    // The privilege report reached the portal.
    let c = portal
        .ok("GET", &format!("/setting/collector/collectors/{cid}"), None)
        .await;
    assert_eq!(c["platform"], "Linux");
    assert_eq!(c["status"], 1, "{c}");
    let p = &c["privilege"];
    assert!(p["capabilities"]["effective"].is_array(), "{c}");
    assert!(p["installOwner"]["stateDir"]["mode"] == "0700", "{c}");
    if is_root() {
        // Root with `--allow-root` runs, and the portal flags it as non-compliant (the
        // root case of tests/all_peers.rs relies on this).
        assert_eq!(c["isAdminAccount"], true, "{c}");
        assert_eq!(p["user"], "root");
        assert_eq!(p["uid"], 0);
        assert_eq!(p["allowRoot"], true);
        assert_eq!(p["elevated"], true, "{c}");
        assert_eq!(p["canReadShadow"], true);
        let reasons = p["nonCompliance"].as_array().unwrap();
        assert!(
            reasons
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.contains("root"))),
            "nonCompliance names root: {c}"
        );
    } else {
        assert_eq!(p["uid"], u64::from(rustix::process::geteuid().as_raw()));
    }
    assert!(target.hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    // The ping of the built-in Ping datasource is answered or denied, never silent.
    let dss = portal
        .ok(
            "GET",
            &format!("/device/devices/{dev}/devicedatasources"),
            None,
        )
        .await;
    let ping = dss["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataSourceName"] == "Ping")
        .cloned();
    if let Some(ping) = ping {
        let s = ping.to_string();
        assert!(!s.contains("\"error\""), "{s}");
    }

    // No credential ever reaches the disk: the work cache is stripped.
    let cache = std::fs::read_to_string(col.state.join("work.json")).unwrap();
    assert!(cache.contains("web.port"));
    assert!(
        col.stop(),
        "SIGTERM stops the collector cleanly:\n{}",
        col.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_root_without_allow_root() {
    common::require_root("the refusal of root");
    let portal = Portal::start("root");
    let (_, secret) = portal.add_collector("it-root");
    let col = Collector::register(&portal, &secret, &temp_dir("root-col"));
    let out = Command::new(collector_bin())
        .arg("run")
        .arg("--state-dir")
        .arg(&col.state)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(palisade_collector::EXIT_PRIVILEGE))
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refuses to run because it runs as root"),
        "{err}"
    );
    assert!(err.contains("--allow-root"), "{err}");
    // `status` says the same without running.
    let st = col.status();
    assert_eq!(st["compliant"], false);
    assert_eq!(st["wouldRun"], false);
    assert_eq!(st["report"]["isAdminAccount"], true);
    assert_eq!(st["buffer"]["batches"], 0);
}

fn buffered_results(state: &std::path::Path) -> Vec<(String, ResultItem)> {
    let mut out = Vec::new();
    for (e, payload) in buffer::inspect(state).unwrap() {
        let v: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["batchId"], e.id.as_str());
        for r in v["results"].as_array().unwrap() {
            out.push((e.id.clone(), serde_json::from_value(r.clone()).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_outage_and_kill9_lose_nothing_and_count_nothing_twice() {
    let mut portal = Portal::start("outage");
    let target = Target::start();
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(common::http_datasource("OutageHTTP")),
        )
        .await;
    let (cid, secret) = portal.add_collector("it-outage");
    let mut col = Collector::register(&portal, &secret, &temp_dir("outage-col"));
    let port = target.port.to_string();
    let dev = portal
        .add_device("127.0.0.1", "outage-host", cid, &[("web.port", &port)])
        .await;
    col.start(&[]);
    let before = portal
        .wait_samples(
            dev,
            "OutageHTTP",
            "OutageHTTP",
            "Status",
            Duration::from_secs(30),
        )
        .await;
    assert!(!before.is_empty());

    // The portal goes away; the collector keeps collecting into its buffer.
    portal.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = col.status();
        let http_results = buffered_results(&col.state)
            .iter()
            .filter(|(_, r)| r.datasource == "OutageHTTP")
            .count();
        if http_results >= 3 && st["buffer"]["batches"].as_u64().unwrap() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the buffer did not grow: {st}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // kill -9: whatever is in the buffer must survive.
    col.kill9();
    let buffered = buffered_results(&col.state);
    let batch_ids: BTreeSet<String> = buffered.iter().map(|(id, _)| id.clone()).collect();
    let expected: BTreeSet<i64> = buffered
        .iter()
        .filter(|(_, r)| r.datasource == "OutageHTTP" && r.values.contains_key("Status"))
        .map(|(_, r)| r.timestamp)
        .collect();
    assert!(expected.len() >= 3, "{buffered:?}");

    // Back: the portal first, then the collector, which delivers the backlog.
    portal.serve();
    col.start(&[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: BTreeSet<String> = buffer::inspect(&col.state)
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.id)
            .collect();
        if left.is_disjoint(&batch_ids) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "buffered batches not delivered: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let samples = portal
        .samples(dev, "OutageHTTP", "OutageHTTP", "Status")
        .await
        .unwrap();
    let mut per_time: BTreeMap<i64, usize> = BTreeMap::new();
    for (t, v) in &samples {
        assert_eq!(*v, 200.0);
        *per_time.entry(*t).or_default() += 1;
    }
    for t in &expected {
        assert_eq!(
            per_time.get(t),
            Some(&1),
            "buffered sample at {t} must be in the portal exactly once: {samples:?}"
        );
    }
    assert!(
        per_time.values().all(|n| *n == 1),
        "duplicates: {per_time:?}"
    );
    // Samples from before the outage are all still there, once.
    for (t, _) in &before {
        assert_eq!(per_time.get(t), Some(&1));
    }
    // The heartbeat reports the buffer as empty again, and nothing was dropped.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = portal
            .ok("GET", &format!("/setting/collector/collectors/{cid}"), None)
            .await;
        if c["bufferedBatches"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{c}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(col.status()["buffer"]["dropped"], 0);
    let log = col.log_text();
    assert!(col.stop(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_as_an_unprivileged_user_compliant_and_ping_is_never_silent() {
    common::require_root("dropping the collector to `nobody`");
    let setpriv = common::setpriv();
    let portal = Portal::start("nobody");
    let (cid, secret) = portal.add_collector("it-nobody");
    let dir = temp_dir("nobody-col");
    let mut col = Collector::register(&portal, &secret, &dir);
    // The service user owns the state directory (what `migrate` will do).
    chown_tree(&col.state, 65534, 65534);
    let dev = portal
        .add_device("127.0.0.1", "nobody-host", cid, &[("ssh.user", "monitor")])
        .await;
    col.start_wrapped(&[
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ]);
    let mem = portal
        .wait_samples(
            dev,
            "HostMemory",
            "HostMemory",
            "MemTotal",
            Duration::from_secs(40),
        )
        .await;
    assert!(mem[0].1 > 0.0);
    let c = portal
        .ok("GET", &format!("/setting/collector/collectors/{cid}"), None)
        .await;
    assert_eq!(c["isAdminAccount"], false, "{c}");
    let p = &c["privilege"];
    assert_eq!(p["uid"], 65534, "{c}");
    assert_eq!(p["capabilities"]["effective"], serde_json::json!([]), "{c}");
    assert_eq!(p["canReadShadow"], false, "{c}");
    assert_eq!(p["nonCompliance"], serde_json::json!([]), "{c}");
    // Ping: answered when ping_group_range covers the group, otherwise denied naming what
    // is missing. Never silently empty.
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let covered = {
        let mut it = range
            .split_whitespace()
            .filter_map(|n| n.parse::<u64>().ok());
        matches!((it.next(), it.next()), (Some(lo), Some(hi)) if lo <= 65534 && 65534 <= hi)
    };
    // Without any capability, the report names the datagram socket or the denial.
    let icmp = if covered { "datagram" } else { "denied" };
    assert_eq!(p["icmp"], icmp, "{c}");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let dss = portal
            .ok(
                "GET",
                &format!("/device/devices/{dev}/devicedatasources"),
                None,
            )
            .await;
        let ping = dss["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataSourceName"] == "Ping")
            .cloned();
        if let Some(ping) = ping {
            if covered {
                assert_eq!(ping["collectionStatus"], "ok", "{ping}");
            } else {
                assert_eq!(ping["collectionStatus"], "denied", "{ping}");
                assert_eq!(
                    ping["collectionLacks"],
                    palisade_collector::methods::ping::LACKS,
                    "{ping}"
                );
            }
            break;
        }
        if Instant::now() > deadline {
            // The portal lists a datasource only once it has stored a value, and a denied
            // result carries none: the collector's log names the denial.
            let log = col.log_text();
            assert!(
                !covered,
                "no Ping data although ping_group_range covers nobody: {log}"
            );
            let line = log
                .lines()
                .find(|l| l.contains("collection failed") && l.contains("datasource=Ping"))
                .unwrap_or_else(|| panic!("no denied Ping in the log: {log}"));
            assert!(line.contains("status=denied"), "{line}");
            assert!(
                line.contains(palisade_collector::methods::ping::LACKS),
                "{line}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(col.stop(), "{}", col.log_text());
}

fn register_output(portal: &Portal, secret: &str, extra: &[&str]) -> std::process::Output {
    let dir = temp_dir("tls-reg");
    std::fs::write(dir.join("secret"), secret).unwrap();
    let out = Command::new(collector_bin())
        .args(["register", "--portal", &portal.base(), "--secret-file"])
        .arg(dir.join("secret"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_portal_trusted_by_ca_file_or_pin_and_certificate_expiry_measured() {
    let portal = Portal::start_tls("tls");
    let (_, ca) = {
        let t = portal.tls.as_ref().unwrap();
        (t.0.clone(), t.2.clone())
    };
    let ca = ca.to_str().unwrap().to_string();
    // The built-in roots do not know this CA: refused, nothing stored.
    let (_, s1) = portal.add_collector("tls-roots");
    let out = register_output(&portal, &s1, &[]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(palisade_collector::EXIT_UNAVAILABLE))
    );
    // A wrong pin: refused, naming the certificate's real hash.
    let der = std::fs::read(portal.dir.join("leaf.der")).unwrap();
    let pin = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der));
    let out = register_output(&portal, &s1, &["--pin-sha256", &"00".repeat(32)]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(palisade_collector::EXIT_UNAVAILABLE))
    );
    // The secret was not used by the refused attempts: the right pin registers with it.
    let out = register_output(&portal, &s1, &["--pin-sha256", &pin]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A collector trusting the CA file runs and measures the portal's certificate expiry.
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(serde_json::json!({
                "name": "TLSExpiry",
                "appliesTo": "tls.port",
                "collectMethod": "http",
                "collectInterval": 10,
                "collector": {"method": "http", "url": "https://##system.hostname##:##tls.port##/healthz",
                              "tlsVerify": false, "timeoutMs": 5000,
                              "values": {"CertDays": "certDaysToExpiry", "Status": "statusCode"}},
                "dataPoints": [{"name": "CertDays", "type": "gauge"}, {"name": "Status", "type": "gauge"}]
            })),
        )
        .await;
    let (cid, s2) = portal.add_collector("tls-ca");
    let mut col = Collector::register_with(&portal, &s2, &temp_dir("tls-col"), &["--ca-file", &ca]);
    assert!(col.state.join("portal-ca.pem").is_file());
    let port = portal.port.to_string();
    let dev = portal
        .add_device("127.0.0.1", "tls-host", cid, &[("tls.port", &port)])
        .await;
    col.start(&[]);
    let days = portal
        .wait_samples(
            dev,
            "TLSExpiry",
            "TLSExpiry",
            "CertDays",
            Duration::from_secs(30),
        )
        .await;
    // 20 days from issuance, read moments later: 19 whole days (20 if the clocks of the
    // certificate and the check straddle a second boundary the other way).
    assert!(
        days.iter().all(|(_, d)| (19.0..=20.0).contains(d)),
        "a certificate valid 20 days from now: {days:?}"
    );
    let c = portal
        .ok("GET", &format!("/setting/collector/collectors/{cid}"), None)
        .await;
    assert_eq!(c["status"], 1, "{c}");
    assert!(col.stop(), "{}", col.log_text());
}
