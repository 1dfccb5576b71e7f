//! The whole flow on loopback: ONE collector, running as `nobody` with only `CAP_NET_RAW`
//! as an ambient capability (what the hardened systemd unit grants), collects from every
//! kind of real peer — a private net-snmp `snmpd`, a private OpenSSH `sshd`, an HTTP server
//! and a Prometheus exporter, and ICMP — and the data reaches a real portal, whose
//! collector object shows a compliant, unprivileged process. No credential reaches the
//! collector's log, its work cache or its buffer.
//!
//! The root cases live in tests/portal.rs and are not repeated here:
//! `refuses_root_without_allow_root` (started as root without `--allow-root`, `run` exits
//! with EX_NOPERM naming root) and `registers_runs_and_delivers_host_http_and_prometheus_data`
//! (as root, as CI runs it, `--allow-root` runs and delivers, and the portal's collector
//! object has `isAdminAccount: true`, `privilege.elevated: true` and a `nonCompliance` reason
//! naming root).
//!
//! Needs root (to start sshd and drop to `nobody`), snmpd, sshd and setpriv: fails, never
//! skips, without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::peers::{
    key_fragments, keygen, Agent, Sshd, AUTH_TOKEN, COMMUNITY, PRIV_TOKEN, SSH_PASSWORD, SSH_USER,
};
use common::{chown_tree, require_root, setpriv, temp_dir, Collector, Portal, Target};
use serde_json::{json, Value};

/// `nobody` / `nogroup`.
const NOBODY: u32 = 65534;

/// Whether `net.ipv4.ping_group_range` covers `gid` (then ICMP uses a datagram socket even
/// with `CAP_NET_RAW`).
fn ping_group_covers(gid: u32) -> bool {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u64>().ok());
    matches!((it.next(), it.next()), (Some(lo), Some(hi)) if lo <= u64::from(gid) && u64::from(gid) <= hi)
}

