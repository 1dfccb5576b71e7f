//! The `ssh` method on the collector's own host: the parser's own source is read directly
//! and no command ever runs (a datasource must not be a way to run commands on collector
//! hosts). `proc_stat` reads `/proc/stat`, `meminfo` `/proc/meminfo`, `net_dev`
//! `/proc/net/dev`, and `df` calls `statvfs` on each local filesystem of
//! `/proc/self/mounts`, as `df -P -k -l -x tmpfs -x devtmpfs -x squashfs -x overlay` lists
//! them.

use std::collections::{BTreeMap, HashSet};

use palisade_core::datasource::{Collector, SshParser};

use super::{map_fields, BoxFuture, Method, Task};
use crate::parse::{self, Fields, Mount};
use crate::process::{Outcome, RawInstance};

/// Filesystem types `df -l -x tmpfs -x devtmpfs -x squashfs -x overlay` leaves out:
/// the excluded ones and network filesystems.
const SKIPPED_FS: &[&str] = &[
    "tmpfs",
    "devtmpfs",
    "squashfs",
    "overlay",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "afs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "sshfs",
    "davfs",
    "lustre",
    "gpfs",
    "autofs",
];

/// The local reader.
#[derive(Debug, Clone, Copy)]
pub struct Local;

impl Method for Local {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        let ds = task.datasource.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || read(&ds.collector)).await {
                Ok(o) => o,
                Err(e) => Outcome::error(format!("local read failed: {e}")),
            }
        })
    }
}

fn read_file(path: &str) -> Result<String, Outcome> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            Outcome::Denied {
                message: format!("cannot read {path}: {e}"),
                lacks: format!("read access to {path}"),
            }
        } else {
            Outcome::error(format!("cannot read {path}: {e}"))
        }
    })
}

fn single(values: BTreeMap<String, f64>) -> Outcome {
    Outcome::Instances(vec![RawInstance {
        values,
        ..RawInstance::default()
    }])
}

/// Reads the data of an `ssh` collector's parser on this host.
pub fn read(collector: &Collector) -> Outcome {
    let Collector::Ssh(c) = collector else {
        return Outcome::error("the local reader only serves the ssh method");
    };
    let result =
        match &c.parser {
            SshParser::ProcStat {} => read_file("/proc/stat")
                .map(|t| single(map_fields(&c.fields, &parse::proc_stat(&t)))),
            SshParser::Meminfo {} => read_file("/proc/meminfo")
                .map(|t| single(map_fields(&c.fields, &parse::meminfo(&t)))),
            SshParser::NetDev {} => read_file("/proc/net/dev").map(|t| {
                Outcome::Instances(
                    parse::net_dev(&t)
                        .into_iter()
                        .map(|(iface, f)| RawInstance {
                            name: Some(iface.clone()),
                            display_name: Some(iface),
                            properties: BTreeMap::new(),
                            values: map_fields(&c.fields, &f),
                        })
                        .collect(),
                )
            }),
            SshParser::Df {} => read_file("/proc/self/mounts").map(|t| {
                Outcome::Instances(
                    local_filesystems(&parse::mounts(&t))
                        .into_iter()
                        .map(|(m, f)| {
                            let mut properties = BTreeMap::new();
                            properties.insert("device".into(), m.source.clone());
                            properties.insert("fstype".into(), m.fstype.clone());
                            RawInstance {
                                name: Some(m.target.clone()),
                                display_name: Some(m.target),
                                properties,
                                values: map_fields(&c.fields, &f),
                            }
                        })
                        .collect(),
                )
            }),
            SshParser::KeyValue { .. } | SshParser::Regex { .. } => Err(Outcome::error(
                "this parser has no local source: it needs target `ssh`",
            )),
        };
    result.unwrap_or_else(|o| o)
}

/// The mounts `df -l` would show (minus the excluded types), each device once, with its
/// `df` fields from `statvfs`.
pub fn local_filesystems(mounts: &[Mount]) -> Vec<(Mount, Fields)> {
    let mut seen_sources = HashSet::new();
    let mut seen_targets = HashSet::new();
    let mut out = Vec::new();
    for m in mounts {
        if SKIPPED_FS.contains(&m.fstype.as_str()) || m.fstype.starts_with("fuse.") {
            continue;
        }
        let Ok(st) = rustix::fs::statvfs(m.target.as_str()) else {
            continue;
        };
        // Pseudo filesystems (proc, sysfs, cgroup2, …) have no blocks: df hides them.
        if st.f_blocks == 0 {
            continue;
        }
        // A device mounted twice (bind mounts) counts once; so does a mount point
        // mounted over.
        if m.source.starts_with('/') && !seen_sources.insert(m.source.clone()) {
            continue;
        }
        if !seen_targets.insert(m.target.clone()) {
            continue;
        }
        out.push((
            m.clone(),
            df_fields(st.f_frsize, st.f_blocks, st.f_bfree, st.f_bavail),
        ));
    }
    out
}

/// `df -P -k` fields from `statvfs` numbers: bytes, and `used_percent` rounded up as df
/// rounds its Capacity column.
pub fn df_fields(frsize: u64, blocks: u64, bfree: u64, bavail: u64) -> Fields {
    let unit = frsize as f64;
    let total = blocks as f64 * unit;
    let used = blocks.saturating_sub(bfree) as f64 * unit;
    let avail = bavail as f64 * unit;
    let mut f = Fields::new();
    f.insert("total".into(), total);
    f.insert("used".into(), used);
    f.insert("available".into(), avail);
    if used + avail > 0.0 {
        f.insert(
            "used_percent".into(),
            (100.0 * used / (used + avail)).ceil(),
        );
    }
    f
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use palisade_core::datasource::builtins;

    fn collector(name: &str) -> Collector {
        builtins()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap()
            .collector
    }

    #[test]
    fn reads_this_host() {
        let Outcome::Instances(cpu) = read(&collector("HostCPU")) else {
            panic!("HostCPU failed")
        };
        assert!(cpu[0].values["Total"] > 0.0);
        assert!(cpu[0].values.contains_key("ProcsRunning"));
        let Outcome::Instances(mem) = read(&collector("HostMemory")) else {
            panic!("HostMemory failed")
        };
        assert!(mem[0].values["MemTotal"] > 0.0);
        let Outcome::Instances(net) = read(&collector("HostNetwork")) else {
            panic!("HostNetwork failed")
        };
        assert!(net.iter().any(|i| i.name.as_deref() == Some("lo")));
        // Filesystems depend on the machine (an overlay root lists none): it must not fail.
        assert!(matches!(
            read(&collector("HostDisk")),
            Outcome::Instances(_)
        ));
    }

    #[test]
    fn df_numbers() {
        let f = df_fields(4096, 1000, 400, 300);
        assert_eq!(f["total"], 4096.0 * 1000.0);
        assert_eq!(f["used"], 4096.0 * 600.0);
        assert_eq!(f["available"], 4096.0 * 300.0);
        assert_eq!(f["used_percent"], 67.0);
    }

    #[test]
    fn skips_pseudo_and_excluded() {
        let m = parse::mounts("proc /proc proc rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n");
        assert!(local_filesystems(&m).is_empty());
    }
}
