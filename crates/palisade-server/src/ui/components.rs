//! Building blocks of pages: labelled form fields, filter forms, tables with headers, badges
//! that say their status in words, times, pagers and the parsed body of a posted form.
//!
//! Every input gets a `<label for>`; errors are announced (`role="alert"`); tables have a
//! caption and column headers; status is a word and a symbol, never a colour alone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use maud::{html, Markup};

// ---------------------------------------------------------------- posted forms

/// The fields of a posted form (`application/x-www-form-urlencoded`), in order. Only the
/// CSRF guard ([`super::csrf`]) creates it, after checking the session's token: a handler
/// that takes `FormData` cannot run on a forged request.
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of a field, trimmed (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of a field as given (not trimmed: passwords and secrets).
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FormData {
    type Rejection = axum::response::Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<FormData>() {
            Some(f) => Ok(f.clone()),
            None => Err(super::error::page(
                None,
                &crate::error::ApiError::Internal(
                    "form handler is not behind the CSRF guard".into(),
                ),
            )),
        }
    }
}

/// Query parameters of a page (lenient: unknown or malformed ones are ignored).
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// A parameter, trimmed (empty when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// A numeric parameter.
    pub fn num(&self, name: &str) -> Option<i64> {
        self.get(name).parse().ok()
    }

    /// The query string again, with `name` replaced (or removed when `value` is empty).
    pub fn with(&self, name: &str, value: &str) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if k != name && k != "wall" && !v.is_empty() {
                out.append_pair(k, v);
            }
        }
        if !value.is_empty() {
            out.append_pair(name, value);
        }
        out.finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        Ok(Query(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .take(64)
                .collect(),
        ))
    }
}

// ---------------------------------------------------------------- fields

/// How a text field behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Field<'a> {
    /// `type` (text when empty).
    pub kind: &'a str,
    /// Required.
    pub required: bool,
    /// Help under the label.
    pub hint: &'a str,
    /// `autocomplete` (off when empty).
    pub autocomplete: &'a str,
    /// `placeholder`.
    pub placeholder: &'a str,
    /// Marked invalid (after an error about it).
    pub invalid: bool,
}

/// A labelled input.
pub fn input(id: &str, name: &str, label: &str, value: &str, f: Field<'_>) -> Markup {
    let kind = if f.kind.is_empty() { "text" } else { f.kind };
    let hint_id = format!("{id}-hint");
    let auto = if f.autocomplete.is_empty() {
        "off"
    } else {
        f.autocomplete
    };
    html! {
        label for=(id) { (label) @if f.required { " " span.muted { "(required)" } } }
        @if !f.hint.is_empty() { span.hint id=(hint_id) { (f.hint) } }
        input type=(kind) id=(id) name=(name) value=(value) autocomplete=(auto)
            required[f.required]
            aria-describedby=[(!f.hint.is_empty()).then_some(&hint_id)]
            aria-invalid=[f.invalid.then_some("true")]
            placeholder=[(!f.placeholder.is_empty()).then_some(f.placeholder)]
            spellcheck=[(kind == "text").then_some("false")];
    }
}

/// A labelled password-style input for a secret: never pre-filled.
pub fn secret_input(id: &str, name: &str, label: &str, hint: &str) -> Markup {
    input(
        id,
        name,
        label,
        "",
        Field {
            kind: "password",
            hint,
            autocomplete: "new-password",
            ..Default::default()
        },
    )
}

/// A labelled select; `options` are (value, text).
pub fn select(
    id: &str,
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    hint: &str,
) -> Markup {
    let hint_id = format!("{id}-hint");
    html! {
        label for=(id) { (label) }
        @if !hint.is_empty() { span.hint id=(hint_id) { (hint) } }
        select id=(id) name=(name) aria-describedby=[(!hint.is_empty()).then_some(&hint_id)] {
            @for (v, t) in options {
                option value=(v) selected[v == selected] { (t) }
            }
        }
    }
}

/// A labelled checkbox.
pub fn checkbox(id: &str, name: &str, value: &str, label: &str, checked: bool) -> Markup {
    html! {
        label.inline for=(id) {
            input type="checkbox" id=(id) name=(name) value=(value) checked[checked];
            (label)
        }
    }
}

/// A labelled textarea.
pub fn textarea(
    id: &str,
    name: &str,
    label: &str,
    value: &str,
    hint: &str,
    required: bool,
) -> Markup {
    let hint_id = format!("{id}-hint");
    html! {
        label for=(id) { (label) @if required { " " span.muted { "(required)" } } }
        @if !hint.is_empty() { span.hint id=(hint_id) { (hint) } }
        textarea id=(id) name=(name) required[required] spellcheck="false"
            aria-describedby=[(!hint.is_empty()).then_some(&hint_id)] { (value) }
    }
}

/// The error of a form, announced.
pub fn form_error(msg: Option<&str>) -> Markup {
    html! { @if let Some(m) = msg { p.error role="alert" id="form-error" { (m) } } }
}

/// A confirmation after a change (from a fixed list, never from the query).
pub fn notice(msg: Option<&str>) -> Markup {
    html! { @if let Some(m) = msg { p.notice role="status" id="notice" { (m) } } }
}

