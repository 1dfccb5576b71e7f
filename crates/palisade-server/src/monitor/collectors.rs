//! Collectors and collector groups as portal objects, their registration and
//! authentication, and what the API shows of them.
//!
//! An administrator creates a collector and receives a one-time registration secret
//! (`palr_…`, valid 24 hours). The collector exchanges it once for its own key (`palc_…`),
//! which it presents as `Authorization: Bearer palc_…` on every protocol request; both are
//! stored only as keyed hashes. See `docs/collector-protocol.md`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::AppState;
use base64::Engine;
use palisade_core::access::{Check, Scope};
use palisade_core::failover::Health;
use palisade_core::privilege::Level;
use palisade_store::inventory::{CollectorDoc, CollectorGroupDoc, CollectorReport};
use palisade_store::objects::{self, ObjectQuery};
use rand::RngCore;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How long a registration secret is valid.
pub const REGISTRATION_TTL_MS: i64 = 24 * 3_600_000;
/// A collector without a heartbeat for this long is down, unless the setting
/// `collector.down_after_seconds` says otherwise.
pub const DOWN_AFTER_MS: i64 = 3 * 60_000;

/// Fields the SDK requires on collector items (none; `id` kept for scripts).
pub const COLLECTOR_REQUIRED: &[&str] = &["id"];
/// Fields the SDK's `CollectorGroup` requires.
pub const GROUP_REQUIRED: &[&str] = &["id", "name"];

fn random_secret(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

/// Whether the caller may see or change collectors of this group.
pub fn require(caller: &Caller, group: i64, level: Level) -> Result<(), ApiError> {
    let ok = Check::new(Scope::CollectorGroups(vec![group]), level).permits(&caller.privileges);
    if ok {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "user `{}` lacks setting:collectorgroup.{group}:{}",
            caller.user.username,
            level.as_str()
        )))
    }
}

/// Health, for status and failover ([`palisade_core::failover`]).
pub fn health(c: &CollectorDoc, now: i64, down_after_ms: i64) -> Health {
    Health::of(
        c.registered_on.filter(|_| c.key_hash.is_some()),
        c.last_heartbeat,
        c.suspended,
        now,
        down_after_ms,
    )
}

/// Status: 0 unregistered, 1 up, 2 down (no heartbeat), 3 suspended.
pub fn status(c: &CollectorDoc, now: i64, down_after_ms: i64) -> i64 {
    match health(c, now, down_after_ms) {
        Health::Unregistered => 0,
        Health::Up => 1,
        Health::Down => 2,
        Health::Suspended => 3,
    }
}

/// The down threshold (`collector.down_after_seconds`, default 3 minutes).
pub async fn down_after_ms(portal: &Portal) -> Result<i64, ApiError> {
    let raw = crate::settings::get(portal, "collector.down_after_seconds").await?;
    Ok(raw
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|s| *s > 0)
        .map_or(DOWN_AFTER_MS, |s| s.saturating_mul(1000)))
}

/// A collector in LogicMonitor's shape, with Palisade's privilege report.
pub fn render(
    c: &CollectorDoc,
    group_name: &str,
    hosts: usize,
    now: i64,
    down_after_ms: i64,
) -> Value {
    let report = c.report.clone().unwrap_or_default();
    let st = status(c, now, down_after_ms);
    let up = if st == 1 && report.started_on > 0 {
        (now - report.started_on).max(0) / 1000
    } else {
        0
    };
    json!({
        "id": c.id,
        "description": c.description,
        "collectorGroupId": c.group_id,
        "collectorGroupName": group_name,
        "hostname": report.hostname,
        "platform": report.platform,
        "arch": report.arch,
        "build": report.build,
        "isAdminAccount": report.is_admin_account,
        "privilege": report.privilege,
        "bufferedBatches": report.buffered_batches,
        "status": st,
        "isDown": st == 2,
        "registered": c.key_hash.is_some(),
        "upTime": up,
        "lastHeartbeatOn": c.last_heartbeat.map(|t| t / 1000),
        "lastAuthIp": c.last_ip,
        "numberOfHosts": hosts,
        "backupAgentId": c.backup_agent_id,
        "collectorDeviceId": c.device_id,
        "customProperties": c.properties.iter().map(|p| json!({"name": p.name, "value": super::props::shown(&p.name, &p.value, p.sealed)})).collect::<Vec<_>>(),
        "complianceException": c.compliance_exception.as_ref().map(crate::compliance::exception_json),
        "createdOn": c.created_on / 1000,
        "updatedOn": c.updated_on / 1000,
    })
}

