//! Errors of web pages: the one [`ApiError`] mapping (status and message, a generic message
//! for internal failures, which are logged), rendered as an HTML page instead of JSON.

use super::ctx::Ui;
use super::layout::{self, PageOpts};
use crate::error::ApiError;
use axum::response::Response;
use maud::html;

/// What a user is told: the API's message; internal failures only say so (the cause goes
/// to the server log).
pub fn message(e: &ApiError) -> String {
    match e {
        ApiError::Unauthenticated(m)
        | ApiError::Forbidden(m)
        | ApiError::BadRequest(m)
        | ApiError::NotFound(m)
        | ApiError::Conflict(m)
        | ApiError::TwoFactorRequired(m)
        | ApiError::NotAvailable(m) => m.clone(),
        ApiError::Internal(_) => {
            "Something went wrong on the portal; the details are in its log.".into()
        }
        other => other.to_string(),
    }
}

fn title(e: &ApiError) -> &'static str {
    match e.status().as_u16() {
        400 => "The request was not accepted",
        401 => "Sign in first",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflict",
        412 => "Second factor required",
        413 => "Too large",
        429 => "Too many requests",
        503 => "Unavailable",
        _ => "Something went wrong",
    }
}

/// The error as a page with the status the API would answer; with the user's navigation
/// when the page knows the user.
pub fn page(ui: Option<&Ui>, e: &ApiError) -> Response {
    if let ApiError::Internal(detail) = e {
        tracing::error!(%detail, "internal error on a web page");
    }
    let body = html! {
        p.error role="alert" id="page-error" { (message(e)) }
        p { a href="/ui" { "Back to the overview" } }
    };
    layout::render(
        ui,
        title(e),
        body,
        &PageOpts {
            status: e.status(),
            ..Default::default()
        },
    )
}

/// Unknown paths: an HTML 404 under `/ui`, the API's JSON 404 elsewhere.
pub async fn fallback(uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    if uri.path() == "/ui" || uri.path().starts_with("/ui/") {
        page(None, &ApiError::NotFound("There is no such page.".into()))
    } else {
        crate::routes::not_found().await.into_response()
    }
}
