//! `palisade`: the portal server (`serve`) and its offline admin CLI.
//!
//! Every command opens the same store as `serve` (creating or migrating it), so the CLI
//! works on a fresh data directory and while `serve` runs. Commands print JSON on stdout;
//! refusals exit non-zero with a message on stderr.

mod modes;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Palisade: a monitoring portal in which the safe setup is the only setup.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about)]
struct Cli {
    /// Data directory: the SQLite database and the master key live here.
    #[arg(
        long,
        global = true,
        env = "PALISADE_DATA_DIR",
        default_value = "./palisade-data"
    )]
    data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://...` (default: SQLite in the data dir).
    #[arg(long, global = true, env = "PALISADE_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the portal server.
    Serve(modes::serve::Args),
    /// Users.
    #[command(subcommand)]
    User(modes::user::Command),
    /// Roles.
    #[command(subcommand)]
    Role(modes::role::Command),
    /// API tokens.
    #[command(subcommand)]
    Token(modes::token::Command),
    /// The audit log.
    #[command(subcommand)]
    Audit(modes::audit::Command),
    /// Portal settings (two-factor deadline and grace, SSO restriction, ...).
    #[command(subcommand)]
    Settings(modes::settings::Command),
    /// Collectors (create one and get its registration secret).
    #[command(subcommand)]
    Collector(modes::collector::Command),
    /// Datasources (export and import definition files).
    #[command(subcommand)]
    Datasource(modes::datasource::Command),
    /// The compliance center: report (json, csv, text) and the history of the scores.
    #[command(subcommand)]
    Compliance(modes::compliance::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(serving);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("palisade: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = palisade_server::StoreConfig {
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        master_key_file: None,
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => modes::serve::run(&store, args).await,
            Command::User(c) => modes::user::run(&store, c).await,
            Command::Role(c) => modes::role::run(&store, c).await,
            Command::Token(c) => modes::token::run(&store, c).await,
            Command::Audit(c) => modes::audit::run(&store, c).await,
            Command::Settings(c) => modes::settings::run(&store, c).await,
            Command::Collector(c) => modes::collector::run(&store, c).await,
            Command::Datasource(c) => modes::datasource::run(&store, c).await,
            Command::Compliance(c) => modes::compliance::run(&store, c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("palisade: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter =
        EnvFilter::try_from_env("PALISADE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PALISADE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
