//! Notifications: escalation chains and alert rules (`/setting/alert/chains`,
//! `/setting/alert/rules`), which rule an alert matches, and delivery by email (the portal's
//! `[smtp]` sender) and signed webhook.
//!
//! Delivery never runs on the ingest path: the engine hands alert ids to a background task
//! through a channel ([`Notifier::wake`]), and every engine tick asks that task to sweep all
//! active alerts ([`NotifyJob::Sweep`]). What each destination was last told is kept in the
//! alert ([`AlertDoc::deliveries`]), so a failed destination is simply retried on the next
//! sweep while the others are not repeated.
//!
//! Per destination of the matching rule's chain:
//! - **open**: the alert is active, not in SDT, not acked, and the destination has never
//!   been told;
//! - **change**: the severity differs from the one it was told and the alert is not acked
//!   (an escalation clears the acknowledgement);
//! - **repeat**: the repeat interval (the rule's `escalationInterval` when positive, else the
//!   chain's `repeatInterval`, minutes; 0 = never) has passed and the alert is not acked;
//! - **clear**: the alert cleared, the destination was told about it, and the rule does not
//!   `suppressAlertClear`; retried for at most [`CLEAR_RETRY_MS`] after the clear.
//!
//! Webhooks are `POST`ed as JSON with `X-Palisade-Timestamp` (Unix seconds) and
//! `X-Palisade-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
//! (palisade-notify's signing); `docs/alerts.md` shows the payload and how to verify it.

use super::alerts::render_alert;
use super::estate::{DeviceView, Estate};
use super::fields::{bool_field, check_text, int_field, str_field};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::keys::Keys;
use crate::AppState;
use palisade_core::privilege::{Level, Need};
use palisade_core::threshold::Severity;
use palisade_notify::{sign_webhook, Message, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use palisade_store::alerting::{
    AlertChainDoc, AlertDoc, AlertRuleDoc, DeliveryMark, Destination, ALERT_ACTIVE,
};
use palisade_store::objects::{self, ObjectQuery};
use palisade_store::StoreError;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Fields the SDK's `EscalatingChain` model requires.
pub const CHAIN_REQUIRED: &[&str] = &["name", "destinations", "id"];
/// Fields the SDK's `AlertRule` model requires.
pub const RULE_REQUIRED: &[&str] = &[
    "name",
    "priority",
    "escalatingChainId",
    "sendAnomalySuppressedAlert",
    "id",
];
/// How long a failed clear notification is retried.
pub const CLEAR_RETRY_MS: i64 = 3_600_000;

/// Binds sealed webhook secrets to their purpose.
const SECRET_CONTEXT: &str = "alert-chain-webhook";
/// Shortest webhook secret, bytes (as palisade-notify requires).
const MIN_SECRET: usize = 16;
const MAX_DESTINATIONS: usize = 50;
const MAX_GLOBS: usize = 100;
/// Longest repeat interval, minutes (a week).
const MAX_REPEAT: i64 = 10_080;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The value a client sends back to keep a stored secret.
const MASK: &str = "********";

// ---------------------------------------------------------------- chains

fn require_manage(caller: &Caller) -> Result<(), ApiError> {
    caller.require(Need::HostGroup(None, Level::Manage))
}

fn check_name(s: &str) -> Result<(), ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::BadRequest("`name` must not be empty".into()));
    }
    if s.len() > 255 || s.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "`name` must be at most 255 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// A chain in LogicMonitor's `EscalatingChain` shape; webhook secrets are never shown.
pub fn render_chain(c: &AlertChainDoc) -> Value {
    let destinations: Vec<Value> = c
        .destinations
        .iter()
        .map(|d| match d {
            Destination::Email { addr } => json!({"type": "email", "addr": addr, "stages": []}),
            Destination::Webhook { url, .. } => {
                json!({"type": "webhook", "url": url, "stages": []})
            }
        })
        .collect();
    json!({
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "destinations": destinations,
        "ccDestinations": [],
        "repeatInterval": c.repeat_interval,
        "enableThrottling": false,
        "throttlingPeriod": 0,
        "throttlingAlerts": 0,
        "inAlerting": false,
    })
}

