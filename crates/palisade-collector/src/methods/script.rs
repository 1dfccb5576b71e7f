//! The `script` method: runs a script the collector host's administrator installed in the
//! scripts directory, chosen by **name** only, as the collector's own user, with arguments
//! passed as such (no shell), an empty environment (but `PATH` and `LANG`), no standard
//! input, in its own process group (killed whole at the timeout), and reads `key=value`
//! lines from its standard output.
//!
//! A script that is writable by group or others is refused: anyone who can write it could
//! make the collector run anything.

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
