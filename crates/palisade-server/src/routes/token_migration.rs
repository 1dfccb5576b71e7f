//! The token migration assistant's API, under `/setting/admins/apitokens`:
//!
//! | Method and path | Does | Needs |
//! |---|---|---|
//! | `GET /setting/admins/apitokens/{id}/migration/proposal?days=30` | the proposed role | `setting:useraccess:read` |
//! | `POST /setting/admins/apitokens/{id}/migration` | start: role, API-only user, new token (secret once) | `setting:useraccess:write` and every proposed privilege |
//! | `GET /setting/admins/apitokens/{id}/migration` | the migration's status | `setting:useraccess:read` |
//! | `POST /setting/admins/apitokens/{id}/migration/disable` | disable the old token (again: restart the grace period) | `setting:useraccess:write` |
//! | `POST /setting/admins/apitokens/{id}/migration/finish` | delete the old token if its grace period passed unused | `setting:useraccess:write` |
//! | `GET /setting/admins/apitokens/migrations` | every migration's status | `setting:useraccess:read` |
//!
//! The API gate enforces the `Needs` column from [`palisade_core::access`].

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::ops::token_migration::{self as ops, Outcome, StartRequest};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The routes, mounted under `/santaba/rest` behind the API gate.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/setting/admins/apitokens/migrations", get(list))
        .route(
            "/setting/admins/apitokens/{id}/migration",
            get(status).post(start),
        )
        .route(
            "/setting/admins/apitokens/{id}/migration/proposal",
            get(proposal),
        )
        .route(
            "/setting/admins/apitokens/{id}/migration/disable",
            post(disable),
        )
        .route(
            "/setting/admins/apitokens/{id}/migration/finish",
            post(finish),
        )
}

type St = State<Arc<AppState>>;

fn days(params: &Params) -> Result<i64, ApiError> {
    match params.get("days") {
        None | Some("") => Ok(palisade_core::token_migration::DEFAULT_DAYS),
        Some(d) => d
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest("days must be a whole number".into())),
    }
}

/// `GET .../{id}/migration/proposal?days=N`.
async fn proposal(
    State(state): St,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let token_id = id(&raw, "API token")?;
    let params = Params::parse(q.as_deref())?;
    let plan = ops::plan(&state.portal, &state.estate, token_id, days(&params)?).await?;
    Ok(Json(ops::plan_json(&plan)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    days: Option<i64>,
    role_name: Option<String>,
    username: Option<String>,
    /// The privileges shown (`OBJECTTYPE:OBJECTID:OPERATION`): refused if the proposal changed.
    privileges: Option<Vec<String>>,
}

/// `POST .../{id}/migration`: the answer carries the new token's secret, once.
async fn start(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let token_id = id(&raw, "API token")?;
    let b: StartBody = parse_json(&body)?;
    let started = ops::start(
        &state.portal,
        &state.estate,
        &caller.actor,
        Some(&caller),
        token_id,
        StartRequest {
            days: b.days,
            role_name: b.role_name,
            username: b.username,
            expect: b.privileges,
        },
    )
    .await?;
    Ok(Json(ops::started_json(&started)))
}

/// `GET .../{id}/migration`.
async fn status(State(state): St, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    let token_id = id(&raw, "API token")?;
    Ok(Json(ops::status(&state.portal, token_id).await?))
}

/// `POST .../{id}/migration/disable`.
async fn disable(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let token_id = id(&raw, "API token")?;
    ops::confirm_disable(&state.portal, &caller.actor, token_id).await?;
    Ok(Json(ops::status(&state.portal, token_id).await?))
}

/// The outcome of a check as JSON.
pub fn outcome_json(o: &Outcome) -> Value {
    match o {
        Outcome::Retiring => json!({"outcome": "retiring"}),
        Outcome::Waiting(at) => json!({"outcome": "waiting", "deleteAfter": at.div_euclid(1000)}),
        Outcome::Kept(calls) => json!({"outcome": "kept", "usedBy": calls}),
        Outcome::Deleted => json!({"outcome": "deleted"}),
    }
}

/// `POST .../{id}/migration/finish`.
async fn finish(
    State(state): St,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let token_id = id(&raw, "API token")?;
    let outcome = ops::finish(&state.portal, &caller.actor, token_id).await?;
    let mut v = outcome_json(&outcome);
    v["migration"] = ops::status(&state.portal, token_id).await?;
    Ok(Json(v))
}

/// `GET /setting/admins/apitokens/migrations`.
async fn list(
    State(state): St,
    RawQuery(q): RawQuery,
) -> Result<Json<palisade_api::ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let mut items = Vec::new();
    for m in state.portal.store.list_token_migrations().await? {
        items.push(ops::status(&state.portal, m.old_token_id).await?);
    }
    params.list(items, &["tokenId"])
}
