//! `palisade-collector install`: the service user, the directories with their owners and
//! modes, the binary, a default config file and the hardened unit (or the direct-run spec).
//!
//! | Path | Owner | Mode |
//! |---|---|---|
//! | binary (`<prefix>/usr/local/bin/palisade-collector`) | root:root | 0755 |
//! | config directory (`<prefix>/etc/palisade-collector`) | root:*group* | 0750 |
//! | `collector.toml` | root:*group* | 0640 |
//! | state directory (`<prefix>/var/lib/palisade-collector`) | *user*:*group* | 0700 |
//! | log directory (`<prefix>/var/log/palisade-collector`) | *user*:*group* | 0750 |
//! | unit / direct spec | root:root | 0644 |
//!
//! `--packaged` is what the Debian package's postinst runs (`crates/palisade-collector/debian/`):
//! the binary is the package's `<prefix>/usr/bin/palisade-collector` (not copied), the unit
//! is `<prefix>/lib/systemd/system/palisade-collector.service`, and no `systemctl` is run
//! (postinst does that when systemd is running).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::service::{self, Kind, Layout, ServiceError, UnitParams, SERVICE_NAME};

/// Exit code: installed (or dry run).
pub const EXIT_OK: u8 = 0;
/// Exit code: refused (not root, bad arguments).
pub const EXIT_REFUSED: u8 = crate::EXIT_CONFIG;
/// Exit code: a step failed.
pub const EXIT_FAILED: u8 = 1;

/// `install`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// The service user (created as a system user when missing). `root` writes the legacy,
    /// non-compliant layout (`--allow-root`) that `migrate` converts.
    #[arg(long, default_value = SERVICE_NAME)]
    pub user: String,
    /// Install under this root-like directory instead of `/` (tests, images).
    #[arg(long)]
    pub prefix: Option<PathBuf>,
    /// State directory (default `<prefix>/var/lib/palisade-collector`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Service manager (default: systemd if `/run/systemd/system` exists, else direct).
    #[arg(long, value_enum)]
    pub service_manager: Option<Kind>,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// For the Debian package's postinst: binary in `/usr/bin` (the package's), systemd unit
    /// in `/lib/systemd/system` even without systemd, no `systemctl` call.
    #[arg(long, conflicts_with = "service_manager")]
    pub packaged: bool,
}

/// `layout` as the Debian package lays it out (`--packaged`). Pure.
pub fn packaged_layout(mut layout: Layout) -> Layout {
    layout.binary = layout.prefix.join("usr/bin").join(SERVICE_NAME);
    layout.unit_file = layout
        .prefix
        .join("lib/systemd/system")
        .join(format!("{SERVICE_NAME}.service"));
    layout
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Refused before doing anything.
    #[error("{0}")]
    Refused(String),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What, with the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The service manager or a command failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

fn io(what: &str, p: &Path, source: std::io::Error) -> InstallError {
    InstallError::Io {
        what: format!("{what} {}", p.display()),
        source,
    }
}

/// Creates `name` as a system user with its own group (`useradd --system --user-group
/// --no-create-home --shell /usr/sbin/nologin`) when missing; returns (uid, gid, created).
pub fn ensure_user(
    name: &str,
    home: &Path,
    dry_run: bool,
) -> Result<(u32, u32, bool), InstallError> {
    if let Some((uid, gid)) = service::lookup_user(name) {
        return Ok((uid, gid, false));
    }
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(InstallError::Refused(format!(
            "`{name}` is not a valid user name"
        )));
    }
    if dry_run {
        return Ok((0, 0, true));
    }
    let out = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home"])
        .args(["--shell", "/usr/sbin/nologin", "--home-dir"])
        .arg(home)
        .args(["--comment", "Palisade collector", name])
        .output()
        .map_err(|e| io("cannot run useradd for", Path::new(name), e))?;
    if !out.status.success() {
        return Err(ServiceError::Command {
            command: format!("useradd --system {name}"),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    service::lookup_user(name)
        .map(|(u, g)| (u, g, true))
        .ok_or_else(|| InstallError::Refused(format!("useradd did not create {name}")))
}

/// Creates `dir` (and parents) and sets its owner and mode.
fn own_dir(dir: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), InstallError> {
    fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    set_owner_mode(dir, uid, gid, mode)
}

fn set_owner_mode(p: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), InstallError> {
    let meta = fs::symlink_metadata(p).map_err(|e| io("cannot inspect", p, e))?;
    if meta.file_type().is_symlink() {
        return Err(InstallError::Refused(format!(
            "{} is a symbolic link: refusing to change its owner",
            p.display()
        )));
    }
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).map_err(|e| io("cannot chown", p, e))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| io("cannot chmod", p, e))
}

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "# palisade-collector settings (docs/collector.md). Flags win.\n\
# heartbeat_secs = 30\n# buffer_max_bytes = 268435456\n# buffer_max_age_secs = 604800\n";

/// Installs; prints each step. Returns the exit code.
pub fn main(a: &InstallArgs) -> u8 {
    match install(a) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("palisade-collector install: {e}");
            match e {
                InstallError::Refused(_) => EXIT_REFUSED,
                _ => EXIT_FAILED,
            }
        }
    }
}

