//! `/setting/admins`.

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::ops::users::{self, UpdateMode};
use crate::{wire, AppState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::{AdminRequest, ListEnvelope};
use palisade_core::privilege::{Level, Need, SettingObject};
use serde_json::{json, Value};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

async fn render(state: &AppState, user: &palisade_store::UserRecord) -> Result<Value, ApiError> {
    let roles = state.portal.store.list_roles().await?;
    let tokens = state.portal.store.list_tokens(Some(user.id)).await?;
    let two_fa = crate::signin::has_factor(&state.portal, user.id).await?;
    Ok(wire::user(user, &roles, &tokens, two_fa))
}

/// Refuses role assignments that would hand out privileges the caller does not hold.
async fn check_grant(
    state: &AppState,
    caller: &Caller,
    req: &AdminRequest,
) -> Result<(), ApiError> {
    if let Some(refs) = &req.roles {
        let ids = crate::ops::resolve_roles(&state.portal, refs).await?;
        let roles = state.portal.store.list_roles().await?;
        for r in roles.iter().filter(|r| ids.contains(&r.id)) {
            caller.require_covers(&r.privileges)?;
        }
    }
    Ok(())
}

/// `GET /setting/admins`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    let params = Params::parse(q.as_deref())?;
    let users = state.portal.store.list_users().await?;
    let roles = state.portal.store.list_roles().await?;
    let tokens = state.portal.store.list_tokens(None).await?;
    let with_factors = state.portal.store.users_with_factors().await?;
    // LogicMonitor's `filterGroupString`: a substring of the first or last name, username,
    // a role name or the status.
    let group = params
        .get("filterGroupString")
        .map(str::to_lowercase)
        .filter(|g| !g.is_empty());
    let matches_group = |u: &palisade_store::UserRecord| {
        let Some(g) = &group else { return true };
        [&u.first_name, &u.last_name, &u.username, &u.status]
            .iter()
            .any(|f| f.to_lowercase().contains(g.as_str()))
            || roles
                .iter()
                .any(|r| u.role_ids.contains(&r.id) && r.name.to_lowercase().contains(g.as_str()))
    };
    let items = users
        .iter()
        .filter(|u| matches_group(u))
        .map(|u| wire::user(u, &roles, &tokens, with_factors.contains(&u.id)))
        .collect();
    params.list(items, wire::ADMIN_REQUIRED)
}

/// `GET /setting/admins/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let id = id(&raw, "user")?;
    let user = state
        .portal
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    Params::parse(q.as_deref())?.one(render(&state, &user).await?, wire::ADMIN_REQUIRED)
}

/// `POST /setting/admins`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let req: AdminRequest = parse_json(&body)?;
    check_grant(&state, &caller, &req).await?;
    let user = users::create(&state.portal, &caller.actor, req).await?;
    Ok(Json(render(&state, &user).await?))
}

/// `PATCH` and `PUT /setting/admins/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "user")?;
    let params = Params::parse(q.as_deref())?;
    let req: AdminRequest = parse_json(&body)?;
    check_grant(&state, &caller, &req).await?;
    let mode = UpdateMode {
        change_password: params.flag("changePassword"),
    };
    let user = users::update(&state.portal, &caller.actor, id, req, mode).await?;
    Ok(Json(render(&state, &user).await?))
}

/// `DELETE /setting/admins/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let id = id(&raw, "user")?;
    users::delete(&state.portal, &caller.actor, id).await?;
    Ok(Json(json!({})))
}
