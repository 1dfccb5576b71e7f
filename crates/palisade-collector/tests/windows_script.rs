//! `palisade-collector windows-nonadmin-script`: the generated PowerShell parses (tree-sitter
//! PowerShell grammar, run by node from `tests/powershell-parse/`), and the checker itself
//! rejects a broken script. No PowerShell exists here: this is a syntax check only.
//!
//! Needs `node` and `tests/powershell-parse/node_modules`, which `scripts/test` installs
//! (`npm ci --ignore-scripts` in that directory). Missing either is a failure, never a skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{collector_bin, temp_dir};

const INSTALL: &str = "run scripts/test, which installs it \
    (cd tests/powershell-parse && npm ci --ignore-scripts; node >= 18 must be on PATH)";

fn checker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/powershell-parse")
}

/// `node check.mjs FILE…`, after making sure that node and the npm packages are there.
fn parse_check(files: &[&Path]) -> Output {
    let dir = checker_dir();
    for needed in [
        "check.mjs",
        "node_modules/web-tree-sitter/package.json",
        "node_modules/tree-sitter-powershell/tree-sitter-powershell.wasm",
    ] {
        assert!(
            dir.join(needed).is_file(),
            "the PowerShell parse checker is not installed ({} is missing): {INSTALL}",
            dir.join(needed).display()
        );
    }
    Command::new("node")
        .arg(dir.join("check.mjs"))
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): {INSTALL}"))
}

fn generate(args: &[&str]) -> Output {
    Command::new(collector_bin())
        .arg("windows-nonadmin-script")
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn generated_scripts_parse_as_powershell() {
    let dir = temp_dir("winscript");
    let per_host = dir.join("palisade-nonadmin.ps1");
    let out = generate(&["--account", "svc-palisade", "--output"]).status;
    assert!(!out.success(), "--output without a value must be refused");
    let out = generate(&[
        "--account",
        "svc-palisade",
        "--output",
        per_host.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("wrote"));

    // The GPO variant, every option, through standard output.
    let out = generate(&[
        "--account",
        "CORP\\gmsa-palisade$",
        "--gpo",
        "--wmi-namespace",
        "root\\virtualization\\v2",
        "--service",
        "MSSQL$SQLEXPRESS",
        "--service",
        "W32Time",
        "--winrm-certificate",
        "self-signed",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gpo = dir.join("palisade-nonadmin-gpo.ps1");
    std::fs::write(&gpo, &out.stdout).unwrap();

    let script = std::fs::read_to_string(&per_host).unwrap();
    assert!(script.contains("$AccountName = 'svc-palisade'"));
    assert!(script.contains("Set-StrictMode -Version Latest"));

    let check = parse_check(&[&per_host, &gpo]);
    assert!(
        check.status.success(),
        "the generated script does not parse:\n{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert_eq!(text(&check.stdout).matches(": ok (").count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_checker_rejects_a_broken_script() {
    let dir = temp_dir("winscript-broken");
    let out = generate(&["--account", "svc-palisade"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let good = text(&out.stdout);

    // An unbalanced brace: the last closing brace of the script removed.
    let cut = good.rfind('}').unwrap();
    let unbalanced = format!("{}{}", &good[..cut], &good[cut + 1..]);
    let broken = dir.join("unbalanced.ps1");
    std::fs::write(&broken, unbalanced).unwrap();
    let check = parse_check(&[&broken]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    let err = text(&check.stderr);
    assert!(err.contains("unbalanced.ps1:"), "{err}");
    assert!(err.contains("MISSING") || err.contains("ERROR"), "{err}");

    // An extra opening brace in the middle of the script, reported with line and column.
    let extra = good.replacen("$GpoMode = $false", "$GpoMode = $false\nif ($GpoMode) {", 1);
    let broken2 = dir.join("extra-brace.ps1");
    std::fs::write(&broken2, extra).unwrap();
    let check = parse_check(&[&broken2]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    let err = text(&check.stderr);
    let located = err
        .lines()
        .any(|l| l.starts_with(&format!("{}:", broken2.display())) && l.split(':').count() >= 4);
    assert!(located, "no file:line:column in {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn injection_attempts_are_refused_and_nothing_is_written() {
    let dir = temp_dir("winscript-refused");
    let target = dir.join("x.ps1");
    for bad in [
        "svc'; Remove-Item -Recurse C:\\; '",
        "svc$(whoami)",
        "svc)(A;;GA;;;WD)",
        "svc\nwhoami",
        "NT AUTHORITY\\SYSTEM",
    ] {
        let out = generate(&["--account", bad, "--output", target.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(78),
            "{bad:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("invalid --account"), "{bad:?}");
        assert!(!target.exists(), "{bad:?} wrote a file");
    }
    let out = generate(&["--account", "svc-palisade", "--gpo"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
