//! `palisade compliance ...`: the compliance report and the history of its scores.

use clap::{Subcommand, ValueEnum};
use palisade_server::compliance;
use palisade_server::StoreConfig;
use std::process::ExitCode;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The API's JSON.
    Json,
    /// One row per finding, excepted and exempt object.
    Csv,
    /// For a terminal.
    Text,
}

/// Compliance commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prints the compliance report (stores a snapshot when the last one is more than a day old).
    Report {
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Prints the history of the scores (daily and on-demand snapshots), oldest first.
    History {
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Only the last N days.
        #[arg(long)]
        days: Option<u32>,
    },
    /// Takes a snapshot of the scores now and prints it.
    Snapshot,
}

/// Runs a compliance command.
pub async fn run(store: &StoreConfig, cmd: Command) -> anyhow::Result<ExitCode> {
    let portal = super::open(store).await?;
    match cmd {
        Command::Report { format } => {
            let report = compliance::report(&portal).await?;
            match format {
                Format::Json => super::print(&serde_json::to_value(&report)?),
                Format::Csv => print!("{}", palisade_core::compliance::to_csv(&report)),
                Format::Text => print!("{}", palisade_core::compliance::to_text(&report)),
            }
        }
        Command::History { format, days } => {
            let since = days.map(|d| {
                portal
                    .now()
                    .saturating_sub(i64::from(d).saturating_mul(palisade_core::compliance::DAY_MS))
            });
            let all = compliance::history(&portal, since).await?;
            match format {
                Format::Json => super::print(&compliance::history_json(&all)),
                Format::Csv => print!("{}", compliance::history_csv(&all)),
                Format::Text => print!("{}", compliance::history_text(&all)),
            }
        }
        Command::Snapshot => {
            let report = compliance::compute(&portal).await?;
            let taken = compliance::take_snapshot(&portal, &report, "on-demand", false)
                .await?
                .ok_or_else(|| anyhow::anyhow!("the snapshot was not stored"))?;
            super::print(&compliance::snapshot_json(&taken));
        }
    }
    Ok(ExitCode::SUCCESS)
}
