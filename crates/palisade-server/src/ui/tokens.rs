//! API tokens: every token with its owner, creation, expiry, last use and where from
//! (filter by owner, status and type); creating one (its secret shown once), disabling,
//! enabling and deleting. Reads and changes call the REST handlers of
//! `/setting/admins/{id}/apitokens`, so the token mandate and every refusal of the API
//! apply, shown as errors on the page.

use super::components::{self as c, Field, FormData, Query, Tone};
use super::ctx::Ui;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::routes::{tokens as api, users as users_api};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::{Level, Need, SettingObject};
use palisade_store::{TOKEN_DISABLED, TOKEN_ENABLED};
use serde_json::{json, Value};

const WRITE: Need = Need::Setting(SettingObject::UserAccess, Level::Write);

/// A token's status in words (disabled, expired, enabled).
pub(crate) fn status_badge(t: &Value, now_ms: i64) -> Markup {
    let now_s = now_ms / 1000;
    let exp = t["expiresOn"].as_i64().unwrap_or(0);
    if t["status"].as_i64() == Some(TOKEN_DISABLED) {
        c::badge(Tone::Neutral, "disabled")
    } else if exp > 0 && exp <= now_s {
        c::badge(Tone::Bad, "expired")
    } else {
        c::badge(Tone::Good, "enabled")
    }
}

fn done_message(code: &str) -> Option<&'static str> {
    match code {
        "disabled" => Some("Token disabled."),
        "enabled" => Some("Token enabled."),
        "deleted" => Some("Token deleted."),
        _ => None,
    }
}

/// `GET /ui/tokens`.
pub(crate) async fn list(ui: Ui, q: Query) -> Response {
    let r = list_page(&ui, &q, None).await;
    ui.respond(r)
}

