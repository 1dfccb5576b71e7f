//! `/santaba/rest/dashboard/...`: dashboards, widgets, widget data, widget tokens and the
//! wall view's data, behind the API gate (LMv1, Bearer, widget token or browser session).

use super::data;
use super::model::{render_dashboard, render_widget};
use super::ops::{self, Viewer};
use super::tokens::{self, IssueRequest, Revoke};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::routes::{id, Params};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use palisade_api::ListEnvelope;
use palisade_core::privilege::Level;
use palisade_store::TokenRecord;
use serde_json::{json, Value};
use std::sync::Arc;

/// Fields the SDK's `Dashboard` model requires.
const DASHBOARD_REQUIRED: &[&str] = &["id", "name"];
/// Fields the SDK's `Widget` models require.
const WIDGET_REQUIRED: &[&str] = &[
    "id",
    "name",
    "type",
    "dashboardId",
    "dsiId",
    "graphId",
    "items",
];

/// Seconds between refreshes of a wall screen.
pub const REFRESH_SECONDS: i64 = 30;

/// The routes, to be merged into the API router (before its gate layer).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard/dashboards", get(list).post(create))
        .route(
            "/dashboard/dashboards/{id}",
            get(get_one).patch(patch).put(put).delete(delete),
        )
        .route("/dashboard/dashboards/{id}/widgets", get(widgets_of))
        .route(
            "/dashboard/dashboards/{id}/widgettokens",
            get(list_tokens).post(issue_token),
        )
        .route(
            "/dashboard/dashboards/{id}/widgettokens/{token}",
            axum::routing::patch(update_token).delete(delete_token),
        )
        .route("/dashboard/widgets", get(all_widgets).post(create_widget))
        .route(
            "/dashboard/widgets/{id}",
            get(get_widget)
                .patch(patch_widget)
                .put(put_widget)
                .delete(delete_widget),
        )
        .route("/dashboard/widgets/{id}/data", get(widget_data))
        .route("/dashboard/wall", get(wall))
}

async fn viewer(state: &AppState, caller: &Caller) -> Result<Viewer, ApiError> {
    Viewer::from_caller(state, caller).await
}

/// `GET /dashboard/dashboards`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let items = ops::list(&state, &v)
        .await?
        .iter()
        .map(|d| render_dashboard(d, ops::permission(&v, d)))
        .collect();
    Params::parse(q.as_deref())?.list(items, DASHBOARD_REQUIRED)
}

/// `POST /dashboard/dashboards`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let body: Value = parse_json(&body)?;
    let d = ops::create(&state, &v, &body).await?;
    Ok(Json(render_dashboard(&d, ops::permission(&v, &d))))
}

/// `GET /dashboard/dashboards/{id}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let d = ops::get(&state, &v, id(&raw, "dashboard")?, Level::Read).await?;
    Params::parse(q.as_deref())?.one(
        render_dashboard(&d, ops::permission(&v, &d)),
        DASHBOARD_REQUIRED,
    )
}

async fn change(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let v = viewer(state, caller).await?;
    let body: Value = parse_json(body)?;
    let d = ops::update(state, &v, id(raw, "dashboard")?, &body).await?;
    Ok(Json(render_dashboard(&d, ops::permission(&v, &d))))
}

/// `PATCH /dashboard/dashboards/{id}`.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change(&state, &caller, &raw, &body).await
}

/// `PUT /dashboard/dashboards/{id}` (the fields given replace the stored ones).
pub async fn put(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change(&state, &caller, &raw, &body).await
}

/// `DELETE /dashboard/dashboards/{id}`: with its widgets and widget tokens.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    ops::delete(&state, &v, id(&raw, "dashboard")?).await?;
    Ok(Json(json!({})))
}

