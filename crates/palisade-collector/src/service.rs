//! The service-manager interface used by `install` and `migrate`.
//!
//! A [`ServiceManager`] starts, stops and describes the collector's service and owns its
//! "unit": for [`Systemd`] the unit file (`palisade-collector.service`), for [`Direct`]
//! (machines without systemd) a small JSON spec of the command to run, as which user, with
//! or without `CAP_NET_RAW`. Both render the same [`UnitParams`]; the systemd text comes
//! from the pure function [`systemd_unit`].
//!
//! [`Direct`] runs `palisade-collector run` itself: as root directly, as any other user
//! through `setpriv --reuid --regid --init-groups --no-new-privs` (ambient `CAP_NET_RAW`
//! when asked), or `runuser` when `setpriv` is missing. It keeps the pid in a pid file and
//! stops with SIGTERM, waiting for the exit (SIGKILL after 30 s).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The name of the service (unit, user, directories).
pub const SERVICE_NAME: &str = "palisade-collector";

/// What went wrong with the service manager.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command (systemctl, setpriv, …) failed.
    #[error("{command} failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its standard error (or output).
        output: String,
    },
    /// The unit or spec is missing or cannot be understood.
    #[error("{0}")]
    Invalid(String),
    /// The service did not start or stop in time.
    #[error("{0}")]
    Timeout(String),
}

fn io_err(what: &str, path: &Path, source: std::io::Error) -> ServiceError {
    ServiceError::Io {
        what: format!("{what} {}", path.display()),
        source,
    }
}

/// Where an installation lives. `prefix` is a root-like directory (default `/`), so that a
/// test or a chroot can hold a complete installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The prefix (`/` for a real installation).
    pub prefix: PathBuf,
    /// The binary: `<prefix>/usr/local/bin/palisade-collector`.
    pub binary: PathBuf,
    /// Configuration directory: `<prefix>/etc/palisade-collector`.
    pub config_dir: PathBuf,
    /// Configuration file in it: `collector.toml`.
    pub config_file: PathBuf,
    /// State directory: `--state-dir`, else `<prefix>/var/lib/palisade-collector`.
    pub state_dir: PathBuf,
    /// Log directory: `<prefix>/var/log/palisade-collector`.
    pub logs_dir: PathBuf,
    /// The systemd unit: `<prefix>/etc/systemd/system/palisade-collector.service`.
    pub unit_file: PathBuf,
    /// The spec of the direct runner: `<prefix>/etc/palisade-collector/direct.json`.
    pub direct_spec: PathBuf,
    /// The pid file of the direct runner: `<prefix>/run/palisade-collector/collector.pid`.
    pub pid_file: PathBuf,
}

impl Layout {
    /// The layout under `prefix` (default `/`), with an optional state directory override.
    pub fn new(prefix: Option<&Path>, state_dir: Option<&Path>) -> Layout {
        let prefix = prefix.map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let config_dir = prefix.join("etc").join(SERVICE_NAME);
        Layout {
            binary: prefix.join("usr/local/bin").join(SERVICE_NAME),
            config_file: config_dir.join("collector.toml"),
            direct_spec: config_dir.join("direct.json"),
            config_dir,
            state_dir: state_dir.map_or_else(
                || prefix.join("var/lib").join(SERVICE_NAME),
                Path::to_path_buf,
            ),
            logs_dir: prefix.join("var/log").join(SERVICE_NAME),
            unit_file: prefix
                .join("etc/systemd/system")
                .join(format!("{SERVICE_NAME}.service")),
            pid_file: prefix.join("run").join(SERVICE_NAME).join("collector.pid"),
            prefix,
        }
    }

    /// Whether this is the real system (prefix `/`), where `systemctl` applies.
    pub fn is_system(&self) -> bool {
        self.prefix == Path::new("/")
    }
}

/// What a unit (or direct spec) says: who runs what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitParams {
    /// The user the collector runs as.
    pub user: String,
    /// Its group.
    pub group: String,
    /// The command: the binary and its arguments (`--config …`, `run`, `--state-dir …`).
    pub exec: Vec<String>,
    /// State directory (identity, buffer).
    pub state_dir: PathBuf,
    /// Log directory.
    pub logs_dir: PathBuf,
    /// Configuration directory.
    pub config_dir: PathBuf,
    /// Grant `CAP_NET_RAW` (only when `net.ipv4.ping_group_range` does not cover the group).
    pub net_raw: bool,
}

