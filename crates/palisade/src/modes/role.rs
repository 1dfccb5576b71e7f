//! `palisade role ...`.

use clap::Subcommand;
use palisade_core::privilege::Privilege;
use palisade_server::portal::Actor;
use palisade_server::StoreConfig;
use std::process::ExitCode;

/// Role commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Adds a custom role.
    Add {
        /// Role name.
        name: String,
        /// OBJECTTYPE:OBJECTID:OPERATION, e.g. setting:useraccess:write; repeatable.
        #[arg(long = "privilege", value_parser = parse_privilege)]
        privileges: Vec<Privilege>,
        /// Description.
        #[arg(long, default_value = "")]
        description: String,
    },
}

fn parse_privilege(s: &str) -> Result<Privilege, String> {
    Privilege::parse_triple(s).map_err(|e| e.to_string())
}

/// Runs a role command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Add {
        name,
        privileges,
        description,
    } = cmd;
    let portal = super::open(store).await?;
    let role = palisade_server::ops::roles::create_checked(
        &portal,
        &Actor::cli(),
        name,
        description,
        privileges,
        false,
    )
    .await?;
    super::print(&palisade_server::wire::role(&role, 0));
    Ok(ExitCode::SUCCESS)
}
