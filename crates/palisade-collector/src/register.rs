//! `palisade-collector register`: exchanges the one-time registration secret for the
//! collector's key and stores the identity in the state directory.

use std::path::{Path, PathBuf};

use crate::buffer::{self, create_private_dir};
use crate::error::{Error, Result};
use crate::portal::{self, Identity, Portal, Trust, KEY_FILE};
use crate::report;
use crate::run::now_ms;

/// What `register` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterSettings {
    /// Portal base URL.
    pub portal: String,
    /// File holding the registration secret.
    pub secret_file: PathBuf,
    /// State directory.
    pub state_dir: PathBuf,
    /// CA PEM file.
    pub ca_file: Option<PathBuf>,
    /// Pinned certificate hash (hex).
    pub pin_sha256: Option<String>,
    /// Replace an existing identity.
    pub replace: bool,
    /// `--allow-root` (only reported).
    pub allow_root: bool,
}

/// Registers; returns what to print (never the key).
pub async fn register(s: &RegisterSettings) -> Result<serde_json::Value> {
    portal::check_portal_url(&s.portal)?;
    let secret = portal::read_secret(&s.secret_file)?;
    let trust = Trust {
        ca_pem: match &s.ca_file {
            Some(p) => Some(std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))?),
            None => None,
        },
        pin_sha256: match &s.pin_sha256 {
            Some(p) => Some(portal::parse_pin(p)?),
            None => None,
        },
    };
    create_private_dir(&s.state_dir)?;
    if s.state_dir.join(KEY_FILE).exists() && !s.replace {
        return Err(Error::Config(format!(
            "{} already holds a collector identity; pass --replace to register again with a new secret",
            s.state_dir.display()
        )));
    }
    let counts = buffer::counts_of(&s.state_dir)?;
    let report = report::gather(
        &s.state_dir,
        s.allow_root,
        now_ms(),
        counts.batches,
        counts.dropped,
    );
    let client = Portal::new(&s.portal, &trust, None)?;
    let (collector_id, key) = client.register(&secret, &report).await?;
    let identity = Identity {
        portal: s.portal.trim().trim_end_matches('/').to_string(),
        collector_id,
        key,
        trust,
    };
    identity.save(&s.state_dir, now_ms())?;
    Ok(serde_json::json!({
        "collectorId": collector_id,
        "portal": identity.portal,
        "stateDir": s.state_dir.display().to_string(),
        "keyFile": key_path(&s.state_dir).display().to_string(),
        "isAdminAccount": report.is_admin_account,
    }))
}

fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join(KEY_FILE)
}
