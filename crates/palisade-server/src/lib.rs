//! Palisade's portal server: the REST API that LogicMonitor's clients speak, its
//! authentication and authorization, the audit log, and the operations shared with the
//! admin CLI.
//!
//! - [`app`] builds the axum router from an [`AppState`]; tests drive it without a socket.
//! - [`serve`] runs it on a listener (plain or TLS) until SIGTERM/SIGINT.
//! - [`open_portal`] opens the store and keys and runs the idempotent bootstrap; `serve` and
//!   the CLI both start with it.
//! - [`ops`] holds the operations; [`gate`] is the one middleware in front of the API;
//!   [`error::ApiError`] is the one mapping from errors to API answers.
//! - [`ui`] is the web UI under `/ui` (server-rendered pages over the same sessions,
//!   authorization, operations and audit as the API).
#![deny(missing_docs)]

pub mod access;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod config;
// Dashboards, widgets, widget tokens and the wall screen (docs/dashboards.md).
pub mod dashboards;
pub mod error;
pub mod gate;
pub mod keys;
pub mod monitor;
pub mod ops;
pub mod passwords;
pub mod portal;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod signin;
pub mod ui;
pub mod wire;

use crate::audit::AuditWriter;
use crate::keys::Keys;
use crate::passwords::PasswordHashing;
use crate::portal::{Portal, SystemClock};
use crate::ratelimit::Limiter;
use axum::routing::get;
use axum::Router;
use ipnet::IpNet;
use palisade_core::secret::Secret;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared state of the HTTP server.
#[derive(Debug)]
pub struct AppState {
    /// The portal.
    pub portal: Portal,
    /// API-call audit records.
    pub audit: AuditWriter,
    /// Requests per token.
    pub token_limiter: Limiter,
    /// Requests per source address.
    pub ip_limiter: Limiter,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// When each token's last use was last written (ms).
    pub token_use: Mutex<HashMap<i64, i64>>,
    /// Sign-in attempts per source address.
    pub signin_ip_limiter: Limiter,
    /// Delivery of one-time codes.
    pub delivery: signin::delivery::Delivery,
    /// Passkeys, when the portal's public URL is known.
    pub webauthn: Option<palisade_webauthn::RelyingParty>,
    /// Cookies are `Secure` and `__Host-` (the portal is served over TLS).
    pub secure_cookies: bool,
    /// Single sign-on providers.
    pub sso: signin::sso::Providers,
    /// The resolved estate (devices, groups, properties), cached.
    pub estate: monitor::estate::EstateCache,
    /// The time-series store.
    pub tsdb: Option<monitor::TsdbHandle>,
    /// Why there is no time-series store.
    pub tsdb_unavailable: Option<String>,
    /// Datasource instances registered by this process.
    pub known_instances: monitor::pipeline::KnownInstances,
    /// Last raw values of pushed counters (their rates are stored).
    pub raw_counters: monitor::pipeline::RawCounters,
    /// Alert evaluation.
    pub alerts: monitor::alerts::AlertEngine,
    /// The last collection status per (device, datasource), as collectors report it.
    pub task_status: parking_lot::Mutex<
        std::collections::BTreeMap<(i64, String), routes::collectors::TaskStatus>,
    >,
}

/// Options of the HTTP server beyond the portal itself.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Rate limits.
    pub limits: RateLimits,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Delivery of one-time codes.
    pub delivery: signin::delivery::Delivery,
    /// Passkeys.
    pub webauthn: Option<palisade_webauthn::RelyingParty>,
    /// Served over TLS.
    pub secure_cookies: bool,
    /// Single sign-on providers.
    pub sso: signin::sso::Providers,
    /// The time-series store (without one, monitoring data endpoints answer 503).
    pub tsdb: Option<monitor::TsdbHandle>,
    /// Why there is no time-series store (shown in those 503 answers).
    pub tsdb_unavailable: Option<String>,
}

