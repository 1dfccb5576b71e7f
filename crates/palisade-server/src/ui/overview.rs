//! `/ui`: the overview: who is signed in, active alerts by severity, device health
//! (devices with active alerts, devices without recent data) and collectors that are down
//! or not compliant (running as root/administrator). In wall mode it reloads every minute.

use super::components::{self as c, Tone};
use super::ctx::Ui;
use super::data;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::alerts;
use crate::monitor::collectors as col;
use axum::response::Response;
use maud::{html, Markup};
use std::collections::BTreeMap;

/// `GET /ui`.
pub(crate) async fn page(ui: Ui) -> Response {
    let r = render(&ui).await;
    ui.respond(r)
}

async fn render(ui: &Ui) -> Result<Response, ApiError> {
    let state = ui.state();
    let user = &ui.session.user;
    let factors = crate::signin::enrol::confirmed(state, user).await?;
    let welcome = html! {
        (crate::signin::pages::banner(&ui.session.requirement))
        div.card id="welcome" {
            p { "Signed in as " strong { (user.username) } " (" (ui.session.session.record.auth_method) ")." }
            p { "Second factors: " (factors.len()) ". " a href="/account" { "Manage your account" } }
        }
    };
    let hosts = if ui.can_hosts(palisade_core::privilege::Level::Read) {
        hosts_section(ui).await?
    } else {
        html! {}
    };
    let collectors = if ui.can_collectors(palisade_core::privilege::Level::Read) {
        collectors_section(ui).await?
    } else {
        html! {}
    };
    let body = html! {
        (welcome)
        div.grid { (hosts) (collectors) }
    };
    Ok(ui.page_with(
        "Overview",
        body,
        PageOpts {
            refresh_secs: ui.wall.then_some(60),
            ..Default::default()
        },
    ))
}

async fn hosts_section(ui: &Ui) -> Result<Markup, ApiError> {
    let state = ui.state();
    let reader = ui.reader();
    let active = alerts::list_alerts(state, &reader, None).await?;
    let mut by_sev: BTreeMap<i64, usize> = BTreeMap::new();
    let mut unacked = 0;
    let mut alerting: BTreeMap<i64, (String, i64)> = BTreeMap::new();
    for a in &active {
        let sev = a["severity"].as_i64().unwrap_or(0);
        *by_sev.entry(sev).or_default() += 1;
        if !a["acked"].as_bool().unwrap_or(false) {
            unacked += 1;
        }
        let dev = a["monitorObjectId"].as_i64().unwrap_or(0);
        let name = a["monitorObjectName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let e = alerting.entry(dev).or_insert((name, 0));
        e.1 = e.1.max(sev);
    }
    let estate = state.estate.get(&state.portal).await?;
    let devices = data::visible_devices(ui, &estate);
    let recent = data::devices_with_recent_data(state).await;
    let silent: Vec<(i64, String)> = match &recent {
        Ok(set) => devices
            .iter()
            .filter(|d| !set.contains(&d.doc.display_name.to_lowercase()))
            .map(|d| (d.doc.id, d.doc.display_name.clone()))
            .collect(),
        Err(_) => Vec::new(),
    };
    Ok(html! {
        section.card aria-labelledby="alerts-h" id="alert-summary" {
            h2 id="alerts-h" { "Active alerts" }
            ul.stat {
                @for sev in [4, 3, 2] {
                    li {
                        a href={"/ui/alerts?severity=" (c::severity_name(sev))} id={"count-" (c::severity_name(sev))} {
                            span.n { (by_sev.get(&sev).copied().unwrap_or(0)) }
                            (c::severity(sev))
                        }
                    }
                }
            }
            p { (active.len()) " active, " (unacked) " not acknowledged. " a href="/ui/alerts" { "All alerts" } }
        }
        section.card aria-labelledby="health-h" id="device-health" {
            h2 id="health-h" { "Device health" }
            p { (plural(devices.len(), "device")) ". " a href="/ui/devices" { "All devices" } }
            h3 { "With active alerts (" (alerting.len()) ")" }
            @if alerting.is_empty() { p { (c::badge(Tone::Good, "None")) } }
            ul {
                @for (id, (name, sev)) in alerting.iter().take(12) {
                    li { a href={"/ui/devices/" (id)} { (name) } " " (c::severity(*sev)) }
                }
            }
            h3 { "No data in the last 15 minutes (" (silent.len()) ")" }
            @match &recent {
                Err(why) => p.muted { "Unknown: " (why) },
                Ok(_) => {
                    @if silent.is_empty() { p { (c::badge(Tone::Good, "Every device reports")) } }
                    ul {
                        @for (id, name) in silent.iter().take(12) {
                            li { a href={"/ui/devices/" (id)} { (name) } " " (c::badge(Tone::Warn, "no data")) }
                        }
                    }
                    @if silent.len() > 12 { p { a href="/ui/devices?health=nodata" { "All " (silent.len()) " devices without data" } } }
                }
            }
        }
    })
}

async fn collectors_section(ui: &Ui) -> Result<Markup, ApiError> {
    let state = ui.state();
    let list = data::visible_collectors(ui).await?;
    let estate = state.estate.get(&state.portal).await?;
    let now = state.portal.now();
    let mut down = Vec::new();
    let mut root = Vec::new();
    for c in &list {
        let code = col::status(c, now, estate.down_after_ms);
        let (text, bad) = data::collector_status(code);
        if bad {
            down.push((c.id, c.description.clone(), text));
        }
        if c.report.as_ref().is_some_and(|r| r.is_admin_account) {
            root.push((c.id, c.description.clone()));
        }
    }
    let failed_over = estate
        .devices
        .values()
        .filter(|d| d.assigned_collector_id != 0 && d.collector_id != d.assigned_collector_id)
        .count();
    Ok(html! {
        section.card aria-labelledby="collectors-h" id="collector-health" {
            h2 id="collectors-h" { "Collectors" }
            p { (plural(list.len(), "collector")) ". " a href="/ui/collectors" { "All collectors" } }
            h3 { "Down, suspended or not registered (" (down.len()) ")" }
            @if down.is_empty() { p { (c::badge(Tone::Good, "All up")) } }
            ul { @for (id, desc, text) in &down {
                li { a href={"/ui/collectors/" (id)} { "#" (id) " " (desc) } " " (c::badge(Tone::Bad, text)) }
            } }
            h3 { "Not compliant: running as root or administrator (" (root.len()) ")" }
            @if root.is_empty() { p { (c::badge(Tone::Good, "None")) } }
            ul { @for (id, desc) in &root {
                li { a href={"/ui/collectors/" (id)} { "#" (id) " " (desc) } " " (c::badge(Tone::Bad, "runs as root")) }
            } }
            @if failed_over > 0 {
                p { (c::badge(Tone::Warn, "failover")) " " (failed_over) " devices are monitored by another collector than their own." }
            }
        }
    })
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
