//! The Prometheus HTTP API (`/api/v1/...`) as functions from decoded parameters to
//! `(HTTP status, JSON body)`, so the HTTP layer stays a thin wrapper.
//!
//! Every endpoint function takes the request's parameters as decoded `(name, value)` pairs
//! — the URL query string and, for `POST`, the form body, in any order; a repeated name
//! (`match[]`) appears once per value — and answers the status code and the JSON body:
//!
//! ```json
//! {"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up"},"value":[1700000000,"1"]}]}}
//! {"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": ..."}
//! ```
//!
//! | endpoint | function |
//! |---|---|
//! | `GET/POST /api/v1/query` | [`query`] (or [`query_text`]) |
//! | `GET/POST /api/v1/query_range` | [`query_range`] (or [`query_range_text`]) |
//! | `GET/POST /api/v1/series` | [`series`] |
//! | `GET/POST /api/v1/labels` | [`labels`] |
//! | `GET /api/v1/label/<name>/values` | [`label_values`] |
//!
//! The `_text` variants answer the same body already serialised, which is much cheaper for
//! large matrices than building a `serde_json::Value` (about 1 s per 10 M points instead of
//! gigabytes of small allocations); send it with `Content-Type: application/json`.
//!
//! Times are Unix seconds (`1700000000`, `1700000000.123`) or RFC 3339
//! (`2023-11-14T22:13:20Z`, with fraction and offset); durations and steps are seconds
//! (`15`, `0.5`) or PromQL durations (`15s`, `1m`, `1h30m`). `/series`, `/labels` and
//! `/label/<name>/values` ignore `start` and `end` (they are validated, then the answer
//! covers every series the store knows); `limit` truncates their answers. The `timeout`
//! parameter of the query endpoints lowers [`EvalOptions::timeout`].

use crate::eval::{self, EvalError, EvalOptions};
use crate::parser::{self, is_label_name};
use crate::value::{format_value, Value};
use palisade_tsdb::{Labels, SeriesKey, TimeSeriesStore, TsdbError, METRIC_LABEL};
use serde_json::{json, Map, Number, Value as Json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The Prometheus API's error classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A parameter or the query is malformed (HTTP 400).
    BadData,
    /// The query is valid but cannot be executed (HTTP 422), e.g. too many samples.
    Execution,
    /// The query took too long (HTTP 503).
    Timeout,
    /// The store failed (HTTP 500).
    Internal,
}

impl ErrorKind {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadData => 400,
            ErrorKind::Execution => 422,
            ErrorKind::Timeout => 503,
            ErrorKind::Internal => 500,
        }
    }
}

/// An API error: its class and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The class (decides `errorType` and the status).
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }

    /// The `(status, body)` answer.
    pub fn response(&self) -> (u16, Json) {
        error_response(self.kind, &self.message)
    }
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> Self {
        let kind = match &e {
            EvalError::Store(TsdbError::InvalidQuery(_) | TsdbError::InvalidSelector(_)) => {
                ErrorKind::BadData
            }
            EvalError::Store(_) => ErrorKind::Internal,
            EvalError::TooManySteps { .. }
            | EvalError::InvalidRange(_)
            | EvalError::RangeQueryType(_) => ErrorKind::BadData,
            EvalError::TooManySamples { .. } | EvalError::Execution(_) => ErrorKind::Execution,
            EvalError::Timeout => ErrorKind::Timeout,
        };
        ApiError {
            kind,
            message: e.to_string(),
        }
    }
}

impl From<TsdbError> for ApiError {
    fn from(e: TsdbError) -> Self {
        ApiError::from(EvalError::Store(e))
    }
}

/// An error body: `{"status":"error","errorType":...,"error":...}` with its status code.
pub fn error_response(kind: ErrorKind, message: &str) -> (u16, Json) {
    (
        kind.status(),
        json!({"status": "error", "errorType": kind.as_str(), "error": message}),
    )
}

/// A success body: `{"status":"success","data":data}` (status 200).
pub fn success_response(data: Json) -> (u16, Json) {
    (200, json!({"status": "success", "data": data}))
}