fn check_email(addr: &str) -> Result<(), ApiError> {
    let ok = addr.len() <= 254
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && addr
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{}` is not an email address",
            addr.chars().take(64).collect::<String>()
        )))
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// `https://` anywhere, `http://` only on loopback; no credentials, no fragment. The
/// messages never repeat the URL (it may carry a token).
fn check_webhook_url(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("webhook `url`: {why}"));
    if raw.len() > 2048 {
        return Err(bad("longer than 2048 bytes"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| bad("does not parse"))?;
    let host = url.host_str().ok_or_else(|| bad("has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(host) => {}
        _ => return Err(bad("must use https:// (http:// only on loopback)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    Ok(url.to_string())
}

/// Parses `destinations`: Palisade's `{type: "email", addr}` and `{type: "webhook", url,
/// secret}`, and LogicMonitor's `{type: "single", stages: [[{method: "email", addr}]]}`
/// (its email recipients). A webhook without `secret` (or with `********`) keeps the secret
/// stored for the same URL.
fn parse_destinations(
    keys: &Keys,
    raw: &Value,
    existing: &[Destination],
) -> Result<Vec<Destination>, ApiError> {
    let Value::Array(items) = raw else {
        return Err(ApiError::BadRequest("`destinations` must be a list".into()));
    };
    let mut out: Vec<Destination> = Vec::new();
    let push = |d: Destination, out: &mut Vec<Destination>| {
        if !out.iter().any(|o| o.key() == d.key()) {
            out.push(d);
        }
    };
    for item in items {
        let kind = str_field(item, "type")?
            .unwrap_or_default()
            .to_ascii_lowercase();
        match kind.as_str() {
            "email" => {
                let addr = str_field(item, "addr")?
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                check_email(&addr)?;
                push(Destination::Email { addr }, &mut out);
            }
            "webhook" => {
                let url = check_webhook_url(&str_field(item, "url")?.unwrap_or_default())?;
                let secret = str_field(item, "secret")?.filter(|s| !s.is_empty() && s != MASK);
                let sealed_secret = match secret {
                    Some(s) if s.len() < MIN_SECRET || s.len() > 512 => {
                        return Err(ApiError::BadRequest(format!(
                            "webhook `secret` must be {MIN_SECRET} to 512 bytes"
                        )))
                    }
                    Some(s) => keys.seal(s.as_bytes(), SECRET_CONTEXT),
                    None => existing
                        .iter()
                        .find_map(|d| match d {
                            Destination::Webhook { url: u, sealed_secret } if *u == url => Some(sealed_secret.clone()),
                            _ => None,
                        })
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "a webhook destination needs `secret` (at least {MIN_SECRET} bytes), the key of its HMAC-SHA256 signature"
                            ))
                        })?,
                };
                push(Destination::Webhook { url, sealed_secret }, &mut out);
            }
            _ => {
                let Some(Value::Array(stages)) = item.get("stages") else {
                    return Err(ApiError::BadRequest(
                        "a destination is {\"type\": \"email\", \"addr\"} or {\"type\": \"webhook\", \"url\", \"secret\"}".into(),
                    ));
                };
                for r in stages.iter().filter_map(Value::as_array).flatten() {
                    let method = str_field(r, "method")?.unwrap_or_else(|| "email".into());
                    if !method.eq_ignore_ascii_case("email") {
                        return Err(ApiError::BadRequest(format!(
                            "recipient method `{}` is not supported; Palisade sends email and webhooks",
                            method.chars().take(32).collect::<String>()
                        )));
                    }
                    let addr = str_field(r, "addr")?.unwrap_or_default().trim().to_string();
                    check_email(&addr)?;
                    push(Destination::Email { addr }, &mut out);
                }
            }
        }
    }
    if out.len() > MAX_DESTINATIONS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_DESTINATIONS} destinations per chain"
        )));
    }
    Ok(out)
}

fn apply_chain_body(
    keys: &Keys,
    c: &mut AlertChainDoc,
    body: &Value,
    creating: bool,
) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::BadRequest("a chain must be a JSON object".into()));
    }
    match str_field(body, "name")? {
        Some(n) => {
            check_name(&n)?;
            c.name = n.trim().to_string();
        }
        None if creating => return Err(ApiError::BadRequest("`name` is required".into())),
        None => {}
    }
    if let Some(d) = str_field(body, "description")? {
        check_text("description", &d, 1024)?;
        c.description = d;
    }
    match body.get("destinations") {
        Some(Value::Null) | None if creating => {
            return Err(ApiError::BadRequest("`destinations` is required".into()))
        }
        Some(Value::Null) | None => {}
        Some(raw) => c.destinations = parse_destinations(keys, raw, &c.destinations)?,
    }
    if let Some(r) = int_field(body, "repeatInterval")? {
        if !(0..=MAX_REPEAT).contains(&r) {
            return Err(ApiError::BadRequest(format!(
                "`repeatInterval` must be 0 (no repeat) to {MAX_REPEAT} minutes"
            )));
        }
        c.repeat_interval = r;
    }
    Ok(())
}

