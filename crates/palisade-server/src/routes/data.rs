//! LogicMonitor's read side of collected data: a device's datasources
//! (`/device/devices/{id}/devicedatasources`), their instances, and an instance's data
//! (`.../instances/{instanceId}/data?start&end&datapoints`).

use super::{id, Params};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::monitor::devices::may;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::privilege::Level;
use palisade_tsdb::{Aggregation, Selector};
use serde_json::{json, Value};
use std::sync::Arc;

/// At most this many rows per data call (LogicMonitor pages larger ranges).
const MAX_ROWS: usize = 10_000;

async fn device_name(state: &AppState, caller: &Caller, id: i64) -> Result<String, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    estate
        .devices
        .get(&id)
        .filter(|v| may(caller, v.all_groups.iter().copied(), Level::Read))
        .map(|v| v.doc.display_name.clone())
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))
}

/// `GET /device/devices/{id}/devicedatasources`.
pub async fn device_datasources(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let device = id(&raw, "device")?;
    let name = device_name(&state, &caller, device).await?;
    let list = state.portal.store.list_device_datasources(device).await?;
    let statuses = state.task_status.lock().clone();
    let mut items = Vec::with_capacity(list.len());
    for h in list {
        let n = state.portal.store.list_instances(h.id).await?.len();
        let st = statuses.get(&(device, h.datasource.clone()));
        items.push(json!({
            "id": h.id,
            "deviceId": device,
            "deviceName": name,
            "dataSourceName": h.datasource,
            "dataSourceDisplayName": h.datasource,
            "instanceNumber": n,
            "isMultiple": n > 1,
            "createdOn": h.created_on / 1000,
            "assignedOn": h.created_on / 1000,
            "collectionStatus": st.map(|s| s.status.clone()).unwrap_or_else(|| "ok".into()),
            "collectionMessage": st.map(|s| s.message.clone()).unwrap_or_default(),
            "collectionLacks": st.map(|s| s.lacks.clone()).unwrap_or_default(),
        }));
    }
    Params::parse(q.as_deref())?.list(items, &["id"])
}

/// `GET /device/devices/{id}/devicedatasources/{hdsId}/instances`.
pub async fn instances(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, raw_hds)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let device = id(&raw, "device")?;
    device_name(&state, &caller, device).await?;
    let hds = id(&raw_hds, "device datasource")?;
    let h = state
        .portal
        .store
        .get_device_datasource(hds)
        .await?
        .filter(|h| h.device_id == device)
        .ok_or_else(|| ApiError::NotFound(format!("device datasource {hds} not found")))?;
    let items = state
        .portal
        .store
        .list_instances(h.id)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "name": i.name,
                "displayName": i.display_name,
                "description": i.description,
                "deviceId": device,
                "deviceDataSourceId": h.id,
                "dataSourceName": h.datasource,
                "lastCollectedTime": i.last_seen / 1000,
                "customProperties": serde_json::from_str::<serde_json::Map<String, Value>>(&i.properties)
                    .map(|m| m.into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>())
                    .unwrap_or_default(),
            })
        })
        .collect();
    Params::parse(q.as_deref())?.list(items, &["id", "name", "displayName"])
}

fn epoch_secs(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("`{name}` must be epoch seconds"))),
    }
}

/// `GET /device/devices/{id}/devicedatasources/{hdsId}/instances/{instanceId}/data`:
/// `start`/`end` in epoch seconds (default: the last hour), `datapoints` a comma-separated
/// list (default: all). Rows newest first, as LogicMonitor returns them; a value missing
/// at a timestamp is `null`.
pub async fn instance_data(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, raw_hds, raw_inst)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let device = id(&raw, "device")?;
    let name = device_name(&state, &caller, device).await?;
    let hds = id(&raw_hds, "device datasource")?;
    let inst_id = id(&raw_inst, "instance")?;
    let h = state
        .portal
        .store
        .get_device_datasource(hds)
        .await?
        .filter(|h| h.device_id == device)
        .ok_or_else(|| ApiError::NotFound(format!("device datasource {hds} not found")))?;
    let inst = state
        .portal
        .store
        .list_instances(h.id)
        .await?
        .into_iter()
        .find(|i| i.id == inst_id)
        .ok_or_else(|| ApiError::NotFound(format!("instance {inst_id} not found")))?;
    let params = Params::parse(q.as_deref())?;
    let now = state.portal.now();
    let end = epoch_secs(&params, "end")?.map(|s| s * 1000).unwrap_or(now);
    let start = epoch_secs(&params, "start")?
        .map(|s| s * 1000)
        .unwrap_or(end - 3_600_000);
    if end < start {
        return Err(ApiError::BadRequest("`end` is before `start`".into()));
    }
    let wanted: Option<Vec<String>> = params.get("datapoints").filter(|s| !s.is_empty()).map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let selector = Selector::all()
        .eq("device", name.clone())
        .eq("datasource", h.datasource.clone())
        .eq("instance", inst.name.clone());
    let series = state
        .tsdb()?
        .query_range(&selector, start, end, 60_000, Aggregation::Raw)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut columns: Vec<(String, Vec<palisade_tsdb::Sample>)> = series
        .into_iter()
        .filter_map(|(k, s)| k.label("datapoint").map(|d| (d.to_string(), s)))
        .filter(|(d, _)| wanted.as_ref().is_none_or(|w| w.iter().any(|x| x == d)))
        .collect();
    columns.sort_by(|a, b| a.0.cmp(&b.0));
    let mut times: Vec<i64> = columns
        .iter()
        .flat_map(|(_, s)| s.iter().map(|x| x.ts_ms))
        .collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    times.dedup();
    times.truncate(MAX_ROWS);
    let values: Vec<Vec<Value>> = times
        .iter()
        .map(|t| {
            columns
                .iter()
                .map(|(_, s)| {
                    s.binary_search_by(|x| x.ts_ms.cmp(t))
                        .ok()
                        .and_then(|i| s.get(i))
                        .map(|x| json!(x.value))
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect();
    Ok(Json(json!({
        "dataSourceName": h.datasource,
        "dataPoints": columns.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>(),
        "time": times,
        "values": values,
        "nextPageParams": "",
    })))
}
