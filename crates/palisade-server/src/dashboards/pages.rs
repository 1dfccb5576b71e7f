//! Dashboard pages: the list, the editor (widgets, widget tokens), the signed-in full-screen
//! view (`/ui/dashboards/{id}`) and the wall screen (`/wall#<widget token>`).
//!
//! Every page is server-rendered (maud escapes everything it interpolates) and served with a
//! strict Content Security Policy (`default-src 'none'`, scripts and styles from this origin
//! only, no inline code), `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.
//! Forms are plain HTML posts carrying the session's CSRF token; the only script is
//! `/wall/assets/wall.js`, which refreshes a dashboard every 30 s.
//!
//! [`layout`] puts the list and editor in the portal's shell (`crate::ui::layout`, with the
//! navigation); the full-screen view and the wall screen keep their own frame.

use super::data::{self, WidgetData};
use super::model::{DashboardDoc, WidgetDoc};
use super::ops::{self, Viewer};
use super::render;
use super::tokens::{self, IssueRequest, Revoke};
use crate::error::ApiError;
use crate::signin::gate::SessionCaller;
use crate::ui::components::FormData;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use palisade_core::privilege::{Level, Need};
use palisade_store::{TokenRecord, TOKEN_ENABLED};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The pages' Content Security Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const CSS: &str = include_str!("dashboards.css");
const JS: &str = include_str!("wall.js");

/// The routes: `/wall` and its assets are open (the widget token travels in the address's
/// fragment, never to the server except in the `Authorization` header of the data calls);
/// `/ui/dashboards/...` needs a signed-in session.
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    use axum::middleware::from_fn_with_state as mw;
    let open = Router::new()
        .route("/wall", get(wall_page))
        .route("/wall/assets/dashboards.css", get(css))
        .route("/wall/assets/wall.js", get(js));
    let active = Router::new()
        .route("/ui/dashboards", get(list_page).post(create_post))
        .route("/ui/dashboards/{id}", get(view_page))
        .route("/ui/dashboards/{id}/edit", get(edit_page).post(edit_post))
        .route("/ui/dashboards/{id}/delete", post(delete_post))
        .route("/ui/dashboards/{id}/widgets", post(add_widget_post))
        .route(
            "/ui/dashboards/{id}/widgets/{widget}/delete",
            post(delete_widget_post),
        )
        .route("/ui/dashboards/{id}/tokens", post(issue_post))
        .route(
            "/ui/dashboards/{id}/tokens/{token}/disable",
            post(disable_token_post),
        )
        .route(
            "/ui/dashboards/{id}/tokens/{token}/delete",
            post(delete_token_post),
        )
        // The shell's CSRF guard (checked, audited when refused) hands each form over.
        .route_layer(mw(state.clone(), crate::ui::csrf::guard))
        .route_layer(mw(state, crate::signin::gate::page_active));
    open.merge(active)
}

fn secure_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, axum::response::Html(markup.into_string())).into_response();
    secure_headers(&mut resp);
    resp
}

/// The page frame of the dashboard pages: the portal's shell (header, navigation, security
/// headers) with the dashboards' stylesheet. The wall screens (`/wall`, the full-screen
/// view) keep their own frame without navigation.
pub fn layout(
    state: &Arc<AppState>,
    caller: &SessionCaller,
    path: &str,
    title: &str,
    body: Markup,
) -> Response {
    let ui = crate::ui::ctx::Ui {
        session: caller.clone(),
        state: state.clone(),
        wall: false,
        path: path.to_string(),
    };
    crate::ui::layout::render(
        Some(&ui),
        title,
        body,
        &crate::ui::layout::PageOpts {
            stylesheets: &["/wall/assets/dashboards.css"],
            ..Default::default()
        },
    )
}

fn error_page(e: ApiError) -> Response {
    if matches!(e, ApiError::Internal(_)) {
        return e.into_response();
    }
    let status = e.status();
    let msg = match &e {
        ApiError::Forbidden(m)
        | ApiError::NotFound(m)
        | ApiError::BadRequest(m)
        | ApiError::Conflict(m)
        | ApiError::Unauthenticated(m)
        | ApiError::NotAvailable(m) => m.clone(),
        other => other.to_string(),
    };
    let mut resp = crate::ui::layout::render(
        None,
        "Dashboards",
        html! {
            p.error role="alert" { (msg) }
            p { a href="/ui/dashboards" { "Back to the dashboards" } }
        },
        &crate::ui::layout::PageOpts {
            stylesheets: &["/wall/assets/dashboards.css"],
            ..Default::default()
        },
    );
    *resp.status_mut() = status;
    resp
}