async fn list_page(ui: &Ui, q: &Query, error: Option<&ApiError>) -> Result<Response, ApiError> {
    let state = ui.state.clone();
    let tokens = api::list_all(
        State(state.clone()),
        ui.reader(),
        RawQuery(Some("size=1000".into())),
    )
    .await?
    .0
    .items;
    let owner = q.num("owner");
    let status = q.get("status");
    let kind = q.get("type");
    let rows: Vec<&Value> = tokens
        .iter()
        .filter(|t| owner.is_none_or(|o| t["adminId"].as_i64() == Some(o)))
        .filter(|t| match status {
            "enabled" => t["status"].as_i64() == Some(TOKEN_ENABLED),
            "disabled" => t["status"].as_i64() == Some(TOKEN_DISABLED),
            _ => true,
        })
        .filter(|t| kind.is_empty() || t["type"].as_str() == Some(kind))
        .collect();
    let mut owners: Vec<(String, String)> = vec![(String::new(), "Any owner".into())];
    let mut seen = std::collections::BTreeMap::new();
    for t in &tokens {
        seen.insert(
            t["adminName"].as_str().unwrap_or_default().to_string(),
            t["adminId"].as_i64().unwrap_or(0),
        );
    }
    for (name, id) in &seen {
        owners.push((id.to_string(), name.clone()));
    }
    let o = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    let can_write = ui.can(WRITE);
    let now = state.portal.now();
    let owner_param = owner.map(|o| o.to_string()).unwrap_or_default();
    let body = html! {
        @if let Some(e) = error { p.error role="alert" id="form-error" { (super::error::message(e)) } }
        (c::notice(done_message(q.get("done"))))
        @if can_write {
            div.actions { a.button href={"/ui/tokens/new" @if let Some(o) = owner { "?owner=" (o) }} id="add-token" { "Create a token" } }
        }
        (c::filters("/ui/tokens", "Filter tokens", html! {
            div { (c::select("f-owner", "owner", "Owner", &owners, &owner_param, "")) }
            div { (c::select("f-status", "status", "Status", &o(&[("", "Any"), ("enabled", "Enabled"), ("disabled", "Disabled")]), status, "")) }
            div { (c::select("f-type", "type", "Type", &o(&[("", "Any"), ("lmv1", "LMv1"), ("bearer", "Bearer")]), kind, "")) }
        }))
        (c::table("tokens", "API tokens", &["Access id", "Owner", "Type", "Status", "Note", "Created", "Expires", "Last used", "From", "Actions"], html! {
            @for t in &rows {
                @let id = t["id"].as_i64().unwrap_or(0);
                @let owner_id = t["adminId"].as_i64().unwrap_or(0);
                @let access = t["accessId"].as_str().unwrap_or_default();
                tr {
                    th scope="row" { code { (access) } }
                    td { a href={"/ui/users/" (owner_id)} { (t["adminName"].as_str().unwrap_or_default()) } }
                    td { (t["type"].as_str().unwrap_or_default()) }
                    td { (status_badge(t, now)) }
                    td.wrap { (t["note"].as_str().unwrap_or_default()) }
                    td { (c::time(t["createdOn"].as_i64().map(|s| s * 1000))) " " span.muted { "by " (t["createdBy"].as_str().unwrap_or_default()) } }
                    td { @if t["expiresOn"].as_i64().unwrap_or(0) > 0 { (c::time(t["expiresOn"].as_i64().map(|s| s * 1000))) } @else { span.muted { "never" } } }
                    td { @if t["lastUsedOn"].as_i64().unwrap_or(0) > 0 { (c::time(t["lastUsedOn"].as_i64().map(|s| s * 1000))) } @else { span.muted { "never used" } } }
                    td.wrap {
                        (t["lastAuthIp"].as_str().unwrap_or_default())
                        @let recent: Vec<&str> = t["recentIps"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                        @if recent.len() > 1 { br; span.muted { "recent: " (recent.join(", ")) } }
                    }
                    td {
                        @if can_write {
                            div.actions {
                                form method="post" action={"/ui/tokens/" (id) "/status"} {
                                    (ui.csrf())
                                    input type="hidden" name="owner" value=(owner_id);
                                    @if t["status"].as_i64() == Some(TOKEN_DISABLED) {
                                        input type="hidden" name="status" value=(TOKEN_ENABLED);
                                        button.small.secondary type="submit" aria-label={"Enable token " (access)} { "Enable" }
                                    } @else {
                                        input type="hidden" name="status" value=(TOKEN_DISABLED);
                                        button.small.secondary type="submit" aria-label={"Disable token " (access)} id={"disable-" (id)} { "Disable" }
                                    }
                                }
                                @if matches!(t["type"].as_str(), Some("lmv1" | "bearer")) {
                                    a.button.small.secondary href={"/ui/tokens/" (id) "/migrate"} aria-label={"Migrate token " (access)} id={"migrate-" (id)} { "Migrate" }
                                }
                                form method="post" action={"/ui/tokens/" (id) "/delete"} data-confirm={"Delete token " (access) "? Integrations using it stop working."} {
                                    (ui.csrf())
                                    input type="hidden" name="owner" value=(owner_id);
                                    button.small.danger type="submit" aria-label={"Delete token " (access)} id={"delete-" (id)} { "Delete" }
                                }
                            }
                        }
                    }
                }
            }
        }))
        @if rows.is_empty() { p { "No token matches." } }
    };
    Ok(ui.page_with(
        "API tokens",
        body,
        PageOpts {
            status: error.map(ApiError::status).unwrap_or(StatusCode::OK),
            ..Default::default()
        },
    ))
}

async fn change(ui: Ui, raw: String, f: FormData, delete: bool) -> Response {
    let owner = f.get("owner").to_string();
    let state = ui.state.clone();
    let path = format!("/santaba/rest/setting/admins/{owner}/apitokens/{raw}");
    let status: i64 = f.get("status").parse().unwrap_or(0);
    let r = if delete {
        ui.act("DELETE", &path, |caller| {
            api::delete(State(state), caller, Path((owner.clone(), raw.clone())))
        })
        .await
        .map(|_| "deleted")
    } else {
        let body = Bytes::from(json!({"status": status}).to_string());
        ui.act("PATCH", &path, |caller| {
            api::update(
                State(state),
                caller,
                Path((owner.clone(), raw.clone())),
                body,
            )
        })
        .await
        .map(|_| {
            if status == TOKEN_DISABLED {
                "disabled"
            } else {
                "enabled"
            }
        })
    };
    match r {
        Ok(code) => ui.see_other(&format!("/ui/tokens?owner={owner}&done={code}")),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => ui.respond(Err(e)),
        Err(e) => {
            let q = Query(vec![("owner".into(), owner.clone())]);
            let r = list_page(&ui, &q, Some(&e)).await;
            ui.respond(r)
        }
    }
}

/// `POST /ui/tokens/{id}/status`: `PATCH /santaba/rest/setting/admins/{owner}/apitokens/{id}`.
pub(crate) async fn set_status(ui: Ui, Path(raw): Path<String>, f: FormData) -> Response {
    change(ui, raw, f, false).await
}

/// `POST /ui/tokens/{id}/delete`: `DELETE /santaba/rest/setting/admins/{owner}/apitokens/{id}`.
pub(crate) async fn delete(ui: Ui, Path(raw): Path<String>, f: FormData) -> Response {
    change(ui, raw, f, true).await
}

async fn form(ui: &Ui, f: &FormData, error: Option<&str>) -> Result<Markup, ApiError> {
    let users = users_api::list(
        State(ui.state.clone()),
        ui.reader(),
        RawQuery(Some("size=1000".into())),
    )
    .await?
    .0
    .items;
    let owners: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            let kind = if u["apionly"].as_bool().unwrap_or(false) {
                " (API-only)"
            } else {
                ""
            };
            (
                u["id"].as_i64().unwrap_or(0).to_string(),
                format!("{}{kind}", u["username"].as_str().unwrap_or_default()),
            )
        })
        .collect();
    let kinds = vec![
        (
            "lmv1".to_string(),
            "LMv1 (access id + access key)".to_string(),
        ),
        ("bearer".to_string(), "Bearer".to_string()),
    ];
    let kind = if f.get("type").is_empty() {
        "lmv1"
    } else {
        f.get("type")
    };
    Ok(html! {
        (c::form_error(error))
        p { "Tokens belong to a user and can do at most what the user's roles allow, checked at every request. "
            "Holders of the administrator role and the support account never get tokens: give integrations an API-only user with a custom role." }
        form method="post" action="/ui/tokens/new" id="token-form" {
            (ui.csrf())
            (c::select("t-owner", "owner", "Owner", &owners, f.get("owner"), ""))
            (c::select("t-type", "type", "Type", &kinds, kind, ""))
            (c::input("t-note", "note", "Note", f.get("note"), Field { hint: "What uses it: the integration, its owner", ..Default::default() }))
            (c::input("t-expires", "expires", "Expires on (UTC)", f.get("expires"), Field { kind: "date", hint: "Optional; a token without expiry lives until it is deleted", ..Default::default() }))
            button type="submit" id="create-token" { "Create token" }
            " " a href="/ui/tokens" { "Cancel" }
        }
    })
}