fn respond(result: Result<Json, ApiError>) -> (u16, Json) {
    match result {
        Ok(data) => success_response(data),
        Err(e) => e.response(),
    }
}

fn respond_text(result: Result<Value, ApiError>) -> (u16, String) {
    match result {
        Ok(value) => {
            let mut out = String::with_capacity(64);
            out.push_str("{\"status\":\"success\",\"data\":");
            write_value_json(&value, &mut out);
            out.push('}');
            (200, out)
        }
        Err(e) => {
            let (status, body) = e.response();
            (status, body.to_string())
        }
    }
}

// ---- parameters ----

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn required<'p>(params: &'p [(String, String)], name: &str) -> Result<&'p str, ApiError> {
    param(params, name)
        .ok_or_else(|| ApiError::bad_data(format!("invalid parameter \"{name}\": missing")))
}

fn invalid(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("invalid parameter \"{name}\": {why}"))
}

/// Parses an API time: Unix seconds with an optional fraction (rounded to milliseconds)
/// or an RFC 3339 timestamp. Returns milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(ApiError::bad_data(format!(
                "cannot parse {s:?} to a valid timestamp"
            )));
        }
        let whole = secs.trunc();
        let frac_ms = ((secs - whole) * 1000.0).round();
        let ms = whole * 1000.0 + frac_ms;
        if ms.abs() >= 9.2e18 {
            return Err(ApiError::bad_data(format!(
                "timestamp {s:?} is out of range"
            )));
        }
        return Ok(ms as i64);
    }
    parse_rfc3339(s)
        .ok_or_else(|| ApiError::bad_data(format!("cannot parse {s:?} to a valid timestamp")))
}

fn digits(s: &str, from: usize, len: usize) -> Option<i64> {
    let d = s.get(from..from + len)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    let (hour, minute, second) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month).ok()?.checked_sub(1)?)?;
    if day < 1 || day > max_day || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let frac = s.get(start..i)?;
        if frac.is_empty() {
            return None;
        }
        let mut ms_digits: String = frac.chars().take(3).collect();
        while ms_digits.len() < 3 {
            ms_digits.push('0');
        }
        frac_ms = ms_digits.parse().ok()?;
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b.get(i + 3) == Some(&b':') => {
            let (oh, om) = (digits(s, i + 1, 2)?, digits(s, i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + frac_ms)
}

/// Parses an API duration: seconds (`15`, `0.5`) or a PromQL duration (`15s`, `1h30m`).
/// Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        let ms = (secs * 1000.0).round();
        if !ms.is_finite() || ms.abs() >= 9.2e18 {
            return Err(ApiError::bad_data(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(ms as i64);
    }
    match parser::parse_duration(s) {
        Some(Ok(ms)) => Ok(ms),
        _ => Err(ApiError::bad_data(format!(
            "cannot parse {s:?} to a valid duration"
        ))),
    }
}

fn options_with_timeout(
    params: &[(String, String)],
    opts: &EvalOptions,
) -> Result<EvalOptions, ApiError> {
    let mut opts = opts.clone();
    if let Some(t) = param(params, "timeout") {
        let ms = parse_duration(t).map_err(|e| invalid("timeout", e))?;
        if ms <= 0 {
            return Err(invalid("timeout", "must be positive"));
        }
        let t = Duration::from_millis(ms.unsigned_abs());
        opts.timeout = Some(opts.timeout.map_or(t, |cur| cur.min(t)));
    }
    Ok(opts)
}

// ---- JSON ----

/// A timestamp as the API writes it: Unix seconds, a whole number when possible.
pub fn time_json(ms: i64) -> Json {
    if ms % 1000 == 0 {
        Json::Number(Number::from(ms / 1000))
    } else {
        Number::from_f64(ms as f64 / 1000.0).map_or(Json::Null, Json::Number)
    }
}

fn point_json(ms: i64, v: f64) -> Json {
    Json::Array(vec![time_json(ms), Json::String(format_value(v))])
}

fn labels_json(labels: &Labels) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect::<Map<String, Json>>(),
    )
}

