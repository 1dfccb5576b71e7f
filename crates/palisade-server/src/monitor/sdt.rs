//! Scheduled downtime (SDT): the operations behind `/sdt/sdts`, their LogicMonitor shapes,
//! and which SDTs cover a device at a given moment.
//!
//! An SDT pauses notifications, not evaluation: alerts still open, change and clear, but
//! while an SDT covering the alert's device is in force the alert is `sdted: true` and
//! nothing is sent for it (see `docs/alerts.md`). What covers what:
//!
//! | `type` | covers |
//! |---|---|
//! | `ResourceSDT` | the device `deviceId` |
//! | `ResourceGroupSDT` | every device in `deviceGroupId` or below it (static and dynamic membership); with `dataSourceName`, only that datasource |
//! | `DeviceDataSourceSDT` | the datasource `dataSourceName` on the device `deviceId` |
//! | `CollectorSDT` | every device the collector `collectorId` monitors |

use super::devices::{may, require};
use super::estate::{DeviceView, Estate};
use super::fields::{check_text, int_field, str_field};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::portal::Portal;
use crate::AppState;
use palisade_core::privilege::{allows, Level, Need, SettingObject};
use palisade_core::sdt::{LmSdt, Schedule};
use palisade_store::alerting::{SdtDoc, SdtKind};
use palisade_store::inventory::CollectorDoc;
use palisade_store::objects::{self, ObjectQuery};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Fields the SDK's `SDT` model requires.
pub const SDT_REQUIRED: &[&str] = &["type", "id"];

/// How long the cached SDT list is trusted without a local change.
const MAX_AGE: Duration = Duration::from_secs(5);
/// Longest `comment`.
const MAX_COMMENT: usize = 1024;

/// A stored SDT with its parsed schedule.
#[derive(Debug, Clone)]
pub struct LoadedSdt {
    /// The document.
    pub doc: SdtDoc,
    /// Its schedule.
    pub schedule: Schedule,
}

impl LoadedSdt {
    fn load(doc: SdtDoc) -> Option<LoadedSdt> {
        match Schedule::from_lm(&doc.schedule) {
            Ok(schedule) => Some(LoadedSdt { doc, schedule }),
            Err(e) => {
                tracing::warn!(sdt = doc.id, error = %e, "ignoring a stored SDT whose schedule no longer parses");
                None
            }
        }
    }

    /// Whether it covers this datasource of this device (whatever the time).
    pub fn covers(&self, device: &DeviceView, datasource: &str) -> bool {
        let d = &self.doc;
        match d.kind {
            SdtKind::Resource => d.device_id == device.doc.id,
            SdtKind::ResourceGroup => {
                device.all_groups.contains(&d.device_group_id)
                    && (d.data_source_name.is_empty()
                        || d.data_source_name.eq_ignore_ascii_case(datasource))
            }
            SdtKind::DeviceDataSource => {
                d.device_id == device.doc.id && d.data_source_name.eq_ignore_ascii_case(datasource)
            }
            SdtKind::Collector => d.collector_id != 0 && d.collector_id == device.collector_id,
        }
    }
}

/// Whether an SDT in force at `now_ms` covers this datasource of this device.
pub fn in_sdt(sdts: &[LoadedSdt], device: &DeviceView, datasource: &str, now_ms: i64) -> bool {
    sdts.iter()
        .any(|s| s.covers(device, datasource) && s.schedule.is_active(now_ms))
}

/// When a list was loaded, at which generation, and the list.
type Snapshot = Option<(Instant, u64, Arc<Vec<LoadedSdt>>)>;

/// The cached list of SDTs.
#[derive(Debug, Default)]
pub struct SdtCache {
    current: parking_lot::RwLock<Snapshot>,
    generation: AtomicU64,
}

