//! Reads shared by several pages, always filtered by the user's privileges the way the
//! REST handlers filter them.

use super::ctx::Ui;
use crate::monitor::collectors as col;
use crate::monitor::devices::may;
use crate::monitor::estate::{DeviceView, Estate};
use crate::AppState;
use palisade_core::privilege::Level;
use palisade_store::inventory::CollectorDoc;
use palisade_store::objects::{self, ObjectQuery};
use palisade_tsdb::{Aggregation, Selector};
use std::collections::HashSet;

/// How far back "has data" looks.
pub const RECENT_MS: i64 = 15 * 60_000;

/// The devices the user may read.
pub fn visible_devices<'a>(ui: &Ui, estate: &'a Estate) -> Vec<&'a DeviceView> {
    let reader = ui.reader();
    estate
        .devices
        .values()
        .filter(|v| may(&reader, v.all_groups.iter().copied(), Level::Read))
        .collect()
}

/// Whether the user may read a group (a privilege on it or an ancestor).
pub fn group_visible(ui: &Ui, estate: &Estate, id: i64) -> bool {
    let Some(n) = estate.groups.get(&id) else {
        return false;
    };
    let mut scope = n.ancestors.clone();
    scope.push(id);
    may(&ui.reader(), scope, Level::Read)
}

/// Display names (lower case) of the devices with at least one sample in the last
/// [`RECENT_MS`]; `Err` says why it is unknown (no time-series store here).
pub async fn devices_with_recent_data(state: &AppState) -> Result<HashSet<String>, String> {
    let tsdb = state.tsdb().map_err(|e| super::error::message(&e))?;
    let now = state.portal.now();
    let series = tsdb
        .query_range(
            &Selector::all(),
            now - RECENT_MS,
            now,
            RECENT_MS,
            Aggregation::Count,
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(series
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(k, _)| k.label("device").map(str::to_lowercase))
        .collect())
}

/// The collectors the user may read (as the collector list does).
pub async fn visible_collectors(ui: &Ui) -> Result<Vec<CollectorDoc>, crate::error::ApiError> {
    let all: Vec<CollectorDoc> =
        objects::list(ui.state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let reader = ui.reader();
    Ok(all
        .into_iter()
        .filter(|c| col::require(&reader, c.group_id, Level::Read).is_ok())
        .collect())
}

/// A collector's status in words: (text, is it a problem).
pub fn collector_status(code: i64) -> (&'static str, bool) {
    match code {
        1 => ("Up", false),
        2 => ("Down", true),
        3 => ("Suspended", true),
        _ => ("Not registered", true),
    }
}
