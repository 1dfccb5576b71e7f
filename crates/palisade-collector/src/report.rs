//! The report the collector sends at registration and with every heartbeat
//! (`docs/collector-protocol.md`): host, platform, build, and the privilege report read from
//! `/proc/self/status`, `/etc/passwd`, `/etc/group` and a probe of `/etc/shadow`.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::privilege::{self, ProcStatus};

/// The report (`report` in register and heartbeat requests).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Host name.
    pub hostname: String,
    /// `Linux`.
    pub platform: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// The collector's version.
    pub build: String,
    /// Runs as root or with capabilities beyond `cap_net_raw` (only possible with
    /// `--allow-root`): non-compliant.
    pub is_admin_account: bool,
    /// The privilege report.
    pub privilege: Privilege,
    /// When the process started, epoch ms.
    pub started_on: i64,
    /// Batches in the on-disk buffer, not yet acknowledged by the portal.
    pub buffered_batches: u64,
    /// Batches dropped since the state directory was created (buffer bounds, corruption,
    /// batches the portal refused as malformed).
    pub dropped_batches: u64,
}

/// The Linux privilege report (`privilege`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Privilege {
    /// Effective user name (or the uid when it has no name).
    pub user: String,
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// Group names: the effective group, then the supplementary groups.
    pub groups: Vec<String>,
    /// Capability names.
    pub capabilities: Capabilities,
    /// Whether `no_new_privs` is set (systemd `NoNewPrivileges=yes`).
    pub no_new_privs: bool,
    /// Whether `/etc/shadow` opens for reading (root, `cap_dac_*`, or bad permissions).
    pub can_read_shadow: bool,
    /// Who owns the binary and the state directory.
    pub install_owner: InstallOwner,
    /// Same as `isAdminAccount`.
    pub elevated: bool,
    /// Why the process counts as administrative (empty when compliant).
    pub non_compliance: Vec<String>,
    /// Whether `--allow-root` was given.
    pub allow_root: bool,
    /// The ICMP socket the `ping` method gets: `datagram` (`net.ipv4.ping_group_range`),
    /// `raw` (`cap_net_raw`), `denied` (neither) or `unavailable`.
    pub icmp: String,
}

/// Effective, permitted and ambient capabilities, by name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capabilities {
    /// Effective.
    pub effective: Vec<String>,
    /// Permitted.
    pub permitted: Vec<String>,
    /// Ambient (inherited across exec, e.g. systemd `AmbientCapabilities=`).
    pub ambient: Vec<String>,
}

/// Owner of the installed files.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallOwner {
    /// The running binary.
    pub binary: Option<Owner>,
    /// The state directory (identity and buffer).
    pub state_dir: Option<Owner>,
}

/// A file's owner.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    /// User name (or uid).
    pub user: String,
    /// Uid.
    pub uid: u32,
    /// Group name (or gid).
    pub group: String,
    /// Gid.
    pub gid: u32,
    /// Permission bits, octal (`0700`).
    pub mode: String,
}

/// The current process's status; an unreadable `/proc/self/status` reads as root with
/// every capability, so that it is never mistaken for a safe process.
pub fn proc_status() -> ProcStatus {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(text) => ProcStatus::parse(&text),
        Err(_) => ProcStatus {
            cap_eff: u64::MAX,
            cap_prm: u64::MAX,
            ..ProcStatus::default()
        },
    }
}

/// Builds the report. `state_dir` is the collector's state directory.
pub fn gather(
    state_dir: &Path,
    allow_root: bool,
    started_on: i64,
    buffered: u64,
    dropped: u64,
) -> Report {
    let status = proc_status();
    let assessment = privilege::assess(status.euid(), status.cap_eff);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let user_name = |uid: u32| name_of(&passwd, uid).unwrap_or_else(|| uid.to_string());
    let group_name = |gid: u32| name_of(&group, gid).unwrap_or_else(|| gid.to_string());
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for g in std::iter::once(status.egid()).chain(status.groups.iter().copied()) {
        if seen.insert(g) {
            groups.push(group_name(g));
        }
    }
    let owner = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| Owner {
            user: user_name(m.uid()),
            uid: m.uid(),
            group: group_name(m.gid()),
            gid: m.gid(),
            mode: format!("{:04o}", m.mode() & 0o7777),
        })
    };
    let binary = std::env::current_exe().ok().and_then(|p| owner(&p));
    Report {
        hostname: hostname(),
        platform: "Linux".into(),
        arch: std::env::consts::ARCH.into(),
        build: env!("CARGO_PKG_VERSION").into(),
        is_admin_account: assessment.is_admin,
        privilege: Privilege {
            user: user_name(status.euid()),
            uid: status.euid(),
            gid: status.egid(),
            groups,
            capabilities: Capabilities {
                effective: privilege::capability_names(status.cap_eff),
                permitted: privilege::capability_names(status.cap_prm),
                ambient: privilege::capability_names(status.cap_amb),
            },
            no_new_privs: status.no_new_privs,
            can_read_shadow: std::fs::File::open("/etc/shadow").is_ok(),
            install_owner: InstallOwner {
                binary,
                state_dir: owner(state_dir),
            },
            elevated: assessment.is_admin,
            non_compliance: assessment.reasons,
            allow_root,
            icmp: crate::methods::ping::icmp_mode().into(),
        },
        started_on,
        buffered_batches: buffered,
        dropped_batches: dropped,
    }
}

/// The host name (`/proc/sys/kernel/hostname`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The name of the entry with this id in an `/etc/passwd` or `/etc/group` text.
pub fn name_of(db: &str, id: u32) -> Option<String> {
    db.lines().find_map(|line| {
        let mut parts = line.split(':');
        let name = parts.next()?;
        let _password = parts.next()?;
        let found: u32 = parts.next()?.parse().ok()?;
        (found == id && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_from_databases() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\npalisade:x:990:990::/var/lib:/usr/sbin/nologin\n";
        assert_eq!(name_of(passwd, 990).as_deref(), Some("palisade"));
        assert_eq!(name_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of(passwd, 5), None);
        let group = "adm:x:4:syslog\npalisade:x:990:\n";
        assert_eq!(name_of(group, 4).as_deref(), Some("adm"));
    }

    #[test]
    fn report_serialises_protocol_fields() {
        let dir = std::env::temp_dir();
        let r = gather(&dir, true, 1_700_000_000_000, 3, 1);
        let v = serde_json::to_value(&r).unwrap();
        for k in [
            "hostname",
            "platform",
            "arch",
            "build",
            "isAdminAccount",
            "privilege",
            "startedOn",
            "bufferedBatches",
            "droppedBatches",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        let p = &v["privilege"];
        for k in [
            "user",
            "uid",
            "gid",
            "groups",
            "capabilities",
            "noNewPrivs",
            "canReadShadow",
            "installOwner",
            "icmp",
        ] {
            assert!(p.get(k).is_some(), "privilege.{k} missing in {p}");
        }
        assert_eq!(v["platform"], "Linux");
        assert!(p["capabilities"]["effective"].is_array());
        assert!(p["installOwner"]["stateDir"]["mode"].is_string());
        assert!(
            ["datagram", "raw", "denied", "unavailable"].contains(&p["icmp"].as_str().unwrap()),
            "{p}"
        );
    }
}
