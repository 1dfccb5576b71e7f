//! The `ssh` method on a remote device: the datasource's `command` runs over SSH
//! ([`russh`], pure Rust, `ring` crypto) and its standard output is read by the same
//! parsers as the collector's own host ([`crate::parse`]).
//!
//! * Connection settings come from the device's properties ([`Settings::from_device`]):
//!   `ssh.user`, `ssh.pass` and/or `ssh.key` (an OpenSSH, PEM RSA or PKCS#8 private key,
//!   the text itself; `ssh.key.pass` when it is encrypted), `ssh.port` (22) and
//!   `ssh.hostkey`. The server is the device's address (`system.hostname`, else its host).
//! * Authentication: `publickey` with `ssh.key` first, then `password` with `ssh.pass`,
//!   then `keyboard-interactive` answering the password when the server offers only that.
//!   A failure is an error naming the user and the methods tried, never empty data.
//! * Host keys: with `ssh.hostkey` (OpenSSH public key lines or `SHA256:` fingerprints,
//!   separated by newlines or commas) the server's key must be one of them. Without it the
//!   first key a `host:port` presents is trusted for the life of the process (kept in
//!   memory only, its fingerprint logged at debug level); a different key later is an
//!   error until `ssh.hostkey` pins it or the collector restarts.
//! * `timeoutMs` bounds the whole collection: connecting, authenticating and the command.
//! * One authenticated connection per device is kept and shared by its datasources (one
//!   session channel per command, concurrently); it is dropped after [`IDLE_CONNECTION`]
//!   unused, when the device's settings change, or when the server closes it. An
//!   authentication failure is remembered for [`FAILURE_HOLD`] (same settings only), so
//!   that a device's datasources do not add up failed logins (fail2ban, lockouts).
//! * A command that exits non-zero still counts when its output parses to values (`df`
//!   exits 1 when one mount point is unreadable); otherwise the exit status and the first
//!   line of its standard error are the error.
//!
//! Credentials are kept in memory only, never logged and never part of a message: errors
//! name the property to check, never its value ([`Settings`]'s `Debug` redacts them).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use palisade_core::datasource::{Collector, SshCollector, SshParser};
use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{MethodKind, MethodSet};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{map_fields, BoxFuture, Method, Task};
use crate::parse::{self, Fields};
use crate::process::{Outcome, RawInstance};
use crate::work::Device;

/// The default SSH port.
pub const DEFAULT_PORT: u16 = 22;
/// A kept connection unused this long is closed.
pub const IDLE_CONNECTION: Duration = Duration::from_secs(10 * 60);
/// How long an authentication failure is reported again without a new login attempt
/// (while the device's settings stay the same).
pub const FAILURE_HOLD: Duration = Duration::from_secs(5 * 60);
/// Most standard output read from one command.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// Most standard error kept (for the error message).
const MAX_STDERR: usize = 4096;
/// Rounds of keyboard-interactive prompts answered before giving up.
const MAX_KBD_ROUNDS: usize = 4;

/// What went wrong in an SSH collection. The messages never carry a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// A device property is missing or invalid.
    #[error("ssh settings: {0}")]
    Settings(String),
    /// The device's address does not resolve.
    #[error("ssh: cannot resolve the device address `{0}`")]
    Resolve(String),
    /// No TCP connection, or the SSH handshake failed.
    #[error("ssh: cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server's host key is not the expected one.
    #[error("ssh: host key mismatch for {addr}: {detail}")]
    HostKey {
        /// `host:port`.
        addr: String,
        /// What was presented and what was expected.
        detail: String,
    },
    /// Every authentication method failed.
    #[error("ssh: authentication as {user} failed (methods tried: {tried}){offered}")]
    Auth {
        /// The user (not a secret).
        user: String,
        /// The methods tried, comma-separated.
        tried: String,
        /// What the server offers, as `; the server accepts: …`, or empty.
        offered: String,
    },
    /// The deadline (`timeoutMs`) passed.
    #[error("ssh: {what} did not finish within {timeout_ms} ms")]
    Timeout {
        /// What was going on.
        what: String,
        /// The datasource's `timeoutMs`.
        timeout_ms: u32,
    },
    /// The command ran but gave nothing usable.
    #[error("ssh: `{command}` {detail}")]
    Command {
        /// The command.
        command: String,
        /// What happened.
        detail: String,
    },
    /// Any other protocol or session failure.
    #[error("ssh: {0}")]
    Session(String),
}

/// An expected host key (`ssh.hostkey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPin {
    /// A `SHA256:` fingerprint (base64 without padding).
    Fingerprint(String),
    /// A public key.
    Key(PublicKey),
}

