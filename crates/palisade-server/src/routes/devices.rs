//! `/device/devices` and `/device/groups`, with their properties.

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::monitor::devices::{self as ops, Owner, DEVICE_REQUIRED, GROUP_REQUIRED};
use crate::monitor::props::OpType;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::privilege::Level;
use serde_json::{json, Value};
use std::sync::Arc;

const PROPERTY_REQUIRED: &[&str] = &["name", "value"];

async fn device_json(state: &AppState, caller: &Caller, id: i64) -> Result<Value, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let v = estate
        .devices
        .get(&id)
        .filter(|v| ops::may(caller, v.all_groups.iter().copied(), Level::Read))
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
    Ok(ops::render_device(&estate, v))
}

async fn group_json(state: &AppState, caller: &Caller, id: i64) -> Result<Value, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let n = estate
        .groups
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("device group {id} not found")))?;
    let mut scope = n.ancestors.clone();
    scope.push(id);
    if !ops::may(caller, scope, Level::Read) {
        return Err(ApiError::NotFound(format!("device group {id} not found")));
    }
    Ok(ops::render_group(&estate, n))
}

/// `GET /device/devices`.
pub async fn list_devices(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let estate = state.estate.get(&state.portal).await?;
    let items = estate
        .devices
        .values()
        .filter(|v| ops::may(&caller, v.all_groups.iter().copied(), Level::Read))
        .map(|v| ops::render_device(&estate, v))
        .collect();
    params.list(items, DEVICE_REQUIRED)
}

/// `GET /device/devices/{id}`.
pub async fn get_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    Params::parse(q.as_deref())?.one(device_json(&state, &caller, id).await?, DEVICE_REQUIRED)
}

/// `POST /device/devices`.
pub async fn create_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    let id = ops::create_device(&state, &caller, &body).await?;
    Ok(Json(device_json(&state, &caller, id).await?))
}

/// `PATCH /device/devices/{id}`.
pub async fn patch_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let params = Params::parse(q.as_deref())?;
    let op = OpType::parse(params.get("opType"), OpType::Refresh)?;
    let body: Value = parse_json(&body)?;
    ops::update_device(&state, &caller, id, &body, op, false).await?;
    Ok(Json(device_json(&state, &caller, id).await?))
}

/// `PUT /device/devices/{id}`.
pub async fn put_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let body: Value = parse_json(&body)?;
    ops::update_device(&state, &caller, id, &body, OpType::Refresh, true).await?;
    Ok(Json(device_json(&state, &caller, id).await?))
}

/// `DELETE /device/devices/{id}`.
pub async fn delete_device(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    ops::delete_device(&state, &caller, id).await?;
    Ok(Json(json!({})))
}

/// `GET /device/devices/{id}/properties`.
pub async fn list_device_properties(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let id = id(&raw, "device")?;
    let estate = state.estate.get(&state.portal).await?;
    let v = estate
        .devices
        .get(&id)
        .filter(|v| ops::may(&caller, v.all_groups.iter().copied(), Level::Read))
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
    Params::parse(q.as_deref())?.list(ops::render_device_properties(v), PROPERTY_REQUIRED)
}

fn find_property(items: Vec<Value>, name: &str) -> Result<Value, ApiError> {
    items
        .into_iter()
        .find(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| ApiError::NotFound(format!("property `{name}` not found")))
}

/// `GET /device/devices/{id}/properties/{name}`.
pub async fn get_device_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let estate = state.estate.get(&state.portal).await?;
    let v = estate
        .devices
        .get(&id)
        .filter(|v| ops::may(&caller, v.all_groups.iter().copied(), Level::Read))
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
    Ok(Json(find_property(
        ops::render_device_properties(v),
        &name,
    )?))
}

fn property_body(body: &[u8], path_name: Option<&str>) -> Result<(String, String), ApiError> {
    let v: Value = parse_json(body)?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(path_name.map(str::to_string))
        .ok_or_else(|| ApiError::BadRequest("a property needs `name` and `value`".into()))?;
    if let Some(p) = path_name {
        if !p.eq_ignore_ascii_case(&name) {
            return Err(ApiError::BadRequest(format!(
                "the body names property `{name}`, the path `{p}`"
            )));
        }
    }
    let value = match v.get("value") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => {
            return Err(ApiError::BadRequest(
                "a property needs a string `value`".into(),
            ))
        }
    };
    Ok((name, value))
}

async fn property_answer(
    state: &AppState,
    owner: Owner,
    name: &str,
) -> Result<Json<Value>, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let items = match owner {
        Owner::Device(id) => estate
            .devices
            .get(&id)
            .map(ops::render_device_properties)
            .unwrap_or_default(),
        Owner::Group(id) => estate
            .groups
            .get(&id)
            .map(ops::render_group_properties)
            .unwrap_or_default(),
    };
    Ok(Json(find_property(items, name)?))
}

