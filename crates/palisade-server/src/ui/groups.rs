//! Device groups: a group's page (type, `appliesTo`, properties with credentials masked,
//! subgroups) and creating a group (`POST /santaba/rest/device/groups`).

use super::components::{self as c, Field, FormData};
use super::ctx::Ui;
use super::devices::items;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::devices::may;
use crate::monitor::estate::{Estate, ROOT_GROUP};
use crate::routes::devices as api;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use palisade_core::property::{is_credential, MASK};
use serde_json::json;

/// `GET /ui/groups/{id}`.
pub(crate) async fn group(ui: Ui, Path(raw): Path<String>) -> Response {
    let r = group_page(&ui, &raw).await;
    ui.respond(r)
}

async fn group_page(ui: &Ui, raw: &str) -> Result<Response, ApiError> {
    let state = ui.state.clone();
    let reader = ui.reader();
    let g = api::get_group(
        State(state.clone()),
        reader.clone(),
        Path(raw.to_string()),
        RawQuery(None),
    )
    .await?
    .0;
    let props = items(
        api::list_group_properties(
            State(state.clone()),
            reader.clone(),
            Path(raw.to_string()),
            RawQuery(Some("size=1000".into())),
        )
        .await,
    )?;
    let id = g["id"].as_i64().unwrap_or(0);
    let name = if id == ROOT_GROUP {
        "All groups (root)".to_string()
    } else {
        g["fullPath"].as_str().unwrap_or_default().to_string()
    };
    let body = html! {
        dl.facts {
            dt { "Type" } dd { (g["groupType"].as_str().unwrap_or_default()) }
            @if let Some(a) = g["appliesTo"].as_str().filter(|a| !a.is_empty()) { dt { "Applies to" } dd { code { (a) } } }
            dt { "Description" } dd { (g["description"].as_str().unwrap_or_default()) }
            dt { "Devices (here and below)" } dd { a href={"/ui/devices?group=" (id)} { (g["numOfHosts"].as_i64().unwrap_or(0)) } }
        }
        @if let Some(subs) = g["subGroups"].as_array().filter(|s| !s.is_empty()) {
            h2 { "Subgroups" }
            ul { @for s in subs { li { a href={"/ui/groups/" (s["id"].as_i64().unwrap_or(0))} { (s["name"].as_str().unwrap_or_default()) } } } }
        }
        h2 { "Properties" }
        (c::table("group-properties", "Properties of this group", &["Name", "Value"], html! {
            @for p in &props {
                @let n = p["name"].as_str().unwrap_or_default();
                tr { th scope="row" { code { (n) } } td.wrap {
                    @if is_credential(n) { code { (MASK) } } @else { (p["value"].as_str().unwrap_or_default()) }
                } }
            }
        }))
        @if props.is_empty() { p { "No properties set on this group." } }
        div.actions {
            a.button.secondary href={"/ui/sdts/new?group=" (id)} { "Schedule downtime" }
            a.button.secondary href={"/ui/devices/new?group=" (id)} { "Add a device here" }
        }
    };
    Ok(ui.page(&name, body))
}

fn group_form(ui: &Ui, estate: &Estate, f: &FormData, error: Option<&str>) -> Markup {
    let reader = ui.reader();
    let mut parents: Vec<(String, String)> = estate
        .groups
        .values()
        .filter(|n| n.applies_to.is_none())
        .filter(|n| {
            let mut scope = n.ancestors.clone();
            scope.push(n.doc.id);
            may(&reader, scope, Level::Manage)
        })
        .map(|n| {
            let label = if n.doc.id == ROOT_GROUP {
                "(root)".to_string()
            } else {
                n.full_path.clone()
            };
            (n.doc.id.to_string(), label)
        })
        .collect();
    parents.sort_by(|a, b| a.1.cmp(&b.1));
    html! {
        (c::form_error(error))
        form method="post" action="/ui/groups/new" id="group-form" {
            (ui.csrf())
            (c::input("g-name", "name", "Name", f.get("name"), Field { required: true, ..Default::default() }))
            (c::select("g-parent", "parent", "Parent group", &parents, f.get("parent"), ""))
            (c::input("g-description", "description", "Description", f.get("description"), Field::default()))
            (c::input("g-applies", "appliesTo", "Applies to (dynamic group)", f.get("appliesTo"), Field { hint: "Optional expression, e.g. system.displayname =~ \"web\"; devices then join by their properties", ..Default::default() }))
            button type="submit" id="create-group" { "Create group" }
        }
    }
}

/// `GET /ui/groups/new`.
pub(crate) async fn new_group_form(ui: Ui) -> Response {
    let r = async {
        let estate = ui.state.estate.get(&ui.state.portal).await?;
        Ok(ui.page_with(
            "Add a group",
            group_form(&ui, &estate, &FormData::default(), None),
            PageOpts {
                narrow: true,
                ..Default::default()
            },
        ))
    }
    .await;
    ui.respond(r)
}

/// `POST /ui/groups/new`: `POST /santaba/rest/device/groups`.
pub(crate) async fn create_group(ui: Ui, form: FormData) -> Response {
    let parent: i64 = form.get("parent").parse().unwrap_or(ROOT_GROUP);
    let body = json!({
        "name": form.get("name"),
        "parentId": parent,
        "description": form.get("description"),
        "appliesTo": form.get("appliesTo"),
    });
    let state = ui.state.clone();
    let r = ui
        .act("POST", "/santaba/rest/device/groups", |caller| {
            api::create_group(State(state), caller, Bytes::from(body.to_string()))
        })
        .await;
    match r {
        Ok(g) => ui.see_other(&format!(
            "/ui/devices?group={}&done=group",
            g.0["id"].as_i64().unwrap_or(0)
        )),
        Err(e) => match ui.state.estate.get(&ui.state.portal).await {
            Ok(estate) => ui.form_error(
                e,
                |msg| group_form(&ui, &estate, &form, Some(msg)),
                "Add a group",
            ),
            Err(e2) => ui.respond(Err(e2)),
        },
    }
}