impl HostKeyPin {
    fn matches(&self, key: &PublicKey) -> bool {
        match self {
            HostKeyPin::Fingerprint(fp) => fingerprint(key) == *fp,
            HostKeyPin::Key(k) => k.key_data() == key.key_data(),
        }
    }

    fn describe(&self) -> String {
        match self {
            HostKeyPin::Fingerprint(fp) => fp.clone(),
            HostKeyPin::Key(k) => format!("{} {}", k.algorithm(), fingerprint(k)),
        }
    }
}

/// `SHA256:…` of a public key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Reads `ssh.hostkey`: OpenSSH public key lines (`ssh-ed25519 AAAA… comment`, a
/// `known_hosts` line too) or `SHA256:` fingerprints, separated by newlines or commas.
pub fn parse_host_keys(text: &str) -> Result<Vec<HostKeyPin>, String> {
    let mut pins = Vec::new();
    for entry in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if let Some(b64) = entry.strip_prefix("SHA256:") {
            let b64 = b64.trim_end_matches('=');
            if b64.is_empty()
                || !b64
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
            {
                return Err(format!(
                    "ssh.hostkey: `{entry}` is not a SHA256 fingerprint (SHA256:base64)"
                ));
            }
            pins.push(HostKeyPin::Fingerprint(format!("SHA256:{b64}")));
            continue;
        }
        // An OpenSSH public key line, or a known_hosts line (hosts first).
        let parsed = PublicKey::from_openssh(entry).ok().or_else(|| {
            entry
                .split_once(char::is_whitespace)
                .and_then(|(_, rest)| PublicKey::from_openssh(rest.trim()).ok())
        });
        match parsed {
            Some(k) => pins.push(HostKeyPin::Key(k)),
            None => {
                let shown: String = entry.chars().take(40).collect();
                return Err(format!(
                    "ssh.hostkey: `{shown}` is neither an OpenSSH public key line \
                     (ssh-ed25519 AAAA…) nor a SHA256: fingerprint"
                ));
            }
        }
    }
    Ok(pins)
}

/// How to reach and log in to a device, from its properties.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The device's address.
    pub host: String,
    /// `ssh.port`.
    pub port: u16,
    /// `ssh.user`.
    pub user: String,
    /// `ssh.pass`.
    pub password: Option<String>,
    /// `ssh.key` (the private key text).
    pub key: Option<String>,
    /// `ssh.key.pass`.
    pub key_pass: Option<String>,
    /// `ssh.hostkey`.
    pub host_keys: Vec<HostKeyPin>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &redact(&self.password))
            .field("key", &redact(&self.key))
            .field("key_pass", &redact(&self.key_pass))
            .field("host_keys", &self.host_keys)
            .finish()
    }
}

fn prop<'a>(device: &'a Device, name: &str) -> Option<&'a str> {
    device.prop(name).map(str::trim).filter(|v| !v.is_empty())
}

impl Settings {
    /// The settings of `device`.
    pub fn from_device(device: &Device) -> Result<Settings, SshError> {
        let bad = |m: String| Err(SshError::Settings(m));
        let port = match prop(device, "ssh.port") {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return bad(format!("ssh.port `{p}` is not a port number (1 to 65535)")),
            },
        };
        let Some(user) = prop(device, "ssh.user") else {
            return bad("ssh.user is not set".into());
        };
        // Passwords are taken as they are (spaces may matter); keys are text.
        let password = device
            .prop("ssh.pass")
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        let key = prop(device, "ssh.key").map(str::to_string);
        let key_pass = device
            .prop("ssh.key.pass")
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        if password.is_none() && key.is_none() {
            return bad("neither ssh.pass nor ssh.key is set".into());
        }
        let host_keys = match prop(device, "ssh.hostkey") {
            None => Vec::new(),
            Some(h) => parse_host_keys(h).map_err(SshError::Settings)?,
        };
        let host = device.address().trim();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Settings {
            host: host.to_string(),
            port,
            user: user.to_string(),
            password,
            key,
            key_pass,
            host_keys,
        })
    }

    /// `host:port` (`[v6]:port`), for messages and the trust-on-first-use memory.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A digest of everything that identifies a connection, credentials included (kept in
    /// memory only, to tell whether a kept connection still fits).
    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            Some(self.host.as_str()),
            Some(&self.port.to_string()),
            Some(self.user.as_str()),
            self.password.as_deref(),
            self.key.as_deref(),
            self.key_pass.as_deref(),
        ] {
            match part {
                Some(p) => {
                    h.update([1u8]);
                    h.update((p.len() as u64).to_be_bytes());
                    h.update(p.as_bytes());
                }
                None => h.update([0u8]),
            }
        }
        for pin in &self.host_keys {
            h.update(pin.describe().as_bytes());
            h.update([0u8]);
        }
        h.finalize().into()
    }

    /// The host key algorithms to offer: only those of pinned keys when every pin is a
    /// key (so that the server presents the pinned one), else russh's default order.
    fn host_key_algorithms(&self) -> Vec<Algorithm> {
        let default = russh::Preferred::DEFAULT.key.to_vec();
        if self.host_keys.is_empty()
            || self
                .host_keys
                .iter()
                .any(|p| matches!(p, HostKeyPin::Fingerprint(_)))
        {
            return default;
        }
        default
            .into_iter()
            .filter(|a| {
                self.host_keys.iter().any(|p| match p {
                    HostKeyPin::Key(k) => {
                        let ka = k.algorithm();
                        (ka.clone().is_rsa() && a.clone().is_rsa()) || ka == *a
                    }
                    HostKeyPin::Fingerprint(_) => false,
                })
            })
            .collect()
    }
}

