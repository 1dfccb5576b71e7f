//! `/setting/collector/collectors` and `/setting/collector/groups` (administration), and
//! the collector protocol under `/api/collector/v1` (see `docs/collector-protocol.md`).

use super::{id, Params};
use crate::auth::Caller;
use crate::error::{parse_json, ApiError};
use crate::monitor::collectors::{self as ops, COLLECTOR_REQUIRED, GROUP_REQUIRED};
use crate::monitor::pipeline::{self, Point};
use crate::monitor::props;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_api::ListEnvelope;
use palisade_core::applies_to;
use palisade_core::privilege::Level;
use palisade_store::inventory::{CollectorDoc, CollectorGroupDoc, CollectorReport, DatasourceDoc};
use palisade_store::objects::{self, InstanceSpec, ObjectQuery};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

async fn render_one(state: &AppState, c: &CollectorDoc) -> Result<Value, ApiError> {
    let names = ops::group_names(state).await?;
    let estate = state.estate.get(&state.portal).await?;
    let hosts = estate
        .devices
        .values()
        .filter(|d| d.collector_id == c.id)
        .count();
    Ok(ops::render(
        c,
        names.get(&c.group_id).map(String::as_str).unwrap_or(""),
        hosts,
        state.portal.now(),
        estate.down_after_ms,
    ))
}

async fn load(state: &AppState, id: i64) -> Result<CollectorDoc, ApiError> {
    objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collector {id} not found")))
}

/// `GET /setting/collector/collectors`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let all: Vec<CollectorDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let names = ops::group_names(&state).await?;
    let estate = state.estate.get(&state.portal).await?;
    let now = state.portal.now();
    let items = all
        .iter()
        .filter(|c| ops::require(&caller, c.group_id, Level::Read).is_ok())
        .map(|c| {
            let hosts = estate
                .devices
                .values()
                .filter(|d| d.collector_id == c.id)
                .count();
            ops::render(
                c,
                names.get(&c.group_id).map(String::as_str).unwrap_or(""),
                hosts,
                now,
                estate.down_after_ms,
            )
        })
        .collect();
    params.list(items, COLLECTOR_REQUIRED)
}

/// `GET /setting/collector/collectors/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let c = load(&state, id(&raw, "collector")?).await?;
    ops::require(&caller, c.group_id, Level::Read)?;
    Params::parse(q.as_deref())?.one(render_one(&state, &c).await?, COLLECTOR_REQUIRED)
}

/// `POST /setting/collector/collectors`: the answer carries `registrationSecret`, shown once.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    ops::require(&caller, ops::group_of(&body)?, Level::Write)?;
    let (c, secret) = ops::create(&state.portal, &caller.actor, &body).await?;
    let mut v = render_one(&state, &c).await?;
    v["registrationSecret"] = Value::String(secret);
    Ok(Json(v))
}

/// `POST /setting/collector/collectors/{id}/registration`: a new one-time secret.
pub async fn registration(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "collector")?;
    let secret = ops::new_registration(&state, &caller, id).await?;
    Ok(Json(json!({"id": id, "registrationSecret": secret})))
}

/// `PATCH`/`PUT /setting/collector/collectors/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = parse_json(&body)?;
    let c = ops::update(&state, &caller, id(&raw, "collector")?, &body).await?;
    Ok(Json(render_one(&state, &c).await?))
}

/// `DELETE /setting/collector/collectors/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ops::delete(&state, &caller, id(&raw, "collector")?).await?;
    Ok(Json(json!({})))
}

fn render_group(g: &CollectorGroupDoc, members: usize) -> Value {
    json!({"id": g.id, "name": g.name, "description": g.description, "numOfCollectors": members, "autoBalance": false, "createOn": g.created_on / 1000,
           "customProperties": g.properties.iter().map(|p| json!({"name": p.name, "value": props::shown(&p.name, &p.value, p.sealed)})).collect::<Vec<_>>()})
}

