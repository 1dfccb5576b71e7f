//! Translation of selectors and times into PromQL and Prometheus API parameters.

use palisade_tsdb::{MatchOp, Matcher, Result, Selector, SeriesKey, TsdbError};
use std::fmt::Write as _;

/// Whether `s` is a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`), the only names a
/// PromQL selector can spell.
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A PromQL double-quoted string literal: `\`, `"` and control characters escaped, every
/// other character (UTF-8 included) as is. Regular expressions are quoted the same way (the
/// engine unquotes the literal, then compiles the regex).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn matches_empty(m: &Matcher) -> Result<bool> {
    let one = Selector {
        matchers: vec![m.clone()],
    };
    Ok(one.compile()?.matches(&SeriesKey::new("")))
}

/// The PromQL selector (`{a="b",c=~"d"}`) equivalent to `sel`, or `None` when it can select
/// nothing. Regular expressions are checked with the same compiler as the embedded store
/// ([`TsdbError::InvalidSelector`]). A matcher on a name that is not a Prometheus label name
/// cannot be spelled in PromQL, but no stored series has such a label (appends refuse them),
/// so it is decided here: true for every series (dropped) or for none (`None`). When every
/// matcher also matches the empty value, `__name__=~".+"` is added (a no-op on stored series
/// that PromQL requires).
pub(crate) fn selector(sel: &Selector) -> Result<Option<String>> {
    sel.compile()?;
    let mut parts = Vec::with_capacity(sel.matchers.len() + 1);
    let mut anchored = false;
    for m in &sel.matchers {
        let empty_ok = matches_empty(m)?;
        if !is_label_name(&m.label) {
            if empty_ok {
                continue;
            }
            return Ok(None);
        }
        anchored |= !empty_ok;
        let op = match m.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        parts.push(format!("{}{op}{}", m.label, quote(&m.value)));
    }
    if !anchored {
        parts.insert(0, r#"__name__=~".+""#.to_owned());
    }
    Ok(Some(format!("{{{}}}", parts.join(","))))
}

/// The metric name the selector pins with `__name__="..."`, if any.
pub(crate) fn pinned_metric(sel: &Selector) -> Option<&str> {
    sel.matchers
        .iter()
        .find(|m| m.label == palisade_tsdb::METRIC_LABEL && m.op == MatchOp::Equal)
        .map(|m| m.value.as_str())
}

/// A Prometheus API time parameter: seconds with millisecond precision, exact (`-1.5` for
/// -1500 ms).
pub(crate) fn time_param(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

/// Milliseconds from a Prometheus API timestamp (seconds as a JSON number).
pub(crate) fn ms_from_secs(v: &serde_json::Value) -> Option<i64> {
    let f = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.parse::<f64>().ok()?,
        _ => return None,
    };
    let ms = (f * 1000.0).round();
    (ms.is_finite() && ms.abs() < 9.0e15).then_some(ms as i64)
}

/// A sample value as the Prometheus API prints it (`"1.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`).
pub(crate) fn parse_value(v: &serde_json::Value) -> Option<f64> {
    let s = v.as_str()?;
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

/// Rejects keys the remote engine could not answer for: on top of
/// [`SeriesKey::validate`], label names must be Prometheus label names.
pub(crate) fn validate_key(key: &SeriesKey) -> Result<()> {
    key.validate()?;
    if let Some(bad) = key.labels.keys().find(|n| !is_label_name(n)) {
        return Err(TsdbError::InvalidSeries(format!(
            "label name {bad:?} of {} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            key.metric
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn selectors_are_quoted_and_anchored() {
        assert_eq!(
            selector(&Selector::all()).unwrap().unwrap(),
            r#"{__name__=~".+"}"#
        );
        assert_eq!(
            selector(&Selector::metric("cpu").eq("device", "a\"b\\c\nd"))
                .unwrap()
                .unwrap(),
            r#"{__name__="cpu",device="a\"b\\c\nd"}"#
        );
        assert_eq!(
            selector(&Selector::all().eq("device", "").re("x", r"a\.b|c"))
                .unwrap()
                .unwrap(),
            r#"{device="",x=~"a\\.b|c"}"#
        );
        assert_eq!(
            selector(&Selector::all().re("x", "a*")).unwrap().unwrap(),
            r#"{__name__=~".+",x=~"a*"}"#
        );
        assert_eq!(
            selector(&Selector::all().re("x", "a.+")).unwrap().unwrap(),
            r#"{x=~"a.+"}"#
        );
        assert_eq!(selector(&Selector::all().ne("bad-name", "")).unwrap(), None);
        assert_eq!(
            selector(&Selector::metric("m").eq("bad-name", ""))
                .unwrap()
                .unwrap(),
            r#"{__name__="m"}"#
        );
        assert!(matches!(
            selector(&Selector::all().re("a", "(")),
            Err(TsdbError::InvalidSelector(_))
        ));
        assert_eq!(quote("é\u{1}"), "\"é\\u0001\"");
    }

    #[test]
    fn times_and_values() {
        assert_eq!(time_param(1_700_000_000_123), "1700000000.123");
        assert_eq!(time_param(5), "0.005");
        assert_eq!(time_param(-1500), "-1.500");
        assert_eq!(
            ms_from_secs(&serde_json::json!(1_700_006_442.999)),
            Some(1_700_006_442_999)
        );
        assert!(parse_value(&serde_json::json!("NaN")).unwrap().is_nan());
        assert_eq!(
            parse_value(&serde_json::json!("-Inf")),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(parse_value(&serde_json::json!("+Inf")), Some(f64::INFINITY));
        assert_eq!(parse_value(&serde_json::json!("1e-3")), Some(0.001));
        assert_eq!(parse_value(&serde_json::json!(1)), None);
        assert!(is_label_name("_a1") && !is_label_name("1a") && !is_label_name("a.b"));
        assert!(validate_key(&SeriesKey::new("m").with_label("a.b", "x")).is_err());
        assert!(validate_key(&SeriesKey::new("any.name-ok").with_label("a", "x")).is_ok());
    }
}