async fn chain_doc(state: &AppState, id: i64) -> Result<AlertChainDoc, ApiError> {
    objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("escalation chain {id} not found")))
}

/// All chains (`host_group:*:manage`: they show addresses and webhook URLs).
pub async fn list_chains(state: &AppState, caller: &Caller) -> Result<Vec<Value>, ApiError> {
    require_manage(caller)?;
    let list: Vec<AlertChainDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(list.iter().map(render_chain).collect())
}

/// One chain.
pub async fn get_chain(state: &AppState, caller: &Caller, id: i64) -> Result<Value, ApiError> {
    require_manage(caller)?;
    Ok(render_chain(&chain_doc(state, id).await?))
}

/// Creates a chain.
pub async fn create_chain(
    state: &AppState,
    caller: &Caller,
    body: &Value,
) -> Result<Value, ApiError> {
    require_manage(caller)?;
    let mut c = AlertChainDoc::default();
    apply_chain_body(&state.portal.keys, &mut c, body, true)?;
    let audit = caller.actor.event(
        state.portal.now(),
        "alertchain.create",
        format!("created escalation chain {{id}} `{}`", c.name),
    );
    let created = objects::create(state.portal.store.as_ref(), &c, Some(audit)).await?;
    Ok(render_chain(&created))
}

/// Changes a chain (`PATCH` and `PUT`: the given fields).
pub async fn update_chain(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &Value,
) -> Result<Value, ApiError> {
    require_manage(caller)?;
    chain_doc(state, id).await?;
    let keys = state.portal.keys.clone();
    let body = body.clone();
    let audit = caller.actor.event(
        state.portal.now(),
        "alertchain.update",
        format!("changed escalation chain {id}"),
    );
    let updated = objects::update::<AlertChainDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |c| {
            apply_chain_body(&keys, c, &body, false).map_err(|e| StoreError::Invalid(e.to_string()))
        },
        Some(audit),
    )
    .await?;
    Ok(render_chain(&updated))
}

/// Deletes a chain no rule uses.
pub async fn delete_chain(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    require_manage(caller)?;
    chain_doc(state, id).await?;
    let users: Vec<AlertRuleDoc> = objects::list(
        state.portal.store.as_ref(),
        ObjectQuery {
            ref_id: Some(id),
            flag: None,
        },
    )
    .await?;
    if let Some(r) = users.first() {
        return Err(ApiError::Conflict(format!(
            "escalation chain {id} is used by alert rule {} `{}`",
            r.id, r.name
        )));
    }
    let audit = caller.actor.event(
        state.portal.now(),
        "alertchain.delete",
        format!("deleted escalation chain {id}"),
    );
    objects::delete::<AlertChainDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    Ok(())
}

// ---------------------------------------------------------------- rules

/// The minimum severity of a rule's `levelStr`, `None` when it is not one.
fn min_severity(level: &str) -> Option<Severity> {
    match level.trim().to_ascii_lowercase().as_str() {
        "" | "all" | "warn" | "warning" => Some(Severity::Warning),
        "error" => Some(Severity::Error),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn level_name(s: Severity, all: bool) -> &'static str {
    match s {
        Severity::Warning if all => "All",
        Severity::Warning => "Warn",
        Severity::Error => "Error",
        Severity::Critical => "Critical",
    }
}

/// A rule in LogicMonitor's `AlertRule` shape.
pub fn render_rule(r: &AlertRuleDoc, chain_name: &str) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "priority": r.priority,
        "levelStr": r.level_str,
        "devices": r.devices,
        "deviceGroups": r.device_groups,
        "datasource": r.datasource,
        "instance": r.instance,
        "datapoint": r.datapoint,
        "escalatingChainId": r.escalating_chain_id,
        "escalatingChain": {"id": r.escalating_chain_id, "name": chain_name},
        "escalationInterval": r.escalation_interval,
        "suppressAlertClear": r.suppress_alert_clear,
        "suppressAlertAckSdt": r.suppress_alert_ack_sdt,
        // Required by the SDK's `AlertRule` model; Palisade has no anomaly detection.
        "sendAnomalySuppressedAlert": false,
    })
}

