//! `palisade serve`.

use clap::Args as ClapArgs;
use ipnet::IpNet;
use palisade_server::{AppOptions, RateLimits, ServeConfig, StoreConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `serve`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A proxy (CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<IpNet>,
    /// Requests per token per window.
    #[arg(long, default_value_t = 1000)]
    token_rate_limit: u32,
    /// Requests per source address per window.
    #[arg(long, default_value_t = 2000)]
    ip_rate_limit: u32,
    /// Password and second-factor attempts per source address per minute.
    #[arg(long, default_value_t = 10)]
    signin_rate_limit: u32,
    /// Rate-limit window in seconds.
    #[arg(long, default_value_t = 60)]
    rate_limit_window_secs: u64,
    /// Configuration file (TOML): public URL, email and SMS/voice delivery.
    #[arg(long, env = "PALISADE_CONFIG")]
    config: Option<PathBuf>,
    /// Store time series in a Prometheus-compatible engine instead of the embedded store:
    /// its remote_write URL (VictoriaMetrics: http://HOST:8428/api/v1/write). Needs
    /// --tsdb-remote-read-url.
    #[arg(long, requires = "tsdb_remote_read_url")]
    tsdb_remote_write_url: Option<String>,
    /// The engine's Prometheus query API base (VictoriaMetrics: http://HOST:8428).
    #[arg(long, requires = "tsdb_remote_write_url")]
    tsdb_remote_read_url: Option<String>,
    /// A file holding a bearer token for the remote engine.
    #[arg(long)]
    tsdb_remote_token_file: Option<PathBuf>,
}

/// Opens the time-series store: embedded under the data directory, or remote.
async fn open_tsdb(
    store: &StoreConfig,
    portal: &palisade_server::portal::Portal,
    args: &Args,
) -> anyhow::Result<Option<palisade_server::monitor::TsdbHandle>> {
    use std::sync::Arc;
    if let (Some(w), Some(r)) = (&args.tsdb_remote_write_url, &args.tsdb_remote_read_url) {
        let mut cfg = palisade_tsdb_remote::RemoteConfig::new(w.clone(), r.clone());
        if let Some(path) = &args.tsdb_remote_token_file {
            let token = std::fs::read_to_string(path)?.trim().to_string();
            cfg = cfg.with_auth(palisade_tsdb_remote::Auth::Bearer(token));
        }
        let remote = palisade_tsdb_remote::RemoteStore::new(cfg)?;
        tracing::info!(write = %w, read = %r, "time series go to a remote engine");
        return Ok(Some(palisade_server::monitor::TsdbHandle(Arc::new(remote))));
    }
    let dir = store.data_dir.join("tsdb");
    let days = |key: &'static str, default: u64| async move {
        palisade_server::settings::get(portal, key)
            .await
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let options = palisade_tsdb::Options {
        raw_retention: std::time::Duration::from_secs(
            days("tsdb.raw_retention_days", 30).await * 86_400,
        ),
        rollup_retention: std::time::Duration::from_secs(
            days("tsdb.rollup_retention_days", 365).await * 86_400,
        ),
        ..palisade_tsdb::Options::default()
    };
    match palisade_tsdb::Tsdb::open(&dir, options) {
        Ok(db) => Ok(Some(palisade_server::monitor::TsdbHandle(Arc::new(db)))),
        Err(palisade_tsdb::TsdbError::Locked(path)) => Err(TsdbBusy(format!(
            "the embedded time-series store {} is open in another palisade process on this data directory; \
             collected data, ingest and queries are served there. To run several portal instances, \
             use a shared engine: --tsdb-remote-write-url and --tsdb-remote-read-url",
            path.display()
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// The embedded store is held by another process.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TsdbBusy(String);

/// Runs the server.
pub async fn run(store: &StoreConfig, args: Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => palisade_server::config::RawConfig::load(path)?.validate()?,
        None => palisade_server::config::Config::default(),
    };
    let (portal, first) = palisade_server::open_portal(store).await?;
    if let Some(pw) = first {
        println!(
            "first administrator: username={} password={} (one-time; it must be changed at first sign-in)",
            palisade_server::ops::bootstrap::FIRST_ADMIN,
            pw.expose()
        );
    }
    // A second portal process on the same data directory serves everything but time series
    // (which stay with the process holding the embedded store), and says so.
    let (tsdb, tsdb_unavailable) = match open_tsdb(store, &portal, &args).await {
        Ok(t) => (t, None),
        Err(e) => match e.downcast::<TsdbBusy>() {
            Ok(busy) => {
                tracing::warn!("{busy}");
                (None, Some(busy.0))
            }
            Err(e) => return Err(e),
        },
    };
    let tls = args.tls_cert.zip(args.tls_key);
    let secure_cookies = tls.is_some()
        || config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
    let cfg = ServeConfig {
        listen: args.listen,
        tls,
        options: AppOptions {
            limits: RateLimits {
                per_token: args.token_rate_limit,
                per_ip: args.ip_rate_limit,
                signin_per_ip: args.signin_rate_limit,
                window_secs: args.rate_limit_window_secs,
            },
            trusted_proxies: args.trusted_proxies,
            delivery: config.delivery,
            webauthn: config.webauthn,
            secure_cookies,
            sso: config.sso,
            tsdb,
            tsdb_unavailable,
        },
    };
    palisade_server::serve(portal, cfg).await?;
    Ok(ExitCode::SUCCESS)
}
