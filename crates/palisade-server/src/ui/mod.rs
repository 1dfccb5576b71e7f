//! The web UI: server-rendered pages under `/ui` (maud), plain forms, a small script for
//! progressive enhancements, and one stylesheet, all served by the portal itself.
//!
//! - Same sessions, CSRF and authorization as the API: every page sits behind the session
//!   gate ([`crate::signin::gate::page_active`]), every posted form behind the CSRF guard
//!   ([`csrf::guard`]); pages read through the functions the REST handlers use, with the
//!   user's privileges as of the request, and change things through [`ctx::Ui::act`], which
//!   runs the REST handler (or the operation it calls) and writes the same audit records
//!   as the corresponding API call.
//! - Adding a page: a module here with its handlers (take [`ctx::Ui`], build the body with
//!   [`components`], answer with [`ctx::Ui::page`] / [`ctx::Ui::respond`]), a line in
//!   [`NAV`] if it belongs in the navigation, and its routes in [`routes`].
//! - Errors become HTML pages with the API's status ([`error`]); unknown `/ui` paths get
//!   an HTML 404.
//! - `?wall=1` switches to the wall-screen layout (large text, high contrast, periodic
//!   refresh of the overview and alert pages), remembered in a cookie; `?wall=0` leaves it.

pub mod assets;
pub mod components;
pub mod csrf;
pub mod ctx;
pub mod error;
pub mod graph;
pub mod layout;

mod alerts;
mod audit;
mod collectors;
mod compliance;
mod data;
mod device_new;
mod devices;
mod groups;
mod overview;
mod sdts;
mod settings;
mod token_migration;
mod tokens;
mod users;

use crate::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ctx::Ui;
use palisade_core::privilege::{Level, Need, SettingObject};
use std::sync::Arc;

/// An entry of the navigation.
#[derive(Debug, Clone, Copy)]
pub struct NavItem {
    /// Where it leads.
    pub path: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether this user sees it (pages check privileges again).
    pub shown: fn(&Ui) -> bool,
}

fn always(_: &Ui) -> bool {
    true
}
fn hosts(ui: &Ui) -> bool {
    ui.can_hosts(Level::Read)
}
fn collectors_read(ui: &Ui) -> bool {
    ui.can_collectors(Level::Read)
}
fn users_read(ui: &Ui) -> bool {
    ui.can(Need::Setting(SettingObject::UserAccess, Level::Read))
}
fn compliance_read(ui: &Ui) -> bool {
    ui.can(Need::Setting(SettingObject::Compliance, Level::Read))
}
fn audit_read(ui: &Ui) -> bool {
    ui.can(Need::Setting(SettingObject::AccessLogs, Level::Read))
}

/// The navigation, in order: the one list of pages.
pub const NAV: &[NavItem] = &[
    NavItem {
        path: "/ui",
        label: "Overview",
        shown: always,
    },
    NavItem {
        path: "/ui/devices",
        label: "Devices",
        shown: hosts,
    },
    NavItem {
        path: "/ui/alerts",
        label: "Alerts",
        shown: hosts,
    },
    NavItem {
        path: "/ui/sdts",
        label: "Downtime",
        shown: hosts,
    },
    NavItem {
        path: "/ui/dashboards",
        label: "Dashboards",
        shown: always,
    },
    NavItem {
        path: "/ui/collectors",
        label: "Collectors",
        shown: collectors_read,
    },
    NavItem {
        path: "/ui/users",
        label: "Users & roles",
        shown: users_read,
    },
    NavItem {
        path: "/ui/tokens",
        label: "API tokens",
        shown: users_read,
    },
    NavItem {
        path: "/ui/audit",
        label: "Audit log",
        shown: audit_read,
    },
    NavItem {
        path: "/ui/compliance",
        label: "Compliance",
        shown: compliance_read,
    },
    NavItem {
        path: "/ui/settings",
        label: "Settings",
        shown: users_read,
    },
];

/// The navigation entry a path belongs to (the longest matching prefix).
pub fn nav_current(path: &str) -> Option<&'static str> {
    let section = match path {
        p if p.starts_with("/ui/groups") => "/ui/devices",
        p if p.starts_with("/ui/roles") => "/ui/users",
        p => p,
    };
    NAV.iter()
        .map(|i| i.path)
        .filter(|p| section == *p || section.starts_with(&format!("{p}/")))
        .max_by_key(|p| p.len())
}