fn glob_list(body: &Value, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let bad = || ApiError::BadRequest(format!("`{name}` must be a list of strings"));
    let list: Vec<String> = match body.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(|s| s.trim().to_string()).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    if list.len() > MAX_GLOBS {
        return Err(ApiError::BadRequest(format!(
            "`{name}`: at most {MAX_GLOBS} entries"
        )));
    }
    for g in &list {
        check_text(name, g, 255)?;
    }
    Ok(Some(list))
}

fn apply_rule_body(r: &mut AlertRuleDoc, body: &Value, creating: bool) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::BadRequest("a rule must be a JSON object".into()));
    }
    match str_field(body, "name")? {
        Some(n) => {
            check_name(&n)?;
            r.name = n.trim().to_string();
        }
        None if creating => return Err(ApiError::BadRequest("`name` is required".into())),
        None => {}
    }
    match int_field(body, "priority")? {
        Some(p) if !(0..=1_000_000_000).contains(&p) => {
            return Err(ApiError::BadRequest(
                "`priority` must be 0 to 1000000000".into(),
            ))
        }
        Some(p) => r.priority = p,
        None if creating => return Err(ApiError::BadRequest("`priority` is required".into())),
        None => {}
    }
    match int_field(body, "escalatingChainId")? {
        Some(c) => r.escalating_chain_id = c,
        None if creating => {
            return Err(ApiError::BadRequest(
                "`escalatingChainId` is required".into(),
            ))
        }
        None => {}
    }
    if let Some(l) = str_field(body, "levelStr")? {
        let s = min_severity(&l).ok_or_else(|| {
            ApiError::BadRequest("`levelStr` must be All, Warn, Error or Critical".into())
        })?;
        r.level_str = level_name(
            s,
            l.trim().is_empty() || l.trim().eq_ignore_ascii_case("all"),
        )
        .into();
    } else if creating {
        r.level_str = "All".into();
    }
    if let Some(v) = glob_list(body, "devices")? {
        r.devices = v;
    }
    if let Some(v) = glob_list(body, "deviceGroups")? {
        r.device_groups = v;
    }
    for (name, slot) in [
        ("datasource", &mut r.datasource),
        ("instance", &mut r.instance),
        ("datapoint", &mut r.datapoint),
    ] {
        if let Some(v) = str_field(body, name)? {
            check_text(name, &v, 255)?;
            *slot = v.trim().to_string();
        }
    }
    if let Some(i) = int_field(body, "escalationInterval")? {
        if !(0..=MAX_REPEAT).contains(&i) {
            return Err(ApiError::BadRequest(format!(
                "`escalationInterval` must be 0 to {MAX_REPEAT} minutes"
            )));
        }
        r.escalation_interval = i;
    }
    if let Some(b) = bool_field(body, "suppressAlertClear")? {
        r.suppress_alert_clear = b;
    }
    if let Some(b) = bool_field(body, "suppressAlertAckSdt")? {
        r.suppress_alert_ack_sdt = b;
    }
    Ok(())
}

async fn chain_names(state: &AppState) -> Result<BTreeMap<i64, String>, ApiError> {
    let chains: Vec<AlertChainDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    Ok(chains.into_iter().map(|c| (c.id, c.name)).collect())
}

async fn rule_json(state: &AppState, r: &AlertRuleDoc) -> Result<Value, ApiError> {
    let names = chain_names(state).await?;
    Ok(render_rule(
        r,
        names
            .get(&r.escalating_chain_id)
            .map(String::as_str)
            .unwrap_or_default(),
    ))
}

/// All rules (`host_group:*:read`).
pub async fn list_rules(state: &AppState, caller: &Caller) -> Result<Vec<Value>, ApiError> {
    caller.require(Need::HostGroup(None, Level::Read))?;
    let names = chain_names(state).await?;
    let mut rules: Vec<AlertRuleDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    rules.sort_by_key(|r| (r.priority, r.id));
    Ok(rules
        .iter()
        .map(|r| {
            render_rule(
                r,
                names
                    .get(&r.escalating_chain_id)
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
        })
        .collect())
}

async fn rule_doc(state: &AppState, id: i64) -> Result<AlertRuleDoc, ApiError> {
    objects::get(state.portal.store.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("alert rule {id} not found")))
}

/// One rule.
pub async fn get_rule(state: &AppState, caller: &Caller, id: i64) -> Result<Value, ApiError> {
    caller.require(Need::HostGroup(None, Level::Read))?;
    rule_json(state, &rule_doc(state, id).await?).await
}