/// Rate limits.
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Requests per token per window.
    pub per_token: u32,
    /// Requests per source address per window.
    pub per_ip: u32,
    /// Password and second-factor attempts per source address per minute.
    pub signin_per_ip: u32,
    /// Window in seconds.
    pub window_secs: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_token: 1000,
            per_ip: 2000,
            signin_per_ip: 10,
            window_secs: 60,
        }
    }
}

impl AppState {
    /// State around a portal; starts the audit writer.
    pub fn new(
        portal: Portal,
        options: AppOptions,
    ) -> (Arc<AppState>, tokio::task::JoinHandle<()>) {
        let (audit, task) = AuditWriter::spawn(portal.store.clone());
        let limits = options.limits;
        let state = AppState {
            portal,
            audit,
            token_limiter: Limiter::new(limits.per_token, limits.window_secs),
            ip_limiter: Limiter::new(limits.per_ip, limits.window_secs),
            trusted_proxies: options.trusted_proxies,
            token_use: Mutex::new(HashMap::new()),
            // Per-address throttle of password attempts: 10 a minute.
            signin_ip_limiter: Limiter::new(limits.signin_per_ip, 60),
            delivery: options.delivery,
            webauthn: options.webauthn,
            secure_cookies: options.secure_cookies,
            sso: options.sso,
            estate: monitor::estate::EstateCache::default(),
            tsdb: options.tsdb,
            tsdb_unavailable: options.tsdb_unavailable,
            known_instances: Default::default(),
            raw_counters: Default::default(),
            alerts: Default::default(),
            task_status: Default::default(),
        };
        let state = Arc::new(state);
        // Alert evaluation's background work: no-data checks, SDTs, notifications.
        monitor::alerts::start(&state);
        // Deletes retired API tokens once their grace period has passed unused.
        ops::token_migration::start_checks(&state);
        (state, task)
    }
}

impl AppState {
    /// The time-series store, or 503.
    pub fn tsdb(&self) -> Result<&Arc<dyn palisade_tsdb::TimeSeriesStore>, error::ApiError> {
        self.tsdb.as_ref().map(|h| &h.0).ok_or_else(|| {
            error::ApiError::NotAvailable(
                self.tsdb_unavailable
                    .clone()
                    .unwrap_or_else(|| "no time-series store is configured".into()),
            )
        })
    }
}

