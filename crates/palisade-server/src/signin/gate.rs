//! The mandate gate: one middleware in front of every session route.
//!
//! It loads the session from its cookie, re-reads the user (a suspended user, a closed
//! support window or a deleted account ends the session), recomputes the two-factor
//! requirement on every request (a deadline that passes while signed in applies at once),
//! checks the CSRF token of state-changing API calls, and admits the session only to the
//! routes of its state. A session confined to enrolment gets 403 with errorCode 1412
//! everywhere else; pages redirect to the page the session needs instead.

use super::session::{self, Session, SessionState};
use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::settings::SigninSettings;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use palisade_core::client_ip::client_ip;
use palisade_core::mfa::Requirement;
use palisade_core::privilege::{allows, Need, Privilege};
use palisade_store::UserRecord;
use std::net::SocketAddr;
use std::sync::Arc;

/// The signed-in user of a session route.
#[derive(Debug, Clone)]
pub struct SessionCaller {
    /// The session.
    pub session: Session,
    /// Its user, as of this request.
    pub user: UserRecord,
    /// The user's privileges, as of this request.
    pub privileges: Vec<Privilege>,
    /// The user's two-factor requirement now.
    pub requirement: Requirement,
    /// The audit actor (user, source address, user agent, method, path).
    pub actor: Actor,
}

impl SessionCaller {
    /// Refuses with 403 unless the user's privileges grant `need`.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if allows(&self.privileges, &need) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "user `{}` lacks the privilege {need}",
                self.user.username
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SessionCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionCaller>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("route is not behind the session gate".into()))
    }
}