/// The pages and their assets. Pages sit behind the session gate (signed-in sessions
/// only; others are sent to sign in, enrol or change their password) and the CSRF guard.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    use axum::middleware::{from_fn, from_fn_with_state as mw};
    let pages = Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/devices", get(devices::list))
        .route(
            "/ui/devices/new",
            get(device_new::new_form).post(device_new::create),
        )
        .route("/ui/devices/{id}", get(devices::show))
        .route("/ui/devices/{id}/properties", post(devices::set_property))
        .route("/ui/devices/{id}/delete", post(devices::delete))
        .route(
            "/ui/groups/new",
            get(groups::new_group_form).post(groups::create_group),
        )
        .route("/ui/groups/{id}", get(groups::group))
        .route("/ui/alerts", get(alerts::list))
        .route("/ui/alerts/{id}", get(alerts::show))
        .route("/ui/alerts/{id}/ack", post(alerts::ack))
        .route("/ui/alerts/{id}/note", post(alerts::note))
        .route("/ui/sdts", get(sdts::list))
        .route("/ui/sdts/new", get(sdts::new_form).post(sdts::create))
        .route("/ui/sdts/{id}/delete", post(sdts::delete))
        .route("/ui/collectors", get(collectors::list))
        .route(
            "/ui/collectors/new",
            get(collectors::new_form).post(collectors::create),
        )
        .route("/ui/collectors/{id}", get(collectors::show))
        .route("/ui/users", get(users::list))
        .route("/ui/users/new", get(users::new_form).post(users::create))
        .route("/ui/users/{id}", get(users::show))
        .route("/ui/roles", get(users::roles))
        .route(
            "/ui/roles/new",
            get(users::new_role_form).post(users::create_role),
        )
        .route("/ui/tokens", get(tokens::list))
        .route("/ui/tokens/new", get(tokens::new_form).post(tokens::create))
        .route("/ui/tokens/{id}/status", post(tokens::set_status))
        .route("/ui/tokens/{id}/delete", post(tokens::delete))
        .route(
            "/ui/tokens/{id}/migrate",
            get(token_migration::page).post(token_migration::start),
        )
        .route(
            "/ui/tokens/{id}/migrate/disable",
            post(token_migration::disable),
        )
        .route(
            "/ui/tokens/{id}/migrate/finish",
            post(token_migration::finish),
        )
        .route("/ui/compliance", get(compliance::page))
        .route("/ui/compliance/report.html", get(compliance::printable))
        .route("/ui/audit", get(audit::list))
        .route("/ui/audit/report.csv", get(audit::csv))
        .route("/ui/audit/report.html", get(audit::report))
        .route("/ui/settings", get(settings::page).post(settings::save))
        .route_layer(mw(state.clone(), csrf::guard))
        .route_layer(mw(state, crate::signin::gate::page_active));
    let assets = Router::new().route("/ui/assets/{name}", get(assets::serve));
    pages.merge(assets).layer(from_fn(wall_cookie))
}

/// Remembers `?wall=1` (and forgets it on `?wall=0`) in a cookie, so wall mode survives
/// navigation.
async fn wall_cookie(req: Request, next: Next) -> Response {
    let wanted = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "wall")
            .map(|(_, v)| v == "1" || v.eq_ignore_ascii_case("true"))
    });
    let mut resp = next.run(req).await;
    if let Some(on) = wanted {
        let v = if on {
            format!(
                "{}=1; Path=/; SameSite=Lax; HttpOnly; Max-Age=31536000",
                ctx::WALL_COOKIE
            )
        } else {
            format!(
                "{}=; Path=/; SameSite=Lax; HttpOnly; Max-Age=0",
                ctx::WALL_COOKIE
            )
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn nav_sections() {
        assert_eq!(super::nav_current("/ui"), Some("/ui"));
        assert_eq!(super::nav_current("/ui/devices/4"), Some("/ui/devices"));
        assert_eq!(super::nav_current("/ui/groups/2"), Some("/ui/devices"));
        assert_eq!(super::nav_current("/ui/roles"), Some("/ui/users"));
        assert_eq!(
            super::nav_current("/ui/audit/report.html"),
            Some("/ui/audit")
        );
        assert!(super::NAV.iter().any(|n| n.path == "/ui/compliance"));
        assert!(super::NAV.iter().any(|n| n.path == "/ui/dashboards"));
    }
}