fn key_json(key: &SeriesKey) -> Json {
    let mut m: Map<String, Json> = key
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    m.insert(METRIC_LABEL.to_owned(), Json::String(key.metric.clone()));
    Json::Object(m)
}

/// Writes a timestamp as [`time_json`] does (`1700000000`, `1700000000.123`, `-1.5`).
fn write_time(ms: i64, out: &mut String) {
    use std::fmt::Write;
    let abs = ms.unsigned_abs();
    let sign = if ms < 0 { "-" } else { "" };
    let (secs, frac) = (abs / 1000, abs % 1000);
    let _ = if frac == 0 {
        write!(out, "{sign}{secs}")
    } else if frac % 100 == 0 {
        write!(out, "{sign}{secs}.{}", frac / 100)
    } else if frac % 10 == 0 {
        write!(out, "{sign}{secs}.{:02}", frac / 10)
    } else {
        write!(out, "{sign}{secs}.{frac:03}")
    };
}

/// Writes a JSON string literal.
fn write_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_point(ms: i64, v: f64, out: &mut String) {
    use std::fmt::Write;
    out.push('[');
    write_time(ms, out);
    out.push_str(",\"");
    if v.is_finite() {
        // Same digits as format_value, without the temporary String.
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&format_value(v));
    }
    out.push_str("\"]");
}

fn write_labels(labels: &Labels, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(k, out);
        out.push(':');
        write_str(v, out);
    }
    out.push('}');
}