/// The answer for a session that may not use a route.
pub fn wrong_state(state: SessionState, page: bool) -> Response {
    if page {
        let to = match state {
            SessionState::AwaitFactor => "/login/factor",
            SessionState::MustEnrol => "/enrol",
            SessionState::PasswordChange => "/account/password",
            SessionState::Active => "/",
        };
        return Redirect::to(to).into_response();
    }
    match state {
        SessionState::AwaitFactor => {
            ApiError::Unauthenticated("a second factor is due: POST /api/auth/factor".into())
                .into_response()
        }
        SessionState::MustEnrol => {
            let body = palisade_api::ErrorBody::new(1412 - 1000, "two-factor enrolment required: your deadline has passed; enrol a second factor (TOTP app, email, SMS, voice or passkey) at /enrol");
            (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
        }
        SessionState::PasswordChange => ApiError::Forbidden(
            "change your one-time password first: POST /api/auth/password".into(),
        )
        .into_response(),
        SessionState::Active => ApiError::Forbidden("already signed in".into()).into_response(),
    }
}

/// A session as the gate found it, with what it read to decide.
#[derive(Debug)]
pub struct Resolved {
    /// The session (its state updated when the requirement changed).
    pub session: Session,
    /// Its user, as of this request.
    pub user: UserRecord,
    /// All roles (for the user's privileges).
    pub roles: Vec<palisade_store::RoleRecord>,
    /// The user's two-factor requirement now.
    pub requirement: Requirement,
}

/// Loads and checks the session of a request: `Ok(None)` when there is none (or it ended).
pub async fn resolve(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Resolved>, ApiError> {
    let Some(id) = session::id_from_headers(headers, state.secure_cookies) else {
        return Ok(None);
    };
    let Some(mut s) = session::load(&state.portal, &id).await? else {
        return Ok(None);
    };
    let user = state.portal.store.get_user(s.record.user_id).await?;
    let now = state.portal.now();
    let usable = user.as_ref().is_some_and(|u| {
        let active = if u.is_support() {
            super::flow::support_window_open(u, now)
        } else {
            u.is_active()
        };
        active && !u.apionly
    });
    let Some(user) = user.filter(|_| usable) else {
        state.portal.store.delete_session(&s.record.id_hash).await?;
        return Ok(None);
    };
    let roles = state.portal.store.list_roles().await?;
    let settings = SigninSettings::load(&state.portal).await?;
    let has = super::has_factor(&state.portal, user.id).await?;
    let req = super::requirement(&user, &roles, has, &settings, now);
    if s.state == SessionState::MustEnrol && !req.must_enrol() {
        // The deadline moved (or a factor was confirmed elsewhere): released at once.
        let next = if user.force_password_change {
            SessionState::PasswordChange
        } else {
            SessionState::Active
        };
        s.state = next;
        s.record.state = next.as_str().into();
        state.portal.store.update_session(&s.record).await?;
    } else if s.state == SessionState::Active && req.must_enrol() {
        // The deadline passed (or the last factor was removed) while signed in.
        s.state = SessionState::MustEnrol;
        s.record.state = SessionState::MustEnrol.as_str().into();
        state.portal.store.update_session(&s.record).await?;
    }
    Ok(Some(Resolved {
        session: s,
        user,
        roles,
        requirement: req,
    }))
}

async fn gate(
    state: Arc<AppState>,
    peer: SocketAddr,
    mut req: Request,
    next: Next,
    allowed: &[SessionState],
    page: bool,
) -> Response {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = client_ip(peer.ip(), forwarded, &state.trusted_proxies).to_string();
    let resolved = match resolve(&state, req.headers()).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(Resolved {
        session,
        user,
        roles,
        requirement,
    }) = resolved
    else {
        return if page {
            Redirect::to("/login").into_response()
        } else {
            ApiError::Unauthenticated("sign in first (POST /api/auth/login)".into()).into_response()
        };
    };
    if !allowed.contains(&session.state) {
        return wrong_state(session.state, page);
    }
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating && !page {
        let presented = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if !session::csrf_ok(&session, presented) {
            return ApiError::Forbidden("missing or wrong X-CSRF-Token header".into())
                .into_response();
        }
    }
    let actor = Actor {
        username: user.username.clone(),
        user_id: Some(user.id),
        ip,
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect(),
        method: req.method().to_string(),
        path: req.uri().path().chars().take(1024).collect(),
        ..Default::default()
    };
    let privileges = Portal::privileges_of(&user, &roles);
    req.extensions_mut().insert(SessionCaller {
        session,
        user,
        privileges,
        requirement,
        actor,
    });
    next.run(req).await
}

const ACTIVE: &[SessionState] = &[SessionState::Active];
const ENROL: &[SessionState] = &[SessionState::Active, SessionState::MustEnrol];
const FACTOR: &[SessionState] = &[SessionState::AwaitFactor, SessionState::Active];
const PASSWORD: &[SessionState] = &[SessionState::PasswordChange, SessionState::Active];
const ANY: &[SessionState] = &[
    SessionState::Active,
    SessionState::MustEnrol,
    SessionState::PasswordChange,
    SessionState::AwaitFactor,
];

macro_rules! gates {
    ($($(#[$doc:meta])* $name:ident => $allowed:expr, $page:expr;)*) => {$(
        $(#[$doc])*
        pub async fn $name(State(state): State<Arc<AppState>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request, next: Next) -> Response {
            gate(state, peer, req, next, $allowed, $page).await
        }
    )*};
}

gates! {
    /// API routes of a signed-in session.
    api_active => ACTIVE, false;
    /// API routes open to sessions confined to enrolment.
    api_enrol => ENROL, false;
    /// API routes of the second-factor step.
    api_factor => FACTOR, false;
    /// API routes of the password change.
    api_password => PASSWORD, false;
    /// API routes open to any session (sign-out, who am I).
    api_any => ANY, false;
    /// Pages of a signed-in session.
    page_active => ACTIVE, true;
    /// Enrolment pages.
    page_enrol => ENROL, true;
    /// Second-factor pages.
    page_factor => FACTOR, true;
    /// Password change pages.
    page_password => PASSWORD, true;
    /// Pages open to any session.
    page_any => ANY, true;
}
