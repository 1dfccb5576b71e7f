//! `/setting/accesslogs`: the audit log, newest first.

use super::Params;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{wire, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::privilege::{Level, Need, SettingObject};
use serde_json::Value;
use std::sync::Arc;

const READ: Need = Need::Setting(SettingObject::AccessLogs, Level::Read);

/// With a filter or a sort, this many of the newest entries are searched.
pub const SEARCH_WINDOW: i64 = 100_000;

/// `GET /setting/accesslogs`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    caller.require(READ)?;
    let params = Params::parse(q.as_deref())?;
    let query = params.list_query()?;
    state.audit.flush().await;
    let store = &state.portal.store;
    if query.filter.is_none() && query.sort.is_none() {
        // Plain paging reads only the page.
        let (total, _) = store.audit_head().await?;
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let size = i64::try_from(query.page_size()).unwrap_or(50);
        let before = total.saturating_sub(offset).saturating_add(1);
        let entries = store.list_audit(Some(before), size).await?;
        let items: Vec<Value> = entries.iter().map(wire::audit).collect();
        let (_, items) = palisade_core::listing::ListQuery { offset: 0, ..query }
            .apply(items, wire::AUDIT_REQUIRED);
        return Ok(Json(ListEnvelope {
            total: usize::try_from(total).unwrap_or(0),
            search_id: None,
            items,
        }));
    }
    let mut items = Vec::new();
    let mut before = None;
    while (items.len() as i64) < SEARCH_WINDOW {
        let page = store.list_audit(before, 5000).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        items.extend(page.iter().map(wire::audit));
    }
    params.list(items, wire::AUDIT_REQUIRED)
}

/// `GET /setting/accesslogs/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require(READ)?;
    state.audit.flush().await;
    let seq: i64 = raw
        .parse()
        .map_err(|_| ApiError::NotFound(format!("audit entry `{raw}` not found")))?;
    let entry = state
        .portal
        .store
        .get_audit(seq)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("audit entry {seq} not found")))?;
    Params::parse(q.as_deref())?.one(wire::audit(&entry), wire::AUDIT_REQUIRED)
}
