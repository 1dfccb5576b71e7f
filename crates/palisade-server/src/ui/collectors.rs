//! Collectors: their status, whether they run as root/administrator (`isAdminAccount`),
//! the user, uid and capabilities of their privilege report, and failover (which devices a
//! collector monitors now against the ones assigned to it); creating a collector shows its
//! one-time registration secret once. Reads and changes are those of
//! `/setting/collector/collectors`.

use super::components::{self as c, Field, FormData, Tone};
use super::ctx::Ui;
use super::data;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::collectors as col;
use crate::monitor::estate::Estate;
use crate::routes::collectors as api;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use palisade_store::inventory::{CollectorDoc, CollectorGroupDoc};
use palisade_store::objects::{self, ObjectQuery};
use serde_json::{json, Value};

/// Failover of one collector: devices it monitors, and those that moved.
struct Failover {
    monitoring: usize,
    taken_over: Vec<(i64, String, i64)>,
    moved_away: Vec<(i64, String, i64)>,
}

fn failover(estate: &Estate, id: i64) -> Failover {
    let mut f = Failover {
        monitoring: 0,
        taken_over: Vec::new(),
        moved_away: Vec::new(),
    };
    for d in estate.devices.values() {
        if d.collector_id == id {
            f.monitoring += 1;
            if d.assigned_collector_id != id && d.assigned_collector_id != 0 {
                f.taken_over.push((
                    d.doc.id,
                    d.doc.display_name.clone(),
                    d.assigned_collector_id,
                ));
            }
        } else if d.assigned_collector_id == id {
            f.moved_away
                .push((d.doc.id, d.doc.display_name.clone(), d.collector_id));
        }
    }
    f
}

fn list_of(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| other.to_string()),
    }
}

/// The privilege report: user (or account), uid, capabilities (or privileges).
fn runs_as(c: &CollectorDoc) -> Markup {
    let Some(r) = &c.report else {
        return html! { span.muted { "no report yet" } };
    };
    let p = &r.privilege;
    let user = p["user"]
        .as_str()
        .or_else(|| p["account"].as_str())
        .unwrap_or_default();
    let uid = match &p["uid"] {
        Value::Null => String::new(),
        v => v.to_string(),
    };
    html! {
        @if r.is_admin_account { (c::badge(Tone::Bad, "root / administrator")) " " }
        @else { (c::badge(Tone::Good, "not root")) " " }
        (user) @if !uid.is_empty() { " (uid " (uid) ")" }
    }
}

fn capabilities(c: &CollectorDoc) -> String {
    c.report
        .as_ref()
        .map(|r| {
            let caps = list_of(&r.privilege, "capabilities");
            if caps.is_empty() {
                list_of(&r.privilege, "privileges")
            } else {
                caps
            }
        })
        .unwrap_or_default()
}

async fn group_names(ui: &Ui) -> Result<std::collections::BTreeMap<i64, String>, ApiError> {
    col::group_names(ui.state()).await
}

/// `GET /ui/collectors`.
pub(crate) async fn list(ui: Ui) -> Response {
    let r = async {
        let state = ui.state();
        let list = data::visible_collectors(&ui).await?;
        let estate = state.estate.get(&state.portal).await?;
        let groups = group_names(&ui).await?;
        let now = state.portal.now();
        let body = html! {
            @if ui.can_collectors(Level::Write) {
                div.actions { a.button href="/ui/collectors/new" id="add-collector" { "Add collector" } }
            }
            (c::table("collectors", "Collectors", &["Collector", "Group", "Host", "Status", "Runs as", "Capabilities", "Devices", "Backup", "Last heartbeat"], html! {
                @for co in &list {
                    @let f = failover(&estate, co.id);
                    @let (status, bad) = data::collector_status(col::status(co, now, estate.down_after_ms));
                    tr {
                        th scope="row" { a href={"/ui/collectors/" (co.id)} { "#" (co.id) " " (co.description) } }
                        td { (groups.get(&co.group_id).cloned().unwrap_or_else(|| "—".into())) }
                        td { @if let Some(r) = &co.report { (r.hostname) " " span.muted { (r.platform) " " (r.arch) } } }
                        td { (c::badge(if bad { Tone::Bad } else { Tone::Good }, status)) }
                        td { (runs_as(co)) }
                        td.wrap { code { (capabilities(co)) } }
                        td {
                            (f.monitoring)
                            @if !f.taken_over.is_empty() { " " (c::badge(Tone::Warn, &format!("{} taken over", f.taken_over.len()))) }
                            @if !f.moved_away.is_empty() { " " (c::badge(Tone::Warn, &format!("{} failed over elsewhere", f.moved_away.len()))) }
                        }
                        td { @if co.backup_agent_id != 0 { a href={"/ui/collectors/" (co.backup_agent_id)} { "#" (co.backup_agent_id) } } @else { span.muted { "none" } } }
                        td { (c::time(co.last_heartbeat)) }
                    }
                }
            }))
            @if list.is_empty() { p { "No collector you may see." } }
        };
        Ok(ui.page("Collectors", body))
    }
    .await;
    ui.respond(r)
}

