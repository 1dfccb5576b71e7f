//! Parsers of host data (the `ssh` method's parsers): `/proc/stat`, `/proc/meminfo`,
//! `/proc/net/dev`, `df -P -k` output, `/proc/self/mounts`, and `key=value` lines (scripts
//! and the `key_value` parser). Pure functions over text, shared by the local reader and
//! the SSH method.

use std::collections::BTreeMap;

/// Fields by name.
pub type Fields = BTreeMap<String, f64>;

/// `/proc/stat`: the aggregate `cpu` line (`user` … `guest_nice`, in ticks, and `total`,
/// the sum of the first eight), and `ctxt`, `intr` (the total), `processes`,
/// `procs_running`, `procs_blocked`.
pub fn proc_stat(text: &str) -> Fields {
    const CPU: [&str; 10] = [
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
        "guest",
        "guest_nice",
    ];
    let mut out = Fields::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some(key) = parts.next() else { continue };
        match key {
            "cpu" => {
                let nums: Vec<f64> = parts.filter_map(|p| p.parse().ok()).collect();
                for (name, v) in CPU.iter().zip(&nums) {
                    out.insert((*name).to_string(), *v);
                }
                out.insert("total".into(), nums.iter().take(8).sum());
            }
            "ctxt" | "intr" | "processes" | "procs_running" | "procs_blocked" => {
                if let Some(v) = parts.next().and_then(|p| p.parse().ok()) {
                    out.insert(key.to_string(), v);
                }
            }
            _ => {}
        }
    }
    out
}

/// `/proc/meminfo`: every key, in bytes when the line says `kB`.
pub fn meminfo(text: &str) -> Fields {
    let mut out = Fields::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(v) = parts.next().and_then(|p| p.parse::<f64>().ok()) else {
            continue;
        };
        let v = if parts.next() == Some("kB") {
            v * 1024.0
        } else {
            v
        };
        out.insert(key.trim().to_string(), v);
    }
    out
}

/// `/proc/net/dev`: one entry per interface, with the fields of
/// [`palisade_core::datasource::NET_DEV_FIELDS`].
pub fn net_dev(text: &str) -> Vec<(String, Fields)> {
    let names = palisade_core::datasource::NET_DEV_FIELDS;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        let iface = iface.trim();
        let nums: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if iface.is_empty() || nums.len() < names.len() {
            continue;
        }
        let fields = names
            .iter()
            .zip(&nums)
            .map(|(n, v)| ((*n).to_string(), *v))
            .collect();
        out.push((iface.to_string(), fields));
    }
    out
}

/// `df -P -k` output: one entry per filesystem, named by its mount point, with `total`,
/// `used`, `available` (bytes) and `used_percent` (the Capacity column).
pub fn df_posix(text: &str) -> Vec<(String, Fields)> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 6 {
            continue;
        }
        // The mount point may contain spaces: it is everything after the fifth column.
        let mount = parts[5..].join(" ");
        let num = |i: usize| parts[i].parse::<f64>().ok();
        let (Some(total), Some(used), Some(avail)) = (num(1), num(2), num(3)) else {
            continue;
        };
        let mut f = Fields::new();
        f.insert("total".into(), total * 1024.0);
        f.insert("used".into(), used * 1024.0);
        f.insert("available".into(), avail * 1024.0);
        if let Some(p) = parts[4].strip_suffix('%').and_then(|p| p.parse().ok()) {
            f.insert("used_percent".into(), p);
        }
        out.push((mount, f));
    }
    out
}

/// A line of `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The device or source.
    pub source: String,
    /// The mount point.
    pub target: String,
    /// The filesystem type.
    pub fstype: String,
}

