//! `palisade settings ...`.

use clap::Subcommand;
use palisade_server::portal::Actor;
use palisade_server::settings;
use palisade_server::StoreConfig;
use serde_json::json;
use std::process::ExitCode;

/// Settings commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sets a setting (validated; audited).
    Set {
        /// The key, e.g. mfa.enforcement_date.
        key: String,
        /// The value.
        value: String,
    },
    /// Shows one setting, or all with their meaning.
    Get {
        /// The key.
        key: Option<String>,
    },
}

/// Runs a settings command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let portal = super::open(store).await?;
    match cmd {
        Command::Set { key, value } => {
            let stored = settings::set(&portal, &Actor::cli(), &key, &value).await?;
            super::print(&json!({ key: stored }));
        }
        Command::Get { key: Some(key) } => {
            if settings::known(&key).is_none() {
                anyhow::bail!("unknown setting `{key}`");
            }
            super::print(&json!({ key.clone(): settings::get(&portal, &key).await? }));
        }
        Command::Get { key: None } => {
            let mut out = serde_json::Map::new();
            for k in settings::KNOWN {
                out.insert(
                    k.key.into(),
                    json!({ "value": settings::get(&portal, k.key).await?, "help": k.help }),
                );
            }
            super::print(&serde_json::Value::Object(out));
        }
    }
    Ok(ExitCode::SUCCESS)
}
