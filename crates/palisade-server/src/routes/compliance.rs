//! `/api/compliance`: the compliance report (JSON or CSV) and the history of its scores,
//! behind the same API gate as `/santaba/rest` (LMv1, Bearer or a session), for holders of
//! `setting:compliance:read`. See `docs/compliance.md`.

use super::Params;
use crate::auth::Caller;
use crate::compliance;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use palisade_core::compliance::{date_text, to_csv, to_text, DAY_MS};
use palisade_core::privilege::{Level, Need, SettingObject};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::Compliance, Level::Read);

/// The routes, behind the API gate.
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/compliance", get(report))
        .route("/api/compliance/history", get(history).post(snapshot))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::gate::api_gate,
        ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Text,
}

fn format(params: &Params) -> Result<Format, ApiError> {
    match params.get("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("text") => Ok(Format::Text),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown format `{other}` (use json, csv or text)"
        ))),
    }
}

fn file(body: String, content_type: &'static str, name: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/compliance[?format=json|csv|text]`: the report now (a snapshot is stored when
/// the last one is more than a day old).
pub async fn report(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    let params = Params::parse(q.as_deref())?;
    let format = format(&params)?;
    let report = compliance::report(&state.portal).await?;
    let day = date_text(state.portal.now());
    Ok(match format {
        Format::Json => {
            let mut resp = Json(report).into_response();
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            resp
        }
        Format::Csv => file(
            to_csv(&report),
            "text/csv; charset=utf-8",
            format!("palisade-compliance-{day}.csv"),
        ),
        Format::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            to_text(&report),
        )
            .into_response(),
    })
}

/// `GET /api/compliance/history[?days=N][&format=json|csv|text]`: the snapshots, oldest
/// first.
pub async fn history(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    let params = Params::parse(q.as_deref())?;
    let format = format(&params)?;
    let since = match params.get("days") {
        None | Some("") => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) if (1..=36_500).contains(&n) => {
                Some(state.portal.now().saturating_sub(n.saturating_mul(DAY_MS)))
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "`days` must be a whole number from 1 to 36500".into(),
                ))
            }
        },
    };
    let all = compliance::history(&state.portal, since).await?;
    let day = date_text(state.portal.now());
    Ok(match format {
        Format::Json => Json(compliance::history_json(&all)).into_response(),
        Format::Csv => file(
            compliance::history_csv(&all),
            "text/csv; charset=utf-8",
            format!("palisade-compliance-history-{day}.csv"),
        ),
        Format::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            compliance::history_text(&all),
        )
            .into_response(),
    })
}

/// `POST /api/compliance/history`: takes a snapshot now (on demand) and returns it.
pub async fn snapshot(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(READ)?;
    let report = compliance::compute(&state.portal).await?;
    let taken = compliance::take_snapshot(&state.portal, &report, "on-demand", false)
        .await?
        .ok_or_else(|| ApiError::Internal("the on-demand snapshot was not stored".into()))?;
    Ok(Json(compliance::snapshot_json(&taken)))
}
