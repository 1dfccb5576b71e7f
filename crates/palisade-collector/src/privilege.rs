//! What the collector's own process may do, and whether it may run at all.
//!
//! Pure logic, no I/O: [`ProcStatus::parse`] reads the text of `/proc/self/status`
//! (`Uid:`, `Gid:`, `Groups:`, `CapPrm:`, `CapEff:`, `CapAmb:`, `NoNewPrivs:`),
//! [`capability_names`] decodes a capability mask, [`assess`] says whether the process holds
//! administrative power, and [`may_run`] applies the rule of the Linux mandate: the collector
//! refuses to run as root (effective uid 0) or with any effective capability beyond
//! `cap_net_raw`, unless the operator passed `--allow-root`, in which case it runs and
//! reports itself as an administrative account (non-compliant).

/// Linux capability names by bit number (`include/uapi/linux/capability.h`).
pub const CAP_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// Bit of `CAP_NET_RAW`, the one capability the collector may hold (raw ICMP sockets when
/// `net.ipv4.ping_group_range` does not cover its group).
pub const CAP_NET_RAW: u32 = 13;

/// The capabilities the collector may hold without being an administrative account.
pub const ALLOWED_CAPS: u64 = 1 << CAP_NET_RAW;

/// The fields of `/proc/self/status` the privilege report needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcStatus {
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved and filesystem gid.
    pub gid: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Permitted capabilities.
    pub cap_prm: u64,
    /// Effective capabilities.
    pub cap_eff: u64,
    /// Ambient capabilities.
    pub cap_amb: u64,
    /// Bounding set.
    pub cap_bnd: u64,
    /// Whether `no_new_privs` is set.
    pub no_new_privs: bool,
}

impl ProcStatus {
    /// Reads the text of `/proc/self/status`. Missing lines leave their default (uid 0,
    /// no capabilities): the caller treats an unreadable status as root, never as safe.
    pub fn parse(text: &str) -> ProcStatus {
        let mut s = ProcStatus::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Uid" => s.uid = ids4(value),
                "Gid" => s.gid = ids4(value),
                "Groups" => {
                    s.groups = value
                        .split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect()
                }
                "CapPrm" => s.cap_prm = hex_mask(value),
                "CapEff" => s.cap_eff = hex_mask(value),
                "CapAmb" => s.cap_amb = hex_mask(value),
                "CapBnd" => s.cap_bnd = hex_mask(value),
                "NoNewPrivs" => s.no_new_privs = value == "1",
                _ => {}
            }
        }
        s
    }

    /// The effective uid.
    pub fn euid(&self) -> u32 {
        self.uid[1]
    }

    /// The effective gid.
    pub fn egid(&self) -> u32 {
        self.gid[1]
    }
}

fn ids4(value: &str) -> [u32; 4] {
    let mut out = [0u32; 4];
    for (slot, part) in out.iter_mut().zip(value.split_whitespace()) {
        *slot = part.parse().unwrap_or(0);
    }
    out
}

/// An unreadable mask counts as every capability: never mistake garbage for "none".
fn hex_mask(value: &str) -> u64 {
    u64::from_str_radix(value, 16).unwrap_or(u64::MAX)
}

/// The names of the capabilities set in `mask`, in bit order (`cap_42` for bits the table
/// does not name yet).
pub fn capability_names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            CAP_NAMES
                .get(bit as usize)
                .map(|n| (*n).to_string())
                .unwrap_or_else(|| format!("cap_{bit}"))
        })
        .collect()
}

/// Whether the process holds administrative power, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Effective uid 0, or effective capabilities beyond [`ALLOWED_CAPS`].
    pub is_admin: bool,
    /// One phrase per reason, for the refusal message and the log.
    pub reasons: Vec<String>,
}

/// Judges a process by its effective uid and effective capabilities.
pub fn assess(euid: u32, cap_eff: u64) -> Assessment {
    let mut reasons = Vec::new();
    if euid == 0 {
        reasons.push("it runs as root (effective uid 0)".to_string());
    }
    let extra = cap_eff & !ALLOWED_CAPS;
    if extra != 0 {
        let names = capability_names(extra);
        let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
        let more = names.len().saturating_sub(shown.len());
        let mut list = shown.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        reasons.push(format!(
            "it holds effective capabilities beyond cap_net_raw: {list}"
        ));
    }
    Assessment {
        is_admin: !reasons.is_empty(),
        reasons,
    }
}