/// `GET /setting/collector/groups`.
pub async fn list_groups(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<ListEnvelope>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let groups: Vec<CollectorGroupDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let collectors: Vec<CollectorDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let items = groups
        .iter()
        .filter(|g| ops::require(&caller, g.id, Level::Read).is_ok())
        .map(|g| render_group(g, collectors.iter().filter(|c| c.group_id == g.id).count()))
        .collect();
    params.list(items, GROUP_REQUIRED)
}

/// `GET /setting/collector/groups/{id}`.
pub async fn get_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "collector group")?;
    ops::require(&caller, id, Level::Read)?;
    let g: CollectorGroupDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collector group {id} not found")))?;
    let collectors: Vec<CollectorDoc> = objects::list(
        state.portal.store.as_ref(),
        ObjectQuery {
            ref_id: Some(id),
            flag: None,
        },
    )
    .await?;
    Ok(Json(render_group(&g, collectors.len())))
}

/// `POST /setting/collector/groups`.
pub async fn create_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // Creating a group needs the wildcard.
    ops::require(&caller, 0, Level::Write).map_err(|_| {
        ApiError::Forbidden("creating collector groups needs setting:collectorgroup.*:write".into())
    })?;
    let body: Value = parse_json(&body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::BadRequest(
            "a collector group needs a `name` of 1 to 255 bytes".into(),
        ));
    }
    let doc = CollectorGroupDoc {
        name: name.clone(),
        description: body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ..Default::default()
    };
    let audit = caller.actor.event(
        state.portal.now(),
        "collectorgroup.create",
        format!("created collector group {{id}} `{name}`"),
    );
    let g = objects::create(state.portal.store.as_ref(), &doc, Some(audit)).await?;
    Ok(Json(render_group(&g, 0)))
}

/// `DELETE /setting/collector/groups/{id}` (only when empty).
pub async fn delete_group(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id(&raw, "collector group")?;
    ops::require(&caller, id, Level::Write)?;
    let members: Vec<CollectorDoc> = objects::list(
        state.portal.store.as_ref(),
        ObjectQuery {
            ref_id: Some(id),
            flag: None,
        },
    )
    .await?;
    if !members.is_empty() {
        return Err(ApiError::Conflict(format!(
            "collector group {id} still holds {} collectors",
            members.len()
        )));
    }
    let audit = caller.actor.event(
        state.portal.now(),
        "collectorgroup.delete",
        format!("deleted collector group {id}"),
    );
    objects::delete::<CollectorGroupDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    Ok(Json(json!({})))
}

// ------------------------------------------------------------------ the protocol

/// Largest result batch.
pub const MAX_RESULTS_BODY: usize = 4 * 1024 * 1024;

fn peer_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> String {
    let fwd = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    palisade_core::client_ip::client_ip(peer.ip(), fwd, &state.trusted_proxies).to_string()
}

async fn collector_of(
    state: &AppState,
    headers: &HeaderMap,
    ip: &str,
) -> Result<CollectorDoc, ApiError> {
    let decision = state.ip_limiter.hit(ip, state.portal.now());
    if !decision.allowed {
        return Err(ApiError::RateLimited {
            limit: decision.limit,
            window_secs: decision.window_secs,
            retry_after: decision.reset_secs,
        });
    }
    let key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthenticated("send `Authorization: Bearer palc_…`".into()))?;
    ops::authenticate(state, key.trim()).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterRequest {
    registration_secret: String,
    #[serde(default)]
    report: CollectorReport,
}

