//! `palisade-collector migrate --to-user NAME`: converts a root installation in place.
//!
//! The plan is printed first, then (unless `--yes`) confirmed with `Proceed? [y/N]` on
//! standard input; `--dry-run` prints it only. The steps:
//!
//! 1. create the user when missing (`useradd --system`; not undone by a rollback);
//! 2. stop the collector;
//! 3. count and checksum the buffer: the number of batches and a SHA-256 over their
//!    payloads, oldest first;
//! 4. re-own the state and log directories to *user*:*group* and the config directory to
//!    root:*group* (0750, files 0640), recursively, never following a symbolic link
//!    (`lchown`); a link pointing outside these directories, or a file with more than one
//!    hard link, makes the plan refuse before anything changes;
//! 5. rewrite the unit (or the direct-run spec) to run as the user, without `--allow-root`,
//!    with `CAP_NET_RAW` only when `net.ipv4.ping_group_range` does not cover the group;
//! 6. verify as the user, before anything can be sent: the binary runs, `status` reads the
//!    same identity (collector id; `collector.key` unchanged), and the buffer's count and
//!    checksum are unchanged;
//! 7. start, and verify the process runs with the user's uid and stays up.
//!
//! Any failure after step 1 rolls back: stop, the old unit, the old owners and modes,
//! start as before (checked), and a non-zero exit.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::buffer;
use crate::install::{self, kind_name};
use crate::portal::{Identity, KEY_FILE};
use crate::service::{self, Direct, Kind, Layout, ServiceManager, UnitParams};

/// Exit code: migrated (or dry run, or nothing to do).
pub const EXIT_OK: u8 = 0;
/// Exit code: a step failed and the previous installation was restored and runs again.
pub const EXIT_ROLLED_BACK: u8 = 1;
/// Exit code: the operator answered no; nothing changed.
pub const EXIT_DECLINED: u8 = 3;
/// Exit code: a step failed and the rollback was incomplete (see the messages).
pub const EXIT_ROLLBACK_FAILED: u8 = 4;
/// Exit code: refused before changing anything (no installation, unsafe files, …).
pub const EXIT_REFUSED: u8 = crate::EXIT_CONFIG;
/// Exit code: not run as root.
pub const EXIT_NOT_ROOT: u8 = crate::EXIT_PRIVILEGE;

/// How long the new service may take to be seen running as the user.
const START_WAIT: Duration = Duration::from_secs(20);
/// How long it must then stay up.
const SETTLE: Duration = Duration::from_secs(3);

/// `migrate`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// The service user to run as from now on (created as a system user when missing).
    #[arg(long)]
    pub to_user: String,
    /// Do not ask: proceed after printing the plan (silent mode, for automation).
    #[arg(long)]
    pub yes: bool,
    /// Print the plan only; change nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// The installation's prefix (as given to `install`; default `/`).
    #[arg(long)]
    pub prefix: Option<PathBuf>,
    /// State directory (default: the one the unit names).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Service manager (default: systemd if `/run/systemd/system` exists, else direct).
    #[arg(long, value_enum)]
    pub service_manager: Option<Kind>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Refused before changing anything.
    #[error("refused, nothing changed: {0}")]
    Refused(String),
    /// Not root.
    #[error("migrate needs root (it stops the service and changes owners)")]
    NotRoot,
    /// The operator said no.
    #[error("aborted, nothing changed")]
    Declined,
    /// A step failed; the rollback restored the previous installation.
    #[error("step `{step}` failed: {cause}; rolled back: the collector runs as before")]
    RolledBack {
        /// The step.
        step: String,
        /// Why.
        cause: String,
    },
    /// A step failed and the rollback did not complete.
    #[error("step `{step}` failed: {cause}; ROLLBACK INCOMPLETE: {}", problems.join("; "))]
    RollbackFailed {
        /// The step.
        step: String,
        /// Why.
        cause: String,
        /// What the rollback could not do.
        problems: Vec<String>,
    },
}

