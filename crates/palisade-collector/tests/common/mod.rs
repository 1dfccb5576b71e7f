//! Test harness: a real portal (`palisade serve` on a free port with a temporary data
//! directory), an API-only user with a Bearer token, collectors created with the portal's
//! CLI, the collector binary, and a tiny local HTTP server standing in for monitored
//! services.

#![allow(dead_code)]

pub mod peers;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The portal binary: `PALISADE_BIN`, else `palisade` next to this test's target dir.
pub fn palisade_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test> → target/debug/palisade
    let exe = std::env::current_exe().expect("current exe");
    let debug = exe.parent().and_then(Path::parent).expect("target dir");
    let p = debug.join("palisade");
    assert!(
        p.is_file(),
        "the portal binary is missing at {}: run `cargo build -p palisade` with the same target \
         directory, or set PALISADE_BIN",
        p.display()
    );
    p
}

/// The collector binary built for this test.
pub fn collector_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_palisade-collector"))
}

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "palisade-collector-it-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the tests run as root (CI does).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Fails (never skips) unless the tests run as root, naming what needs it.
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs the tests to run as root, as scripts/test and CI do: run them as root \
         (tests never skip)"
    );
}

/// util-linux's `setpriv`, which drops the collector to another user; fails (never skips)
/// when it is missing.
pub fn setpriv() -> &'static str {
    const SETPRIV: &str = "/usr/bin/setpriv";
    assert!(
        Path::new(SETPRIV).is_file(),
        "{SETPRIV} not found: dropping the collector to `nobody` needs util-linux's setpriv \
         (Debian package util-linux; tests never skip)"
    );
    SETPRIV
}

/// `chown -R uid:gid path`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A portal data directory with its server.
pub struct Portal {
    pub dir: PathBuf,
    pub data: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
    pub token: String,
    /// (certificate chain, key, CA) when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf, PathBuf)>,
    starts: usize,
}

impl Portal {
    /// Creates the data directory, the API user and token, and starts the server.
    pub fn start(tag: &str) -> Portal {
        let mut p = Portal::prepare(tag);
        p.serve();
        p
    }

    /// Like [`Portal::start`] but serving HTTPS with a fresh CA and a certificate for
    /// 127.0.0.1 valid 20 days (made with the `openssl` command).
    pub fn start_tls(tag: &str) -> Portal {
        let mut p = Portal::prepare(tag);
        p.tls = Some(make_certificates(&p.dir));
        p.serve();
        p
    }

    /// The data directory, API user and token, without starting the server.
    pub fn prepare(tag: &str) -> Portal {
        let dir = temp_dir(tag);
        let data = dir.join("data");
        let mut p = Portal {
            dir,
            data,
            port: free_port(),
            child: None,
            token: String::new(),
            tls: None,
            starts: 0,
        };
        p.cli(&[
            "role",
            "add",
            "collector-it",
            "--privilege",
            "host_group:*:manage",
            "--privilege",
            "setting:collectorgroup.*:write",
            "--privilege",
            "setting:datasources:write",
        ]);
        p.cli(&[
            "user",
            "add",
            "monitor",
            "--email",
            "monitor@example.com",
            "--role",
            "collector-it",
            "--api-only",
        ]);
        let t = p.cli(&["token", "create", "monitor", "--bearer"]);
        p.token = t["bearerToken"].as_str().unwrap().to_string();
        p
    }