/// The collector group a creation body names (0: none).
pub fn group_of(body: &Value) -> Result<i64, ApiError> {
    match body.get("collectorGroupId") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::BadRequest("`collectorGroupId` must be an integer".into())),
    }
}

/// Creates a collector; returns it with its one-time registration secret. The caller's
/// privileges are checked by the HTTP handler (the CLI acts as `System:cli`).
pub async fn create(
    portal: &Portal,
    actor: &Actor,
    body: &Value,
) -> Result<(CollectorDoc, String), ApiError> {
    let group = group_of(body)?;
    if group != 0 {
        let g: Option<CollectorGroupDoc> = objects::get(portal.store.as_ref(), group).await?;
        if g.is_none() {
            return Err(ApiError::BadRequest(format!(
                "collector group {group} does not exist"
            )));
        }
    }
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.len() <= 1024 => s.clone(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`description` must be a string of at most 1024 bytes".into(),
            ))
        }
    };
    let backup = backup_of(portal, body, None).await?.unwrap_or(0);
    let secret = random_secret("palr_");
    let now = portal.now();
    let doc = CollectorDoc {
        description: description.clone(),
        group_id: group,
        backup_agent_id: backup,
        registration_hash: Some(portal.keys.bearer_hash(&secret)),
        registration_expires: Some(now + REGISTRATION_TTL_MS),
        ..Default::default()
    };
    let audit = actor.event(
        now,
        "collector.create",
        format!("created collector {{id}} `{description}` (registration secret issued)"),
    );
    let created = objects::create(portal.store.as_ref(), &doc, Some(audit)).await?;
    Ok((created, secret))
}

/// Issues a new registration secret (the collector's current key stops working when the
/// secret is used).
pub async fn new_registration(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<String, ApiError> {
    let c: CollectorDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collector {id} not found")))?;
    require(caller, c.group_id, Level::Write)?;
    let secret = random_secret("palr_");
    let hash = state.portal.keys.bearer_hash(&secret);
    let now = state.portal.now();
    let audit = caller.actor.event(
        now,
        "collector.registration",
        format!("issued a new registration secret for collector {id}"),
    );
    objects::update::<CollectorDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |c| {
            c.registration_hash = Some(hash);
            c.registration_expires = Some(now + REGISTRATION_TTL_MS);
            Ok(())
        },
        Some(audit),
    )
    .await?;
    Ok(secret)
}

/// The backup collector a body names (`backupAgentId`): an existing collector other than
/// this one, or 0 for none.
async fn backup_of(
    portal: &Portal,
    body: &Value,
    this: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let id = match body.get("backupAgentId") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
            ApiError::BadRequest("`backupAgentId` must be a collector id (0: none)".into())
        })?,
    };
    if id == 0 {
        return Ok(Some(0));
    }
    if this == Some(id) {
        return Err(ApiError::BadRequest(
            "`backupAgentId`: a collector cannot be its own backup".into(),
        ));
    }
    let c: Option<CollectorDoc> = objects::get(portal.store.as_ref(), id).await?;
    match c {
        Some(_) => Ok(Some(id)),
        None => Err(ApiError::BadRequest(format!(
            "`backupAgentId`: collector {id} does not exist"
        ))),
    }
}

