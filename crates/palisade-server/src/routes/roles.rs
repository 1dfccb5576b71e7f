//! `/setting/roles`.

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::ops::roles;
use crate::{wire, AppState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::{ListEnvelope, RoleRequest};
use palisade_core::privilege::{Level, Need, Privilege, SettingObject};
use serde_json::{json, Value};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

async fn render(state: &AppState, role: &palisade_store::RoleRecord) -> Result<Value, ApiError> {
    let counts = state.portal.store.role_user_counts().await?;
    let n = counts
        .iter()
        .find(|(r, _)| *r == role.id)
        .map(|(_, n)| *n)
        .unwrap_or(0);
    Ok(wire::role(role, n))
}

/// The privileges a request would grant, validated (400 before any 403).
fn granted(req: &RoleRequest) -> Result<Vec<Privilege>, ApiError> {
    match &req.privileges {
        Some(p) => roles::parse_privileges(p.clone()),
        None => Ok(Vec::new()),
    }
}

/// `GET /setting/roles`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    let params = Params::parse(q.as_deref())?;
    let exclude_admin = params.flag("excludeAdmin");
    let roles = state.portal.store.list_roles().await?;
    let counts = state.portal.store.role_user_counts().await?;
    let items = roles
        .iter()
        .filter(|r| !(exclude_admin && r.is_administrator()))
        .map(|r| {
            wire::role(
                r,
                counts
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map(|(_, n)| *n)
                    .unwrap_or(0),
            )
        })
        .collect();
    params.list(items, wire::ROLE_REQUIRED)
}

/// `GET /setting/roles/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let id = id(&raw, "role")?;
    let role = state
        .portal
        .store
        .get_role(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("role {id} not found")))?;
    Params::parse(q.as_deref())?.one(render(&state, &role).await?, wire::ROLE_REQUIRED)
}

/// `POST /setting/roles`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let req: RoleRequest = parse_json(&body)?;
    caller.require_covers(&granted(&req)?)?;
    let role = roles::create(&state.portal, &caller.actor, req).await?;
    Ok(Json(render(&state, &role).await?))
}

/// `PATCH` and `PUT /setting/roles/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "role")?;
    let req: RoleRequest = parse_json(&body)?;
    caller.require_covers(&granted(&req)?)?;
    let role = roles::update(&state.portal, &caller.actor, id, req).await?;
    Ok(Json(render(&state, &role).await?))
}

/// `DELETE /setting/roles/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "role")?;
    roles::delete(&state.portal, &caller.actor, id).await?;
    Ok(Json(json!({})))
}
