//! Validation of the method-specific `collector` object.

use std::collections::BTreeMap;

use regex::RegexBuilder;

use super::collector::{
    Collector, HttpCollector, HttpMethod, HttpValue, PingCollector, PrometheusCollector,
    ScriptCollector, SnmpCollector, SshCollector, SshParser, SshTarget,
};
use super::error::DatasourceError;
use super::model::DataSource;
use super::template::{template_properties, MAX_TEMPLATE_LEN};
use super::validate::max_len;

/// Shortest timeout, in milliseconds.
const MIN_TIMEOUT_MS: u32 = 100;
/// Longest SSH command.
const MAX_COMMAND_LEN: usize = 4096;
/// Longest HTTP request body.
const MAX_BODY_LEN: usize = 64 * 1024;
/// Longest regular expression of the `regex` parser.
const MAX_PATTERN_LEN: usize = 1024;
/// Compiled size limit of that regular expression.
const MAX_PATTERN_SIZE: usize = 256 * 1024;
/// Most script arguments.
const MAX_ARGS: usize = 32;
/// Longest parser field, script key or label value.
const MAX_KEY_LEN: usize = 128;

pub(super) fn check(ds: &DataSource) -> Result<(), DatasourceError> {
    check_mapping(ds)?;
    check_timeout(ds)?;
    let multi = ds.has_multi_instances;
    match &ds.collector {
        Collector::Snmp(c) => snmp(c, multi),
        Collector::Ssh(c) => ssh(c, multi),
        Collector::Http(c) => http(c, multi),
        Collector::Ping(c) => ping(c, multi, ds.collect_interval),
        Collector::Prometheus(c) => prometheus(c, multi),
        Collector::Script(c) => script(c),
    }
}

/// The name of the collector's datapoint map, for field paths.
fn map_field(c: &Collector) -> &'static str {
    match c {
        Collector::Snmp(_) => "collector.oids",
        Collector::Ssh(_) => "collector.fields",
        Collector::Http(_) | Collector::Ping(_) => "collector.values",
        Collector::Prometheus(_) => "collector.metrics",
        Collector::Script(_) => "collector.keys",
    }
}

/// Every collected datapoint has exactly one source, and every source is for one.
fn check_mapping(ds: &DataSource) -> Result<(), DatasourceError> {
    let field = map_field(&ds.collector);
    let mapped = ds.collector.mapped_datapoints();
    for key in &mapped {
        if !ds.datapoint(key).is_some_and(|d| d.kind.is_collected()) {
            return Err(DatasourceError::UnknownSource {
                field: format!("{field}.{key}"),
                datapoint: (*key).to_string(),
            });
        }
    }
    let missing = ds
        .data_points
        .iter()
        .find(|d| d.kind.is_collected() && !mapped.contains(&d.name.as_str()));
    if let Some(d) = missing {
        return Err(DatasourceError::MissingSource {
            field: field.into(),
            datapoint: d.name.clone(),
        });
    }
    Ok(())
}

/// A collection must end before the next one starts.
fn check_timeout(ds: &DataSource) -> Result<(), DatasourceError> {
    let timeout = ds.collector.timeout_ms();
    let limit = u64::from(ds.collect_interval) * 1000;
    if timeout < MIN_TIMEOUT_MS || u64::from(timeout) > limit {
        return Err(DatasourceError::OutOfRange {
            field: "collector.timeoutMs".into(),
            value: i64::from(timeout),
            expected: "100 ms up to the collect interval",
        });
    }
    Ok(())
}

fn instances(field: &str, reason: &'static str) -> DatasourceError {
    DatasourceError::Instances {
        field: field.into(),
        reason,
    }
}

/// Whether `oid` is dotted numeric: at least two numbers (each fitting 32 bits), no
/// leading dot.
pub fn is_valid_oid(oid: &str) -> bool {
    let parts: Vec<&str> = oid.split('.').collect();
    parts.len() >= 2
        && parts.len() <= 128
        && parts.iter().all(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u32>().is_ok()
        })
}