/// The router: `/healthz`, the API under `/santaba/rest`, the sign-in pages and the web UI
/// under `/ui`.
pub fn app(state: Arc<AppState>) -> Router {
    use axum::routing::patch;
    use routes::{
        accesslogs, collectors, data, datasources, devices, ingest, roles, tokens, users,
    };
    let api = Router::new()
        .route(
            "/device/devices",
            get(devices::list_devices).post(devices::create_device),
        )
        .route(
            "/device/devices/{id}",
            get(devices::get_device)
                .patch(devices::patch_device)
                .put(devices::put_device)
                .delete(devices::delete_device),
        )
        .route(
            "/device/devices/{id}/properties",
            get(devices::list_device_properties).post(devices::add_device_property),
        )
        .route(
            "/device/devices/{id}/properties/{name}",
            get(devices::get_device_property)
                .put(devices::update_device_property)
                .patch(devices::update_device_property)
                .delete(devices::delete_device_property),
        )
        .route(
            "/device/groups",
            get(devices::list_groups).post(devices::create_group),
        )
        .route(
            "/device/groups/{id}",
            get(devices::get_group)
                .patch(devices::patch_group)
                .put(devices::put_group)
                .delete(devices::delete_group),
        )
        .route("/device/groups/{id}/devices", get(devices::group_devices))
        .route(
            "/device/devices/{id}/devicedatasources",
            get(data::device_datasources),
        )
        .route(
            "/device/devices/{id}/devicedatasources/{hds}/instances",
            get(data::instances),
        )
        .route(
            "/device/devices/{id}/devicedatasources/{hds}/instances/{inst}/data",
            get(data::instance_data),
        )
        .route(
            "/device/groups/{id}/properties",
            get(devices::list_group_properties).post(devices::add_group_property),
        )
        .route(
            "/device/groups/{id}/properties/{name}",
            get(devices::get_group_property)
                .put(devices::update_group_property)
                .patch(devices::update_group_property)
                .delete(devices::delete_group_property),
        )
        .route("/setting/admins", get(users::list).post(users::create))
        .route("/setting/admins/apitokens", get(tokens::list_all))
        .route(
            "/setting/admins/{id}",
            get(users::get)
                .patch(users::update)
                .put(users::update)
                .delete(users::delete),
        )
        .route(
            "/setting/admins/{id}/apitokens",
            get(tokens::list_for).post(tokens::create),
        )
        .route(
            "/setting/admins/{id}/apitokens/{token}",
            patch(tokens::update)
                .put(tokens::update)
                .delete(tokens::delete),
        )
        .route("/setting/roles", get(roles::list).post(roles::create))
        .route(
            "/setting/roles/{id}",
            get(roles::get)
                .patch(roles::update)
                .put(roles::update)
                .delete(roles::delete),
        )
        .route("/setting/accesslogs", get(accesslogs::list))
        .route("/setting/accesslogs/{id}", get(accesslogs::get))
        .route(
            "/setting/collector/collectors",
            get(collectors::list).post(collectors::create),
        )
        .route(
            "/setting/collector/collectors/{id}",
            get(collectors::get)
                .patch(collectors::update)
                .put(collectors::update)
                .delete(collectors::delete),
        )
        .route(
            "/setting/collector/collectors/{id}/registration",
            axum::routing::post(collectors::registration),
        )
        .route(
            "/setting/collector/groups",
            get(collectors::list_groups).post(collectors::create_group),
        )
        .route(
            "/setting/collector/groups/{id}",
            get(collectors::get_group).delete(collectors::delete_group),
        )
        .route(
            "/setting/datasources",
            get(datasources::list).post(datasources::create),
        )
        .route(
            "/setting/datasources/import",
            axum::routing::post(datasources::import),
        )
        .route(
            "/setting/datasources/{id}",
            get(datasources::get)
                .put(datasources::update)
                .patch(datasources::update)
                .delete(datasources::delete),
        )
        .route("/setting/datasources/{id}/export", get(datasources::export))
        .merge(routes::alerting::router())
        // Dashboards and widgets (`/dashboard/...`), behind the same gate.
        .merge(dashboards::routes::router())
        .merge(routes::token_migration::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::api_gate,
        ))
        .fallback(routes::not_found);
    let push = Router::new()
        .route(
            "/v2/metric/ingest",
            axum::routing::post(ingest::metric_ingest),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::api_gate,
        ))
        .fallback(routes::not_found);
    let prom = {
        use routes::prometheus as p;
        Router::new()
            .route("/query", get(p::query).post(p::query))
            .route("/query_range", get(p::query_range).post(p::query_range))
            .route("/series", get(p::series).post(p::series))
            .route("/labels", get(p::labels).post(p::labels))
            .route("/label/{name}/values", get(p::label_values))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                gate::api_gate,
            ))
            .fallback(routes::not_found)
    };
    Router::new()
        .route("/healthz", get(routes::healthz))
        .nest("/api/v1", prom)
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .nest("/santaba/rest", api)
        .nest("/rest", push)
        .route(
            "/api/collector/v1/register",
            axum::routing::post(collectors::protocol_register),
        )
        .route(
            "/api/collector/v1/heartbeat",
            axum::routing::post(collectors::protocol_heartbeat),
        )
        .route("/api/collector/v1/work", get(collectors::protocol_work))
        .route(
            "/api/collector/v1/results",
            axum::routing::post(collectors::protocol_results),
        )
        .merge(routes::compliance::router(state.clone()))
        .merge(signin_routes(state.clone()))
        // Dashboard pages (`/ui/dashboards/...`) and the wall screen (`/wall`).
        .merge(dashboards::pages::router(state.clone()))
        .merge(ui::routes(state.clone()))
        .fallback(ui::error::fallback)
        .with_state(state)
}