async fn css() -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn js() -> Response {
    let mut resp = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Renders a dashboard's widgets with their data, for `viewer`.
pub async fn wall_html(
    state: &AppState,
    viewer: &Viewer,
    d: &DashboardDoc,
    widgets: Vec<WidgetDoc>,
) -> Result<String, ApiError> {
    Ok(wall_markup(state, viewer, d, widgets).await?.into_string())
}

async fn wall_markup(
    state: &AppState,
    viewer: &Viewer,
    d: &DashboardDoc,
    widgets: Vec<WidgetDoc>,
) -> Result<Markup, ApiError> {
    let estate = state.estate.get(&state.portal).await?;
    let alerts = data::active_alerts(state).await?;
    let now = state.portal.now();
    let mut out: Vec<(WidgetDoc, i64, WidgetData)> = Vec::new();
    for w in ops::ordered(d, widgets) {
        let data = data::compute(state, viewer, &estate, &w, now, &alerts).await;
        let span = ops::width(d, &w);
        out.push((w, span, data));
    }
    Ok(render::grid(d, &out, now))
}

/// `GET /wall`: the wall screen. The widget token is the address's fragment
/// (`/wall#palw_…`): browsers never send it, so it is in no request line, log or `Referer`;
/// the script sends it only as `Authorization: Bearer` to `/santaba/rest/dashboard/wall`.
pub async fn wall_page() -> Response {
    html_response(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    meta name="robots" content="noindex";
                    title { "Palisade wall" }
                    link rel="stylesheet" href="/wall/assets/dashboards.css";
                    script src="/wall/assets/wall.js" defer {}
                }
                body.wall {
                    header.wall-head {
                        h1 #wall-title { "Palisade" }
                        span #wall-clock {}
                        span #wall-status role="status" { "Loading…" }
                    }
                    main #wall data-source="token" {}
                    noscript { p.note { "This wall screen needs JavaScript to load and refresh the dashboard." } }
                }
            }
        },
    )
}

fn id_of(raw: &str) -> Result<i64, ApiError> {
    crate::routes::id(raw, "dashboard")
}

/// `GET /ui/dashboards/{id}`: the dashboard full-screen for a signed-in user, refreshed by
/// the same script through the session.
pub async fn view_page(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
) -> Response {
    let v = Viewer::from_session(&caller);
    let result = async {
        let (d, widgets) = ops::widgets_of(&state, &v, id_of(&raw)?).await?;
        let grid = wall_markup(&state, &v, &d, widgets).await?;
        Ok::<_, ApiError>((d, grid))
    }
    .await;
    let (d, grid) = match result {
        Ok(x) => x,
        Err(e) => return error_page(e),
    };
    html_response(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { (d.name) " · Palisade" }
                    link rel="stylesheet" href="/wall/assets/dashboards.css";
                    script src="/wall/assets/wall.js" defer {}
                }
                body.wall {
                    header.wall-head {
                        h1 #wall-title { (d.name) }
                        span #wall-clock {}
                        span #wall-status role="status" { "" }
                        nav.wall-nav {
                            a href="/ui/dashboards" { "Dashboards" }
                            " · "
                            a href={"/ui/dashboards/" (d.id) "/edit"} id="edit-dashboard" { "Edit" }
                        }
                    }
                    main #wall data-source="session" data-dashboard-id=(d.id) { (grid) }
                }
            }
        },
    )
}

// ------------------------------------------------------------------ forms

fn see_other(to: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    secure_headers(&mut resp);
    resp
}

// ------------------------------------------------------------------ list

/// `GET /ui/dashboards`.
pub async fn list_page(State(state): State<Arc<AppState>>, caller: SessionCaller) -> Response {
    let v = Viewer::from_session(&caller);
    match list_markup(&state, &v, &caller, None).await {
        Ok(r) => r,
        Err(e) => error_page(e),
    }
}

