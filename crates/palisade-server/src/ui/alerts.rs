//! Alerts: the list with filters (active, cleared or all; severity; acknowledged; text), an
//! alert's page with its notes, acknowledging with a required comment, and adding notes.
//! Reads and changes are those of `/alert/alerts` ([`crate::monitor::alerts`]).

use super::components::{self as c, Field, FormData, Query, Tone};
use super::ctx::Ui;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::alerts;
use crate::monitor::devices::may;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use serde_json::{json, Value};

const PAGE: usize = 100;

fn done_message(code: &str) -> Option<&'static str> {
    match code {
        "acked" => Some("Alert acknowledged."),
        "noted" => Some("Note added."),
        _ => None,
    }
}

/// A table of alerts (also used on a device's page).
pub(crate) fn table(list: &[Value], id: &str, caption: &str) -> Markup {
    c::table(
        id,
        caption,
        &[
            "Severity", "Alert", "Device", "What", "Value", "Started", "State",
        ],
        html! {
            @for a in list {
                @let aid = a["id"].as_str().unwrap_or_default();
                tr {
                    td { (c::severity(a["severity"].as_i64().unwrap_or(0))) }
                    th scope="row" { a href={"/ui/alerts/" (aid)} { (aid) } }
                    td { a href={"/ui/devices/" (a["monitorObjectId"].as_i64().unwrap_or(0))} { (a["monitorObjectName"].as_str().unwrap_or_default()) } }
                    td.wrap {
                        (a["resourceTemplateName"].as_str().unwrap_or_default()) " · "
                        (a["instanceName"].as_str().unwrap_or_default()) " · "
                        (a["dataPointName"].as_str().unwrap_or_default())
                    }
                    td { (a["alertValue"].as_str().unwrap_or_default()) " " span.muted { (a["threshold"].as_str().unwrap_or_default()) } }
                    td { (c::time(a["startEpoch"].as_i64().map(|s| s * 1000))) }
                    td { (state_badges(a)) }
                }
            }
        },
    )
}

fn state_badges(a: &Value) -> Markup {
    html! {
        @if a["cleared"].as_bool().unwrap_or(false) { (c::badge(Tone::Good, "Cleared")) }
        @else { (c::badge(Tone::Bad, "Active")) }
        @if a["acked"].as_bool().unwrap_or(false) { " " (c::badge(Tone::Neutral, &format!("Acked by {}", a["ackedBy"].as_str().unwrap_or_default()))) }
        @if a["sdted"].as_bool().unwrap_or(false) { " " (c::badge(Tone::Warn, "In downtime")) }
    }
}

/// `GET /ui/alerts`.
pub(crate) async fn list(ui: Ui, q: Query) -> Response {
    let r = list_page(&ui, &q).await;
    ui.respond(r)
}

