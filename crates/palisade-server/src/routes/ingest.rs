//! `POST /rest/v2/metric/ingest`: LogicMonitor's push-metrics API, so the official
//! `logicmonitor-data-sdk` pushes to Palisade unchanged. The gate has already gunzipped the
//! body and checked LMv1 over the uncompressed bytes.

use super::Params;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::monitor::devices::{self, may};
use crate::monitor::estate::{Estate, ROOT_GROUP};
use crate::monitor::pipeline::{self, Point};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::datasource::DatapointType;
use palisade_core::ingest::{self, Limits, MetricPayload, DEFAULT_BACKFILL_MS};
use palisade_core::privilege::Level;
use palisade_store::objects::InstanceSpec;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

fn answer(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

async fn backfill_ms(state: &AppState) -> Result<i64, ApiError> {
    let raw = crate::settings::get(&state.portal, "ingest.backfill_hours").await?;
    Ok(match raw.trim().parse::<i64>() {
        Ok(h) if h > 0 => h.saturating_mul(3_600_000).max(DEFAULT_BACKFILL_MS),
        _ => DEFAULT_BACKFILL_MS,
    })
}

/// The device a payload's `resourceIds` name: every listed property must match.
fn matching<'a>(
    estate: &'a Estate,
    ids: &BTreeMap<String, String>,
) -> Vec<&'a crate::monitor::estate::DeviceView> {
    estate
        .devices
        .values()
        .filter(|d| {
            ids.iter().all(|(k, v)| {
                d.properties
                    .get(&k.to_ascii_lowercase())
                    .is_some_and(|p| !p.sealed && p.value.eq_ignore_ascii_case(v))
            })
        })
        .collect()
}

/// `POST /rest/v2/metric/ingest?create=true|false`.
pub async fn metric_ingest(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let create = params.flag("create");
    let now = state.portal.now();
    let parsed = match ingest::parse(&body, &Limits::default(), now, backfill_ms(&state).await?) {
        Ok(p) => p,
        Err(e) => return Ok(answer(e.status(), e.response_body())),
    };
    let mut refused: Vec<String> = Vec::new();
    let mut points = Vec::with_capacity(parsed.sample_count());
    let mut meta: BTreeMap<(i64, String, String), InstanceSpec> = BTreeMap::new();
    // One snapshot of the estate for the whole request: devices created by it are
    // remembered in `created` instead of reloading the estate after each one.
    let estate = state.estate.get(&state.portal).await?;
    let mut created = BTreeMap::new();
    for (i, payload) in parsed.payloads.iter().enumerate() {
        let device = match resolve(&state, &estate, &mut created, &caller, payload, create).await {
            Ok(d) => d,
            Err(e) => {
                refused.push(format!("payload {i}: {e}"));
                continue;
            }
        };
        let datasource = payload
            .data_source
            .clone()
            .or_else(|| payload.data_source_id.map(|id| format!("datasource{id}")))
            .unwrap_or_default();
        for inst in &payload.instances {
            meta.insert(
                (device.0, datasource.clone(), inst.instance_name.clone()),
                InstanceSpec {
                    name: inst.instance_name.clone(),
                    display_name: inst
                        .instance_display_name
                        .clone()
                        .unwrap_or_else(|| inst.instance_name.clone()),
                    description: inst.instance_description.clone().unwrap_or_default(),
                    properties: serde_json::to_string(&inst.instance_properties)
                        .unwrap_or_else(|_| "{}".into()),
                },
            );
            for dp in &inst.data_points {
                let kind = match dp.data_point_type {
                    ingest::DataPointType::Gauge => None,
                    ingest::DataPointType::Counter => Some(DatapointType::Counter),
                    ingest::DataPointType::Derive => Some(DatapointType::Derive),
                };
                for (secs, value) in &dp.values {
                    let ts_ms = secs.saturating_mul(1000);
                    let value = match kind {
                        None => Some(*value),
                        // Counters and derives are stored as per-second rates, from the
                        // previous raw value of the same series.
                        Some(kind) => state.raw_counters.rate(
                            (
                                device.0,
                                &datasource,
                                &inst.instance_name,
                                &dp.data_point_name,
                            ),
                            ts_ms,
                            *value,
                            kind,
                        ),
                    };
                    if let Some(value) = value {
                        points.push(Point {
                            device_id: device.0,
                            device: device.1.clone(),
                            datasource: datasource.clone(),
                            instance: inst.instance_name.clone(),
                            datapoint: dp.data_point_name.clone(),
                            ts_ms,
                            value,
                        });
                    }
                }
            }
        }
    }
    if points.is_empty() && !refused.is_empty() && parsed.sample_count() > 0 {
        return Ok(answer(
            400,
            json!({"code": 400, "message": format!("no sample was accepted: {}", refused[0]), "errors": refused}),
        ));
    }
    pipeline::accept(&state, points, &meta).await?;
    let mut body = parsed.response_body();
    if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
        errors.extend(refused.into_iter().map(Value::String));
    }
    Ok(answer(202, body))
}

