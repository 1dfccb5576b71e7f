//! Scheduled downtime: the list (what is in force now and what is coming), one-time downtime
//! for a device or a group, and deleting it. Reads and changes are those of `/sdt/sdts`
//! ([`crate::monitor::sdt`]); times are entered and shown in UTC.

use super::components::{self as c, Field, FormData, Query, Tone};
use super::ctx::Ui;
use super::data;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::devices::may;
use crate::monitor::estate::ROOT_GROUP;
use crate::monitor::sdt::{self, Scope};
use axum::extract::Path;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use serde_json::{json, Value};

fn done_message(code: &str) -> Option<&'static str> {
    match code {
        "created" => Some("Downtime scheduled."),
        "deleted" => Some("Downtime deleted."),
        _ => None,
    }
}

fn target(s: &Value) -> Markup {
    html! {
        @match s["type"].as_str().unwrap_or_default() {
            "ResourceSDT" | "DeviceDataSourceSDT" => {
                "device " a href={"/ui/devices/" (s["deviceId"].as_i64().unwrap_or(0))} { (s["deviceDisplayName"].as_str().unwrap_or_default()) }
                @if let Some(ds) = s["dataSourceName"].as_str().filter(|d| !d.is_empty()) { " · " (ds) }
            }
            "ResourceGroupSDT" => {
                "group " a href={"/ui/groups/" (s["deviceGroupId"].as_i64().unwrap_or(0))} { (s["deviceGroupFullPath"].as_str().unwrap_or_default()) }
                @if let Some(ds) = s["dataSourceName"].as_str().filter(|d| !d.is_empty()) { " · " (ds) }
            }
            "CollectorSDT" => {
                "collector " a href={"/ui/collectors/" (s["collectorId"].as_i64().unwrap_or(0))} { "#" (s["collectorId"].as_i64().unwrap_or(0)) }
            }
            other => (other),
        }
    }
}