impl SdtCache {
    /// Marks the list stale (after a change by this process).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// All SDTs, reloaded when stale.
    pub async fn get(&self, portal: &Portal) -> Result<Arc<Vec<LoadedSdt>>, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some((at, g, list)) = self.current.read().as_ref() {
            if *g == generation && at.elapsed() < MAX_AGE {
                return Ok(list.clone());
            }
        }
        let docs: Vec<SdtDoc> =
            objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
        let list = Arc::new(
            docs.into_iter()
                .filter_map(LoadedSdt::load)
                .collect::<Vec<_>>(),
        );
        *self.current.write() = Some((Instant::now(), generation, list.clone()));
        Ok(list)
    }
}

// ---------------------------------------------------------------- ids and visibility

/// Parses an SDT id: `R_12`, `RG_12`, `DDS_12`, `C_12` (or a bare number).
pub fn parse_id(raw: &str) -> Result<(Option<SdtKind>, i64), ApiError> {
    let not_found = || ApiError::NotFound(format!("SDT `{raw}` not found"));
    match raw.split_once('_') {
        Some((prefix, n)) => {
            let kind = SdtKind::ALL
                .into_iter()
                .find(|k| k.id_prefix().eq_ignore_ascii_case(prefix))
                .ok_or_else(not_found)?;
            Ok((Some(kind), n.parse().map_err(|_| not_found())?))
        }
        None => Ok((None, raw.parse().map_err(|_| not_found())?)),
    }
}

fn group_scope(estate: &Estate, group: i64) -> Vec<i64> {
    match estate.groups.get(&group) {
        Some(n) => {
            let mut c = n.ancestors.clone();
            c.push(group);
            c
        }
        None => Vec::new(),
    }
}

/// The collectors' groups, loaded only when a collector SDT needs them.
async fn collector_groups(portal: &Portal) -> Result<BTreeMap<i64, (i64, String)>, ApiError> {
    let list: Vec<CollectorDoc> =
        objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(list
        .into_iter()
        .map(|c| (c.id, (c.group_id, c.description)))
        .collect())
}

fn collector_need(group: Option<i64>, level: Level) -> Need {
    Need::Setting(SettingObject::CollectorGroup(group), level)
}

/// Whether the caller may see (`Read`) or change (`Write`) an SDT.
fn permitted(
    caller: &Caller,
    estate: &Estate,
    collectors: &BTreeMap<i64, (i64, String)>,
    doc: &SdtDoc,
    level: Level,
) -> bool {
    match doc.kind {
        SdtKind::Resource | SdtKind::DeviceDataSource => {
            let groups: Vec<i64> = estate
                .devices
                .get(&doc.device_id)
                .map(|v| v.all_groups.iter().copied().collect())
                .unwrap_or_default();
            may(caller, groups, level)
        }
        SdtKind::ResourceGroup => may(caller, group_scope(estate, doc.device_group_id), level),
        SdtKind::Collector => {
            let group = collectors.get(&doc.collector_id).map(|c| c.0);
            allows(&caller.privileges, &collector_need(None, level))
                || group
                    .is_some_and(|g| allows(&caller.privileges, &collector_need(Some(g), level)))
        }
    }
}

// ---------------------------------------------------------------- rendering

