//! The audit log: newest first, filtered by user, action, path, source address and date
//! range; exported with the same filters as CSV (`/ui/audit/report.csv`) and as a printable
//! HTML report (`/ui/audit/report.html`). Needs `setting:accesslogs:read`, like
//! `/setting/accesslogs`; reading the log is itself recorded (exports as `audit.export`).

use super::components::{self as c, Field, Query};
use super::ctx::Ui;
use super::layout;
use crate::error::ApiError;
use crate::routes::accesslogs::SEARCH_WINDOW;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, DOCTYPE};
use palisade_core::privilege::{Level, Need, SettingObject};
use palisade_store::AuditEntry;

const READ: Need = Need::Setting(SettingObject::AccessLogs, Level::Read);
const PAGE: usize = 100;

/// The filters of the page and of both exports.
#[derive(Debug, Clone, Default)]
struct Filter {
    user: String,
    action: String,
    path: String,
    ip: String,
    from_ms: Option<i64>,
    /// Exclusive: the day after the `to` date.
    to_ms: Option<i64>,
}

impl Filter {
    fn from(q: &Query) -> Result<Filter, ApiError> {
        let date = |name: &str| -> Result<Option<i64>, ApiError> {
            match q.get(name) {
                "" => Ok(None),
                d => crate::settings::parse_date_ms(d).map(Some).ok_or_else(|| {
                    ApiError::BadRequest(format!("`{name}` must be a date YYYY-MM-DD"))
                }),
            }
        };
        let f = Filter {
            user: q.get("user").to_lowercase(),
            action: q.get("action").to_lowercase(),
            path: q.get("path").to_lowercase(),
            ip: q.get("ip").to_string(),
            from_ms: date("from")?,
            to_ms: date("to")?.map(|d| d + 86_400_000),
        };
        if let (Some(a), Some(b)) = (f.from_ms, f.to_ms) {
            if b <= a {
                return Err(ApiError::BadRequest(
                    "the `to` date is before the `from` date".into(),
                ));
            }
        }
        Ok(f)
    }

    fn is_empty(&self) -> bool {
        self.user.is_empty()
            && self.action.is_empty()
            && self.path.is_empty()
            && self.ip.is_empty()
            && self.from_ms.is_none()
            && self.to_ms.is_none()
    }

    fn matches(&self, e: &AuditEntry) -> bool {
        let ev = &e.event;
        (self.user.is_empty() || ev.username.to_lowercase().contains(&self.user))
            && (self.action.is_empty() || ev.action.to_lowercase().contains(&self.action))
            && (self.path.is_empty() || ev.path.to_lowercase().contains(&self.path))
            && (self.ip.is_empty() || ev.ip.contains(&self.ip))
            && self.from_ms.is_none_or(|f| ev.happened_on_ms >= f)
            && self.to_ms.is_none_or(|t| ev.happened_on_ms < t)
    }

    fn describe(&self, q: &Query) -> String {
        let parts: Vec<String> = ["user", "action", "path", "ip", "from", "to"]
            .iter()
            .filter(|k| !q.get(k).is_empty())
            .map(|k| format!("{k}={}", q.get(k)))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What a search found.
struct Found {
    /// The requested page of matches.
    entries: Vec<AuditEntry>,
    /// Matches counted (all of them when `complete`).
    matched: usize,
    /// Whether the whole window was searched (else it stopped after the page).
    complete: bool,
}

/// Entries matching the filter, newest first, skipping `skip` and keeping at most `limit`.
/// With `stop_early`, the search ends once the page is full and one more match is known
/// (a page needs no total); exports search the whole window.
async fn search(
    ui: &Ui,
    f: &Filter,
    skip: usize,
    limit: usize,
    stop_early: bool,
) -> Result<Found, ApiError> {
    let state = ui.state();
    state.audit.flush().await;
    let store = &state.portal.store;
    if f.is_empty() {
        let (total, _) = store.audit_head().await?;
        let before = total
            .saturating_sub(i64::try_from(skip).unwrap_or(i64::MAX))
            .saturating_add(1);
        let entries = store
            .list_audit(Some(before), i64::try_from(limit).unwrap_or(PAGE as i64))
            .await?;
        return Ok(Found {
            entries,
            matched: usize::try_from(total).unwrap_or(0),
            complete: true,
        });
    }
    let mut out = Vec::new();
    let mut matched = 0usize;
    let mut searched = 0i64;
    let mut before = None;
    let mut complete = true;
    'pages: while searched < SEARCH_WINDOW {
        let page = store.list_audit(before, 2000).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.seq);
        searched += page.len() as i64;
        for e in page {
            if f.from_ms.is_some_and(|from| e.event.happened_on_ms < from) {
                break 'pages;
            }
            if f.matches(&e) {
                if matched >= skip && out.len() < limit {
                    out.push(e);
                }
                matched += 1;
                if stop_early && matched > skip + limit {
                    complete = false;
                    break 'pages;
                }
            }
        }
    }
    Ok(Found {
        entries: out,
        matched,
        complete,
    })
}