/// A filter form (GET): the fields, then Apply and Clear.
pub fn filters(action: &str, label: &str, fields: Markup) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" aria-label=(label) {
            (fields)
            div.buttons {
                button type="submit" id="apply-filters" { "Apply" }
                a.button.secondary href=(action) { "Clear" }
            }
        }
    }
}

/// A table with a caption and column headers; `rows` are `<tr>`s. Wide tables scroll
/// inside a focusable region.
pub fn table(id: &str, caption: &str, headers: &[&str], rows: Markup) -> Markup {
    html! {
        div.table-wrap role="region" aria-label=(caption) tabindex="0" {
            table id=(id) {
                caption { (caption) }
                thead { tr { @for h in headers { th scope="col" { (h) } } } }
                tbody { (rows) }
            }
        }
    }
}

/// "Showing a–b of n", with previous/next links.
pub fn pager(base: &str, q: &Query, offset: usize, size: usize, total: usize) -> Markup {
    let end = (offset + size).min(total);
    let prev = offset.saturating_sub(size);
    html! {
        nav.pager aria-label="Pages" {
            span { "Showing " (if total == 0 { 0 } else { offset + 1 }) "–" (end) " of " (total) }
            @if offset > 0 { a href={(base) "?" (q.with("offset", &prev.to_string()))} rel="prev" { "Previous" } }
            @if end < total { a href={(base) "?" (q.with("offset", &end.to_string()))} rel="next" { "Next" } }
        }
    }
}

/// A pager when the total is not known (a search that stopped after the page): "Showing
/// a–b", previous and next.
pub fn pager_open(base: &str, q: &Query, offset: usize, shown: usize) -> Markup {
    let prev = offset.saturating_sub(shown.max(1));
    let next = offset + shown;
    html! {
        nav.pager aria-label="Pages" {
            span { "Showing " (offset + 1) "–" (next) " of more" }
            @if offset > 0 { a href={(base) "?" (q.with("offset", &prev.to_string()))} rel="prev" { "Previous" } }
            a href={(base) "?" (q.with("offset", &next.to_string()))} rel="next" { "Next" }
        }
    }
}

// ---------------------------------------------------------------- badges and times

/// An alert severity as a word with a symbol: 4 critical, 3 error, 2 warning.
pub fn severity(sev: i64) -> Markup {
    let (class, text) = match sev {
        4 => ("badge sev-4", "▲ Critical"),
        3 => ("badge sev-3", "◆ Error"),
        2 => ("badge sev-2", "● Warning"),
        _ => ("badge neutral", "○ Info"),
    };
    html! { span class=(class) { (text) } }
}

/// The name of a severity.
pub fn severity_name(sev: i64) -> &'static str {
    match sev {
        4 => "critical",
        3 => "error",
        2 => "warning",
        _ => "info",
    }
}

/// Kinds of status badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Fine.
    Good,
    /// Needs attention.
    Bad,
    /// Worth a look.
    Warn,
    /// Neither.
    Neutral,
}

/// A status badge: the text says it, the symbol and colour repeat it.
pub fn badge(tone: Tone, text: &str) -> Markup {
    let (class, sym) = match tone {
        Tone::Good => ("badge ok", "✓ "),
        Tone::Bad => ("badge bad", "✗ "),
        Tone::Warn => ("badge warn", "! "),
        Tone::Neutral => ("badge neutral", ""),
    };
    html! { span class=(class) { (sym) (text) } }
}

/// A time (epoch ms) as UTC text in a `<time>`; a dash for none.
pub fn time(ms: Option<i64>) -> Markup {
    match ms.filter(|m| *m > 0) {
        Some(ms) => {
            let text = crate::wire::utc_text(ms);
            let iso = format!("{}Z", text.trim_end_matches(" UTC").replacen(' ', "T", 1));
            let short = text
                .trim_end_matches(" UTC")
                .get(..16)
                .unwrap_or(&text)
                .to_string();
            html! { time datetime=(iso) { (short) } }
        }
        None => html! { span.muted { "—" } },
    }
}

/// "5 min ago", "3 h ago", "2 d ago".
pub fn ago(now_ms: i64, ms: i64) -> String {
    let s = (now_ms - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A number for people: up to 3 significant decimals, thousands kept plain.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    let s = if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ages() {
        assert_eq!(num(95.0), "95");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(123456.7), "123457");
        assert_eq!(num(f64::NAN), "—");
        assert_eq!(ago(120_000, 0), "2 min ago");
    }

    #[test]
    fn query_with_replaces_and_drops_wall() {
        let q = Query(vec![
            ("a".into(), "1".into()),
            ("offset".into(), "50".into()),
            ("wall".into(), "1".into()),
        ]);
        assert_eq!(q.with("offset", "100"), "a=1&offset=100");
        assert_eq!(q.with("offset", ""), "a=1");
    }

    #[test]
    fn times_are_utc_with_iso_attribute() {
        let t = time(Some(1_700_000_000_000)).into_string();
        assert!(t.contains("datetime=\"2023-11-14T22:13:20Z\""), "{t}");
        assert!(t.contains(">2023-11-14 22:13<"), "{t}");
        assert!(time(None).into_string().contains('—'));
    }
}
