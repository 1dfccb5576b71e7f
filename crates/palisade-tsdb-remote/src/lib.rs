//! The scale-out time-series backend: a [`TimeSeriesStore`] on any Prometheus-compatible
//! engine. Writes use Prometheus remote_write 1.0; reads use the Prometheus HTTP API only
//! (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`). VictoriaMetrics single node is the tested engine;
//! VictoriaMetrics cluster, Grafana Mimir, Thanos and Prometheus speak the same protocols.
//!
//! ```no_run
//! # async fn demo() -> Result<(), palisade_tsdb::TsdbError> {
//! use palisade_tsdb::{Sample, SeriesKey, TimeSeriesStore};
//! use palisade_tsdb_remote::{Auth, RemoteConfig, RemoteStore};
//! let store = RemoteStore::new(
//!     RemoteConfig::new("https://mimir.example/api/v1/push", "https://mimir.example/prometheus")
//!         .with_auth(Auth::Bearer("token".into()))
//!         .with_header("X-Scope-OrgID", "palisade"),
//! )?;
//! let key = SeriesKey::new("HostCPU_usage").with_label("device", "web-1");
//! store.append(&[(key, vec![Sample::new(1_700_000_000_000, 12.5)])]).await?;
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! [`RemoteConfig`]: the write URL and the read base URL separately (see its table for the
//! engines), an optional flush URL (VictoriaMetrics' `/internal/force_flush`), a bearer token
//! or basic auth ([`Auth`]), extra headers (the tenant: `X-Scope-OrgID`), the per-request
//! timeout, retries with exponential backoff, and the request sizes.
//! [`RemoteConfig::victoria_metrics`] fills in a single node from its base URL.
//!
//! VictoriaMetrics should run with
//!
//! * `-retentionPeriod` covering the timestamps written (it drops older samples silently,
//!   and samples more than two days in the future);
//! * `-dedup.minScrapeInterval=1ms`, so that rewriting a series at the same timestamp leaves
//!   one sample (without it both are kept and aggregates count both);
//! * `-search.latencyOffset=0s`, so that the newest points are not held back (30 s by
//!   default), and `-search.disableCache` where data is back-filled (every query also sends
//!   `nocache=1`).
//!
//! # Guarantees
//!
//! * **append** validates every key first (a bad key rejects the whole batch, nothing is
//!   sent), then sends requests of at most [`RemoteConfig::max_samples_per_request`] samples,
//!   one after the other. It returns when the engine has acknowledged (2xx) every request.
//!   A 4xx other than 429 fails at once; a connection error, timeout, 5xx or 429 is retried
//!   [`RemoteConfig::max_retries`] times with backoff, then fails. On failure the requests
//!   before the failing one are stored (the trait allows a partial batch).
//! * **Durability is the engine's.** VictoriaMetrics acknowledges a write once it is in its
//!   in-memory buffers; it reaches disk within about a second, so a crash of the engine can
//!   lose the last second of acknowledged samples. This is weaker than the embedded store,
//!   whose append returns only after the write-ahead log is synced. (Mimir and Thanos
//!   acknowledge after their own WAL and replication.)
//! * **Visibility.** VictoriaMetrics makes new samples searchable within about a second;
//!   [`TimeSeriesStore::flush`] calls the flush URL to make them searchable at once.
//! * **Reads** send the selector as PromQL (strings escaped; regexes checked locally with
//!   the embedded store's compiler, so a bad one is [`TsdbError::InvalidSelector`] here
//!   too). Raw ranges are one instant query of `{sel}[<end-start+1>ms]` at `end`. Step
//!   aggregations are `<agg>_over_time({sel}[<step>ms])` evaluated by `query_range` at
//!   `t + step - 1ms` and relabelled to `t`: the window `(t - 1ms, t + step - 1ms]` is the
//!   documented bucket `[t, t + step)`. As those functions drop the metric name, a selector
//!   that does not pin `__name__="..."` is first resolved to its metric names
//!   (`/api/v1/label/__name__/values?match[]=...`) and queried once per name. Long grids are
//!   split into requests of [`RemoteConfig::max_points_per_query`] points.
//!   [`TimeSeriesStore::query_grouped`] uses the trait's default (per-series buckets from
//!   the engine, grouped here).
//!
//! # Differences from the embedded store
//!
//! * Durability as above (acknowledged, not necessarily synced).
//! * Label names must be Prometheus label names (`[a-zA-Z_][a-zA-Z0-9_]*`): the embedded
//!   store accepts any non-empty name, this one refuses others with
//!   [`TsdbError::InvalidSeries`] (PromQL could not select them). Metric names are free.
//! * VictoriaMetrics does not store NaN (such samples are dropped; Prometheus' stale marker
//!   bit pattern even hides the series). It keeps values as decimals, not bit for bit: 12
//!   significant digits (1/3 reads back as 0.333333333333), `-0.0` as `0`, magnitudes below
//!   about 1e-300 as `0`; and the values of one block of a series share one decimal
//!   exponent, so a series mixing magnitudes far apart (1e300 next to 0.3) reads the small
//!   ones back as 0. Timestamps are kept to the millisecond, as here.
//! * Regular expressions: VictoriaMetrics' (and Prometheus 3's) matchers let `.` match a
//!   newline inside a label value; the embedded store's do not. Values without newlines
//!   behave the same.
//! * A rewrite of a series at the same timestamp leaves one of the written values, not
//!   necessarily the last one (VictoriaMetrics' deduplication does not know write order).
//! * Times are clamped to [`MIN_TIME_MS`]..=[`MAX_TIME_MS`] (1970 to 2100): engines do not
//!   keep samples before 1970. A Prometheus 2.x engine treats range windows as closed, so
//!   a sample exactly 1 ms before a bucket also counts in it (VictoriaMetrics and
//!   Prometheus 3 are exact).
//! * Engine limits apply: VictoriaMetrics returns at most 30 000 series from
//!   `/api/v1/series` and keeps at most 30 labels per series (`-search.maxSeries`,
//!   `-maxLabelsPerTimeseries`).
//! * No retention, rollups or compaction here: [`TimeSeriesStore::maintain`] does nothing,
//!   the engine's own settings decide. Reads keep working after
//!   [`TimeSeriesStore::close`]; appends fail with [`TsdbError::Closed`].

#![deny(missing_docs)]

mod config;
mod error;
mod promql;
mod remote_write;

pub use config::{Auth, RemoteConfig};
pub use error::RemoteError;

use async_trait::async_trait;
use palisade_tsdb::{
    Aggregation, Sample, Selector, SeriesKey, TimeSeriesStore, TsdbError, MAX_POINTS, METRIC_LABEL,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The earliest time a query asks the engine about (1970-01-01).
pub const MIN_TIME_MS: i64 = 0;
/// The latest time a query asks the engine about (2100-01-01).
pub const MAX_TIME_MS: i64 = 4_102_444_800_000;

use error::{FLUSH, LABELS, LABEL_VALUES, QUERY, QUERY_RANGE, SERIES};

/// A [`TimeSeriesStore`] on a Prometheus-compatible engine (see the crate docs).
#[derive(Debug)]
pub struct RemoteStore {
    config: RemoteConfig,
    client: reqwest::Client,
    /// `read_url` without a trailing slash.
    api: String,
    closed: AtomicBool,
    /// The flush URL answered that it does not exist: not asked again.
    flush_missing: AtomicBool,
}

impl RemoteStore {
    /// Checks the configuration (URLs, header names and values) and builds the HTTP client.
    /// No request is made.
    pub fn new(config: RemoteConfig) -> Result<RemoteStore, RemoteError> {
        for (what, url) in [
            ("write_url", Some(&config.write_url)),
            ("read_url", Some(&config.read_url)),
            ("flush_url", config.flush_url.as_ref()),
        ] {
            if let Some(url) = url {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| RemoteError::Config(format!("{what} {url:?}: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(RemoteError::Config(format!(
                        "{what} {url:?}: only http and https are supported"
                    )));
                }
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| RemoteError::Config(format!("header name {name:?}: {e}")))?;
            let v = HeaderValue::from_str(value)
                .map_err(|e| RemoteError::Config(format!("value of header {name}: {e}")))?;
            headers.append(n, v);
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| RemoteError::Config(format!("HTTP client: {e}")))?;
        Ok(RemoteStore {
            api: config.read_url.trim_end_matches('/').to_owned(),
            config,
            client,
            closed: AtomicBool::new(false),
            flush_missing: AtomicBool::new(false),
        })
    }

    /// The configuration this store was built with.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.client.request(method, url);
        match &self.config.auth {
            None => req,
            Some(Auth::Bearer(token)) => req.bearer_auth(token),
            Some(Auth::Basic { username, password }) => req.basic_auth(username, Some(password)),
        }
    }

    /// Sends a request (rebuilt by `build` for every attempt) with the retry policy and
    /// returns the 2xx body.
    async fn send(
        &self,
        what: &'static str,
        url: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, RemoteError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let retry = attempt <= self.config.max_retries;
            let outcome = match build().send().await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(body) if status.is_success() => return Ok(body.to_vec()),
                        Ok(body) => {
                            let transient = status.is_server_error()
                                || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                            let err = RemoteError::Status {
                                what,
                                url: url.to_owned(),
                                status: status.as_u16(),
                                attempts: attempt,
                                body: excerpt(&body),
                            };
                            if !transient {
                                return Err(err);
                            }
                            err
                        }
                        Err(source) => RemoteError::Transport {
                            what,
                            url: url.to_owned(),
                            attempts: attempt,
                            source,
                        },
                    }
                }
                Err(source) => RemoteError::Transport {
                    what,
                    url: url.to_owned(),
                    attempts: attempt,
                    source,
                },
            };
            if !retry {
                return Err(outcome);
            }
            let wait = self
                .config
                .retry_backoff
                .saturating_mul(1u32 << (attempt - 1).min(16));
            tracing::warn!(error = %outcome, ?wait, "remote store: retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// A Prometheus API call: form-encoded POST (or GET with a query string), `data` of a
    /// `status: success` answer.
    async fn api_call(
        &self,
        what: &'static str,
        path: &str,
        params: &[(&str, String)],
        post: bool,
    ) -> Result<Value, RemoteError> {
        let url = format!("{}{path}", self.api);
        let body = self
            .send(what, &url, || {
                if post {
                    self.request(reqwest::Method::POST, &url).form(params)
                } else {
                    self.request(reqwest::Method::GET, &url).query(params)
                }
            })
            .await?;
        let decode = |detail: String| RemoteError::Decode {
            what,
            url: url.clone(),
            detail,
        };
        let mut v: Value =
            serde_json::from_slice(&body).map_err(|e| decode(format!("not JSON: {e}")))?;
        if v.get("status").and_then(Value::as_str) != Some("success") {
            return Err(decode(excerpt(&body)));
        }
        Ok(v.get_mut("data").map(Value::take).unwrap_or(Value::Null))
    }

    /// Raw samples with `lo <= ts <= hi` of the series `sel` (PromQL) selects.
    async fn raw(
        &self,
        sel: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError> {
        let (lo, hi) = (start.max(MIN_TIME_MS), end.min(MAX_TIME_MS));
        if lo > hi {
            return Ok(Vec::new());
        }
        let params = [
            ("query", format!("{sel}[{}ms]", hi - lo + 1)),
            ("time", promql::time_param(hi)),
            ("nocache", "1".to_owned()),
        ];
        let url = format!("{}/api/v1/query", self.api);
        let data = self.api_call(QUERY, "/api/v1/query", &params, true).await?;
        let mut out = Vec::new();
        for (key, samples) in parse_matrix(QUERY, &url, data, None)? {
            let mut samples: Vec<Sample> = samples
                .into_iter()
                .filter(|s| s.ts_ms >= lo && s.ts_ms <= hi)
                .collect();
            samples.sort_by_key(|s| s.ts_ms); // stable: of equal timestamps the last stays
            let mut dedup: Vec<Sample> = Vec::with_capacity(samples.len());
            for s in samples {
                match dedup.last_mut() {
                    Some(last) if last.ts_ms == s.ts_ms => *last = s,
                    _ => dedup.push(s),
                }
            }
            if !dedup.is_empty() {
                out.push((key, dedup));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Step aggregation per the [`Aggregation`] bucket rule (see the crate docs).
    async fn aggregate(
        &self,
        selector: &Selector,
        start: i64,
        end: i64,
        step: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError> {
        let n = bucket_count(start, end, step)?;
        let func = match agg {
            Aggregation::Avg => "avg_over_time",
            Aggregation::Min => "min_over_time",
            Aggregation::Max => "max_over_time",
            Aggregation::Sum => "sum_over_time",
            Aggregation::Count => "count_over_time",
            Aggregation::Raw => return Err(TsdbError::Internal("raw is not a step".into())),
        };
        let Some(sel) = promql::selector(selector)? else {
            return Ok(Vec::new());
        };
        // Buckets entirely outside MIN_TIME_MS..=MAX_TIME_MS hold nothing.
        let (s, st) = (start as i128, step as i128);
        let k_first = ((MIN_TIME_MS as i128 - s - st + 1).max(0) + st - 1) / st;
        let k_last = (MAX_TIME_MS as i128 - s)
            .min((n - 1) as i128 * st)
            .div_euclid(st);
        if k_first > k_last || k_last < 0 {
            return Ok(Vec::new());
        }
        let (k_first, k_last) = (k_first as i64, k_last as i64);
        // (metric name, its selector): one query per metric, as `*_over_time` drops names.
        let per_metric: Vec<(String, String)> = match promql::pinned_metric(selector) {
            Some(name) => vec![(name.to_owned(), sel)],
            None => {
                let params = [
                    ("match[]", sel.clone()),
                    // 1 ms at least: VictoriaMetrics reads `start=0` as "not given".
                    ("start", promql::time_param((start + k_first * step).max(1))),
                    ("end", promql::time_param(start + k_last * step + step - 1)),
                ];
                let path = format!("/api/v1/label/{METRIC_LABEL}/values");
                let data = self.api_call(LABEL_VALUES, &path, &params, false).await?;
                let mut out = Vec::new();
                for name in strings(LABEL_VALUES, &path, data)? {
                    if let Some(sel_n) =
                        promql::selector(&selector.clone().eq(METRIC_LABEL, &name))?
                    {
                        out.push((name, sel_n));
                    }
                }
                out
            }
        };
        let url = format!("{}/api/v1/query_range", self.api);
        let chunk = self.config.max_points_per_query.max(1) as i64;
        let mut merged: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
        for (name, sel_n) in per_metric {
            let query = format!("{func}({sel_n}[{step}ms])");
            let mut k0 = k_first;
            while k0 <= k_last {
                let k1 = (k0 + chunk - 1).min(k_last);
                let params = [
                    ("query", query.clone()),
                    ("start", promql::time_param(start + k0 * step + step - 1)),
                    ("end", promql::time_param(start + k1 * step + step - 1)),
                    ("step", promql::time_param(step)),
                    ("nocache", "1".to_owned()),
                ];
                let data = self
                    .api_call(QUERY_RANGE, "/api/v1/query_range", &params, true)
                    .await?;
                for (key, points) in parse_matrix(QUERY_RANGE, &url, data, Some(&name))? {
                    let lo = start + k0 * step;
                    let hi = start + k1 * step;
                    let pts = points.into_iter().filter_map(|p| {
                        let t = p.ts_ms - step + 1;
                        (t >= lo && t <= hi && (t - start) % step == 0)
                            .then_some(Sample::new(t, p.value))
                    });
                    merged.entry(key).or_default().extend(pts);
                }
                k0 = k1 + 1;
            }
        }
        Ok(merged
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, mut s)| {
                s.sort_by_key(|p| p.ts_ms);
                s.dedup_by_key(|p| p.ts_ms);
                (k, s)
            })
            .collect())
    }
}

/// The number of points of a step grid, with the embedded store's checks and messages.
fn bucket_count(start: i64, end: i64, step: i64) -> Result<i64, TsdbError> {
    if end < start {
        return Err(TsdbError::InvalidQuery("end is before start".into()));
    }
    if step <= 0 {
        return Err(TsdbError::InvalidQuery("step must be positive".into()));
    }
    let n = ((end as i128 - start as i128) / step as i128) + 1;
    if n > MAX_POINTS as i128 {
        return Err(TsdbError::InvalidQuery(format!(
            "{n} points per series exceed the limit of {MAX_POINTS}; use a larger step"
        )));
    }
    Ok(n as i64)
}

/// The first 512 characters of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(512).collect();
    if text.chars().nth(512).is_some() {
        s.push('…');
    }
    s.trim().to_owned()
}

fn decode_err(what: &'static str, url: &str, detail: impl Into<String>) -> RemoteError {
    RemoteError::Decode {
        what,
        url: url.to_owned(),
        detail: detail.into(),
    }
}

/// A series key from a Prometheus label set; `metric` overrides `__name__` (functions drop it).
fn key_of(
    what: &'static str,
    url: &str,
    labels: &Value,
    metric: Option<&str>,
) -> Result<SeriesKey, RemoteError> {
    let map = labels
        .as_object()
        .ok_or_else(|| decode_err(what, url, "a label set is not an object"))?;
    let mut key = SeriesKey::new(metric.unwrap_or_default());
    for (name, value) in map {
        let value = value
            .as_str()
            .ok_or_else(|| decode_err(what, url, format!("label {name} is not a string")))?;
        if name == METRIC_LABEL {
            if metric.is_none() {
                key.metric = value.to_owned();
            }
        } else {
            key.labels.insert(name.clone(), value.to_owned());
        }
    }
    Ok(key)
}

/// The series of a `resultType: matrix` answer.
fn parse_matrix(
    what: &'static str,
    url: &str,
    data: Value,
    metric: Option<&str>,
) -> Result<Vec<(SeriesKey, Vec<Sample>)>, RemoteError> {
    if data.get("resultType").and_then(Value::as_str) != Some("matrix") {
        return Err(decode_err(what, url, "the result is not a matrix"));
    }
    let Some(result) = data.get("result").and_then(Value::as_array) else {
        return Err(decode_err(what, url, "no result array"));
    };
    let mut out = Vec::with_capacity(result.len());
    for series in result {
        let key = key_of(
            what,
            url,
            series.get("metric").unwrap_or(&Value::Null),
            metric,
        )?;
        let values = series
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut samples = Vec::with_capacity(values.len());
        for pair in values {
            let parsed = pair.as_array().and_then(|p| match p.as_slice() {
                [t, v] => Some(Sample::new(
                    promql::ms_from_secs(t)?,
                    promql::parse_value(v)?,
                )),
                _ => None,
            });
            samples.push(parsed.ok_or_else(|| decode_err(what, url, format!("bad point {pair}")))?);
        }
        out.push((key, samples));
    }
    Ok(out)
}

/// A JSON array of strings, sorted and deduplicated.
fn strings(what: &'static str, url: &str, data: Value) -> Result<Vec<String>, RemoteError> {
    let Value::Array(items) = data else {
        return Err(decode_err(what, url, "not an array"));
    };
    let mut out = items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(decode_err(what, url, format!("not a string: {other}"))),
        })
        .collect::<Result<Vec<String>, RemoteError>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The `start`/`end` parameters covering everything (VictoriaMetrics reads a `start` of 0
/// as "not given" and then looks at the last day only, hence 1 ms).
fn whole_range() -> [(&'static str, String); 2] {
    [
        ("start", promql::time_param(MIN_TIME_MS.max(1))),
        ("end", promql::time_param(MAX_TIME_MS)),
    ]
}

#[async_trait]
impl TimeSeriesStore for RemoteStore {
    async fn append(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<(), TsdbError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        for (key, _) in batch {
            promql::validate_key(key)?;
        }
        let url = &self.config.write_url;
        let batcher = remote_write::Batcher::new(
            batch,
            self.config.max_samples_per_request,
            self.config.max_request_bytes,
        );
        let mut encoder = snap::raw::Encoder::new();
        for (body, _samples) in batcher {
            let compressed = encoder
                .compress_vec(&body)
                .map_err(|e| TsdbError::Codec(format!("snappy: {e}")))?;
            drop(body);
            self.send(error::WRITE, url, || {
                self.request(reqwest::Method::POST, url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(compressed.clone())
            })
            .await?;
        }
        Ok(())
    }

    async fn query_range(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError> {
        if agg != Aggregation::Raw {
            return self
                .aggregate(selector, start_ms, end_ms, step_ms, agg)
                .await;
        }
        let sel = promql::selector(selector)?;
        if end_ms < start_ms {
            return Err(TsdbError::InvalidQuery("end is before start".into()));
        }
        match sel {
            Some(sel) => self.raw(&sel, start_ms, end_ms).await,
            None => Ok(Vec::new()),
        }
    }

    async fn series(&self, selector: &Selector) -> Result<Vec<SeriesKey>, TsdbError> {
        let Some(sel) = promql::selector(selector)? else {
            return Ok(Vec::new());
        };
        let [start, end] = whole_range();
        let params = [("match[]", sel), start, end];
        let url = format!("{}/api/v1/series", self.api);
        let data = self
            .api_call(SERIES, "/api/v1/series", &params, true)
            .await?;
        let Value::Array(items) = data else {
            return Err(decode_err(SERIES, &url, "not an array").into());
        };
        let mut keys = items
            .iter()
            .map(|labels| key_of(SERIES, &url, labels, None))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn label_names(&self) -> Result<Vec<String>, TsdbError> {
        let params = whole_range();
        let data = self
            .api_call(LABELS, "/api/v1/labels", &params, true)
            .await?;
        Ok(strings(LABELS, "/api/v1/labels", data)?)
    }

    async fn label_values(&self, name: &str) -> Result<Vec<String>, TsdbError> {
        if !promql::is_label_name(name) {
            return Ok(Vec::new()); // No stored series has such a label (appends refuse it).
        }
        let path = format!("/api/v1/label/{name}/values");
        let data = self
            .api_call(LABEL_VALUES, &path, &whole_range(), false)
            .await?;
        Ok(strings(LABEL_VALUES, &path, data)?)
    }

    async fn flush(&self) -> Result<(), TsdbError> {
        let Some(url) = &self.config.flush_url else {
            return Ok(());
        };
        if self.flush_missing.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self
            .send(FLUSH, url, || self.request(reqwest::Method::GET, url))
            .await
        {
            Ok(_) => Ok(()),
            // Prometheus, Mimir: 404; VictoriaMetrics' vmselect: 400 "unsupported path".
            Err(RemoteError::Status {
                status: 400 | 404 | 405,
                ..
            }) => {
                tracing::debug!(%url, "remote store: the engine has no flush endpoint");
                self.flush_missing.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn close(&self) -> Result<(), TsdbError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn configuration_is_checked() {
        assert!(RemoteStore::new(RemoteConfig::victoria_metrics("http://127.0.0.1:1/")).is_ok());
        let s = RemoteStore::new(RemoteConfig::victoria_metrics("http://h:8428/")).unwrap();
        assert_eq!(s.config().write_url, "http://h:8428/api/v1/write");
        assert_eq!(s.api, "http://h:8428");
        assert!(matches!(
            RemoteStore::new(RemoteConfig::new("not a url", "http://h")),
            Err(RemoteError::Config(_))
        ));
        assert!(matches!(
            RemoteStore::new(RemoteConfig::new("ftp://h/w", "http://h")),
            Err(RemoteError::Config(_))
        ));
        assert!(matches!(
            RemoteStore::new(RemoteConfig::new("http://h/w", "http://h").with_header("a b", "x")),
            Err(RemoteError::Config(_))
        ));
        let debug = format!(
            "{:?}",
            RemoteConfig::new("http://h/w", "http://h")
                .with_auth(Auth::Basic {
                    username: "u".into(),
                    password: "secret".into()
                })
                .with_header("X-Token", "hidden")
        );
        assert!(
            !debug.contains("secret") && !debug.contains("hidden"),
            "{debug}"
        );
    }

    #[test]
    fn errors_map_to_tsdb_errors() {
        let status = |what, status| RemoteError::Status {
            what,
            url: "u".into(),
            status,
            attempts: 1,
            body: "b".into(),
        };
        assert!(matches!(
            TsdbError::from(status(QUERY, 400)),
            TsdbError::InvalidQuery(_)
        ));
        assert!(matches!(
            TsdbError::from(status(error::WRITE, 400)),
            TsdbError::Backend(_)
        ));
        assert!(matches!(
            TsdbError::from(status(QUERY, 503)),
            TsdbError::Backend(_)
        ));
        assert!(matches!(
            TsdbError::from(status(FLUSH, 400)),
            TsdbError::Backend(_)
        ));
    }

    #[test]
    fn bucket_grid_checks() {
        assert_eq!(bucket_count(0, 59_999, 60_000).unwrap(), 1);
        assert!(bucket_count(1, 0, 1).is_err());
        assert!(bucket_count(0, 1, 0).is_err());
        assert!(bucket_count(0, i64::MAX, 1).is_err());
    }
}