/// Records that the log was read, as the API gate records reads (`GET
/// /setting/accesslogs`, without waiting for the write); exports as `audit.export`.
fn note_read(ui: &Ui, q: &Query, export: Option<(&str, usize)>) {
    let query = q.with("offset", "");
    let path = if query.is_empty() {
        "/santaba/rest/setting/accesslogs".to_string()
    } else {
        format!("/santaba/rest/setting/accesslogs?{query}")
    };
    let actor = ui.caller("GET", &path).actor;
    let now = ui.state.portal.now();
    let mut e = match export {
        None => actor.event(
            now,
            "api.call",
            format!(
                "API call GET {path} -> 200 via session (web UI {})",
                ui.path
            ),
        ),
        Some((format, n)) => actor.event(
            now,
            "audit.export",
            format!(
                "Exported {n} audit entries as {format} (web UI {})",
                ui.path
            ),
        ),
    };
    e.status = Some(200);
    ui.state.audit.record_nowait(e);
}

fn filter_form(q: &Query) -> maud::Markup {
    c::filters(
        "/ui/audit",
        "Filter the audit log",
        html! {
            div { (c::input("f-user", "user", "User contains", q.get("user"), Field { kind: "search", ..Default::default() })) }
            div { (c::input("f-action", "action", "Action contains", q.get("action"), Field { kind: "search", hint: "e.g. token., signin., api.denied", ..Default::default() })) }
            div { (c::input("f-path", "path", "Path contains", q.get("path"), Field { kind: "search", ..Default::default() })) }
            div { (c::input("f-ip", "ip", "Source address contains", q.get("ip"), Field { kind: "search", ..Default::default() })) }
            div { (c::input("f-from", "from", "From (UTC date)", q.get("from"), Field { kind: "date", ..Default::default() })) }
            div { (c::input("f-to", "to", "To (UTC date, inclusive)", q.get("to"), Field { kind: "date", ..Default::default() })) }
        },
    )
}

fn rows(entries: &[AuditEntry]) -> maud::Markup {
    html! {
        @for e in entries {
            @let ev = &e.event;
            tr {
                th scope="row" { (e.seq) }
                td { (c::time(Some(ev.happened_on_ms))) }
                td { (ev.username) }
                td { code { (ev.action) } }
                td.wrap { @if !ev.method.is_empty() { (ev.method) " " } (ev.path) }
                td { @if let Some(s) = ev.status { (s) } }
                td { (ev.ip) }
                td.wrap { (ev.description) }
            }
        }
    }
}

const HEADERS: [&str; 8] = [
    "#",
    "Time (UTC)",
    "User",
    "Action",
    "Request",
    "Status",
    "From",
    "Description",
];

