//! Real peers on loopback for the collector's methods: a private net-snmp `snmpd`
//! ([`Agent`]) and a private OpenSSH `sshd` ([`Sshd`]) logging in the local test user
//! [`SSH_USER`], each on a free 127.0.0.1 port with its own configuration in a temporary
//! directory. Both panic (never skip) when their server is not installed.

use std::io::Read;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use palisade_snmp::{Client, ClientConfig, Oid};

use super::{free_port, is_root, temp_dir};

/// The v2c community [`Agent`] answers to (from 127.0.0.1).
pub const COMMUNITY: &str = "palisade-it-community";
/// The v3 authPriv user of [`Agent`] (SHA-256, AES).
pub const V3_USER: &str = "palisade";
/// [`V3_USER`]'s authentication password.
pub const AUTH_TOKEN: &str = "authpass-it-123";
/// [`V3_USER`]'s privacy password.
pub const PRIV_TOKEN: &str = "privpass-it-456";

/// A system tool from the usual directories or `PATH`; panics (never skips) naming the
/// Debian package when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found: this test needs net-snmp's agent, Debian package `snmpd` \
                 (scripts/test installs it: apt-get install -y snmpd snmp)"
            )
        })
}

/// A private snmpd on 127.0.0.1: v2c community and one v3 authPriv user (SHA-256, AES).
pub struct Agent {
    pub child: Child,
    pub dir: PathBuf,
    pub addr: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Agent {
    /// Starts snmpd on a free port and waits until it answers a v2c GET (3 attempts).
    pub async fn start() -> Agent {
        let snmpd = tool("snmpd");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = temp_dir("snmpd");
            std::fs::create_dir_all(dir.join("persist")).unwrap();
            let conf = dir.join("snmpd.conf");
            std::fs::write(
                &conf,
                format!(
                    "rocommunity {COMMUNITY} 127.0.0.1\n\
                     createUser {V3_USER} SHA-256 \"{AUTH_TOKEN}\" AES \"{PRIV_TOKEN}\"\n\
                     rouser {V3_USER} priv\n"
                ),
            )
            .unwrap();
            let port = UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.join("snmpd.log")).unwrap();
            // -f foreground, -Lo log to stdout (the file), -C no other config file, -m ''
            // no MIB files, -I -smux no SMUX listener on TCP 199.
            let child = Command::new(&snmpd)
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
            if agent.ready().await {
                return agent;
            }
            last_log = std::fs::read_to_string(agent.dir.join("snmpd.log")).unwrap_or_default();
        }
        panic!("snmpd did not come up; last log:\n{last_log}");
    }

    async fn ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        let up: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        let mut client = Client::v2c(self.addr, COMMUNITY).await.unwrap();
        let mut cfg = ClientConfig::default();
        cfg.timeout = Duration::from_millis(200);
        cfg.retries = 0;
        client.set_config(cfg);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if client.get(std::slice::from_ref(&up)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// The OpenSSH server binary.
pub const SSHD: &str = "/usr/sbin/sshd";
/// The local user [`Sshd`] lets in (created by [`ensure_user`] when absent).
pub const SSH_USER: &str = "palisade-sshpeer";
/// [`SSH_USER`]'s password.
pub const SSH_PASSWORD: &str = "peer-Pass-it-4711";

/// The OpenSSH server binary; panics (never skips) when it is missing.
pub fn sshd_bin() -> PathBuf {
    let p = PathBuf::from(SSHD);
    assert!(
        p.is_file(),
        "{SSHD} not found: these tests need OpenSSH's server, Debian package `openssh-server` \
         (scripts/test installs it: apt-get install -y openssh-server)"
    );
    p
}

/// The local user the tests log in as, with its password set (which also unlocks the
/// account: sshd refuses even keys for a locked one). Needs root, as CI has.
pub fn ensure_user() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        assert!(
            is_root(),
            "the ssh tests run as root (as scripts/test and CI do): they create the local user \
             {SSH_USER} and start sshd"
        );
        let exists = Command::new("id")
            .args(["-u", SSH_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if !exists {
            let out = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", SSH_USER])
                .output()
                .unwrap();
            // 9: created meanwhile by another test process.
            assert!(
                out.status.success() || out.status.code() == Some(9),
                "useradd {SSH_USER}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = chpasswd.stdin.take().unwrap();
            writeln!(stdin, "{SSH_USER}:{SSH_PASSWORD}").unwrap();
        }
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
        // sshd (as root) insists on its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
    });
}

/// Makes the test directory readable by the test user (sshd reads authorized_keys as it).
pub fn open_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A key pair made with ssh-keygen: (private key text, public key line).
pub struct KeyPair {
    pub private: String,
    pub public: String,
}

/// A new key pair of `kind` (`ed25519`, `rsa`) in `dir/name`, encrypted with `pass`
/// unless empty.
pub fn keygen(dir: &Path, name: &str, kind: &str, pass: &str) -> KeyPair {
    let path = dir.join(name);
    let mut args = vec!["-q", "-t", kind, "-N", pass, "-C", "palisade-it", "-f"];
    if kind == "rsa" {
        args.splice(0..0, ["-b", "2048"]);
    }
    let out = Command::new("ssh-keygen")
        .args(&args)
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen (Debian package openssh-client, a dependency of openssh-server)");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    KeyPair {
        private: std::fs::read_to_string(&path).unwrap(),
        public: std::fs::read_to_string(format!("{}.pub", path.display()))
            .unwrap()
            .trim()
            .to_string(),
    }
}

