//! Devices and device groups: the operations behind `/device/devices` and `/device/groups`,
//! and their LogicMonitor shapes.

use super::estate::{DeviceView, Estate, GroupNode, Source, ROOT_GROUP};
use super::fields::{bool_field, int_field, str_field};
use super::props::{self, OpType};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::portal::Actor;
use crate::AppState;
use palisade_core::access::{Check, Scope};
use palisade_core::applies_to;
use palisade_core::privilege::Level;
use palisade_store::inventory::{DeviceDoc, DeviceGroupDoc};
use palisade_store::objects;
use palisade_store::StoreError;
use serde_json::{json, Value};

/// Fields the SDK's `Device` model requires on every item.
pub const DEVICE_REQUIRED: &[&str] = &["name", "displayName", "preferredCollectorId", "type", "id"];
/// Fields the SDK's `DeviceGroup` model requires.
pub const GROUP_REQUIRED: &[&str] = &["name", "id"];

/// Whether the caller may act on a device in these groups at this level: a privilege on
/// `host_group:*` or on one of the groups (or an ancestor).
pub fn may(caller: &Caller, groups: impl IntoIterator<Item = i64>, level: Level) -> bool {
    Check::new(Scope::HostGroups(groups.into_iter().collect()), level).permits(&caller.privileges)
}

/// Refuses unless [`may`].
pub fn require(
    caller: &Caller,
    groups: impl IntoIterator<Item = i64>,
    level: Level,
) -> Result<(), ApiError> {
    if may(caller, groups, level) {
        Ok(())
    } else {
        let op = level.as_str();
        Err(ApiError::Forbidden(format!(
            "user `{}` lacks host_group:<id>:{op} for one of the groups involved (or host_group:*:{op}); grant it through a custom role",
            caller.user.username,
        )))
    }
}

fn group_chain(estate: &Estate, group: i64) -> Vec<i64> {
    match estate.groups.get(&group) {
        Some(n) => {
            let mut c = n.ancestors.clone();
            c.push(group);
            c
        }
        None => vec![ROOT_GROUP],
    }
}

fn secs(ms: i64) -> i64 {
    ms / 1000
}

/// `hostGroupIds`: `"1,5"` (LogicMonitor), a number, or a list.
fn group_ids_field(v: &Value) -> Result<Option<Vec<i64>>, ApiError> {
    let bad = || {
        ApiError::BadRequest("`hostGroupIds` must be a comma-separated list of group ids".into())
    };
    let ids: Vec<i64> = match v.get("hostGroupIds") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?,
        Some(Value::Number(n)) => vec![n.as_i64().ok_or_else(bad)?],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_i64().ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    let mut out = Vec::new();
    for i in ids {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(Some(out))
}

fn check_name(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::BadRequest(format!("`{what}` must not be empty")));
    }
    if s.len() > max || s.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "`{what}` must be at most {max} bytes without control characters"
        )));
    }
    Ok(())
}