/// `GET /ui/audit`.
pub(crate) async fn list(ui: Ui, q: Query) -> Response {
    let r = async {
        ui.require(READ)?;
        let f = match Filter::from(&q) {
            Ok(f) => f,
            Err(e) => {
                let body = html! { (filter_form(&q)) p.error role="alert" { (super::error::message(&e)) } };
                return Ok(ui.page_with("Audit log", body, layout::PageOpts { status: e.status(), ..Default::default() }));
            }
        };
        let offset = q
            .num("offset")
            .and_then(|o| usize::try_from(o).ok())
            .unwrap_or(0);
        let found = search(&ui, &f, offset, PAGE, true).await?;
        note_read(&ui, &q, None);
        let (entries, total, complete) = (found.entries, found.matched, found.complete);
        let count = if complete {
            format!("{total} entries")
        } else {
            format!("more than {} entries", total - 1)
        };
        let export_q = q.with("offset", "");
        let sep = if export_q.is_empty() { "" } else { "?" };
        let body = html! {
            (filter_form(&q))
            div.actions {
                a.button.secondary href={"/ui/audit/report.csv" (sep) (export_q)} id="export-csv" download { "Export CSV" }
                a.button.secondary href={"/ui/audit/report.html" (sep) (export_q)} id="export-html" { "Printable report" }
            }
            p.muted { "Entries form a hash chain: " code { "palisade audit verify" } " reports the first entry that was changed or removed. Filtered searches cover the newest " (SEARCH_WINDOW) " entries." }
            (c::table("audit", &format!("Audit log: {count}"), &HEADERS, rows(&entries)))
            @if entries.is_empty() { p id="no-entries" { "No entry matches." } }
            @if complete { (c::pager("/ui/audit", &q, offset.min(total), PAGE, total)) }
            @else { (c::pager_open("/ui/audit", &q, offset, entries.len())) }
        };
        Ok(ui.page("Audit log", body))
    }
    .await;
    ui.respond(r)
}

/// A CSV cell: quoted, quotes doubled, and formula-looking text neutralised for
/// spreadsheets.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn stamp(ms: i64) -> String {
    crate::wire::utc_text(ms)
        .get(..10)
        .unwrap_or_default()
        .replace('-', "")
}

/// `GET /ui/audit/report.csv`.
pub(crate) async fn csv(ui: Ui, q: Query) -> Response {
    let r = async {
        ui.require(READ)?;
        let f = Filter::from(&q)?;
        let entries = search(&ui, &f, 0, SEARCH_WINDOW as usize, false)
            .await?
            .entries;
        note_read(&ui, &q, Some(("CSV", entries.len())));
        let mut out = String::with_capacity(entries.len() * 200 + 128);
        out.push_str("id,time_utc,username,ip,action,method,path,status,description,user_agent,token_id,hash\r\n");
        for e in &entries {
            let ev = &e.event;
            let fields = [
                e.seq.to_string(),
                crate::wire::utc_text(ev.happened_on_ms),
                ev.username.clone(),
                ev.ip.clone(),
                ev.action.clone(),
                ev.method.clone(),
                ev.path.clone(),
                ev.status.map(|s| s.to_string()).unwrap_or_default(),
                ev.description.clone(),
                ev.user_agent.clone(),
                ev.token_id.map(|t| t.to_string()).unwrap_or_default(),
                e.hash.clone(),
            ];
            let line: Vec<String> = fields.iter().map(|s| cell(s)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        let mut resp = (StatusCode::OK, out).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"palisade-audit-{}.csv\"",
            stamp(ui.state.portal.now())
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        Ok(resp)
    }
    .await;
    ui.respond(r)
}

/// `GET /ui/audit/report.html`: a standalone page made for printing (print CSS).
pub(crate) async fn report(ui: Ui, q: Query) -> Response {
    let r = async {
        ui.require(READ)?;
        let f = Filter::from(&q)?;
        let entries = search(&ui, &f, 0, SEARCH_WINDOW as usize, false)
            .await?
            .entries;
        note_read(&ui, &q, Some(("HTML report", entries.len())));
        let now = ui.state.portal.now();
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (layout::head("Audit report", None))
                body.report {
                    main id="main" {
                        h1 { "Palisade audit report" }
                        dl.facts {
                            dt { "Generated" } dd { (crate::wire::utc_text(now)) }
                            dt { "By" } dd { (ui.session.user.username) }
                            dt { "Filters" } dd id="report-filters" { (f.describe(&q)) }
                            dt { "Entries" } dd id="report-count" { (entries.len()) }
                        }
                        p.no-print { a href={"/ui/audit?" (q.with("offset", ""))} { "Back to the audit log" } " · use your browser's Print to save it as PDF." }
                        (c::table("report", "Audit entries, newest first", &HEADERS, rows(&entries)))
                    }
                }
            }
        };
        Ok(layout::html_response(StatusCode::OK, markup))
    }
    .await;
    ui.respond(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(super::cell("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::cell("=SUM(A1)"), "\"'=SUM(A1)\"");
        assert_eq!(super::cell("plain"), "\"plain\"");
    }
}
