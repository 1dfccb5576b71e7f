//! The report as CSV (one row per finding, excepted and exempt object) and as text.

use super::{date_text, Report};
use std::fmt::Write as _;

/// The CSV header.
pub const CSV_HEADER: [&str; 18] = [
    "status",
    "section",
    "mandate",
    "rule",
    "severity",
    "objectKind",
    "objectId",
    "objectName",
    "since",
    "sinceUtc",
    "daysLeft",
    "detail",
    "fixAction",
    "fixLink",
    "fixApiMethod",
    "fixApiPath",
    "fixApiBody",
    "fixCli",
];

/// One CSV cell (RFC 4180 quoting). Text that a spreadsheet would read as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`: names
/// come from users.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn row(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The report as CSV: a header, then one row per finding (`status` `finding`), excepted
/// object (`excepted`) and exempt object (`exempt`).
pub fn to_csv(report: &Report) -> String {
    let mut out = String::new();
    row(
        &mut out,
        &CSV_HEADER.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    for f in &report.findings {
        let api = f.fix.api.as_ref();
        row(
            &mut out,
            &[
                "finding".into(),
                f.section.id().into(),
                f.mandate.to_string(),
                f.rule.id().into(),
                f.severity.as_str().into(),
                f.object.kind.as_str().into(),
                f.object.id.to_string(),
                f.object.name.clone(),
                f.since.to_string(),
                utc(f.since),
                f.days_left.map(|d| d.to_string()).unwrap_or_default(),
                f.detail.clone(),
                f.fix.action.clone(),
                f.fix.link.clone(),
                api.map(|a| a.method.to_string()).unwrap_or_default(),
                api.map(|a| a.path.clone()).unwrap_or_default(),
                api.and_then(|a| a.body.as_ref())
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                f.fix.cli.clone().unwrap_or_default(),
            ],
        );
    }
    for e in &report.excepted {
        let until = e
            .exception
            .expires_on
            .map(|t| format!("until {}", date_text(t.saturating_mul(1000))))
            .unwrap_or_else(|| "no end".into());
        row(
            &mut out,
            &[
                "excepted".into(),
                e.section.id().into(),
                e.section.mandate().to_string(),
                e.rule.id().into(),
                String::new(),
                e.object.kind.as_str().into(),
                e.object.id.to_string(),
                e.object.name.clone(),
                e.exception.created_on.to_string(),
                utc(e.exception.created_on),
                String::new(),
                format!(
                    "{}; exception by {} on {} ({until}): {}",
                    e.detail,
                    e.exception.created_by,
                    date_text(e.exception.created_on.saturating_mul(1000)),
                    e.exception.justification
                ),
                String::new(),
                format!("/ui/{}/{}", e.object.kind.ui_segment(), e.object.id),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        );
    }
    for e in &report.exempt {
        let mut cells = vec![String::new(); CSV_HEADER.len()];
        let values = [
            (0, "exempt".to_string()),
            (1, e.section.id().into()),
            (2, e.section.mandate().to_string()),
            (5, e.object.kind.as_str().into()),
            (6, e.object.id.to_string()),
            (7, e.object.name.clone()),
            (11, e.reason.clone()),
        ];
        for (i, v) in values {
            if let Some(c) = cells.get_mut(i) {
                *c = v;
            }
        }
        row(&mut out, &cells);
    }
    out
}

/// The report as text for a terminal.
pub fn to_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Palisade compliance report, {} — overall {}/{} compliant ({:.1}%)",
        utc(report.generated_on),
        report.overall.compliant,
        report.overall.total,
        report.overall.score
    );
    for s in &report.sections {
        let _ = writeln!(
            out,
            "\n== {} (mandate {}): {}/{} compliant ({:.1}%), {} finding(s), {} excepted, {} exempt",
            s.title, s.mandate, s.compliant, s.total, s.score, s.findings, s.excepted, s.exempt
        );
        for f in report.findings.iter().filter(|f| f.section == s.id) {
            let _ = writeln!(
                out,
                "  [{}] {} {} `{}` since {}: {}",
                f.severity.as_str(),
                f.object.kind.as_str(),
                f.object.id,
                f.object.name,
                date_text(f.since.saturating_mul(1000)),
                f.detail
            );
            let _ = writeln!(out, "      rule:   {}", f.rule.id());
            let _ = writeln!(out, "      fix:    {}", f.fix.action);
            let _ = writeln!(out, "      ui:     {}", f.fix.link);
            if let Some(a) = &f.fix.api {
                let body = a.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
                let _ = writeln!(out, "      api:    {} {}{body}", a.method, a.path);
                if let Some(n) = &a.note {
                    let _ = writeln!(out, "              ({n})");
                }
            }
            if let Some(c) = &f.fix.cli {
                let _ = writeln!(out, "      cli:    {c}");
            }
        }
        for e in report.excepted.iter().filter(|e| e.section == s.id) {
            let until = e
                .exception
                .expires_on
                .map(|t| format!("until {}", date_text(t.saturating_mul(1000))))
                .unwrap_or_else(|| "no end".into());
            let _ = writeln!(
                out,
                "  [excepted] {} {} `{}`: exception by {} on {} ({until}): {}",
                e.object.kind.as_str(),
                e.object.id,
                e.object.name,
                e.exception.created_by,
                date_text(e.exception.created_on.saturating_mul(1000)),
                e.exception.justification
            );
        }
        for e in report.exempt.iter().filter(|e| e.section == s.id) {
            let _ = writeln!(
                out,
                "  [exempt] {} {} `{}`: {}",
                e.object.kind.as_str(),
                e.object.id,
                e.object.name,
                e.reason
            );
        }
    }
    if report.sso.restrict || !report.sso.break_glass.is_empty() {
        let _ = writeln!(
            out,
            "\nsso.restrict = {}; break-glass accounts: {}",
            report.sso.restrict,
            if report.sso.break_glass.is_empty() {
                "none".to_string()
            } else {
                report.sso.break_glass.join(", ")
            }
        );
        if !report.sso.unknown_break_glass.is_empty() {
            let _ = writeln!(
                out,
                "  sso.break_glass names no user: {}",
                report.sso.unknown_break_glass.join(", ")
            );
        }
    }
    out
}
