//! `/alert/alerts`, `/sdt/sdts` (and the per-device and per-group SDT lists), escalation
//! chains, alert rules and threshold overrides (`alertsettings`). Thin adapters over
//! [`crate::monitor::alerts`], [`crate::monitor::sdt`] and [`crate::monitor::notify`].

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::monitor::devices::Owner;
use crate::monitor::notify::{CHAIN_REQUIRED, RULE_REQUIRED};
use crate::monitor::sdt::{Scope, SDT_REQUIRED};
use crate::monitor::{alerts, notify, sdt};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use palisade_api::ListEnvelope;
use serde_json::{json, Value};
use std::sync::Arc;

/// The SDK's `Alert` model requires nothing; `id` is always kept.
const ALERT_REQUIRED: &[&str] = &["id"];

/// The alerting routes, mounted under `/santaba/rest` behind the API gate.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/alert/alerts", get(list_alerts))
        .route("/alert/alerts/{id}", get(get_alert))
        .route("/alert/alerts/{id}/ack", post(ack_alert))
        .route("/alert/alerts/{id}/note", post(note_alert))
        .route("/sdt/sdts", get(list_sdts).post(create_sdt))
        .route(
            "/sdt/sdts/{id}",
            get(get_sdt)
                .patch(patch_sdt)
                .put(put_sdt)
                .delete(delete_sdt),
        )
        .route("/device/devices/{id}/sdts", get(device_sdts))
        .route("/device/groups/{id}/sdts", get(group_sdts))
        .route(
            "/device/devices/{id}/alertsettings",
            get(get_device_settings).put(put_device_settings),
        )
        .route(
            "/device/groups/{id}/alertsettings",
            get(get_group_settings).put(put_group_settings),
        )
        .route("/setting/alert/chains", get(list_chains).post(create_chain))
        .route(
            "/setting/alert/chains/{id}",
            get(get_chain)
                .patch(update_chain)
                .put(update_chain)
                .delete(delete_chain),
        )
        .route("/setting/alert/rules", get(list_rules).post(create_rule))
        .route(
            "/setting/alert/rules/{id}",
            get(get_rule)
                .patch(update_rule)
                .put(update_rule)
                .delete(delete_rule),
        )
}

type St = State<Arc<AppState>>;

// ---------------------------------------------------------------- alerts

/// `GET /alert/alerts`: active alerts unless `filter` mentions `cleared`.
async fn list_alerts(
    State(state): St,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let items = alerts::list_alerts(&state, &caller, params.get("filter")).await?;
    params.list(items, ALERT_REQUIRED)
}

/// `GET /alert/alerts/{id}`.
async fn get_alert(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let item = alerts::get_alert(&state, &caller, &raw).await?;
    Params::parse(q.as_deref())?.one(item, ALERT_REQUIRED)
}

/// `POST /alert/alerts/{id}/ack` with `{"ackComment": "..."}`.
async fn ack_alert(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(alerts::ack(&state, &caller, &raw, &body).await?))
}

/// `POST /alert/alerts/{id}/note` with `{"ackComment": "..."}`.
async fn note_alert(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(alerts::note(&state, &caller, &raw, &body).await?))
}

// ---------------------------------------------------------------- SDTs

/// `GET /sdt/sdts`.
async fn list_sdts(
    State(state): St,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    params.list(sdt::list(&state, &caller, Scope::All).await?, SDT_REQUIRED)
}

/// `POST /sdt/sdts`.
async fn create_sdt(
    State(state): St,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(sdt::create(&state, &caller, &body).await?))
}

/// `GET /sdt/sdts/{id}` (`R_12`).
async fn get_sdt(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let item = sdt::get(&state, &caller, &raw).await?;
    Params::parse(q.as_deref())?.one(item, SDT_REQUIRED)
}

/// `PATCH /sdt/sdts/{id}`.
async fn patch_sdt(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(
        sdt::update(&state, &caller, &raw, &body, false).await?,
    ))
}

