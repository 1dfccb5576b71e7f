//! The context of a page: the signed-in user (from the session gate), the portal state, wall
//! mode, and the two ways a page touches the portal:
//!
//! - reads go through [`Ui::reader`], a [`Caller`] with the user's privileges as of this
//!   request, passed to the same functions the REST handlers use (which filter and mask
//!   exactly as the API does);
//! - changes go through [`Ui::act`], which names the REST call the change corresponds to,
//!   runs the REST handler (or the operation it calls) with a [`Caller`] whose audit actor
//!   carries that call, and writes the same `api.call` record the API gate writes.

use super::error;
use super::layout::{self, PageOpts};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::signin::gate::SessionCaller;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use palisade_core::privilege::{allows, Level, Need, Privilege};
use std::future::Future;
use std::sync::Arc;

/// Name of the cookie that keeps wall mode on across pages.
pub const WALL_COOKIE: &str = "palisade_wall";

/// A page request of a signed-in user.
#[derive(Clone)]
pub struct Ui {
    /// The session, its user and privileges, as the session gate resolved them.
    pub session: SessionCaller,
    /// The portal.
    pub state: Arc<AppState>,
    /// Large-text high-contrast layout for wall screens.
    pub wall: bool,
    /// The path of this page (for the navigation's `aria-current`).
    pub path: String,
}

impl std::fmt::Debug for Ui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ui")
            .field("user", &self.session.user.username)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Wall mode from `?wall=1|0`, else from the cookie.
pub fn wall_of(parts: &Parts) -> bool {
    let query = parts.uri.query().unwrap_or_default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "wall" {
            return v == "1" || v.eq_ignore_ascii_case("true");
        }
    }
    crate::signin::session::cookie_value(&parts.headers, WALL_COOKIE).is_some_and(|v| v == "1")
}

impl FromRequestParts<Arc<AppState>> for Ui {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(session) = parts.extensions.get::<SessionCaller>().cloned() else {
            return Err(error::page(
                None,
                &ApiError::Internal("page is not behind the session gate".into()),
            ));
        };
        Ok(Ui {
            session,
            state: state.clone(),
            wall: wall_of(parts),
            path: parts.uri.path().to_string(),
        })
    }
}

impl Ui {
    /// The portal state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The session's CSRF token.
    pub fn csrf_token(&self) -> &str {
        &self.session.session.record.csrf
    }

    /// The hidden CSRF field every form carries.
    pub fn csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf_token()); }
    }

    /// The user's privileges as of this request.
    pub fn privileges(&self) -> &[Privilege] {
        &self.session.privileges
    }

    /// Whether the user's privileges grant `need`.
    pub fn can(&self, need: Need) -> bool {
        allows(&self.session.privileges, &need)
    }

    /// Whether the user holds any device-group privilege at `level` or above (on some group):
    /// decides whether device pages and their actions are offered at all; each object is
    /// still checked by the operation.
    pub fn can_hosts(&self, level: Level) -> bool {
        self.session.privileges.iter().any(|p| {
            p.object_type == "host_group" && Level::parse(&p.operation).is_some_and(|l| l >= level)
        })
    }

    /// Whether the user holds a collector-group privilege at `level` or above.
    pub fn can_collectors(&self, level: Level) -> bool {
        self.session.privileges.iter().any(|p| {
            p.object_type == "setting"
                && (p.object_id == "*" || p.object_id.starts_with("collectorgroup."))
                && Level::parse(&p.operation).is_some_and(|l| l >= level)
        })
    }

    /// 403 unless the user's privileges grant `need` (the API's message).
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        self.session.require(need)
    }

    /// The caller for reads: the user's privileges now, the page as the audit path.
    pub fn reader(&self) -> Caller {
        self.caller("GET", &self.path)
    }

    /// The caller for the REST call `method api_path` (the audit actor carries that call).
    pub fn caller(&self, method: &str, api_path: &str) -> Caller {
        let mut actor = self.session.actor.clone();
        actor.method = method.to_string();
        actor.path = api_path.chars().take(1024).collect();
        Caller {
            actor,
            user: self.session.user.clone(),
            token: None,
            privileges: self.session.privileges.clone(),
        }
    }

    /// Runs a change as the REST call `method api_path` would: `f` gets the caller (whose
    /// audit actor carries the call) and runs the REST handler or the operation it calls;
    /// then the `api.call` record the API gate writes for that call is written, with the
    /// outcome's status.
    pub async fn act<T, F, Fut>(&self, method: &str, api_path: &str, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(Caller) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let caller = self.caller(method, api_path);
        let actor = caller.actor.clone();
        let result = f(caller).await;
        let status = match &result {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        };
        let mut event = actor.event(
            self.state.portal.now(),
            "api.call",
            format!(
                "API call {method} {api_path} -> {status} via session (web UI {})",
                self.path
            ),
        );
        event.status = Some(i64::from(status));
        if !self.state.audit.record(event).await {
            tracing::error!(path = %api_path, "could not write the audit record of a web UI change");
        }
        result
    }

    /// A full page (200).
    pub fn page(&self, title: &str, body: Markup) -> Response {
        self.page_with(title, body, PageOpts::default())
    }

    /// A full page with options (status, refresh, narrow layout).
    pub fn page_with(&self, title: &str, body: Markup, opts: PageOpts) -> Response {
        layout::render(Some(self), title, body, &opts)
    }

    /// The answer of a page handler: the page, or its error as an HTML page with this
    /// user's navigation.
    pub fn respond(&self, result: Result<Response, ApiError>) -> Response {
        match result {
            Ok(r) => r,
            Err(e) => error::page(Some(self), &e),
        }
    }

    /// A form's error: the form again (by `rerender`) with the message and the status the
    /// API answers; storage and internal failures become the error page.
    pub fn form_error(
        &self,
        e: ApiError,
        rerender: impl FnOnce(&str) -> Markup,
        title: &str,
    ) -> Response {
        match e {
            ApiError::Unavailable | ApiError::Internal(_) | ApiError::NotAvailable(_) => {
                error::page(Some(self), &e)
            }
            other => {
                let msg = error::message(&other);
                self.page_with(
                    title,
                    rerender(&msg),
                    PageOpts {
                        status: other.status(),
                        ..Default::default()
                    },
                )
            }
        }
    }

    /// 303 to `to` (after a change: the browser then GETs the result).
    pub fn see_other(&self, to: &str) -> Response {
        let mut r = Redirect::to(to).into_response();
        *r.status_mut() = StatusCode::SEE_OTHER;
        r
    }
}