/// An SDT in LogicMonitor's shape; `isEffective` is computed at `now_ms`.
pub fn render(
    estate: &Estate,
    collectors: &BTreeMap<i64, (i64, String)>,
    s: &LoadedSdt,
    now_ms: i64,
) -> Value {
    let d = &s.doc;
    let lm = s.schedule.to_lm();
    let (start, end) = match lm.start_date_time.zip(lm.end_date_time) {
        Some(w) => w,
        None => s.schedule.current_or_next_window(now_ms).unwrap_or((0, 0)),
    };
    let week_day = match &lm.week_day {
        Some(palisade_core::sdt::LmWeekDay::Name(n)) => n.clone(),
        Some(palisade_core::sdt::LmWeekDay::Number(n)) => n.to_string(),
        None => String::new(),
    };
    let mut v = json!({
        "id": d.lm_id(),
        "type": d.kind.as_lm(),
        "sdtType": s.schedule.sdt_type(),
        "comment": d.comment,
        "admin": d.admin,
        "timezone": s.schedule.timezone(),
        "isEffective": s.schedule.is_active(now_ms),
        "startDateTime": start,
        "endDateTime": end,
        "hour": lm.hour.unwrap_or(0),
        "minute": lm.minute.unwrap_or(0),
        "endHour": lm.end_hour.unwrap_or(0),
        "endMinute": lm.end_minute.unwrap_or(0),
        "weekDay": week_day,
        "weekOfMonth": lm.week_of_month.clone().unwrap_or_default(),
        "monthDay": lm.month_day.unwrap_or(0),
        "duration": s.schedule.duration_minutes(),
    });
    let extra = match d.kind {
        SdtKind::Resource => json!({
            "deviceId": d.device_id,
            "deviceDisplayName": estate.devices.get(&d.device_id).map(|v| v.doc.display_name.clone()).unwrap_or_default(),
        }),
        SdtKind::DeviceDataSource => json!({
            "deviceId": d.device_id,
            "deviceDisplayName": estate.devices.get(&d.device_id).map(|v| v.doc.display_name.clone()).unwrap_or_default(),
            "dataSourceName": d.data_source_name,
        }),
        SdtKind::ResourceGroup => json!({
            "deviceGroupId": d.device_group_id,
            "deviceGroupFullPath": estate.groups.get(&d.device_group_id).map(|n| n.full_path.clone()).unwrap_or_default(),
            "dataSourceName": d.data_source_name,
        }),
        SdtKind::Collector => json!({
            "collectorId": d.collector_id,
            "collectorDescription": collectors.get(&d.collector_id).map(|c| c.1.clone()).unwrap_or_default(),
        }),
    };
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    v
}

/// Which SDTs a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// All the caller may see.
    All,
    /// Those set on one device (`ResourceSDT`, `DeviceDataSourceSDT`).
    Device(i64),
    /// Those set on one group.
    Group(i64),
}

/// The SDTs the caller may see, in LogicMonitor's shape.
pub async fn list(state: &AppState, caller: &Caller, scope: Scope) -> Result<Vec<Value>, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    match scope {
        Scope::All => {}
        Scope::Device(id) => {
            let v = estate
                .devices
                .get(&id)
                .filter(|v| may(caller, v.all_groups.iter().copied(), Level::Read))
                .ok_or_else(|| ApiError::NotFound(format!("device {id} not found")))?;
            let _ = v;
        }
        Scope::Group(id) => {
            if !estate.groups.contains_key(&id)
                || !may(caller, group_scope(&estate, id), Level::Read)
            {
                return Err(ApiError::NotFound(format!("device group {id} not found")));
            }
        }
    }
    let sdts = state.alerts.sdts.get(&state.portal).await?;
    let collectors = if sdts.iter().any(|s| s.doc.kind == SdtKind::Collector) {
        collector_groups(&state.portal).await?
    } else {
        BTreeMap::new()
    };
    let now = state.portal.now();
    Ok(sdts
        .iter()
        .filter(|s| match scope {
            Scope::All => true,
            Scope::Device(id) => {
                matches!(s.doc.kind, SdtKind::Resource | SdtKind::DeviceDataSource)
                    && s.doc.device_id == id
            }
            Scope::Group(id) => s.doc.kind == SdtKind::ResourceGroup && s.doc.device_group_id == id,
        })
        .filter(|s| permitted(caller, &estate, &collectors, &s.doc, Level::Read))
        .map(|s| render(&estate, &collectors, s, now))
        .collect())
}

/// One SDT, in LogicMonitor's shape (404 when absent or not visible).
pub async fn get(state: &AppState, caller: &Caller, raw_id: &str) -> Result<Value, ApiError> {
    let (kind, id) = parse_id(raw_id)?;
    let doc = load(state, raw_id, kind, id).await?;
    let estate = state.estate.get(&state.portal).await?;
    let collectors = collector_groups(&state.portal).await?;
    if !permitted(caller, &estate, &collectors, &doc, Level::Read) {
        return Err(ApiError::NotFound(format!("SDT `{raw_id}` not found")));
    }
    let loaded = LoadedSdt::load(doc)
        .ok_or_else(|| ApiError::Internal(format!("SDT {id} has an invalid stored schedule")))?;
    Ok(render(&estate, &collectors, &loaded, state.portal.now()))
}