/// `GET /ui/collectors/{id}`.
pub(crate) async fn show(ui: Ui, Path(raw): Path<String>) -> Response {
    let r = async {
        let state = ui.state.clone();
        // The REST handler decides visibility (404/403 as the API).
        let v = api::get(
            State(state.clone()),
            ui.reader(),
            Path(raw.clone()),
            RawQuery(None),
        )
        .await?
        .0;
        let id = v["id"].as_i64().unwrap_or(0);
        let doc: CollectorDoc = objects::get(state.portal.store.as_ref(), id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("collector {id} not found")))?;
        let estate = state.estate.get(&state.portal).await?;
        let f = failover(&estate, id);
        let code = v["status"].as_i64().unwrap_or(0);
        let (status, bad) = data::collector_status(code);
        let report = doc
            .report
            .as_ref()
            .map(|r| serde_json::to_string_pretty(&r.privilege).unwrap_or_default())
            .unwrap_or_default();
        let body = html! {
            dl.facts {
                dt { "Status" } dd { (c::badge(if bad { Tone::Bad } else { Tone::Good }, status)) }
                dt { "Group" } dd { (v["collectorGroupName"].as_str().unwrap_or("—")) }
                dt { "Host" } dd { (v["hostname"].as_str().unwrap_or_default()) " " (v["platform"].as_str().unwrap_or_default()) " " (v["arch"].as_str().unwrap_or_default()) }
                dt { "Build" } dd { (v["build"].as_str().unwrap_or_default()) }
                dt { "isAdminAccount" } dd id="is-admin" { @if v["isAdminAccount"].as_bool().unwrap_or(false) { (c::badge(Tone::Bad, "yes: runs as root or administrator")) } @else { (c::badge(Tone::Good, "no")) } }
                dt { "Runs as" } dd { (runs_as(&doc)) }
                dt { "Capabilities" } dd { code { (capabilities(&doc)) } }
                dt { "Buffered batches" } dd { (v["bufferedBatches"].as_i64().unwrap_or(0)) }
                dt { "Last heartbeat" } dd { (c::time(doc.last_heartbeat)) " from " (doc.last_ip) }
                dt { "Backup collector" } dd { @if doc.backup_agent_id != 0 { a href={"/ui/collectors/" (doc.backup_agent_id)} { "#" (doc.backup_agent_id) } } @else { "none" } }
                dt { "Devices monitored" } dd { (f.monitoring) }
            }
            h2 { "Failover" }
            @if f.taken_over.is_empty() && f.moved_away.is_empty() {
                p { (c::badge(Tone::Good, "none")) " Every device is monitored by its own collector." }
            }
            @if !f.moved_away.is_empty() {
                (c::table("moved-away", "Devices of this collector monitored elsewhere (currentCollectorId ≠ preferred)", &["Device", "Monitored now by"], html! {
                    @for (d, name, now_by) in &f.moved_away {
                        tr { th scope="row" { a href={"/ui/devices/" (d)} { (name) } } td { @if *now_by == 0 { "nobody" } @else { "#" (now_by) } } }
                    }
                }))
            }
            @if !f.taken_over.is_empty() {
                (c::table("taken-over", "Devices taken over from other collectors", &["Device", "Preferred collector"], html! {
                    @for (d, name, pref) in &f.taken_over {
                        tr { th scope="row" { a href={"/ui/devices/" (d)} { (name) } } td { "#" (pref) } }
                    }
                }))
            }
            h2 { "Privilege report" }
            @if report.is_empty() { p { "The collector has not reported yet (it reports at registration and with every heartbeat)." } }
            @else { pre { code { (report) } } }
        };
        let title = format!("Collector #{id} {}", doc.description);
        Ok(ui.page(title.trim(), body))
    }
    .await;
    ui.respond(r)
}