fn oid(field: String, value: &str) -> Result<(), DatasourceError> {
    if is_valid_oid(value) {
        Ok(())
    } else {
        Err(DatasourceError::Oid {
            field,
            value: value.into(),
        })
    }
}

fn snmp(c: &SnmpCollector, multi: bool) -> Result<(), DatasourceError> {
    match (&c.table, multi) {
        (None, true) => {
            return Err(instances(
                "collector.table",
                "a datasource with instances needs the table its rows come from",
            ))
        }
        (Some(_), false) => {
            return Err(instances(
                "collector.table",
                "only a datasource with instances (hasMultiInstances) walks a table",
            ))
        }
        _ => {}
    }
    if let Some(t) = &c.table {
        oid("collector.table.indexOid".into(), &t.index_oid)?;
        if let Some(n) = &t.name_oid {
            oid("collector.table.nameOid".into(), n)?;
        }
        if let Some(d) = &t.description_oid {
            oid("collector.table.descriptionOid".into(), d)?;
        }
    }
    for (dp, value) in &c.oids {
        oid(format!("collector.oids.{dp}"), value)?;
    }
    Ok(())
}

fn ssh(c: &SshCollector, multi: bool) -> Result<(), DatasourceError> {
    if c.target != SshTarget::Ssh && !c.parser.has_local_source() {
        return Err(DatasourceError::Inconsistent {
            field: "collector.target".into(),
            reason: "only the proc_stat, meminfo, df and net_dev parsers can read the collector's own host (no command ever runs there); use target `ssh`",
        });
    }
    if c.target == SshTarget::Local {
        max_len("collector.command", &c.command, MAX_COMMAND_LEN)?;
    } else {
        if c.command.trim().is_empty() {
            return Err(DatasourceError::Empty {
                field: "collector.command".into(),
            });
        }
        max_len("collector.command", &c.command, MAX_COMMAND_LEN)?;
    }
    if c.command.chars().any(|ch| ch.is_control() && ch != '\t') {
        return Err(DatasourceError::Inconsistent {
            field: "collector.command".into(),
            reason: "must be one line without control characters",
        });
    }
    match (c.parser.instances(), multi) {
        (Some(true), false) => {
            return Err(instances(
                "collector.parser",
                "the df and net_dev parsers yield instances: set hasMultiInstances",
            ))
        }
        (Some(false), true) => return Err(instances(
            "collector.parser",
            "the proc_stat and meminfo parsers yield a single instance: clear hasMultiInstances",
        )),
        _ => {}
    }
    let parser = c.parser.kind();
    let field_error = |dp: &str, value: &str| DatasourceError::ParserField {
        field: format!("collector.fields.{dp}"),
        value: value.into(),
        parser,
    };
    match &c.parser {
        SshParser::KeyValue { separator } => {
            if separator.is_empty() || separator.chars().count() > 8 || separator.contains('\n') {
                return Err(DatasourceError::Inconsistent {
                    field: "collector.parser.separator".into(),
                    reason: "must be 1 to 8 characters on one line",
                });
            }
            for (dp, key) in &c.fields {
                if !plain_key(key)
                    || key.contains(separator.as_str())
                    || (multi && key.contains('.'))
                {
                    return Err(field_error(dp, key));
                }
            }
        }
        SshParser::Regex { pattern } => {
            let captures = regex_captures(pattern)?;
            if multi && !captures.iter().any(|n| n == "instance") {
                return Err(DatasourceError::Regex {
                    field: "collector.parser.pattern".into(),
                    message: "with instances the pattern needs a capture named `instance`".into(),
                });
            }
            for (dp, key) in &c.fields {
                if !captures.contains(key) {
                    return Err(field_error(dp, key));
                }
            }
        }
        other => {
            let fixed = other.fixed_fields();
            for (dp, key) in &c.fields {
                let known = match fixed {
                    Some(set) => set.contains(&key.as_str()),
                    None => plain_key(key) && !key.contains(':'),
                };
                if !known {
                    return Err(field_error(dp, key));
                }
            }
        }
    }
    Ok(())
}

/// A key of `key=value` output or `/proc/meminfo`: 1 to 128 visible characters.
fn plain_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_KEY_LEN
        && key.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Compiles the `regex` parser's pattern and returns its capture names.
