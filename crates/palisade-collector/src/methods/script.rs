//! The `script` method: runs a script the collector host's administrator installed in the
//! scripts directory, chosen by **name** only, as the collector's own user, with arguments
//! passed as such (no shell), an empty environment (but `PATH` and `LANG`), no standard
//! input, in its own process group (killed whole at the timeout), and reads `key=value`
//! lines from its standard output.
//!
//! A script that is writable by group or others is refused: anyone who can write it could
//! make the collector run anything. When the datasource carries the script's `source` (the
//! text the portal reviewed), the installed file must be exactly that text.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use palisade_core::datasource::{expand_template, is_valid_script_name, Collector};
use tokio::io::AsyncReadExt;

use super::{map_fields, BoxFuture, Method, Task};
use crate::parse;
use crate::process::{Outcome, RawInstance};

/// Most output read from a script.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The script method.
#[derive(Debug, Clone)]
pub struct Script {
    dir: Option<PathBuf>,
}

impl Script {
    /// Scripts come from `dir` (none: every script datasource reports an error).
    pub fn new(dir: Option<PathBuf>) -> Script {
        Script { dir }
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// Whether the installed script is the source reviewed with the module.
fn matches_reviewed(path: &std::path::Path, source: &str) -> Result<(), String> {
    use sha2::{Digest, Sha256};
    let installed = std::fs::read(path).map_err(|e| format!("script {}: {e}", path.display()))?;
    if installed == source.as_bytes() {
        return Ok(());
    }
    let short = |b: &[u8]| hex::encode(&Sha256::digest(b)[..8]);
    Err(format!(
        "refusing to run {}: it differs from the source reviewed with the datasource (installed sha256 {}…, reviewed {}…); install the reviewed text or upload the new one",
        path.display(),
        short(&installed),
        short(source.as_bytes())
    ))
}

impl Method for Script {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Script(c) = &task.datasource.collector else {
                return Outcome::error("not a script datasource");
            };
            let Some(dir) = &self.dir else {
                return Outcome::error(
                    "this collector has no scripts directory (palisade-collector run --scripts-dir)",
                );
            };
            if !is_valid_script_name(&c.script) {
                return Outcome::error(format!("`{}` is not a script name", c.script));
            }
            let path = dir.join(&c.script);
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => return Outcome::error(format!("{} is not a file", path.display())),
                Err(e) => return Outcome::error(format!("script {}: {e}", path.display())),
            };
            if meta.permissions().mode() & 0o022 != 0 {
                return Outcome::error(format!(
                    "refusing to run {}: it is writable by group or others",
                    path.display()
                ));
            }
            if let Some(source) = &c.source {
                if let Err(e) = matches_reviewed(&path, source) {
                    return Outcome::error(e);
                }
            }
            let device = &task.device;
            let mut args = Vec::with_capacity(c.args.len());
            for a in &c.args {
                match expand_template(a, &|n: &str| device.template_prop(n)) {
                    Some(v) => args.push(v),
                    None => {
                        return Outcome::error(
                            "an argument names a property the device lacks (or has empty)",
                        )
                    }
                }
            }
            let mut cmd = tokio::process::Command::new(&path);
            cmd.args(&args)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("LANG", "C.UTF-8")
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let mut child = match cmd.spawn() {
                Ok(ch) => ch,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    return Outcome::Denied {
                        message: format!("cannot run {}: {e}", path.display()),
                        lacks: format!("execute permission on {}", path.display()),
                    }
                }
                Err(e) => return Outcome::error(format!("cannot run {}: {e}", path.display())),
            };
            let pid = child.id();
            let mut stdout = child.stdout.take();
            let mut stderr = child.stderr.take();
            let run = async {
                let mut out = Vec::new();
                let mut err = Vec::new();
                if let Some(s) = stdout.as_mut() {
                    let _ = s.take(MAX_OUTPUT).read_to_end(&mut out).await;
                }
                if let Some(s) = stderr.as_mut() {
                    let _ = s.take(MAX_OUTPUT).read_to_end(&mut err).await;
                }
                (child.wait().await, out, err)
            };
            let timeout = Duration::from_millis(u64::from(c.timeout_ms));
            let (status, out, err) = match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) => {
                    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                        let _ =
                            rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    }
                    return Outcome::error(format!(
                        "{} did not finish within {} ms",
                        c.script, c.timeout_ms
                    ));
                }
            };
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => {
                    return Outcome::error(format!(
                        "{} exited with {s}: {}",
                        c.script,
                        first_line(&err)
                    ))
                }
                Err(e) => return Outcome::error(format!("{}: {e}", c.script)),
            }
            let text = String::from_utf8_lossy(&out);
            let multi = task.datasource.has_multi_instances;
            let instances = parse::key_value(&text, "=", multi)
                .into_iter()
                .map(|(name, fields)| RawInstance {
                    display_name: name.clone(),
                    name,
                    properties: Default::default(),
                    values: map_fields(&c.keys, &fields),
                })
                .collect();
            Outcome::Instances(instances)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::work::Device;
    use std::sync::Arc;

    const SCRIPT: &str = "#!/bin/sh\necho \"free=42\"\necho \"arg=$1\"\n";

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pal-script-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn install(dir: &std::path::Path, text: &str, mode: u32) {
        let p = dir.join("mem.sh");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn task(source: Option<&str>, timeout_ms: u32) -> Task {
        let mut collector = serde_json::json!({
            "method": "script", "script": "mem.sh", "args": ["##site##"],
            "timeoutMs": timeout_ms, "keys": {"Free": "free"}
        });
        if let Some(s) = source {
            collector["source"] = serde_json::json!(s);
        }
        let ds = serde_json::json!({
            "name": "MemScript", "collectMethod": "script", "collectInterval": 60,
            "hasMultiInstances": false, "appliesTo": "true",
            "collector": collector,
            "dataPoints": [{"name": "Free", "type": "gauge"}]
        });
        Task {
            device: Arc::new(Device::new(1, "127.0.0.1", &[("site", "lab")])),
            datasource: Arc::new(palisade_core::datasource::import(&ds.to_string()).unwrap()),
            own_host: false,
        }
    }

    async fn run(dir: &std::path::Path, t: &Task) -> Outcome {
        Script::new(Some(dir.to_path_buf())).collect(t).await
    }

    fn error(o: Outcome) -> String {
        match o {
            Outcome::Error { message } => message,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn runs_the_named_script_and_reads_key_values() {
        let d = dir("ok");
        install(&d, SCRIPT, 0o755);
        match run(&d, &task(None, 5000)).await {
            Outcome::Instances(i) => {
                assert_eq!(i.len(), 1);
                assert_eq!(i[0].values.get("Free"), Some(&42.0));
            }
            other => panic!("{other:?}"),
        }
        // The reviewed source matches byte for byte: it runs.
        assert!(matches!(
            run(&d, &task(Some(SCRIPT), 5000)).await,
            Outcome::Instances(_)
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn a_script_that_differs_from_the_reviewed_source_is_refused() {
        let d = dir("differs");
        install(
            &d,
            "#!/bin/sh\nsudo cat /etc/shadow >/dev/null; echo free=1\n",
            0o755,
        );
        let m = error(run(&d, &task(Some(SCRIPT), 5000)).await);
        assert!(m.contains("differs from the source reviewed"), "{m}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test]
    async fn group_writable_scripts_and_timeouts_are_errors() {
        let d = dir("perm");
        install(&d, SCRIPT, 0o775);
        let m = error(run(&d, &task(None, 5000)).await);
        assert!(m.contains("writable by group or others"), "{m}");
        install(&d, "#!/bin/sh\nsleep 5\necho free=1\n", 0o755);
        let m = error(run(&d, &task(None, 300)).await);
        assert!(m.contains("did not finish within 300 ms"), "{m}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
