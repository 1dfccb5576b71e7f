//! `/setting/datasources`: read, write, import and export datasource definitions.

use super::{id, Params};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::monitor::datasources as ops;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::privilege::{Level, Need, SettingObject};
use palisade_store::inventory::DatasourceDoc;
use palisade_store::objects::{self, ObjectQuery};
use serde_json::{json, Value};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::Datasources, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::Datasources, Level::Write);

async fn load(state: &AppState, id: i64) -> Result<DatasourceDoc, ApiError> {
    objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("datasource {id} not found")))
}

fn body_text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))
}

/// The definition from an API body (LM clients send id and read-only fields back).
fn definition_from_body(body: &Bytes) -> Result<palisade_core::datasource::DataSource, ApiError> {
    let mut v: Value = crate::error::parse_json(body)?;
    if let Some(o) = v.as_object_mut() {
        for k in ["id", "builtin", "version", "createdOn", "updatedOn"] {
            o.remove(k);
        }
    }
    ops::parse(&v.to_string())
}

/// `GET /setting/datasources`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    let all: Vec<DatasourceDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Params::parse(q.as_deref())?.list(all.iter().map(ops::render).collect(), ops::REQUIRED)
}

/// `GET /setting/datasources/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let d = load(&state, id(&raw, "datasource")?).await?;
    Params::parse(q.as_deref())?.one(ops::render(&d), ops::REQUIRED)
}

/// `GET /setting/datasources/{id}/export`: the file.
pub async fn export(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(READ)?;
    let d = load(&state, id(&raw, "datasource")?).await?;
    let text = ops::export(&d)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// `POST /setting/datasources`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let ds = definition_from_body(&body)?;
    let d = ops::create(&state.portal, &caller.actor, ds).await?;
    state.alerts.invalidate_datasources();
    Ok(Json(ops::render(&d)))
}

/// `POST /setting/datasources/import`: an exported file; creates or replaces by name.
pub async fn import(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let ds = ops::parse(body_text(&body)?)?;
    let d = ops::import(&state.portal, &caller.actor, ds).await?;
    state.alerts.invalidate_datasources();
    Ok(Json(ops::render(&d)))
}

/// `PUT`/`PATCH /setting/datasources/{id}`: the whole definition.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "datasource")?;
    load(&state, id).await?;
    let ds = definition_from_body(&body)?;
    let d = ops::replace(&state.portal, &caller.actor, id, ds).await?;
    state.alerts.invalidate_datasources();
    Ok(Json(ops::render(&d)))
}

/// `DELETE /setting/datasources/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "datasource")?;
    let d = load(&state, id).await?;
    let audit = caller.actor.event(
        state.portal.now(),
        "datasource.delete",
        format!("deleted datasource {id} `{}`", d.name),
    );
    objects::delete::<DatasourceDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    state.alerts.invalidate_datasources();
    Ok(Json(json!({})))
}
