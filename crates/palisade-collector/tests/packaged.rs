//! `install --packaged` (what the Debian package's postinst runs): the package's paths, no
//! binary copy, the systemd unit written without systemd, no `systemctl` call. The package
//! itself is built, installed and removed for real by `scripts/test-deb`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};

use common::{collector_bin, temp_dir};

fn install(args: &[&str]) -> Output {
    Command::new(collector_bin())
        .arg("install")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn packaged_dry_run_names_package_paths() {
    let p = temp_dir("pkg-dry");
    let ps = p.to_str().unwrap();
    let out = install(&[
        "--packaged",
        "--dry-run",
        "--user",
        "nobody",
        "--prefix",
        ps,
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&format!(
            "systemd unit {ps}/lib/systemd/system/palisade-collector.service owner root:root"
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "    ExecStart={ps}/usr/bin/palisade-collector --config {ps}/etc/palisade-collector/collector.toml run"
        )),
        "{t}"
    );
    assert!(!t.contains("usr/local/bin"), "{t}");
    assert!(!t.contains("/etc/systemd/system"), "{t}");
    // The package always writes a systemd unit: no other service manager.
    let out = install(&["--packaged", "--service-manager", "direct", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    std::fs::remove_dir_all(&p).unwrap();
}

#[test]
fn packaged_install_under_prefix() {
    common::require_root("the packaged install test");
    let p = temp_dir("pkg-real");
    let ps = p.to_str().unwrap();
    let out = install(&["--packaged", "--user", "nobody", "--prefix", ps]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let unit = std::fs::read_to_string(p.join("lib/systemd/system/palisade-collector.service"))
        .unwrap_or_else(|e| panic!("no unit: {e}\n{t}"));
    assert!(unit.contains("\nUser=nobody\n"), "{unit}");
    assert!(
        unit.contains(&format!("\nExecStart={ps}/usr/bin/palisade-collector ")),
        "{unit}"
    );
    // The unit in the dry run's output is exactly the file.
    let dry = install(&[
        "--packaged",
        "--dry-run",
        "--user",
        "nobody",
        "--prefix",
        ps,
    ]);
    let shown: String = String::from_utf8_lossy(&dry.stdout)
        .lines()
        .skip_while(|l| !l.contains(" unit ") || !l.ends_with("mode 0644:"))
        .skip(1)
        .take_while(|l| !l.starts_with("[dry run] nothing changed"))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(shown, unit, "{}", text(&dry));
    assert!(!p.join("etc/systemd").exists());
    assert!(!p.join("usr/local").exists());
    let state = std::fs::metadata(p.join("var/lib/palisade-collector")).unwrap();
    let (uid, _) = palisade_collector::service::lookup_user("nobody").unwrap();
    assert_eq!((state.uid(), state.mode() & 0o7777), (uid, 0o700));
    let bin = std::fs::metadata(p.join("usr/bin/palisade-collector")).unwrap();
    assert_eq!((bin.uid(), bin.mode() & 0o7777), (0, 0o755));
    std::fs::remove_dir_all(&p).unwrap();
}