impl MigrateError {
    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            MigrateError::Refused(_) => EXIT_REFUSED,
            MigrateError::NotRoot => EXIT_NOT_ROOT,
            MigrateError::Declined => EXIT_DECLINED,
            MigrateError::RolledBack { .. } => EXIT_ROLLED_BACK,
            MigrateError::RollbackFailed { .. } => EXIT_ROLLBACK_FAILED,
        }
    }
}

/// Runs `migrate` with the process's standard input and output; returns the exit code.
pub fn main(a: &MigrateArgs) -> u8 {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut out = std::io::stdout();
    match migrate(a, &mut input, &mut out) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = out.flush();
            eprintln!("palisade-collector migrate: {e}");
            e.exit_code()
        }
    }
}

/// The buffer's fingerprint: number of batches and SHA-256 over their payloads in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferSum {
    /// Batches.
    pub batches: usize,
    /// Hex SHA-256.
    pub sha256: String,
    /// Batch ids, oldest first.
    pub ids: Vec<String>,
}

/// Counts and checksums the buffer of `state_dir` (read only).
pub fn buffer_sum(state_dir: &Path) -> Result<BufferSum, String> {
    let batches = buffer::inspect(state_dir).map_err(|e| e.to_string())?;
    let listed = buffer::counts_of(state_dir).map_err(|e| e.to_string())?;
    if listed.batches != batches.len() as u64 {
        return Err(format!(
            "{} batch files but only {} readable and intact",
            listed.batches,
            batches.len()
        ));
    }
    let mut h = Sha256::new();
    let mut ids = Vec::new();
    for (e, payload) in &batches {
        h.update(payload);
        ids.push(e.id.clone());
    }
    Ok(BufferSum {
        batches: batches.len(),
        sha256: hex::encode(h.finalize()),
        ids,
    })
}

/// One file or directory and what it had before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The path.
    pub path: PathBuf,
    /// Owner before.
    pub uid: u32,
    /// Group before.
    pub gid: u32,
    /// Mode before (permission bits).
    pub mode: u32,
    /// Whether it is a symbolic link (owner only, never followed).
    pub symlink: bool,
    /// Whether it is a directory.
    pub dir: bool,
}

/// Lexically normalises an absolute path (`..` and `.` removed, no file system access).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Every entry under `root` (itself included), never following symbolic links. Refuses a
/// link whose target lies outside `allowed`, and a regular file with several hard links
/// (it could be a file outside, such as `/etc/shadow`, that a chown would hand over).
pub fn walk(root: &Path, allowed: &[PathBuf], out: &mut Vec<Owned>) -> Result<(), String> {
    let meta = match fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot inspect {}: {e}", root.display())),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(root).map_err(|e| format!("{}: {e}", root.display()))?;
        let abs = normalise(&root.parent().unwrap_or(Path::new("/")).join(&target));
        let resolved = fs::canonicalize(&abs).unwrap_or(abs);
        if !allowed.iter().any(|a| resolved.starts_with(a)) {
            return Err(format!(
                "{} is a symbolic link to {} outside the collector's directories",
                root.display(),
                resolved.display()
            ));
        }
    } else if ft.is_file() && meta.nlink() > 1 {
        return Err(format!(
            "{} has {} hard links: it may be a file from elsewhere",
            root.display(),
            meta.nlink()
        ));
    }
    out.push(Owned {
        path: root.to_path_buf(),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
        symlink: ft.is_symlink(),
        dir: ft.is_dir(),
    });
    if ft.is_dir() {
        let rd = fs::read_dir(root).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            walk(&p, allowed, out)?;
        }
    }
    Ok(())
}

fn set(p: &Path, uid: u32, gid: u32, mode: Option<u32>) -> Result<(), String> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
        .map_err(|e| format!("cannot chown {}: {e}", p.display()))?;
    if let Some(m) = mode {
        fs::set_permissions(p, fs::Permissions::from_mode(m))
            .map_err(|e| format!("cannot chmod {}: {e}", p.display()))?;
    }
    Ok(())
}