/// `POST /api/collector/v1/register`.
pub async fn protocol_register(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ip = peer_ip(&state, peer, &headers);
    let decision = state.signin_ip_limiter.hit(&ip, state.portal.now());
    if !decision.allowed {
        return Err(ApiError::RateLimited {
            limit: decision.limit,
            window_secs: decision.window_secs,
            retry_after: decision.reset_secs,
        });
    }
    let req: RegisterRequest = parse_json(&body)?;
    let (id, key) = ops::register(&state, req.registration_secret.trim(), req.report, &ip).await?;
    Ok(Json(json!({"collectorId": id, "collectorKey": key})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatRequest {
    #[serde(default)]
    report: CollectorReport,
}

/// `POST /api/collector/v1/heartbeat`.
pub async fn protocol_heartbeat(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ip = peer_ip(&state, peer, &headers);
    let c = collector_of(&state, &headers, &ip).await?;
    let req: HeartbeatRequest = parse_json(&body)?;
    let was_admin = c.report.as_ref().map(|r| r.is_admin_account);
    if was_admin.is_some_and(|w| w != req.report.is_admin_account) {
        let audit = crate::portal::Actor::system("collector").event(
            state.portal.now(),
            "collector.privilege",
            format!(
                "collector {} now runs {} an administrative account",
                c.id,
                if req.report.is_admin_account {
                    "as"
                } else {
                    "without"
                }
            ),
        );
        state.audit.record(audit).await;
    }
    ops::heartbeat(&state, c.id, req.report, &ip).await?;
    let work = work_for(&state, c.id).await?;
    Ok(Json(
        json!({"collectorId": c.id, "serverTimeMs": state.portal.now(), "workVersion": work.1}),
    ))
}

/// The work of a collector and its version (a hash of it).
async fn work_for(state: &AppState, collector: i64) -> Result<(Value, String), ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let datasources: Vec<DatasourceDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let parsed: Vec<(&DatasourceDoc, Option<applies_to::Expr>)> = datasources
        .iter()
        .map(|d| {
            let expr = d
                .definition
                .get("appliesTo")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .and_then(|s| applies_to::parse(s).ok());
            (d, expr)
        })
        .collect();
    let mut devices = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for v in estate
        .devices
        .values()
        .filter(|d| d.collector_id == collector)
    {
        let mut props = serde_json::Map::new();
        for p in v.properties.values() {
            props.insert(
                p.name.clone(),
                Value::String(props::reveal(
                    &state.portal.keys,
                    &p.name,
                    &p.value,
                    p.sealed,
                )?),
            );
        }
        let lookup = |name: &str| {
            crate::monitor::estate::applies_to_value(v.properties.get(&name.to_ascii_lowercase()))
        };
        let applied: Vec<&str> = parsed
            .iter()
            .filter(|(_, e)| e.as_ref().is_some_and(|e| e.matches(&lookup)))
            .map(|(d, _)| d.name.as_str())
            .collect();
        for a in &applied {
            used.insert(a.to_string());
        }
        devices.push(json!({
            "id": v.doc.id,
            "host": v.doc.name,
            "displayName": v.doc.display_name,
            "properties": props,
            "datasources": applied,
        }));
    }
    let defs: Vec<&Value> = datasources
        .iter()
        .filter(|d| used.contains(&d.name))
        .map(|d| &d.definition)
        .collect();
    let work = json!({"collectorId": collector, "devices": devices, "datasources": defs});
    let version = hex::encode(&sha2::Sha256::digest(work.to_string().as_bytes())[..12]);
    Ok((work, version))
}

/// `GET /api/collector/v1/work`: devices (with credentials, only this collector's), and
/// the datasources that apply to them. `If-None-Match` with the current version gives 304.
pub async fn protocol_work(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ip = peer_ip(&state, peer, &headers);
    let c = collector_of(&state, &headers, &ip).await?;
    let (mut work, version) = work_for(&state, c.id).await?;
    let etag = format!("\"{version}\"");
    if headers
        .get(axum::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(axum::http::header::ETAG, etag)]).into_response());
    }
    let n = work["devices"].as_array().map(Vec::len).unwrap_or(0);
    let audit = crate::portal::Actor {
        username: format!("System:collector.{}", c.id),
        ip: ip.clone(),
        ..Default::default()
    }
    .event(
        state.portal.now(),
        "collector.work",
        format!(
            "collector {} fetched work version {version}: {n} devices with their credentials",
            c.id
        ),
    );
    if !state.audit.record(audit).await {
        return Err(ApiError::Unavailable);
    }
    work["version"] = Value::String(version);
    Ok(([(axum::http::header::ETAG, etag)], Json(work)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultsRequest {
    batch_id: String,
    #[serde(default)]
    results: Vec<TaskResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskResult {
    device_id: i64,
    datasource: String,
    #[serde(default)]
    instance: Option<String>,
    #[serde(default)]
    instance_display_name: Option<String>,
    #[serde(default)]
    instance_properties: BTreeMap<String, String>,
    timestamp: i64,
    #[serde(default)]
    values: BTreeMap<String, f64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    lacks: Option<String>,
}

/// What the last collection of a datasource on a device reported (for the UI and API).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// `ok`, `denied` (a privilege is missing), `error`.
    pub status: String,
    /// What went wrong.
    pub message: String,
    /// The privilege the collector lacks (for `denied`).
    pub lacks: String,
    /// When, epoch ms.
    pub at: i64,
}

/// `POST /api/collector/v1/results`: a batch of results. A batch id seen before is
/// acknowledged again without being counted twice.
pub async fn protocol_results(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ip = peer_ip(&state, peer, &headers);
    let c = collector_of(&state, &headers, &ip).await?;
    if body.len() > MAX_RESULTS_BODY {
        return Err(ApiError::TooLarge(MAX_RESULTS_BODY));
    }
    let req: ResultsRequest = parse_json(&body)?;
    if req.batch_id.is_empty() || req.batch_id.len() > 128 {
        return Err(ApiError::BadRequest(
            "`batchId` must be 1 to 128 characters".into(),
        ));
    }
    let estate = state.estate.get(&state.portal).await?;
    let mut points = Vec::new();
    let mut meta = BTreeMap::new();
    let mut refused = Vec::new();
    let mut statuses = Vec::new();
    for r in &req.results {
        let Some(dev) = estate
            .devices
            .get(&r.device_id)
            .filter(|d| d.collector_id == c.id)
        else {
            refused.push(format!(
                "device {} is not monitored by collector {}",
                r.device_id, c.id
            ));
            continue;
        };
        let instance = r.instance.clone().unwrap_or_else(|| r.datasource.clone());
        statuses.push((
            (r.device_id, r.datasource.clone()),
            TaskStatus {
                status: r.status.clone().unwrap_or_else(|| "ok".into()),
                message: r.message.clone().unwrap_or_default(),
                lacks: r.lacks.clone().unwrap_or_default(),
                at: r.timestamp,
            },
        ));
        meta.insert(
            (r.device_id, r.datasource.clone(), instance.clone()),
            InstanceSpec {
                name: instance.clone(),
                display_name: r
                    .instance_display_name
                    .clone()
                    .unwrap_or_else(|| instance.clone()),
                description: String::new(),
                properties: serde_json::to_string(&r.instance_properties)
                    .unwrap_or_else(|_| "{}".into()),
            },
        );
        for (dp, v) in &r.values {
            if v.is_finite() {
                points.push(Point {
                    device_id: r.device_id,
                    device: dev.doc.display_name.clone(),
                    datasource: r.datasource.clone(),
                    instance: instance.clone(),
                    datapoint: dp.clone(),
                    ts_ms: r.timestamp,
                    value: *v,
                });
            }
        }
    }
    // Seen before: acknowledge without counting it again. Otherwise store first, then
    // remember the id: a crash in between makes the retry write the same samples again,
    // which the time-series store and the alert evaluator treat as the same samples.
    if state.portal.store.batch_seen(c.id, &req.batch_id).await? {
        return Ok(Json(
            json!({"batchId": req.batch_id, "duplicate": true, "accepted": 0}),
        ));
    }
    let n = pipeline::accept(&state, points, &meta).await?;
    let now = state.portal.now();
    if !state
        .portal
        .store
        .claim_batch(c.id, &req.batch_id, now)
        .await?
    {
        return Ok(Json(
            json!({"batchId": req.batch_id, "duplicate": true, "accepted": 0}),
        ));
    }
    // A datasource that produced no value (denied, failed) still shows on the device, with
    // its status: never as silently empty.
    for ((device, ds), st) in &statuses {
        if st.status != "ok" {
            state
                .portal
                .store
                .ensure_instances(*device, ds, &[], now)
                .await?;
        }
    }
    {
        let mut map = state.task_status.lock();
        for (k, s) in statuses {
            map.insert(k, s);
        }
    }
    Ok(Json(
        json!({"batchId": req.batch_id, "duplicate": false, "accepted": n, "refused": refused}),
    ))
}