/// Creates a rule.
pub async fn create_rule(
    state: &AppState,
    caller: &Caller,
    body: &Value,
) -> Result<Value, ApiError> {
    require_manage(caller)?;
    let mut r = AlertRuleDoc::default();
    apply_rule_body(&mut r, body, true)?;
    chain_exists(state, r.escalating_chain_id).await?;
    let audit = caller.actor.event(
        state.portal.now(),
        "alertrule.create",
        format!("created alert rule {{id}} `{}`", r.name),
    );
    let created = objects::create(state.portal.store.as_ref(), &r, Some(audit)).await?;
    rule_json(state, &created).await
}

async fn chain_exists(state: &AppState, id: i64) -> Result<(), ApiError> {
    let c: Option<AlertChainDoc> = objects::get(state.portal.store.as_ref(), id).await?;
    c.map(|_| ())
        .ok_or_else(|| ApiError::BadRequest(format!("escalation chain {id} does not exist")))
}

/// Changes a rule (`PATCH` and `PUT`: the given fields).
pub async fn update_rule(
    state: &AppState,
    caller: &Caller,
    id: i64,
    body: &Value,
) -> Result<Value, ApiError> {
    require_manage(caller)?;
    let mut check = rule_doc(state, id).await?;
    apply_rule_body(&mut check, body, false)?;
    chain_exists(state, check.escalating_chain_id).await?;
    let body = body.clone();
    let audit = caller.actor.event(
        state.portal.now(),
        "alertrule.update",
        format!("changed alert rule {id}"),
    );
    let updated = objects::update::<AlertRuleDoc, _>(
        state.portal.store.as_ref(),
        id,
        move |r| apply_rule_body(r, &body, false).map_err(|e| StoreError::Invalid(e.to_string())),
        Some(audit),
    )
    .await?;
    rule_json(state, &updated).await
}

/// Deletes a rule.
pub async fn delete_rule(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    require_manage(caller)?;
    rule_doc(state, id).await?;
    let audit = caller.actor.event(
        state.portal.now(),
        "alertrule.delete",
        format!("deleted alert rule {id}"),
    );
    objects::delete::<AlertRuleDoc>(state.portal.store.as_ref(), id, Some(audit)).await?;
    Ok(())
}

// ---------------------------------------------------------------- matching

/// Case-insensitive glob with `*` (any run) and `?` (one character); linear backtracking.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

fn field_matches(pattern: &str, text: &str) -> bool {
    pattern.is_empty() || glob(pattern, text)
}

/// Whether a rule takes an alert.
pub fn rule_matches(
    r: &AlertRuleDoc,
    alert: &AlertDoc,
    device: Option<&DeviceView>,
    estate: &Estate,
) -> bool {
    let severity_ok =
        min_severity(&r.level_str).is_some_and(|min| alert.severity >= min.as_lm_code());
    let devices_ok = r.devices.is_empty()
        || r.devices.iter().any(|g| {
            glob(g, &alert.monitor_object_name) || device.is_some_and(|d| glob(g, &d.doc.name))
        });
    let groups_ok = r.device_groups.is_empty()
        || device.is_some_and(|d| {
            d.all_groups
                .iter()
                .filter_map(|g| estate.groups.get(g))
                .filter(|n| !n.full_path.is_empty())
                .any(|n| {
                    r.device_groups
                        .iter()
                        .any(|g| glob(g.trim_matches('/'), &n.full_path))
                })
        });
    severity_ok
        && devices_ok
        && groups_ok
        && field_matches(&r.datasource, &alert.resource_template_name)
        && field_matches(&r.instance, &alert.instance_name)
        && field_matches(&r.datapoint, &alert.data_point_name)
}

// ---------------------------------------------------------------- delivery

/// Work for the notification task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyJob {
    /// Look at one alert (it opened, changed, cleared or left SDT).
    Alert(i64),
    /// Look at every active alert and every pending one (repeats, retries).
    Sweep,
}

/// The notification task's mailbox and state.
#[derive(Debug)]
pub struct Notifier {
    tx: mpsc::Sender<NotifyJob>,
    rx: parking_lot::Mutex<Option<mpsc::Receiver<NotifyJob>>>,
    /// Alerts to look at on the next sweep: jobs that did not fit the channel, and cleared
    /// alerts whose clear notification failed.
    pending: parking_lot::Mutex<BTreeSet<i64>>,
    /// One delivery pass at a time (the task's, or a caller's [`Notifier::run_now`]).
    pass: tokio::sync::Mutex<()>,
    http: OnceLock<Option<reqwest::Client>>,
}