/// `PUT /sdt/sdts/{id}`.
async fn put_sdt(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(sdt::update(&state, &caller, &raw, &body, true).await?))
}

/// `DELETE /sdt/sdts/{id}`.
async fn delete_sdt(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    sdt::delete(&state, &caller, &raw).await?;
    Ok(Json(json!({})))
}

/// `GET /device/devices/{id}/sdts`.
async fn device_sdts(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let id = id(&raw, "device")?;
    let params = Params::parse(q.as_deref())?;
    params.list(
        sdt::list(&state, &caller, Scope::Device(id)).await?,
        SDT_REQUIRED,
    )
}

/// `GET /device/groups/{id}/sdts`.
async fn group_sdts(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let id = id(&raw, "device group")?;
    let params = Params::parse(q.as_deref())?;
    params.list(
        sdt::list(&state, &caller, Scope::Group(id)).await?,
        SDT_REQUIRED,
    )
}

// ---------------------------------------------------------------- threshold overrides

/// `GET /device/devices/{id}/alertsettings`.
async fn get_device_settings(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    Ok(Json(
        alerts::get_settings(&state, &caller, Owner::Device(id)).await?,
    ))
}

/// `PUT /device/devices/{id}/alertsettings`.
async fn put_device_settings(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let body: Value = parse_json(&body)?;
    Ok(Json(
        alerts::put_settings(&state, &caller, Owner::Device(id), &body).await?,
    ))
}

/// `GET /device/groups/{id}/alertsettings`.
async fn get_group_settings(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    Ok(Json(
        alerts::get_settings(&state, &caller, Owner::Group(id)).await?,
    ))
}

/// `PUT /device/groups/{id}/alertsettings`.
async fn put_group_settings(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let body: Value = parse_json(&body)?;
    Ok(Json(
        alerts::put_settings(&state, &caller, Owner::Group(id), &body).await?,
    ))
}

// ---------------------------------------------------------------- chains

/// `GET /setting/alert/chains`.
async fn list_chains(
    State(state): St,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    params.list(notify::list_chains(&state, &caller).await?, CHAIN_REQUIRED)
}

/// `POST /setting/alert/chains`.
async fn create_chain(
    State(state): St,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(notify::create_chain(&state, &caller, &body).await?))
}

/// `GET /setting/alert/chains/{id}`.
async fn get_chain(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "escalation chain")?;
    let item = notify::get_chain(&state, &caller, id).await?;
    Params::parse(q.as_deref())?.one(item, CHAIN_REQUIRED)
}

/// `PATCH`/`PUT /setting/alert/chains/{id}`.
async fn update_chain(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "escalation chain")?;
    let body: Value = parse_json(&body)?;
    Ok(Json(
        notify::update_chain(&state, &caller, id, &body).await?,
    ))
}

/// `DELETE /setting/alert/chains/{id}`.
async fn delete_chain(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "escalation chain")?;
    notify::delete_chain(&state, &caller, id).await?;
    Ok(Json(json!({})))
}

// ---------------------------------------------------------------- rules

/// `GET /setting/alert/rules`.
async fn list_rules(
    State(state): St,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    params.list(notify::list_rules(&state, &caller).await?, RULE_REQUIRED)
}

/// `POST /setting/alert/rules`.
async fn create_rule(
    State(state): St,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    Ok(Json(notify::create_rule(&state, &caller, &body).await?))
}

/// `GET /setting/alert/rules/{id}`.
async fn get_rule(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "alert rule")?;
    let item = notify::get_rule(&state, &caller, id).await?;
    Params::parse(q.as_deref())?.one(item, RULE_REQUIRED)
}

/// `PATCH`/`PUT /setting/alert/rules/{id}`.
async fn update_rule(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "alert rule")?;
    let body: Value = parse_json(&body)?;
    Ok(Json(notify::update_rule(&state, &caller, id, &body).await?))
}

/// `DELETE /setting/alert/rules/{id}`.
async fn delete_rule(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "alert rule")?;
    notify::delete_rule(&state, &caller, id).await?;
    Ok(Json(json!({})))
}
