//! `palisade user ...`.

use clap::Subcommand;
use palisade_api::{AdminRequest, RoleRef};
use palisade_server::portal::Actor;
use palisade_server::StoreConfig;
use std::io::Read;
use std::process::ExitCode;

/// User commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Adds a user.
    Add {
        /// Sign-in name.
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Role name; repeatable.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// API-only user: tokens only, no password, no UI.
        #[arg(long)]
        api_only: bool,
        /// Reads the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs a user command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Add {
        username,
        email,
        roles,
        api_only,
        password_stdin,
    } = cmd;
    let password = if password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Some(s.trim_end_matches(['\r', '\n']).to_string())
    } else {
        None
    };
    let portal = super::open(store).await?;
    let req = AdminRequest {
        username: Some(username),
        email: Some(email),
        password,
        apionly: Some(api_only),
        roles: Some(
            roles
                .into_iter()
                .map(|name| RoleRef {
                    id: None,
                    name: Some(name),
                })
                .collect(),
        ),
        ..Default::default()
    };
    let user = palisade_server::ops::users::create(&portal, &Actor::cli(), req).await?;
    let all_roles = portal.store.list_roles().await?;
    super::print(&palisade_server::wire::user(&user, &all_roles, &[], false));
    Ok(ExitCode::SUCCESS)
}
