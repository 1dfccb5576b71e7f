//! `palisade token import USERNAME`: loads a token from an older system under its original
//! owner. The secret is read from stdin (default) or a file, never from the command line.

use clap::Args as ClapArgs;
use palisade_core::secret::Secret;
use palisade_server::ops::token_import::{self, ImportRequest};
use palisade_server::ops::token_migration::TokenFlags;
use palisade_server::portal::{Actor, Portal};
use palisade_server::StoreConfig;
use palisade_store::TokenType;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `token import`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The token's original owner (an existing user; may hold `administrator`).
    username: String,
    /// The LMv1 access id (an LMv1 token; its access key is the secret).
    #[arg(long, required_unless_present = "bearer", conflicts_with = "bearer")]
    access_id: Option<String>,
    /// A Bearer token (the secret is the token).
    #[arg(long)]
    bearer: bool,
    /// Reads the secret from this file (first line) instead of stdin.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// A note on the token.
    #[arg(long, default_value = "")]
    note: String,
    /// Where the token comes from (kept with the import, e.g. "portal.example.com").
    #[arg(long, default_value = "")]
    source: String,
}

/// The first line of the input, without its line end.
fn first_line(input: impl Read) -> anyhow::Result<Secret<String>> {
    let mut s = String::new();
    input.take(64 * 1024).read_to_string(&mut s)?;
    let line = s.lines().next().unwrap_or_default().trim().to_string();
    if line.is_empty() {
        anyhow::bail!("no secret on the input (give it on stdin or with --secret-file)");
    }
    Ok(Secret::new(line))
}

/// Runs `token import`.
pub async fn run(store: &StoreConfig, args: Args) -> anyhow::Result<ExitCode> {
    let secret = match &args.secret_file {
        Some(path) => first_line(std::fs::File::open(path).map_err(|e| {
            anyhow::anyhow!("cannot read the secret file {}: {e}", path.display())
        })?)?,
        None => first_line(std::io::stdin())?,
    };
    let portal = super::open(store).await?;
    let kind = if args.bearer {
        TokenType::Bearer
    } else {
        TokenType::Lmv1
    };
    let token = token_import::import(
        &portal,
        &Actor::cli(),
        ImportRequest {
            owner: args.username,
            kind,
            access_id: args.access_id,
            secret,
            note: args.note,
            source: args.source,
        },
    )
    .await?;
    let owner = portal.store.get_user(token.user_id).await?;
    let roles = portal.store.list_roles().await?;
    let role_names: Vec<String> = owner
        .as_ref()
        .map(|u| {
            roles
                .iter()
                .filter(|r| u.role_ids.contains(&r.id))
                .map(|r| r.name.clone())
                .collect()
        })
        .unwrap_or_default();
    let name = owner.as_ref().map(|u| u.username.as_str()).unwrap_or("");
    let mut v = palisade_server::wire::token(&token, name, &role_names);
    let facts = owner.as_ref().map(|u| Portal::owner_facts(u, &roles));
    TokenFlags::load(&portal)
        .await?
        .annotate(&mut v, &token, facts.as_ref());
    if let Some(m) = v["violatesMandate"].as_str() {
        eprintln!(
            "warning: token {} breaks the token mandate ({m}); it keeps working, flagged, while `token.imported_violating_until` allows. Replace it: palisade token migrate {}",
            token.id, token.id
        );
    }
    super::print(&v);
    Ok(ExitCode::SUCCESS)
}