/// Puts a private key pasted on one line (newlines turned into spaces, or written as
/// `\n`) back into PEM lines.
pub fn normalize_key(text: &str) -> String {
    let text = text.trim();
    let text = if !text.contains('\n') && text.contains("\\n") {
        text.replace("\\n", "\n")
    } else {
        text.to_string()
    };
    if text.contains('\n') || text.starts_with("PuTTY") {
        return text.replace('\r', "");
    }
    // `-----BEGIN X----- body -----END X-----` on one line.
    let Some(rest) = text.strip_prefix("-----BEGIN ") else {
        return text;
    };
    let Some((label, rest)) = rest.split_once("-----") else {
        return text;
    };
    let end = format!("-----END {label}-----");
    let Some(body) = rest.trim().strip_suffix(end.as_str()) else {
        return text;
    };
    let body: String = body.split_whitespace().collect();
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(70) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&end);
    out.push('\n');
    out
}

/// Decodes `ssh.key` (with `ssh.key.pass`). Errors name the property, never its value.
pub fn decode_key(key: &str, pass: Option<&str>) -> Result<PrivateKey, SshError> {
    let text = normalize_key(key);
    russh::keys::decode_secret_key(&text, pass).map_err(|e| {
        SshError::Settings(match (e, pass) {
            (russh::keys::Error::KeyIsEncrypted, None) => {
                "ssh.key is encrypted and ssh.key.pass is not set".into()
            }
            (
                russh::keys::Error::UnsupportedKeyType {
                    key_type_string, ..
                },
                _,
            ) => format!("ssh.key is of an unsupported type ({key_type_string})"),
            (_, Some(_)) => "ssh.key could not be read or decrypted with ssh.key.pass \
                             (an OpenSSH, PEM RSA or PKCS#8 private key and its passphrase)"
                .into(),
            (_, None) => "ssh.key is not a private key the collector can read (an OpenSSH, \
                          PEM RSA or PKCS#8 private key: ed25519, ecdsa or rsa)"
                .into(),
        })
    })
}

/// Host keys first seen per `host:port` (trust on first use), for the process lifetime.
type KnownHosts = Arc<StdMutex<HashMap<String, PublicKey>>>;

/// The russh client handler: checks the server's host key.
struct Client {
    addr: String,
    pins: Vec<HostKeyPin>,
    known: KnownHosts,
}

/// The handler's error: russh's, or a refused host key.
#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key,
            russh::keys::PublicKeyOrCertificate::Certificate(_) => {
                return Err(HandlerError::HostKey(
                    "the server presented a host certificate, which is not supported".into(),
                ))
            }
        };
        let presented = format!("{} {}", key.algorithm(), fingerprint(key));
        if !self.pins.is_empty() {
            if self.pins.iter().any(|p| p.matches(key)) {
                return Ok(true);
            }
            let expected: Vec<String> = self.pins.iter().map(HostKeyPin::describe).collect();
            return Err(HandlerError::HostKey(format!(
                "the server presented {presented}, ssh.hostkey expects {}",
                expected.join(" or ")
            )));
        }
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        match known.get(&self.addr) {
            Some(k) if k.key_data() == key.key_data() => Ok(true),
            Some(k) => Err(HandlerError::HostKey(format!(
                "the server presented {presented}, but {} {} was trusted on first use \
                 during this run; set ssh.hostkey to the new key if the change is expected \
                 (or restart the collector)",
                k.algorithm(),
                fingerprint(k)
            ))),
            None => {
                tracing::debug!(
                    server = %self.addr,
                    host_key = %presented,
                    "ssh: first host key of this server trusted for this run (set ssh.hostkey to pin it)"
                );
                known.insert(self.addr.clone(), key.clone());
                Ok(true)
            }
        }
    }
}

