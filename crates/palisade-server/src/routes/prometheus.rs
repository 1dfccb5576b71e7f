//! The Prometheus-compatible query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/{name}/values`), so Grafana can use Palisade as a Prometheus data source. It sits
//! behind the same API gate as `/santaba/rest` (LMv1 or `Authorization: Bearer pal_…`,
//! rate limits, audit) and needs `host_group:*:read`: series of every device are visible.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_core::privilege::{Level, Need};
use palisade_promql::api;
use palisade_promql::eval::EvalOptions;
use std::sync::Arc;

fn params(query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    out.extend(form_urlencoded::parse(body).into_owned());
    out
}

fn json(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn value(status: u16, body: serde_json::Value) -> Response {
    json(status, body.to_string())
}

fn allowed(caller: &Caller) -> Result<(), ApiError> {
    caller.require(Need::HostGroup(None, Level::Read))
}

/// `GET`/`POST /api/v1/query`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    allowed(&caller)?;
    let p = params(q.as_deref(), &body);
    let (s, b) = api::query_text(
        state.tsdb()?.as_ref(),
        &p,
        state.portal.now(),
        &EvalOptions::default(),
    )
    .await;
    Ok(json(s, b))
}

/// `GET`/`POST /api/v1/query_range`.
pub async fn query_range(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    allowed(&caller)?;
    let p = params(q.as_deref(), &body);
    let (s, b) = api::query_range_text(state.tsdb()?.as_ref(), &p, &EvalOptions::default()).await;
    Ok(json(s, b))
}

/// `GET`/`POST /api/v1/series`.
pub async fn series(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    allowed(&caller)?;
    let (s, b) = api::series(state.tsdb()?.as_ref(), &params(q.as_deref(), &body)).await;
    Ok(value(s, b))
}

/// `GET`/`POST /api/v1/labels`.
pub async fn labels(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    allowed(&caller)?;
    let (s, b) = api::labels(state.tsdb()?.as_ref(), &params(q.as_deref(), &body)).await;
    Ok(value(s, b))
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    allowed(&caller)?;
    let (s, b) = api::label_values(state.tsdb()?.as_ref(), &name, &params(q.as_deref(), b"")).await;
    Ok(value(s, b))
}