async fn check_collector(state: &AppState, id: i64) -> Result<(), ApiError> {
    if id == 0 {
        return Ok(());
    }
    let c: Option<palisade_store::inventory::CollectorDoc> =
        objects::get(state.portal.store.as_ref(), id).await?;
    if c.is_none() {
        return Err(ApiError::BadRequest(format!(
            "collector {id} does not exist"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------- devices

/// Creates a device from an SDK `Device` body.
pub async fn create_device(
    state: &AppState,
    caller: &Caller,
    body: &Value,
) -> Result<i64, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let name = str_field(body, "name")?.unwrap_or_default();
    check_name("name", &name, 255)?;
    let display = str_field(body, "displayName")?.unwrap_or_else(|| name.clone());
    check_name("displayName", &display, 255)?;
    let groups = group_ids_field(body)?.unwrap_or_default();
    for g in &groups {
        match estate.groups.get(g) {
            None => {
                return Err(ApiError::BadRequest(format!(
                    "device group {g} does not exist"
                )))
            }
            Some(n) if n.applies_to.is_some() => {
                return Err(ApiError::BadRequest(format!(
                    "device group {g} is dynamic (appliesTo); devices join it by their properties"
                )))
            }
            Some(_) => {}
        }
    }
    let scope: Vec<i64> = if groups.is_empty() {
        vec![ROOT_GROUP]
    } else {
        groups
            .iter()
            .flat_map(|g| group_chain(&estate, *g))
            .collect()
    };
    require(caller, scope, Level::Manage)?;
    let collector = int_field(body, "preferredCollectorId")?.unwrap_or(0);
    check_collector(state, collector).await?;
    let incoming =
        props::parse_list(body.get("customProperties"), "customProperties")?.unwrap_or_default();
    let properties = props::apply(&state.portal.keys, &[], &incoming, OpType::Refresh)?;
    let doc = DeviceDoc {
        id: 0,
        name,
        display_name: display.clone(),
        description: str_field(body, "description")?.unwrap_or_default(),
        preferred_collector_id: collector,
        disable_alerting: bool_field(body, "disableAlerting")?.unwrap_or(false),
        group_ids: groups,
        properties,
        thresholds: Vec::new(),
        created_by: caller.actor.username.clone(),
        link: str_field(body, "link")?.unwrap_or_default(),
        created_on: 0,
        updated_on: 0,
    };
    let audit = caller.actor.event(
        state.portal.now(),
        "device.create",
        format!("created device {{id}} `{display}`"),
    );
    let created = objects::create(state.portal.store.as_ref(), &doc, Some(audit)).await?;
    state.estate.invalidate();
    Ok(created.id)
}

/// Changes a device (`PATCH`, or `PUT` when `full`).
pub async fn update_device(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &Value,
    op: OpType,
    full: bool,
) -> Result<(), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let view = estate
        .devices
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
    require(caller, view.all_groups.iter().copied(), Level::Write)?;
    let name = str_field(body, "name")?;
    if let Some(n) = &name {
        check_name("name", n, 255)?;
    }
    let display = str_field(body, "displayName")?;
    if let Some(n) = &display {
        check_name("displayName", n, 255)?;
    }
    let groups = group_ids_field(body)?;
    if let Some(gs) = &groups {
        for g in gs {
            match estate.groups.get(g) {
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "device group {g} does not exist"
                    )))
                }
                Some(n) if n.applies_to.is_some() => {
                    return Err(ApiError::BadRequest(format!(
                        "device group {g} is dynamic (appliesTo)"
                    )))
                }
                Some(_) => {}
            }
        }
        let scope: Vec<i64> = gs.iter().flat_map(|g| group_chain(&estate, *g)).collect();
        require(caller, scope, Level::Manage)?;
    }
    let collector = int_field(body, "preferredCollectorId")?;
    if let Some(c) = collector {
        check_collector(state, c).await?;
    }
    let description = str_field(body, "description")?;
    let disable = bool_field(body, "disableAlerting")?;
    let link = str_field(body, "link")?;
    let incoming = props::parse_list(body.get("customProperties"), "customProperties")?;
    let keys = state.portal.keys.clone();
    let audit = caller.actor.event(
        state.portal.now(),
        "device.update",
        format!("changed device {id} `{}`", view.doc.display_name),
    );
    objects::update::<DeviceDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |d| {
            if let Some(v) = name {
                d.name = v;
            }
            if let Some(v) = display {
                d.display_name = v;
            }
            if let Some(v) = description {
                d.description = v;
            }
            if let Some(v) = collector {
                d.preferred_collector_id = v;
            }
            if let Some(v) = disable {
                d.disable_alerting = v;
            }
            if let Some(v) = link {
                d.link = v;
            }
            if let Some(v) = groups {
                d.group_ids = v;
            }
            let op = if full { OpType::Refresh } else { op };
            if let Some(list) = incoming {
                d.properties = props::apply(&keys, &d.properties, &list, op)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
            Ok(())
        },
        Some(audit),
    )
    .await?;
    state.estate.invalidate();
    Ok(())
}

/// Deletes a device (its datasource instances go with it; its time series stay until
/// retention removes them).
pub async fn delete_device(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let view = estate
        .devices
        .get(&id)
        .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
    require(caller, view.all_groups.iter().copied(), Level::Manage)?;
    let audit = caller.actor.event(
        state.portal.now(),
        "device.delete",
        format!("deleted device {id} `{}`", view.doc.display_name),
    );
    objects::delete::<DeviceDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    state.portal.store.delete_device_datasources(id).await?;
    state.estate.invalidate();
    Ok(())
}