/// Writes the `data` object of a query answer as JSON text, equal to [`value_json`]'s.
pub fn write_value_json(value: &Value, out: &mut String) {
    out.push_str("{\"resultType\":\"");
    out.push_str(value.result_type());
    out.push_str("\",\"result\":");
    match value {
        Value::Scalar { t_ms, value } => write_point(*t_ms, *value, out),
        Value::String { t_ms, value } => {
            out.push('[');
            write_time(*t_ms, out);
            out.push(',');
            write_str(value, out);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.reserve(samples.len() * 64);
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&s.labels, out);
                out.push_str(",\"value\":");
                write_point(s.t_ms, s.value, out);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            let points: usize = series.iter().map(|s| s.samples.len()).sum();
            out.reserve(points.saturating_mul(24) + series.len() * 64);
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&s.labels, out);
                out.push_str(",\"values\":[");
                for (j, p) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    write_point(p.ts_ms, p.value, out);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// The `data` object of a query answer: `{"resultType":..., "result":...}`.
pub fn value_json(value: &Value) -> Json {
    let result = match value {
        Value::Scalar { t_ms, value } => point_json(*t_ms, *value),
        Value::String { t_ms, value } => {
            Json::Array(vec![time_json(*t_ms), Json::String(value.clone())])
        }
        Value::Vector(samples) => Json::Array(
            samples
                .iter()
                .map(|s| json!({"metric": labels_json(&s.labels), "value": point_json(s.t_ms, s.value)}))
                .collect(),
        ),
        Value::Matrix(series) => Json::Array(
            series
                .iter()
                .map(|s| {
                    let values: Vec<Json> = s
                        .samples
                        .iter()
                        .map(|p| point_json(p.ts_ms, p.value))
                        .collect();
                    json!({"metric": labels_json(&s.labels), "values": values})
                })
                .collect(),
        ),
    };
    json!({"resultType": value.result_type(), "result": result})
}

// ---- endpoints ----

/// `/api/v1/query`: parameters `query`, `time` (default `now_ms`), `timeout`.
pub async fn query(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    now_ms: i64,
    opts: &EvalOptions,
) -> (u16, Json) {
    respond(
        query_inner(store, params, now_ms, opts)
            .await
            .map(|v| value_json(&v)),
    )
}

/// [`query`] with the body already serialised (the same JSON, written directly: much
/// faster and smaller in memory than a `serde_json::Value` for large results).
pub async fn query_text(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    now_ms: i64,
    opts: &EvalOptions,
) -> (u16, String) {
    respond_text(query_inner(store, params, now_ms, opts).await)
}

async fn query_inner(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    now_ms: i64,
    opts: &EvalOptions,
) -> Result<Value, ApiError> {
    let q = required(params, "query")?;
    let time = match param(params, "time") {
        Some(t) => parse_time(t).map_err(|e| invalid("time", e))?,
        None => now_ms,
    };
    let opts = options_with_timeout(params, opts)?;
    let expr = parser::parse(q).map_err(|e| invalid("query", e))?;
    Ok(eval::instant_with(store, &expr, time, &opts).await?)
}

/// `/api/v1/query_range`: parameters `query`, `start`, `end`, `step`, `timeout`.
pub async fn query_range(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    opts: &EvalOptions,
) -> (u16, Json) {
    respond(
        query_range_inner(store, params, opts)
            .await
            .map(|v| value_json(&v)),
    )
}

/// [`query_range`] with the body already serialised (recommended for the HTTP layer: a
/// day of 10k series is 14 M points, which as `serde_json::Value`s take gigabytes).
pub async fn query_range_text(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    opts: &EvalOptions,
) -> (u16, String) {
    respond_text(query_range_inner(store, params, opts).await)
}

async fn query_range_inner(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
    opts: &EvalOptions,
) -> Result<Value, ApiError> {
    let q = required(params, "query")?;
    let start = parse_time(required(params, "start")?).map_err(|e| invalid("start", e))?;
    let end = parse_time(required(params, "end")?).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration(required(params, "step")?).map_err(|e| invalid("step", e))?;
    if step <= 0 {
        return Err(invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let opts = options_with_timeout(params, opts)?;
    if (i128::from(end) - i128::from(start)) / i128::from(step) > opts.max_steps as i128 {
        return Err(ApiError::bad_data(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            opts.max_steps
        )));
    }
    let expr = parser::parse(q).map_err(|e| invalid("query", e))?;
    Ok(eval::range_with(store, &expr, start, end, step, &opts).await?)
}

/// Validates `start`/`end` (ignored otherwise) and parses every `match[]`.
fn matchers(params: &[(String, String)]) -> Result<Vec<palisade_tsdb::Selector>, ApiError> {
    for name in ["start", "end"] {
        if let Some(t) = param(params, name) {
            parse_time(t).map_err(|e| invalid(name, e))?;
        }
    }
    params
        .iter()
        .filter(|(k, _)| k == "match[]")
        .map(|(_, v)| {
            parser::parse_selector(v)
                .map(|vs| vs.selector())
                .map_err(|e| invalid("match[]", e))
        })
        .collect()
}

fn limit(params: &[(String, String)]) -> Result<Option<usize>, ApiError> {
    match param(params, "limit") {
        None => Ok(None),
        Some(l) => match l.trim().parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) if n > 0 => Ok(usize::try_from(n).ok()),
            _ => Err(invalid("limit", "must be a non-negative integer")),
        },
    }
}

async fn matched_series(
    store: &dyn TimeSeriesStore,
    selectors: &[palisade_tsdb::Selector],
) -> Result<BTreeSet<SeriesKey>, ApiError> {
    let mut keys = BTreeSet::new();
    for s in selectors {
        keys.extend(store.series(s).await?);
    }
    Ok(keys)
}

/// `/api/v1/series`: every series matching any `match[]` (at least one is required).
pub async fn series(store: &dyn TimeSeriesStore, params: &[(String, String)]) -> (u16, Json) {
    respond(series_inner(store, params).await)
}

async fn series_inner(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
) -> Result<Json, ApiError> {
    let selectors = matchers(params)?;
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let limit = limit(params)?;
    let keys = matched_series(store, &selectors).await?;
    Ok(Json::Array(
        keys.iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(key_json)
            .collect(),
    ))
}

/// `/api/v1/labels`: label names (`__name__` included), of the series matching any
/// `match[]`, or of all series.
pub async fn labels(store: &dyn TimeSeriesStore, params: &[(String, String)]) -> (u16, Json) {
    respond(labels_inner(store, params).await)
}