/// A kept connection.
struct Kept {
    digest: [u8; 32],
    handle: Arc<Handle<Client>>,
    last_used: Instant,
}

/// A device's connection state.
#[derive(Default)]
struct Slot {
    conn: Option<Kept>,
    /// The last authentication failure, for the settings with this digest.
    failure: Option<([u8; 32], SshError, Instant)>,
}

/// What a command gave.
#[derive(Debug, Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<u32>,
    signal: Option<String>,
}

/// Why running a command failed.
enum RunError {
    /// The session channel could not be opened (a kept connection may have gone stale).
    Open(String),
    /// Anything else.
    Other(SshError),
}

/// The SSH method.
pub struct Ssh {
    known: KnownHosts,
    slots: StdMutex<HashMap<i64, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl std::fmt::Debug for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssh").finish_non_exhaustive()
    }
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh::new()
    }
}

impl Ssh {
    /// The method, with no connection and no host key known yet.
    pub fn new() -> Ssh {
        Ssh {
            known: Arc::new(StdMutex::new(HashMap::new())),
            slots: StdMutex::new(HashMap::new()),
        }
    }

    /// Whether a connection to `device` is kept (for tests).
    pub async fn has_connection(&self, device: i64) -> bool {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&device)
            .cloned();
        match slot {
            Some(s) => s.lock().await.conn.is_some(),
            None => false,
        }
    }

    /// The device's slot; closes connections idle for [`IDLE_CONNECTION`] on the way.
    fn slot(&self, device: i64) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|_, s| {
            // A slot in use is kept; an idle one loses its connection, and goes once
            // nothing is left in it.
            let Ok(mut g) = s.try_lock() else {
                return true;
            };
            if g.conn
                .as_ref()
                .is_some_and(|c| c.last_used.elapsed() > IDLE_CONNECTION)
            {
                if let Some(old) = g.conn.take() {
                    close(old.handle);
                }
            }
            if g.failure
                .as_ref()
                .is_some_and(|(_, _, at)| at.elapsed() > FAILURE_HOLD)
            {
                g.failure = None;
            }
            g.conn.is_some() || g.failure.is_some()
        });
        slots.entry(device).or_default().clone()
    }

    /// A connection to the device, kept or new. Waiting for another datasource of the
    /// same device to connect counts against the deadline like connecting itself.
    async fn connection(
        &self,
        device: i64,
        settings: &Settings,
        fresh: bool,
    ) -> Result<(Arc<Handle<Client>>, bool), SshError> {
        let digest = settings.digest();
        let slot = self.slot(device);
        let mut slot = slot.lock().await;
        if let Some((d, e, at)) = &slot.failure {
            if *d == digest && at.elapsed() < FAILURE_HOLD {
                return Err(e.clone());
            }
            slot.failure = None;
        }
        if let Some(kept) = slot.conn.take() {
            if kept.digest == digest && !kept.handle.is_closed() && !fresh {
                let handle = kept.handle.clone();
                slot.conn = Some(Kept {
                    last_used: Instant::now(),
                    ..kept
                });
                return Ok((handle, true));
            }
            close(kept.handle);
        }
        match connect(settings, self.known.clone()).await {
            Ok(handle) => {
                let handle = Arc::new(handle);
                slot.conn = Some(Kept {
                    digest,
                    handle: handle.clone(),
                    last_used: Instant::now(),
                });
                Ok((handle, false))
            }
            Err(e) => {
                if matches!(e, SshError::Auth { .. }) {
                    slot.failure = Some((digest, e.clone(), Instant::now()));
                }
                Err(e)
            }
        }
    }

    /// Forgets the device's connection if it is `handle`.
    async fn drop_connection(&self, device: i64, handle: &Arc<Handle<Client>>) {
        let slot = self.slot(device);
        let mut slot = slot.lock().await;
        if slot
            .conn
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(&k.handle, handle))
        {
            if let Some(old) = slot.conn.take() {
                close(old.handle);
            }
        }
    }

    /// Runs `command` on the device; on a kept connection that turns out stale, once
    /// more on a new one.
    async fn run(
        &self,
        device: i64,
        settings: &Settings,
        command: &str,
        deadline: Instant,
        timeout_ms: u32,
    ) -> Result<Output, SshError> {
        let connect_timeout = || SshError::Timeout {
            what: format!("connecting to {} and logging in", settings.addr()),
            timeout_ms,
        };
        let (handle, reused) =
            tokio::time::timeout_at(deadline, self.connection(device, settings, false))
                .await
                .map_err(|_| connect_timeout())??;
        match exec(&handle, command, deadline, timeout_ms).await {
            Ok(o) => Ok(o),
            Err(RunError::Open(why)) if reused => {
                tracing::debug!(server = %settings.addr(), %why, "ssh: kept connection unusable, reconnecting");
                self.drop_connection(device, &handle).await;
                let (handle, _) =
                    tokio::time::timeout_at(deadline, self.connection(device, settings, true))
                        .await
                        .map_err(|_| connect_timeout())??;
                exec(&handle, command, deadline, timeout_ms)
                    .await
                    .map_err(|e| match e {
                        RunError::Open(why) => {
                            SshError::Session(format!("cannot open a session channel: {why}"))
                        }
                        RunError::Other(e) => e,
                    })
            }
            Err(RunError::Open(why)) => {
                self.drop_connection(device, &handle).await;
                Err(SshError::Session(format!(
                    "cannot open a session channel: {why}"
                )))
            }
            Err(RunError::Other(e)) => {
                if matches!(e, SshError::Session(_)) {
                    self.drop_connection(device, &handle).await;
                }
                Err(e)
            }
        }
    }

    /// Collects one SSH datasource from the device.
    pub async fn collect_ssh(&self, task: &Task, c: &SshCollector) -> Result<Outcome, SshError> {
        if c.command.trim().is_empty() {
            return Err(SshError::Settings(
                "the datasource has no command to run over SSH".into(),
            ));
        }
        let settings = Settings::from_device(&task.device)?;
        let timeout_ms = c.timeout_ms.max(100);
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let out = self
            .run(task.device.id, &settings, &c.command, deadline, timeout_ms)
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let instances = parse_output(c, task.datasource.has_multi_instances, &text)?;
        let has_values = instances.iter().any(|i| !i.values.is_empty());
        let exited_ok = out.status == Some(0);
        // No instance at all can be right (a host without local filesystems); a single
        // instance without any value means the output was not what the parser reads.
        if exited_ok && (has_values || c.fields.is_empty() || task.datasource.has_multi_instances) {
            return Ok(Outcome::Instances(instances));
        }
        if !exited_ok && has_values {
            tracing::debug!(
                device = task.device.id,
                datasource = %task.datasource.name,
                status = ?out.status,
                "ssh: the command exited with an error but its output had values; kept"
            );
            return Ok(Outcome::Instances(instances));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(300).collect::<String>());
        let how = match (&out.status, &out.signal) {
            (Some(0), _) => format!("printed nothing the {} parser could read", c.parser.kind()),
            (Some(s), _) => format!("exited with status {s}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "ended without an exit status".into(),
        };
        Err(SshError::Command {
            command: c.command.clone(),
            detail: match first {
                Some(l) => format!("{how}: {l}"),
                None => how,
            },
        })
    }
}