/// What the migration will do.
struct Plan {
    old_text: String,
    old: UnitParams,
    new: UnitParams,
    new_text: String,
    uid: u32,
    gid: u32,
    create_user: bool,
    collector_id: i64,
    key_sha: String,
    state_dir: PathBuf,
    trees: Vec<(PathBuf, bool)>, // (root, is config)
    allowed: Vec<PathBuf>,
    range: String,
}

fn sha_file(p: &Path) -> Result<String, String> {
    fs::read(p)
        .map(|b| hex::encode(Sha256::digest(&b)))
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn plan(a: &MigrateArgs, mgr: &dyn ServiceManager) -> Result<Plan, MigrateError> {
    let refused = MigrateError::Refused;
    let old_text = mgr
        .read_unit()
        .map_err(|e| refused(e.to_string()))?
        .ok_or_else(|| {
            refused(format!(
                "no {} unit at {} (wrong --prefix or --service-manager?)",
                kind_name(mgr.kind()),
                mgr.unit_path().display()
            ))
        })?;
    let old = mgr
        .parse(&old_text)
        .ok_or_else(|| refused(format!("cannot understand {}", mgr.unit_path().display())))?;
    if a.to_user == old.user {
        return Err(refused(format!(
            "the collector already runs as {}",
            a.to_user
        )));
    }
    if a.to_user == "root" {
        return Err(refused(
            "migrating to root is the opposite of the point".into(),
        ));
    }
    let (uid, gid, create_user) = match service::lookup_user(&a.to_user) {
        Some((0, _)) => return Err(refused(format!("{} has uid 0", a.to_user))),
        Some((u, g)) => (u, g, false),
        None => {
            install::ensure_user(&a.to_user, &old.state_dir, true)
                .map_err(|e| refused(e.to_string()))?;
            (0, 0, true)
        }
    };
    let state_dir = a.state_dir.clone().unwrap_or_else(|| old.state_dir.clone());
    let identity = Identity::load(&state_dir).map_err(|e| refused(e.to_string()))?;
    let key_sha = sha_file(&state_dir.join(KEY_FILE)).map_err(refused)?;
    // The binary must stay root's: a binary the service user could write, it could replace.
    let bin = PathBuf::from(old.exec.first().cloned().unwrap_or_default());
    let bm = fs::metadata(&bin).map_err(|e| refused(format!("{}: {e}", bin.display())))?;
    if bm.uid() != 0 || bm.mode() & 0o022 != 0 {
        return Err(refused(format!(
            "{} must be owned by root and writable by root only (owner {}, mode {:04o})",
            bin.display(),
            bm.uid(),
            bm.mode() & 0o7777
        )));
    }
    let trees = vec![
        (state_dir.clone(), false),
        (old.logs_dir.clone(), false),
        (old.config_dir.clone(), true),
    ];
    let allowed: Vec<PathBuf> = trees
        .iter()
        .map(|(t, _)| fs::canonicalize(t).unwrap_or_else(|_| t.clone()))
        .collect();
    let mut probe = Vec::new();
    for (t, _) in &trees {
        walk(t, &allowed, &mut probe).map_err(refused)?;
    }
    let group = if create_user {
        a.to_user.clone()
    } else {
        service::group_name(gid)
    };
    let range = service::ping_group_range();
    let net_raw = create_user || !service::ping_range_covers(&range, gid);
    let mut exec: Vec<String> = old
        .exec
        .iter()
        .filter(|x| *x != "--allow-root")
        .cloned()
        .collect();
    if a.state_dir.is_some() {
        if let Some(i) = exec.iter().position(|x| x == "--state-dir") {
            if let Some(v) = exec.get_mut(i + 1) {
                *v = state_dir.display().to_string();
            }
        }
    }
    let new = UnitParams {
        user: a.to_user.clone(),
        group,
        exec,
        state_dir: state_dir.clone(),
        logs_dir: old.logs_dir.clone(),
        config_dir: old.config_dir.clone(),
        net_raw,
    };
    let new_text = mgr.render(&new);
    Ok(Plan {
        old_text,
        old,
        new,
        new_text,
        uid,
        gid,
        create_user,
        collector_id: identity.collector_id,
        key_sha,
        state_dir,
        trees,
        allowed,
        range,
    })
}

fn print_plan(
    w: &mut dyn Write,
    p: &Plan,
    mgr: &dyn ServiceManager,
    running: Option<(u32, Option<u32>)>,
) {
    let buffered = buffer::counts_of(&p.state_dir)
        .map(|c| c.batches)
        .unwrap_or(0);
    let u = &p.new.user;
    let g = &p.new.group;
    let _ = writeln!(
        w,
        "Migration of collector {} ({}) from {} to {u}, service manager {} ({}):",
        p.collector_id,
        p.state_dir.display(),
        p.old.user,
        kind_name(mgr.kind()),
        mgr.unit_path().display()
    );
    let mut n = 0;
    let mut step = |w: &mut dyn Write, text: String| {
        n += 1;
        let _ = writeln!(w, "  {n}. {text}");
    };
    if p.create_user {
        step(
            w,
            format!("create system user {u} (useradd --system, no home, nologin shell)"),
        );
    }
    step(
        w,
        match running {
            Some((pid, uid)) => format!(
                "stop the collector (pid {pid}, uid {})",
                uid.map_or("?".into(), |u| u.to_string())
            ),
            None => "stop the collector (not running now)".into(),
        },
    );
    step(
        w,
        format!("count and checksum the buffer ({buffered} batches now)"),
    );
    for (t, config) in &p.trees {
        step(
            w,
            if *config {
                format!(
                    "re-own {} to root:{g} (directories 0750, files 0640)",
                    t.display()
                )
            } else {
                format!(
                    "re-own {} to {u}:{g} recursively (lchown, no link followed)",
                    t.display()
                )
            },
        );
    }
    step(
        w,
        format!(
            "rewrite {} to run as {u}:{g} without --allow-root; ICMP: {}",
            mgr.unit_path().display(),
            if p.new.net_raw {
                format!(
                    "CAP_NET_RAW only (net.ipv4.ping_group_range {} does not cover the group)",
                    p.range
                )
            } else {
                format!(
                    "no capability (net.ipv4.ping_group_range {} covers the group)",
                    p.range
                )
            }
        ),
    );
    step(
        w,
        format!(
            "verify as {u} before starting: the binary runs, `status` shows collector {} \
             (collector.key unchanged), buffer count and SHA-256 unchanged",
            p.collector_id
        ),
    );
    step(
        w,
        format!("start the collector and verify it runs as {u} and stays up"),
    );
    let _ = writeln!(
        w,
        "On any failure: the owners, modes and the unit are restored and the collector is \
         started as {} again.",
        p.old.user
    );
}

/// Runs the migration, reading the answer from `input` and printing to `out`.
pub fn migrate(
    a: &MigrateArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    if !rustix::process::geteuid().is_root() {
        return Err(MigrateError::NotRoot);
    }
    let layout = Layout::new(a.prefix.as_deref(), a.state_dir.as_deref());
    let mgr = service::manager(a.service_manager, &layout);
    let p = plan(a, mgr.as_ref())?;
    let running = mgr
        .main_pid()
        .map_err(|e| MigrateError::Refused(e.to_string()))?
        .map(|pid| (pid, service::process_euid(pid)));
    print_plan(out, &p, mgr.as_ref(), running);
    if a.dry_run {
        let _ = writeln!(out, "Dry run: nothing changed.");
        return Ok(());
    }
    if !a.yes {
        let _ = write!(out, "Proceed? [y/N] ");
        let _ = out.flush();
        let mut answer = String::new();
        let _ = input.read_line(&mut answer);
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            let _ = writeln!(out, "Aborted: nothing changed.");
            return Err(MigrateError::Declined);
        }
    }
    let mut p = p;
    if p.create_user {
        let (uid, gid, _) = install::ensure_user(&p.new.user, &p.state_dir, false)
            .map_err(|e| MigrateError::Refused(e.to_string()))?;
        p.uid = uid;
        p.gid = gid;
        p.new.group = service::group_name(gid);
        p.new.net_raw = !service::ping_range_covers(&p.range, gid);
        p.new_text = mgr.render(&p.new);
        let _ = writeln!(
            out,
            "[ok] created user {} (uid {uid}, gid {gid})",
            p.new.user
        );
    }
    let mut run = Run {
        mgr: mgr.as_ref(),
        out,
        touched: Vec::new(),
        unit_written: false,
    };
    let was_running = running.is_some();
    match run.execute(&p) {
        Ok(()) => Ok(()),
        Err((step, cause)) => {
            let _ = writeln!(run.out, "[FAILED] {step}: {cause}");
            let _ = writeln!(run.out, "Rolling back…");
            let problems = run.rollback(&p, was_running);
            if problems.is_empty() {
                Err(MigrateError::RolledBack { step, cause })
            } else {
                Err(MigrateError::RollbackFailed {
                    step,
                    cause,
                    problems,
                })
            }
        }
    }
}