/// The portal's collector object once a heartbeat of the process running as `uid` has
/// arrived (registration ran as root, so the first report is root's).
async fn collector_as(portal: &Portal, cid: i64, uid: u32, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let c = portal
            .ok("GET", &format!("/setting/collector/collectors/{cid}"), None)
            .await;
        if c["privilege"]["uid"] == uid {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no heartbeat from uid {uid} within {timeout:?}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The collection status of `datasource` on `device` as the portal lists it.
async fn collection_status(portal: &Portal, device: i64, datasource: &str) -> Value {
    let dss = portal
        .ok(
            "GET",
            &format!("/device/devices/{device}/devicedatasources"),
            None,
        )
        .await;
    dss["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataSourceName"] == datasource)
        .unwrap_or_else(|| panic!("no {datasource} on device {device}: {dss}"))["collectionStatus"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_with_net_raw_collects_snmp_ssh_http_prometheus_and_icmp_into_the_portal() {
    let started = Instant::now();
    require_root("starting sshd and dropping the collector to `nobody`");
    let setpriv = setpriv();

    // The peers, each on its own free 127.0.0.1 port.
    let snmpd = Agent::start().await;
    let keys = temp_dir("all-peers-keys");
    let key = keygen(&keys, "id_ed25519", "ed25519", "");
    let sshd = Sshd::start(&[&key.public]);
    let web = Target::start();
    let portal = Portal::start("all-peers");

    // Fast copies of the built-in SNMP_System, HostMemory and Ping, plus the HTTP and
    // Prometheus datasources of the harness (every 10 s).
    // The SNMP built-in's own appliesTo: a credential property counts as set (masked).
    portal.import_builtin_fast("SNMP_System", |_| {}).await;
    portal
        .import_builtin_fast("HostMemory", |v| {
            // 127.0.0.1 is the collector's own host, which `auto` would read locally.
            v["collector"]["target"] = Value::from("ssh");
        })
        .await;
    portal.import_builtin_fast("Ping", |_| {}).await;
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(common::http_datasource("PeerHTTP")),
        )
        .await;
    portal
        .ok(
            "POST",
            "/setting/datasources",
            Some(common::prometheus_datasource("PeerProm")),
        )
        .await;

    // One collector; the service user owns its state directory.
    let (cid, secret) = portal.add_collector("it-all-peers");
    let mut col = Collector::register(&portal, &secret, &temp_dir("all-peers-col"));
    chown_tree(&col.state, NOBODY, NOBODY);

    let snmp_port = snmpd.addr.port().to_string();
    let ssh_port = sshd.port.to_string();
    let web_port = web.port.to_string();
    let snmp_dev = portal
        .add_device(
            "127.0.0.1",
            "peer-snmp",
            cid,
            &[("snmp.community", COMMUNITY), ("snmp.port", &snmp_port)],
        )
        .await;
    let ssh_dev = portal
        .add_device(
            "127.0.0.1",
            "peer-ssh",
            cid,
            &[
                ("ssh.user", SSH_USER),
                ("ssh.key", &key.private),
                ("ssh.port", &ssh_port),
            ],
        )
        .await;
    let web_dev = portal
        .add_device(
            "127.0.0.1",
            "peer-web",
            cid,
            &[("web.port", &web_port), ("prom.port", &web_port)],
        )
        .await;

    // What the hardened unit grants: User=nobody-like, NoNewPrivileges=yes,
    // CapabilityBoundingSet=CAP_NET_RAW, AmbientCapabilities=CAP_NET_RAW. No --allow-root.
    col.start_wrapped(&[
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--no-new-privs",
        "--bounding-set=-all,+net_raw",
        "--inh-caps=-all,+net_raw",
        "--ambient-caps=+net_raw",
        "--",
    ]);
    let timeout = Duration::from_secs(40);

    // SNMP (v2c): sysUpTime and ifNumber of the private snmpd.
    let up = portal
        .wait_samples(snmp_dev, "SNMP_System", "SNMP_System", "sysUpTime", timeout)
        .await;
    assert!(up[0].1 > 0.0, "{up:?}");
    let ifs = portal
        .wait_samples(snmp_dev, "SNMP_System", "SNMP_System", "ifNumber", timeout)
        .await;
    assert!(ifs[0].1 >= 1.0, "{ifs:?}");

    // SSH: HostMemory read over an ed25519 login to the private sshd (the same machine, so
    // this host's MemTotal).
    let mem = portal
        .wait_samples(ssh_dev, "HostMemory", "HostMemory", "MemTotal", timeout)
        .await;
    let local =
        palisade_collector::parse::meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap());
    assert_eq!(mem[0].1, local["MemTotal"], "{mem:?}");
    assert!(
        sshd.count(&format!("Accepted publickey for {SSH_USER}"), 1) >= 1,
        "{}",
        sshd.log()
    );

    // HTTP: status and latency of /health.
    let status = portal
        .wait_samples(web_dev, "PeerHTTP", "PeerHTTP", "Status", timeout)
        .await;
    assert_eq!(status[0].1, 200.0, "{status:?}");
    let latency = portal
        .wait_samples(web_dev, "PeerHTTP", "PeerHTTP", "Latency", timeout)
        .await;
    assert!((0.0..5000.0).contains(&latency[0].1), "{latency:?}");

    // Prometheus: the scraped counters of shard a (100 + 5) and a gauge of shard b.
    let requests = portal
        .wait_samples(web_dev, "PeerProm", "a", "Requests", timeout)
        .await;
    assert_eq!(requests[0].1, 105.0, "{requests:?}");
    let queue = portal
        .wait_samples(web_dev, "PeerProm", "b", "Queue", timeout)
        .await;
    assert_eq!(queue[0].1, 9.0, "{queue:?}");

    // ICMP: every device (all 127.0.0.1) answers, no loss, a round-trip time.
    for dev in [snmp_dev, ssh_dev, web_dev] {
        let loss = portal
            .wait_samples(dev, "Ping", "Ping", "LossPercent", timeout)
            .await;
        assert!(loss.iter().all(|(_, l)| *l == 0.0), "{loss:?}");
        let rtt = portal
            .wait_samples(dev, "Ping", "Ping", "RttAvgMs", timeout)
            .await;
        assert!(
            rtt.iter().all(|(_, r)| (0.0..1000.0).contains(r)),
            "{rtt:?}"
        );
        assert_eq!(collection_status(&portal, dev, "Ping").await, "ok");
    }
    for (dev, ds) in [
        (snmp_dev, "SNMP_System"),
        (ssh_dev, "HostMemory"),
        (web_dev, "PeerHTTP"),
        (web_dev, "PeerProm"),
    ] {
        assert_eq!(collection_status(&portal, dev, ds).await, "ok", "{ds}");
    }

    // The collector object: an unprivileged, compliant process holding cap_net_raw only,
    // and which ICMP socket that gives it.
    let c = collector_as(&portal, cid, NOBODY, Duration::from_secs(10)).await;
    assert_eq!(c["status"], 1, "{c}");
    assert_eq!(c["isAdminAccount"], false, "{c}");
    let p = &c["privilege"];
    assert_eq!(p["uid"], NOBODY, "{c}");
    assert_eq!(p["gid"], NOBODY, "{c}");
    let net_raw = json!(["cap_net_raw"]);
    assert_eq!(p["capabilities"]["effective"], net_raw, "{c}");
    assert_eq!(p["capabilities"]["permitted"], net_raw, "{c}");
    assert_eq!(p["capabilities"]["ambient"], net_raw, "{c}");
    assert_eq!(p["nonCompliance"], json!([]), "{c}");
    assert_eq!(p["elevated"], false, "{c}");
    assert_eq!(p["allowRoot"], false, "{c}");
    assert_eq!(p["noNewPrivs"], true, "{c}");
    assert_eq!(p["canReadShadow"], false, "{c}");
    assert_eq!(p["installOwner"]["stateDir"]["uid"], NOBODY, "{c}");
    // A datagram socket when ping_group_range covers nogroup, else the raw socket that
    // CAP_NET_RAW allows.
    let icmp = if ping_group_covers(NOBODY) {
        "datagram"
    } else {
        "raw"
    };
    assert_eq!(p["icmp"], icmp, "{c}");
    assert!(web.hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    // No credential in the log, the work cache or the buffer.
    let cache = std::fs::read_to_string(col.state.join("work.json")).unwrap();
    assert!(
        cache.contains("snmp.port") && cache.contains("ssh.port") && cache.contains("web.port"),
        "{cache}"
    );
    let fragments = key_fragments(&key);
    let mut secrets: Vec<&str> = vec![COMMUNITY, AUTH_TOKEN, PRIV_TOKEN, SSH_PASSWORD];
    secrets.extend(fragments.iter().map(String::as_str));
    col.assert_no_secret_stored(&secrets);
    let log = col.log_text();
    assert!(!log.contains("status=denied"), "{log}");
    assert!(
        col.stop(),
        "SIGTERM stops the collector cleanly:\n{}",
        col.log_text()
    );
    eprintln!("all-peers flow test took {:?}", started.elapsed());
}