/// Sets or removes one custom property of a device or group.
pub async fn set_property(
    state: &AppState,
    caller: &Caller,
    owner: Owner,
    name: &str,
    value: Option<&str>,
    must_exist: bool,
    must_not_exist: bool,
) -> Result<(), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let (scope, existing) = match owner {
        Owner::Device(id) => {
            let v = estate
                .devices
                .get(&id)
                .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
            (
                v.all_groups.iter().copied().collect::<Vec<_>>(),
                v.doc.properties.clone(),
            )
        }
        Owner::Group(id) => {
            let n = estate
                .groups
                .get(&id)
                .ok_or_else(|| ApiError::NotFound(format!("device group {id} not found")))?;
            (group_chain(&estate, id), n.doc.properties.clone())
        }
    };
    require(caller, scope, Level::Write)?;
    let present = existing.iter().any(|p| p.name.eq_ignore_ascii_case(name));
    if must_exist && !present {
        return Err(ApiError::NotFound(format!("property `{name}` not found")));
    }
    if must_not_exist && present {
        return Err(ApiError::Conflict(format!(
            "property `{name}` already exists"
        )));
    }
    let list = vec![(name.to_string(), value.unwrap_or_default().to_string())];
    let op = if value.is_some() {
        OpType::Replace
    } else {
        OpType::Delete
    };
    let keys = state.portal.keys.clone();
    let now = state.portal.now();
    let action = if value.is_some() {
        "property.set"
    } else {
        "property.delete"
    };
    match owner {
        Owner::Device(id) => {
            let audit =
                caller
                    .actor
                    .event(now, action, format!("{action} `{name}` on device {id}"));
            objects::update::<DeviceDoc, _>(
                state.portal.store.as_ref(),
                id,
                move |d| {
                    d.properties = props::apply(&keys, &d.properties, &list, op)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    Ok(())
                },
                Some(audit),
            )
            .await?;
        }
        Owner::Group(id) => {
            let audit = caller.actor.event(
                now,
                action,
                format!("{action} `{name}` on device group {id}"),
            );
            objects::update::<DeviceGroupDoc, _>(
                state.portal.store.as_ref(),
                id,
                move |d| {
                    d.properties = props::apply(&keys, &d.properties, &list, op)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    Ok(())
                },
                Some(audit),
            )
            .await?;
        }
    }
    state.estate.invalidate();
    Ok(())
}

/// Whose properties.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    /// A device.
    Device(i64),
    /// A device group.
    Group(i64),
}

fn name_values<'a>(list: impl Iterator<Item = (&'a str, &'a str, bool)>) -> Vec<Value> {
    list.map(|(n, v, sealed)| json!({"name": n, "value": props::shown(n, v, sealed)}))
        .collect()
}

/// A device in LogicMonitor's shape.
pub fn render_device(estate: &Estate, v: &DeviceView) -> Value {
    let d = &v.doc;
    let custom = name_values(
        d.properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str(), p.sealed)),
    );
    let system = name_values(
        v.properties
            .values()
            .filter(|p| p.source == Source::System)
            .map(|p| (p.name.as_str(), p.value.as_str(), p.sealed)),
    );
    let inherited = name_values(
        v.properties
            .values()
            .filter(|p| matches!(p.source, Source::Inherited(_)))
            .map(|p| (p.name.as_str(), p.value.as_str(), p.sealed)),
    );
    let groups = v.direct_groups();
    let ids: Vec<String> = groups.iter().map(i64::to_string).collect();
    json!({
        "id": d.id,
        "name": d.name,
        "displayName": d.display_name,
        "description": d.description,
        "type": "",
        "deviceType": 0,
        "preferredCollectorId": d.preferred_collector_id,
        "currentCollectorId": v.collector_id,
        "preferredCollectorGroupId": 0,
        "hostGroupIds": ids.join(","),
        "disableAlerting": d.disable_alerting,
        "hostStatus": "normal",
        "link": d.link,
        "createdOn": secs(d.created_on),
        "updatedOn": secs(d.updated_on),
        "customProperties": custom,
        "systemProperties": system,
        "autoProperties": [],
        "inheritedProperties": inherited,
        "groupPaths": groups.iter().filter_map(|g| estate.groups.get(g).map(|n| n.full_path.clone())).collect::<Vec<_>>(),
        "relatedDeviceId": -1,
        "enableNetflow": false,
    })
}

