//! The one place where errors become API answers.
//!
//! Every handler returns `Result<_, ApiError>`; [`ApiError`]'s `IntoResponse` writes
//! LogicMonitor's body `{errorMessage, errorCode, errorDetail}` with `errorCode = 1000 +
//! status`. Internal failures are logged with their cause and answered with a generic
//! message: never a stack trace, never a secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade_api::ErrorBody;
use palisade_store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: the caller could not be authenticated.
    #[error("Authentication failed: {0}")]
    Unauthenticated(String),
    /// 403: the caller may not do this.
    #[error("Permission denied: {0}")]
    Forbidden(String),
    /// 404: no such object.
    #[error("{0}")]
    NotFound(String),
    /// 409: a conflicting object exists.
    #[error("{0}")]
    Conflict(String),
    /// 412: a second factor is required first.
    #[error("{0}")]
    TwoFactorRequired(String),
    /// 413: the body is too large.
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 429: rate limited.
    #[error("rate limit exceeded: at most {limit} requests per {window_secs} s; retry after {retry_after} s")]
    RateLimited {
        /// Limit per window.
        limit: u32,
        /// Window in seconds.
        window_secs: i64,
        /// Seconds until the window resets.
        retry_after: i64,
    },
    /// 503: storage (and with it the audit log) is unavailable; nothing was changed.
    #[error("the portal's storage is unavailable; the request was not carried out")]
    Unavailable,
    /// 503: a part of the portal is not available here, for the reason given.
    #[error("{0}")]
    NotAvailable(String),
    /// 500: a bug or an unexpected failure. Details are in the server log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TwoFactorRequired(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotAvailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The LogicMonitor body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.status().as_u16(), self.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = self.status();
        let mut resp = (status, axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after, .. } = self {
            if let Ok(v) = retry_after.to_string().parse() {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::RoleChange(r) => ApiError::Forbidden(r.to_string()),
            StoreError::Token(r) => ApiError::Forbidden(r.to_string()),
            StoreError::Immutable(msg) => ApiError::Forbidden(msg),
            StoreError::InUse(msg) => ApiError::Conflict(msg),
            StoreError::Invalid(msg) => ApiError::BadRequest(msg),
            StoreError::Database(source) => {
                tracing::error!(error = %source, "database error");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<palisade_core::token_migration::MigrationRefusal> for ApiError {
    fn from(r: palisade_core::token_migration::MigrationRefusal) -> Self {
        ApiError::Forbidden(r.to_string())
    }
}

/// Parses a JSON request body, answering 400 with the parser's position on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_table() {
        for (e, status, code) in [
            (ApiError::BadRequest("x".into()), 400, 1400),
            (ApiError::Unauthenticated("x".into()), 401, 1401),
            (ApiError::Forbidden("x".into()), 403, 1403),
            (ApiError::NotFound("x".into()), 404, 1404),
            (ApiError::Conflict("x".into()), 409, 1409),
            (ApiError::TwoFactorRequired("x".into()), 412, 1412),
            (ApiError::TooLarge(1), 413, 1413),
            (
                ApiError::RateLimited {
                    limit: 1,
                    window_secs: 60,
                    retry_after: 3,
                },
                429,
                1429,
            ),
            (ApiError::Unavailable, 503, 1503),
            (ApiError::Internal("secret detail".into()), 500, 1500),
        ] {
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.body().error_code, code);
        }
        assert!(!ApiError::Internal("secret detail".into())
            .body()
            .error_message
            .contains("secret"));
    }
}