fn regex_captures(pattern: &str) -> Result<Vec<String>, DatasourceError> {
    let field = "collector.parser.pattern";
    if pattern.is_empty() {
        return Err(DatasourceError::Empty {
            field: field.into(),
        });
    }
    max_len(field, pattern, MAX_PATTERN_LEN)?;
    let re = RegexBuilder::new(pattern)
        .size_limit(MAX_PATTERN_SIZE)
        .dfa_size_limit(MAX_PATTERN_SIZE)
        .build()
        .map_err(|e| DatasourceError::Regex {
            field: field.into(),
            message: e.to_string(),
        })?;
    Ok(re.capture_names().flatten().map(String::from).collect())
}

/// A URL template: `http://` or `https://`, a host part, no whitespace, well-formed tokens
/// naming no credential.
fn url(field: &str, value: &str) -> Result<(), DatasourceError> {
    template(field, value)?;
    // Tokens stand for a value: replace them so that their `#` do not end the host.
    let lower = super::template::expand_template(value, &|_: &str| Some("x".to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|r| {
        r.split(['/', '?', '#'])
            .next()
            .is_some_and(|h| !h.is_empty())
    });
    if !host_ok || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DatasourceError::Url {
            field: field.into(),
            value: value.into(),
        });
    }
    Ok(())
}

/// A template is well-formed, at most [`MAX_TEMPLATE_LEN`] bytes, and reads no
/// credential property (URLs and arguments end up in logs and process lists).
fn template(field: &str, value: &str) -> Result<(), DatasourceError> {
    let problem = |reason| DatasourceError::Template {
        field: field.into(),
        value: value.into(),
        reason,
    };
    if value.len() > MAX_TEMPLATE_LEN {
        return Err(problem("is longer than 2048 bytes"));
    }
    let props = template_properties(value).map_err(problem)?;
    if props.iter().any(|p| crate::property::is_credential(p)) {
        return Err(problem(
            "reads a credential property, which would show in logs and process lists",
        ));
    }
    Ok(())
}

fn single(multi: bool, method: &'static str) -> Result<(), DatasourceError> {
    if multi {
        return Err(instances("hasMultiInstances", method));
    }
    Ok(())
}

