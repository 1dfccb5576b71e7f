//! Portal settings: every known setting with its help text and current value, each edited
//! in its own form; a refused value is shown next to its field with the API's message.
//! Reads and changes are those of `GET`/`PUT /api/admin/settings`.

use super::components::{self as c, Field, FormData, Query};
use super::ctx::Ui;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::settings::{self, KNOWN};
use crate::signin::admin;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use palisade_core::privilege::{Level, Need, SettingObject};
use serde_json::json;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

fn field_id(key: &str) -> String {
    format!("set-{}", key.replace('.', "-"))
}

async fn render(
    ui: &Ui,
    saved: Option<&str>,
    error: Option<(&str, &str, &str)>,
) -> Result<Response, ApiError> {
    ui.require(READ)?;
    let can_write = ui.can(WRITE);
    let mut current = Vec::with_capacity(KNOWN.len());
    for k in KNOWN {
        current.push(settings::get(&ui.state.portal, k.key).await?);
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = html! {
        @if let Some(k) = saved { p.notice role="status" id="notice" { "Saved " code { (k) } "." } }
        @if let Some((_, _, msg)) = error { p.error role="alert" id="form-error" { (msg) } }
        p { "Settings are stored in the database; every change is audited. The same settings: "
            code { "palisade settings get|set" } " and " code { "PUT /api/admin/settings" } "." }
        @for (k, value) in KNOWN.iter().zip(current.iter()) {
            @let id = field_id(k.key);
            @let bad = error.filter(|e| e.0 == k.key);
            section.card aria-labelledby={(id) "-h"} {
                h2 id={(id) "-h"} { code { (k.key) } }
                @if can_write {
                    form method="post" action="/ui/settings" {
                        (ui.csrf())
                        input type="hidden" name="key" value=(k.key);
                        (c::input(&id, "value", "Value", bad.map(|b| b.1).unwrap_or(value), Field { hint: k.help, invalid: bad.is_some(), ..Default::default() }))
                        @if let Some((_, _, msg)) = bad { p.error { (msg) } }
                        button type="submit" id={"save-" (id)} { "Save" }
                    }
                } @else {
                    p { (k.help) }
                    p { "Value: " @if value.is_empty() { span.muted { "(not set: the default applies)" } } @else { code { (value) } } }
                }
            }
        }
    };
    Ok(ui.page_with(
        "Settings",
        body,
        PageOpts {
            status,
            ..Default::default()
        },
    ))
}

/// `GET /ui/settings`.
pub(crate) async fn page(ui: Ui, q: Query) -> Response {
    let saved = q.get("saved").to_string();
    let key = KNOWN.iter().find(|k| k.key == saved).map(|k| k.key);
    let r = render(&ui, key, None).await;
    ui.respond(r)
}

/// `POST /ui/settings`: `PUT /api/admin/settings {key: value}`.
pub(crate) async fn save(ui: Ui, f: FormData) -> Response {
    let key = f.get("key").to_string();
    let value = f.get("value").to_string();
    let mut map = serde_json::Map::new();
    map.insert(key.clone(), json!(value));
    let body = Bytes::from(serde_json::Value::Object(map).to_string());
    let state = ui.state.clone();
    let session = ui.session.clone();
    let r = ui
        .act("PUT", "/api/admin/settings", |caller| {
            let mut session = session;
            session.actor = caller.actor;
            admin::put_settings(State(state), session, body)
        })
        .await;
    match r {
        Ok(_) => ui.see_other(&format!("/ui/settings?saved={key}")),
        Err(e @ ApiError::BadRequest(_)) => {
            let msg = super::error::message(&e);
            let r = render(&ui, None, Some((&key, &value, &msg))).await;
            ui.respond(r)
        }
        Err(e) => ui.respond(Err(e)),
    }
}