struct Run<'a> {
    mgr: &'a dyn ServiceManager,
    out: &'a mut dyn Write,
    touched: Vec<Owned>,
    unit_written: bool,
}

type StepResult<T> = Result<T, (String, String)>;

fn fail<T>(step: &str, cause: impl std::fmt::Display) -> StepResult<T> {
    Err((step.to_string(), cause.to_string()))
}

impl Run<'_> {
    fn ok(&mut self, text: String) {
        let _ = writeln!(self.out, "[ok] {text}");
        let _ = self.out.flush();
    }

    fn execute(&mut self, p: &Plan) -> StepResult<()> {
        const STOP: &str = "stop";
        if let Err(e) = self.mgr.stop() {
            return fail(STOP, e);
        }
        self.ok("collector stopped".into());

        const SUM: &str = "checksum the buffer";
        let before = buffer_sum(&p.state_dir).or_else(|e| fail(SUM, e))?;
        self.ok(format!(
            "buffer before: {} batches, sha256 {}",
            before.batches, before.sha256
        ));

        const OWN: &str = "re-own";
        for (root, config) in &p.trees {
            let mut entries = Vec::new();
            walk(root, &p.allowed, &mut entries).or_else(|e| fail(OWN, e))?;
            let mut n = 0;
            for e in entries {
                if e.path == self.mgr.unit_path() {
                    continue; // the unit stays root's; it is rewritten below
                }
                let (uid, gid, mode) = if *config {
                    let m = if e.dir {
                        0o750
                    } else {
                        (e.mode & 0o700) | 0o040
                    };
                    (0, p.gid, (!e.symlink).then_some(m))
                } else if e.path == *root && e.dir {
                    let m = if p.state_dir == *root { 0o700 } else { 0o750 };
                    (p.uid, p.gid, Some(m))
                } else {
                    (p.uid, p.gid, None)
                };
                self.touched.push(e.clone());
                set(&e.path, uid, gid, mode).or_else(|err| fail(OWN, err))?;
                n += 1;
            }
            self.ok(format!(
                "re-owned {} ({n} entries) to {}:{}",
                root.display(),
                if *config { "root" } else { p.new.user.as_str() },
                p.new.group
            ));
        }

        const UNIT: &str = "rewrite the unit";
        self.unit_written = true;
        if let Err(e) = self
            .mgr
            .write_unit(&p.new_text)
            .and_then(|()| self.mgr.daemon_reload())
        {
            return fail(UNIT, e);
        }
        self.ok(format!(
            "{} now runs {} as {}:{}{}",
            self.mgr.unit_path().display(),
            p.new.exec.join(" "),
            p.new.user,
            p.new.group,
            if p.new.net_raw {
                " with CAP_NET_RAW only"
            } else {
                " with no capability"
            }
        ));

        const VERIFY: &str = "verify as the new user";
        let bin = p.new.exec.first().cloned().unwrap_or_default();
        let as_user = |args: &[&str]| {
            let mut exec = vec![bin.clone()];
            exec.extend(args.iter().map(|s| s.to_string()));
            Direct::wrap(&p.new.user, &p.new.group, false, &exec)
                .env_clear()
                .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
                .stdin(std::process::Stdio::null())
                .output()
        };
        let run_out = |o: std::io::Result<std::process::Output>| match o {
            Ok(o) if o.status.success() => Ok(o.stdout),
            Ok(o) => Err(format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(e.to_string()),
        };
        run_out(as_user(&["--version"])).or_else(|e| {
            fail(
                VERIFY,
                format!("the binary does not run as {}: {e}", p.new.user),
            )
        })?;
        let state = p.state_dir.display().to_string();
        let status = run_out(as_user(&["status", "--state-dir", &state]))
            .or_else(|e| fail(VERIFY, format!("`status` as {} failed: {e}", p.new.user)))?;
        let v: serde_json::Value = serde_json::from_slice(&status)
            .or_else(|e| fail(VERIFY, format!("`status` printed no JSON: {e}")))?;
        if v["registered"] != true || v["collectorId"].as_i64() != Some(p.collector_id) {
            return fail(
                VERIFY,
                format!(
                    "`status` as {} shows collector {} (registered {}), expected {}",
                    p.new.user, v["collectorId"], v["registered"], p.collector_id
                ),
            );
        }
        let key = sha_file(&p.state_dir.join(KEY_FILE)).or_else(|e| fail(VERIFY, e))?;
        if key != p.key_sha {
            return fail(VERIFY, "collector.key changed");
        }
        if v["buffer"]["batches"].as_u64() != Some(before.batches as u64) {
            return fail(
                VERIFY,
                format!(
                    "`status` as {} sees {} batches, expected {}",
                    p.new.user, v["buffer"]["batches"], before.batches
                ),
            );
        }
        let after = buffer_sum(&p.state_dir).or_else(|e| fail(VERIFY, e))?;
        if after != before {
            return fail(
                VERIFY,
                format!(
                    "buffer changed: {} batches sha256 {} → {} batches sha256 {}",
                    before.batches, before.sha256, after.batches, after.sha256
                ),
            );
        }
        self.ok(format!(
            "as {}: collector {} (collector.key unchanged), buffer: {} batches, sha256 {}, unchanged",
            p.new.user, p.collector_id, after.batches, after.sha256
        ));

        const START: &str = "start";
        if let Err(e) = self.mgr.start() {
            return fail(START, e);
        }
        let pid = wait_running_as(self.mgr, p.uid, START_WAIT).or_else(|e| fail(START, e))?;
        std::thread::sleep(SETTLE);
        match self.mgr.main_pid() {
            Ok(Some(now)) if service::process_euid(now) == Some(p.uid) => {}
            other => {
                return fail(
                    START,
                    format!("the collector did not stay up as uid {} ({other:?})", p.uid),
                )
            }
        }
        self.ok(format!(
            "collector {} runs as {} (uid {}, pid {pid})",
            p.collector_id, p.new.user, p.uid
        ));
        let _ = writeln!(self.out, "Migrated.");
        Ok(())
    }

    fn rollback(&mut self, p: &Plan, was_running: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.mgr.stop() {
            problems.push(format!("stop: {e}"));
        }
        if self.unit_written {
            match self
                .mgr
                .write_unit(&p.old_text)
                .and_then(|()| self.mgr.daemon_reload())
            {
                Ok(()) => self.ok(format!("{} restored", self.mgr.unit_path().display())),
                Err(e) => problems.push(format!("restore the unit: {e}")),
            }
        }
        let n = self.touched.len();
        for e in self.touched.iter().rev() {
            if fs::symlink_metadata(&e.path).is_err() {
                continue;
            }
            if let Err(err) = set(&e.path, e.uid, e.gid, (!e.symlink).then_some(e.mode)) {
                problems.push(err);
            }
        }
        self.ok(format!("owners and modes of {n} entries restored"));
        if was_running {
            let old_uid = if p.old.user == "root" {
                Some(0)
            } else {
                service::lookup_user(&p.old.user).map(|(u, _)| u)
            };
            match self.mgr.start() {
                Err(e) => problems.push(format!("start as {}: {e}", p.old.user)),
                Ok(()) => match old_uid.map(|u| wait_running_as(self.mgr, u, START_WAIT)) {
                    Some(Ok(pid)) => self.ok(format!(
                        "collector runs as {} again (pid {pid})",
                        p.old.user
                    )),
                    Some(Err(e)) => problems.push(e),
                    None => problems.push(format!("unknown user {}", p.old.user)),
                },
            }
        }
        problems
    }
}