/// A device's properties, as `/device/devices/{id}/properties` lists them.
pub fn render_device_properties(v: &DeviceView) -> Vec<Value> {
    v.properties
        .values()
        .map(|p| {
            let ty = match p.source {
                Source::System => "system",
                Source::Custom => "custom",
                Source::Inherited(_) => "inherit",
            };
            let inherit_list = match p.source {
                Source::Inherited(g) => json!([{"id": g}]),
                _ => json!([]),
            };
            json!({"name": p.name, "value": props::shown(&p.name, &p.value, p.sealed), "type": ty, "inheritList": inherit_list})
        })
        .collect()
}

/// A group's own properties.
pub fn render_group_properties(n: &GroupNode) -> Vec<Value> {
    n.doc
        .properties
        .iter()
        .map(|p| json!({"name": p.name, "value": props::shown(&p.name, &p.value, p.sealed), "type": "custom"}))
        .collect()
}

// ---------------------------------------------------------------- groups

/// A group in LogicMonitor's shape.
pub fn render_group(estate: &Estate, n: &GroupNode) -> Value {
    let g = &n.doc;
    let subgroups: Vec<Value> = estate
        .children(g.id)
        .iter()
        .map(|c| json!({"id": c.doc.id, "name": c.doc.name, "fullPath": c.full_path, "numOfHosts": estate.members_below(c.doc.id).len()}))
        .collect();
    json!({
        "id": g.id,
        "name": g.name,
        "parentId": g.parent_id,
        "fullPath": n.full_path,
        "description": g.description,
        "appliesTo": g.applies_to,
        "groupType": if n.applies_to.is_some() { "Dynamic" } else { "Normal" },
        "disableAlerting": g.disable_alerting,
        "defaultCollectorId": g.default_collector_id,
        "customProperties": name_values(g.properties.iter().map(|p| (p.name.as_str(), p.value.as_str(), p.sealed))),
        "numOfHosts": estate.members_below(g.id).len(),
        "numOfDirectDevices": estate.direct_members(g.id).len(),
        "numOfDirectSubGroups": subgroups.len(),
        "subGroups": subgroups,
        "createdOn": secs(g.created_on),
    })
}

fn check_applies_to(expr: &str) -> Result<(), ApiError> {
    if expr.trim().is_empty() {
        return Ok(());
    }
    applies_to::parse(expr)
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest(format!("appliesTo: {e}")))
}

/// Creates a group.
pub async fn create_group(
    state: &AppState,
    caller: &Caller,
    body: &Value,
) -> Result<i64, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let name = str_field(body, "name")?.unwrap_or_default();
    check_name("name", &name, 255)?;
    if name.contains('/') {
        return Err(ApiError::BadRequest(
            "a group name cannot contain `/`".into(),
        ));
    }
    let parent = int_field(body, "parentId")?
        .filter(|p| *p != 0)
        .unwrap_or(ROOT_GROUP);
    if !estate.groups.contains_key(&parent) {
        return Err(ApiError::BadRequest(format!(
            "parent group {parent} does not exist"
        )));
    }
    require(caller, group_chain(&estate, parent), Level::Manage)?;
    let applies = str_field(body, "appliesTo")?.unwrap_or_default();
    check_applies_to(&applies)?;
    let collector = int_field(body, "defaultCollectorId")?.unwrap_or(0);
    check_collector(state, collector).await?;
    let incoming =
        props::parse_list(body.get("customProperties"), "customProperties")?.unwrap_or_default();
    let doc = DeviceGroupDoc {
        id: 0,
        name: name.clone(),
        parent_id: parent,
        description: str_field(body, "description")?.unwrap_or_default(),
        applies_to: applies,
        disable_alerting: bool_field(body, "disableAlerting")?.unwrap_or(false),
        default_collector_id: collector,
        properties: props::apply(&state.portal.keys, &[], &incoming, OpType::Refresh)?,
        thresholds: Vec::new(),
        created_on: 0,
    };
    let audit = caller.actor.event(
        state.portal.now(),
        "group.create",
        format!("created device group {{id}} `{name}`"),
    );
    let created = objects::create(state.portal.store.as_ref(), &doc, Some(audit)).await?;
    state.estate.invalidate();
    Ok(created.id)
}

