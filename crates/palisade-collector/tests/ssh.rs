//! The collector's `ssh` method against a real OpenSSH `sshd` (Debian's
//! `openssh-server`), started by each test on a free 127.0.0.1 port with its own
//! configuration in a temporary directory, logging in as the dedicated local user
//! `palisade-sshpeer` (created when absent; the tests run as root, here and in CI).
//!
//! Covered: ed25519 and RSA key authentication running the built-in host datasources'
//! commands remotely (values compared with this host's own), one connection shared by a
//! device's datasources, password authentication, a wrong password, an unknown key and an
//! encrypted key without its passphrase (clear errors, one login attempt), pinned host keys
//! (fingerprint and key line, match and mismatch), trust on first use refusing a changed
//! key, a command timeout, a failing command, the data reaching a real portal, and no
//! secret in any message, log or file. Fails (never skips) when sshd is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peers::{
    key_fragments, keygen, KeyPair, Sshd, SSH_PASSWORD as PASSWORD, SSH_USER as USER,
};
use common::{free_port, temp_dir, Collector, Portal};
use palisade_collector::methods::ssh::Ssh;
use palisade_collector::methods::{Method, Methods, Task};
use palisade_collector::process::{Outcome, RawInstance};
use palisade_collector::work::Device;
use palisade_core::datasource::{builtins, Collector as DsCollector, DataSource, SshTarget};
use serde_json::Value;

const WRONG_PASSWORD: &str = "wrong-Pass-s3cret-0815";
const KEY_PASS: &str = "key-Passphrase-it-99";

/// `SHA256:…` of a public key file, as ssh-keygen prints it.
fn fingerprint_of(public_line: &str, dir: &Path) -> String {
    let p = dir.join(format!("fp-{}.pub", rand::random::<u32>()));
    std::fs::write(&p, format!("{public_line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in {text}"))
        .to_string()
}

fn builtin(name: &str) -> DataSource {
    builtins().into_iter().find(|d| d.name == name).unwrap()
}

/// A built-in host datasource forced to run over SSH, with another command or timeout.
fn custom(name: &str, command: &str, timeout_ms: u32) -> DataSource {
    let mut ds = builtin(name);
    if let DsCollector::Ssh(c) = &mut ds.collector {
        c.target = SshTarget::Ssh;
        c.command = command.into();
        c.timeout_ms = timeout_ms;
    }
    ds
}

fn device(id: i64, port: u16, props: &[(&str, &str)]) -> Arc<Device> {
    let port = port.to_string();
    let mut all = vec![("ssh.user", USER), ("ssh.port", port.as_str())];
    all.extend_from_slice(props);
    Arc::new(Device::new(id, "127.0.0.1", &all))
}

fn task(dev: &Arc<Device>, ds: &DataSource) -> Task {
    Task {
        device: dev.clone(),
        datasource: Arc::new(ds.clone()),
        own_host: false,
    }
}

async fn collect(ssh: &Ssh, dev: &Arc<Device>, ds: &DataSource) -> Outcome {
    ssh.collect(&task(dev, ds)).await
}

fn instances(o: Outcome, what: &str) -> Vec<RawInstance> {
    match o {
        Outcome::Instances(i) => i,
        other => panic!("{what}: expected data, got {other:?}"),
    }
}

fn error(o: Outcome, what: &str) -> String {
    match o {
        Outcome::Error { message } => message,
        other => panic!("{what}: expected an error, got {other:?}"),
    }
}