/// Waits until the service's process runs with effective uid `uid`; returns its pid.
fn wait_running_as(mgr: &dyn ServiceManager, uid: u32, timeout: Duration) -> Result<u32, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match mgr.main_pid() {
            Ok(Some(pid)) => {
                let u = service::process_euid(pid);
                if u == Some(uid) {
                    return Ok(pid);
                }
                format!("pid {pid} runs as uid {u:?}")
            }
            Ok(None) => "not running".to_string(),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!(
                "the collector is not running as uid {uid} after {}s: {}",
                timeout.as_secs(),
                last
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The distinct owners of the entries under `root` (for tests and diagnostics).
pub fn owners(root: &Path) -> BTreeSet<(u32, u32)> {
    let mut v = Vec::new();
    let _ = walk(root, &[PathBuf::from("/")], &mut v);
    v.into_iter().map(|e| (e.uid, e.gid)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn walk_refuses_links_outside_and_hard_links() {
        let d = std::env::temp_dir().join(format!("pc-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("state/buffer")).unwrap();
        fs::write(d.join("state/buffer/a"), b"x").unwrap();
        std::os::unix::fs::symlink("buffer/a", d.join("state/inside")).unwrap();
        let allowed = vec![fs::canonicalize(d.join("state")).unwrap()];
        let mut v = Vec::new();
        walk(&d.join("state"), &allowed, &mut v).unwrap();
        assert_eq!(v.len(), 4);
        assert!(v.iter().any(|e| e.symlink));
        std::os::unix::fs::symlink("/etc/passwd", d.join("state/evil")).unwrap();
        let err = walk(&d.join("state"), &allowed, &mut Vec::new()).unwrap_err();
        assert!(err.contains("outside"), "{err}");
        fs::remove_file(d.join("state/evil")).unwrap();
        std::os::unix::fs::symlink("../../x/../..", d.join("state/up")).unwrap();
        assert!(walk(&d.join("state"), &allowed, &mut Vec::new()).is_err());
        fs::remove_file(d.join("state/up")).unwrap();
        fs::hard_link(d.join("state/buffer/a"), d.join("hl")).unwrap();
        let err = walk(&d.join("state"), &allowed, &mut Vec::new()).unwrap_err();
        assert!(err.contains("hard links"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn normalises() {
        assert_eq!(
            normalise(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalise(Path::new("/../..")), PathBuf::from("/"));
    }

    #[test]
    fn empty_buffer_sum() {
        let d = std::env::temp_dir().join(format!("pc-sum-{}", std::process::id()));
        let s = buffer_sum(&d).unwrap();
        assert_eq!(s.batches, 0);
        assert_eq!(s.sha256, hex::encode(Sha256::digest(b"")));
    }
}