/// Changes a group.
pub async fn update_group(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &Value,
    op: OpType,
    full: bool,
) -> Result<(), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    if !estate.groups.contains_key(&id) {
        return Err(ApiError::NotFound(format!("device group {id} not found")));
    }
    require(caller, group_chain(&estate, id), Level::Write)?;
    let name = str_field(body, "name")?;
    if id == ROOT_GROUP && name.as_deref().is_some_and(|n| !n.is_empty()) {
        return Err(ApiError::BadRequest(
            "the root group cannot be renamed".into(),
        ));
    }
    if let Some(n) = &name {
        if id != ROOT_GROUP {
            check_name("name", n, 255)?;
        }
    }
    let parent = int_field(body, "parentId")?.filter(|p| *p != 0);
    if let Some(p) = parent {
        if id == ROOT_GROUP {
            return Err(ApiError::BadRequest("the root group has no parent".into()));
        }
        if !estate.groups.contains_key(&p) {
            return Err(ApiError::BadRequest(format!(
                "parent group {p} does not exist"
            )));
        }
        if group_chain(&estate, p).contains(&id) {
            return Err(ApiError::BadRequest(
                "a group cannot move below itself".into(),
            ));
        }
        require(caller, group_chain(&estate, p), Level::Manage)?;
    }
    let applies = str_field(body, "appliesTo")?;
    if let Some(a) = &applies {
        check_applies_to(a)?;
        if id == ROOT_GROUP && !a.trim().is_empty() {
            return Err(ApiError::BadRequest(
                "the root group cannot be dynamic".into(),
            ));
        }
    }
    let collector = int_field(body, "defaultCollectorId")?;
    if let Some(c) = collector {
        check_collector(state, c).await?;
    }
    let description = str_field(body, "description")?;
    let disable = bool_field(body, "disableAlerting")?;
    let incoming = props::parse_list(body.get("customProperties"), "customProperties")?;
    let keys = state.portal.keys.clone();
    let audit = caller.actor.event(
        state.portal.now(),
        "group.update",
        format!("changed device group {id}"),
    );
    objects::update::<DeviceGroupDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |g| {
            if let Some(v) = name {
                if g.id != ROOT_GROUP {
                    g.name = v;
                }
            }
            if let Some(v) = parent {
                g.parent_id = v;
            }
            if let Some(v) = applies {
                g.applies_to = v;
            }
            if let Some(v) = collector {
                g.default_collector_id = v;
            }
            if let Some(v) = description {
                g.description = v;
            }
            if let Some(v) = disable {
                g.disable_alerting = v;
            }
            let op = if full { OpType::Refresh } else { op };
            if let Some(list) = incoming {
                g.properties = props::apply(&keys, &g.properties, &list, op)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
            Ok(())
        },
        Some(audit),
    )
    .await?;
    state.estate.invalidate();
    Ok(())
}

/// Deletes a group; with `delete_children` its subgroups too (devices stay, leaving the
/// deleted groups).
pub async fn delete_group(
    state: &AppState,
    caller: &Caller,
    id: i64,
    delete_children: bool,
) -> Result<(), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    if id == ROOT_GROUP {
        return Err(ApiError::BadRequest(
            "the root group cannot be deleted".into(),
        ));
    }
    if !estate.groups.contains_key(&id) {
        return Err(ApiError::NotFound(format!("device group {id} not found")));
    }
    require(caller, group_chain(&estate, id), Level::Manage)?;
    let doomed: Vec<i64> = estate
        .groups
        .values()
        .filter(|n| n.doc.id == id || n.ancestors.contains(&id))
        .map(|n| n.doc.id)
        .collect();
    if doomed.len() > 1 && !delete_children {
        return Err(ApiError::Conflict(format!(
            "device group {id} has subgroups; delete them first or pass deleteChildren=true"
        )));
    }
    let now = state.portal.now();
    for g in doomed.iter().rev() {
        let audit = caller
            .actor
            .event(now, "group.delete", format!("deleted device group {g}"));
        objects::delete::<DeviceGroupDoc>(state.portal.store.as_ref(), *g, Some(audit)).await?;
    }
    for v in estate.devices.values() {
        if v.doc.group_ids.iter().any(|g| doomed.contains(g)) {
            let doomed = doomed.clone();
            let audit = Actor::system("groups").event(
                now,
                "device.update",
                format!("device {} left deleted groups", v.doc.id),
            );
            objects::update::<DeviceDoc, _>(
                state.portal.store.as_ref(),
                v.doc.id,
                move |d| {
                    d.group_ids.retain(|g| !doomed.contains(g));
                    Ok(())
                },
                Some(audit),
            )
            .await?;
        }
    }
    state.estate.invalidate();
    Ok(())
}