/// Changes description, group, backup, suspension or the compliance exception.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &Value,
) -> Result<CollectorDoc, ApiError> {
    let c: CollectorDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collector {id} not found")))?;
    require(caller, c.group_id, Level::Write)?;
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_string);
    let group = body.get("collectorGroupId").and_then(Value::as_i64);
    if let Some(g) = group {
        require(caller, g, Level::Write)?;
        if g != 0 {
            let doc: Option<CollectorGroupDoc> =
                objects::get(state.portal.store.as_ref(), g).await?;
            if doc.is_none() {
                return Err(ApiError::BadRequest(format!(
                    "collector group {g} does not exist"
                )));
            }
        }
    }
    let backup = backup_of(&state.portal, body, Some(id)).await?;
    let suspended = body.get("suspended").and_then(Value::as_bool);
    let now = state.portal.now();
    // A compliance exception (mandate 3) is its own audited change.
    let exception = crate::compliance::exception_change(body, &c, &caller.actor, now)?;
    let audit = match &exception {
        Some(change) => caller.actor.event(
            now,
            "collector.exception",
            crate::compliance::exception_audit_text(id, change),
        ),
        None => caller
            .actor
            .event(now, "collector.update", format!("changed collector {id}")),
    };
    Ok(objects::update::<CollectorDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |c| {
            if let Some(v) = description {
                c.description = v;
            }
            if let Some(v) = group {
                c.group_id = v;
            }
            if let Some(v) = backup {
                c.backup_agent_id = v;
            }
            if let Some(v) = suspended {
                c.suspended = v;
            }
            match exception {
                Some(crate::compliance::ExceptionChange::Record(e)) => {
                    c.compliance_exception = Some(e)
                }
                Some(crate::compliance::ExceptionChange::Remove) => c.compliance_exception = None,
                None => {}
            }
            Ok(())
        },
        Some(audit),
    )
    .await?)
}

/// Deletes a collector (its devices fall back to their groups' default collector).
pub async fn delete(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let c: CollectorDoc = objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("collector {id} not found")))?;
    require(caller, c.group_id, Level::Write)?;
    let audit = caller.actor.event(
        state.portal.now(),
        "collector.delete",
        format!("deleted collector {id}"),
    );
    objects::delete::<CollectorDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    state.estate.invalidate();
    Ok(())
}

/// Registration: exchanges a one-time secret for the collector's key.
pub async fn register(
    state: &AppState,
    secret: &str,
    report: CollectorReport,
    ip: &str,
) -> Result<(i64, String), ApiError> {
    let refused =
        || ApiError::Unauthenticated("the registration secret is unknown, used or expired".into());
    if !secret.starts_with("palr_") {
        return Err(refused());
    }
    let hash = state.portal.keys.bearer_hash(secret);
    let found: CollectorDoc = objects::find(state.portal.store.as_ref(), &format!("r:{hash}"))
        .await?
        .ok_or_else(refused)?;
    let now = state.portal.now();
    if found.registration_expires.is_none_or(|t| t < now) {
        return Err(refused());
    }
    let key = random_secret("palc_");
    let key_hash = state.portal.keys.bearer_hash(&key);
    let hostname = report.hostname.trim().to_string();
    let actor = Actor {
        username: format!("System:collector.{}", found.id),
        ip: ip.into(),
        ..Default::default()
    };
    let audit = actor.event(
        now,
        "collector.register",
        format!(
            "collector {} registered from {ip} as {} on {} (admin account: {})",
            found.id, report.hostname, report.platform, report.is_admin_account
        ),
    );
    let expected = hash.clone();
    let ip = ip.to_string();
    let noncompliant = crate::compliance::report_noncompliant(&report);
    objects::update::<CollectorDoc, _>(
        state.portal.store.as_ref(),
        found.id,
        move |c| {
            // Under the write lock: a concurrent registration with the same secret loses.
            if c.registration_hash.as_deref() != Some(expected.as_str()) {
                return Err(palisade_store::StoreError::Invalid(
                    "the registration secret was already used".into(),
                ));
            }
            c.registration_hash = None;
            c.registration_expires = None;
            c.key_hash = Some(key_hash);
            c.registered_on = Some(now);
            c.noncompliant_since = noncompliant.then_some(now);
            c.report = Some(report);
            c.last_heartbeat = Some(now);
            c.last_ip = ip;
            Ok(())
        },
        Some(audit),
    )
    .await
    .map_err(|e| match e {
        palisade_store::StoreError::Invalid(_) => refused(),
        other => other.into(),
    })?;
    own_device(&state.portal, &actor, found.id, &hostname).await;
    state.estate.invalidate();
    Ok((found.id, key))
}

