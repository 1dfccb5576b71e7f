//! Configuration of a [`crate::RemoteStore`].

use std::time::Duration;

/// Credentials sent with every request as the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(<username>:<password>)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Where and how to reach a Prometheus-compatible engine.
///
/// | engine | `write_url` | `read_url` |
/// |---|---|---|
/// | VictoriaMetrics single node | `http://vm:8428/api/v1/write` | `http://vm:8428` |
/// | VictoriaMetrics cluster | `http://vminsert:8480/insert/0/prometheus/api/v1/write` | `http://vmselect:8481/select/0/prometheus` |
/// | Grafana Mimir | `http://mimir/api/v1/push` | `http://mimir/prometheus` |
/// | Thanos | `http://receive:19291/api/v1/receive` | `http://query:10902` |
/// | Prometheus (`--web.enable-remote-write-receiver`) | `http://prom:9090/api/v1/write` | `http://prom:9090` |
///
/// Multi-tenant engines take the tenant in a header (`X-Scope-OrgID` for Mimir, Cortex
/// and Thanos): put it in [`RemoteConfig::headers`].
#[derive(Clone)]
pub struct RemoteConfig {
    /// The remote_write endpoint (full URL).
    pub write_url: String,
    /// The base of the Prometheus HTTP API: requests go to `<read_url>/api/v1/query` etc.
    pub read_url: String,
    /// Called by [`palisade_tsdb::TimeSeriesStore::flush`] to make written data searchable
    /// at once (VictoriaMetrics: `<base>/internal/force_flush`). `None`: flush does nothing.
    /// An engine answering that the path does not exist (404, 405, or 400 as vmselect does)
    /// is remembered and not asked again.
    pub flush_url: Option<String>,
    /// Credentials for every request (writes, reads, flush).
    pub auth: Option<Auth>,
    /// Extra headers for every request, e.g. `("X-Scope-OrgID", "tenant-1")`.
    pub headers: Vec<(String, String)>,
    /// The time limit of one HTTP request (connect, send, answer), per attempt.
    pub timeout: Duration,
    /// Retries after a connection error, a timeout, a 5xx or a 429 answer (other 4xx are
    /// not retried). Reads and writes both retry (both are idempotent).
    pub max_retries: u32,
    /// The wait before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
    /// The most samples in one remote_write request (Prometheus sends 2 000–10 000).
    pub max_samples_per_request: usize,
    /// The target size of one uncompressed remote_write body (a single sample with its labels
    /// may exceed it). VictoriaMetrics accepts 32 MiB by default.
    pub max_request_bytes: usize,
    /// The most points per series that one `query_range` request asks for; longer grids are
    /// split. Prometheus refuses more than 11 000, VictoriaMetrics more than 30 000.
    pub max_points_per_query: usize,
}

impl RemoteConfig {
    /// A configuration with separate write and read endpoints and the defaults (30 s timeout,
    /// 3 retries from 200 ms, 10 000 samples or 4 MiB per write, 10 000 points per query, no
    /// flush URL, no auth).
    pub fn new(write_url: impl Into<String>, read_url: impl Into<String>) -> Self {
        RemoteConfig {
            write_url: write_url.into(),
            read_url: read_url.into(),
            flush_url: None,
            auth: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_backoff: Duration::from_millis(200),
            max_samples_per_request: 10_000,
            max_request_bytes: 4 << 20,
            max_points_per_query: 10_000,
        }
    }

    /// A VictoriaMetrics single node at `base_url` (e.g. `http://127.0.0.1:8428`): writes to
    /// `/api/v1/write`, reads from `/api/v1/...`, flushes with `/internal/force_flush`.
    pub fn victoria_metrics(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        RemoteConfig {
            flush_url: Some(format!("{base}/internal/force_flush")),
            ..RemoteConfig::new(format!("{base}/api/v1/write"), base)
        }
    }

    /// Sets the credentials.
    #[must_use]
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Adds a header sent with every request.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may carry secrets too: only their names are shown.
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("RemoteConfig")
            .field("write_url", &self.write_url)
            .field("read_url", &self.read_url)
            .field("flush_url", &self.flush_url)
            .field("auth", &self.auth)
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_samples_per_request", &self.max_samples_per_request)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_points_per_query", &self.max_points_per_query)
            .finish()
    }
}
