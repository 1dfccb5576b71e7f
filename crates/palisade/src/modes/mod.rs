//! One module per subcommand.

pub mod audit;
pub mod collector;
pub mod compliance;
pub mod datasource;
pub mod role;
pub mod serve;
pub mod settings;
pub mod token;
pub mod token_import;
pub mod token_migrate;
pub mod user;

use palisade_server::portal::Portal;
use palisade_server::StoreConfig;

/// Opens the portal for a CLI command; a first administrator created now has its one-time
/// password printed on stderr (stdout carries the command's JSON).
pub async fn open(store: &StoreConfig) -> anyhow::Result<Portal> {
    let (portal, first) = palisade_server::open_portal(store).await?;
    if let Some(pw) = first {
        eprintln!(
            "first administrator: username={} password={} (one-time; change it at first sign-in)",
            palisade_server::ops::bootstrap::FIRST_ADMIN,
            pw.expose()
        );
    }
    Ok(portal)
}

/// Prints a JSON value on stdout.
pub fn print(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