/// Creates the device of the collector's own host (as LogicMonitor does), monitored by the
/// collector itself, unless the collector already has one or a device of that name exists.
/// Failure only logs: registration has succeeded.
async fn own_device(portal: &Portal, actor: &Actor, collector: i64, hostname: &str) {
    if hostname.is_empty() || hostname.len() > 255 || hostname.chars().any(char::is_control) {
        return;
    }
    let existing: Result<Option<palisade_store::inventory::DeviceDoc>, _> =
        objects::find(portal.store.as_ref(), &hostname.to_lowercase()).await;
    let device_id = match existing {
        Ok(Some(d)) => d.id,
        Ok(None) => {
            let doc = palisade_store::inventory::DeviceDoc {
                name: hostname.into(),
                display_name: hostname.into(),
                description: format!("the host of collector {collector}"),
                preferred_collector_id: collector,
                created_by: actor.username.clone(),
                ..Default::default()
            };
            let audit = actor.event(
                portal.now(),
                "device.create",
                format!("created device {{id}} `{hostname}` for the host of collector {collector}"),
            );
            match objects::create(portal.store.as_ref(), &doc, Some(audit)).await {
                Ok(d) => d.id,
                Err(e) => {
                    tracing::warn!(error = %e, collector, "could not create the collector's own device");
                    return;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, collector, "could not look up the collector's own device");
            return;
        }
    };
    if let Err(e) = objects::update::<CollectorDoc, _>(
        portal.store.as_ref(),
        collector,
        move |c| {
            c.device_id = device_id;
            Ok(())
        },
        None,
    )
    .await
    {
        tracing::warn!(error = %e, collector, "could not link the collector's own device");
    }
}

/// The collector presenting this key.
pub async fn authenticate(state: &AppState, key: &str) -> Result<CollectorDoc, ApiError> {
    let refused = || ApiError::Unauthenticated("unknown collector key".into());
    if !key.starts_with("palc_") {
        return Err(refused());
    }
    let hash = state.portal.keys.bearer_hash(key);
    let c: CollectorDoc = objects::find(state.portal.store.as_ref(), &format!("k:{hash}"))
        .await?
        .ok_or_else(refused)?;
    if c.suspended {
        return Err(ApiError::Forbidden(format!(
            "collector {} is suspended",
            c.id
        )));
    }
    Ok(c)
}

/// Records a heartbeat and the collector's report.
pub async fn heartbeat(
    state: &AppState,
    id: i64,
    report: CollectorReport,
    ip: &str,
) -> Result<(), ApiError> {
    let now = state.portal.now();
    let ip = ip.to_string();
    let down_after = down_after_ms(&state.portal).await?;
    let was_up = Arc::new(AtomicBool::new(true));
    let seen = was_up.clone();
    let noncompliant = crate::compliance::report_noncompliant(&report);
    objects::update::<CollectorDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |c| {
            seen.store(health(c, now, down_after) == Health::Up, Ordering::SeqCst);
            // The first non-compliant report of a spell dates the compliance finding.
            c.noncompliant_since = if noncompliant {
                c.noncompliant_since.or(Some(now))
            } else {
                None
            };
            c.report = Some(report);
            c.last_heartbeat = Some(now);
            c.last_ip = ip;
            Ok(())
        },
        None,
    )
    .await?;
    // Back from down: its devices return now, not at the next snapshot.
    if !was_up.load(Ordering::SeqCst) {
        state.estate.invalidate();
    }
    Ok(())
}

/// Collector group names by id.
pub async fn group_names(
    state: &AppState,
) -> Result<std::collections::BTreeMap<i64, String>, ApiError> {
    let groups: Vec<CollectorGroupDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(groups.into_iter().map(|g| (g.id, g.name)).collect())
}