/// Sign-in, enrolment, account and sign-in administration: JSON under `/api`, pages at the
/// root. Each group sits behind the session gate for the session states it admits.
fn signin_routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    use axum::middleware::from_fn_with_state as mw;
    use axum::routing::{delete, post, put};
    use signin::{admin, api, gate, pages};
    let open = Router::new()
        .route("/api/auth/login", post(api::login))
        .route("/sso/oidc/{name}/login", get(signin::sso::oidc_login))
        .route("/sso/oidc/{name}/callback", get(signin::sso::oidc_callback))
        .route("/sso/saml/{name}/metadata", get(signin::sso::saml_metadata))
        .route("/sso/saml/{name}/login", get(signin::sso::saml_login))
        .route("/sso/saml/{name}/acs", post(signin::sso::saml_acs))
        .route("/login", get(pages::login_page).post(pages::login_submit));
    let factor = Router::new()
        .route("/api/auth/factor", post(api::factor))
        .route("/api/auth/challenge", post(api::challenge))
        .route(
            "/api/auth/webauthn/options",
            post(api::webauthn_signin_options),
        )
        .route_layer(mw(state.clone(), gate::api_factor));
    let factor_pages = Router::new()
        .route(
            "/login/factor",
            get(pages::factor_get).post(pages::factor_post),
        )
        .route("/login/factor/send", post(pages::factor_send))
        .route_layer(mw(state.clone(), gate::page_factor));
    let any = Router::new()
        .route("/api/auth/logout", post(api::logout))
        .route_layer(mw(state.clone(), gate::api_any));
    let any_pages = Router::new()
        .route("/logout", post(pages::logout))
        .route_layer(mw(state.clone(), gate::page_any));
    let password = Router::new()
        .route("/api/auth/password", post(api::password))
        .route_layer(mw(state.clone(), gate::api_password));
    let password_pages = Router::new()
        .route(
            "/account/password",
            get(pages::password_get).post(pages::password_post),
        )
        .route_layer(mw(state.clone(), gate::page_password));
    let enrol = Router::new()
        .route("/api/me", get(api::me))
        .route("/api/me/factors/totp", post(api::enrol_totp))
        .route("/api/me/factors/delivery", post(api::enrol_delivery))
        .route("/api/me/factors/{id}/confirm", post(api::confirm))
        .route("/api/me/factors/{id}", delete(api::remove))
        .route(
            "/api/me/factors/webauthn/options",
            post(api::webauthn_register_options),
        )
        .route("/api/me/factors/webauthn", post(api::webauthn_register))
        .route_layer(mw(state.clone(), gate::api_enrol));
    let enrol_pages = Router::new()
        .route("/enrol", get(pages::enrol_get))
        .route("/enrol/totp", post(pages::enrol_totp))
        .route("/enrol/delivery", post(pages::enrol_delivery))
        .route("/enrol/confirm", post(pages::enrol_confirm))
        .route("/enrol/webauthn", post(pages::enrol_webauthn))
        .route_layer(mw(state.clone(), gate::page_enrol));
    let active = Router::new()
        .route("/api/me/recovery-codes", post(api::recovery_codes))
        .route("/api/admin/two-factor", get(admin::list))
        .route("/api/admin/users/{id}/two-factor/reset", post(admin::reset))
        .route(
            "/api/admin/users/{id}/two-factor/deadline",
            put(admin::deadline),
        )
        .route(
            "/api/admin/support-access",
            post(admin::open_support).delete(admin::close_support),
        )
        .route(
            "/api/admin/settings",
            get(admin::get_settings).put(admin::put_settings),
        )
        .route_layer(mw(state.clone(), gate::api_active));
    let active_pages = Router::new()
        .route("/", get(pages::home))
        .route("/account", get(pages::account))
        .route_layer(mw(state, gate::page_active));
    open.merge(factor)
        .merge(factor_pages)
        .merge(any)
        .merge(any_pages)
        .merge(password)
        .merge(password_pages)
        .merge(enrol)
        .merge(enrol_pages)
        .merge(active)
        .merge(active_pages)
}

