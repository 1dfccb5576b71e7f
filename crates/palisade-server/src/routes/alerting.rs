//! `/alert/alerts`, `/sdt/sdts`, escalation chains and alert rules (in progress).

use crate::AppState;
use axum::Router;
use std::sync::Arc;

/// The alerting routes, mounted under `/santaba/rest` behind the API gate.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
}