async fn list_markup(
    state: &Arc<AppState>,
    v: &Viewer,
    caller: &SessionCaller,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    let list = ops::list(state, v).await?;
    let csrf = caller.session.record.csrf.clone();
    let may_create = v.may(Need::Dashboard(None, Level::Manage));
    Ok(layout(
        state,
        caller,
        "/ui/dashboards",
        "Dashboards",
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if list.is_empty() {
                p.muted { "No dashboards you may see yet." }
            } @else {
                table.list #dashboards {
                    thead { tr { th { "Name" } th { "Description" } th { "Owner" } th { "Shared" } th { "You may" } th {} } }
                    tbody {
                        @for d in &list {
                            tr data-dashboard-id=(d.id) {
                                td { a href={"/ui/dashboards/" (d.id)} { (d.name) } }
                                td { (d.description) }
                                td { (d.owner) }
                                td { @if d.sharable { "yes" } @else { "private" } }
                                td { (ops::permission(v, d)) }
                                td { a href={"/ui/dashboards/" (d.id) "/edit"} { "Edit · widget tokens" } }
                            }
                        }
                    }
                }
            }
            @if may_create {
                section.card {
                    h2 { "New dashboard" }
                    form method="post" action="/ui/dashboards" id="create-dashboard" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="dash-name" { "Name" }
                        input type="text" id="dash-name" name="name" required maxlength="255";
                        label for="dash-description" { "Description" }
                        input type="text" id="dash-description" name="description" maxlength="4096";
                        label.check { input type="checkbox" name="private" value="1"; " Private (only you)" }
                        button type="submit" id="create" { "Create" }
                    }
                }
            } @else {
                p.muted { "Creating dashboards needs dashboard:*:manage." }
            }
        },
    ))
}

/// `POST /ui/dashboards`.
pub async fn create_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    f: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let result = async {
        let body = json!({
            "name": f.get("name"),
            "description": f.get("description"),
            "sharable": !f.checked("private"),
        });
        ops::create(&state, &v, &body).await
    }
    .await;
    match result {
        Ok(d) => see_other(&format!("/ui/dashboards/{}/edit", d.id)),
        Err(e @ (ApiError::BadRequest(_) | ApiError::Conflict(_))) => {
            match list_markup(&state, &v, &caller, Some(&message(&e))).await {
                Ok(r) => r,
                Err(e) => error_page(e),
            }
        }
        Err(e) => error_page(e),
    }
}

fn message(e: &ApiError) -> String {
    match e {
        ApiError::BadRequest(m) | ApiError::Conflict(m) | ApiError::Forbidden(m) => m.clone(),
        other => other.to_string(),
    }
}

// ------------------------------------------------------------------ editor

/// `GET /ui/dashboards/{id}/edit`.
pub async fn edit_page(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
) -> Response {
    let v = Viewer::from_session(&caller);
    let result = async { edit_markup(&state, &v, &caller, id_of(&raw)?, None, None).await }.await;
    result.unwrap_or_else(error_page)
}

fn time_text(ms: Option<i64>) -> String {
    ms.map(crate::wire::utc_text)
        .unwrap_or_else(|| "never".into())
}

