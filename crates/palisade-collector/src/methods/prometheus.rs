//! The `prometheus` method: scrape an exporter's text exposition, pick series by metric
//! name and exact labels (summing several matches), with instances from a label.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_core::datasource::{expand_template, Collector, PromSelector};

use super::http::target_client;
use super::{BoxFuture, Method, Task};
use crate::error::Result;
use crate::process::{Outcome, RawInstance};

/// Largest exposition read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, in the order written.
    pub labels: Vec<(String, String)>,
    /// Value.
    pub value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses the labels of `{a="x",b="y"}` (the text after `{`); returns them and the rest
/// after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = s.find('=')?;
        let name = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.push((name, value));
        s = &s[end + 1..];
    }
}

/// Parses the Prometheus text exposition format (comments and malformed lines skipped).
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        let rest = &line[name_end..];
        let (labels, rest) = match rest.strip_prefix('{') {
            Some(r) => match parse_labels(r) {
                Some(x) => x,
                None => continue,
            },
            None => (Vec::new(), rest),
        };
        let Some(value) = rest.split_whitespace().next().and_then(parse_value) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn matches(s: &Sample, sel: &PromSelector) -> bool {
    s.name == sel.metric
        && sel
            .labels
            .iter()
            .all(|(k, v)| s.label(k).unwrap_or_default() == v)
}

/// Picks the datapoints: each datapoint is the sum of the series its selector matches;
/// with `instance_label`, per value of that label (series without it are ignored).
pub fn select(
    samples: &[Sample],
    metrics: &BTreeMap<String, PromSelector>,
    instance_label: Option<&str>,
) -> Vec<RawInstance> {
    let mut by_instance: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (dp, sel) in metrics {
        for s in samples.iter().filter(|s| matches(s, sel)) {
            let key = match instance_label {
                Some(l) => match s.label(l) {
                    Some(v) if !v.is_empty() => v.to_string(),
                    _ => continue,
                },
                None => String::new(),
            };
            *by_instance
                .entry(key)
                .or_default()
                .entry(dp.clone())
                .or_insert(0.0) += s.value;
        }
    }
    if instance_label.is_none() {
        let values = by_instance.remove("").unwrap_or_default();
        return vec![RawInstance {
            values,
            ..RawInstance::default()
        }];
    }
    by_instance
        .into_iter()
        .map(|(name, values)| RawInstance {
            name: Some(name.clone()),
            display_name: Some(name),
            properties: BTreeMap::new(),
            values,
        })
        .collect()
}

/// The Prometheus method.
#[derive(Debug, Clone)]
pub struct Prometheus {
    verify: reqwest::Client,
    insecure: reqwest::Client,
}

impl Prometheus {
    /// Two clients: certificate verified or not.
    pub fn new() -> Result<Prometheus> {
        Ok(Prometheus {
            verify: target_client(true)?,
            insecure: target_client(false)?,
        })
    }
}

impl Method for Prometheus {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Prometheus(c) = &task.datasource.collector else {
                return Outcome::error("not a prometheus datasource");
            };
            let device = &task.device;
            let Some(url) = expand_template(&c.url, &|n: &str| device.template_prop(n)) else {
                return Outcome::error("the URL names a property the device lacks (or has empty)");
            };
            let client = if c.tls_verify {
                &self.verify
            } else {
                &self.insecure
            };
            let sent = client
                .get(&url)
                .header(reqwest::header::ACCEPT, "text/plain;version=0.0.4")
                .timeout(Duration::from_millis(u64::from(c.timeout_ms)))
                .send()
                .await;
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => return Outcome::error(format!("no answer from {url}: {e}")),
            };
            if !resp.status().is_success() {
                return Outcome::error(format!("{url} answered {}", resp.status()));
            }
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > MAX_BODY {
                            return Outcome::error(format!(
                                "{url}: the exposition is larger than {MAX_BODY} bytes"
                            ));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Outcome::error(format!("reading {url}: {e}")),
                }
            }
            let text = String::from_utf8_lossy(&body);
            let samples = parse_exposition(&text);
            Outcome::Instances(select(&samples, &c.metrics, c.instance_label.as_deref()))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100.5
node_cpu_seconds_total{cpu="0",mode="user"} 20
node_cpu_seconds_total{cpu="1",mode="idle"} 200 1700000000000
node_cpu_seconds_total{cpu="1",mode="user"} 30
weird{path="a \"quoted\" \\ value",x="y"} 1e3
up 1
broken{a="b" 5
"#;

    fn sel(metric: &str, labels: &[(&str, &str)]) -> PromSelector {
        PromSelector {
            metric: metric.into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    #[test]
    fn parses_exposition() {
        let s = parse_exposition(TEXT);
        assert_eq!(s.len(), 6, "{s:?}");
        assert_eq!(s[2].value, 200.0);
        assert_eq!(s[4].label("path"), Some("a \"quoted\" \\ value"));
        assert_eq!(s[4].value, 1000.0);
        assert_eq!(s[5].name, "up");
    }

    #[test]
    fn selects_with_and_without_instances() {
        let s = parse_exposition(TEXT);
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "Idle".to_string(),
            sel("node_cpu_seconds_total", &[("mode", "idle")]),
        );
        metrics.insert("All".to_string(), sel("node_cpu_seconds_total", &[]));
        metrics.insert("Up".to_string(), sel("up", &[]));
        let single = select(&s, &metrics, None);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].values["Idle"], 300.5);
        assert_eq!(single[0].values["All"], 350.5);
        assert_eq!(single[0].values["Up"], 1.0);
        let per_cpu = select(&s, &metrics, Some("cpu"));
        assert_eq!(per_cpu.len(), 2);
        assert_eq!(per_cpu[0].name.as_deref(), Some("0"));
        assert_eq!(per_cpu[0].values["All"], 120.5);
        assert_eq!(per_cpu[1].values["Idle"], 200.0);
        assert!(!per_cpu[0].values.contains_key("Up"));
    }
}
