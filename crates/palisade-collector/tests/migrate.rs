//! `install` and `migrate` for real: a legacy root installation under a temporary prefix,
//! run by the direct service manager against a real portal, buffering while the portal is
//! down, then migrated in place to a throw-away user (silent, prompted, declined, and a
//! real failure that must roll back).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{collector_bin, temp_dir, Portal, Target};
use palisade_collector::buffer;
use palisade_collector::migrate::{self, buffer_sum};
use palisade_collector::process::ResultItem;
use palisade_collector::service::{self, Direct, Layout, ServiceManager};
use serde_json::Value;
use sha2::Digest;

/// The migration tests need root, setpriv and useradd (scripts/test and CI have them):
/// without them they fail, never skip.
fn can_run() -> bool {
    common::require_root("the migration test");
    common::setpriv();
    assert!(
        Path::new("/usr/sbin/useradd").exists(),
        "the migration test needs /usr/sbin/useradd (package passwd)"
    );
    true
}

/// A throw-away system user, removed on drop.
struct TestUser {
    name: String,
    uid: u32,
}

impl TestUser {
    fn create(tag: &str) -> TestUser {
        let name = format!("pcm{tag}{}", std::process::id() % 100_000);
        for _ in 0..50 {
            let st = Command::new("useradd")
                .args(["--system", "--user-group", "--no-create-home"])
                .args(["--shell", "/usr/sbin/nologin", &name])
                .status()
                .unwrap();
            if st.success() {
                let (uid, _) = service::lookup_user(&name).unwrap();
                return TestUser { name, uid };
            }
            // Parallel tests may hold the passwd lock: try again.
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("useradd {name} failed");
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for _ in 0..50 {
            let st = Command::new("userdel").arg(&self.name).status();
            if matches!(st, Ok(s) if s.success()) || service::lookup_user(&self.name).is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A legacy root installation under a temporary prefix, registered and running.
struct Setup {
    portal: Portal,
    cid: i64,
    dev: i64,
    prefix: PathBuf,
    layout: Layout,
    _target: Target,
}

impl Setup {
    fn mgr(&self) -> Direct {
        Direct::new(&self.layout)
    }

    async fn start(tag: &str) -> Setup {
        let portal = Portal::start(tag);
        let target = Target::start();
        portal
            .ok(
                "POST",
                "/setting/datasources",
                Some(common::http_datasource("MigHTTP")),
            )
            .await;
        let (cid, secret) = portal.add_collector(&format!("it-{tag}"));
        let prefix = temp_dir(&format!("{tag}-prefix"));
        let layout = Layout::new(Some(&prefix), None);
        let out = cli(&[
            "install",
            "--user",
            "root",
            "--service-manager",
            "direct",
            "--prefix",
            prefix.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "install: {}", text(&out));
        assert!(text(&out).contains("legacy root layout"), "{}", text(&out));
        let bin = std::fs::metadata(&layout.binary).unwrap();
        assert_eq!((bin.uid(), bin.mode() & 0o7777), (0, 0o755));
        assert_eq!(
            std::fs::metadata(&layout.state_dir).unwrap().mode() & 0o777,
            0o700
        );
        // Faster than the defaults; the file keeps its owner and mode.
        std::fs::write(
            &layout.config_file,
            "heartbeat_secs = 1\njitter_secs = 0\nretry_max_secs = 2\n",
        )
        .unwrap();
        let secret_file = prefix.join("secret");
        std::fs::write(&secret_file, secret).unwrap();
        let out = cli(&[
            "register",
            "--portal",
            &portal.base(),
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--state-dir",
            layout.state_dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "register: {}", text(&out));
        let port = target.port.to_string();
        let dev = portal
            .add_device(
                "127.0.0.1",
                &format!("{tag}-host"),
                cid,
                &[("web.port", &port)],
            )
            .await;
        let s = Setup {
            portal,
            cid,
            dev,
            prefix,
            layout,
            _target: target,
        };
        s.mgr().start().unwrap();
        let pid = wait_uid(&s.mgr(), 0);
        assert!(pid > 0);
        s
    }

    fn spec(&self) -> String {
        std::fs::read_to_string(&self.layout.direct_spec).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.layout.logs_dir.join("collector.log")).unwrap_or_default()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.mgr().stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.prefix);
        }
    }
}

fn cli(args: &[&str]) -> Output {
    cli_with_input(args, None)
}

fn cli_with_input(args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(collector_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = input {
            stdin.write_all(i.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Waits until the direct service runs with effective uid `uid`; returns the pid.
fn wait_uid(mgr: &Direct, uid: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(pid)) = mgr.main_pid() {
            if service::process_euid(pid) == Some(uid) {
                return pid;
            }
        }
        assert!(Instant::now() < deadline, "not running as uid {uid}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn migrate_args<'a>(s: &'a Setup, user: &'a str) -> Vec<&'a str> {
    vec![
        "migrate",
        "--to-user",
        user,
        "--service-manager",
        "direct",
        "--prefix",
        s.prefix.to_str().unwrap(),
    ]
}

fn tree_owners(root: &Path) -> BTreeSet<(u32, u32)> {
    migrate::owners(root)
}

fn status(s: &Setup) -> Value {
    let out = cli(&[
        "status",
        "--state-dir",
        s.layout.state_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn migrates_with_buffer(tag: &str, prompt: bool) {
    if !can_run() {
        return;
    }
    let user = TestUser::create(tag);
    let mut s = Setup::start(tag).await;
    s.portal
        .wait_samples(
            s.dev,
            "MigHTTP",
            "MigHTTP",
            "Status",
            Duration::from_secs(40),
        )
        .await;
    let c = s
        .portal
        .ok(
            "GET",
            &format!("/setting/collector/collectors/{}", s.cid),
            None,
        )
        .await;
    assert_eq!(c["isAdminAccount"], true, "runs as root first: {c}");

    // The portal goes away: the collector buffers.
    s.portal.stop();
    let deadline = Instant::now() + Duration::from_secs(60);
    while buffer::counts_of(&s.layout.state_dir).unwrap().batches < 2 {
        assert!(
            Instant::now() < deadline,
            "the buffer did not grow: {}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let mut args = migrate_args(&s, &user.name);
    if !prompt {
        args.push("--yes");
    }
    let out = cli_with_input(&args, prompt.then_some("y\n"));
    let t = text(&out);
    eprintln!("{t}");
    assert!(out.status.success(), "{t}\n{}", s.log());
    assert_eq!(t.contains("Proceed? [y/N]"), prompt, "{t}");
    assert!(t.contains("Migrated."), "{t}");
    for step in [
        "stop the collector",
        "count and checksum",
        "re-own",
        "rewrite",
        "verify as",
    ] {
        assert!(t.contains(step), "the plan names `{step}`: {t}");
    }
    // The buffer fingerprint before and after re-owning, as printed.
    let line = t
        .lines()
        .find(|l| l.contains("unchanged") && l.contains("sha256"))
        .unwrap_or_else(|| panic!("{t}"));
    let n: usize = line
        .split("buffer: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let sha = line.split("sha256 ").nth(1).unwrap()[..64].to_string();
    assert!(
        t.contains(&format!("buffer before: {n} batches, sha256 {sha}")),
        "{t}"
    );
    assert!(n >= 2, "{t}");

    // It runs as the user now, with the same identity.
    let pid = wait_uid(&s.mgr(), user.uid);
    assert_eq!(service::process_euid(pid), Some(user.uid));
    let st = status(&s);
    assert_eq!(st["collectorId"], s.cid, "{st}");
    let spec = s.mgr().parse(&s.spec()).unwrap();
    assert_eq!(spec.user, user.name);
    assert!(!spec.exec.iter().any(|a| a == "--allow-root"), "{spec:?}");
    let state = std::fs::metadata(&s.layout.state_dir).unwrap();
    assert_eq!((state.uid(), state.mode() & 0o777), (user.uid, 0o700));
    assert_eq!(
        tree_owners(&s.layout.state_dir)
            .iter()
            .map(|(u, _)| *u)
            .collect::<BTreeSet<_>>(),
        [user.uid].into_iter().collect(),
        "every entry of the state directory is the user's"
    );
    let conf = std::fs::metadata(&s.layout.config_dir).unwrap();
    assert_eq!((conf.uid(), conf.mode() & 0o777), (0, 0o750));

    // The oldest n batches are exactly the ones checksummed (the portal is still down, so
    // nothing was sent; newer batches may follow them).
    let now = buffer::inspect(&s.layout.state_dir).unwrap();
    assert!(now.len() >= n);
    let mut h = sha2::Sha256::new();
    for (_, payload) in &now[..n] {
        h.update(payload);
    }
    assert_eq!(hex::encode(h.finalize()), sha);
    let ids: BTreeSet<String> = now[..n].iter().map(|(e, _)| e.id.clone()).collect();
    let expected: BTreeSet<i64> = now[..n]
        .iter()
        .flat_map(|(_, p)| {
            let v: Value = serde_json::from_slice(p).unwrap();
            v["results"].as_array().unwrap().clone()
        })
        .map(|r| serde_json::from_value::<ResultItem>(r).unwrap())
        .filter(|r| r.datasource == "MigHTTP" && r.values.contains_key("Status"))
        .map(|r| r.timestamp)
        .collect();

    // The portal comes back: the buffered batches are delivered, and the collector is no
    // longer an administrative account.
    s.portal.serve();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: BTreeSet<String> = buffer::inspect(&s.layout.state_dir)
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.id)
            .collect();
        if left.is_disjoint(&ids) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {left:?}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let samples = s
        .portal
        .samples(s.dev, "MigHTTP", "MigHTTP", "Status")
        .await
        .unwrap();
    let got: BTreeSet<i64> = samples.iter().map(|(t, _)| *t).collect();
    assert!(expected.is_subset(&got), "{expected:?} ⊄ {got:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = s
            .portal
            .ok(
                "GET",
                &format!("/setting/collector/collectors/{}", s.cid),
                None,
            )
            .await;
        if c["isAdminAccount"] == false {
            assert_eq!(c["privilege"]["uid"], user.uid, "{c}");
            break;
        }
        assert!(Instant::now() < deadline, "still an admin account: {c}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.mgr().stop().unwrap();
    assert!(s.mgr().main_pid().unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_migration_keeps_identity_and_buffer() {
    migrates_with_buffer("s", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompted_migration_answered_yes() {
    migrates_with_buffer("p", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_and_dry_run_change_nothing() {
    if !can_run() {
        return;
    }
    let user = TestUser::create("n");
    let s = Setup::start("n").await;
    let pid = wait_uid(&s.mgr(), 0);
    let spec = s.spec();
    let owners = tree_owners(&s.prefix);
    let sum = buffer_sum(&s.layout.state_dir).unwrap();

    let dry = cli(&[&migrate_args(&s, &user.name)[..], &["--dry-run"]].concat());
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("Dry run: nothing changed."),
        "{}",
        text(&dry)
    );

    let out = cli_with_input(&migrate_args(&s, &user.name), Some("n\n"));
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(i32::from(migrate::EXIT_DECLINED)),
        "{t}"
    );
    assert!(t.contains("Proceed? [y/N]") && t.contains("Aborted"), "{t}");
    // No answer at all (end of input) is a no as well.
    let out = cli_with_input(&migrate_args(&s, &user.name), None);
    assert_eq!(out.status.code(), Some(i32::from(migrate::EXIT_DECLINED)));

    assert_eq!(
        s.mgr().main_pid().unwrap(),
        Some(pid),
        "still the same process"
    );
    assert_eq!(service::process_euid(pid), Some(0));
    assert_eq!(s.spec(), spec);
    assert_eq!(tree_owners(&s.prefix), owners);
    assert!(tree_owners(&s.layout.state_dir)
        .iter()
        .all(|(u, _)| *u == 0));
    // The collector may have buffered meanwhile; what was there is still there.
    let now = buffer_sum(&s.layout.state_dir).unwrap();
    assert!(now.ids.starts_with(&sum.ids) || sum.ids.iter().all(|i| !now.ids.contains(i)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_rolls_back_to_root() {
    if !can_run() {
        return;
    }
    let user = TestUser::create("f");
    let s = Setup::start("f").await;
    let old_pid = wait_uid(&s.mgr(), 0);
    let spec = s.spec();
    let state_owners = tree_owners(&s.layout.state_dir);
    let config_owners = tree_owners(&s.layout.config_dir);
    let state_mode = std::fs::metadata(&s.layout.state_dir).unwrap().mode();
    // A real failure: the new user cannot reach the state directory, because its parent
    // is root's alone. Everything before the check as the user succeeds (stop, checksum,
    // re-own, unit), so the whole rollback is exercised.
    let parent = s.layout.state_dir.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();

    let mut args = migrate_args(&s, &user.name);
    args.push("--yes");
    let out = cli(&args);
    let t = text(&out);
    eprintln!("{t}");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(migrate::EXIT_ROLLED_BACK)),
        "{t}"
    );
    assert!(t.contains("[FAILED] verify as the new user"), "{t}");
    assert!(t.contains("rolled back"), "{t}");
    assert!(t.contains("runs as root again"), "{t}");

    let pid = wait_uid(&s.mgr(), 0);
    assert_ne!(pid, old_pid, "restarted");
    assert_eq!(s.spec(), spec, "the unit is restored");
    assert_eq!(tree_owners(&s.layout.state_dir), state_owners);
    assert_eq!(tree_owners(&s.layout.config_dir), config_owners);
    assert_eq!(
        std::fs::metadata(&s.layout.state_dir).unwrap().mode(),
        state_mode
    );
    assert_eq!(status(&s)["collectorId"], s.cid);
}