/// Every secret of these tests, private key material included (each base64 line).
fn secrets(keys: &[&KeyPair]) -> Vec<String> {
    let mut s: Vec<String> = [PASSWORD, WRONG_PASSWORD, KEY_PASS]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for k in keys {
        s.extend(key_fragments(k));
    }
    s
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} contains a secret: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_datasources_run_over_ssh_with_key_auth_on_one_connection() {
    let keys = temp_dir("ssh-keys");
    let ed = keygen(&keys, "id_ed25519", "ed25519", "");
    let rsa = keygen(&keys, "id_rsa", "rsa", "");
    let sshd = Sshd::start(&[&ed.public, &rsa.public]);
    let methods = Methods::new(None).unwrap();
    let dev = device(1, sshd.port, &[("ssh.key", &ed.private)]);

    // The four built-in host datasources (target `auto`, on a device that is not the
    // collector's host) at once: the dispatch picks SSH, and they share one login.
    let [cpu, mem, disk, net] = ["HostCPU", "HostMemory", "HostDisk", "HostNetwork"].map(builtin);
    let (tc, tm, td, tn) = (
        task(&dev, &cpu),
        task(&dev, &mem),
        task(&dev, &disk),
        task(&dev, &net),
    );
    let (c, m, d, n) = tokio::join!(
        methods.collect(&tc),
        methods.collect(&tm),
        methods.collect(&td),
        methods.collect(&tn)
    );

    let c = instances(c, "HostCPU");
    assert_eq!(c.len(), 1);
    assert!(c[0].values["Total"] > 0.0, "{c:?}");
    assert!(c[0].values["Idle"] > 0.0, "{c:?}");
    assert!(c[0].values.contains_key("ContextSwitches"), "{c:?}");
    assert!(c[0].values["ProcsRunning"] >= 1.0, "{c:?}");

    // Same machine: the remote MemTotal is this host's.
    let m = instances(m, "HostMemory");
    let local =
        palisade_collector::parse::meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap());
    assert_eq!(m[0].values["MemTotal"], local["MemTotal"], "{m:?}");
    assert!(m[0].values["MemAvailable"] > 0.0, "{m:?}");

    let n = instances(n, "HostNetwork");
    let lo = n
        .iter()
        .find(|i| i.name.as_deref() == Some("lo"))
        .unwrap_or_else(|| panic!("no lo: {n:?}"));
    assert!(
        lo.values.contains_key("RxBytes") && lo.values.contains_key("TxPackets"),
        "{lo:?}"
    );

    // The filesystems are those `df` lists here (an overlay root may list none).
    let d = instances(d, "HostDisk");
    let DsCollector::Ssh(dc) = &disk.collector else {
        panic!()
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(&dc.command)
        .output()
        .unwrap();
    let mut local: Vec<String> =
        palisade_collector::parse::df_posix(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .map(|(m, _)| m)
            .collect();
    let mut remote: Vec<String> = d.iter().filter_map(|i| i.name.clone()).collect();
    local.sort();
    remote.sort();
    assert_eq!(remote, local);
    for i in &d {
        assert!(
            i.values["Total"] > 0.0 && i.values.contains_key("Available"),
            "{i:?}"
        );
    }

    // One login for the four, and the connection is kept for the next poll.
    assert_eq!(
        sshd.count(&format!("Accepted publickey for {USER}"), 1),
        1,
        "{}",
        sshd.log()
    );
    let again = methods.collect(&tc).await;
    assert!(matches!(again, Outcome::Instances(_)), "{again:?}");
    assert_eq!(sshd.count(&format!("Accepted publickey for {USER}"), 2), 1);

    // An RSA key works too (rsa-sha2 signatures).
    let ssh = Ssh::new();
    let rdev = device(2, sshd.port, &[("ssh.key", &rsa.private)]);
    let r = instances(
        collect(&ssh, &rdev, &mem).await,
        "HostMemory over an RSA key",
    );
    assert_eq!(r[0].values["MemTotal"], local_memtotal());
    assert!(ssh.has_connection(2).await);
}

fn local_memtotal() -> f64 {
    palisade_collector::parse::meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap())
        ["MemTotal"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_and_a_wrong_password() {
    let sshd = Sshd::start(&[]);
    let ssh = Ssh::new();
    let secrets = secrets(&[]);
    let mem = builtin("HostMemory");

    let good = device(1, sshd.port, &[("ssh.pass", PASSWORD)]);
    let m = instances(collect(&ssh, &good, &mem).await, "password login");
    assert_eq!(m[0].values["MemTotal"], local_memtotal());
    assert_eq!(sshd.count(&format!("Accepted password for {USER}"), 1), 1);

    let bad = device(2, sshd.port, &[("ssh.pass", WRONG_PASSWORD)]);
    let e = error(collect(&ssh, &bad, &mem).await, "wrong password");
    assert!(
        e.starts_with(&format!(
            "ssh: authentication as {USER} failed (methods tried: password)"
        )),
        "{e}"
    );
    assert!(e.contains("the server accepts: publickey,password"), "{e}");
    assert_no_secret("the error", &e, &secrets);
    // The other datasources of the device get the same error without another attempt.
    let e2 = error(
        collect(&ssh, &bad, &builtin("HostCPU")).await,
        "wrong password, second datasource",
    );
    assert_eq!(e2, e);
    assert_eq!(
        sshd.count(&format!("Failed password for {USER}"), 2),
        1,
        "{}",
        sshd.log()
    );
    assert_no_secret("the sshd log", &sshd.log(), &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_encrypted_keys() {
    let keys = temp_dir("ssh-keys");
    let known = keygen(&keys, "known", "ed25519", KEY_PASS);
    let unknown = keygen(&keys, "unknown", "ed25519", "");
    let sshd = Sshd::start(&[&known.public]);
    let ssh = Ssh::new();
    let secrets = secrets(&[&known, &unknown]);
    let cpu = builtin("HostCPU");
    let mut messages = Vec::new();

    // A key the server does not know.
    let dev = device(1, sshd.port, &[("ssh.key", &unknown.private)]);
    let e = error(collect(&ssh, &dev, &cpu).await, "unknown key");
    assert!(
        e.starts_with(&format!(
            "ssh: authentication as {USER} failed (methods tried: publickey)"
        )),
        "{e}"
    );
    messages.push(e);

    // Key first, then the password: both are named.
    let dev = device(
        2,
        sshd.port,
        &[("ssh.key", &unknown.private), ("ssh.pass", WRONG_PASSWORD)],
    );
    let e = error(
        collect(&ssh, &dev, &cpu).await,
        "unknown key, wrong password",
    );
    assert!(e.contains("(methods tried: publickey, password)"), "{e}");
    messages.push(e);

    // An encrypted key: without its passphrase, with a wrong one, with the right one.
    let dev = device(3, sshd.port, &[("ssh.key", &known.private)]);
    let e = error(collect(&ssh, &dev, &cpu).await, "encrypted key");
    assert_eq!(
        e,
        "ssh settings: ssh.key is encrypted and ssh.key.pass is not set"
    );
    messages.push(e);
    let dev = device(
        4,
        sshd.port,
        &[
            ("ssh.key", &known.private),
            ("ssh.key.pass", WRONG_PASSWORD),
        ],
    );
    let e = error(collect(&ssh, &dev, &cpu).await, "wrong passphrase");
    assert!(e.contains("decrypted with ssh.key.pass"), "{e}");
    messages.push(e);
    let dev = device(
        5,
        sshd.port,
        &[("ssh.key", &known.private), ("ssh.key.pass", KEY_PASS)],
    );
    let c = instances(
        collect(&ssh, &dev, &cpu).await,
        "encrypted key and passphrase",
    );
    assert!(c[0].values["Total"] > 0.0);

    // A key pasted on one line (newlines became spaces) still reads.
    let one_line = known
        .private
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let dev = device(
        6,
        sshd.port,
        &[("ssh.key", &one_line), ("ssh.key.pass", KEY_PASS)],
    );
    let c = instances(collect(&ssh, &dev, &cpu).await, "key on one line");
    assert!(c[0].values["Total"] > 0.0);

    for m in &messages {
        assert_no_secret("an error", m, &secrets);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_host_keys() {
    let keys = temp_dir("ssh-keys");
    let client = keygen(&keys, "id", "ed25519", "");
    let other = keygen(&keys, "other", "ed25519", "");
    let sshd = Sshd::start(&[&client.public]);
    let ssh = Ssh::new();
    let mem = builtin("HostMemory");
    let real_fp = fingerprint_of(&sshd.host_key, &keys);
    let other_fp = fingerprint_of(&other.public, &keys);

    // Matching pins: a fingerprint, a key line, a known_hosts line among others.
    let known_hosts_line = format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_key);
    let pins = [
        real_fp.clone(),
        sshd.host_key.clone(),
        format!("{}\n{known_hosts_line}", other.public),
    ];
    for (i, pin) in pins.iter().enumerate() {
        let dev = device(
            10 + i as i64,
            sshd.port,
            &[("ssh.key", &client.private), ("ssh.hostkey", pin)],
        );
        let m = instances(collect(&ssh, &dev, &mem).await, &format!("pin {pin}"));
        assert!(m[0].values["MemTotal"] > 0.0);
    }

    // Mismatches: the presented fingerprint and the expected one are named; no login.
    let logins = sshd.count("Accepted publickey", pins.len());
    for (i, pin) in [other_fp.clone(), other.public.clone()].iter().enumerate() {
        let dev = device(
            20 + i as i64,
            sshd.port,
            &[("ssh.key", &client.private), ("ssh.hostkey", pin)],
        );
        let e = error(collect(&ssh, &dev, &mem).await, "pin mismatch");
        assert!(
            e.starts_with(&format!(
                "ssh: host key mismatch for 127.0.0.1:{}",
                sshd.port
            )),
            "{e}"
        );
        assert!(
            e.contains(&format!("presented ssh-ed25519 {real_fp}")),
            "{e}"
        );
        assert!(e.contains(&other_fp), "{e}");
    }
    assert_eq!(sshd.count("Accepted publickey", logins + 1), logins);

    // An invalid pin names the property.
    let dev = device(
        30,
        sshd.port,
        &[("ssh.key", &client.private), ("ssh.hostkey", "MD5:00:11")],
    );
    let e = error(collect(&ssh, &dev, &mem).await, "invalid pin");
    assert!(e.starts_with("ssh settings: ssh.hostkey:"), "{e}");
    assert_no_secret("an error", &e, &secrets(&[&client]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_refuses_a_changed_host_key() {
    let keys = temp_dir("ssh-keys");
    let client = keygen(&keys, "id", "ed25519", "");
    let first = Sshd::start(&[&client.public]);
    let port = first.port;
    let ssh = Ssh::new();
    let cpu = builtin("HostCPU");
    let dev = device(1, port, &[("ssh.key", &client.private)]);
    instances(collect(&ssh, &dev, &cpu).await, "first contact");
    let first_fp = fingerprint_of(&first.host_key, &keys);
    drop(first);

    // Another server (another host key) on the same address and port.
    let second = Sshd::start_on(port, &[&client.public])
        .unwrap_or_else(|log| panic!("second sshd did not start on {port}:\n{log}"));
    let second_fp = fingerprint_of(&second.host_key, &keys);
    let dev2 = device(2, port, &[("ssh.key", &client.private)]);
    let e = error(collect(&ssh, &dev2, &cpu).await, "changed host key");
    assert!(
        e.starts_with(&format!("ssh: host key mismatch for 127.0.0.1:{port}")),
        "{e}"
    );
    assert!(
        e.contains(&second_fp) && e.contains(&first_fp) && e.contains("trusted on first use"),
        "{e}"
    );
    // Pinning the new key is the way out; a new process would trust it too.
    let dev3 = device(
        3,
        port,
        &[("ssh.key", &client.private), ("ssh.hostkey", &second_fp)],
    );
    instances(collect(&ssh, &dev3, &cpu).await, "pinned new key");
    instances(collect(&Ssh::new(), &dev2, &cpu).await, "a fresh process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_timeout_and_failure() {
    let keys = temp_dir("ssh-keys");
    let client = keygen(&keys, "id", "ed25519", "");
    let sshd = Sshd::start(&[&client.public]);
    let ssh = Ssh::new();
    let dev = device(1, sshd.port, &[("ssh.key", &client.private)]);

    let slow = custom("HostCPU", "sleep 20; cat /proc/stat", 1500);
    let started = Instant::now();
    let e = error(collect(&ssh, &dev, &slow).await, "slow command");
    let took = started.elapsed();
    assert_eq!(
        e,
        "ssh: `sleep 20; cat /proc/stat` did not finish within 1500 ms"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The connection is still good for the next datasource.
    let m = instances(
        collect(&ssh, &dev, &builtin("HostMemory")).await,
        "after a timeout",
    );
    assert!(m[0].values["MemTotal"] > 0.0);
    assert_eq!(sshd.count("Accepted publickey", 1), 1);

    // A failing command: its status and standard error.
    let failing = custom("HostCPU", "cat /nonexistent-palisade-file", 5000);
    let e = error(collect(&ssh, &dev, &failing).await, "failing command");
    assert_eq!(
        e,
        "ssh: `cat /nonexistent-palisade-file` exited with status 1: \
         cat: /nonexistent-palisade-file: No such file or directory"
    );
    // Output the parser cannot read.
    let garbage = custom("HostMemory", "echo hello", 5000);
    let e = error(collect(&ssh, &dev, &garbage).await, "unparsable output");
    assert_eq!(
        e,
        "ssh: `echo hello` printed nothing the meminfo parser could read"
    );
    // Nobody listening: a connection error, quickly.
    let closed = device(2, free_port(), &[("ssh.key", &client.private)]);
    let e = error(collect(&ssh, &closed, &slow).await, "closed port");
    assert!(e.starts_with("ssh: cannot connect to 127.0.0.1:"), "{e}");
    assert_no_secret("an error", &e, &secrets(&[&client]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_data_reaches_the_portal_and_failures_are_named() {
    let keys = temp_dir("ssh-keys");
    let client = keygen(&keys, "id", "ed25519", "");
    let sshd = Sshd::start(&[&client.public]);
    let port = sshd.port.to_string();
    let secrets = secrets(&[&client]);
    let portal = Portal::start("ssh");
    // 127.0.0.1 is the collector's own host, which `auto` would read locally.
    for name in ["HostMemory", "HostNetwork"] {
        portal
            .import_builtin_fast(name, |v| v["collector"]["target"] = Value::from("ssh"))
            .await;
    }
    let (cid, secret) = portal.add_collector("it-ssh");
    let mut col = Collector::register(&portal, &secret, &temp_dir("ssh-col"));
    let good = portal
        .add_device(
            "127.0.0.1",
            "ssh-key",
            cid,
            &[
                ("ssh.user", USER),
                ("ssh.key", &client.private),
                ("ssh.port", &port),
            ],
        )
        .await;
    let bad = portal
        .add_device(
            "127.0.0.1",
            "ssh-bad-pass",
            cid,
            &[
                ("ssh.user", USER),
                ("ssh.pass", WRONG_PASSWORD),
                ("ssh.port", &port),
            ],
        )
        .await;
    col.start(&[]);

    let mem = portal
        .wait_samples(
            good,
            "HostMemory",
            "HostMemory",
            "MemTotal",
            Duration::from_secs(40),
        )
        .await;
    assert_eq!(mem[0].1, local_memtotal(), "{mem:?}");
    let used = portal
        .wait_samples(
            good,
            "HostMemory",
            "HostMemory",
            "MemUsedPercent",
            Duration::from_secs(10),
        )
        .await;
    assert!(used[0].1 > 0.0 && used[0].1 <= 100.0, "{used:?}");
    // Counters become rates from the second poll on.
    let rx = portal
        .wait_samples(
            good,
            "HostNetwork",
            "lo",
            "RxBytes",
            Duration::from_secs(60),
        )
        .await;
    assert!(rx.iter().all(|(_, v)| *v >= 0.0), "{rx:?}");

    // A wrong password: an error status naming the user and the method.
    let deadline = Instant::now() + Duration::from_secs(40);
    let e = loop {
        let dss = portal
            .ok(
                "GET",
                &format!("/device/devices/{bad}/devicedatasources"),
                None,
            )
            .await;
        let found = dss["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dataSourceName"] == "HostMemory" && d["collectionStatus"] != "ok")
            .cloned();
        if let Some(d) = found {
            break d;
        }
        assert!(Instant::now() < deadline, "no failed HostMemory: {dss}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(e["collectionStatus"], "error", "{e}");
    let msg = e["collectionMessage"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "ssh: authentication as {USER} failed (methods tried: password)"
        )),
        "{msg}"
    );
    assert_no_secret("the collection message", &e.to_string(), &secrets);

    // Credentials reach neither the log nor the disk.
    let log = col.log_text();
    assert_no_secret("the collector log", &log, &secrets);
    let cache = std::fs::read_to_string(col.state.join("work.json")).unwrap();
    assert!(cache.contains("ssh.port"));
    assert_no_secret("work.json", &cache, &secrets);
    for entry in std::fs::read_dir(col.state.join("buffer")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert_no_secret(
                "a buffered batch",
                &String::from_utf8_lossy(&bytes),
                &secrets,
            );
        }
    }
    assert!(col.stop(), "{}", col.log_text());
}
