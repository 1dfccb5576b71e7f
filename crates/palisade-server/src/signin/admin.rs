//! Administration of sign-in: who has which factor, resetting a user's factors, per-user
//! deadlines, the support account's access window, and the sign-in settings. Session-only:
//! these are not reachable with API tokens.

use super::enrol::{factor_json, STEP_UP_MS};
use super::gate::SessionCaller;
use crate::error::{parse_json, ApiError};
use crate::settings::{self, SigninSettings};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use palisade_core::privilege::{Level, Need, SettingObject};
use palisade_store::{UserChange, SUPPORT_USERNAME};
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

fn require_recent_factor(state: &AppState, caller: &SessionCaller) -> Result<(), ApiError> {
    if caller
        .session
        .stepped_up_within(state.portal.now(), STEP_UP_MS)
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this action needs your own second factor within the last 5 minutes: verify it (POST /api/auth/factor) and retry".into(),
        ))
    }
}

/// `GET /api/admin/two-factor`: every user with their factors and requirement.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let users = state.portal.store.list_users().await?;
    let roles = state.portal.store.list_roles().await?;
    let settings = SigninSettings::load(&state.portal).await?;
    let now = state.portal.now();
    let mut items = Vec::with_capacity(users.len());
    for u in &users {
        let factors: Vec<_> = state
            .portal
            .store
            .list_factors(u.id)
            .await?
            .into_iter()
            .filter(|f| f.confirmed)
            .collect();
        let req = super::requirement(u, &roles, !factors.is_empty(), &settings, now);
        items.push(json!({
            "id": u.id,
            "username": u.username,
            "kind": format!("{:?}", super::user_kind(u)).to_lowercase(),
            "status": u.status,
            "twoFAEnabled": !factors.is_empty(),
            "twoFactor": super::api::requirement_json(&req),
            "factors": factors.iter().map(factor_json).collect::<Vec<_>>(),
        }));
    }
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

/// `POST /api/admin/users/{id}/two-factor/reset`: removes every factor and recovery code of
/// a user and ends their sessions. Needs the administrator's own recent second factor.
pub async fn reset(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    require_recent_factor(&state, &caller)?;
    let user = state
        .portal
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let event = caller.actor.event(
        state.portal.now(),
        "mfa.reset",
        format!(
            "Reset the second factors of {} (id {id}); their sessions were ended",
            user.username
        ),
    );
    state.portal.store.reset_factors(id, event).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeadlineBody {
    /// Epoch seconds, or null to return to the computed deadline.
    deadline: Option<i64>,
}

/// `PUT /api/admin/users/{id}/two-factor/deadline`.
pub async fn deadline(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let b: DeadlineBody = parse_json(&body)?;
    let user = state
        .portal
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let ms = b.deadline.map(|s| s.saturating_mul(1000));
    let event = caller.actor.event(
        state.portal.now(),
        "mfa.deadline",
        format!(
            "Set the two-factor deadline of {} to {}",
            user.username,
            ms.map(crate::wire::utc_text)
                .unwrap_or_else(|| "the computed one".into())
        ),
    );
    state
        .portal
        .store
        .update_user(
            id,
            UserChange {
                mfa_deadline: Some(ms),
                ..Default::default()
            },
            event,
        )
        .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct SupportBody {
    minutes: i64,
}

/// `POST /api/admin/support-access`: opens the support account for a bounded window and
/// returns its one-time password (shown once). Support staff then sign in with it and must
/// enrol or use the account's own second factor; everything they do is audited as support
/// access. Needs the administrator's own recent second factor.
pub async fn open_support(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    require_recent_factor(&state, &caller)?;
    let b: SupportBody = parse_json(&body)?;
    if !(5..=24 * 60).contains(&b.minutes) {
        return Err(ApiError::BadRequest(
            "minutes must be between 5 and 1440".into(),
        ));
    }
    let support = state
        .portal
        .store
        .get_user_by_name(SUPPORT_USERNAME)
        .await?
        .ok_or_else(|| ApiError::NotFound("the support account is missing".into()))?;
    let now = state.portal.now();
    // Every window starts clean: whoever uses it enrols their own factor.
    let reset = caller.actor.event(
        now,
        "mfa.reset",
        "Cleared the support account's factors for a new support window".into(),
    );
    state.portal.store.reset_factors(support.id, reset).await?;
    let until = now + b.minutes * 60_000;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let password: String = (0..24)
        .map(|_| {
            char::from(
                ALPHABET
                    .get(rng.gen_range(0..ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'x'),
            )
        })
        .collect();
    let hash = state
        .portal
        .hashing
        .hash(password.clone())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let event = caller.actor.event(
        now,
        "support.open",
        format!(
            "Opened support access until {} ({} minutes)",
            crate::wire::utc_text(until),
            b.minutes
        ),
    );
    state
        .portal
        .store
        .update_user(
            support.id,
            UserChange {
                support_until: Some(Some(until)),
                password_hash: Some(Some(hash)),
                ..Default::default()
            },
            event,
        )
        .await?;
    Ok(Json(
        json!({ "username": SUPPORT_USERNAME, "password": password, "until": until / 1000 }),
    ))
}

/// `DELETE /api/admin/support-access`: closes the window now and ends the support sessions.
pub async fn close_support(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let support = state
        .portal
        .store
        .get_user_by_name(SUPPORT_USERNAME)
        .await?
        .ok_or_else(|| ApiError::NotFound("the support account is missing".into()))?;
    let event = caller.actor.event(
        state.portal.now(),
        "support.close",
        "Closed support access".into(),
    );
    state
        .portal
        .store
        .update_user(
            support.id,
            UserChange {
                support_until: Some(None),
                password_hash: Some(None),
                ..Default::default()
            },
            event,
        )
        .await?;
    // Also forgets the window's factors and ends its sessions.
    let reset = caller.actor.event(
        state.portal.now(),
        "mfa.reset",
        "Cleared the support account's factors at the end of the support window".into(),
    );
    state.portal.store.reset_factors(support.id, reset).await?;
    Ok(Json(json!({})))
}

/// `GET /api/admin/settings`.
pub async fn get_settings(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    let mut out = serde_json::Map::new();
    for k in settings::KNOWN {
        out.insert(
            k.key.into(),
            json!({ "value": settings::get(&state.portal, k.key).await?, "help": k.help }),
        );
    }
    Ok(Json(Value::Object(out)))
}

/// `PUT /api/admin/settings`: `{key: value, ...}`.
pub async fn put_settings(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(WRITE)?;
    let b: serde_json::Map<String, Value> = parse_json(&body)?;
    let mut out = serde_json::Map::new();
    for (k, v) in b {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let stored = settings::set(&state.portal, &caller.actor, &k, &text).await?;
        out.insert(k, json!(stored));
    }
    Ok(Json(Value::Object(out)))
}