fn install(a: &InstallArgs) -> Result<(), InstallError> {
    if !a.dry_run && !rustix::process::geteuid().is_root() {
        return Err(InstallError::Refused(
            "install needs root (it creates a user and root-owned files); try --dry-run".into(),
        ));
    }
    let mut layout = Layout::new(a.prefix.as_deref(), a.state_dir.as_deref());
    if a.packaged {
        layout = packaged_layout(layout);
    }
    for p in [&layout.prefix, &layout.state_dir] {
        if p.to_string_lossy().contains(char::is_whitespace) {
            return Err(InstallError::Refused(format!(
                "{} contains white space, which a unit's ExecStart cannot carry",
                p.display()
            )));
        }
    }
    let kind = if a.packaged {
        Some(Kind::Systemd)
    } else {
        a.service_manager
    };
    let mgr = service::manager(kind, &layout);
    let dry = if a.dry_run { "[dry run] " } else { "" };
    let legacy = a.user == "root";
    let (uid, gid, created) = if legacy {
        (0, 0, false)
    } else {
        ensure_user(&a.user, &layout.state_dir, a.dry_run)?
    };
    let group = if legacy {
        "root".to_string()
    } else if created && a.dry_run {
        a.user.clone()
    } else {
        service::group_name(gid)
    };
    if legacy {
        println!(
            "{dry}WARNING: --user root writes the legacy root layout (runs with --allow-root, \
             reported as isAdminAccount: true, non-compliant); convert it with \
             `palisade-collector migrate --to-user NAME`"
        );
    } else if created && a.dry_run {
        println!(
            "[dry run] would create system user {} and group {group} (no home, shell /usr/sbin/nologin)",
            a.user
        );
    } else if created {
        println!(
            "created system user {} and group {group} (no home, shell /usr/sbin/nologin)",
            a.user
        );
    } else {
        println!("{dry}user {} exists (uid {uid}, gid {gid})", a.user);
    }

    let bin_dir = layout.binary.parent().unwrap_or(Path::new("/"));
    let user = a.user.as_str();
    let mut steps: Vec<(&Path, u32, u32, u32, &str, &str)> = vec![
        (
            &layout.config_dir,
            0,
            gid,
            0o750,
            "config directory",
            "root",
        ),
        (&layout.state_dir, uid, gid, 0o700, "state directory", user),
        (&layout.logs_dir, uid, gid, 0o750, "log directory", user),
    ];
    if !bin_dir.exists() {
        steps.push((bin_dir, 0, 0, 0o755, "binary directory", "root"));
    }
    for (dir, u, g, mode, what, owner) in steps {
        let grp = if owner == "root" && what == "binary directory" {
            "root"
        } else {
            group.as_str()
        };
        println!(
            "{dry}{what} {} owner {owner}:{grp} mode {mode:04o}",
            dir.display()
        );
        if !a.dry_run {
            own_dir(dir, u, g, mode)?;
        }
    }

    let exe = std::env::current_exe().map_err(|e| io("cannot find", Path::new("own binary"), e))?;
    println!(
        "{dry}binary {} (copy of {}) owner root:root mode 0755",
        layout.binary.display(),
        exe.display()
    );
    if !a.dry_run {
        let same = fs::canonicalize(&layout.binary).ok() == fs::canonicalize(&exe).ok();
        if !same {
            let tmp = layout.binary.with_extension("new");
            fs::copy(&exe, &tmp).map_err(|e| io("cannot copy the binary to", &tmp, e))?;
            set_owner_mode(&tmp, 0, 0, 0o755)?;
            fs::rename(&tmp, &layout.binary)
                .map_err(|e| io("cannot install", &layout.binary, e))?;
        } else {
            set_owner_mode(&layout.binary, 0, 0, 0o755)?;
        }
    }
    if layout.config_file.exists() {
        println!(
            "{dry}config file {} kept; owner root:{group} mode 0640",
            layout.config_file.display()
        );
    } else {
        println!(
            "{dry}config file {} (defaults) owner root:{group} mode 0640",
            layout.config_file.display()
        );
        if !a.dry_run {
            service::write_file(&layout.config_file, DEFAULT_CONFIG.as_bytes(), 0o640)?;
        }
    }
    if !a.dry_run {
        set_owner_mode(&layout.config_file, 0, gid, 0o640)?;
    }

    let range = service::ping_group_range();
    let covered = !legacy && service::ping_range_covers(&range, gid);
    let net_raw = !legacy && !covered;
    if !legacy {
        if created && a.dry_run {
            println!(
                "ICMP: the new group's gid is chosen by useradd; net.ipv4.ping_group_range is \
                 ({range}): CAP_NET_RAW only unless the range covers that gid"
            );
        } else if covered {
            println!(
                "ICMP: net.ipv4.ping_group_range ({range}) covers group {group} (gid {gid}): \
                 no capability granted (CapabilityBoundingSet= and AmbientCapabilities= empty)"
            );
        } else {
            println!(
                "ICMP: net.ipv4.ping_group_range ({range}) does not cover group {group} (gid {gid}): \
                 granting CAP_NET_RAW only. To run with no capability at all, set \
                 net.ipv4.ping_group_range = {gid} {gid} in /etc/sysctl.d/ and install again"
            );
        }
    }
    let params = UnitParams {
        user: a.user.clone(),
        group,
        exec: UnitParams::command(
            &layout.binary,
            &layout.config_file,
            &layout.state_dir,
            &a.user,
        ),
        state_dir: layout.state_dir.clone(),
        logs_dir: layout.logs_dir.clone(),
        config_dir: layout.config_dir.clone(),
        net_raw,
    };
    let text = mgr.render(&params);
    println!(
        "{dry}{} unit {} owner root:root mode 0644:",
        kind_name(mgr.kind()),
        mgr.unit_path().display()
    );
    for l in text.lines() {
        println!("    {l}");
    }
    if a.dry_run {
        println!("[dry run] nothing changed");
        return Ok(());
    }
    mgr.write_unit(&text)?;
    if mgr.kind() == Kind::Systemd && layout.is_system() && !a.packaged {
        mgr.daemon_reload()?;
    }
    println!(
        "installed. Next: `runuser -u {} -- {} register --state-dir {} …`, then {}",
        a.user,
        layout.binary.display(),
        layout.state_dir.display(),
        match mgr.kind() {
            Kind::Systemd => format!("`systemctl enable --now {SERVICE_NAME}`"),
            Kind::Direct => "start it with the direct runner".to_string(),
        }
    );
    // Report a state directory registered before installation by root.
    if let Ok(m) = fs::metadata(layout.state_dir.join(crate::portal::KEY_FILE)) {
        if m.uid() != uid {
            println!(
                "note: {} is owned by uid {}: run `palisade-collector migrate --to-user {}`",
                layout.state_dir.join(crate::portal::KEY_FILE).display(),
                m.uid(),
                a.user
            );
        }
    }
    Ok(())
}

/// `systemd` or `direct`.
pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Systemd => "systemd",
        Kind::Direct => "direct",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn packaged_layout_uses_package_paths() {
        let l = packaged_layout(Layout::new(Some(Path::new("/p")), None));
        assert_eq!(l.binary, Path::new("/p/usr/bin/palisade-collector"));
        assert_eq!(
            l.unit_file,
            Path::new("/p/lib/systemd/system/palisade-collector.service")
        );
        assert_eq!(l.state_dir, Path::new("/p/var/lib/palisade-collector"));
        assert_eq!(l.config_dir, Path::new("/p/etc/palisade-collector"));
        let l = packaged_layout(Layout::new(None, None));
        assert!(l.is_system());
        assert_eq!(l.binary, Path::new("/usr/bin/palisade-collector"));
    }
}
