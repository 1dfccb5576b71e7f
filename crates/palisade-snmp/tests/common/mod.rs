//! Starts a real net-snmp `snmpd` on a free UDP port of 127.0.0.1 with its
//! own configuration and persistent directory in a fresh temporary
//! directory, and kills it (and removes the directory) on drop.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_snmp::{Client, ClientConfig, Oid};

pub const COMMUNITY: &str = "palisade-test";
pub const AUTH_PASSWORD: &str = "authpass123";
pub const PRIV_PASSWORD: &str = "privpass123";

/// v3 users: (name, createUser protocols, rouser level).
pub const USERS: &[(&str, &str, &str)] = &[
    ("shaaes", "SHA \"authpass123\" AES \"privpass123\"", "priv"),
    ("md5des", "MD5 \"authpass123\" DES \"privpass123\"", "priv"),
    (
        "sha224aes",
        "SHA-224 \"authpass123\" AES \"privpass123\"",
        "priv",
    ),
    (
        "sha256aes192",
        "SHA-256 \"authpass123\" AES-192 \"privpass123\"",
        "priv",
    ),
    (
        "sha512aes256",
        "SHA-512 \"authpass123\" AES-256 \"privpass123\"",
        "priv",
    ),
    (
        "md5aes256",
        "MD5 \"authpass123\" AES-256 \"privpass123\"",
        "priv",
    ),
    (
        "sha1aes192",
        "SHA \"authpass123\" AES-192 \"privpass123\"",
        "priv",
    ),
    ("sha384auth", "SHA-384 \"authpass123\"", "auth"),
    ("noauthuser", "", "noauth"),
];

fn find(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dirs.iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn tool(name: &str) -> PathBuf {
    find(
        name,
        &["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"],
    )
    .unwrap_or_else(|| {
        panic!(
            "`{name}` not found: these tests need net-snmp's agent and tools, Debian packages \
             `snmpd` and `snmp` (scripts/test installs them: \
             apt-get install -y snmpd snmp)"
        )
    })
}

pub struct Agent {
    child: Child,
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "palisade-snmpd-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(dir.join("persist")).unwrap();
    dir
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(dir: &Path) -> PathBuf {
    let mut conf = format!("rocommunity {COMMUNITY} 127.0.0.1\n");
    for (name, protos, level) in USERS {
        conf.push_str(&format!(
            "createUser {name} {protos}\nrouser {name} {level}\n"
        ));
    }
    let path = dir.join("snmpd.conf");
    fs::write(&path, conf).unwrap();
    path
}

impl Agent {
    /// Starts snmpd and waits until it answers a v2c get.
    pub async fn start() -> Agent {
        let snmpd = tool("snmpd");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = temp_dir();
            let conf = write_config(&dir);
            let port = free_udp_port();
            let log = fs::File::create(dir.join("snmpd.log")).unwrap();
            let child = Command::new(&snmpd)
                // -f foreground, -Lo log to stdout (our file), -C no other
                // config files, -m '' load no MIB files, -I -smux no SMUX
                // listener on TCP 199 (would clash between agents).
                .args(["-f", "-Lo", "-C", "-m", "", "-I", "-smux", "-c"])
                .arg(&conf)
                .arg(format!("udp:127.0.0.1:{port}"))
                .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
                .env("SNMPCONFPATH", &dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut agent = Agent {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                dir,
            };
            if agent.wait_ready().await {
                return agent;
            }
            last_log = fs::read_to_string(agent.dir.join("snmpd.log")).unwrap_or_default();
        }
        panic!("snmpd did not come up; last log:\n{last_log}");
    }

    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        let sys_up_time: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        let mut client = Client::v2c(self.addr, COMMUNITY).await.unwrap();
        let mut cfg = ClientConfig::default();
        cfg.timeout = Duration::from_millis(200);
        cfg.retries = 0;
        client.set_config(cfg);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if client.get(std::slice::from_ref(&sys_up_time)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Runs a net-snmp command-line tool against this agent (numeric OIDs,
    /// hex strings, raw timeticks, no MIB files, no user config).
    pub fn net_snmp(&self, tool_name: &str, args: &[&str]) -> String {
        let out = Command::new(tool(tool_name))
            .args(["-m", "", "-On", "-Ox", "-Ot"])
            .args(args)
            .env("SNMP_PERSISTENT_DIR", self.dir.join("persist-client"))
            .env("SNMPCONFPATH", self.dir.join("no-such-dir"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool_name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn host(&self) -> String {
        format!("udp:{}", self.addr)
    }
}

/// Parses `snmpbulkwalk -On -Ox -Ot` output into (oid, rendering) pairs,
/// joining wrapped Hex-STRING lines and normalising whitespace.
pub fn parse_net_snmp(output: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix('.') {
            let (oid, value) = rest.split_once(" = ").unwrap_or((rest, ""));
            rows.push((oid.to_string(), value.to_string()));
        } else if let Some(last) = rows.last_mut() {
            last.1.push(' ');
            last.1.push_str(line);
        }
    }
    for r in &mut rows {
        r.1 = r.1.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    rows
}

/// Renders a value the way `snmpbulkwalk -On -Ox -Ot` does.
pub fn render(v: &palisade_snmp::Value) -> String {
    use palisade_snmp::Value;
    match v {
        Value::Integer(i) => format!("INTEGER: {i}"),
        Value::OctetString(b) if b.is_empty() => "\"\"".to_string(),
        Value::OctetString(b) => {
            let hex: Vec<String> = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("Hex-STRING: {}", hex.join(" "))
        }
        Value::Null => "NULL".to_string(),
        Value::ObjectIdentifier(o) => format!("OID: .{o}"),
        Value::IpAddress(ip) => format!("IpAddress: {ip}"),
        Value::Counter32(c) => format!("Counter32: {c}"),
        Value::Gauge32(g) => format!("Gauge32: {g}"),
        Value::TimeTicks(t) => format!("{t}"),
        Value::Counter64(c) => format!("Counter64: {c}"),
        other => format!("{other}"),
    }
}