/// `GET /dashboard/dashboards/{id}/widgets`.
pub async fn widgets_of(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let (d, widgets) = ops::widgets_of(&state, &v, id(&raw, "dashboard")?).await?;
    let estate = state.estate.get(&state.portal).await?;
    let perm = ops::permission(&v, &d);
    let items = widgets
        .iter()
        .map(|w| render_widget(w, &estate, perm))
        .collect();
    Params::parse(q.as_deref())?.list(items, WIDGET_REQUIRED)
}

/// `GET /dashboard/widgets`: widgets of every dashboard the caller sees.
pub async fn all_widgets(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let estate = state.estate.get(&state.portal).await?;
    let items = ops::all_widgets(&state, &v)
        .await?
        .iter()
        .map(|(d, w)| render_widget(w, &estate, ops::permission(&v, d)))
        .collect();
    Params::parse(q.as_deref())?.list(items, WIDGET_REQUIRED)
}

/// `POST /dashboard/widgets`.
pub async fn create_widget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let body: Value = parse_json(&body)?;
    let w = ops::create_widget(&state, &v, &body).await?;
    let estate = state.estate.get(&state.portal).await?;
    Ok(Json(render_widget(&w, &estate, "write")))
}

/// `GET /dashboard/widgets/{id}`.
pub async fn get_widget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let (d, w) = ops::widget(&state, &v, id(&raw, "widget")?, Level::Read).await?;
    let estate = state.estate.get(&state.portal).await?;
    Params::parse(q.as_deref())?.one(
        render_widget(&w, &estate, ops::permission(&v, &d)),
        WIDGET_REQUIRED,
    )
}

async fn change_widget(
    state: &AppState,
    caller: &Caller,
    raw: &str,
    body: &[u8],
    replace: bool,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(state, caller).await?;
    let body: Value = parse_json(body)?;
    let w = ops::update_widget(state, &v, id(raw, "widget")?, &body, replace).await?;
    let estate = state.estate.get(&state.portal).await?;
    Ok(Json(render_widget(&w, &estate, "write")))
}

/// `PATCH /dashboard/widgets/{id}`: the fields present change.
pub async fn patch_widget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change_widget(&state, &caller, &raw, &body, false).await
}

/// `PUT /dashboard/widgets/{id}`: the body is the whole widget.
pub async fn put_widget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    change_widget(&state, &caller, &raw, &body, true).await
}

/// `DELETE /dashboard/widgets/{id}`.
pub async fn delete_widget(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    ops::delete_widget(&state, &v, id(&raw, "widget")?).await?;
    Ok(Json(json!({})))
}

/// `GET /dashboard/widgets/{id}/data`: what the widget shows now.
pub async fn widget_data(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let v = viewer(&state, &caller).await?;
    let (_, w) = ops::widget(&state, &v, id(&raw, "widget")?, Level::Read).await?;
    let estate = state.estate.get(&state.portal).await?;
    let alerts = data::active_alerts(&state).await?;
    let d = data::compute(&state, &v, &estate, &w, state.portal.now(), &alerts).await;
    Ok(no_store(Json(data::render(&w, &d)).into_response()))
}