impl UnitParams {
    /// The command for `user` running `binary` with `config_file` and `state_dir`
    /// (`--allow-root` when the user is root: the legacy, non-compliant layout).
    pub fn command(binary: &Path, config_file: &Path, state_dir: &Path, user: &str) -> Vec<String> {
        let mut exec = vec![
            binary.display().to_string(),
            "--config".into(),
            config_file.display().to_string(),
            "run".into(),
            "--state-dir".into(),
            state_dir.display().to_string(),
        ];
        if user == "root" {
            exec.push("--allow-root".into());
        }
        exec
    }
}

/// The hardened systemd unit for `p`. Pure.
///
/// `StateDirectory=`/`LogsDirectory=`/`ConfigurationDirectory=` are used when the
/// directories are the standard ones (`/var/lib/…`, `/var/log/…`, `/etc/…`); otherwise the
/// state and log directories are listed in `ReadWritePaths=` (`ProtectSystem=strict` makes
/// everything else read-only). The capability sets are empty, or `CAP_NET_RAW` only.
pub fn systemd_unit(p: &UnitParams) -> String {
    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    line("# Written by `palisade-collector install`/`migrate`. See docs/collector.md.");
    line("[Unit]");
    line("Description=Palisade collector");
    line("Documentation=file:/usr/share/doc/palisade-collector/collector.md");
    line("Wants=network-online.target");
    line("After=network-online.target");
    line("");
    line("[Service]");
    line("Type=simple");
    line(&format!("User={}", p.user));
    line(&format!("Group={}", p.group));
    line(&format!("ExecStart={}", p.exec.join(" ")));
    line("Restart=on-failure");
    line("RestartSec=5");
    line("KillSignal=SIGTERM");
    line("TimeoutStopSec=30");
    // glibc gives threads their own malloc arenas, which keep freed memory: two arenas keep
    // a collector polling 1,000 SNMP devices under 30 MB resident (docs/collector.md,
    // "Footprint"). One socket per polled device: more than the default 1,024 files.
    line("Environment=MALLOC_ARENA_MAX=2");
    line("LimitNOFILE=16384");
    let mut rw = Vec::new();
    match std_dir_name(&p.state_dir, "/var/lib/") {
        Some(n) => line(&format!("StateDirectory={n}\nStateDirectoryMode=0700")),
        None => rw.push(p.state_dir.display().to_string()),
    }
    match std_dir_name(&p.logs_dir, "/var/log/") {
        Some(n) => line(&format!("LogsDirectory={n}\nLogsDirectoryMode=0750")),
        None => rw.push(p.logs_dir.display().to_string()),
    }
    if let Some(n) = std_dir_name(&p.config_dir, "/etc/") {
        line(&format!(
            "ConfigurationDirectory={n}\nConfigurationDirectoryMode=0750"
        ));
    }
    if !rw.is_empty() {
        line(&format!("ReadWritePaths={}", rw.join(" ")));
    }
    for l in [
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "SystemCallFilter=@system-service",
        "SystemCallArchitectures=native",
    ] {
        line(l);
    }
    if p.net_raw {
        line("# net.ipv4.ping_group_range does not cover the group: CAP_NET_RAW for ICMP only.");
        line("CapabilityBoundingSet=CAP_NET_RAW");
        line("AmbientCapabilities=CAP_NET_RAW");
    } else {
        line("# net.ipv4.ping_group_range covers the group: no capability at all.");
        line("CapabilityBoundingSet=");
        line("AmbientCapabilities=");
    }
    line("");
    line("[Install]");
    line("WantedBy=multi-user.target");
    s
}

/// `name` when `dir` is `<base><name>` with a single plain component.
fn std_dir_name(dir: &Path, base: &str) -> Option<String> {
    let rest = dir.to_str()?.strip_prefix(base)?;
    (!rest.is_empty() && !rest.contains('/') && !rest.contains(' ')).then(|| rest.to_string())
}

