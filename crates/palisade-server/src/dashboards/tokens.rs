//! Widget tokens: the third kind of API token, beside LMv1 and Bearer.
//!
//! A widget token is read-only and opens exactly one dashboard: the dashboard, its widgets
//! and their data, nothing else. It is sent as `Authorization: Bearer palw_…`, stored only as
//! a keyed hash (like a Bearer token), shown once, listed with the other tokens (type
//! `widget`), disabled and deleted through the same endpoints, and every use goes through
//! the API gate: rate limit, last use and address, and one audit record per call.
//!
//! Rules:
//! - the creator must see the dashboard and hold `dashboard:<id>:read` on it; the owner
//!   (the creator unless another user is named, which needs `setting:useraccess:write`) must
//!   hold it too, and must pass the token mandate (not the support account, not a holder of
//!   the `administrator` role);
//! - on every request ([`admit`]): a `GET` of `/dashboard/dashboards/{id}`,
//!   `/dashboard/dashboards/{id}/widgets`, `/dashboard/widgets/{w}[/data]` of a widget of that
//!   dashboard, or `/dashboard/wall`; anything else is refused (403) and audited; the owner
//!   must still hold read on the dashboard, and the token's privileges for the request are
//!   exactly `dashboard:<id>:read`.

use super::model::DashboardDoc;
use super::ops::{self, Viewer};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::portal::Portal;
use crate::AppState;
use palisade_core::policy;
use palisade_core::privilege::{allows, Level, Need, Privilege, SettingObject};
use palisade_core::secret::Secret;
use palisade_store::objects;
use palisade_store::{NewToken, TokenChange, TokenRecord, TokenType, TOKEN_DISABLED};

/// A widget token just issued, with its secret (shown once).
#[derive(Debug)]
pub struct IssuedToken {
    /// The stored token.
    pub record: TokenRecord,
    /// `palw_…`.
    pub secret: Secret<String>,
}

/// What to issue.
#[derive(Debug, Clone, Default)]
pub struct IssueRequest {
    /// The dashboard.
    pub dashboard_id: i64,
    /// The owner; `None`: the creator.
    pub owner_id: Option<i64>,
    /// Note (where the screen is).
    pub note: String,
    /// Expiry, epoch ms.
    pub expires_on: Option<i64>,
}

/// Issues a widget token for one dashboard.
pub async fn issue(
    state: &AppState,
    creator: &Viewer,
    req: IssueRequest,
) -> Result<IssuedToken, ApiError> {
    if creator.widget_dashboard.is_some() {
        return Err(ApiError::Forbidden(
            "a widget token cannot issue tokens".into(),
        ));
    }
    let portal = &state.portal;
    let d = ops::get(state, creator, req.dashboard_id, Level::Read).await?;
    let owner = match req.owner_id {
        None => creator.user.clone(),
        Some(id) if id == creator.user.id => creator.user.clone(),
        Some(id) => {
            if !allows(
                &creator.privileges,
                &Need::Setting(SettingObject::UserAccess, Level::Write),
            ) {
                return Err(ApiError::Forbidden(format!(
                    "user `{}` lacks the privilege setting:useraccess:write to issue a widget token owned by another user",
                    creator.user.username
                )));
            }
            portal
                .store
                .get_user(id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?
        }
    };
    let roles = portal.store.list_roles().await?;
    let proof = policy::check_token_owner(&Portal::owner_facts(&owner, &roles))
        .map_err(|r| ApiError::Forbidden(r.to_string()))?;
    let owner_privileges = Portal::privileges_of(&owner, &roles);
    if !owner_may_read(&owner_privileges, &owner.username, &d) {
        return Err(ApiError::Forbidden(format!(
            "the token's owner `{}` cannot read dashboard {} (grant dashboard:{}:read; a private dashboard's tokens belong to its owner)",
            owner.username, d.id, d.id
        )));
    }
    crate::ops::tokens::check_note_and_expiry(portal, &req.note, req.expires_on)?;
    let crate::ops::tokens::Minted {
        access_id,
        secret,
        bearer_hash,
        ..
    } = crate::ops::tokens::mint(portal, TokenType::Widget);
    let audit = creator.actor.event(
        portal.now(),
        "token.create",
        format!(
            "Created widget token {{id}} (access id {access_id}) for dashboard {} `{}`, owned by user {} (id {}); read-only, this dashboard only",
            d.id, d.name, owner.username, owner.id
        ),
    );
    let record = portal
        .store
        .create_token(
            proof,
            NewToken {
                user_id: owner.id,
                kind: TokenType::Widget,
                access_id,
                access_key_enc: None,
                bearer_hash,
                dashboard_id: Some(d.id),
                note: req.note,
                created_by: creator.actor.username.clone(),
                created_on: portal.now(),
                expires_on: req.expires_on,
            },
            audit,
        )
        .await?;
    Ok(IssuedToken { record, secret })
}

fn owner_may_read(privileges: &[Privilege], username: &str, d: &DashboardDoc) -> bool {
    allows(privileges, &Need::Dashboard(Some(d.id), Level::Read))
        && (d.sharable
            || d.owner.eq_ignore_ascii_case(username)
            || allows(privileges, &Need::Dashboard(None, Level::Manage)))
}

/// The widget tokens of a dashboard `viewer` may see: all of them with
/// `dashboard:<id>:manage`, else its own.
pub async fn list_for(
    state: &AppState,
    viewer: &Viewer,
    dashboard_id: i64,
) -> Result<Vec<TokenRecord>, ApiError> {
    if viewer.widget_dashboard.is_some() {
        return Err(ApiError::Forbidden(
            "a widget token cannot list tokens".into(),
        ));
    }
    ops::get(state, viewer, dashboard_id, Level::Read).await?;
    let all = viewer.may(Need::Dashboard(Some(dashboard_id), Level::Manage));
    Ok(state
        .portal
        .store
        .list_tokens(None)
        .await?
        .into_iter()
        .filter(|t| t.kind == TokenType::Widget && t.dashboard_id == Some(dashboard_id))
        .filter(|t| all || t.user_id == viewer.user.id)
        .collect())
}

/// What to do to a widget token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Disable (status 1): it stops working at once and stays listed.
    Disable,
    /// Delete.
    Delete,
}

