//! `/setting/admins/{adminId}/apitokens` and `/setting/admins/apitokens`.

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::ops::token_migration::TokenFlags;
use crate::ops::tokens::{self, TokenRequest};
use crate::portal::Portal;
use crate::{wire, AppState};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::{ApiTokenRequest, ListEnvelope};
use palisade_core::privilege::{Level, Need, SettingObject};
use palisade_store::{TokenRecord, TokenType};
use serde_json::{json, Value};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

fn kind_filter(params: &Params) -> Result<Option<TokenType>, ApiError> {
    match params.get("type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("bearer") => Ok(Some(TokenType::Bearer)),
        Some("lmv1") => Ok(Some(TokenType::Lmv1)),
        Some("widget") => Ok(Some(TokenType::Widget)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "unknown token type `{other}` (use lmv1, bearer or widget)"
        ))),
    }
}

async fn render_all(state: &AppState, tokens: &[TokenRecord]) -> Result<Vec<Value>, ApiError> {
    let users = state.portal.store.list_users().await?;
    let roles = state.portal.store.list_roles().await?;
    let flags = TokenFlags::load(&state.portal).await?;
    Ok(tokens
        .iter()
        .map(|t| {
            let owner = users.iter().find(|u| u.id == t.user_id);
            let name = owner.map(|u| u.username.as_str()).unwrap_or_default();
            let role_names: Vec<String> = owner
                .map(|u| {
                    roles
                        .iter()
                        .filter(|r| u.role_ids.contains(&r.id))
                        .map(|r| r.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let mut v = wire::token(t, name, &role_names);
            // imported, violatesMandate, retirement, replaces (docs/token-migration.md)
            let facts = owner.map(|u| Portal::owner_facts(u, &roles));
            flags.annotate(&mut v, t, facts.as_ref());
            v
        })
        .collect())
}

async fn list_of(
    state: &AppState,
    owner: Option<i64>,
    q: Option<String>,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let kind = kind_filter(&params)?;
    let tokens: Vec<TokenRecord> = state
        .portal
        .store
        .list_tokens(owner)
        .await?
        .into_iter()
        .filter(|t| kind.is_none_or(|k| t.kind == k))
        .collect();
    params.list(render_all(state, &tokens).await?, wire::TOKEN_REQUIRED)
}

/// `GET /setting/admins/apitokens`: every user's tokens.
pub async fn list_all(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    list_of(&state, None, q).await
}

/// `GET /setting/admins/{adminId}/apitokens`.
pub async fn list_for(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    let owner = id(&raw, "user")?;
    if state.portal.store.get_user(owner).await?.is_none() {
        return Err(ApiError::NotFound(format!("user {owner} not found")));
    }
    list_of(&state, Some(owner), q).await
}

/// `POST /setting/admins/{adminId}/apitokens[?type=bearer]`: the secret is in the answer,
/// once (`accessKey`; for Bearer tokens also `bearerToken`).
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let owner = id(&raw, "user")?;
    let params = Params::parse(q.as_deref())?;
    let kind = kind_filter(&params)?;
    if kind == Some(TokenType::Widget) {
        // A widget token for one dashboard (docs/dashboards.md): `{"dashboardId": N, ...}`.
        return create_widget_token(&state, &caller, owner, &body).await;
    }
    let bearer = kind == Some(TokenType::Bearer);
    let req: ApiTokenRequest = parse_json(&body)?;
    let expires_on = req
        .expires_on
        .filter(|s| *s > 0)
        .map(|s| s.saturating_mul(1000));
    let created = tokens::create(
        &state.portal,
        &caller.actor,
        owner,
        TokenRequest {
            bearer,
            note: req.note.unwrap_or_default(),
            expires_on,
        },
    )
    .await?;
    let mut v = render_all(&state, std::slice::from_ref(&created.record))
        .await?
        .pop()
        .unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("accessKey".into(), json!(created.secret.expose()));
        if bearer {
            obj.insert("bearerToken".into(), json!(created.secret.expose()));
        }
    }
    Ok(Json(v))
}

/// `PATCH` and `PUT /setting/admins/{adminId}/apitokens/{id}`: status, note and expiry.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw_owner, raw_id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let owner = id(&raw_owner, "user")?;
    let token_id = id(&raw_id, "API token")?;
    let req: ApiTokenRequest = parse_json(&body)?;
    // `expiresOn` (epoch seconds; 0 or absent: unchanged) gives the token an expiry.
    let expiry = req.expires_on.filter(|s| *s > 0);
    let t = if expiry.is_none() || req.status.is_some() || req.note.is_some() {
        Some(
            tokens::update(
                &state.portal,
                &caller.actor,
                owner,
                token_id,
                req.status,
                req.note,
            )
            .await?,
        )
    } else {
        None
    };
    let t = match (expiry, t) {
        (Some(secs), _) => {
            tokens::set_expiry(
                &state.portal,
                &caller.actor,
                owner,
                token_id,
                secs.saturating_mul(1000),
            )
            .await?
        }
        (None, Some(t)) => t,
        (None, None) => return Err(ApiError::Internal("no token change computed".into())),
    };
    Ok(Json(
        render_all(&state, std::slice::from_ref(&t))
            .await?
            .pop()
            .unwrap_or(Value::Null),
    ))
}

/// `DELETE /setting/admins/{adminId}/apitokens/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw_owner, raw_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let owner = id(&raw_owner, "user")?;
    let token_id = id(&raw_id, "API token")?;
    tokens::delete(&state.portal, &caller.actor, owner, token_id).await?;
    Ok(Json(json!({})))
}

/// `POST /setting/admins/{adminId}/apitokens?type=widget` `{dashboardId, note?, expiresOn?}`.
async fn create_widget_token(
    state: &AppState,
    caller: &Caller,
    owner: i64,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    use crate::dashboards::{ops::Viewer, routes::issued_json, tokens as widget};
    let body: Value = parse_json(body)?;
    let dashboard_id = body
        .get("dashboardId")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::BadRequest("a widget token needs a `dashboardId`".into()))?;
    let note = body
        .get("note")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let expires_on = body
        .get("expiresOn")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .map(|s| s.saturating_mul(1000));
    let viewer = Viewer::from_caller(state, caller).await?;
    let issued = widget::issue(
        state,
        &viewer,
        widget::IssueRequest {
            dashboard_id,
            owner_id: Some(owner),
            note,
            expires_on,
        },
    )
    .await?;
    Ok(Json(issued_json(state, &issued).await?))
}
