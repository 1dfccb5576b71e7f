//! `palisade-collector lint-module` on sample scripts: output format and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};

use common::{collector_bin, temp_dir};

fn lint(files: &[&std::path::Path]) -> Output {
    Command::new(collector_bin())
        .arg("lint-module")
        .args(files)
        .output()
        .unwrap()
}

const NEEDS_ROOT: &str = "#!/bin/bash
# Disk health, the old way.
sudo smartctl -a /dev/sda
serial=$(dmidecode -s system-serial-number)
echo \"serial=$serial\" > /etc/palisade-serial
nc -l -p 162 &
chmod u+s ./helper   # so it keeps working
echo ok # was: su -c id
";

const CLEAN: &str = "#!/bin/sh
# Free memory, as any user. (No sudo needed.)
awk '/MemAvailable/ {print \"avail=\" $2}' /proc/meminfo
cat /sys/class/dmi/id/product_name > /tmp/x
ping -c 1 127.0.0.1 >/dev/null && echo up=1
";

const WINDOWS: &str = "#Requires -RunAsAdministrator
<#
  Old version: Start-Process powershell -Verb RunAs
#>
Set-ItemProperty -Path HKLM:\\SOFTWARE\\Palisade -Name Last -Value 1
net localgroup administrators svc-monitor /add
Get-Counter '\\Processor(_Total)\\% Processor Time'
";

#[test]
fn findings_are_reported_with_line_rule_and_alternative() {
    let dir = temp_dir("lint");
    let bad = dir.join("disk.sh");
    let clean = dir.join("mem.sh");
    let win = dir.join("svc.ps1");
    std::fs::write(&bad, NEEDS_ROOT).unwrap();
    std::fs::write(&clean, CLEAN).unwrap();
    std::fs::write(&win, WINDOWS).unwrap();

    let out = lint(&[&bad]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let b = bad.display().to_string();
    for (line, rule) in [
        (3, "elevation"),
        (4, "dmidecode"),
        (5, "system-write"),
        (6, "low-port"),
        (7, "setuid"),
    ] {
        let prefix = format!("{b}:{line}: {rule}: ");
        let l = lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in\n{text}"));
        assert!(l.contains(" — "), "an alternative follows: {l}");
        assert!(!l.contains("(in a comment)"), "{l}");
    }
    // A commented-out `su` is reported, marked, and does not count.
    let c = lines
        .iter()
        .find(|l| l.starts_with(&format!("{b}:8: elevation:")))
        .unwrap();
    assert!(c.contains("(in a comment)"), "{c}");
    assert!(
        !text.contains(&format!("{b}:2:")),
        "the comment of line 2 has no finding"
    );

    // Clean script: nothing printed, exit 0. Comment-only findings keep it clean.
    let out = lint(&[&clean]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(in a comment)"),
        "the `sudo` of the comment is shown"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    // PowerShell: the directive counts, the block comment is marked.
    let out = lint(&[&win]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let w = win.display().to_string();
    assert!(text.contains(&format!("{w}:1: win-elevation:")), "{text}");
    assert!(
        text.contains(&format!(
            "{w}:3: win-elevation: asks for Administrator elevation (in a comment)"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("{w}:5: hklm-write:")), "{text}");
    assert!(text.contains(&format!("{w}:6: admin-group:")), "{text}");
    assert!(!text.contains(&format!("{w}:7:")), "{text}");

    // Several files at once: findings of each, exit 1.
    let out = lint(&[&clean, &bad]);
    assert_eq!(out.status.code(), Some(1));

    // Usage errors: no file, or a file that cannot be read.
    let out = Command::new(collector_bin())
        .arg("lint-module")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = lint(&[&dir.join("missing.sh")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}