    /// Runs the portal CLI and parses its JSON output.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(palisade_bin())
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .env_remove("PALISADE_MASTER_KEY_FILE")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "palisade {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "palisade {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// An HTTP client trusting the portal.
    pub fn client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder();
        if let Some((_, _, ca)) = &self.tls {
            let pem = std::fs::read(ca).unwrap();
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        b.build().unwrap()
    }

    /// Starts `palisade serve` (again, on the same port and data directory).
    pub fn serve(&mut self) {
        assert!(self.child.is_none());
        self.starts += 1;
        let log =
            std::fs::File::create(self.dir.join(format!("serve{}.log", self.starts))).unwrap();
        let mut cmd = Command::new(palisade_bin());
        cmd.arg("--data-dir")
            .arg(&self.data)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port));
        if let Some((cert, key, _)) = &self.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let child = cmd
            .env_remove("PALISADE_MASTER_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                if self.tls.is_some() {
                    // Listening is enough: the TLS handshake is the collector's to test.
                    std::thread::sleep(Duration::from_millis(300));
                    return;
                }
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("palisade serve exited early: {st}");
            }
            assert!(
                Instant::now() < deadline,
                "palisade serve did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }

    /// A collector created with the CLI: (id, registration secret).
    pub fn add_collector(&self, description: &str) -> (i64, String) {
        let v = self.cli(&["collector", "add", "--description", description]);
        (
            v["id"].as_i64().unwrap(),
            v["registrationSecret"].as_str().unwrap().to_string(),
        )
    }

    /// A REST call with the Bearer token; returns (status, body).
    pub async fn rest(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = self.client();
        let url = format!("{}/santaba/rest{path}", self.base());
        let mut rb = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// REST call that must succeed.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.rest(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// Imports a copy of the built-in datasource `name` collecting every 10 s (replacing the
    /// built-in by name), after `edit`.
    pub async fn import_builtin_fast(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let ds = palisade_core::datasource::builtins()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no built-in datasource {name}"));
        let mut v: Value = serde_json::from_str(&palisade_core::datasource::export(&ds)).unwrap();
        v["collectInterval"] = Value::from(10);
        edit(&mut v);
        let r = self
            .ok("POST", "/setting/datasources/import", Some(v))
            .await;
        assert_eq!(r["collectInterval"], 10, "{r}");
    }

    /// Creates a device monitored by `collector`.
    pub async fn add_device(
        &self,
        host: &str,
        name: &str,
        collector: i64,
        props: &[(&str, &str)],
    ) -> i64 {
        let custom: Vec<Value> = props
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        let v = self
            .ok(
                "POST",
                "/device/devices",
                Some(
                    json!({"name": host, "displayName": name, "preferredCollectorId": collector,
                             "customProperties": custom}),
                ),
            )
            .await;
        v["id"].as_i64().unwrap()
    }

    /// The samples (time ms → value) of a datapoint of an instance, or None while the
    /// datasource or instance does not exist yet.
    pub async fn samples(
        &self,
        device: i64,
        datasource: &str,
        instance: &str,
        datapoint: &str,
    ) -> Option<Vec<(i64, f64)>> {
        let hds = self
            .ok(
                "GET",
                &format!("/device/devices/{device}/devicedatasources"),
                None,
            )
            .await;
        let hds_id = hds["items"]
            .as_array()?
            .iter()
            .find(|h| h["dataSourceName"] == datasource)?["id"]
            .as_i64()?;
        let insts = self
            .ok(
                "GET",
                &format!("/device/devices/{device}/devicedatasources/{hds_id}/instances"),
                None,
            )
            .await;
        let inst_id = insts["items"]
            .as_array()?
            .iter()
            .find(|i| i["name"] == instance)?["id"]
            .as_i64()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let data = self
            .ok(
                "GET",
                &format!(
                    "/device/devices/{device}/devicedatasources/{hds_id}/instances/{inst_id}/data?start={}&end={}",
                    now - 3600,
                    now + 3600
                ),
                None,
            )
            .await;
        let col = data["dataPoints"]
            .as_array()?
            .iter()
            .position(|d| d == datapoint)?;
        let times = data["time"].as_array()?;
        let values = data["values"].as_array()?;
        Some(
            times
                .iter()
                .zip(values)
                .filter_map(|(t, row)| Some((t.as_i64()?, row.get(col)?.as_f64()?)))
                .collect(),
        )
    }

    /// Waits until `samples` gives at least one value.
    pub async fn wait_samples(
        &self,
        device: i64,
        datasource: &str,
        instance: &str,
        datapoint: &str,
        timeout: Duration,
    ) -> Vec<(i64, f64)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.samples(device, datasource, instance, datapoint).await {
                if !s.is_empty() {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {datasource}/{instance}/{datapoint} data for device {device} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Kept after a failure, for its logs.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGTERM, then wait (SIGKILL after 30 s).
pub fn terminate(c: &mut Child) -> Option<std::process::ExitStatus> {
    if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            return c.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A collector's state directory and process.
pub struct Collector {
    pub state: PathBuf,
    pub config: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
    runs: usize,
}

impl Collector {
    /// Registers a collector with `palisade-collector register`.
    pub fn register(portal: &Portal, secret: &str, dir: &Path) -> Collector {
        Collector::register_with(portal, secret, dir, &[])
    }

    /// `register` with extra flags; the output of a failed registration panics.
    pub fn register_with(portal: &Portal, secret: &str, dir: &Path, extra: &[&str]) -> Collector {
        let state = dir.join("state");
        let secret_file = dir.join("secret");
        std::fs::write(&secret_file, secret).unwrap();
        let config = dir.join("collector.toml");
        std::fs::write(
            &config,
            "heartbeat_secs = 1\njitter_secs = 0\nretry_max_secs = 2\n",
        )
        .unwrap();
        let out = Command::new(collector_bin())
            .args(["register", "--portal", &portal.base(), "--secret-file"])
            .arg(&secret_file)
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "register failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["collectorId"].as_i64().is_some(), "{v}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("palc_"),
            "the key is never printed"
        );
        Collector {
            state,
            config,
            child: None,
            log: dir.join("collector.log"),
            runs: 0,
        }
    }

    /// Starts `run` (with `--allow-root` when the tests run as root).
    pub fn start(&mut self, extra: &[&str]) {
        self.runs += 1;
        let log =
            std::fs::File::create(self.log.with_extension(format!("{}.log", self.runs))).unwrap();
        let mut cmd = Command::new(collector_bin());
        cmd.arg("--config")
            .arg(&self.config)
            .arg("run")
            .arg("--state-dir")
            .arg(&self.state)
            .args(extra)
            .env("PALISADE_COLLECTOR_LOG", "info,palisade_collector=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if is_root() {
            cmd.arg("--allow-root");
        }
        self.child = Some(cmd.spawn().unwrap());
    }

    /// Starts `run` through a wrapper (`setpriv …`), without `--allow-root`.
    pub fn start_wrapped(&mut self, wrapper: &[&str]) {
        self.runs += 1;
        let log =
            std::fs::File::create(self.log.with_extension(format!("{}.log", self.runs))).unwrap();
        // The build directory may be out of reach of another user (a checkout under
        // /root): run a copy from the test's own directory.
        use std::os::unix::fs::PermissionsExt;
        let dir = self.state.parent().unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let copy = bin.join("palisade-collector");
        if !copy.exists() {
            std::fs::copy(collector_bin(), &copy).unwrap();
        }
        for (p, mode) in [
            (dir, 0o755),
            (bin.as_path(), 0o755),
            (copy.as_path(), 0o755),
            (self.config.as_path(), 0o644),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..])
            .arg(&copy)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .arg("--state-dir")
            .arg(&self.state)
            .env("PALISADE_COLLECTOR_LOG", "info,palisade_collector=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().unwrap());
    }

    /// `status` as JSON.
    pub fn status(&self) -> Value {
        let out = Command::new(collector_bin())
            .arg("status")
            .arg("--state-dir")
            .arg(&self.state)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.child
            .take()
            .and_then(|mut c| terminate(&mut c))
            .is_some_and(|s| s.success())
    }

    /// The log of the latest run.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.with_extension(format!("{}.log", self.runs)))
            .unwrap_or_default()
    }

    /// Panics when one of `secrets` appears in the log of the latest run, the work cache
    /// (`work.json`) or a buffered batch.
    pub fn assert_no_secret_stored(&self, secrets: &[&str]) {
        let check = |what: &str, text: &str| {
            for s in secrets {
                assert!(!text.contains(s), "{what} contains a secret: {text}");
            }
        };
        check("the collector log", &self.log_text());
        let cache = std::fs::read_to_string(self.state.join("work.json")).unwrap();
        check("work.json", &cache);
        for entry in std::fs::read_dir(self.state.join("buffer")).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                check("a buffered batch", &String::from_utf8_lossy(&bytes));
            }
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            if let Some(dir) = self.state.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// A tiny HTTP server for monitored services: `/health` answers JSON, `/metrics` a
/// Prometheus exposition. Counts requests.
pub struct Target {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
}

pub const METRICS: &str = "# TYPE demo_requests_total counter\n\
demo_requests_total{shard=\"a\",code=\"200\"} 100\n\
demo_requests_total{shard=\"a\",code=\"500\"} 5\n\
demo_requests_total{shard=\"b\",code=\"200\"} 40\n\
# TYPE demo_queue gauge\n\
demo_queue{shard=\"a\"} 3\n\
demo_queue{shard=\"b\"} 9\n";

impl Target {
    pub fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, ctype, body) = match path.as_str() {
                        "/health" => (
                            "200 OK",
                            "application/json",
                            "{\"queue\":{\"depth\":7},\"ok\":true}".to_string(),
                        ),
                        "/metrics" => ("200 OK", "text/plain; version=0.0.4", METRICS.to_string()),
                        _ => ("404 Not Found", "text/plain", "nope".to_string()),
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(resp.as_bytes());
                });
            }
        });
        Target { port, hits }
    }
}

