//! The token migration assistant in the web UI (`/ui/tokens/{id}/migrate`): the proposal
//! (privileges with the calls they cover, refused and unresolved calls), confirming it
//! (role, API-only user and new token, the secret shown once), disabling the old token and
//! finishing (deleted after a quiet grace period, or what still uses it), and the status.
//! Calls the operations behind `/setting/admins/apitokens/{id}/migration…` with the same
//! privileges and audit as the API.

use super::components::{self as c, Field, FormData, Query, Tone};
use super::ctx::Ui;
use crate::error::ApiError;
use crate::ops::token_migration::{self as ops, Outcome, StartRequest};
use axum::extract::Path;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::{Level, Need, SettingObject};
use serde_json::Value;

const READ: Need = Need::Setting(SettingObject::UserAccess, Level::Read);
const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

fn api_path(id: i64, rest: &str) -> String {
    format!("/santaba/rest/setting/admins/apitokens/{id}/migration{rest}")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

fn secs_time(v: &Value) -> Markup {
    c::time(v.as_i64().map(|t| t.saturating_mul(1000)))
}

fn calls(v: &Value) -> Markup {
    html! {
        ul.calls {
            @for g in v.as_array().into_iter().flatten() {
                li { code { (s(g, "method")) " " (s(g, "path")) } " × " (g["count"].as_u64().unwrap_or(0))
                    ", last " (secs_time(&g["lastSeenOn"])) }
            }
        }
    }
}

fn done_message(code: &str) -> Option<&'static str> {
    match code {
        "disabled" => Some("The old token is disabled; its grace period runs."),
        "deleted" => Some("The old token was deleted: the migration is done."),
        "waiting" => Some("The old token has not been used since it was disabled; it can be deleted once its grace period has passed."),
        "kept" => Some("The old token was used after it was disabled: it is kept. Switch what still uses it (below), then disable it again."),
        "retiring" => Some("Disable the old token first."),
        _ => None,
    }
}

fn status_markup(ui: &Ui, id: i64, m: &Value) -> Markup {
    let can_write = ui.can(WRITE);
    let state = s(m, "state");
    html! {
        section id="migration-status" {
            h2 { "Status" }
            dl.facts {
                dt { "State" } dd id="migration-state" { (state) }
                dt { "Next" } dd id="migration-next" { (s(m, "next")) }
                dt { "Old token" } dd { code { (s(m, "oldAccessId")) } " of " (s(m, "ownerName"))
                    @if m["oldToken"]["exists"].as_bool() == Some(true) {
                        ", last used " (secs_time(&m["oldToken"]["lastUsedOn"]))
                    } @else { " (deleted)" } }
                dt { "Replaced by" } dd { "token " (m["replacedBy"].as_i64().unwrap_or(0)) " of API-only user "
                    a href={"/ui/users/" (m["newUserId"].as_i64().unwrap_or(0))} { (s(m, "newUsername")) }
                    " with role " (s(m, "roleName"))
                    @if let Some(n) = m["newToken"].as_object() {
                        ", last used " (secs_time(&n["lastUsedOn"]))
                    } }
                dt { "Started" } dd { (secs_time(&m["startedOn"])) }
                dt { "Disabled" } dd { (secs_time(&m["disabledOn"])) }
                dt { "Grace period" } dd { (m["graceDays"].as_i64().unwrap_or(0)) " days"
                    @if !m["deleteAfter"].is_null() { ", deleted after " (secs_time(&m["deleteAfter"])) } }
                @if let Some(used) = m["usedDuringGrace"].as_array() {
                    dt { "Used while disabled" } dd { (calls(&Value::Array(used.clone()))) }
                }
            }
            @if can_write && state != "deleted" {
                div.actions {
                    form method="post" action={"/ui/tokens/" (id) "/migrate/disable"} {
                        (ui.csrf())
                        button type="submit" id="migration-disable" { "Disable the old token" }
                    }
                    @if state == "disabled" {
                        form method="post" action={"/ui/tokens/" (id) "/migrate/finish"} {
                            (ui.csrf())
                            button.secondary type="submit" id="migration-finish" { "Finish" }
                        }
                    }
                }
            }
        }
    }
}