async fn load(
    state: &AppState,
    raw: &str,
    kind: Option<SdtKind>,
    id: i64,
) -> Result<SdtDoc, ApiError> {
    let doc: Option<SdtDoc> = objects::get(state.portal.store.as_ref(), id).await?;
    doc.filter(|d| kind.is_none_or(|k| k == d.kind))
        .ok_or_else(|| ApiError::NotFound(format!("SDT `{raw}` not found")))
}

// ---------------------------------------------------------------- changes

/// The stored schedule and targets in LogicMonitor's field names, the base a `PATCH` edits.
fn stored_fields(doc: &SdtDoc) -> Map<String, Value> {
    let mut m = match serde_json::to_value(&doc.schedule) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.insert("type".into(), json!(doc.kind.as_lm()));
    m.insert("comment".into(), json!(doc.comment));
    match doc.kind {
        SdtKind::Resource => {
            m.insert("deviceId".into(), json!(doc.device_id));
        }
        SdtKind::DeviceDataSource => {
            m.insert("deviceId".into(), json!(doc.device_id));
            m.insert("dataSourceName".into(), json!(doc.data_source_name));
        }
        SdtKind::ResourceGroup => {
            m.insert("deviceGroupId".into(), json!(doc.device_group_id));
            m.insert("dataSourceName".into(), json!(doc.data_source_name));
        }
        SdtKind::Collector => {
            m.insert("collectorId".into(), json!(doc.collector_id));
        }
    }
    m
}