/// Where the portal keeps its data.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Data directory (SQLite file, master key).
    pub data_dir: PathBuf,
    /// Database URL; `None` means the SQLite file in the data directory.
    pub database_url: Option<String>,
    /// Master key file; `None` means `PALISADE_MASTER_KEY_FILE` or `<data-dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// The database URL in effect.
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("palisade.db").display()
            ),
        }
    }

    /// The master key file in effect.
    pub fn key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .or_else(|| std::env::var_os(keys::MASTER_KEY_ENV).map(PathBuf::from))
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// Errors opening the portal.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory.
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// The master key.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The store.
    #[error("database: {0}")]
    Store(#[from] palisade_store::StoreError),
    /// Bootstrap.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] error::ApiError),
}

/// Opens store and keys, migrates, bootstraps. Returns the first administrator's one-time
/// password when it was created by this call.
pub async fn open_portal(cfg: &StoreConfig) -> Result<(Portal, Option<Secret<String>>), OpenError> {
    create_private_dir(&cfg.data_dir).map_err(|e| OpenError::DataDir(cfg.data_dir.clone(), e))?;
    if cfg.database_url.is_none() {
        // The database holds password hashes and encrypted keys: readable by its owner only.
        let db = cfg.data_dir.join("palisade.db");
        if !db.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&db)
                .map_err(|e| OpenError::DataDir(cfg.data_dir.clone(), e))?;
        }
    }
    let (keys, created) = Keys::load_or_create(&cfg.key_file())?;
    if created {
        tracing::info!(file = %cfg.key_file().display(), "created a new master key file");
    }
    let store = palisade_store::open(&cfg.url(), keys.chain_key()).await?;
    let portal = Portal {
        store,
        keys: Arc::new(keys),
        clock: Arc::new(SystemClock),
        hashing: PasswordHashing::default(),
    };
    let boot = ops::bootstrap::run(&portal).await?;
    Ok((portal, boot.first_admin_password))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Everything else.
    pub options: AppOptions,
}

/// Errors serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// TLS configuration.
    #[error("TLS certificate or key: {0}")]
    Tls(std::io::Error),
    /// Listening or serving.
    #[error("listening on {0}: {1}")]
    Io(SocketAddr, std::io::Error),
}

/// Serves until SIGTERM or SIGINT, then finishes in-flight requests (up to 10 s) and
/// drains the audit writer.
pub async fn serve(portal: Portal, cfg: ServeConfig) -> Result<(), ServeError> {
    // The daily snapshot of the compliance scores.
    let daily_compliance = compliance::start_daily(portal.clone());
    let (state, audit_task) = AppState::new(portal, cfg.options.clone());
    let router = app(state.clone());
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        shutdown.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let result = match &cfg.tls {
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(ServeError::Tls)?;
            tracing::info!(listen = %cfg.listen, "palisade listening (https)");
            axum_server::bind_rustls(cfg.listen, tls)
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            tracing::info!(listen = %cfg.listen, "palisade listening (http)");
            axum_server::bind(cfg.listen)
                .handle(handle)
                .serve(service)
                .await
        }
    };
    daily_compliance.abort();
    drop(state);
    if let Some(t) = &cfg.options.tsdb {
        if let Err(e) = t.0.close().await {
            tracing::error!(error = %e, "closing the time-series store");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), audit_task).await;
    result.map_err(|e| ServeError::Io(cfg.listen, e))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
