//! Users (with their two-factor status) and roles: lists, a user's page with its tokens,
//! adding users (API-only or local) and custom roles. Reads and changes call the REST
//! handlers of `/setting/admins` and `/setting/roles`, so the same refusals apply
//! (privilege escalation, the token mandate, the last administrator).

use super::components::{self as c, Field, FormData, Tone};
use super::ctx::Ui;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::routes::{roles as roles_api, users as api};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::{Level, Need, Privilege, SettingObject};
use serde_json::{json, Value};

const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

fn kind(u: &Value) -> &'static str {
    if u["apionly"].as_bool().unwrap_or(false) {
        "API-only"
    } else if u["authSource"].as_str().is_some_and(|s| s != "local") {
        "Single sign-on"
    } else {
        "Local"
    }
}

/// Two-factor status in words: API-only and SSO users are outside the mandate.
fn two_factor(u: &Value) -> Markup {
    match kind(u) {
        "API-only" => html! { span.muted { "not applicable (tokens only)" } },
        "Single sign-on" => html! { span.muted { "by the identity provider" } },
        _ if u["twoFAEnabled"].as_bool().unwrap_or(false) => c::badge(Tone::Good, "enabled"),
        _ => c::badge(Tone::Bad, "not enrolled"),
    }
}

fn role_names(u: &Value) -> String {
    u["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|x| x["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET /ui/users`.
pub(crate) async fn list(ui: Ui, q: super::components::Query) -> Response {
    let r = async {
        let users = api::list(
            State(ui.state.clone()),
            ui.reader(),
            RawQuery(Some("size=1000".into())),
        )
        .await?
        .0
        .items;
        let done = match q.get("done") {
            "created" => Some("User added."),
            _ => None,
        };
        let body = html! {
            (c::notice(done))
            div.actions {
                @if ui.can(WRITE) { a.button href="/ui/users/new" id="add-user" { "Add user" } }
                a.button.secondary href="/ui/roles" { "Roles" }
            }
            (c::table("users", "Users", &["User", "Type", "Status", "Roles", "Two-factor", "Last sign-in", "API tokens"], html! {
                @for u in &users {
                    tr {
                        th scope="row" { a href={"/ui/users/" (u["id"].as_i64().unwrap_or(0))} { (u["username"].as_str().unwrap_or_default()) } }
                        td { (kind(u)) }
                        td { @if u["status"].as_str() == Some("active") { (c::badge(Tone::Good, "active")) } @else { (c::badge(Tone::Neutral, u["status"].as_str().unwrap_or_default())) } }
                        td { (role_names(u)) }
                        td { (two_factor(u)) }
                        td { (c::time(u["lastLoginOn"].as_i64().map(|s| s * 1000))) }
                        td.num { (u["apiTokens"].as_array().map(Vec::len).unwrap_or(0)) }
                    }
                }
            }))
        };
        Ok(ui.page("Users", body))
    }
    .await;
    ui.respond(r)
}

/// `GET /ui/users/{id}`.
pub(crate) async fn show(ui: Ui, Path(raw): Path<String>) -> Response {
    let r = async {
        let u = api::get(State(ui.state.clone()), ui.reader(), Path(raw), RawQuery(None))
            .await?
            .0;
        let id = u["id"].as_i64().unwrap_or(0);
        let tokens = u["apiTokens"].as_array().cloned().unwrap_or_default();
        let body = html! {
            dl.facts {
                dt { "Type" } dd { (kind(&u)) }
                dt { "Email" } dd { (u["email"].as_str().unwrap_or_default()) }
                dt { "Name" } dd { (u["firstName"].as_str().unwrap_or_default()) " " (u["lastName"].as_str().unwrap_or_default()) }
                dt { "Status" } dd { (u["status"].as_str().unwrap_or_default()) }
                dt { "Roles" } dd { (role_names(&u)) }
                dt { "Two-factor" } dd { (two_factor(&u)) }
                dt { "Created" } dd { (c::time(u["createdOn"].as_i64().map(|s| s * 1000))) " by " (u["createdBy"].as_str().unwrap_or_default()) }
                dt { "Last sign-in" } dd { (c::time(u["lastLoginOn"].as_i64().map(|s| s * 1000))) }
            }
            h2 { "API tokens" }
            @if ui.can(WRITE) { div.actions { a.button href={"/ui/tokens/new?owner=" (id)} id="add-token" { "Create a token" } } }
            @if tokens.is_empty() { p { "No tokens." } }
            @else {
                (c::table("user-tokens", "Tokens of this user", &["Access id", "Type", "Status", "Created", "Last used", "From"], html! {
                    @for t in &tokens {
                        tr {
                            th scope="row" { code { (t["accessId"].as_str().unwrap_or_default()) } }
                            td { (t["type"].as_str().unwrap_or_default()) }
                            td { (super::tokens::status_badge(t, ui.state.portal.now())) }
                            td { (c::time(t["createdOn"].as_i64().map(|s| s * 1000))) }
                            td { (c::time(t["lastUsedOn"].as_i64().map(|s| s * 1000))) }
                            td { (t["lastAuthIp"].as_str().unwrap_or_default()) }
                        }
                    }
                }))
                p { a href={"/ui/tokens?owner=" (id)} { "Manage these tokens" } }
            }
        };
        Ok(ui.page(u["username"].as_str().unwrap_or("User"), body))
    }
    .await;
    ui.respond(r)
}

async fn user_form(ui: &Ui, f: &FormData, error: Option<&str>) -> Result<Markup, ApiError> {
    let roles = roles_api::list(
        State(ui.state.clone()),
        ui.reader(),
        RawQuery(Some("size=1000".into())),
    )
    .await?
    .0
    .items;
    let chosen = f.all("role");
    let api_only = f.checked("apionly") || f.0.is_empty();
    Ok(html! {
        (c::form_error(error))
        form method="post" action="/ui/users/new" id="user-form" {
            (ui.csrf())
            (c::input("u-username", "username", "Username", f.get("username"), Field { required: true, hint: "Letters, digits and . _ @ + -", ..Default::default() }))
            (c::input("u-email", "email", "Email", f.get("email"), Field { kind: "email", required: true, ..Default::default() }))
            div.rows {
                div { (c::input("u-first", "firstName", "First name", f.get("firstName"), Field::default())) }
                div { (c::input("u-last", "lastName", "Last name", f.get("lastName"), Field::default())) }
            }
            fieldset {
                legend { "Roles (at least one)" }
                p.hint { "You can only give roles whose privileges you hold yourself. API tokens are never allowed for holders of the administrator role." }
                @for r in &roles {
                    @let rid = r["id"].as_i64().unwrap_or(0).to_string();
                    (c::checkbox(&format!("role-{rid}"), "role", &rid, r["name"].as_str().unwrap_or_default(), chosen.contains(&rid.as_str())))
                }
            }
            fieldset {
                legend { "Kind" }
                (c::checkbox("u-apionly", "apionly", "1", "API-only: signs in with API tokens only (no password, no web sign-in)", api_only))
                (c::secret_input("u-password", "password", "Password for a local user", "12 to 128 characters; leave empty for an API-only user. The user must change it and enrol a second factor at first sign-in."))
            }
            button type="submit" id="create-user" { "Add user" }
            " " a href="/ui/users" { "Cancel" }
        }
    })
}

/// `GET /ui/users/new`.
pub(crate) async fn new_form(ui: Ui) -> Response {
    let r = async {
        let body = user_form(&ui, &FormData::default(), None).await?;
        Ok(ui.page_with(
            "Add a user",
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

/// `POST /ui/users/new`: `POST /santaba/rest/setting/admins`.
pub(crate) async fn create(ui: Ui, f: FormData) -> Response {
    let roles: Vec<Value> = f
        .all("role")
        .iter()
        .filter_map(|r| r.parse::<i64>().ok())
        .map(|id| json!({"id": id}))
        .collect();
    let api_only = f.checked("apionly");
    let mut body = json!({
        "username": f.get("username"),
        "email": f.get("email"),
        "firstName": f.get("firstName"),
        "lastName": f.get("lastName"),
        "roles": roles,
        "apionly": api_only,
    });
    let password = f.raw("password");
    if !password.is_empty() {
        body["password"] = json!(password);
        body["forcePasswordChange"] = json!(true);
    }
    let state = ui.state.clone();
    let r = ui
        .act("POST", "/santaba/rest/setting/admins", |caller| {
            api::create(State(state), caller, Bytes::from(body.to_string()))
        })
        .await;
    match r {
        Ok(u) => ui.see_other(&format!("/ui/users/{}", u.0["id"].as_i64().unwrap_or(0))),
        Err(e) => match user_form(&ui, &f, Some(&super::error::message(&e))).await {
            Ok(markup) => ui.form_error(e, |_| markup, "Add a user"),
            Err(e2) => ui.respond(Err(e2)),
        },
    }
}

// ---------------------------------------------------------------- roles

fn privilege_text(p: &Value) -> String {
    format!(
        "{}:{}:{}",
        p["objectType"].as_str().unwrap_or_default(),
        p["objectId"].as_str().unwrap_or_default(),
        p["operation"].as_str().unwrap_or_default()
    )
}

/// `GET /ui/roles`.
pub(crate) async fn roles(ui: Ui, q: super::components::Query) -> Response {
    let r = async {
        let roles = roles_api::list(
            State(ui.state.clone()),
            ui.reader(),
            RawQuery(Some("size=1000".into())),
        )
        .await?
        .0
        .items;
        let done = match q.get("done") {
            "created" => Some("Role added."),
            _ => None,
        };
        let body = html! {
            (c::notice(done))
            @if ui.can(WRITE) { div.actions { a.button href="/ui/roles/new" id="add-role" { "Add role" } } }
            (c::table("roles", "Roles", &["Role", "Description", "Privileges", "Users", "Two-factor required"], html! {
                @for r in &roles {
                    tr {
                        th scope="row" { (r["name"].as_str().unwrap_or_default()) @if r["builtIn"].as_bool().unwrap_or(false) { " " span.muted { "(built in)" } } }
                        td.wrap { (r["description"].as_str().unwrap_or_default()) }
                        td.wrap {
                            @let privs = r["privileges"].as_array().cloned().unwrap_or_default();
                            @if privs.len() > 12 { (privs.len()) " privileges" }
                            @else { @for p in &privs { code { (privilege_text(p)) } " " } }
                        }
                        td.num { (r["associatedUserCount"].as_i64().unwrap_or(0)) }
                        td { @if r["twoFARequired"].as_bool().unwrap_or(false) { "yes" } @else { "no" } }
                    }
                }
            }))
        };
        Ok(ui.page("Roles", body))
    }
    .await;
    ui.respond(r)
}

fn role_form(ui: &Ui, f: &FormData, error: Option<&str>) -> Markup {
    html! {
        (c::form_error(error))
        form method="post" action="/ui/roles/new" id="role-form" {
            (ui.csrf())
            (c::input("r-name", "name", "Name", f.get("name"), Field { required: true, ..Default::default() }))
            (c::input("r-description", "description", "Description", f.get("description"), Field::default()))
            (c::textarea("r-privileges", "privileges", "Privileges", f.raw("privileges"), "One per line: objectType:objectId:operation, e.g. host_group:*:read or setting:collectorgroup.3:write", true))
            (c::checkbox("r-2fa", "twoFARequired", "1", "Holders must use a second factor", f.checked("twoFARequired")))
            button type="submit" id="create-role" { "Add role" }
        }
    }
}

/// `GET /ui/roles/new`.
pub(crate) async fn new_role_form(ui: Ui) -> Response {
    ui.page_with(
        "Add a role",
        role_form(&ui, &FormData::default(), None),
        PageOpts {
            narrow: true,
            ..Default::default()
        },
    )
}

/// `POST /ui/roles/new`: `POST /santaba/rest/setting/roles`.
pub(crate) async fn create_role(ui: Ui, f: FormData) -> Response {
    let parsed: Result<Vec<Value>, ApiError> = f
        .raw("privileges")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            Privilege::parse_triple(l)
                .map(|p| json!({"objectType": p.object_type, "objectId": p.object_id, "operation": p.operation}))
                .map_err(|e| ApiError::BadRequest(format!("`{l}`: {e}")))
        })
        .collect();
    let r = match parsed {
        Ok(privileges) => {
            let body = json!({
                "name": f.get("name"),
                "description": f.get("description"),
                "privileges": privileges,
                "twoFARequired": f.checked("twoFARequired"),
            });
            let state = ui.state.clone();
            ui.act("POST", "/santaba/rest/setting/roles", |caller| {
                roles_api::create(State(state), caller, Bytes::from(body.to_string()))
            })
            .await
        }
        Err(e) => Err(e),
    };
    match r {
        Ok(_) => ui.see_other("/ui/roles?done=created"),
        Err(e) => ui.form_error(e, |msg| role_form(&ui, &f, Some(msg)), "Add a role"),
    }
}
