//! The compliance center: per mandate its score and findings (object, since when, severity,
//! and the fix as a web UI link, an API call and a command), the exports and the score
//! history. Reads the same report as `GET /api/compliance` and needs the same privilege
//! (`setting:compliance:read`).

use super::components::{self as c, Tone};
use super::ctx::Ui;
use crate::compliance;
use crate::error::ApiError;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::compliance::{Finding, Section, Severity};
use palisade_core::privilege::{Level, Need, SettingObject};

const READ: Need = Need::Setting(SettingObject::Compliance, Level::Read);

fn severity_badge(s: Severity) -> Markup {
    let tone = match s {
        Severity::Critical | Severity::High => Tone::Bad,
        Severity::Medium => Tone::Warn,
        Severity::Low => Tone::Neutral,
    };
    c::badge(tone, s.as_str())
}

fn score_badge(score: f64) -> Markup {
    let tone = if score >= 100.0 {
        Tone::Good
    } else if score >= 80.0 {
        Tone::Warn
    } else {
        Tone::Bad
    };
    c::badge(tone, &format!("{score:.1}%"))
}

fn finding_row(f: &Finding) -> Markup {
    html! {
        tr id={"finding-" (f.object.kind.as_str()) "-" (f.object.id)} {
            th scope="row" {
                (f.object.kind.as_str()) " "
                a href=(f.fix.link) { (f.object.name) }
                br; span.muted { code { (f.id) } }
            }
            td { (c::time(Some(f.since.saturating_mul(1000)))) }
            td { (severity_badge(f.severity)) }
            td.wrap { (f.detail) }
            td.wrap {
                p { (f.fix.action) }
                p { a href=(f.fix.link) { "Open in the web UI" } }
                @if let Some(api) = &f.fix.api {
                    p { "API: " code { (api.method) " " (api.path) }
                        @if let Some(b) = &api.body { " " code { (b.to_string()) } }
                        @if let Some(n) = &api.note { br; span.muted { (n) } }
                    }
                }
                @if let Some(cli) = &f.fix.cli { p { "CLI: " code { (cli) } } }
            }
        }
    }
}

async fn body(ui: &Ui) -> Result<Markup, ApiError> {
    ui.require(READ)?;
    let report = compliance::report(&ui.state.portal).await?;
    let history = compliance::history(&ui.state.portal, None).await?;
    Ok(html! {
        p id="overall" { "Overall: " (score_badge(report.overall.score)) " "
            (report.overall.compliant) " of " (report.overall.total) " objects compliant (report of "
            (c::time(Some(report.generated_on.saturating_mul(1000)))) ")." }
        div.actions {
            a.button.secondary href="/api/compliance?format=csv" id="export-csv" { "Export CSV" }
            a.button.secondary href="/api/compliance?format=json" id="export-json" { "Export JSON" }
            a.button.secondary href="/api/compliance/history?format=csv" id="export-history" { "Score history (CSV)" }
            a.button.secondary href="/ui/compliance/report.html" id="export-html" { "Printable report" }
        }
        @for s in &report.sections {
            @let findings: Vec<&Finding> = report.findings.iter().filter(|f| f.section == s.id).collect();
            section id={"section-" (s.id.id())} aria-labelledby={"h-" (s.id.id())} {
                h2 id={"h-" (s.id.id())} { "Mandate " (s.mandate) ": " (s.title) }
                p { (score_badge(s.score)) " " (s.compliant) " of " (s.total) " compliant; "
                    (s.findings) " finding(s), " (s.excepted) " excepted, " (s.exempt) " exempt." }
                @if findings.is_empty() {
                    p.no-findings { (c::badge(Tone::Good, "no finding")) }
                } @else {
                    (c::table(&format!("findings-{}", s.id.id()), &format!("Findings: {}", s.title),
                        &["Object", "Since", "Severity", "What", "Fix"],
                        html! { @for f in &findings { (finding_row(f)) } }))
                }
            }
        }
        @if !report.excepted.is_empty() {
            section id="excepted" {
                h2 { "Exceptions" }
                (c::table("exceptions", "Excepted objects", &["Object", "Rule", "Justification", "Expires"], html! {
                    @for e in &report.excepted {
                        tr {
                            th scope="row" { (e.object.kind.as_str()) " " (e.object.name) }
                            td { (e.detail) }
                            td.wrap { (e.exception.justification) }
                            td { (c::time(e.exception.expires_on.map(|t| t.saturating_mul(1000)))) }
                        }
                    }
                }))
            }
        }
        section id="history" {
            h2 { "Score history" }
            @if history.is_empty() {
                p { "No snapshot yet." }
            } @else {
                @let ids: Vec<&'static str> = Section::ALL.iter().map(|s| s.id()).collect();
                @let headers: Vec<&str> = ["Taken", "Trigger", "Overall"].into_iter().chain(ids.iter().copied()).collect();
                (c::table("score-history", "Scores over time, newest first", &headers, html! {
                    @for snap in history.iter().rev().take(60) {
                        tr {
                            th scope="row" { (c::time(Some(snap.taken_on))) }
                            td { (snap.trigger) }
                            td { (format!("{:.1}%", snap.overall.score)) }
                            @for id in &ids {
                                td { @match snap.sections.iter().find(|x| x.id == *id) {
                                    Some(x) => (format!("{:.1}%", x.score)),
                                    None => span.muted { "—" },
                                } }
                            }
                        }
                    }
                }))
            }
        }
    })
}

/// `GET /ui/compliance/report.html`: the compliance report as a standalone page made for
/// printing (print CSS), beside its CSV export (`/api/compliance?format=csv`).
pub(crate) async fn printable(ui: Ui) -> Response {
    let r = async {
        ui.require(READ)?;
        let report = compliance::report(&ui.state.portal).await?;
        let now = ui.state.portal.now();
        let markup = html! {
            (maud::DOCTYPE)
            html lang="en" {
                (super::layout::head("Compliance report", None))
                body.report {
                    main id="main" {
                        h1 { "Palisade compliance report" }
                        dl.facts {
                            dt { "Generated" } dd { (crate::wire::utc_text(now)) }
                            dt { "By" } dd { (ui.session.user.username) }
                            dt { "Overall" } dd id="report-overall" {
                                (format!("{:.1}%", report.overall.score)) ", "
                                (report.overall.compliant) " of " (report.overall.total) " objects compliant" }
                            dt { "Findings" } dd id="report-count" { (report.findings.len()) }
                        }
                        p.no-print { a href="/ui/compliance" { "Back to the compliance center" } " · use your browser's Print to save it as PDF." }
                        @for s in &report.sections {
                            @let findings: Vec<&Finding> = report.findings.iter().filter(|f| f.section == s.id).collect();
                            section {
                                h2 { "Mandate " (s.mandate) ": " (s.title) " — " (format!("{:.1}%", s.score)) }
                                @if findings.is_empty() {
                                    p { "No finding." }
                                } @else {
                                    (c::table(&format!("report-{}", s.id.id()), s.title,
                                        &["Object", "Since", "Severity", "What", "Fix"],
                                        html! { @for f in &findings { (finding_row(f)) } }))
                                }
                            }
                        }
                    }
                }
            }
        };
        Ok(super::layout::html_response(axum::http::StatusCode::OK, markup))
    }
    .await;
    ui.respond(r)
}

/// `GET /ui/compliance`.
pub(crate) async fn page(ui: Ui) -> Response {
    let r = async { Ok(ui.page("Compliance", body(&ui).await?)) }.await;
    ui.respond(r)
}
