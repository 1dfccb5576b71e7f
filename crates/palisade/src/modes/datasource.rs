//! `palisade datasource ...`: export and import datasource definitions as files kept under
//! version control.

use clap::Subcommand;
use palisade_server::monitor::datasources;
use palisade_server::portal::Actor;
use palisade_server::StoreConfig;
use palisade_store::inventory::DatasourceDoc;
use palisade_store::objects::{self, ObjectQuery};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Datasource commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lists datasources (name, id, built-in, version).
    List,
    /// Prints a datasource's definition file on stdout.
    Export {
        /// The datasource's name.
        name: String,
    },
    /// Creates or replaces (by name) a datasource from a definition file ("-": stdin).
    Import {
        /// The file.
        file: PathBuf,
    },
}

/// Runs a datasource command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let portal = super::open(store).await?;
    match cmd {
        Command::List => {
            let all: Vec<DatasourceDoc> =
                objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
            let items: Vec<_> = all
                .iter()
                .map(|d| json!({"id": d.id, "name": d.name, "builtin": d.builtin, "version": d.version}))
                .collect();
            super::print(&json!(items));
        }
        Command::Export { name } => {
            let d: DatasourceDoc = objects::find(portal.store.as_ref(), &name.to_lowercase())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no datasource named `{name}`"))?;
            print!("{}", datasources::export(&d)?);
        }
        Command::Import { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)?
            };
            let ds = datasources::parse(&text)?;
            let d = datasources::import(&portal, &Actor::cli(), ds).await?;
            let mut out = json!({"id": d.id, "name": d.name, "version": d.version});
            if let Some(review) = datasources::script_review(&d.definition) {
                for f in review["findings"].as_array().into_iter().flatten() {
                    eprintln!(
                        "{}:{}: {}: {}{} — {}",
                        d.name,
                        f["line"],
                        f["rule"].as_str().unwrap_or_default(),
                        f["finding"].as_str().unwrap_or_default(),
                        if f["inComment"] == json!(true) {
                            " (in a comment)"
                        } else {
                            ""
                        },
                        f["alternative"].as_str().unwrap_or_default(),
                    );
                }
                out["scriptReview"] = review;
            }
            super::print(&out);
        }
    }
    Ok(ExitCode::SUCCESS)
}