/// Reads back what [`systemd_unit`] (or an older hand-written unit) says. Pure.
pub fn parse_systemd_unit(text: &str) -> Option<UnitParams> {
    let mut user = None;
    let mut group = None;
    let mut exec = None;
    let mut net_raw = false;
    let mut dirs: Vec<(String, String)> = Vec::new();
    for l in text.lines().map(str::trim) {
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "User" => user = Some(v.to_string()),
            "Group" => group = Some(v.to_string()),
            "ExecStart" => {
                exec = Some(
                    v.trim_start_matches(['-', '@', '+', '!', ':'])
                        .split_whitespace()
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                )
            }
            "AmbientCapabilities" => net_raw = v.contains("CAP_NET_RAW"),
            k @ ("StateDirectory" | "LogsDirectory" | "ConfigurationDirectory") => {
                dirs.push((k.to_string(), v.to_string()))
            }
            _ => {}
        }
    }
    let exec: Vec<String> = exec.filter(|e| !e.is_empty())?;
    // No User= means root: the legacy installation.
    let user = user.unwrap_or_else(|| "root".into());
    let group = group.unwrap_or_else(|| {
        if user == "root" {
            "root".into()
        } else {
            user.clone()
        }
    });
    let arg = |flag: &str| {
        exec.iter()
            .position(|a| a == flag)
            .and_then(|i| exec.get(i + 1))
            .map(PathBuf::from)
    };
    let dir = |key: &str, base: &str| {
        dirs.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| PathBuf::from(base).join(v))
    };
    let state_dir = arg("--state-dir")
        .or_else(|| dir("StateDirectory", "/var/lib"))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_STATE_DIR));
    let config_dir = arg("--config")
        .and_then(|c| c.parent().map(Path::to_path_buf))
        .or_else(|| dir("ConfigurationDirectory", "/etc"))
        .unwrap_or_else(|| PathBuf::from("/etc").join(SERVICE_NAME));
    Some(UnitParams {
        user,
        group,
        logs_dir: dir("LogsDirectory", "/var/log")
            .unwrap_or_else(|| PathBuf::from("/var/log").join(SERVICE_NAME)),
        exec,
        state_dir,
        config_dir,
        net_raw,
    })
}

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// systemd (`systemctl`, a unit file).
    Systemd,
    /// No service manager: the collector is spawned and tracked through a pid file.
    Direct,
}

/// systemd when `/run/systemd/system` exists (the test `sd_booted(3)` uses), else direct.
pub fn detect() -> Kind {
    if Path::new("/run/systemd/system").is_dir() {
        Kind::Systemd
    } else {
        Kind::Direct
    }
}

/// The manager of `kind` (detected when `None`) for `layout`.
pub fn manager(kind: Option<Kind>, layout: &Layout) -> Box<dyn ServiceManager> {
    match kind.unwrap_or_else(detect) {
        Kind::Systemd => Box::new(Systemd::new(layout)),
        Kind::Direct => Box::new(Direct::new(layout)),
    }
}

/// Starts, stops and describes the collector's service, and owns its unit.
pub trait ServiceManager {
    /// `systemd` or `direct`.
    fn kind(&self) -> Kind;
    /// Where the unit lives (for messages).
    fn unit_path(&self) -> &Path;
    /// The unit's text for `p`.
    fn render(&self, p: &UnitParams) -> String;
    /// What a unit's text says.
    fn parse(&self, text: &str) -> Option<UnitParams>;
    /// The current unit's text, `None` when there is none.
    fn read_unit(&self) -> Result<Option<String>, ServiceError> {
        match fs::read_to_string(self.unit_path()) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read", self.unit_path(), e)),
        }
    }
    /// Writes (or rewrites) the unit, atomically, root-owned, mode 0644.
    fn write_unit(&self, text: &str) -> Result<(), ServiceError> {
        write_file(self.unit_path(), text.as_bytes(), 0o644)
    }
    /// Makes the manager re-read its units.
    fn daemon_reload(&self) -> Result<(), ServiceError>;
    /// Starts the service (nothing if it runs).
    fn start(&self) -> Result<(), ServiceError>;
    /// Stops the service and waits for the process to exit (nothing if it is stopped).
    fn stop(&self) -> Result<(), ServiceError>;
    /// The main process, if the service runs.
    fn main_pid(&self) -> Result<Option<u32>, ServiceError>;
    /// Whether the service runs.
    fn is_running(&self) -> Result<bool, ServiceError> {
        Ok(self.main_pid()?.is_some())
    }
    /// The effective uid of the running service's process.
    fn running_user(&self) -> Result<Option<u32>, ServiceError> {
        Ok(self.main_pid()?.and_then(process_euid))
    }
}

