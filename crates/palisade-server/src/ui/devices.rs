//! Devices: the group tree with a filtered device list, a device's page (properties with
//! credentials masked, datasources and instances, graphs over selectable ranges, its alerts
//! and downtime), setting and removing properties, deleting a device. Adding a device is in
//! [`super::device_new`], groups in [`super::groups`].
//!
//! Reads and changes call the REST handlers of `/device/devices` and `/device/groups`, so a
//! page shows and does exactly what the API allows this user, and credentials come back
//! masked (`********`) from the same rendering the API uses.

use super::components::{self as c, Field, FormData, Query, Tone};
use super::ctx::Ui;
use super::data;
use super::graph::{self, Graph, Series};
use crate::error::ApiError;
use crate::monitor::alerts;
use crate::monitor::devices::may;
use crate::monitor::estate::{Estate, ROOT_GROUP};
use crate::monitor::sdt::{self, Scope};
use crate::routes::{data as data_routes, devices as api};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use palisade_core::property::{is_credential, MASK};
use palisade_tsdb::{Aggregation, Selector};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

const PAGE: usize = 100;

/// Graph ranges: (parameter, label, span, step).
pub const RANGES: [(&str, &str, i64, i64); 5] = [
    ("1h", "1 hour", 3_600_000, 60_000),
    ("6h", "6 hours", 6 * 3_600_000, 120_000),
    ("24h", "24 hours", 86_400_000, 300_000),
    ("7d", "7 days", 7 * 86_400_000, 3_600_000),
    ("30d", "30 days", 30 * 86_400_000, 3 * 3_600_000),
];

/// At most this many instance graphs per datasource.
const MAX_GRAPHS: usize = 12;

fn done_message(code: &str) -> Option<&'static str> {
    match code {
        "created" => Some("Device added."),
        "property" => Some("Property saved."),
        "removed" => Some("Property removed."),
        "deleted" => Some("Device deleted."),
        "group" => Some("Group created."),
        _ => None,
    }
}

// ---------------------------------------------------------------- list and tree

/// `GET /ui/devices`: the group tree and the devices, filtered.
pub(crate) async fn list(ui: Ui, q: Query) -> Response {
    let r = list_page(&ui, &q).await;
    ui.respond(r)
}

fn tree(ui: &Ui, estate: &Estate, counts: &HashMap<i64, usize>, selected: Option<i64>) -> Markup {
    let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for n in estate.groups.values() {
        if n.doc.id != ROOT_GROUP {
            children.entry(n.doc.parent_id).or_default().push(n.doc.id);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|id| {
            estate
                .groups
                .get(id)
                .map(|n| n.doc.name.to_lowercase())
                .unwrap_or_default()
        });
    }
    // Shown: readable groups and the path down to them.
    let mut shown = std::collections::HashSet::new();
    for n in estate.groups.values() {
        if data::group_visible(ui, estate, n.doc.id) {
            shown.insert(n.doc.id);
            shown.extend(n.ancestors.iter().copied());
        }
    }
    struct Tree<'a> {
        ui: &'a Ui,
        estate: &'a Estate,
        children: BTreeMap<i64, Vec<i64>>,
        shown: std::collections::HashSet<i64>,
        counts: &'a HashMap<i64, usize>,
        selected: Option<i64>,
    }
    impl Tree<'_> {
        fn node(&self, id: i64, depth: usize) -> Markup {
            let Some(n) = self.estate.groups.get(&id) else {
                return html! {};
            };
            let name = if id == ROOT_GROUP {
                "All groups".to_string()
            } else {
                n.doc.name.clone()
            };
            let visible = data::group_visible(self.ui, self.estate, id);
            let kids: Vec<i64> = self
                .children
                .get(&id)
                .map(|k| {
                    k.iter()
                        .copied()
                        .filter(|k| self.shown.contains(k))
                        .collect()
                })
                .unwrap_or_default();
            html! {
                li {
                    @if visible {
                        a href={"/ui/devices?group=" (id)} aria-current=[(self.selected == Some(id)).then_some("true")] { (name) }
                        " " span.muted { "(" (self.counts.get(&id).copied().unwrap_or(0)) ")" }
                        @if n.applies_to.is_some() { " " span.muted { "dynamic" } }
                        " " a.muted href={"/ui/groups/" (id)} aria-label={"Details of group " (name)} { "details" }
                    } @else {
                        span.muted { (name) }
                    }
                    @if !kids.is_empty() && depth < 32 {
                        ul { @for k in &kids { (self.node(*k, depth + 1)) } }
                    }
                }
            }
        }
    }
    let t = Tree {
        ui,
        estate,
        children,
        shown,
        counts,
        selected,
    };
    html! {
        nav aria-label="Device groups" {
            ul.tree { (t.node(ROOT_GROUP, 0)) }
        }
    }
}