/// `GET /ui/tokens/new[?owner=ID]`.
pub(crate) async fn new_form(ui: Ui, q: Query) -> Response {
    let f = FormData(vec![("owner".into(), q.get("owner").to_string())]);
    let r = async {
        let body = form(&ui, &f, None).await?;
        Ok(ui.page_with(
            "Create an API token",
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

/// `POST /ui/tokens/new`: `POST /santaba/rest/setting/admins/{owner}/apitokens`; the answer
/// shows the secret once.
pub(crate) async fn create(ui: Ui, f: FormData) -> Response {
    let owner = f.get("owner").to_string();
    let bearer = f.get("type") == "bearer";
    let result = async {
        let expires = match f.get("expires") {
            "" => 0,
            d => {
                crate::settings::parse_date_ms(d)
                    .ok_or_else(|| ApiError::BadRequest("the expiry must be a date".into()))?
                    / 1000
            }
        };
        let body = Bytes::from(json!({"note": f.get("note"), "expiresOn": expires}).to_string());
        let path = format!("/santaba/rest/setting/admins/{owner}/apitokens");
        let query = bearer.then(|| "type=bearer".to_string());
        let state = ui.state.clone();
        let o = owner.clone();
        ui.act("POST", &path, |caller| {
            api::create(State(state), caller, Path(o), RawQuery(query), body)
        })
        .await
    }
    .await;
    match result {
        Ok(v) => {
            let v = v.0;
            let secret = v["accessKey"].as_str().unwrap_or_default();
            let body = html! {
                p.notice role="status" { "Token created for " a href={"/ui/users/" (v["adminId"].as_i64().unwrap_or(0))} { (v["adminName"].as_str().unwrap_or_default()) } "." }
                div.secret-box {
                    h2 { "The secret, shown once" }
                    p { strong { "Copy it now:" } " the portal keeps only an encrypted or hashed form and will never show it again. Store it in your secret manager." }
                    dl.facts {
                        @if bearer {
                            dt { "Bearer token" } dd { code.secret id="token-secret" data-copy data-copy-label="bearer token" { (secret) } }
                            dt { "Use as" } dd { code { "Authorization: Bearer …" } }
                        } @else {
                            dt { "Access id" } dd { code.secret id="token-access-id" data-copy data-copy-label="access id" { (v["accessId"].as_str().unwrap_or_default()) } }
                            dt { "Access key" } dd { code.secret id="token-secret" data-copy data-copy-label="access key" { (secret) } }
                        }
                    }
                }
                p { a href={"/ui/tokens?owner=" (v["adminId"].as_i64().unwrap_or(0))} id="back-to-tokens" { "Back to the tokens" } }
            };
            ui.page("Token created", body)
        }
        Err(e) => match form(&ui, &f, Some(&super::error::message(&e))).await {
            Ok(markup) => ui.form_error(e, |_| markup, "Create an API token"),
            Err(e2) => ui.respond(Err(e2)),
        },
    }
}