async fn labels_inner(
    store: &dyn TimeSeriesStore,
    params: &[(String, String)],
) -> Result<Json, ApiError> {
    let selectors = matchers(params)?;
    let limit = limit(params)?;
    let names: Vec<String> = if selectors.is_empty() {
        store.label_names().await?
    } else {
        let mut names = BTreeSet::new();
        for key in matched_series(store, &selectors).await? {
            names.insert(METRIC_LABEL.to_owned());
            names.extend(key.labels.into_keys());
        }
        names.into_iter().collect()
    };
    Ok(Json::Array(
        names
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(Json::String)
            .collect(),
    ))
}

/// `/api/v1/label/<name>/values`: the values of one label (`__name__`: metric names), of
/// the series matching any `match[]`, or of all series. `name` is the decoded path segment.
pub async fn label_values(
    store: &dyn TimeSeriesStore,
    name: &str,
    params: &[(String, String)],
) -> (u16, Json) {
    respond(label_values_inner(store, name, params).await)
}

async fn label_values_inner(
    store: &dyn TimeSeriesStore,
    name: &str,
    params: &[(String, String)],
) -> Result<Json, ApiError> {
    if !is_label_name(name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let selectors = matchers(params)?;
    let limit = limit(params)?;
    let values: Vec<String> = if selectors.is_empty() {
        store.label_values(name).await?
    } else {
        let keys = matched_series(store, &selectors).await?;
        keys.iter()
            .filter_map(|k| k.label(name).map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    Ok(Json::Array(
        values
            .into_iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(Json::String)
            .collect(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.123").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("-1.5").unwrap(), -1_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5Z").unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20.123456789+01:00").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(parse_time("1970-01-01T00:00:00-00:30").unwrap(), 1_800_000);
        assert_eq!(parse_time("2000-02-29T00:00:00Z").unwrap(), 951_782_400_000);
        for bad in [
            "",
            "abc",
            "NaN",
            "inf",
            "1e300",
            "2023-11-14",
            "2023-02-30T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T25:00:00Z",
            "2023-11-14T22:13:20.Z",
            "２023-11-14T22:13:20Z",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15").unwrap(), 15_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("15s").unwrap(), 15_000);
        assert_eq!(parse_duration("1m").unwrap(), 60_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("1e300").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn text_writer_matches_value_builder() {
        use crate::value::{InstantSample, RangeSeries};
        use palisade_tsdb::Sample;
        let labels: Labels = [
            ("__name__".to_string(), "up".to_string()),
            ("quote".to_string(), "a\"b\\c\n\u{1}é".to_string()),
        ]
        .into_iter()
        .collect();
        let values = [
            Value::Scalar {
                t_ms: 1_700_000_000_120,
                value: 0.1 + 0.2,
            },
            Value::Scalar {
                t_ms: -1_500,
                value: f64::NEG_INFINITY,
            },
            Value::String {
                t_ms: 5,
                value: "x\"y".into(),
            },
            Value::Vector(vec![]),
            Value::Vector(vec![
                InstantSample {
                    labels: labels.clone(),
                    t_ms: 1_000,
                    value: f64::NAN,
                },
                InstantSample {
                    labels: Labels::new(),
                    t_ms: 1_001,
                    value: 1e21,
                },
            ]),
            Value::Matrix(vec![
                RangeSeries {
                    labels: labels.clone(),
                    samples: vec![
                        Sample::new(0, 1.0),
                        Sample::new(10, -0.5),
                        Sample::new(999, 3.0),
                    ],
                },
                RangeSeries {
                    labels: Labels::new(),
                    samples: vec![Sample::new(-10, f64::INFINITY)],
                },
            ]),
        ];
        for v in &values {
            let mut text = String::new();
            write_value_json(v, &mut text);
            let parsed: Json = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, value_json(v), "{text}");
        }
    }

    #[test]
    fn json_times() {
        assert_eq!(time_json(1_700_000_000_000).to_string(), "1700000000");
        assert_eq!(time_json(1_700_000_000_123).to_string(), "1700000000.123");
        assert_eq!(time_json(-1_500).to_string(), "-1.5");
    }
}
