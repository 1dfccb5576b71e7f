//! `palisade-collector`: register with a portal, run, or show status. See `docs/collector.md`.

#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use palisade_collector::config::{self, FileConfig, RunSettings};
use palisade_collector::register::{self, RegisterSettings};
use palisade_collector::{exit_code, run, Error};

/// Palisade's collector: polls devices without root and delivers results to the portal.
#[derive(Debug, Parser)]
#[command(name = "palisade-collector", version, about)]
struct Cli {
    /// Optional TOML config file with the same settings as the flags (flags win).
    #[arg(long, global = true, env = "PALISADE_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// State directory: identity (key file), buffer, work cache.
    #[arg(long, env = "PALISADE_COLLECTOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Run even as root or with capabilities beyond cap_net_raw: reported to the portal as
    /// an administrative account (non-compliant).
    #[arg(long)]
    allow_root: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exchanges a one-time registration secret for the collector's key.
    Register {
        /// Portal base URL (https://…; http:// only to a loopback address).
        #[arg(long)]
        portal: Option<String>,
        /// File holding the registration secret (palr_…).
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// PEM file of the CA that signed the portal's certificate (instead of the
        /// built-in roots).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// SHA-256 (hex) of the portal's certificate (DER): trust exactly that certificate.
        #[arg(long)]
        pin_sha256: Option<String>,
        /// Replace an identity already in the state directory.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Runs the collector (heartbeat, work, collection, delivery) until SIGTERM.
    Run {
        /// Directory of the scripts the `script` method may run (by name only).
        #[arg(long)]
        scripts_dir: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Prints the privilege report and the buffer's counts as JSON.
    Status {
        #[command(flatten)]
        common: Common,
    },
    /// Creates the service user, directories, binary and hardened unit.
    Install(palisade_collector::install::InstallArgs),
    /// Converts a root installation in place to run as a service user.
    Migrate(palisade_collector::migrate::MigrateArgs),
    /// Reviews custom module scripts for what needs root or Administrator.
    LintModule(palisade_collector::lint::LintArgs),
    /// Prints the PowerShell script giving a Windows account non-admin monitoring rights.
    WindowsNonadminScript(palisade_collector::windows_script::ScriptArgs),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PALISADE_COLLECTOR_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match &cli.command {
        Command::Install(a) => return ExitCode::from(palisade_collector::install::main(a)),
        Command::Migrate(a) => return ExitCode::from(palisade_collector::migrate::main(a)),
        Command::LintModule(a) => return ExitCode::from(palisade_collector::lint::main(a)),
        Command::WindowsNonadminScript(a) => {
            return ExitCode::from(palisade_collector::windows_script::main(a))
        }
        _ => {}
    }
    match real_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade-collector: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn real_main(cli: Cli) -> Result<(), Error> {
    let file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            what: "cannot start the runtime".into(),
            source: e,
        })?;
    match cli.command {
        Command::Register {
            portal,
            secret_file,
            ca_file,
            pin_sha256,
            replace,
            common,
        } => {
            let settings = RegisterSettings {
                portal: portal
                    .or_else(|| file.portal.clone())
                    .ok_or_else(|| Error::Config("--portal is required".into()))?,
                secret_file: secret_file
                    .or_else(|| file.secret_file.clone())
                    .ok_or_else(|| Error::Config("--secret-file is required".into()))?,
                state_dir: config::state_dir(common.state_dir, &file),
                ca_file: ca_file.or_else(|| file.ca_file.clone()),
                pin_sha256: pin_sha256.or_else(|| file.pin_sha256.clone()),
                replace,
                allow_root: common.allow_root || file.allow_root.unwrap_or(false),
            };
            let out = runtime.block_on(register::register(&settings))?;
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        Command::Run {
            scripts_dir,
            common,
        } => {
            let settings =
                RunSettings::merge(common.state_dir, common.allow_root, scripts_dir, &file);
            runtime.block_on(run::run(settings))
        }
        Command::Status { common } => {
            let settings = RunSettings::merge(common.state_dir, common.allow_root, None, &file);
            let out = run::status_json(&settings.state_dir, settings.allow_root)?;
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(())
        }
        // Handled in `main`, before the runtime starts.
        Command::Install(_)
        | Command::Migrate(_)
        | Command::LintModule(_)
        | Command::WindowsNonadminScript(_) => Ok(()),
    }
}