impl Default for Notifier {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(1024);
        Notifier {
            tx,
            rx: parking_lot::Mutex::new(Some(rx)),
            pending: Default::default(),
            pass: Default::default(),
            http: OnceLock::new(),
        }
    }
}

/// What a destination is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Open,
    Change,
    Repeat,
    Clear,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Open => "open",
            Event::Change => "change",
            Event::Repeat => "repeat",
            Event::Clear => "clear",
        }
    }
}

/// What one pass knows.
struct Pass {
    estate: Arc<Estate>,
    rules: Vec<AlertRuleDoc>,
    chains: BTreeMap<i64, AlertChainDoc>,
    now: i64,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The subject line: `[Palisade] critical: web-1 HostCPU cpu0 usage = 95 (> 90)`.
pub fn subject(a: &AlertDoc) -> String {
    let what = format!(
        "{} {} {} {}",
        a.monitor_object_name, a.resource_template_name, a.instance_name, a.data_point_name
    );
    let line = if a.cleared {
        format!("[Palisade] cleared: {what} = {}", a.clear_value)
    } else if a.alert_type == "noData" {
        let sev = Severity::from_lm_code(a.severity).map_or("alert", Severity::name);
        format!("[Palisade] {sev}: {what} has no data")
    } else {
        let sev = Severity::from_lm_code(a.severity).map_or("alert", Severity::name);
        format!(
            "[Palisade] {sev}: {what} = {} ({})",
            a.alert_value, a.threshold
        )
    };
    clean(&line).chars().take(250).collect()
}

fn email_text(a: &AlertDoc, event: Event) -> String {
    let sev = Severity::from_lm_code(a.severity).map_or("unknown", Severity::name);
    format!(
        "{}\n\nEvent: {}\nAlert: DS{}\nSeverity: {sev}\nDevice: {} (id {})\nDatasource: {}\nInstance: {}\nDatapoint: {}\nValue: {}\nThreshold: {}\nStarted: {} (epoch seconds)\n{}Rule: {}\nChain: {}\n",
        subject(a),
        event.as_str(),
        a.id,
        a.monitor_object_name,
        a.monitor_object_id,
        a.resource_template_name,
        a.instance_name,
        a.data_point_name,
        a.alert_value,
        a.threshold,
        a.start_epoch,
        if a.cleared { format!("Cleared: {} (epoch seconds), value {}\n", a.end_epoch, a.clear_value) } else { String::new() },
        a.rule,
        a.chain,
    )
}

impl Notifier {
    /// Asks the task to look at one alert (never waits).
    pub fn wake(&self, alert_id: i64) {
        if self.tx.try_send(NotifyJob::Alert(alert_id)).is_err() {
            self.pending.lock().insert(alert_id);
        }
    }

    /// Asks the task for a sweep (never waits; a sweep already queued is enough).
    pub fn sweep(&self) {
        let _ = self.tx.try_send(NotifyJob::Sweep);
    }

