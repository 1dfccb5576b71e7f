//! The page shell: document head (the one stylesheet and script, served by the portal),
//! skip link, header with the signed-in user, the navigation ([`super::NAV`]), the main
//! landmark, and the security headers every page carries (a strict Content-Security-Policy
//! without `unsafe-inline`, no caching, no framing).

use super::assets;
use super::ctx::Ui;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The Content-Security-Policy of every page: scripts and styles only from the portal, no
/// inline script or style, forms only to the portal, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Options of a page.
#[derive(Debug, Clone)]
pub struct PageOpts {
    /// HTTP status (200; errors and refused forms use the API's status).
    pub status: StatusCode,
    /// Reload every this many seconds (wall screens).
    pub refresh_secs: Option<u32>,
    /// A narrow column (forms).
    pub narrow: bool,
    /// Stylesheets of the page's module, after the portal's (served by the portal).
    pub stylesheets: &'static [&'static str],
}

impl Default for PageOpts {
    fn default() -> Self {
        PageOpts {
            status: StatusCode::OK,
            refresh_secs: None,
            narrow: false,
            stylesheets: &[],
        }
    }
}

/// Adds the security headers of a page.
pub fn security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
}

/// An HTML answer with the security headers.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, Html(markup.into_string())).into_response();
    security_headers(&mut resp);
    resp
}

/// The `<head>`.
pub fn head(title: &str, refresh_secs: Option<u32>) -> Markup {
    head_with(title, refresh_secs, &[])
}

/// The `<head>` with the stylesheets of a module after the portal's.
pub fn head_with(title: &str, refresh_secs: Option<u32>, stylesheets: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            @if let Some(s) = refresh_secs { meta http-equiv="refresh" content=(s); }
            title { (title) " · Palisade" }
            link rel="stylesheet" href=(assets::url("palisade.css"));
            @for href in stylesheets { link rel="stylesheet" href=(href); }
            script src=(assets::url("palisade.js")) defer {}
        }
    }
}

fn nav(ui: &Ui) -> Markup {
    let current = super::nav_current(&ui.path);
    html! {
        nav.main aria-label="Main" {
            ul {
                @for item in super::NAV.iter().filter(|i| (i.shown)(ui)) {
                    li {
                        @if Some(item.path) == current {
                            a href=(item.path) aria-current="page" { (item.label) }
                        } @else {
                            a href=(item.path) { (item.label) }
                        }
                    }
                }
            }
        }
    }
}

fn who(ui: &Ui) -> Markup {
    let (wall_href, wall_label) = if ui.wall {
        ("?wall=0", "Normal layout")
    } else {
        ("?wall=1", "Wall screen layout")
    };
    html! {
        div.who {
            span { "Signed in as " strong { (ui.session.user.username) } }
            a href="/account" { "Your account" }
            a href=(wall_href) id="wall-toggle" { (wall_label) }
            form method="post" action="/logout" {
                (ui.csrf())
                button.link type="submit" id="sign-out" { "Sign out" }
            }
        }
    }
}

/// The whole document of a page.
pub fn document(ui: Option<&Ui>, title: &str, body: Markup, opts: &PageOpts) -> Markup {
    let wall = ui.is_some_and(|u| u.wall);
    html! {
        (DOCTYPE)
        html lang="en" class=[wall.then_some("wall")] {
            (head_with(title, opts.refresh_secs, opts.stylesheets))
            body {
                a.skip href="#main" { "Skip to main content" }
                header.top {
                    a.brand href="/ui" { "Palisade" }
                    @if let Some(ui) = ui { (who(ui)) }
                }
                @if let Some(ui) = ui { (nav(ui)) }
                main id="main" tabindex="-1" class=[opts.narrow.then_some("narrow")] {
                    h1 { (title) }
                    (body)
                }
                footer.bottom {
                    p { "Palisade " (env!("CARGO_PKG_VERSION")) " · times are UTC" }
                }
            }
        }
    }
}

/// A page as a response.
pub fn render(ui: Option<&Ui>, title: &str, body: Markup, opts: &PageOpts) -> Response {
    html_response(opts.status, document(ui, title, body, opts))
}