/// Writes `bytes` atomically with `mode`.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServiceError> {
    let dir = path
        .parent()
        .ok_or_else(|| ServiceError::Invalid(format!("{} has no directory", path.display())))?;
    fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    let tmp = dir.join(format!(
        ".tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io_err("cannot create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err("cannot write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| io_err("cannot rename into", path, e))
}

/// The effective uid of a live (not zombie) process.
pub fn process_euid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status
        .lines()
        .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
    {
        return None;
    }
    let st = crate::privilege::ProcStatus::parse(&status);
    status
        .lines()
        .any(|l| l.starts_with("Uid:"))
        .then(|| st.euid())
}

fn run_cmd(cmd: &mut Command) -> Result<String, ServiceError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ServiceError::Command {
            command: shown.clone(),
            status: "not started".into(),
            output: e.to_string(),
        })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if output.is_empty() {
            output = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(ServiceError::Command {
            command: shown,
            status: out.status.to_string(),
            output,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// systemd through `systemctl`.
#[derive(Debug, Clone)]
pub struct Systemd {
    unit_file: PathBuf,
    unit: String,
}

impl Systemd {
    /// The manager of `layout`'s unit.
    pub fn new(layout: &Layout) -> Systemd {
        Systemd {
            unit_file: layout.unit_file.clone(),
            unit: format!("{SERVICE_NAME}.service"),
        }
    }

    fn systemctl(&self, args: &[&str]) -> Result<String, ServiceError> {
        run_cmd(Command::new("systemctl").args(args))
    }
}

impl ServiceManager for Systemd {
    fn kind(&self) -> Kind {
        Kind::Systemd
    }
    fn unit_path(&self) -> &Path {
        &self.unit_file
    }
    fn render(&self, p: &UnitParams) -> String {
        systemd_unit(p)
    }
    fn parse(&self, text: &str) -> Option<UnitParams> {
        parse_systemd_unit(text)
    }
    fn daemon_reload(&self) -> Result<(), ServiceError> {
        self.systemctl(&["daemon-reload"]).map(drop)
    }
    fn start(&self) -> Result<(), ServiceError> {
        self.systemctl(&["start", &self.unit]).map(drop)
    }
    fn stop(&self) -> Result<(), ServiceError> {
        // `systemctl stop` waits for the unit to be inactive (TimeoutStopSec=30).
        self.systemctl(&["stop", &self.unit]).map(drop)
    }
    fn main_pid(&self) -> Result<Option<u32>, ServiceError> {
        let out = self.systemctl(&["show", "--property=MainPID", "--value", &self.unit])?;
        Ok(out.trim().parse::<u32>().ok().filter(|p| *p > 0))
    }
}

/// The spec file of [`Direct`]: the parameters, as JSON.
pub fn direct_spec(p: &UnitParams) -> String {
    serde_json::to_string_pretty(p).unwrap_or_default() + "\n"
}

/// No service manager: spawns the collector itself and tracks it with a pid file.
#[derive(Debug, Clone)]
pub struct Direct {
    spec: PathBuf,
    pid_file: PathBuf,
}

/// How long [`Direct::stop`] waits for SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl Direct {
    /// The runner of `layout` (spec in the config directory, pid file under `run/`).
    pub fn new(layout: &Layout) -> Direct {
        Direct {
            spec: layout.direct_spec.clone(),
            pid_file: layout.pid_file.clone(),
        }
    }

    fn params(&self) -> Result<UnitParams, ServiceError> {
        let text = self.read_unit()?.ok_or_else(|| {
            ServiceError::Invalid(format!("no direct-run spec at {}", self.spec.display()))
        })?;
        self.parse(&text).ok_or_else(|| {
            ServiceError::Invalid(format!("{} is not a direct-run spec", self.spec.display()))
        })
    }

    fn recorded_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// The command that runs `exec` as `user`/`group` (root: as is).
    pub fn wrap(user: &str, group: &str, net_raw: bool, exec: &[String]) -> Command {
        let (first, rest) = match exec.split_first() {
            Some((f, r)) => (f.as_str(), r),
            None => ("/bin/false", &[][..]),
        };
        if user == "root" {
            let mut c = Command::new(first);
            c.args(rest);
            return c;
        }
        if let Some(setpriv) = find_tool("setpriv") {
            let mut c = Command::new(setpriv);
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={group}"))
                .arg("--init-groups")
                .arg("--no-new-privs");
            if net_raw {
                c.arg("--inh-caps=+net_raw").arg("--ambient-caps=+net_raw");
            }
            c.arg("--").args(exec);
            c
        } else {
            // runuser cannot pass an ambient capability: ICMP then needs ping_group_range.
            let mut c = Command::new(find_tool("runuser").unwrap_or_else(|| "runuser".into()));
            c.args(["-u", user, "-g", group, "--"]).args(exec);
            c
        }
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(p, sig);
    }
}

impl ServiceManager for Direct {
    fn kind(&self) -> Kind {
        Kind::Direct
    }
    fn unit_path(&self) -> &Path {
        &self.spec
    }
    fn render(&self, p: &UnitParams) -> String {
        direct_spec(p)
    }
    fn parse(&self, text: &str) -> Option<UnitParams> {
        serde_json::from_str(text).ok()
    }
    fn daemon_reload(&self) -> Result<(), ServiceError> {
        Ok(())
    }

    fn main_pid(&self) -> Result<Option<u32>, ServiceError> {
        let Some(pid) = self.recorded_pid() else {
            return Ok(None);
        };
        if process_euid(pid).is_none() {
            return Ok(None);
        }
        // A recycled pid is not ours: the command line must name our binary and `run`.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours =
            args.iter().any(|a| a.ends_with(SERVICE_NAME)) && args.iter().any(|a| a == "run");
        Ok(ours.then_some(pid))
    }

    fn start(&self) -> Result<(), ServiceError> {
        if self.is_running()? {
            return Ok(());
        }
        let p = self.params()?;
        fs::create_dir_all(&p.logs_dir).map_err(|e| io_err("cannot create", &p.logs_dir, e))?;
        let log_path = p.logs_dir.join("collector.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&log_path)
            .map_err(|e| io_err("cannot open", &log_path, e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| io_err("cannot open", &log_path, e))?;
        let mut cmd = Direct::wrap(&p.user, &p.group, p.net_raw, &p.exec);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LANG", "C.UTF-8");
        if let Some(v) = std::env::var_os("PALISADE_COLLECTOR_LOG") {
            cmd.env("PALISADE_COLLECTOR_LOG", v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .current_dir("/")
            .process_group(0);
        let shown = format!("{cmd:?}");
        let mut child = cmd.spawn().map_err(|e| ServiceError::Command {
            command: shown.clone(),
            status: "not started".into(),
            output: e.to_string(),
        })?;
        let mut pid = child.id();
        // runuser forks: the collector is its child.
        let is_runuser = cmd.get_program().to_string_lossy().ends_with("runuser");
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                let tail = fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                return Err(ServiceError::Command {
                    command: shown,
                    status: st.to_string(),
                    output: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
                });
            }
            if is_runuser && pid == child.id() {
                if let Some(c) = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next().and_then(|c| c.parse().ok()))
                {
                    pid = c;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some(dir) = self.pid_file.parent() {
            fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
        }
        write_file(&self.pid_file, format!("{pid}\n").as_bytes(), 0o644)
    }

    fn stop(&self) -> Result<(), ServiceError> {
        let Some(pid) = self.main_pid()? else {
            let _ = fs::remove_file(&self.pid_file);
            return Ok(());
        };
        signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while process_euid(pid).is_some() {
            if Instant::now() > deadline {
                signal(pid, rustix::process::Signal::KILL);
                std::thread::sleep(Duration::from_millis(500));
                if process_euid(pid).is_some() {
                    return Err(ServiceError::Timeout(format!(
                        "the collector (pid {pid}) did not exit"
                    )));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = fs::remove_file(&self.pid_file);
        Ok(())
    }
}

/// A user of `/etc/passwd`: (uid, primary gid).
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    find_user(&passwd, name)
}

/// The (uid, gid) of `name` in an `/etc/passwd` text. Pure.
pub fn find_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The name of a group id (`/etc/group`), else the number.
pub fn group_name(gid: u32) -> String {
    let group = fs::read_to_string("/etc/group").unwrap_or_default();
    crate::report::name_of(&group, gid).unwrap_or_else(|| gid.to_string())
}

/// Whether `net.ipv4.ping_group_range` (its text, `"lo hi"`) covers `gid`. Pure.
pub fn ping_range_covers(range: &str, gid: u32) -> bool {
    let mut it = range.split_whitespace().map(str::parse::<u64>);
    matches!((it.next(), it.next()), (Some(Ok(lo)), Some(Ok(hi))) if lo <= u64::from(gid) && u64::from(gid) <= hi)
}

/// The current `net.ipv4.ping_group_range` (kernel default `1 0` when unreadable).
pub fn ping_group_range() -> String {
    fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "1 0".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn params(state: &str, net_raw: bool) -> UnitParams {
        let l = Layout::new(None, Some(Path::new(state)));
        UnitParams {
            user: "palisade-collector".into(),
            group: "palisade-collector".into(),
            exec: UnitParams::command(
                &l.binary,
                &l.config_file,
                &l.state_dir,
                "palisade-collector",
            ),
            state_dir: l.state_dir,
            logs_dir: l.logs_dir,
            config_dir: l.config_dir,
            net_raw,
        }
    }

    #[test]
    fn unit_is_hardened() {
        let u = systemd_unit(&params("/var/lib/palisade-collector", false));
        for l in [
            "User=palisade-collector",
            "Group=palisade-collector",
            "StateDirectory=palisade-collector",
            "LogsDirectory=palisade-collector",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "PrivateDevices=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectKernelLogs=yes",
            "ProtectControlGroups=yes",
            "RestrictNamespaces=yes",
            "RestrictRealtime=yes",
            "LockPersonality=yes",
            "MemoryDenyWriteExecute=yes",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
            "SystemCallFilter=@system-service",
            "SystemCallArchitectures=native",
            "CapabilityBoundingSet=",
            "AmbientCapabilities=",
            "Environment=MALLOC_ARENA_MAX=2",
            "LimitNOFILE=16384",
            "ExecStart=/usr/local/bin/palisade-collector --config /etc/palisade-collector/collector.toml run --state-dir /var/lib/palisade-collector",
        ] {
            assert!(u.lines().any(|x| x == l), "missing `{l}` in\n{u}");
        }
        assert!(!u.contains("CAP_NET_RAW\n"));
        assert!(!u.contains("--allow-root"));
        assert!(!u.contains("ReadWritePaths"));
    }

    #[test]
    fn net_raw_only_when_asked_and_custom_dirs() {
        let u = systemd_unit(&params("/srv/pc/state", true));
        assert!(u.contains("\nCapabilityBoundingSet=CAP_NET_RAW\n"));
        assert!(u.contains("\nAmbientCapabilities=CAP_NET_RAW\n"));
        assert!(u.contains("ReadWritePaths=/srv/pc/state"), "{u}");
        assert!(!u.contains("StateDirectory="));
    }

    #[test]
    fn unit_round_trips() {
        let p = params("/var/lib/palisade-collector", true);
        assert_eq!(parse_systemd_unit(&systemd_unit(&p)), Some(p.clone()));
        let d = Direct::new(&Layout::new(None, None));
        assert_eq!(d.parse(&direct_spec(&p)), Some(p));
        // A legacy unit without User= runs as root.
        let legacy = "[Service]\nExecStart=/opt/pc/palisade-collector run --allow-root\n";
        let l = parse_systemd_unit(legacy).unwrap();
        assert_eq!(l.user, "root");
        assert_eq!(l.state_dir, PathBuf::from("/var/lib/palisade-collector"));
        assert!(parse_systemd_unit("[Service]\nUser=x\n").is_none());
    }

    #[test]
    fn root_command_allows_root() {
        let l = Layout::new(Some(Path::new("/tmp/p")), None);
        assert_eq!(
            l.binary,
            PathBuf::from("/tmp/p/usr/local/bin/palisade-collector")
        );
        assert_eq!(
            l.state_dir,
            PathBuf::from("/tmp/p/var/lib/palisade-collector")
        );
        assert!(!l.is_system());
        let c = UnitParams::command(&l.binary, &l.config_file, &l.state_dir, "root");
        assert_eq!(c.last().map(String::as_str), Some("--allow-root"));
        let w = Direct::wrap("svc", "svc", true, &c);
        let args: Vec<String> = w
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if w.get_program().to_string_lossy().ends_with("setpriv") {
            assert!(args.contains(&"--reuid=svc".to_string()));
            assert!(args.contains(&"--ambient-caps=+net_raw".to_string()));
            assert!(args.contains(&"--no-new-privs".to_string()));
        }
    }

    #[test]
    fn users_and_ping_range() {
        let pw = "root:x:0:0::/root:/bin/sh\nsvc:x:990:991::/:/usr/sbin/nologin\n";
        assert_eq!(find_user(pw, "svc"), Some((990, 991)));
        assert_eq!(find_user(pw, "sv"), None);
        assert!(!ping_range_covers("1 0", 991));
        assert!(ping_range_covers("0 2147483647", 991));
        assert!(ping_range_covers("991 991", 991));
        assert!(!ping_range_covers("garbage", 991));
    }
}