/// Finds (or with `create`, creates) the payload's device: (id, display name).
async fn resolve(
    state: &AppState,
    estate: &Estate,
    created: &mut BTreeMap<String, (i64, String)>,
    caller: &Caller,
    payload: &MetricPayload,
    create: bool,
) -> Result<(i64, String), ApiError> {
    // Devices created earlier in this request (the snapshot predates them).
    let ids_key = serde_json::to_string(&payload.resource_ids).unwrap_or_default();
    if let Some(d) = created.get(&ids_key) {
        return Ok(d.clone());
    }
    let found = matching(estate, &payload.resource_ids);
    match found.as_slice() {
        [one] => {
            if !may(caller, one.all_groups.iter().copied(), Level::Write) {
                return Err(ApiError::Forbidden(format!(
                    "no write access to device `{}`",
                    one.doc.display_name
                )));
            }
            return Ok((one.doc.id, one.doc.display_name.clone()));
        }
        [] => {}
        _ => {
            return Err(ApiError::BadRequest(
                "resourceIds match more than one device; add a property that tells them apart"
                    .into(),
            ))
        }
    }
    if !create {
        return Err(ApiError::NotFound(
            "no device matches resourceIds (pass create=true to create it)".into(),
        ));
    }
    if !may(caller, [ROOT_GROUP], Level::Manage) {
        return Err(ApiError::Forbidden(
            "creating devices needs host_group manage".into(),
        ));
    }
    let ids = &payload.resource_ids;
    let get = |k: &str| {
        ids.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let display = get("system.displayname")
        .or_else(|| payload.resource_name.clone())
        .or_else(|| get("system.hostname"))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "to create a device, give resourceName or system.displayname / system.hostname in resourceIds".into(),
            )
        })?;
    let host = get("system.hostname")
        .or_else(|| payload.resource_name.clone())
        .unwrap_or_else(|| display.clone());
    let mut custom: Vec<Value> = payload
        .resource_properties
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    for (n, v) in ids {
        let l = n.to_ascii_lowercase();
        if !l.starts_with("system.") && !l.starts_with("auto.") {
            custom.push(json!({"name": n, "value": v}));
        }
    }
    let body = json!({
        "name": host,
        "displayName": display,
        "description": payload.resource_description.clone().unwrap_or_default(),
        "customProperties": custom,
    });
    match devices::create_device(state, caller, &body).await {
        Ok(id) => {
            created.insert(ids_key, (id, display.clone()));
            Ok((id, display))
        }
        // Another request created it a moment ago: use that one.
        Err(ApiError::Conflict(_)) => {
            state.estate.invalidate();
            let estate = state.estate.get(&state.portal).await?;
            estate
                .device_named(&display)
                .map(|d| (d.doc.id, d.doc.display_name.clone()))
                .ok_or_else(|| {
                    ApiError::Conflict(format!(
                        "device `{display}` exists but does not match resourceIds"
                    ))
                })
        }
        Err(e) => Err(e),
    }
}