/// `POST /device/devices/{id}/properties`.
pub async fn add_device_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let (name, value) = property_body(&body, None)?;
    ops::set_property(
        &state,
        &caller,
        Owner::Device(id),
        &name,
        Some(&value),
        false,
        true,
    )
    .await?;
    property_answer(&state, Owner::Device(id), &name).await
}

/// `PUT`/`PATCH /device/devices/{id}/properties/{name}`.
pub async fn update_device_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    let (name, value) = property_body(&body, Some(&name))?;
    ops::set_property(
        &state,
        &caller,
        Owner::Device(id),
        &name,
        Some(&value),
        true,
        false,
    )
    .await?;
    property_answer(&state, Owner::Device(id), &name).await
}

/// `DELETE /device/devices/{id}/properties/{name}`.
pub async fn delete_device_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device")?;
    ops::set_property(&state, &caller, Owner::Device(id), &name, None, true, false).await?;
    Ok(Json(json!({})))
}

/// `GET /device/groups`.
pub async fn list_groups(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let estate = state.estate.get(&state.portal).await?;
    let items = estate
        .groups
        .values()
        .filter(|n| {
            let mut scope = n.ancestors.clone();
            scope.push(n.doc.id);
            ops::may(&caller, scope, Level::Read)
        })
        .map(|n| ops::render_group(&estate, n))
        .collect();
    params.list(items, GROUP_REQUIRED)
}

/// `GET /device/groups/{id}`.
pub async fn get_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    Params::parse(q.as_deref())?.one(group_json(&state, &caller, id).await?, GROUP_REQUIRED)
}

/// `POST /device/groups`.
pub async fn create_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    let id = ops::create_group(&state, &caller, &body).await?;
    Ok(Json(group_json(&state, &caller, id).await?))
}

/// `PATCH /device/groups/{id}`.
pub async fn patch_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let params = Params::parse(q.as_deref())?;
    let op = OpType::parse(params.get("opType"), OpType::Refresh)?;
    let body: Value = parse_json(&body)?;
    ops::update_group(&state, &caller, id, &body, op, false).await?;
    Ok(Json(group_json(&state, &caller, id).await?))
}

/// `PUT /device/groups/{id}`.
pub async fn put_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let body: Value = parse_json(&body)?;
    ops::update_group(&state, &caller, id, &body, OpType::Refresh, true).await?;
    Ok(Json(group_json(&state, &caller, id).await?))
}

/// `DELETE /device/groups/{id}`.
pub async fn delete_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let params = Params::parse(q.as_deref())?;
    ops::delete_group(&state, &caller, id, params.flag("deleteChildren")).await?;
    Ok(Json(json!({})))
}

/// `GET /device/groups/{id}/devices`.
pub async fn group_devices(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let id = id(&raw, "device group")?;
    group_json(&state, &caller, id).await?;
    let params = Params::parse(q.as_deref())?;
    let estate = state.estate.get(&state.portal).await?;
    let items = estate
        .direct_members(id)
        .into_iter()
        .filter(|v| ops::may(&caller, v.all_groups.iter().copied(), Level::Read))
        .map(|v| ops::render_device(&estate, v))
        .collect();
    params.list(items, DEVICE_REQUIRED)
}

/// `GET /device/groups/{id}/properties`.
pub async fn list_group_properties(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let id = id(&raw, "device group")?;
    group_json(&state, &caller, id).await?;
    let estate = state.estate.get(&state.portal).await?;
    let items = estate
        .groups
        .get(&id)
        .map(ops::render_group_properties)
        .unwrap_or_default();
    Params::parse(q.as_deref())?.list(items, PROPERTY_REQUIRED)
}

/// `GET /device/groups/{id}/properties/{name}`.
pub async fn get_group_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    group_json(&state, &caller, id).await?;
    property_answer(&state, Owner::Group(id), &name).await
}

/// `POST /device/groups/{id}/properties`.
pub async fn add_group_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let (name, value) = property_body(&body, None)?;
    ops::set_property(
        &state,
        &caller,
        Owner::Group(id),
        &name,
        Some(&value),
        false,
        true,
    )
    .await?;
    property_answer(&state, Owner::Group(id), &name).await
}

/// `PUT`/`PATCH /device/groups/{id}/properties/{name}`.
pub async fn update_group_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    let (name, value) = property_body(&body, Some(&name))?;
    ops::set_property(
        &state,
        &caller,
        Owner::Group(id),
        &name,
        Some(&value),
        true,
        false,
    )
    .await?;
    property_answer(&state, Owner::Group(id), &name).await
}

/// `DELETE /device/groups/{id}/properties/{name}`.
pub async fn delete_group_property(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((raw, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "device group")?;
    ops::set_property(&state, &caller, Owner::Group(id), &name, None, true, false).await?;
    Ok(Json(json!({})))
}