/// A custom HTTP datasource: status, latency, body size and a JSON value from
/// `http://##system.hostname##:##web.port##/health`, on devices with `web.port`.
pub fn http_datasource(name: &str) -> Value {
    json!({
        "name": name,
        "displayName": "Test HTTP",
        "appliesTo": "web.port",
        "collectMethod": "http",
        "collectInterval": 10,
        "hasMultiInstances": false,
        "collector": {
            "method": "http",
            "url": "http://##system.hostname##:##web.port##/health",
            "timeoutMs": 5000,
            "values": {"Status": "statusCode", "Ok": "statusOk", "Latency": "latencyMs",
                       "Bytes": "bodyBytes", "Queue": "json:/queue/depth"}
        },
        "dataPoints": [
            {"name": "Status", "type": "gauge"},
            {"name": "Ok", "type": "gauge"},
            {"name": "Latency", "type": "gauge"},
            {"name": "Bytes", "type": "gauge"},
            {"name": "Queue", "type": "gauge"},
            {"name": "QueueTimesTwo", "type": "expression", "expression": "Queue * 2"}
        ]
    })
}

/// A custom Prometheus datasource: per `shard`, the sum of requests and the queue.
pub fn prometheus_datasource(name: &str) -> Value {
    json!({
        "name": name,
        "appliesTo": "prom.port",
        "collectMethod": "prometheus",
        "collectInterval": 10,
        "hasMultiInstances": true,
        "collector": {
            "method": "prometheus",
            "url": "http://##system.hostname##:##prom.port##/metrics",
            "timeoutMs": 5000,
            "instanceLabel": "shard",
            "metrics": {
                "Requests": {"metric": "demo_requests_total"},
                "Ok": {"metric": "demo_requests_total", "labels": {"code": "200"}},
                "Queue": {"metric": "demo_queue"}
            }
        },
        "dataPoints": [
            {"name": "Requests", "type": "gauge"},
            {"name": "Ok", "type": "gauge"},
            {"name": "Queue", "type": "gauge"}
        ]
    })
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 (valid 20 days): (chain, key, CA).
pub fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend_from_slice(&curve);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=collector-it-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend_from_slice(&curve);
    csr.extend_from_slice(&[
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "20",
            "-extfile",
            "leaf.ext",
        ],
    );
    openssl(
        dir,
        &[
            "x509", "-in", "leaf.pem", "-outform", "der", "-out", "leaf.der",
        ],
    );
    (
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
        dir.join("ca.pem"),
    )
}