/// `GET /dashboard/wall[?id=N]`: the dashboard rendered for a wall screen (HTML with SVG
/// graphs, in JSON). A widget token needs no `id`: it has one dashboard.
pub async fn wall(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let v = viewer(&state, &caller).await?;
    let params = Params::parse(q.as_deref())?;
    let dashboard = match (v.widget_dashboard, params.get("id")) {
        (Some(d), None) => d,
        (Some(d), Some(raw)) if raw == d.to_string() => d,
        (Some(d), Some(_)) => {
            return Err(ApiError::Forbidden(format!(
                "a widget token opens only dashboard {d}"
            )))
        }
        (None, Some(raw)) => id(raw, "dashboard")?,
        (None, None) => {
            return Err(ApiError::BadRequest(
                "name the dashboard: /dashboard/wall?id=N".into(),
            ))
        }
    };
    let (d, widgets) = ops::widgets_of(&state, &v, dashboard).await?;
    let html = super::pages::wall_html(&state, &v, &d, widgets).await?;
    Ok(no_store(
        Json(json!({
            "id": d.id,
            "name": d.name,
            "refreshSeconds": REFRESH_SECONDS,
            "generatedOn": state.portal.now() / 1000,
            "html": html,
        }))
        .into_response(),
    ))
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

async fn render_tokens(state: &AppState, tokens: &[TokenRecord]) -> Result<Vec<Value>, ApiError> {
    let users = state.portal.store.list_users().await?;
    Ok(tokens
        .iter()
        .map(|t| {
            let owner = users
                .iter()
                .find(|u| u.id == t.user_id)
                .map(|u| u.username.as_str())
                .unwrap_or_default();
            crate::wire::token(t, owner, &[])
        })
        .collect())
}

/// `GET /dashboard/dashboards/{id}/widgettokens`: all of them with `dashboard:<id>:manage`,
/// else the caller's own.
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let list = tokens::list_for(&state, &v, id(&raw, "dashboard")?).await?;
    Params::parse(q.as_deref())?.list(render_tokens(&state, &list).await?, &["id"])
}

/// `POST /dashboard/dashboards/{id}/widgettokens` `{note, adminId?, expiresOn?}`: the secret
/// is in the answer once (`accessKey`, `widgetToken`), with the wall screen's address.
pub async fn issue_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let body: Value = parse_json(&body)?;
    let note = match body.get("note") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::BadRequest("`note` must be a string".into())),
    };
    let owner_id = body.get("adminId").and_then(Value::as_i64);
    let expires_on = body
        .get("expiresOn")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .map(|s| s.saturating_mul(1000));
    let issued = tokens::issue(
        &state,
        &v,
        IssueRequest {
            dashboard_id: id(&raw, "dashboard")?,
            owner_id,
            note,
            expires_on,
        },
    )
    .await?;
    Ok(Json(issued_json(&state, &issued).await?))
}

/// The answer to a widget token's creation: the token, its secret once, the wall address.
pub async fn issued_json(
    state: &AppState,
    issued: &tokens::IssuedToken,
) -> Result<Value, ApiError> {
    let mut v = render_tokens(state, std::slice::from_ref(&issued.record))
        .await?
        .pop()
        .unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("accessKey".into(), json!(issued.secret.expose()));
        o.insert("widgetToken".into(), json!(issued.secret.expose()));
        o.insert(
            "wallPath".into(),
            json!(format!("/wall#{}", issued.secret.expose())),
        );
    }
    Ok(v)
}

/// `PATCH /dashboard/dashboards/{id}/widgettokens/{tokenId}` `{"status": 1}`: disables it.
pub async fn update_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, raw_token)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    let body: Value = parse_json(&body)?;
    if body.get("status").and_then(Value::as_i64) != Some(palisade_store::TOKEN_DISABLED) {
        return Err(ApiError::BadRequest(
            "only `{\"status\": 1}` (disable) is accepted here; enable a token through /setting/admins/{id}/apitokens/{tokenId}".into(),
        ));
    }
    let t = tokens::revoke(
        &state,
        &v,
        id(&raw, "dashboard")?,
        id(&raw_token, "widget token")?,
        Revoke::Disable,
    )
    .await?;
    let list: Vec<TokenRecord> = t.into_iter().collect();
    Ok(Json(
        render_tokens(&state, &list)
            .await?
            .pop()
            .unwrap_or(Value::Null),
    ))
}

/// `DELETE /dashboard/dashboards/{id}/widgettokens/{tokenId}`.
pub async fn delete_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, raw_token)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = viewer(&state, &caller).await?;
    tokens::revoke(
        &state,
        &v,
        id(&raw, "dashboard")?,
        id(&raw_token, "widget token")?,
        Revoke::Delete,
    )
    .await?;
    Ok(Json(json!({})))
}
