//! `palisade token ...`.

use clap::Subcommand;
use palisade_server::ops::tokens::{self, TokenRequest};
use palisade_server::portal::Actor;
use palisade_server::StoreConfig;
use serde_json::json;
use std::process::ExitCode;

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates an API token; its secret is printed once.
    Create {
        /// The owner.
        username: String,
        /// A Bearer token instead of an LMv1 access id and key.
        #[arg(long)]
        bearer: bool,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Proposes the smallest role covering a token's recorded calls and replaces the token
    /// (interactive; --yes, --dry-run, --confirm-disable, --finish, --status).
    Migrate(super::token_migrate::Args),
    /// Imports a token from an older system under its original owner (secret on stdin or in
    /// --secret-file; flagged when it breaks the token mandate).
    Import(super::token_import::Args),
}

/// Runs a token command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let (username, bearer, note) = match cmd {
        Command::Create {
            username,
            bearer,
            note,
        } => (username, bearer, note),
        Command::Migrate(args) => return super::token_migrate::run(store, args).await,
        Command::Import(args) => return super::token_import::run(store, args).await,
    };
    let portal = super::open(store).await?;
    let owner = portal
        .store
        .get_user_by_name(&username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named `{username}`"))?;
    let created = tokens::create(
        &portal,
        &Actor::cli(),
        owner.id,
        TokenRequest {
            bearer,
            note,
            expires_on: None,
        },
    )
    .await?;
    let out = if bearer {
        json!({ "id": created.record.id, "bearerToken": created.secret.expose() })
    } else {
        json!({ "id": created.record.id, "accessId": created.record.access_id, "accessKey": created.secret.expose() })
    };
    super::print(&out);
    Ok(ExitCode::SUCCESS)
}