fn proposal_markup(ui: &Ui, id: i64, p: &Value, f: Option<&FormData>) -> Markup {
    let can_confirm = p["canConfirm"].as_bool() == Some(true) && ui.can(WRITE);
    let role = f
        .map(|f| f.get("roleName").to_string())
        .unwrap_or_else(|| s(p, "suggestedRoleName").to_string());
    let user = f
        .map(|f| f.get("username").to_string())
        .unwrap_or_else(|| s(p, "suggestedUsername").to_string());
    let privs = p["privileges"].as_array().cloned().unwrap_or_default();
    html! {
        p { "Token " code { (s(p, "accessId")) } " (" (s(p, "type")) ") of " (s(p, "adminName"))
            @if let Some(v) = p["violatesMandate"].as_str() { " — " (c::badge(Tone::Bad, v)) } }
        p { (p["callsConsidered"].as_u64().unwrap_or(0)) " call(s) read over the last " (p["days"].as_i64().unwrap_or(0)) " days"
            @if p["truncated"].as_bool() == Some(true) { " (truncated)" } "." }
        @if let Some(r) = p["refusal"].as_str() { p.error role="alert" id="migration-refusal" { (r) } }
        @for w in p["warnings"].as_array().into_iter().flatten() { p.notice { (w.as_str().unwrap_or_default()) } }
        section id="proposal" {
            h2 { "Proposed role" }
            (c::table("proposed-privileges", "Privileges and the calls they cover", &["Privilege", "Covers"], html! {
                @for pr in &privs {
                    tr {
                        th scope="row" { code { (s(pr, "text")) } }
                        td { (calls(&pr["covers"]))
                            @for n in pr["notes"].as_array().into_iter().flatten() { p.muted { (n.as_str().unwrap_or_default()) } } }
                    }
                }
            }))
            @if privs.is_empty() { p { "No privilege proposed." } }
            @let refused = p["refused"].as_array().cloned().unwrap_or_default();
            @if !refused.is_empty() {
                (c::table("refused-calls", "Refused calls (403): not granted", &["Call", "Would need"], html! {
                    @for r in &refused {
                        tr { th scope="row" { code { (s(r, "method")) " " (s(r, "path")) } " × " (r["count"].as_u64().unwrap_or(0)) }
                             td { code { (s(r, "wouldNeed")) } } }
                    }
                }))
            }
            @let unresolved = p["unresolved"].as_array().cloned().unwrap_or_default();
            @if !unresolved.is_empty() {
                (c::table("unresolved-calls", "Calls no privilege can be proposed for", &["Call", "Why"], html! {
                    @for r in &unresolved {
                        tr { th scope="row" { code { (s(r, "method")) " " (s(r, "path")) } }
                             td { (s(r, "reason")) } }
                    }
                }))
            }
        }
        @if can_confirm {
            form method="post" action={"/ui/tokens/" (id) "/migrate"} id="migration-form" {
                (ui.csrf())
                @for pr in &privs { input type="hidden" name="privilege" value=(s(pr, "text")); }
                (c::input("m-role", "roleName", "Role name", &role, Field::default()))
                (c::input("m-user", "username", "API-only user", &user, Field::default()))
                button type="submit" id="migration-confirm" { "Create the role, user and new token" }
                " " a href="/ui/tokens" { "Cancel" }
            }
        }
    }
}

async fn show(
    ui: &Ui,
    raw: &str,
    q: &Query,
    error: Option<(&ApiError, &FormData)>,
) -> Result<Response, ApiError> {
    ui.require(READ)?;
    let id = crate::routes::id(raw, "API token")?;
    let portal = &ui.state.portal;
    let body = if portal.store.get_token_migration(id).await?.is_some() {
        let m = ops::status(portal, id).await?;
        html! { (c::notice(done_message(q.get("done")))) (status_markup(ui, id, &m)) }
    } else {
        let plan = ops::plan(
            portal,
            &ui.state.estate,
            id,
            palisade_core::token_migration::DEFAULT_DAYS,
        )
        .await?;
        let p = ops::plan_json(&plan);
        html! {
            @if let Some((e, _)) = error { (c::form_error(Some(&super::error::message(e)))) }
            (proposal_markup(ui, id, &p, error.map(|(_, f)| f)))
        }
    };
    let mut opts = super::layout::PageOpts::default();
    if let Some((e, _)) = error {
        opts.status = e.status();
    }
    Ok(ui.page_with("Migrate an API token", body, opts))
}