/// `/proc/self/mounts` (octal escapes such as `\040` decoded).
pub fn mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut p = line.split_whitespace();
            Some(Mount {
                source: unescape(p.next()?),
                target: unescape(p.next()?),
                fstype: p.next()?.to_string(),
            })
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |c: u8| u16::from(c - b'0');
            let v = digit(b[i + 1]) * 64 + digit(b[i + 2]) * 8 + digit(b[i + 3]);
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key<sep>value` lines. Without instances: `(None, fields)` once. With instances the key
/// is `instance.key` (the instance is what precedes the last `.`), one entry per instance
/// in order of appearance. Values that are not numbers are skipped.
pub fn key_value(text: &str, sep: &str, multi: bool) -> Vec<(Option<String>, Fields)> {
    let mut single = Fields::new();
    let mut multi_out: Vec<(Option<String>, Fields)> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(sep) else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        let Ok(value) = v.parse::<f64>() else {
            continue;
        };
        if multi {
            let Some((inst, key)) = k.rsplit_once('.') else {
                continue;
            };
            if inst.is_empty() || key.is_empty() {
                continue;
            }
            match multi_out
                .iter_mut()
                .find(|(i, _)| i.as_deref() == Some(inst))
            {
                Some((_, f)) => {
                    f.insert(key.to_string(), value);
                }
                None => {
                    let mut f = Fields::new();
                    f.insert(key.to_string(), value);
                    multi_out.push((Some(inst.to_string()), f));
                }
            }
        } else if !k.is_empty() {
            single.insert(k.to_string(), value);
        }
    }
    if multi {
        multi_out
    } else {
        vec![(None, single)]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields() {
        let t = "cpu  10 1 5 100 2 0 1 3 0 0\ncpu0 5 0 2 50 1 0 0 1 0 0\nintr 999 1 2\nctxt 4242\nbtime 1\nprocesses 77\nprocs_running 2\nprocs_blocked 0\n";
        let f = proc_stat(t);
        assert_eq!(f["user"], 10.0);
        assert_eq!(f["steal"], 3.0);
        assert_eq!(f["total"], 122.0);
        assert_eq!(f["ctxt"], 4242.0);
        assert_eq!(f["intr"], 999.0);
        assert_eq!(f["procs_running"], 2.0);
        for k in palisade_core::datasource::PROC_STAT_FIELDS {
            assert!(f.contains_key(*k), "{k}");
        }
    }

    #[test]
    fn meminfo_in_bytes() {
        let f = meminfo("MemTotal:       16384 kB\nHugePages_Total:       0\nbad line\n");
        assert_eq!(f["MemTotal"], 16384.0 * 1024.0);
        assert_eq!(f["HugePages_Total"], 0.0);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn net_dev_interfaces() {
        let t = "Inter-|   Receive |  Transmit\n face |bytes packets\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0:5000 40 1 2 0 0 0 3 7000 50 0 1 0 0 0 0\n";
        let v = net_dev(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, "eth0");
        assert_eq!(v[1].1["rx_bytes"], 5000.0);
        assert_eq!(v[1].1["rx_multicast"], 3.0);
        assert_eq!(v[1].1["tx_bytes"], 7000.0);
        assert_eq!(v[1].1["tx_drop"], 1.0);
    }

    #[test]
    fn df_output() {
        let t = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/sda1        1000      400       500      45% /\n/dev/sdb1 10 5 5 50% /mnt/my disk\n";
        let v = df_posix(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "/");
        assert_eq!(v[0].1["used"], 400.0 * 1024.0);
        assert_eq!(v[0].1["used_percent"], 45.0);
        assert_eq!(v[1].0, "/mnt/my disk");
    }

    #[test]
    fn mounts_unescape() {
        let m = mounts("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n");
        assert_eq!(m[1].target, "/mnt/my disk");
        assert_eq!(m[1].fstype, "xfs");
        assert_eq!(unescape("a\\1"), "a\\1");
    }

    #[test]
    fn key_values() {
        let single = key_value("age_seconds=12\nok = 1\nname=text\n# x\n", "=", false);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].1["age_seconds"], 12.0);
        assert_eq!(single[0].1["ok"], 1.0);
        assert!(!single[0].1.contains_key("name"));
        let multi = key_value("db.1.size=5\ndb.1.ok=1\ndb.2.size=7\nnodot=3\n", "=", true);
        assert_eq!(multi.len(), 2);
        assert_eq!(multi[0].0.as_deref(), Some("db.1"));
        assert_eq!(multi[0].1["ok"], 1.0);
        assert_eq!(multi[1].1["size"], 7.0);
    }
}