    /// Starts the task; it ends when the state is dropped. Only the first call starts it.
    pub fn start(&self, state: Weak<AppState>) {
        let Some(mut rx) = self.rx.lock().take() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let Some(state) = state.upgrade() else { break };
                let ids = match job {
                    NotifyJob::Alert(id) => Some(vec![id]),
                    NotifyJob::Sweep => None,
                };
                state.alerts.notifier.run(&state, ids).await;
            }
        });
    }

    /// One delivery pass now, over every active and pending alert (what a sweep does).
    pub async fn run_now(&self, state: &AppState) {
        self.run(state, None).await;
    }

    async fn run(&self, state: &AppState, ids: Option<Vec<i64>>) {
        let _pass = self.pass.lock().await;
        if let Err(e) = self.pass_inner(state, ids).await {
            tracing::warn!(error = %e, "alert notification pass failed; retrying on the next tick");
        }
    }

    async fn pass_inner(&self, state: &AppState, ids: Option<Vec<i64>>) -> Result<(), ApiError> {
        let store = state.portal.store.as_ref();
        let mut alerts: Vec<AlertDoc> = Vec::new();
        match ids {
            Some(ids) => {
                for id in ids {
                    if let Some(a) = objects::get::<AlertDoc>(store, id).await? {
                        alerts.push(a);
                    }
                }
            }
            None => {
                let pending: Vec<i64> = std::mem::take(&mut *self.pending.lock())
                    .into_iter()
                    .collect();
                alerts = objects::list(
                    store,
                    ObjectQuery {
                        ref_id: None,
                        flag: Some(ALERT_ACTIVE),
                    },
                )
                .await?;
                for id in pending {
                    if alerts.iter().any(|a| a.id == id) {
                        continue;
                    }
                    if let Some(a) = objects::get::<AlertDoc>(store, id).await? {
                        alerts.push(a);
                    }
                }
            }
        }
        if alerts.is_empty() {
            return Ok(());
        }
        let mut rules: Vec<AlertRuleDoc> = objects::list(store, ObjectQuery::default()).await?;
        rules.sort_by_key(|r| (r.priority, r.id));
        let chains: Vec<AlertChainDoc> = objects::list(store, ObjectQuery::default()).await?;
        let pass = Pass {
            estate: state.estate.get(&state.portal).await?,
            rules,
            chains: chains.into_iter().map(|c| (c.id, c)).collect(),
            now: state.portal.now(),
        };
        for a in alerts {
            let id = a.id;
            if !self.deliver(state, &pass, a).await {
                self.pending.lock().insert(id);
            }
        }
        Ok(())
    }

    /// Sends what one alert needs; false when a delivery failed and should be retried.
    async fn deliver(&self, state: &AppState, pass: &Pass, mut a: AlertDoc) -> bool {
        if a.cleared && pass.now.saturating_sub(a.end_epoch.saturating_mul(1000)) > CLEAR_RETRY_MS {
            return true;
        }
        let device = pass.estate.devices.get(&a.monitor_object_id);
        let rule = pass
            .rules
            .iter()
            .find(|r| rule_matches(r, &a, device, &pass.estate));
        let chain = rule.and_then(|r| pass.chains.get(&r.escalating_chain_id));
        let (rule_name, rule_id) = rule.map_or((String::new(), 0), |r| (r.name.clone(), r.id));
        let (chain_name, chain_id) = chain.map_or((String::new(), 0), |c| (c.name.clone(), c.id));
        let relabel = !a.cleared && (a.rule_id != rule_id || a.chain_id != chain_id);
        a.rule = rule_name.clone();
        a.rule_id = rule_id;
        a.chain = chain_name.clone();
        a.chain_id = chain_id;
        let mut due: Vec<(&Destination, Event)> = Vec::new();
        if let (Some(rule), Some(chain)) = (rule, chain) {
            let repeat_min = if rule.escalation_interval > 0 {
                rule.escalation_interval
            } else {
                chain.repeat_interval
            };
            for d in &chain.destinations {
                let mark = a.deliveries.get(&d.key());
                let event = if a.cleared {
                    match mark {
                        Some(m) if !m.cleared && !rule.suppress_alert_clear => Some(Event::Clear),
                        _ => None,
                    }
                } else if a.sdted {
                    None
                } else {
                    match mark {
                        None if a.acked => None,
                        None => Some(Event::Open),
                        Some(m) if m.cleared => None,
                        Some(m) if m.severity != a.severity && !a.acked => Some(Event::Change),
                        Some(m)
                            if repeat_min > 0
                                && !a.acked
                                && pass.now.saturating_sub(m.at_ms)
                                    >= repeat_min.saturating_mul(60_000) =>
                        {
                            Some(Event::Repeat)
                        }
                        Some(_) => None,
                    }
                };
                if let Some(e) = event {
                    due.push((d, e));
                }
            }
        }
        if due.is_empty() {
            if relabel {
                let (rn, cn) = (rule_name, chain_name);
                let _ = objects::update::<AlertDoc, _>(
                    state.portal.store.as_ref(),
                    a.id,
                    move |d| {
                        if !d.cleared {
                            d.rule = rn;
                            d.rule_id = rule_id;
                            d.chain = cn;
                            d.chain_id = chain_id;
                        }
                        Ok(())
                    },
                    None,
                )
                .await;
            }
            return true;
        }
        let rendered = render_alert(&pass.estate, &a);
        let mut sent: Vec<(String, Event)> = Vec::new();
        let mut ok = true;
        for (d, event) in due {
            let result = match d {
                Destination::Email { addr } => self.send_email(state, addr, &a, event).await,
                Destination::Webhook { url, sealed_secret } => {
                    self.send_webhook(state, url, sealed_secret, &a, &rendered, event, pass.now)
                        .await
                }
            };
            match result {
                Ok(()) => sent.push((d.key(), event)),
                Err(why) => {
                    ok = false;
                    tracing::warn!(alert = a.id, destination = %d.key(), error = %why, "alert notification failed; retrying on the next tick");
                }
            }
        }
        let (severity, now) = (a.severity, pass.now);
        let result = objects::update::<AlertDoc, _>(
            state.portal.store.as_ref(),
            a.id,
            move |d| {
                if !d.cleared {
                    d.rule = rule_name;
                    d.rule_id = rule_id;
                    d.chain = chain_name;
                    d.chain_id = chain_id;
                }
                for (key, event) in sent {
                    let m = d
                        .deliveries
                        .entry(key)
                        .or_insert_with(DeliveryMark::default);
                    m.at_ms = now;
                    m.count = m.count.saturating_add(1);
                    if event == Event::Clear {
                        m.cleared = true;
                    } else {
                        m.severity = severity;
                    }
                    d.last_notified_ms = now;
                }
                Ok(())
            },
            None,
        )
        .await;
        if let Err(e) = result {
            tracing::error!(alert = a.id, error = %e, "could not record alert deliveries (they may be repeated)");
            return false;
        }
        ok
    }

    async fn send_email(
        &self,
        state: &AppState,
        to: &str,
        a: &AlertDoc,
        event: Event,
    ) -> Result<(), String> {
        let sender = state.delivery.email.as_ref().ok_or_else(|| {
            "no SMTP server is configured ([smtp] in the configuration)".to_string()
        })?;
        let msg = Message::email(to, subject(a), email_text(a, event));
        sender.send(&msg).await.map_err(|e| e.to_string())
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.http
            .get_or_init(|| {
                reqwest::Client::builder()
                    .timeout(WEBHOOK_TIMEOUT)
                    .connect_timeout(WEBHOOK_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .user_agent(concat!("palisade/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| tracing::error!(error = %e, "the webhook HTTP client could not be built"))
                    .ok()
            })
            .as_ref()
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_webhook(
        &self,
        state: &AppState,
        url: &str,
        sealed_secret: &str,
        a: &AlertDoc,
        rendered: &Value,
        event: Event,
        now_ms: i64,
    ) -> Result<(), String> {
        let secret = state
            .portal
            .keys
            .open(sealed_secret, SECRET_CONTEXT)
            .map_err(|_| "the webhook secret cannot be decrypted".to_string())?;
        let body = serde_json::to_vec(&json!({
            "event": event.as_str(),
            "subject": subject(a),
            "sentAt": now_ms / 1000,
            "alert": rendered,
        }))
        .map_err(|e| e.to_string())?;
        let timestamp = (now_ms / 1000).to_string();
        let signature = sign_webhook(secret.expose(), &timestamp, &body);
        let client = self.client().ok_or_else(|| "no HTTP client".to_string())?;
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .header("X-Palisade-Event", event.as_str())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let host = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(String::from))
                    .unwrap_or_default();
                if e.is_timeout() {
                    format!("{host} did not answer in time")
                } else {
                    format!("connection to {host} failed")
                }
            })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the webhook answered {}",
                response.status().as_u16()
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("web-*", "Web-1"));
        assert!(glob("w?b*1", "web-01"));
        assert!(!glob("web", "web-1"));
        assert!(glob("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob("*a*b*c*d", "xxaxxbxxcxx"));
        let long = "a".repeat(5000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    }

    #[test]
    fn levels() {
        assert_eq!(min_severity("All"), Some(Severity::Warning));
        assert_eq!(min_severity("warn"), Some(Severity::Warning));
        assert_eq!(min_severity("CRITICAL"), Some(Severity::Critical));
        assert_eq!(min_severity("major"), None);
    }

    #[test]
    fn webhook_urls() {
        assert!(check_webhook_url("https://hooks.example.com/x?t=1").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9000/h").is_ok());
        assert!(check_webhook_url("http://hooks.example.com/x").is_err());
        assert!(check_webhook_url("https://u:p@hooks.example.com/").is_err());
        assert!(check_webhook_url("ftp://x/").is_err());
        let err = check_webhook_url("http://secret-token.example.com/").unwrap_err();
        assert!(!err.to_string().contains("secret-token"));
    }

    #[test]
    fn subjects() {
        let a = AlertDoc {
            alert_type: "dataSourceAlert".into(),
            severity: 4,
            monitor_object_name: "web-1".into(),
            resource_template_name: "HostCPU".into(),
            instance_name: "cpu0".into(),
            data_point_name: "usage".into(),
            alert_value: "95".into(),
            threshold: "> 90".into(),
            ..AlertDoc::default()
        };
        assert_eq!(
            subject(&a),
            "[Palisade] critical: web-1 HostCPU cpu0 usage = 95 (> 90)"
        );
    }
}
