//! The `http` method: one request, measuring status, latency, body size, a JSON value, and
//! the days until the server certificate expires (read from the TLS session, so it costs
//! nothing extra).

use std::time::{Duration, Instant};

use palisade_core::datasource::{expand_template, Collector, HttpMethod, HttpValue};
use serde_json::Value;

use super::{BoxFuture, Method, Task};
use crate::error::{Error, Result};
use crate::process::{Outcome, RawInstance};

/// Largest body kept for `json:` values; longer bodies are still counted.
const MAX_KEPT_BODY: usize = 4 * 1024 * 1024;

/// Builds a client for monitored targets (not the portal).
pub fn target_client(verify: bool) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("palisade-collector/", env!("CARGO_PKG_VERSION")))
        .danger_accept_invalid_certs(!verify)
        .tls_info(true)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| Error::Tls(e.to_string()))
}

/// The HTTP method.
#[derive(Debug, Clone)]
pub struct Http {
    verify: reqwest::Client,
    insecure: reqwest::Client,
}

impl Http {
    /// Two clients: certificate verified or not.
    pub fn new() -> Result<Http> {
        Ok(Http {
            verify: target_client(true)?,
            insecure: target_client(false)?,
        })
    }
}

/// Days from `now_secs` until the certificate (DER) expires; negative once expired.
pub fn cert_days_to_expiry(der: &[u8], now_secs: i64) -> Option<f64> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let not_after = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    let left = i64::try_from(not_after).ok()? - now_secs;
    Some((left as f64 / 86_400.0).floor())
}

/// A number from a JSON value: a number, a string holding one, or a boolean (1/0).
pub fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Method for Http {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Http(c) = &task.datasource.collector else {
                return Outcome::error("not an http datasource");
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
            let rb = match c.http_method {
                HttpMethod::Get => client.get(&url),
                HttpMethod::Head => client.head(&url),
                HttpMethod::Post => client.post(&url).body(c.body.clone().unwrap_or_default()),
            }
            .timeout(Duration::from_millis(u64::from(c.timeout_ms)));
            let start = Instant::now();
            let mut resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => return Outcome::error(format!("no answer from {url}: {e}")),
            };
            let status = resp.status().as_u16();
            let cert_days = resp
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|i| i.peer_certificate())
                .and_then(|der| cert_days_to_expiry(der, now_secs()));
            let mut body = Vec::new();
            let mut body_bytes: u64 = 0;
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        body_bytes += chunk.len() as u64;
                        if body.len() < MAX_KEPT_BODY {
                            body.extend_from_slice(&chunk);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Outcome::error(format!("reading the answer of {url}: {e}")),
                }
            }
            let latency = start.elapsed().as_secs_f64() * 1000.0;
            let json: Option<Value> = c
                .values
                .values()
                .any(|v| matches!(v, HttpValue::Json(_)))
                .then(|| serde_json::from_slice(&body).ok())
                .flatten();
            let mut values = std::collections::BTreeMap::new();
            for (dp, what) in &c.values {
                let v = match what {
                    HttpValue::StatusCode => Some(f64::from(status)),
                    HttpValue::StatusOk => Some(if status == c.expected_status {
                        1.0
                    } else {
                        0.0
                    }),
                    HttpValue::LatencyMs => Some(latency),
                    HttpValue::BodyBytes => Some(body_bytes as f64),
                    HttpValue::CertDaysToExpiry => cert_days,
                    HttpValue::Json(pointer) => json
                        .as_ref()
                        .and_then(|j| j.pointer(pointer))
                        .and_then(json_number),
                };
                if let Some(v) = v {
                    values.insert(dp.clone(), v);
                }
            }
            Outcome::Instances(vec![RawInstance {
                values,
                ..RawInstance::default()
            }])
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_numbers() {
        assert_eq!(json_number(&json!(3)), Some(3.0));
        assert_eq!(json_number(&json!(" 2.5 ")), Some(2.5));
        assert_eq!(json_number(&json!(true)), Some(1.0));
        assert_eq!(json_number(&json!(null)), None);
        assert_eq!(json_number(&json!("abc")), None);
    }

    #[test]
    fn garbage_certificate_has_no_expiry() {
        assert_eq!(cert_days_to_expiry(b"not a certificate", 0), None);
    }
}
