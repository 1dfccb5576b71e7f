//! The CSRF guard of every page form: a posted form must carry the session's token in its
//! `csrf` field (compared in constant time). The guard reads the form once, checks the
//! token, and hands the fields to the handler as [`FormData`]; a refused form is audited
//! (`api.denied`, like a refused API call) and answered 403.

use super::components::FormData;
use super::error;
use crate::error::ApiError;
use crate::signin::gate::SessionCaller;
use crate::signin::session;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// Largest accepted form.
pub const MAX_FORM: usize = 256 * 1024;

/// The middleware (behind the session gate, which put the [`SessionCaller`] in the request).
pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Some(caller) = parts.extensions.get::<SessionCaller>().cloned() else {
        return error::page(
            None,
            &ApiError::Internal("form is not behind the session gate".into()),
        );
    };
    let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(b) => b,
        Err(_) => return error::page(None, &ApiError::TooLarge(MAX_FORM)),
    };
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let presented = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if !session::csrf_ok(&caller.session, presented) {
        let mut event = caller.actor.event(
            state.portal.now(),
            "api.denied",
            format!(
                "Refused web UI form {} {} -> 403: missing or wrong CSRF token",
                parts.method,
                parts.uri.path()
            ),
        );
        event.status = Some(403);
        if !state.audit.record(event).await {
            return error::page(None, &ApiError::Unavailable);
        }
        return error::page(
            None,
            &ApiError::Forbidden(
                "The form expired or did not come from this portal: reload the page and try again."
                    .into(),
            ),
        );
    }
    parts.extensions.insert(FormData(pairs));
    next.run(Request::from_parts(parts, Body::empty())).await
}