/// `GET /ui/tokens/{id}/migrate`: the proposal, or the migration's status.
pub(crate) async fn page(ui: Ui, Path(raw): Path<String>, q: Query) -> Response {
    let r = show(&ui, &raw, &q, None).await;
    ui.respond(r)
}

/// `POST /ui/tokens/{id}/migrate`: `POST /santaba/rest/setting/admins/apitokens/{id}/migration`;
/// the answer shows the new secret once.
pub(crate) async fn start(ui: Ui, Path(raw): Path<String>, f: FormData) -> Response {
    let id = match crate::routes::id(&raw, "API token") {
        Ok(id) => id,
        Err(e) => return ui.respond(Err(e)),
    };
    let state = ui.state.clone();
    let non_empty = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_string());
    let req = StartRequest {
        days: None,
        role_name: non_empty(f.get("roleName")),
        username: non_empty(f.get("username")),
        expect: Some(f.all("privilege").into_iter().map(str::to_string).collect()),
    };
    let r = ui
        .act("POST", &api_path(id, ""), |caller| async move {
            caller.require(WRITE)?;
            ops::start(
                &state.portal,
                &state.estate,
                &caller.actor,
                Some(&caller),
                id,
                req,
            )
            .await
        })
        .await;
    match r {
        Ok(started) => {
            let v = ops::started_json(&started);
            let t = &v["token"];
            let bearer = s(t, "type") == "bearer";
            let body = html! {
                p.notice role="status" { "Created role " strong { (started.role_name) } ", API-only user "
                    a href={"/ui/users/" (t["adminId"].as_i64().unwrap_or(0))} { (started.username) } " and its token. "
                    "Switch the integration to the new token, check it works, then disable the old one." }
                div.secret-box {
                    h2 { "The new secret, shown once" }
                    p { strong { "Copy it now:" } " the portal will never show it again." }
                    dl.facts {
                        @if !bearer {
                            dt { "Access id" } dd { code.secret id="token-access-id" data-copy data-copy-label="access id" { (s(t, "accessId")) } }
                        }
                        dt { @if bearer { "Bearer token" } @else { "Access key" } }
                        dd { code.secret id="token-secret" data-copy data-copy-label="secret" { (s(t, "accessKey")) } }
                    }
                }
                (status_markup(&ui, id, &v["migration"]))
            };
            ui.page("Token migration started", body)
        }
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => ui.respond(Err(e)),
        Err(e) => {
            let r = show(&ui, &raw, &Query(Vec::new()), Some((&e, &f))).await;
            ui.respond(r)
        }
    }
}

/// `POST /ui/tokens/{id}/migrate/disable`: `POST …/migration/disable`.
pub(crate) async fn disable(ui: Ui, Path(raw): Path<String>) -> Response {
    let id = match crate::routes::id(&raw, "API token") {
        Ok(id) => id,
        Err(e) => return ui.respond(Err(e)),
    };
    let state = ui.state.clone();
    let r = ui
        .act("POST", &api_path(id, "/disable"), |caller| async move {
            caller.require(WRITE)?;
            ops::confirm_disable(&state.portal, &caller.actor, id).await
        })
        .await;
    match r {
        Ok(_) => ui.see_other(&format!("/ui/tokens/{id}/migrate?done=disabled")),
        Err(e) => ui.respond(Err(e)),
    }
}

/// `POST /ui/tokens/{id}/migrate/finish`: `POST …/migration/finish`.
pub(crate) async fn finish(ui: Ui, Path(raw): Path<String>) -> Response {
    let id = match crate::routes::id(&raw, "API token") {
        Ok(id) => id,
        Err(e) => return ui.respond(Err(e)),
    };
    let state = ui.state.clone();
    let r = ui
        .act("POST", &api_path(id, "/finish"), |caller| async move {
            caller.require(WRITE)?;
            ops::finish(&state.portal, &caller.actor, id).await
        })
        .await;
    match r {
        Ok(o) => {
            let code = match o {
                Outcome::Retiring => "retiring",
                Outcome::Waiting(_) => "waiting",
                Outcome::Kept(_) => "kept",
                Outcome::Deleted => "deleted",
            };
            ui.see_other(&format!("/ui/tokens/{id}/migrate?done={code}"))
        }
        Err(e) => ui.respond(Err(e)),
    }
}