async fn list_page(ui: &Ui, q: &Query) -> Result<Response, ApiError> {
    let status = match q.get("status") {
        "cleared" | "all" => q.get("status"),
        _ => "active",
    };
    let filter = match status {
        "cleared" => Some("cleared:true"),
        "all" => Some("cleared:*"),
        _ => None,
    };
    let all = alerts::list_alerts(ui.state(), &ui.reader(), filter).await?;
    let sev = match q.get("severity") {
        "critical" => Some(4),
        "error" => Some(3),
        "warning" => Some(2),
        _ => None,
    };
    let acked = q.get("acked");
    let text = q.get("q").to_lowercase();
    let rows: Vec<Value> = all
        .into_iter()
        .filter(|a| sev.is_none_or(|s| a["severity"].as_i64() == Some(s)))
        .filter(|a| match acked {
            "yes" => a["acked"].as_bool().unwrap_or(false),
            "no" => !a["acked"].as_bool().unwrap_or(false),
            _ => true,
        })
        .filter(|a| {
            text.is_empty()
                || [
                    "monitorObjectName",
                    "resourceTemplateName",
                    "instanceName",
                    "dataPointName",
                    "id",
                ]
                .iter()
                .any(|k| {
                    a[*k]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(&text))
                })
        })
        .collect();
    let total = rows.len();
    let offset = q
        .num("offset")
        .and_then(|o| usize::try_from(o).ok())
        .unwrap_or(0)
        .min(total);
    let page: Vec<Value> = rows.into_iter().skip(offset).take(PAGE).collect();
    let o = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    let body = html! {
        (c::filters("/ui/alerts", "Filter alerts", html! {
            div { (c::select("f-status", "status", "Status", &o(&[("active", "Active"), ("cleared", "Cleared"), ("all", "All")]), status, "")) }
            div { (c::select("f-severity", "severity", "Severity", &o(&[("", "Any"), ("critical", "Critical"), ("error", "Error"), ("warning", "Warning")]), q.get("severity"), "")) }
            div { (c::select("f-acked", "acked", "Acknowledged", &o(&[("", "Any"), ("no", "Not acknowledged"), ("yes", "Acknowledged")]), acked, "")) }
            div { (c::input("f-q", "q", "Device, datasource or datapoint contains", q.get("q"), Field { kind: "search", ..Default::default() })) }
        }))
        (table(&page, "alerts", &format!("{} alerts ({status})", total)))
        @if total == 0 { p id="no-alerts" { "No alert matches." } }
        (c::pager("/ui/alerts", q, offset, PAGE, total))
    };
    Ok(ui.page_with(
        "Alerts",
        body,
        PageOpts {
            refresh_secs: ui.wall.then_some(60),
            ..Default::default()
        },
    ))
}

/// `GET /ui/alerts/{id}`.
pub(crate) async fn show(ui: Ui, Path(raw): Path<String>, q: Query) -> Response {
    let r = async {
        let a = alerts::get_alert(ui.state(), &ui.reader(), &raw).await?;
        Ok(alert_page(&ui, &a, done_message(q.get("done")), None, StatusCode::OK).await)
    }
    .await;
    ui.respond(r)
}

async fn can_ack(ui: &Ui, a: &Value) -> bool {
    let state = ui.state();
    let Ok(estate) = state.estate.get(&state.portal).await else {
        return false;
    };
    let dev = a["monitorObjectId"].as_i64().unwrap_or(0);
    estate
        .devices
        .get(&dev)
        .is_some_and(|v| may(&ui.reader(), v.all_groups.iter().copied(), Level::Ack))
}