/// Whether `run` may start. `Err` carries the message printed before exiting.
pub fn may_run(a: &Assessment, allow_root: bool) -> Result<(), String> {
    if !a.is_admin || allow_root {
        return Ok(());
    }
    Err(format!(
        "palisade-collector refuses to run because {}. Run it as an unprivileged service \
         user (at most cap_net_raw, for ICMP when net.ipv4.ping_group_range does not cover \
         its group; see docs/collector.md), or pass --allow-root to run anyway: it then \
         reports itself to the portal as an administrative account (isAdminAccount: true, \
         non-compliant).",
        a.reasons.join(" and ")
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ROOT: &str = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t \n\
        CapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n\
        CapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t0\n";
    const SERVICE: &str = "Uid:\t990\t990\t990\t990\nGid:\t991\t991\t991\t991\n\
        Groups:\t4 991 \nCapPrm:\t0000000000002000\nCapEff:\t0000000000002000\n\
        CapAmb:\t0000000000002000\nCapBnd:\t0000000000002000\nNoNewPrivs:\t1\n";

    #[test]
    fn names_table_is_complete() {
        assert_eq!(CAP_NAMES[13], "cap_net_raw");
        assert_eq!(CAP_NAMES[21], "cap_sys_admin");
        assert_eq!(CAP_NAMES[40], "cap_checkpoint_restore");
        assert_eq!(capability_names(1 << 13), vec!["cap_net_raw"]);
        assert_eq!(capability_names(1 << 45), vec!["cap_45"]);
        assert!(capability_names(0).is_empty());
    }

    #[test]
    fn parses_status() {
        let s = ProcStatus::parse(SERVICE);
        assert_eq!(s.euid(), 990);
        assert_eq!(s.egid(), 991);
        assert_eq!(s.groups, vec![4, 991]);
        assert_eq!(s.cap_eff, 0x2000);
        assert_eq!(s.cap_amb, 0x2000);
        assert!(s.no_new_privs);
        let r = ProcStatus::parse(ROOT);
        assert_eq!(r.euid(), 0);
        assert!(r.groups.is_empty());
        assert_eq!(capability_names(r.cap_eff).len(), 40); // bit 24 is clear in that mask
    }

    #[test]
    fn garbage_masks_count_as_everything() {
        let s = ProcStatus::parse("Uid:\t5\t5\t5\t5\nCapEff:\tzz\n");
        assert_eq!(s.cap_eff, u64::MAX);
        assert!(assess(s.euid(), s.cap_eff).is_admin);
    }

    #[test]
    fn service_user_with_net_raw_is_compliant() {
        let s = ProcStatus::parse(SERVICE);
        let a = assess(s.euid(), s.cap_eff);
        assert!(!a.is_admin, "{a:?}");
        assert!(may_run(&a, false).is_ok());
        assert!(assess(1000, 0).reasons.is_empty());
    }

    #[test]
    fn root_is_refused_unless_allowed() {
        let r = ProcStatus::parse(ROOT);
        let a = assess(r.euid(), r.cap_eff);
        assert!(a.is_admin);
        let msg = may_run(&a, false).unwrap_err();
        assert!(msg.contains("root"), "{msg}");
        assert!(msg.contains("--allow-root"), "{msg}");
        assert!(msg.contains("and 33 more"), "{msg}");
        assert!(may_run(&a, true).is_ok());
    }

    #[test]
    fn capabilities_beyond_net_raw_are_administrative() {
        let a = assess(990, (1 << CAP_NET_RAW) | (1 << 21));
        assert!(a.is_admin);
        assert_eq!(a.reasons.len(), 1);
        assert!(a.reasons[0].contains("cap_sys_admin"));
        assert!(!a.reasons[0].contains("cap_net_raw,"));
        // Root without any capability (a user namespace that dropped them all) is still root.
        let b = assess(0, 0);
        assert!(b.is_admin && b.reasons[0].contains("root"));
        assert!(may_run(&b, false).is_err());
    }
}