/// Builds and checks an SDT from a LogicMonitor body; the caller must be allowed to put
/// downtime on its target.
async fn from_body(
    state: &AppState,
    caller: &Caller,
    estate: &Estate,
    body: &Value,
) -> Result<SdtDoc, ApiError> {
    if !body.is_object() {
        return Err(ApiError::BadRequest("an SDT must be a JSON object".into()));
    }
    let kind = match str_field(body, "type")? {
        Some(t) => SdtKind::parse(&t).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "SDT type `{}` is not supported; use ResourceSDT, ResourceGroupSDT, DeviceDataSourceSDT or CollectorSDT",
                t.chars().take(64).collect::<String>()
            ))
        })?,
        None => {
            return Err(ApiError::BadRequest(
                "`type` is required: ResourceSDT, ResourceGroupSDT, DeviceDataSourceSDT or CollectorSDT".into(),
            ))
        }
    };
    let lm: LmSdt = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::BadRequest(format!("SDT: {e}")))?;
    let schedule = Schedule::from_lm(&lm).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let comment = str_field(body, "comment")?.unwrap_or_default();
    check_text("comment", &comment, MAX_COMMENT)?;
    let mut doc = SdtDoc {
        id: 0,
        kind,
        comment,
        admin: caller.user.username.clone(),
        schedule: schedule.to_lm(),
        device_id: 0,
        device_group_id: 0,
        data_source_name: String::new(),
        collector_id: 0,
    };
    let ds_name = str_field(body, "dataSourceName")?.unwrap_or_default();
    check_text("dataSourceName", &ds_name, 255)?;
    match kind {
        SdtKind::Resource | SdtKind::DeviceDataSource => {
            let mut device = int_field(body, "deviceId")?;
            let mut ds = ds_name;
            if kind == SdtKind::DeviceDataSource {
                if let Some(hds) = int_field(body, "deviceDataSourceId")?.filter(|i| *i != 0) {
                    let rec = state
                        .portal
                        .store
                        .get_device_datasource(hds)
                        .await?
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!("device datasource {hds} does not exist"))
                        })?;
                    device = Some(rec.device_id);
                    ds = rec.datasource;
                }
                if ds.trim().is_empty() {
                    return Err(ApiError::BadRequest(
                        "a DeviceDataSourceSDT needs `dataSourceName` (or `deviceDataSourceId`)"
                            .into(),
                    ));
                }
                doc.data_source_name = ds;
            }
            let view = match (
                device.filter(|d| *d != 0),
                str_field(body, "deviceDisplayName")?,
            ) {
                (Some(id), _) => estate.devices.get(&id),
                (None, Some(name)) => estate.device_named(&name),
                (None, None) => {
                    return Err(ApiError::BadRequest(format!(
                        "a {} needs `deviceId` (or `deviceDisplayName`)",
                        kind.as_lm()
                    )))
                }
            }
            .filter(|v| may(caller, v.all_groups.iter().copied(), Level::Read))
            .ok_or_else(|| ApiError::BadRequest("the SDT's device does not exist".into()))?;
            require(caller, view.all_groups.iter().copied(), Level::Write)?;
            doc.device_id = view.doc.id;
        }
        SdtKind::ResourceGroup => {
            let group = match (
                int_field(body, "deviceGroupId")?.filter(|g| *g != 0),
                str_field(body, "deviceGroupFullPath")?,
            ) {
                (Some(id), _) => estate.groups.get(&id),
                (None, Some(path)) => {
                    let path = path.trim_matches('/');
                    estate
                        .groups
                        .values()
                        .find(|n| n.full_path.eq_ignore_ascii_case(path))
                }
                (None, None) => {
                    return Err(ApiError::BadRequest(
                        "a ResourceGroupSDT needs `deviceGroupId` (or `deviceGroupFullPath`)"
                            .into(),
                    ))
                }
            }
            .ok_or_else(|| ApiError::BadRequest("the SDT's device group does not exist".into()))?;
            let scope = group_scope(estate, group.doc.id);
            if !may(caller, scope.clone(), Level::Read) {
                return Err(ApiError::BadRequest(
                    "the SDT's device group does not exist".into(),
                ));
            }
            require(caller, scope, Level::Write)?;
            doc.device_group_id = group.doc.id;
            doc.data_source_name = ds_name;
        }
        SdtKind::Collector => {
            let id = int_field(body, "collectorId")?
                .filter(|c| *c != 0)
                .ok_or_else(|| ApiError::BadRequest("a CollectorSDT needs `collectorId`".into()))?;
            let c: CollectorDoc = objects::get(state.portal.store.as_ref(), id)
                .await?
                .ok_or_else(|| ApiError::BadRequest(format!("collector {id} does not exist")))?;
            caller.require(collector_need(Some(c.group_id), Level::Write))?;
            doc.collector_id = id;
        }
    }
    Ok(doc)
}

/// Creates an SDT; returns it in LogicMonitor's shape.
pub async fn create(state: &AppState, caller: &Caller, body: &Value) -> Result<Value, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let doc = from_body(state, caller, &estate, body).await?;
    let audit = caller.actor.event(
        state.portal.now(),
        "sdt.create",
        format!(
            "created {} {{id}} on {} {}",
            doc.kind.as_lm(),
            target_noun(doc.kind),
            doc.target()
        ),
    );
    let created = objects::create(state.portal.store.as_ref(), &doc, Some(audit)).await?;
    state.alerts.sdts.invalidate();
    get(state, caller, &created.lm_id()).await
}

fn target_noun(kind: SdtKind) -> &'static str {
    match kind {
        SdtKind::Resource | SdtKind::DeviceDataSource => "device",
        SdtKind::ResourceGroup => "device group",
        SdtKind::Collector => "collector",
    }
}