impl Method for Ssh {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Ssh(c) = &task.datasource.collector else {
                return Outcome::error("the ssh method only serves ssh datasources");
            };
            self.collect_ssh(task, c)
                .await
                .unwrap_or_else(|e| Outcome::error(e.to_string()))
        })
    }
}

/// Disconnects a connection no longer kept (in the background).
fn close(handle: Arc<Handle<Client>>) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                handle.disconnect(russh::Disconnect::ByApplication, "", "en"),
            )
            .await;
        });
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, SshError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| SshError::Resolve(host.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(SshError::Resolve(host.to_string()));
    }
    Ok(addrs)
}

/// Connects, checks the host key and logs in.
async fn connect(settings: &Settings, known: KnownHosts) -> Result<Handle<Client>, SshError> {
    let addr = settings.addr();
    // Decoding an encrypted key is deliberately slow (bcrypt): off the async threads.
    let key = match settings.key.clone() {
        Some(k) => {
            let pass = settings.key_pass.clone();
            let decoded = tokio::task::spawn_blocking(move || decode_key(&k, pass.as_deref()))
                .await
                .map_err(|_| SshError::Settings("ssh.key could not be decoded".into()))??;
            Some(Arc::new(decoded))
        }
        None => None,
    };
    let addrs = resolve(&settings.host, settings.port).await?;
    let stream = tokio::net::TcpStream::connect(addrs.as_slice())
        .await
        .map_err(|e| SshError::Connect {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    let _ = stream.set_nodelay(true);
    let config = client::Config {
        keepalive_interval: Some(Duration::from_secs(60)),
        keepalive_max: 3,
        preferred: russh::Preferred {
            key: std::borrow::Cow::Owned(settings.host_key_algorithms()),
            ..russh::Preferred::DEFAULT
        },
        ..client::Config::default()
    };
    let handler = Client {
        addr: addr.clone(),
        pins: settings.host_keys.clone(),
        known,
    };
    let mut handle = client::connect_stream(Arc::new(config), stream, handler)
        .await
        .map_err(|e| match e {
            HandlerError::HostKey(detail) => SshError::HostKey {
                addr: addr.clone(),
                detail,
            },
            HandlerError::Ssh(e) => SshError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            },
        })?;
    authenticate(&mut handle, settings, key).await?;
    Ok(handle)
}

fn method_names(m: &MethodSet) -> String {
    m.iter().map(<&str>::from).collect::<Vec<_>>().join(",")
}

/// Logs in: publickey, then password, then keyboard-interactive with the password.
async fn authenticate(
    handle: &mut Handle<Client>,
    settings: &Settings,
    key: Option<Arc<PrivateKey>>,
) -> Result<(), SshError> {
    let user = settings.user.as_str();
    let session = |e: russh::Error| SshError::Session(format!("authentication: {e}"));
    let mut tried: Vec<&str> = Vec::new();
    // What the server said it accepts (None: not known yet).
    let mut offered: Option<MethodSet> = None;
    let mut partial = false;
    // Records a failed attempt; true on success.
    fn note(r: client::AuthResult, offered: &mut Option<MethodSet>, partial: &mut bool) -> bool {
        match r {
            client::AuthResult::Success => true,
            client::AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => {
                *partial |= partial_success;
                *offered = Some(remaining_methods);
                false
            }
        }
    }
    let accepts = |offered: &Option<MethodSet>, m: MethodKind| {
        offered.as_ref().is_none_or(|o| o.contains(&m))
    };
    if let Some(key) = key {
        tried.push("publickey");
        let hash = if key.algorithm().is_rsa() {
            handle
                .best_supported_rsa_hash()
                .await
                .map_err(session)?
                .flatten()
        } else {
            None
        };
        let r = handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
            .await
            .map_err(session)?;
        if note(r, &mut offered, &mut partial) {
            return Ok(());
        }
    }
    if let Some(password) = &settings.password {
        if accepts(&offered, MethodKind::Password) {
            tried.push("password");
            let r = handle
                .authenticate_password(user, password.clone())
                .await
                .map_err(session)?;
            if note(r, &mut offered, &mut partial) {
                return Ok(());
            }
        }
        // Keyboard-interactive only where password is not available: a server still
        // offering password after one was tried rejected that password.
        if offered.as_ref().is_some_and(|o| {
            o.contains(&MethodKind::KeyboardInteractive) && !o.contains(&MethodKind::Password)
        }) {
            tried.push("keyboard-interactive");
            let mut r = handle
                .authenticate_keyboard_interactive_start(user, None::<String>)
                .await
                .map_err(session)?;
            let mut answered = false;
            for _ in 0..MAX_KBD_ROUNDS {
                match r {
                    KeyboardInteractiveAuthResponse::Success => return Ok(()),
                    KeyboardInteractiveAuthResponse::Failure {
                        remaining_methods,
                        partial_success,
                    } => {
                        partial |= partial_success;
                        offered = Some(remaining_methods);
                        break;
                    }
                    KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                        // The password answers the one hidden prompt, once: asked again,
                        // it was wrong.
                        let hidden = prompts.iter().filter(|p| !p.echo).count();
                        if hidden > 1 || (hidden == 1 && answered) || prompts.iter().any(|p| p.echo)
                        {
                            break;
                        }
                        answered |= hidden == 1;
                        let responses = prompts.iter().map(|_| password.clone()).collect();
                        r = handle
                            .authenticate_keyboard_interactive_respond(responses)
                            .await
                            .map_err(session)?;
                    }
                }
            }
        }
    }
    let mut offered_text = match &offered {
        Some(o) if !o.is_empty() => format!("; the server accepts: {}", method_names(o)),
        _ => String::new(),
    };
    if partial {
        offered_text.push_str("; a further factor was required, which is not supported");
    }
    if tried.is_empty() {
        tried.push("none usable");
    }
    Err(SshError::Auth {
        user: user.to_string(),
        tried: tried.join(", "),
        offered: offered_text,
    })
}