async fn list_page(ui: &Ui, q: &Query) -> Result<Response, ApiError> {
    let state = ui.state();
    let estate = state.estate.get(&state.portal).await?;
    let devices = data::visible_devices(ui, &estate);
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for d in &devices {
        for g in &d.all_groups {
            *counts.entry(*g).or_default() += 1;
        }
    }
    let active = alerts::list_alerts(state, &ui.reader(), None).await?;
    let mut alerting: HashMap<i64, (usize, i64)> = HashMap::new();
    for a in &active {
        let e = alerting
            .entry(a["monitorObjectId"].as_i64().unwrap_or(0))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 = e.1.max(a["severity"].as_i64().unwrap_or(0));
    }
    let recent = data::devices_with_recent_data(state).await.ok();
    let text = q.get("q").to_lowercase();
    let group = q.num("group").filter(|g| estate.groups.contains_key(g));
    let health = q.get("health");
    let mut rows: Vec<_> = devices
        .iter()
        .filter(|d| group.is_none_or(|g| d.all_groups.contains(&g)))
        .filter(|d| {
            text.is_empty()
                || d.doc.display_name.to_lowercase().contains(&text)
                || d.doc.name.to_lowercase().contains(&text)
                || d.properties
                    .values()
                    .any(|p| !p.sealed && p.value.to_lowercase().contains(&text))
        })
        .filter(|d| match health {
            "alerting" => alerting.contains_key(&d.doc.id),
            "nodata" => recent
                .as_ref()
                .is_some_and(|r| !r.contains(&d.doc.display_name.to_lowercase())),
            _ => true,
        })
        .collect();
    rows.sort_by_key(|d| d.doc.display_name.to_lowercase());
    let total = rows.len();
    let offset = q
        .num("offset")
        .and_then(|o| usize::try_from(o).ok())
        .unwrap_or(0)
        .min(total);
    let group_opts: Vec<(String, String)> = std::iter::once((String::new(), "Any group".into()))
        .chain(
            estate
                .groups
                .values()
                .filter(|n| n.doc.id != ROOT_GROUP && data::group_visible(ui, &estate, n.doc.id))
                .map(|n| (n.doc.id.to_string(), n.full_path.clone())),
        )
        .collect();
    let health_opts = [
        ("", "Any"),
        ("alerting", "With active alerts"),
        ("nodata", "No data in 15 minutes"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    let can_add = ui.can_hosts(Level::Manage);
    let group_param = group.map(|g| g.to_string()).unwrap_or_default();
    let body = html! {
        (c::notice(done_message(q.get("done"))))
        @if can_add {
            div.actions {
                a.button href="/ui/devices/new" id="add-device" { "Add device" }
                a.button.secondary href="/ui/groups/new" id="add-group" { "Add group" }
            }
        }
        div.split {
            div.card { h2 { "Groups" } (tree(ui, &estate, &counts, group)) }
            div {
                (c::filters("/ui/devices", "Filter devices", html! {
                    div { (c::input("f-q", "q", "Name or property contains", q.get("q"), Field { kind: "search", ..Default::default() })) }
                    div { (c::select("f-group", "group", "Group", &group_opts, &group_param, "")) }
                    div { (c::select("f-health", "health", "Health", &health_opts, health, "")) }
                }))
                (c::table("devices", "Devices", &["Name", "Host", "Groups", "Collector", "Alerts", "Data"], html! {
                    @for d in rows.iter().skip(offset).take(PAGE) {
                        tr {
                            th scope="row" { a href={"/ui/devices/" (d.doc.id)} { (d.doc.display_name) } }
                            td.wrap { (d.doc.name) }
                            td.wrap {
                                @for (i, g) in d.direct_groups().iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (estate.groups.get(g).map(|n| n.full_path.as_str()).unwrap_or(""))
                                }
                            }
                            td { (collector_cell(d.collector_id, d.assigned_collector_id)) }
                            td {
                                @match alerting.get(&d.doc.id) {
                                    Some((n, sev)) => { (c::severity(*sev)) " " (n) }
                                    None => { (c::badge(Tone::Good, "none")) }
                                }
                            }
                            td {
                                @match &recent {
                                    Some(r) if r.contains(&d.doc.display_name.to_lowercase()) => { (c::badge(Tone::Good, "receiving")) }
                                    Some(_) => { (c::badge(Tone::Warn, "no data")) }
                                    None => { span.muted { "unknown" } }
                                }
                            }
                        }
                    }
                }))
                @if rows.is_empty() { p { "No device matches." } }
                (c::pager("/ui/devices", q, offset, PAGE, total))
            }
        }
    };
    Ok(ui.page("Devices", body))
}

fn collector_cell(current: i64, assigned: i64) -> Markup {
    html! {
        @if current == 0 && assigned == 0 { span.muted { "none" } }
        @else if current == assigned { a href={"/ui/collectors/" (current)} { "#" (current) } }
        @else {
            a href={"/ui/collectors/" (current)} { "#" (current) }
            " " (c::badge(Tone::Warn, &format!("failover from #{assigned}")))
        }
    }
}

// ---------------------------------------------------------------- one device

/// `GET /ui/devices/{id}`.
pub(crate) async fn show(ui: Ui, Path(raw): Path<String>, q: Query) -> Response {
    let r = show_page(&ui, &raw, &q).await;
    ui.respond(r)
}

pub(crate) fn items(
    v: Result<axum::Json<palisade_api::ListEnvelope>, ApiError>,
) -> Result<Vec<Value>, ApiError> {
    Ok(v?.0.items)
}

async fn show_page(ui: &Ui, raw: &str, q: &Query) -> Result<Response, ApiError> {
    let state = ui.state.clone();
    let reader = ui.reader();
    let device = api::get_device(
        State(state.clone()),
        reader.clone(),
        Path(raw.to_string()),
        RawQuery(None),
    )
    .await?
    .0;
    let id = device["id"].as_i64().unwrap_or(0);
    let display = device["displayName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let props = items(
        api::list_device_properties(
            State(state.clone()),
            reader.clone(),
            Path(raw.to_string()),
            RawQuery(Some("size=1000".into())),
        )
        .await,
    )?;
    let hds = items(
        data_routes::device_datasources(
            State(state.clone()),
            reader.clone(),
            Path(raw.to_string()),
            RawQuery(Some("size=1000".into())),
        )
        .await,
    )?;
    let estate = state.estate.get(&state.portal).await?;
    let view = estate.devices.get(&id);
    let groups: Vec<i64> = view
        .map(|v| v.all_groups.iter().copied().collect())
        .unwrap_or_default();
    let can_write = may(&reader, groups.iter().copied(), Level::Write);
    let can_manage = may(&reader, groups.iter().copied(), Level::Manage);

    let range = RANGES
        .iter()
        .find(|r| r.0 == q.get("range"))
        .copied()
        .unwrap_or(RANGES[0]);
    let selected_hds = q
        .num("ds")
        .filter(|d| hds.iter().any(|h| h["id"].as_i64() == Some(*d)))
        .or_else(|| hds.first().and_then(|h| h["id"].as_i64()));
    let graphs = match selected_hds {
        Some(h) => {
            let ds = hds
                .iter()
                .find(|x| x["id"].as_i64() == Some(h))
                .and_then(|x| x["dataSourceName"].as_str())
                .unwrap_or_default()
                .to_string();
            let instances = items(
                data_routes::instances(
                    State(state.clone()),
                    reader.clone(),
                    Path((raw.to_string(), h.to_string())),
                    RawQuery(Some("size=1000".into())),
                )
                .await,
            )?;
            graphs_of(ui, &display, &ds, &instances, range).await
        }
        None => html! { p { "No datasource has collected data for this device yet." } },
    };
    let active: Vec<Value> = alerts::list_alerts(&state, &reader, None)
        .await?
        .into_iter()
        .filter(|a| a["monitorObjectId"].as_i64() == Some(id))
        .collect();
    let sdts = sdt::list(&state, &reader, Scope::Device(id)).await?;
    let base = format!("/ui/devices/{id}");
    let body = html! {
        (c::notice(done_message(q.get("done"))))
        dl.facts {
            dt { "Host" } dd { (device["name"].as_str().unwrap_or_default()) }
            dt { "Groups" } dd { @for p in device["groupPaths"].as_array().into_iter().flatten() { (p.as_str().unwrap_or_default()) " " } }
            dt { "Collector" } dd { (collector_cell(device["currentCollectorId"].as_i64().unwrap_or(0), view.map(|v| v.assigned_collector_id).unwrap_or(0))) }
            dt { "Description" } dd { (device["description"].as_str().unwrap_or_default()) }
            dt { "Alerting" } dd { @if device["disableAlerting"].as_bool().unwrap_or(false) { "disabled" } @else { "enabled" } }
        }
        div.actions {
            @if can_write { a.button.secondary href={"/ui/sdts/new?device=" (id)} id="schedule-sdt" { "Schedule downtime" } }
            @if can_manage {
                form method="post" action={(base) "/delete"} data-confirm={"Delete device " (display) "? Its datasource instances go with it."} {
                    (ui.csrf())
                    button.danger type="submit" id="delete-device" { "Delete device" }
                }
            }
        }
        section aria-labelledby="graphs-h" {
            h2 id="graphs-h" { "Graphs" }
            ul.tabs aria-label="Range" {
                @for r in RANGES {
                    li { a href={(base) "?" (q.with("range", r.0))} aria-current=[(r.0 == range.0).then_some("true")] { (r.1) } }
                }
            }
            @if hds.len() > 1 {
                ul.tabs aria-label="Datasource" {
                    @for h in &hds {
                        @let hid = h["id"].as_i64().unwrap_or(0);
                        li { a href={(base) "?" (q.with("ds", &hid.to_string()))} aria-current=[(Some(hid) == selected_hds).then_some("true")] { (h["dataSourceName"].as_str().unwrap_or_default()) } }
                    }
                }
            }
            div id="graph-area" { (graphs) }
        }
        section aria-labelledby="alerts-h" {
            h2 id="alerts-h" { "Active alerts" }
            @if active.is_empty() { p { (c::badge(Tone::Good, "No active alerts")) } }
            @else { (super::alerts::table(&active, "device-alerts", "Active alerts of this device")) }
        }
        section aria-labelledby="ds-h" {
            h2 id="ds-h" { "Datasources" }
            (c::table("datasources", "Datasources and instances", &["Datasource", "Instances", "Collection"], html! {
                @for h in &hds {
                    tr {
                        th scope="row" { a href={(base) "?" (q.with("ds", &h["id"].as_i64().unwrap_or(0).to_string()))} { (h["dataSourceName"].as_str().unwrap_or_default()) } }
                        td.num { (h["instanceNumber"].as_i64().unwrap_or(0)) }
                        td { (collection(h)) }
                    }
                }
            }))
        }
        section aria-labelledby="props-h" {
            h2 id="props-h" { "Properties" }
            p.muted { "Credentials (names like snmp.community, snmp.authToken, *.pass, *.key) are sealed at rest and always shown as " code { (MASK) } "." }
            (c::table("properties", "Properties", &["Name", "Value", "Source", "Actions"], html! {
                @for p in &props {
                    @let name = p["name"].as_str().unwrap_or_default();
                    @let value = p["value"].as_str().unwrap_or_default();
                    @let ty = p["type"].as_str().unwrap_or_default();
                    tr {
                        th scope="row" { code { (name) } }
                        td.wrap {
                            @if value == MASK || is_credential(name) { code { (MASK) } " " span.muted { "(credential)" } }
                            @else { (value) }
                        }
                        td {
                            @match ty {
                                "custom" => "this device",
                                "system" => "system",
                                _ => {
                                    @let g = p["inheritList"][0]["id"].as_i64().unwrap_or(0);
                                    "group " a href={"/ui/groups/" (g)} { (estate.groups.get(&g).map(|n| n.full_path.clone()).unwrap_or_default()) }
                                }
                            }
                        }
                        td {
                            @if can_write && ty == "custom" {
                                form method="post" action={(base) "/properties"} {
                                    (ui.csrf())
                                    input type="hidden" name="name" value=(name);
                                    input type="hidden" name="action" value="delete";
                                    button.small.secondary type="submit" aria-label={"Remove property " (name)} { "Remove" }
                                }
                            }
                        }
                    }
                }
            }))
            @if can_write { (property_form(ui, id, None, "", "")) }
        }
        section aria-labelledby="sdts-h" {
            h2 id="sdts-h" { "Downtime" }
            @if sdts.is_empty() { p { "No downtime scheduled on this device." } }
            @else { (super::sdts::table(ui, &sdts, false)) }
        }
    };
    Ok(ui.page(&display, body))
}

fn collection(h: &Value) -> Markup {
    let status = h["collectionStatus"].as_str().unwrap_or("ok");
    let msg = h["collectionMessage"].as_str().unwrap_or_default();
    let lacks = h["collectionLacks"].as_str().unwrap_or_default();
    html! {
        @match status {
            "ok" => (c::badge(Tone::Good, "ok")),
            "denied" => { (c::badge(Tone::Bad, "denied")) @if !lacks.is_empty() { " lacks " code { (lacks) } } }
            other => (c::badge(Tone::Warn, other)),
        }
        @if !msg.is_empty() { " " span.muted { (msg) } }
    }
}

fn property_form(ui: &Ui, id: i64, error: Option<&str>, name: &str, value: &str) -> Markup {
    html! {
        form method="post" action={"/ui/devices/" (id) "/properties"} id="property-form" {
            h3 { "Set a property" }
            (c::form_error(error))
            (ui.csrf())
            input type="hidden" name="action" value="set";
            div.rows {
                div { (c::input("prop-name", "name", "Name", name, Field { required: true, hint: "Letters, digits, . _ -", ..Default::default() })) }
                div { (c::input("prop-value", "value", "Value", value, Field { required: true, hint: "Credentials are sealed and never shown again", ..Default::default() })) }
            }
            button type="submit" id="set-property" { "Save property" }
        }
    }
}

async fn graphs_of(
    ui: &Ui,
    device: &str,
    datasource: &str,
    instances: &[Value],
    range: (&str, &str, i64, i64),
) -> Markup {
    let state = ui.state();
    let tsdb = match state.tsdb() {
        Ok(t) => t,
        Err(e) => return html! { p.muted { "Graphs unavailable: " (super::error::message(&e)) } },
    };
    let end = state.portal.now();
    let start = end - range.2;
    let step = range.3;
    let selector = Selector::all()
        .eq("device", device)
        .eq("datasource", datasource);
    let series = match tsdb
        .query_range(&selector, start, end, step, Aggregation::Avg)
        .await
    {
        Ok(s) => s,
        Err(e) => return html! { p.error { "Graphs unavailable: " (e.to_string()) } },
    };
    // instance → datapoint → points
    let mut by_instance: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for (key, samples) in series {
        let inst = key.label("instance").unwrap_or_default().to_string();
        let dp = key.label("datapoint").unwrap_or_default().to_string();
        by_instance.entry(inst).or_default().push(Series {
            label: dp,
            points: samples.iter().map(|s| (s.ts_ms, s.value)).collect(),
        });
    }
    let mut names: Vec<(String, String)> = instances
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_string(),
                i["displayName"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for k in by_instance.keys() {
        if !names.iter().any(|(n, _)| n == k) {
            names.push((k.clone(), k.clone()));
        }
    }
    let more = names.len().saturating_sub(MAX_GRAPHS);
    html! {
        p.muted { (datasource) " over the last " (range.1) " (average per " (step / 60_000) " min)." }
        div.graphs {
            @for (i, (name, label)) in names.iter().take(MAX_GRAPHS).enumerate() {
                @let empty = Vec::new();
                @let s = by_instance.get(name).unwrap_or(&empty);
                @let title = format!("{datasource} · {}", if label.is_empty() { name } else { label });
                (graph::render(&Graph { id: &format!("graph-{i}"), title: &title, start_ms: start, end_ms: end, step_ms: step, series: s }))
            }
        }
        @if names.is_empty() { p { "No instances yet." } }
        @if more > 0 { p.muted { (more) " more instances are not graphed here." } }
    }
}

// ---------------------------------------------------------------- changes

/// `POST /ui/devices/{id}/properties`: set (`action=set`) or remove (`action=delete`).
pub(crate) async fn set_property(ui: Ui, Path(raw): Path<String>, form: FormData) -> Response {
    let id = match crate::routes::id(&raw, "device") {
        Ok(i) => i,
        Err(e) => return ui.respond(Err(e)),
    };
    let state = ui.state.clone();
    let name = form.get("name").to_string();
    if form.get("action") == "delete" {
        let path = format!("/santaba/rest/device/devices/{id}/properties/{name}");
        let r = ui
            .act("DELETE", &path, |caller| {
                api::delete_device_property(State(state), caller, Path((raw, name)))
            })
            .await;
        return match r {
            Ok(_) => ui.see_other(&format!("/ui/devices/{id}?done=removed")),
            Err(e) => ui.respond(Err(e)),
        };
    }
    let value = form.raw("value").to_string();
    let exists = match state.estate.get(&state.portal).await {
        Ok(e) => e.devices.get(&id).is_some_and(|v| {
            v.doc
                .properties
                .iter()
                .any(|p| p.name.eq_ignore_ascii_case(&name))
        }),
        Err(e) => return ui.respond(Err(e)),
    };
    let body = Bytes::from(json!({"name": name, "value": value}).to_string());
    let r = if exists {
        let path = format!("/santaba/rest/device/devices/{id}/properties/{name}");
        let n = name.clone();
        ui.act("PUT", &path, |caller| {
            api::update_device_property(State(state), caller, Path((raw, n)), body)
        })
        .await
    } else {
        let path = format!("/santaba/rest/device/devices/{id}/properties");
        ui.act("POST", &path, |caller| {
            api::add_device_property(State(state), caller, Path(raw), body)
        })
        .await
    };
    match r {
        Ok(_) => ui.see_other(&format!("/ui/devices/{id}?done=property")),
        Err(e) => {
            // Never echo a credential back into the page.
            let shown = if is_credential(&name) {
                ""
            } else {
                value.as_str()
            };
            ui.form_error(
                e,
                |msg| {
                    html! {
                        p { a href={"/ui/devices/" (id)} { "Back to the device" } }
                        (property_form(&ui, id, Some(msg), &name, shown))
                    }
                },
                "Set a property",
            )
        }
    }
}

/// `POST /ui/devices/{id}/delete`.
pub(crate) async fn delete(ui: Ui, Path(raw): Path<String>, _form: FormData) -> Response {
    let state = ui.state.clone();
    let path = format!("/santaba/rest/device/devices/{raw}");
    let r = ui
        .act("DELETE", &path, |caller| {
            api::delete_device(State(state), caller, Path(raw))
        })
        .await;
    match r {
        Ok(_) => ui.see_other("/ui/devices?done=deleted"),
        Err(e) => ui.respond(Err(e)),
    }
}