/// Changes an SDT: `PATCH` (`full = false`) edits the given fields, `PUT` replaces it.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    body: &Value,
    full: bool,
) -> Result<Value, ApiError> {
    let (kind, id) = parse_id(raw_id)?;
    let current = load(state, raw_id, kind, id).await?;
    let estate = state.estate.get(&state.portal).await?;
    let collectors = collector_groups(&state.portal).await?;
    if !permitted(caller, &estate, &collectors, &current, Level::Read) {
        return Err(ApiError::NotFound(format!("SDT `{raw_id}` not found")));
    }
    if !permitted(caller, &estate, &collectors, &current, Level::Write) {
        return Err(ApiError::Forbidden(format!(
            "user `{}` may not change SDT `{raw_id}`",
            caller.user.username
        )));
    }
    let Value::Object(given) = body else {
        return Err(ApiError::BadRequest("an SDT must be a JSON object".into()));
    };
    let mut merged = if full {
        let mut m = Map::new();
        m.insert("type".into(), json!(current.kind.as_lm()));
        m
    } else {
        stored_fields(&current)
    };
    // A PATCH that changes the schedule's type starts from that type's fields only.
    if !full
        && given
            .get("sdtType")
            .and_then(Value::as_str)
            .is_some_and(|t| {
                !t.eq_ignore_ascii_case(current.schedule.sdt_type.as_deref().unwrap_or_default())
            })
    {
        for k in [
            "startDateTime",
            "endDateTime",
            "hour",
            "minute",
            "endHour",
            "endMinute",
            "weekDay",
            "weekOfMonth",
            "monthDay",
            "duration",
        ] {
            merged.remove(k);
        }
    }
    // `duration` echoed back with a changed end would contradict it; the end wins.
    if given.contains_key("endDateTime")
        || given.contains_key("endHour")
        || given.contains_key("endMinute")
    {
        merged.remove("duration");
    }
    for (k, v) in given {
        if !v.is_null() && k != "id" && k != "isEffective" {
            merged.insert(k.clone(), v.clone());
        }
    }
    let mut doc = from_body(state, caller, &estate, &Value::Object(merged)).await?;
    doc.admin = current.admin.clone();
    let audit = caller.actor.event(
        state.portal.now(),
        "sdt.update",
        format!("changed SDT {}", current.lm_id()),
    );
    objects::update::<SdtDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |d| {
            let id = d.id;
            *d = doc;
            d.id = id;
            Ok(())
        },
        Some(audit),
    )
    .await?;
    state.alerts.sdts.invalidate();
    let now_kind = objects::get::<SdtDoc>(state.portal.store.as_ref(), id)
        .await?
        .map(|d| d.lm_id())
        .unwrap_or_else(|| raw_id.to_string());
    get(state, caller, &now_kind).await
}

/// Deletes an SDT.
pub async fn delete(state: &AppState, caller: &Caller, raw_id: &str) -> Result<(), ApiError> {
    let (kind, id) = parse_id(raw_id)?;
    let current = load(state, raw_id, kind, id).await?;
    let estate = state.estate.get(&state.portal).await?;
    let collectors = collector_groups(&state.portal).await?;
    if !permitted(caller, &estate, &collectors, &current, Level::Read) {
        return Err(ApiError::NotFound(format!("SDT `{raw_id}` not found")));
    }
    if !permitted(caller, &estate, &collectors, &current, Level::Write) {
        return Err(ApiError::Forbidden(format!(
            "user `{}` may not delete SDT `{raw_id}`",
            caller.user.username
        )));
    }
    let audit = caller.actor.event(
        state.portal.now(),
        "sdt.delete",
        format!("deleted SDT {}", current.lm_id()),
    );
    objects::delete::<SdtDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    state.alerts.sdts.invalidate();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id("R_12").unwrap(), (Some(SdtKind::Resource), 12));
        assert_eq!(parse_id("rg_3").unwrap(), (Some(SdtKind::ResourceGroup), 3));
        assert_eq!(
            parse_id("DDS_4").unwrap(),
            (Some(SdtKind::DeviceDataSource), 4)
        );
        assert_eq!(parse_id("C_5").unwrap(), (Some(SdtKind::Collector), 5));
        assert_eq!(parse_id("9").unwrap(), (None, 9));
        assert!(parse_id("X_1").is_err());
        assert!(parse_id("R_x").is_err());
        assert!(parse_id("").is_err());
    }
}