fn http(c: &HttpCollector, multi: bool) -> Result<(), DatasourceError> {
    single(multi, "the http method collects a single instance")?;
    url("collector.url", &c.url)?;
    match (&c.body, c.http_method) {
        (Some(_), HttpMethod::Get | HttpMethod::Head) => {
            return Err(DatasourceError::Inconsistent {
                field: "collector.body".into(),
                reason: "only a POST request has a body",
            })
        }
        (Some(body), HttpMethod::Post) if body.len() > MAX_BODY_LEN => {
            return Err(DatasourceError::TooLong {
                field: "collector.body".into(),
                len: body.len(),
                max: MAX_BODY_LEN,
            })
        }
        _ => {}
    }
    if !(100..=599).contains(&c.expected_status) {
        return Err(DatasourceError::OutOfRange {
            field: "collector.expectedStatus".into(),
            value: i64::from(c.expected_status),
            expected: "an HTTP status, 100 to 599",
        });
    }
    let https = c.url.to_ascii_lowercase().starts_with("https://");
    for (dp, value) in &c.values {
        match value {
            HttpValue::CertDaysToExpiry if !https => {
                return Err(DatasourceError::Inconsistent {
                    field: format!("collector.values.{dp}"),
                    reason: "certDaysToExpiry needs an https:// URL",
                })
            }
            HttpValue::Json(pointer) if !is_json_pointer(pointer) => {
                return Err(DatasourceError::JsonPointer {
                    field: format!("collector.values.{dp}"),
                    value: pointer.clone(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `p` is an RFC 6901 JSON pointer.
fn is_json_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') || p.len() > MAX_TEMPLATE_LEN {
        return false;
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

fn ping(c: &PingCollector, multi: bool, interval: u32) -> Result<(), DatasourceError> {
    single(multi, "the ping method collects a single instance")?;
    if !(1..=20).contains(&c.count) {
        return Err(DatasourceError::OutOfRange {
            field: "collector.count".into(),
            value: i64::from(c.count),
            expected: "1 to 20 requests",
        });
    }
    if u64::from(c.count) * u64::from(c.timeout_ms) > u64::from(interval) * 1000 {
        return Err(DatasourceError::OutOfRange {
            field: "collector.timeoutMs".into(),
            value: i64::from(c.timeout_ms),
            expected: "count × timeoutMs within the collect interval",
        });
    }
    Ok(())
}

/// Prometheus metric names: `[a-zA-Z_:][a-zA-Z0-9_:]*`; label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn prom_name(name: &str, colon: bool) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':');
    let mut bytes = name.bytes();
    name.len() <= 256 && bytes.next().is_some_and(|b| ok(b) && !b.is_ascii_digit()) && bytes.all(ok)
}

fn prometheus(c: &PrometheusCollector, multi: bool) -> Result<(), DatasourceError> {
    url("collector.url", &c.url)?;
    let field = "collector.instanceLabel";
    match (&c.instance_label, multi) {
        (None, true) => {
            return Err(instances(
                field,
                "a datasource with instances needs the label naming them",
            ))
        }
        (Some(_), false) => {
            return Err(instances(
                field,
                "only a datasource with instances (hasMultiInstances) has an instance label",
            ))
        }
        (Some(label), true) if !prom_name(label, false) => {
            return Err(DatasourceError::PromName {
                field: field.into(),
                value: label.clone(),
                what: "label",
            })
        }
        _ => {}
    }
    for (dp, sel) in &c.metrics {
        if !prom_name(&sel.metric, true) {
            return Err(DatasourceError::PromName {
                field: format!("collector.metrics.{dp}.metric"),
                value: sel.metric.clone(),
                what: "metric",
            });
        }
        check_labels(dp, &sel.labels)?;
    }
    Ok(())
}

fn check_labels(dp: &str, labels: &BTreeMap<String, String>) -> Result<(), DatasourceError> {
    for (name, value) in labels {
        let field = format!("collector.metrics.{dp}.labels.{name}");
        if !prom_name(name, false) {
            return Err(DatasourceError::PromName {
                field,
                value: name.clone(),
                what: "label",
            });
        }
        max_len(&field, value, MAX_KEY_LEN * 8)?;
    }
    Ok(())
}

/// Whether `name` is a plain file name fit for the scripts directory.
pub fn is_valid_script_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Largest script source a module may carry.
const MAX_SCRIPT_SOURCE: usize = 256 * 1024;

fn script(c: &ScriptCollector) -> Result<(), DatasourceError> {
    if !is_valid_script_name(&c.script) {
        return Err(DatasourceError::ScriptName {
            field: "collector.script".into(),
            value: c.script.clone(),
        });
    }
    if let Some(source) = &c.source {
        if source.is_empty() || source.len() > MAX_SCRIPT_SOURCE {
            return Err(DatasourceError::Inconsistent {
                field: "collector.source".into(),
                reason: "must hold the script's text, 1 byte to 256 KiB",
            });
        }
        if source.contains('\0') {
            return Err(DatasourceError::Inconsistent {
                field: "collector.source".into(),
                reason: "must not contain a NUL character",
            });
        }
    }
    if c.args.len() > MAX_ARGS {
        return Err(DatasourceError::Count {
            field: "collector.args".into(),
            count: c.args.len(),
            min: 0,
            max: MAX_ARGS,
        });
    }
    for (i, arg) in c.args.iter().enumerate() {
        template(&format!("collector.args[{i}]"), arg)?;
        if arg.contains('\0') {
            return Err(DatasourceError::Inconsistent {
                field: format!("collector.args[{i}]"),
                reason: "must not contain a NUL character",
            });
        }
    }
    for (dp, key) in &c.keys {
        let ok = (1..=MAX_KEY_LEN).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(DatasourceError::ParserField {
                field: format!("collector.keys.{dp}"),
                value: key.clone(),
                parser: "script key=value",
            });
        }
    }
    Ok(())
}