/// Runs `command` in a new session channel, reading its output until it closes.
async fn exec(
    handle: &Handle<Client>,
    command: &str,
    deadline: Instant,
    timeout_ms: u32,
) -> Result<Output, RunError> {
    let timeout = || {
        RunError::Other(SshError::Timeout {
            what: format!("`{command}`"),
            timeout_ms,
        })
    };
    let mut channel = tokio::time::timeout_at(deadline, handle.channel_open_session())
        .await
        .map_err(|_| timeout())?
        .map_err(|e| RunError::Open(e.to_string()))?;
    let read = async {
        channel
            .exec(true, command)
            .await
            .map_err(|e| SshError::Session(format!("cannot start the command: {e}")))?;
        let mut out = Output::default();
        let mut closed = false;
        while let Some(msg) = channel.wait().await {
            match msg {
                russh::ChannelMsg::Data { data } => {
                    if out.stdout.len() + data.len() > MAX_OUTPUT {
                        return Err(SshError::Command {
                            command: command.to_string(),
                            detail: format!("printed more than {} MiB", MAX_OUTPUT >> 20),
                        });
                    }
                    out.stdout.extend_from_slice(&data);
                }
                russh::ChannelMsg::ExtendedData { data, .. } => {
                    let room = MAX_STDERR.saturating_sub(out.stderr.len());
                    out.stderr
                        .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
                }
                russh::ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status),
                russh::ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.signal = Some(format!("{signal_name:?}"));
                }
                russh::ChannelMsg::Failure => {
                    return Err(SshError::Command {
                        command: command.to_string(),
                        detail: "was refused by the server (exec request failed)".into(),
                    })
                }
                russh::ChannelMsg::Close => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        if !closed && out.status.is_none() && out.signal.is_none() {
            return Err(SshError::Session(
                "the connection closed before the command finished".into(),
            ));
        }
        Ok(out)
    };
    let result = tokio::time::timeout_at(deadline, read).await;
    match result {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), channel.close()).await;
            Err(RunError::Other(e))
        }
        Err(_) => {
            // Closing the channel ends the remote command's output (it gets SIGPIPE).
            let _ = tokio::time::timeout(Duration::from_secs(1), channel.close()).await;
            Err(timeout())
        }
    }
}