async fn form(ui: &Ui, f: &FormData, error: Option<&str>) -> Result<Markup, ApiError> {
    let state = ui.state();
    let groups: Vec<CollectorGroupDoc> =
        objects::list(state.portal.store.as_ref(), ObjectQuery::default()).await?;
    let reader = ui.reader();
    let mut group_opts = Vec::new();
    if col::require(&reader, 0, Level::Write).is_ok() {
        group_opts.push(("0".to_string(), "(no group)".to_string()));
    }
    for g in groups
        .iter()
        .filter(|g| col::require(&reader, g.id, Level::Write).is_ok())
    {
        group_opts.push((g.id.to_string(), g.name.clone()));
    }
    let mut backups = vec![("0".to_string(), "None".to_string())];
    for c in data::visible_collectors(ui).await? {
        backups.push((c.id.to_string(), format!("#{} {}", c.id, c.description)));
    }
    Ok(html! {
        (c::form_error(error))
        form method="post" action="/ui/collectors/new" id="collector-form" {
            (ui.csrf())
            (c::input("c-description", "description", "Description", f.get("description"), Field { hint: "Where it runs and what it watches", ..Default::default() }))
            (c::select("c-group", "group", "Collector group", &group_opts, f.get("group"), ""))
            (c::select("c-backup", "backup", "Backup collector", &backups, f.get("backup"), "Takes over this collector's devices when it is down"))
            button type="submit" id="create-collector" { "Create collector" }
        }
    })
}

/// `GET /ui/collectors/new`.
pub(crate) async fn new_form(ui: Ui) -> Response {
    let r = async {
        let body = form(&ui, &FormData::default(), None).await?;
        Ok(ui.page_with(
            "Add a collector",
            body,
            PageOpts {
                narrow: true,
                ..Default::default()
            },
        ))
    }
    .await;
    ui.respond(r)
}

/// `POST /ui/collectors/new`: `POST /santaba/rest/setting/collector/collectors`; the answer
/// shows the registration secret once.
pub(crate) async fn create(ui: Ui, f: FormData) -> Response {
    let group: i64 = f.get("group").parse().unwrap_or(0);
    let backup: i64 = f.get("backup").parse().unwrap_or(0);
    let body = json!({"description": f.get("description"), "collectorGroupId": group, "backupAgentId": backup});
    let state = ui.state.clone();
    let r = ui
        .act(
            "POST",
            "/santaba/rest/setting/collector/collectors",
            |caller| api::create(State(state), caller, Bytes::from(body.to_string())),
        )
        .await;
    match r {
        Ok(v) => {
            let v = v.0;
            let id = v["id"].as_i64().unwrap_or(0);
            let secret = v["registrationSecret"].as_str().unwrap_or_default();
            let body = html! {
                p.notice role="status" { "Collector #" (id) " created." }
                div.secret-box {
                    h2 { "Registration secret" }
                    p { strong { "Shown once." } " It is single use and valid for 24 hours; the portal keeps only a keyed hash of it." }
                    p { code.secret id="registration-secret" data-copy data-copy-label="registration secret" { (secret) } }
                }
                h2 { "Register the collector" }
                p { "On the collector's host, save the secret in a file readable only by the collector's user (never as a command-line argument), then:" }
                pre { code { "palisade-collector register --portal <this portal's URL> --secret-file /path/to/secret --state-dir /var/lib/palisade-collector\npalisade-collector run --state-dir /var/lib/palisade-collector" } }
                p { "The collector refuses to run as root; its privilege report appears on " a href={"/ui/collectors/" (id)} { "its page" } " after registration." }
            };
            ui.page("Collector created", body)
        }
        Err(e) => match form(&ui, &f, Some(&super::error::message(&e))).await {
            Ok(markup) => ui.form_error(e, |_| markup, "Add a collector"),
            Err(e2) => ui.respond(Err(e2)),
        },
    }
}