/// Fragments of a private key's material (16 characters of each base64 line), to look for
/// where no secret may appear.
pub fn key_fragments(k: &KeyPair) -> Vec<String> {
    k.private
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(|l| l[..16].to_string())
        .collect()
}

/// A private sshd on 127.0.0.1.
pub struct Sshd {
    pub child: Child,
    pub dir: PathBuf,
    pub port: u16,
    /// The host key's public line.
    pub host_key: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Sshd {
    /// Starts sshd on a free port accepting `authorized` keys (and the test user's
    /// password).
    pub fn start(authorized: &[&str]) -> Sshd {
        let mut last = String::new();
        for _ in 0..3 {
            match Sshd::start_on(free_port(), authorized) {
                Ok(s) => return s,
                Err(log) => last = log,
            }
        }
        panic!("sshd did not come up; last log:\n{last}");
    }

    /// Starts sshd on `port`, with a new host key; the log on failure.
    pub fn start_on(port: u16, authorized: &[&str]) -> Result<Sshd, String> {
        let sshd = sshd_bin();
        ensure_user();
        let dir = temp_dir("sshd");
        open_dir(&dir);
        let host = keygen(&dir, "hostkey", "ed25519", "");
        let auth = dir.join("authorized_keys");
        std::fs::write(&auth, authorized.join("\n") + "\n").unwrap();
        let conf = dir.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nUsePAM no\nStrictModes no\nPasswordAuthentication yes\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin no\n\
                 AllowUsers {SSH_USER}\nMaxAuthTries 6\nLogLevel VERBOSE\n",
                dir.join("hostkey").display(),
                dir.join("sshd.pid").display(),
                auth.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        // -D: foreground, -e: log to stderr (the file).
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut s = Sshd {
            child,
            dir,
            port,
            host_key: host.public,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = s.child.try_wait() {
                return Err(s.log());
            }
            if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
                c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 8];
                if c.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-2.0") {
                    return Ok(s);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = s.log();
        Err(log)
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    /// How many log lines contain `needle`, once the count has settled (sshd writes its
    /// log asynchronously to our requests).
    pub fn count(&self, needle: &str, at_least: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let n = self.log().lines().filter(|l| l.contains(needle)).count();
            if n >= at_least || Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