/// Disables or deletes a widget token of a dashboard: its owner, or a holder of
/// `dashboard:<id>:manage`.
pub async fn revoke(
    state: &AppState,
    viewer: &Viewer,
    dashboard_id: i64,
    token_id: i64,
    how: Revoke,
) -> Result<Option<TokenRecord>, ApiError> {
    let t = list_for(state, viewer, dashboard_id)
        .await?
        .into_iter()
        .find(|t| t.id == token_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "widget token {token_id} of dashboard {dashboard_id} not found"
            ))
        })?;
    let now = state.portal.now();
    match how {
        Revoke::Disable => {
            let audit = viewer.actor.event(
                now,
                "token.disable",
                format!(
                    "Disabled widget token {token_id} (access id {}) of user {} for dashboard {dashboard_id}",
                    t.access_id, t.user_id
                ),
            );
            Ok(Some(
                state
                    .portal
                    .store
                    .update_token(
                        token_id,
                        TokenChange {
                            status: Some(TOKEN_DISABLED),
                            note: None,
                        },
                        audit,
                    )
                    .await?,
            ))
        }
        Revoke::Delete => {
            let audit = viewer.actor.event(
                now,
                "token.delete",
                format!(
                    "Deleted widget token {token_id} (access id {}) of user {} for dashboard {dashboard_id}",
                    t.access_id, t.user_id
                ),
            );
            state.portal.store.delete_token(token_id, audit).await?;
            Ok(None)
        }
    }
}

fn outside(dashboard: i64) -> ApiError {
    ApiError::Forbidden(format!(
        "a widget token opens only dashboard {dashboard}, its widgets and their data (read-only)"
    ))
}

/// The gate's decision on a request made with a widget token: the privileges it acts with
/// (exactly `dashboard:<id>:read`), or the refusal.
pub async fn admit(
    state: &AppState,
    auth: &Authenticated,
    method: &axum::http::Method,
    path: &str,
) -> Result<Vec<Privilege>, ApiError> {
    let Some(dashboard) = auth.token.dashboard_id else {
        return Err(ApiError::Unauthenticated(
            "the widget token names no dashboard".into(),
        ));
    };
    if *method != axum::http::Method::GET && *method != axum::http::Method::HEAD {
        return Err(ApiError::Forbidden(format!(
            "widget tokens are read-only ({method} refused)"
        )));
    }
    let rest = path
        .strip_prefix("/santaba/rest")
        .ok_or_else(|| outside(dashboard))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let d = dashboard.to_string();
    let allowed = match segments.as_slice() {
        ["", "dashboard", "wall"] => true,
        ["", "dashboard", "dashboards", id] | ["", "dashboard", "dashboards", id, "widgets"] => {
            *id == d
        }
        ["", "dashboard", "widgets", id] | ["", "dashboard", "widgets", id, "data"] => {
            match id.parse::<i64>() {
                // Only the canonical spelling of the id: nothing that decodes differently.
                Ok(w) if w.to_string() == *id => {
                    objects::get::<super::model::WidgetDoc>(state.portal.store.as_ref(), w)
                        .await?
                        .is_some_and(|w| w.dashboard_id == dashboard)
                }
                _ => false,
            }
        }
        _ => false,
    };
    if !allowed {
        return Err(outside(dashboard));
    }
    let d: Option<DashboardDoc> = objects::get(state.portal.store.as_ref(), dashboard).await?;
    let owner_privileges = Portal::privileges_of(&auth.user, &auth.roles);
    match d {
        Some(d) if owner_may_read(&owner_privileges, &auth.user.username, &d) => {}
        Some(_) => {
            return Err(ApiError::Forbidden(format!(
                "the widget token's owner `{}` can no longer read dashboard {dashboard}",
                auth.user.username
            )))
        }
        None => {
            return Err(ApiError::NotFound(format!(
                "dashboard {dashboard} not found"
            )))
        }
    }
    Ok(vec![Privilege::new(
        "dashboard",
        &dashboard.to_string(),
        Level::Read.as_str(),
    )])
}
