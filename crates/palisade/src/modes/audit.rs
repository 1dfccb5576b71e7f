//! `palisade audit ...`.

use clap::Subcommand;
use palisade_server::ops::audit_verify::{self, Verdict};
use palisade_server::StoreConfig;
use serde_json::json;
use std::process::ExitCode;

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verifies the hash chain; exits 1 and names the first broken entry if any was edited
    /// or removed.
    Verify,
}

/// Runs an audit command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Verify = cmd;
    let portal = super::open(store).await?;
    match audit_verify::verify(&portal).await? {
        Verdict::Intact { entries } => {
            super::print(&json!({ "ok": true, "entries": entries }));
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken(b) => {
            super::print(
                &json!({ "ok": false, "firstBrokenId": b.seq().to_string(), "reason": b.to_string() }),
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
