//! Settings: command-line flags over an optional TOML file (`--config`) over defaults.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Default state directory when neither a flag, the config file nor systemd's
/// `STATE_DIRECTORY` names one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/palisade-collector";
/// Default heartbeat period, seconds.
pub const DEFAULT_HEARTBEAT_SECS: u64 = 30;
/// Default largest random delay before the first collection of a task, seconds.
pub const DEFAULT_JITTER_SECS: u64 = 15;
/// Default bound of the buffer's size: 256 MiB.
pub const DEFAULT_BUFFER_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default bound of a buffered batch's age: 7 days.
pub const DEFAULT_BUFFER_MAX_AGE_SECS: u64 = 7 * 24 * 3600;
/// Default longest pause between two delivery attempts, seconds.
pub const DEFAULT_RETRY_MAX_SECS: u64 = 60;

/// The config file. Every field is optional; a flag given on the command line wins.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Portal base URL (`register`).
    pub portal: Option<String>,
    /// File holding the one-time registration secret (`register`).
    pub secret_file: Option<PathBuf>,
    /// State directory: identity, buffer, work cache.
    pub state_dir: Option<PathBuf>,
    /// PEM file of the CA that signed the portal's certificate (`register`).
    pub ca_file: Option<PathBuf>,
    /// SHA-256 (hex) of the portal's certificate (DER) (`register`).
    pub pin_sha256: Option<String>,
    /// Run even as root / with capabilities beyond `cap_net_raw` (non-compliant).
    pub allow_root: Option<bool>,
    /// Directory of the scripts the `script` method may run.
    pub scripts_dir: Option<PathBuf>,
    /// Seconds between heartbeats.
    pub heartbeat_secs: Option<u64>,
    /// Largest random delay before a task's first collection, seconds.
    pub jitter_secs: Option<u64>,
    /// Bound of the buffer's size, bytes.
    pub buffer_max_bytes: Option<u64>,
    /// Bound of a buffered batch's age, seconds.
    pub buffer_max_age_secs: Option<u64>,
    /// Longest pause between two delivery attempts, seconds.
    pub retry_max_secs: Option<u64>,
}

impl FileConfig {
    /// Reads a config file.
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

/// The settings of `run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// State directory.
    pub state_dir: PathBuf,
    /// `--allow-root`.
    pub allow_root: bool,
    /// Scripts directory, if any.
    pub scripts_dir: Option<PathBuf>,
    /// Heartbeat period, seconds (at least 1).
    pub heartbeat_secs: u64,
    /// Largest initial delay of a task, seconds.
    pub jitter_secs: u64,
    /// Buffer size bound, bytes.
    pub buffer_max_bytes: u64,
    /// Buffer age bound, seconds.
    pub buffer_max_age_secs: u64,
    /// Longest retry pause, seconds (at least 1).
    pub retry_max_secs: u64,
}

/// The state directory: the flag, else the file, else `$STATE_DIRECTORY` (systemd's
/// `StateDirectory=`), else [`DEFAULT_STATE_DIR`].
pub fn state_dir(flag: Option<PathBuf>, file: &FileConfig) -> PathBuf {
    flag.or_else(|| file.state_dir.clone())
        .or_else(|| {
            std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map(|v| {
                    // systemd joins several directories with `:`; the first is ours.
                    let s = v.to_string_lossy().into_owned();
                    PathBuf::from(s.split(':').next().unwrap_or_default())
                })
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

impl RunSettings {
    /// Merges flags over the file over defaults.
    pub fn merge(
        state_dir_flag: Option<PathBuf>,
        allow_root_flag: bool,
        scripts_dir_flag: Option<PathBuf>,
        file: &FileConfig,
    ) -> RunSettings {
        RunSettings {
            state_dir: state_dir(state_dir_flag, file),
            allow_root: allow_root_flag || file.allow_root.unwrap_or(false),
            scripts_dir: scripts_dir_flag.or_else(|| file.scripts_dir.clone()),
            heartbeat_secs: file.heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS).max(1),
            jitter_secs: file.jitter_secs.unwrap_or(DEFAULT_JITTER_SECS),
            buffer_max_bytes: file.buffer_max_bytes.unwrap_or(DEFAULT_BUFFER_MAX_BYTES),
            buffer_max_age_secs: file
                .buffer_max_age_secs
                .unwrap_or(DEFAULT_BUFFER_MAX_AGE_SECS),
            retry_max_secs: file.retry_max_secs.unwrap_or(DEFAULT_RETRY_MAX_SECS).max(1),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn file_fields_and_unknown_fields() {
        let f: FileConfig = toml::from_str(
            "portal = \"https://p.example\"\nstate_dir = \"st\"\nheartbeat_secs = 5\nallow_root = true\n",
        )
        .unwrap();
        assert_eq!(f.portal.as_deref(), Some("https://p.example"));
        assert!(toml::from_str::<FileConfig>("heartbeat = 5\n").is_err());
        let s = RunSettings::merge(None, false, None, &f);
        assert_eq!(s.state_dir, PathBuf::from("st"));
        assert_eq!(s.heartbeat_secs, 5);
        assert!(s.allow_root);
        assert_eq!(s.buffer_max_bytes, DEFAULT_BUFFER_MAX_BYTES);
        let flagged = RunSettings::merge(Some("x".into()), false, Some("scripts".into()), &f);
        assert_eq!(flagged.state_dir, PathBuf::from("x"));
        assert_eq!(flagged.scripts_dir, Some(PathBuf::from("scripts")));
    }
}