/// A table of SDTs (also on a device's page).
pub(crate) fn table(ui: &Ui, list: &[Value], with_target: bool) -> Markup {
    let may_delete = ui.can_hosts(Level::Write) || ui.can_collectors(Level::Write);
    let mut headers = vec!["Downtime"];
    if with_target {
        headers.push("Target");
    }
    headers.extend([
        "Schedule",
        "Window (UTC)",
        "Now",
        "Comment",
        "By",
        "Actions",
    ]);
    c::table(
        "sdts",
        "Scheduled downtime",
        &headers,
        html! {
            @for s in list {
                @let id = s["id"].as_str().unwrap_or_default();
                tr {
                    th scope="row" { (id) }
                    @if with_target { td { (target(s)) } }
                    td { (s["sdtType"].as_str().unwrap_or_default()) @if let Some(tz) = s["timezone"].as_str() { " " span.muted { (tz) } } }
                    td { (c::time(s["startDateTime"].as_i64())) " – " (c::time(s["endDateTime"].as_i64())) }
                    td { @if s["isEffective"].as_bool().unwrap_or(false) { (c::badge(Tone::Warn, "In force")) } @else { (c::badge(Tone::Neutral, "Not now")) } }
                    td.wrap { (s["comment"].as_str().unwrap_or_default()) }
                    td { (s["admin"].as_str().unwrap_or_default()) }
                    td {
                        @if may_delete {
                            form method="post" action={"/ui/sdts/" (id) "/delete"} data-confirm={"Delete downtime " (id) "?"} {
                                (ui.csrf())
                                button.small.danger type="submit" aria-label={"Delete downtime " (id)} { "Delete" }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /ui/sdts`.
pub(crate) async fn list(ui: Ui, q: Query) -> Response {
    let r = async {
        let list = sdt::list(ui.state(), &ui.reader(), Scope::All).await?;
        let now_n = list
            .iter()
            .filter(|s| s["isEffective"].as_bool().unwrap_or(false))
            .count();
        let body = html! {
            (c::notice(done_message(q.get("done"))))
            @if ui.can_hosts(Level::Write) {
                div.actions { a.button href="/ui/sdts/new" id="add-sdt" { "Schedule downtime" } }
            }
            p { (list.len()) " scheduled, " (now_n) " in force now. Downtime holds notifications; alerts still open and clear." }
            (table(&ui, &list, true))
        };
        Ok(ui.page("Scheduled downtime", body))
    }
    .await;
    ui.respond(r)
}

/// `YYYY-MM-DDTHH:MM` (UTC) to epoch ms.
fn parse_local(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let day = crate::settings::parse_date_ms(date)?;
    let mut hm = time.split(':');
    let h: i64 = hm.next()?.parse().ok()?;
    let m: i64 = hm.next()?.parse().ok()?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Some(day + h * 3_600_000 + m * 60_000)
}

fn local_text(ms: i64) -> String {
    let t = crate::wire::utc_text(ms);
    format!(
        "{}T{}",
        t.get(..10).unwrap_or_default(),
        t.get(11..16).unwrap_or_default()
    )
}

async fn form_page(ui: &Ui, f: &FormData, error: Option<&str>) -> Result<Markup, ApiError> {
    let state = ui.state();
    let estate = state.estate.get(&state.portal).await?;
    let reader = ui.reader();
    let mut options: Vec<(String, String)> = Vec::new();
    let mut devices: Vec<_> = data::visible_devices(ui, &estate)
        .into_iter()
        .filter(|d| may(&reader, d.all_groups.iter().copied(), Level::Write))
        .collect();
    devices.sort_by_key(|d| d.doc.display_name.to_lowercase());
    for d in devices {
        options.push((
            format!("d:{}", d.doc.id),
            format!("Device: {}", d.doc.display_name),
        ));
    }
    let mut groups: Vec<_> = estate
        .groups
        .values()
        .filter(|n| {
            let mut scope = n.ancestors.clone();
            scope.push(n.doc.id);
            may(&reader, scope, Level::Write)
        })
        .collect();
    groups.sort_by_key(|n| n.full_path.to_lowercase());
    for g in groups {
        let label = if g.doc.id == ROOT_GROUP {
            "Group: (root, every device)".to_string()
        } else {
            format!("Group: {}", g.full_path)
        };
        options.push((format!("g:{}", g.doc.id), label));
    }
    let now = state.portal.now();
    let start = if f.get("start").is_empty() {
        local_text(now)
    } else {
        f.get("start").to_string()
    };
    let duration = if f.get("duration").is_empty() {
        "60"
    } else {
        f.get("duration")
    };
    Ok(html! {
        (c::form_error(error))
        form method="post" action="/ui/sdts/new" id="sdt-form" {
            (ui.csrf())
            (c::select("sdt-target", "target", "What", &options, f.get("target"), "A device, or every device of a group (and its subgroups)"))
            (c::input("sdt-start", "start", "Starts (UTC)", &start, Field { kind: "datetime-local", required: true, ..Default::default() }))
            (c::input("sdt-duration", "duration", "Duration in minutes", duration, Field { kind: "number", required: true, ..Default::default() }))
            (c::input("sdt-comment", "comment", "Comment", f.get("comment"), Field { hint: "Why: a change ticket, a maintenance window", ..Default::default() }))
            button type="submit" id="create-sdt" { "Schedule downtime" }
            " " a href="/ui/sdts" { "Cancel" }
        }
    })
}

/// `GET /ui/sdts/new[?device=ID|group=ID]`.
pub(crate) async fn new_form(ui: Ui, q: Query) -> Response {
    let target = if let Some(d) = q.num("device") {
        format!("d:{d}")
    } else if let Some(g) = q.num("group") {
        format!("g:{g}")
    } else {
        String::new()
    };
    let f = FormData(vec![("target".into(), target)]);
    let r = async {
        let body = form_page(&ui, &f, None).await?;
        Ok(ui.page_with(
            "Schedule downtime",
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

fn body_of(f: &FormData) -> Result<Value, ApiError> {
    let start = parse_local(f.get("start"))
        .ok_or_else(|| ApiError::BadRequest("the start must be a date and time (UTC)".into()))?;
    let minutes: i64 = f
        .get("duration")
        .parse()
        .ok()
        .filter(|m| (1..=525_600).contains(m))
        .ok_or_else(|| ApiError::BadRequest("the duration must be 1 to 525600 minutes".into()))?;
    let mut body = json!({
        "sdtType": "oneTime",
        "timezone": "UTC",
        "startDateTime": start,
        "endDateTime": start + minutes * 60_000,
        "comment": f.get("comment"),
    });
    match f.get("target").split_once(':') {
        Some(("d", id)) => {
            body["type"] = json!("ResourceSDT");
            body["deviceId"] = json!(id.parse::<i64>().unwrap_or(0));
        }
        Some(("g", id)) => {
            body["type"] = json!("ResourceGroupSDT");
            body["deviceGroupId"] = json!(id.parse::<i64>().unwrap_or(0));
        }
        _ => return Err(ApiError::BadRequest("choose a device or a group".into())),
    }
    Ok(body)
}

/// `POST /ui/sdts/new`: `POST /santaba/rest/sdt/sdts`.
pub(crate) async fn create(ui: Ui, form: FormData) -> Response {
    let state = ui.state.clone();
    let r = match body_of(&form) {
        Ok(body) => {
            ui.act("POST", "/santaba/rest/sdt/sdts", |caller| async move {
                sdt::create(&state, &caller, &body).await
            })
            .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => ui.see_other("/ui/sdts?done=created"),
        Err(e) => match form_page(&ui, &form, Some(&super::error::message(&e))).await {
            Ok(markup) => ui.form_error(e, |_| markup, "Schedule downtime"),
            Err(e2) => ui.respond(Err(e2)),
        },
    }
}

/// `POST /ui/sdts/{id}/delete`: `DELETE /santaba/rest/sdt/sdts/{id}`.
pub(crate) async fn delete(ui: Ui, Path(raw): Path<String>, _form: FormData) -> Response {
    let state = ui.state.clone();
    let path = format!("/santaba/rest/sdt/sdts/{raw}");
    let r = ui
        .act("DELETE", &path, |caller| async move {
            sdt::delete(&state, &caller, &raw).await
        })
        .await;
    match r {
        Ok(()) => ui.see_other("/ui/sdts?done=deleted"),
        Err(e) => ui.respond(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_times() {
        assert_eq!(super::parse_local("1970-01-01T01:30"), Some(5_400_000));
        assert_eq!(super::parse_local("2024-02-30T25:00"), None);
        assert_eq!(super::local_text(5_400_000), "1970-01-01T01:30");
    }
}