async fn alert_page(
    ui: &Ui,
    a: &Value,
    notice: Option<&str>,
    error: Option<(&str, &str)>,
    status: StatusCode,
) -> Response {
    let id = a["id"].as_str().unwrap_or_default();
    let active = !a["cleared"].as_bool().unwrap_or(false);
    let may_ack = can_ack(ui, a).await;
    let err = |form: &str| error.filter(|e| e.0 == form).map(|e| e.1);
    let body = html! {
        (c::notice(notice))
        p { (c::severity(a["severity"].as_i64().unwrap_or(0))) " " (state_badges(a)) }
        dl.facts id="alert-facts" {
            dt { "Device" } dd { a href={"/ui/devices/" (a["monitorObjectId"].as_i64().unwrap_or(0))} { (a["monitorObjectName"].as_str().unwrap_or_default()) } }
            dt { "Groups" } dd { (a["monitorObjectGroups"].as_str().unwrap_or_default()) }
            dt { "Datasource" } dd { (a["resourceTemplateName"].as_str().unwrap_or_default()) }
            dt { "Instance" } dd { (a["instanceName"].as_str().unwrap_or_default()) }
            dt { "Datapoint" } dd { (a["dataPointName"].as_str().unwrap_or_default()) }
            dt { "Type" } dd { (a["type"].as_str().unwrap_or_default()) }
            dt { "Value" } dd { (a["alertValue"].as_str().unwrap_or_default()) }
            dt { "Threshold" } dd { (a["threshold"].as_str().unwrap_or_default()) }
            dt { "Started" } dd { (c::time(a["startEpoch"].as_i64().map(|s| s * 1000))) }
            @if !active {
                dt { "Cleared" } dd { (c::time(a["endEpoch"].as_i64().map(|s| s * 1000))) " (value " (a["clearValue"].as_str().unwrap_or_default()) ")" }
            }
            @if a["acked"].as_bool().unwrap_or(false) {
                dt { "Acknowledged" } dd id="ack-info" { "by " (a["ackedBy"].as_str().unwrap_or_default()) ", " (c::time(a["ackedEpoch"].as_i64().map(|s| s * 1000))) ": " (a["ackComment"].as_str().unwrap_or_default()) }
            }
            @if let Some(rule) = a["rule"].as_str().filter(|r| !r.is_empty()) {
                dt { "Routed by" } dd { "rule " (rule) ", chain " (a["chain"].as_str().unwrap_or_default()) }
            }
        }
        @if may_ack && active && !a["acked"].as_bool().unwrap_or(false) {
            form.card method="post" action={"/ui/alerts/" (id) "/ack"} id="ack-form" {
                h2 { "Acknowledge" }
                (c::form_error(err("ack")))
                (ui.csrf())
                (c::textarea("ack-comment", "comment", "Comment", "", "Required: what is being done about it. Notifications stop until the alert escalates.", true))
                button type="submit" id="ack" { "Acknowledge" }
            }
        }
        h2 { "Notes" }
        @let notes = a["notes"].as_array().cloned().unwrap_or_default();
        @if notes.is_empty() { p { "No notes." } }
        ul id="notes" {
            @for n in &notes {
                li { strong { (n["by"].as_str().unwrap_or_default()) } ", " (c::time(n["epoch"].as_i64().map(|s| s * 1000))) ": " (n["comment"].as_str().unwrap_or_default()) }
            }
        }
        @if may_ack {
            form method="post" action={"/ui/alerts/" (id) "/note"} id="note-form" {
                (c::form_error(err("note")))
                (ui.csrf())
                (c::textarea("note-comment", "comment", "Add a note", "", "", true))
                button.secondary type="submit" id="add-note" { "Add note" }
            }
        }
        p { a href="/ui/alerts" { "All alerts" } }
    };
    ui.page_with(
        &format!("Alert {id}"),
        body,
        PageOpts {
            status,
            ..Default::default()
        },
    )
}

async fn change(ui: Ui, raw: String, form: FormData, which: &'static str) -> Response {
    let state = ui.state.clone();
    let body = json!({"ackComment": form.get("comment")});
    let path = format!("/santaba/rest/alert/alerts/{raw}/{which}");
    let r = {
        let raw = raw.clone();
        ui.act("POST", &path, |caller| async move {
            if which == "ack" {
                alerts::ack(&state, &caller, &raw, &body).await
            } else {
                alerts::note(&state, &caller, &raw, &body).await
            }
        })
        .await
    };
    match r {
        Ok(a) => {
            let code = if which == "ack" { "acked" } else { "noted" };
            ui.see_other(&format!(
                "/ui/alerts/{}?done={code}",
                a["id"].as_str().unwrap_or(&raw)
            ))
        }
        Err(e @ (ApiError::BadRequest(_) | ApiError::Forbidden(_) | ApiError::Conflict(_))) => {
            match alerts::get_alert(ui.state(), &ui.reader(), &raw).await {
                Ok(a) => {
                    let msg = super::error::message(&e);
                    alert_page(&ui, &a, None, Some((which, &msg)), e.status()).await
                }
                Err(e2) => ui.respond(Err(e2)),
            }
        }
        Err(e) => ui.respond(Err(e)),
    }
}

/// `POST /ui/alerts/{id}/ack`: `POST /santaba/rest/alert/alerts/{id}/ack`.
pub(crate) async fn ack(ui: Ui, Path(raw): Path<String>, form: FormData) -> Response {
    change(ui, raw, form, "ack").await
}

/// `POST /ui/alerts/{id}/note`: `POST /santaba/rest/alert/alerts/{id}/note`.
pub(crate) async fn note(ui: Ui, Path(raw): Path<String>, form: FormData) -> Response {
    change(ui, raw, form, "note").await
}