fn single(c: &SshCollector, fields: &Fields) -> Vec<RawInstance> {
    vec![RawInstance {
        values: map_fields(&c.fields, fields),
        ..RawInstance::default()
    }]
}

fn named(c: &SshCollector, entries: Vec<(String, Fields)>) -> Vec<RawInstance> {
    entries
        .into_iter()
        .map(|(name, f)| RawInstance {
            display_name: Some(name.clone()),
            name: Some(name),
            properties: BTreeMap::new(),
            values: map_fields(&c.fields, &f),
        })
        .collect()
}

/// Reads a command's output with the datasource's parser; `multi` is whether the
/// datasource has instances (for `key_value` and `regex`).
pub fn parse_output(
    c: &SshCollector,
    multi: bool,
    text: &str,
) -> Result<Vec<RawInstance>, SshError> {
    Ok(match &c.parser {
        SshParser::ProcStat {} => single(c, &parse::proc_stat(text)),
        SshParser::Meminfo {} => single(c, &parse::meminfo(text)),
        SshParser::Df {} => named(c, parse::df_posix(text)),
        SshParser::NetDev {} => named(c, parse::net_dev(text)),
        SshParser::KeyValue { separator } => parse::key_value(text, separator, multi)
            .into_iter()
            .map(|(name, f)| RawInstance {
                display_name: name.clone(),
                name,
                properties: BTreeMap::new(),
                values: map_fields(&c.fields, &f),
            })
            .collect(),
        SshParser::Regex { pattern } => {
            let re = regex::Regex::new(pattern).map_err(|e| {
                SshError::Settings(format!("the datasource's regex does not compile: {e}"))
            })?;
            let fields_of = |caps: &regex::Captures<'_>| -> Fields {
                re.capture_names()
                    .flatten()
                    .filter(|n| *n != "instance")
                    .filter_map(|n| {
                        let v = caps.name(n)?.as_str().trim().parse::<f64>().ok()?;
                        Some((n.to_string(), v))
                    })
                    .collect()
            };
            if multi {
                let mut out: Vec<RawInstance> = Vec::new();
                for caps in re.captures_iter(text) {
                    let Some(name) = caps.name("instance").map(|m| m.as_str().trim()) else {
                        continue;
                    };
                    if name.is_empty() || out.iter().any(|i| i.name.as_deref() == Some(name)) {
                        continue;
                    }
                    out.push(RawInstance {
                        name: Some(name.to_string()),
                        display_name: Some(name.to_string()),
                        properties: BTreeMap::new(),
                        values: map_fields(&c.fields, &fields_of(&caps)),
                    });
                }
                out
            } else {
                let f = re
                    .captures(text)
                    .map(|caps| fields_of(&caps))
                    .unwrap_or_default();
                single(c, &f)
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-pass-word";

    fn dev(props: &[(&str, &str)]) -> Device {
        Device::new(1, "10.0.0.9", props)
    }

    fn collector(parser: SshParser, fields: &[(&str, &str)]) -> SshCollector {
        SshCollector {
            target: Default::default(),
            command: "x".into(),
            parser,
            fields: fields
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            timeout_ms: 1000,
        }
    }

    #[test]
    fn settings_from_properties() {
        let s = Settings::from_device(&dev(&[("ssh.user", "mon"), ("ssh.pass", SECRET)])).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("10.0.0.9", 22));
        assert_eq!(s.addr(), "10.0.0.9:22");
        assert!(!format!("{s:?}").contains(SECRET));
        let s = Settings::from_device(&dev(&[
            ("ssh.user", "mon"),
            ("ssh.key", "k"),
            ("ssh.port", "2222"),
            ("system.hostname", "[::1]"),
        ]))
        .unwrap();
        assert_eq!(s.addr(), "[::1]:2222");
        for props in [
            &[][..],
            &[("ssh.user", "mon")][..],
            &[("ssh.pass", SECRET)][..],
            &[("ssh.user", "mon"), ("ssh.pass", SECRET), ("ssh.port", "0")][..],
            &[
                ("ssh.user", "mon"),
                ("ssh.pass", SECRET),
                ("ssh.hostkey", "MD5:aa:bb"),
            ][..],
        ] {
            let m = Settings::from_device(&dev(props)).unwrap_err().to_string();
            assert!(m.contains("ssh."), "{m}");
            assert!(!m.contains(SECRET), "{m}");
        }
    }

    #[test]
    fn host_key_pins() {
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ c";
        let pins = parse_host_keys(&format!("{line}\nSHA256:abc+/=, host.example {line}")).unwrap();
        assert_eq!(pins.len(), 3);
        assert_eq!(pins[1], HostKeyPin::Fingerprint("SHA256:abc+/".into()));
        let HostKeyPin::Key(k) = &pins[0] else {
            panic!()
        };
        assert!(pins[0].matches(k) && pins[2].matches(k));
        assert!(HostKeyPin::Fingerprint(fingerprint(k)).matches(k));
        assert!(parse_host_keys("SHA256:").is_err());
        assert!(parse_host_keys("nonsense").is_err());
        // Only key pins: only their algorithms are offered.
        let s = Settings {
            host: "h".into(),
            port: 22,
            user: "u".into(),
            password: None,
            key: None,
            key_pass: None,
            host_keys: vec![pins[0].clone()],
        };
        assert_eq!(s.host_key_algorithms(), vec![Algorithm::Ed25519]);
    }

    #[test]
    fn keys_on_one_line_are_restored() {
        let k = "-----BEGIN OPENSSH PRIVATE KEY----- AAAA BBBB -----END OPENSSH PRIVATE KEY-----";
        assert_eq!(
            normalize_key(k),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAABBBB\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        assert_eq!(normalize_key("a\\nb"), "a\nb");
        let e = decode_key("not a key", None).unwrap_err().to_string();
        assert!(e.contains("ssh.key"), "{e}");
        let e = decode_key("not a key", Some(SECRET))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ssh.key.pass") && !e.contains(SECRET), "{e}");
    }

    #[test]
    fn output_parsers() {
        let c = collector(SshParser::ProcStat {}, &[("Total", "total")]);
        let i = parse_output(&c, false, "cpu  1 2 3 4 5 6 7 8 0 0\n").unwrap();
        assert_eq!(i[0].values["Total"], 36.0);
        let c = collector(SshParser::Df {}, &[("Used", "used")]);
        let i = parse_output(
            &c,
            true,
            "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/a 10 4 6 40% /\n",
        )
        .unwrap();
        assert_eq!(i[0].name.as_deref(), Some("/"));
        assert_eq!(i[0].values["Used"], 4096.0);
        let c = collector(
            SshParser::Regex {
                pattern: r"(?m)^(?P<instance>\w+) load=(?P<load>[\d.]+)$".into(),
            },
            &[("Load", "load")],
        );
        let i = parse_output(&c, true, "a load=1.5\nb load=2\nnoise\n").unwrap();
        assert_eq!(i.len(), 2);
        assert_eq!(i[1].name.as_deref(), Some("b"));
        assert_eq!(i[1].values["Load"], 2.0);
        let i = parse_output(&c, false, "a load=1.5\nb load=2\n").unwrap();
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].values["Load"], 1.5);
        let c = collector(
            SshParser::KeyValue {
                separator: ":".into(),
            },
            &[("A", "a")],
        );
        let i = parse_output(&c, false, "a: 3\n").unwrap();
        assert_eq!(i[0].values["A"], 3.0);
    }

    #[test]
    fn auth_error_message() {
        let e = SshError::Auth {
            user: "mon".into(),
            tried: "publickey".into(),
            offered: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "ssh: authentication as mon failed (methods tried: publickey)"
        );
    }
}