async fn edit_markup(
    state: &Arc<AppState>,
    v: &Viewer,
    caller: &SessionCaller,
    id: i64,
    error: Option<&str>,
    issued: Option<&tokens::IssuedToken>,
) -> Result<Response, ApiError> {
    let (d, widgets) = ops::widgets_of(state, v, id).await?;
    let widgets = ops::ordered(&d, widgets);
    let may_write = v.may(Need::Dashboard(Some(id), Level::Write));
    let may_manage = v.may(Need::Dashboard(Some(id), Level::Manage));
    let tokens_list: Vec<TokenRecord> = tokens::list_for(state, v, id).await?;
    let users = state.portal.store.list_users().await?;
    let estate = state.estate.get(&state.portal).await?;
    let devices: Vec<(i64, String)> = estate
        .devices
        .values()
        .filter(|dv| {
            palisade_core::privilege::allows(
                &v.data_privileges,
                &Need::HostGroup(None, Level::Read),
            ) || dv.all_groups.iter().any(|g| {
                palisade_core::privilege::allows(
                    &v.data_privileges,
                    &Need::HostGroup(Some(*g), Level::Read),
                )
            })
        })
        .map(|dv| (dv.doc.id, dv.doc.display_name.clone()))
        .collect();
    let groups: Vec<(i64, String)> = estate
        .groups
        .values()
        .map(|g| {
            (
                g.doc.id,
                if g.full_path.is_empty() {
                    "(root: every device)".to_string()
                } else {
                    g.full_path.clone()
                },
            )
        })
        .collect();
    let csrf = caller.session.record.csrf.clone();
    let base = format!("/ui/dashboards/{id}");
    let owner_name = |uid: i64| {
        users
            .iter()
            .find(|u| u.id == uid)
            .map(|u| u.username.clone())
            .unwrap_or_else(|| format!("user {uid}"))
    };
    let width_select = html! {
        label for="width" { "Width" }
        select name="width" {
            option value="6" selected { "half" }
            option value="12" { "full" }
            option value="4" { "third" }
            option value="3" { "quarter" }
            option value="8" { "two thirds" }
        }
    };
    let timescale_select = html! {
        label { "Time range" }
        select name="timescale" {
            option value="1hour" selected { "1 hour" }
            option value="30min" { "30 minutes" }
            option value="6hour" { "6 hours" }
            option value="1day" { "1 day" }
            option value="7day" { "7 days" }
        }
    };
    Ok(layout(
        state,
        caller,
        &format!("/ui/dashboards/{}/edit", d.id),
        &format!("Dashboard: {}", d.name),
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if let Some(t) = issued {
                section.card.issued #issued-token {
                    h2 { "Widget token issued" }
                    p { "Shown once. Open this address on the wall screen (no sign-in needed); it shows this dashboard only, read-only:" }
                    p { code #wall-url { "/wall#" (t.secret.expose()) } }
                    p { a href={"/wall#" (t.secret.expose())} id="open-wall" target="_blank" rel="noreferrer noopener" { "Open the wall view" } }
                    p.muted { "The token is in the address's fragment (after #): the browser never sends it in the request line, so it stays out of proxy logs and Referer headers. Revoke it below when the screen is retired." }
                }
            }
            p {
                a href=(base) id="view-dashboard" { "View full screen" }
                " · "
                span.muted { "Owner " (d.owner) " · " @if d.sharable { "shared" } @else { "private" } " · you may " (ops::permission(v, &d)) }
            }
            @if may_write {
                section.card {
                    h2 { "Settings" }
                    form method="post" action={(base) "/edit"} id="edit-form" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="edit-name" { "Name" }
                        input type="text" id="edit-name" name="name" value=(d.name) required maxlength="255";
                        label for="edit-description" { "Description" }
                        input type="text" id="edit-description" name="description" value=(d.description) maxlength="4096";
                        @if may_manage {
                            label.check { input type="checkbox" name="private" value="1" checked[!d.sharable]; " Private (only its owner)" }
                        }
                        button type="submit" id="save" { "Save" }
                    }
                }
            }
            section.card {
                h2 { "Widgets" }
                @if widgets.is_empty() { p.muted { "No widgets yet." } }
                ul.widgets #widget-list {
                    @for w in &widgets {
                        li data-widget-id=(w.id) {
                            strong { (w.name) } " " span.muted { (w.spec.lm_type()) " · width " (ops::width(&d, w)) "/12" }
                            @if may_write {
                                form.inline method="post" action={(base) "/widgets/" (w.id) "/delete"} {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.link type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            @if may_write {
                section.card.add {
                    h2 { "Add a widget" }
                    div.forms {
                        form method="post" action={(base) "/widgets"} id="add-graph" {
                            h3 { "Device graph" }
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="type" value="ngraph";
                            label { "Title" } input type="text" name="name" required;
                            label { "Device" }
                            select name="hId" required {
                                @for (id, name) in &devices { option value=(id) { (name) } }
                            }
                            label { "Datasource" } input type="text" name="dsName" required;
                            label { "Instance" } input type="text" name="dsiName" required;
                            label { "Datapoints (comma-separated; empty: all)" } input type="text" name="dataPoints";
                            (timescale_select) (width_select)
                            button type="submit" { "Add graph" }
                        }
                        form method="post" action={(base) "/widgets"} id="add-promql" {
                            h3 { "PromQL graph" }
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="type" value="promql";
                            label { "Title" } input type="text" name="name" required;
                            label { "Expression" } input type="text" name="query" required placeholder="avg by (device) (cpu_busy)";
                            (timescale_select) (width_select)
                            button type="submit" { "Add PromQL graph" }
                        }
                        form method="post" action={(base) "/widgets"} id="add-alerts" {
                            h3 { "Alert list" }
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="type" value="alert";
                            label { "Title" } input type="text" name="name" required;
                            label { "Device group" }
                            select name="group" {
                                option value="*" { "all groups" }
                                @for (id, path) in &groups { option value=(id) { (path) } }
                            }
                            fieldset {
                                legend { "Severities" }
                                label.check { input type="checkbox" name="severity" value="critical" checked; " critical" }
                                label.check { input type="checkbox" name="severity" value="error" checked; " error" }
                                label.check { input type="checkbox" name="severity" value="warn" checked; " warning" }
                            }
                            label.check { input type="checkbox" name="hideAcked" value="1"; " Leave out acknowledged alerts" }
                            (width_select)
                            button type="submit" { "Add alert list" }
                        }
                        form method="post" action={(base) "/widgets"} id="add-health" {
                            h3 { "Device health" }
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="type" value="noc";
                            label { "Title" } input type="text" name="name" required;
                            label { "Device group" }
                            select name="deviceGroupId" required {
                                @for (id, path) in &groups { option value=(id) { (path) } }
                            }
                            (width_select)
                            button type="submit" { "Add device health" }
                        }
                    }
                }
            }
            section.card {
                h2 { "Widget tokens (wall screens)" }
                p.muted { "A widget token shows this dashboard on a screen without signing in: read-only, this dashboard only. Issue one per screen; the token's owner must be able to read the dashboard. Every use is audited with its source address." }
                @if tokens_list.is_empty() {
                    p.muted { "No widget tokens." }
                } @else {
                    table.list #widget-tokens {
                        thead { tr { th { "Id" } th { "Owner" } th { "Note" } th { "Created" } th { "Last used" } th { "From" } th { "Status" } th {} } }
                        tbody {
                            @for t in &tokens_list {
                                tr data-token-id=(t.id) {
                                    td { (t.id) }
                                    td { (owner_name(t.user_id)) }
                                    td { (t.note) }
                                    td { (time_text(Some(t.created_on))) " by " (t.created_by) }
                                    td { (time_text(t.last_used_on)) }
                                    td { (t.last_auth_ip.clone().unwrap_or_default()) }
                                    td { @if t.status == TOKEN_ENABLED { "enabled" } @else { "disabled" } }
                                    td {
                                        @if t.status == TOKEN_ENABLED {
                                            form.inline method="post" action={(base) "/tokens/" (t.id) "/disable"} {
                                                input type="hidden" name="csrf" value=(csrf);
                                                button.link type="submit" { "Disable" }
                                            }
                                            " "
                                        }
                                        form.inline method="post" action={(base) "/tokens/" (t.id) "/delete"} {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.link type="submit" { "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action={(base) "/tokens"} id="issue-token" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="token-note" { "Note (where the screen is)" }
                    input type="text" id="token-note" name="note" maxlength="1024";
                    button type="submit" id="issue" { "Issue a widget token" }
                }
            }
            @if may_manage {
                section.card.danger {
                    h2 { "Delete" }
                    form method="post" action={(base) "/delete"} id="delete-dashboard" {
                        input type="hidden" name="csrf" value=(csrf);
                        p.muted { "Deletes the dashboard, its widgets and its widget tokens." }
                        button.danger type="submit" { "Delete this dashboard" }
                    }
                }
            }
        },
    ))
}

async fn edit_or_error(
    state: &Arc<AppState>,
    v: &Viewer,
    caller: &SessionCaller,
    id: i64,
    e: ApiError,
) -> Response {
    match e {
        ApiError::BadRequest(_) | ApiError::Conflict(_) | ApiError::Forbidden(_) => {
            let mut resp = match edit_markup(state, v, caller, id, Some(&message(&e)), None).await {
                Ok(r) => r,
                Err(e2) => return error_page(e2),
            };
            *resp.status_mut() = e.status();
            resp
        }
        other => error_page(other),
    }
}

/// `POST /ui/dashboards/{id}/edit`.
pub async fn edit_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
    f: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let id = match id_of(&raw) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let result = async {
        let mut b = json!({ "name": f.get("name"), "description": f.get("description") });
        if v.may(Need::Dashboard(Some(id), Level::Manage)) {
            b["sharable"] = json!(!f.checked("private"));
        }
        ops::update(&state, &v, id, &b).await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/ui/dashboards/{id}/edit")),
        Err(e) => edit_or_error(&state, &v, &caller, id, e).await,
    }
}

/// `POST /ui/dashboards/{id}/delete`.
pub async fn delete_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
    _form: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let result = async { ops::delete(&state, &v, id_of(&raw)?).await }.await;
    match result {
        Ok(()) => see_other("/ui/dashboards"),
        Err(e) => error_page(e),
    }
}

/// `POST /ui/dashboards/{id}/widgets`: one of the four add forms.
pub async fn add_widget_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
    f: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let id = match id_of(&raw) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let result = async {
        let kind = f.get("type");
        let mut b = json!({
            "dashboardId": id,
            "name": f.get("name"),
            "type": kind,
            "timescale": match f.get("timescale") { "" => "1hour", t => t },
        });
        match kind {
            "ngraph" => {
                b["hId"] = json!(f.get("hId"));
                b["dsName"] = json!(f.get("dsName"));
                b["dsiName"] = json!(f.get("dsiName"));
                b["dataPoints"] = json!(f.get("dataPoints"));
            }
            "promql" => b["query"] = json!(f.get("query")),
            "alert" => {
                let sev = f.all("severity").join(",");
                b["filters"] = json!({
                    "group": f.get("group"),
                    "severity": if sev.is_empty() { "all".to_string() } else { sev },
                    "acked": if f.checked("hideAcked") { "false" } else { "all" },
                });
            }
            "noc" => b["deviceGroupId"] = json!(f.get("deviceGroupId")),
            _ => {}
        }
        let w = ops::create_widget(&state, &v, &b).await?;
        if let Ok(width) = f.get("width").parse::<i64>() {
            place(&state, &v, id, w.id, width).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/ui/dashboards/{id}/edit")),
        Err(e) => edit_or_error(&state, &v, &caller, id, e).await,
    }
}

/// Puts a new widget on the next row of `widgetsConfig` with the chosen width.
async fn place(
    state: &Arc<AppState>,
    v: &Viewer,
    dashboard: i64,
    widget: i64,
    width: i64,
) -> Result<(), ApiError> {
    let d = ops::get(state, v, dashboard, Level::Write).await?;
    let next_row = d
        .widgets_config
        .values()
        .filter_map(|p| p.get("row").and_then(Value::as_i64))
        .max()
        .map(|r| r + 1)
        .unwrap_or(1);
    let mut config: Map<String, Value> = d.widgets_config.clone();
    config.insert(
        widget.to_string(),
        json!({"col": 1, "row": next_row, "sizex": width.clamp(1, 12), "sizey": 1}),
    );
    ops::update(state, v, dashboard, &json!({ "widgetsConfig": config })).await?;
    Ok(())
}

/// `POST /ui/dashboards/{id}/widgets/{widget}/delete`.
pub async fn delete_widget_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path((raw, raw_widget)): Path<(String, String)>,
    _form: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let id = match id_of(&raw) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let result = async {
        let wid = crate::routes::id(&raw_widget, "widget")?;
        let (d, _) = ops::widget(&state, &v, wid, Level::Write).await?;
        if d.id != id {
            return Err(ApiError::NotFound(format!("widget {wid} not found")));
        }
        ops::delete_widget(&state, &v, wid).await
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/ui/dashboards/{id}/edit")),
        Err(e) => edit_or_error(&state, &v, &caller, id, e).await,
    }
}

/// `POST /ui/dashboards/{id}/tokens`: issues a widget token owned by the signed-in user and
/// shows it once.
pub async fn issue_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(raw): Path<String>,
    f: FormData,
) -> Response {
    let v = Viewer::from_session(&caller);
    let id = match id_of(&raw) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let result = async {
        tokens::issue(
            &state,
            &v,
            IssueRequest {
                dashboard_id: id,
                owner_id: None,
                note: f.get("note").to_string(),
                expires_on: None,
            },
        )
        .await
    }
    .await;
    match result {
        Ok(t) => match edit_markup(&state, &v, &caller, id, None, Some(&t)).await {
            Ok(r) => r,
            Err(e) => error_page(e),
        },
        Err(e) => edit_or_error(&state, &v, &caller, id, e).await,
    }
}

async fn revoke_post(
    state: &Arc<AppState>,
    caller: &SessionCaller,
    raw: &str,
    raw_token: &str,
    how: Revoke,
) -> Response {
    let v = Viewer::from_session(caller);
    let id = match id_of(raw) {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let result = async {
        let tid = crate::routes::id(raw_token, "widget token")?;
        tokens::revoke(state, &v, id, tid, how).await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/ui/dashboards/{id}/edit")),
        Err(e) => edit_or_error(state, &v, caller, id, e).await,
    }
}

/// `POST /ui/dashboards/{id}/tokens/{token}/disable`.
pub async fn disable_token_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path((raw, raw_token)): Path<(String, String)>,
    _form: FormData,
) -> Response {
    revoke_post(&state, &caller, &raw, &raw_token, Revoke::Disable).await
}

/// `POST /ui/dashboards/{id}/tokens/{token}/delete`.
pub async fn delete_token_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path((raw, raw_token)): Path<(String, String)>,
    _form: FormData,
) -> Response {
    revoke_post(&state, &caller, &raw, &raw_token, Revoke::Delete).await
}
