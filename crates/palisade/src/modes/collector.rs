//! `palisade collector ...`: collectors as portal objects.

use clap::Subcommand;
use palisade_server::monitor::collectors;
use palisade_server::portal::Actor;
use palisade_server::StoreConfig;
use palisade_store::inventory::CollectorDoc;
use palisade_store::objects::{self, ObjectQuery};
use serde_json::json;
use std::process::ExitCode;

/// Collector commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates a collector and prints its one-time registration secret (valid 24 hours).
    Add {
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Collector group id (0: none).
        #[arg(long, default_value_t = 0)]
        group: i64,
    },
    /// Lists collectors with what they report (account, platform, status).
    List,
}

/// Runs a collector command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let portal = super::open(store).await?;
    match cmd {
        Command::Add { description, group } => {
            let body = json!({"description": description, "collectorGroupId": group});
            let (c, secret) = collectors::create(&portal, &Actor::cli(), &body).await?;
            super::print(
                &json!({"id": c.id, "description": c.description, "registrationSecret": secret}),
            );
        }
        Command::List => {
            let all: Vec<CollectorDoc> =
                objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
            let now = portal.now();
            let down_after_ms = collectors::down_after_ms(&portal).await?;
            let items: Vec<_> = all
                .iter()
                .map(|c| collectors::render(c, "", 0, now, down_after_ms))
                .collect();
            super::print(&json!(items));
        }
    }
    Ok(ExitCode::SUCCESS)
}
