//! Talking to the portal (`/api/collector/v1`), the collector's identity in its state
//! directory, and how the portal's certificate is trusted (system roots, a CA file, or a
//! pinned certificate hash).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use sha2::Digest;

use crate::buffer::write_atomic;
use crate::error::{Error, Result};
use crate::report::Report;

/// The key file: the collector's identity (mode 0600).
pub const KEY_FILE: &str = "collector.key";
/// Where the portal is and how it is trusted.
pub const PORTAL_FILE: &str = "portal.json";
/// The copy of the CA certificate given at registration.
pub const CA_FILE: &str = "portal-ca.pem";

/// How the portal's certificate is checked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// PEM of the CA(s) to trust instead of the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
    /// SHA-256 of the portal's certificate (DER): trusted exactly, whoever signed it.
    pub pin_sha256: Option<[u8; 32]>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("ca", &self.ca_pem.is_some())
            .field("pin_sha256", &self.pin_sha256.map(hex::encode))
            .finish()
    }
}

/// Parses a `--pin-sha256` value: 64 hex digits, `:` separators allowed.
pub fn parse_pin(text: &str) -> Result<[u8; 32]> {
    let clean: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    let bytes = hex::decode(&clean)
        .map_err(|_| Error::Config("--pin-sha256 must be 64 hexadecimal digits".into()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| Error::Config("--pin-sha256 must be 64 hexadecimal digits".into()))
}

/// Checks a portal URL: `https://`, or `http://` only to a loopback address (tests).
pub fn check_portal_url(text: &str) -> Result<Url> {
    let url =
        Url::parse(text.trim()).map_err(|e| Error::Config(format!("portal URL `{text}`: {e}")))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    match url.scheme() {
        "https" if !host.is_empty() => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(Error::Config(format!(
            "portal URL `{text}`: plain http is only accepted to a loopback address; use https"
        ))),
        _ => Err(Error::Config(format!(
            "portal URL `{text}` must be an https:// URL with a host"
        ))),
    }
}

/// Accepts exactly the certificate whose SHA-256 is pinned, and checks the handshake
/// signatures with its key.
#[derive(Debug)]
struct PinVerifier {
    pin: [u8; 32],
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = sha2::Sha256::digest(end_entity.as_ref()).into();
        if same_digest(&got, &self.pin) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the portal's certificate has SHA-256 {}, not the pinned {}",
                hex::encode(got),
                hex::encode(self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Constant-time comparison (a pin is public, but there is no reason to leak timing).
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The HTTP client for the portal.
pub fn http_client(trust: &Trust) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("palisade-collector/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pin) = trust.pin_sha256 {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier { pin, algorithms }))
            .with_no_client_auth();
        b = b.use_preconfigured_tls(config);
    } else if let Some(pem) = &trust.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Tls(format!("the CA file holds no usable certificate: {e}")))?;
        if certs.is_empty() {
            return Err(Error::Tls("the CA file holds no certificate".into()));
        }
        b = b.tls_built_in_root_certs(false);
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| Error::Tls(e.to_string()))
}

/// The collector's identity: portal, id and key.
#[derive(Clone)]
pub struct Identity {
    /// Portal base URL.
    pub portal: String,
    /// The collector's id.
    pub collector_id: i64,
    /// The key (`palc_…`). Never logged, never printed.
    pub key: String,
    /// How the portal is trusted.
    pub trust: Trust,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("portal", &self.portal)
            .field("collector_id", &self.collector_id)
            .field("key", &"********")
            .field("trust", &self.trust)
            .finish()
    }
}

impl Identity {
    /// Reads the identity of a state directory.
    pub fn load(state_dir: &Path) -> Result<Identity> {
        let key_path = state_dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&key_path) {
            Ok(k) => k.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotRegistered(format!(
                    "no {} in {}: run `palisade-collector register` first",
                    KEY_FILE,
                    state_dir.display()
                )))
            }
            Err(e) => return Err(Error::io("cannot read", &key_path, e)),
        };
        let portal_path = state_dir.join(PORTAL_FILE);
        let text = std::fs::read_to_string(&portal_path)
            .map_err(|e| Error::io("cannot read", &portal_path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {e}", portal_path.display())))?;
        let portal = v["portal"]
            .as_str()
            .ok_or_else(|| Error::Config(format!("{}: no `portal`", portal_path.display())))?
            .to_string();
        let collector_id = v["collectorId"].as_i64().unwrap_or(0);
        let pin_sha256 = match v["pinSha256"].as_str() {
            Some(p) => Some(parse_pin(p)?),
            None => None,
        };
        let ca_pem = match v["caFile"].as_str() {
            Some(name) => {
                let p = state_dir.join(name);
                Some(std::fs::read(&p).map_err(|e| Error::io("cannot read", &p, e))?)
            }
            None => None,
        };
        Ok(Identity {
            portal,
            collector_id,
            key,
            trust: Trust { ca_pem, pin_sha256 },
        })
    }

    /// Writes the identity: the key (0600) last, so that a key file always comes with its
    /// portal file.
    pub fn save(&self, state_dir: &Path, registered_on: i64) -> Result<()> {
        let ca = match &self.trust.ca_pem {
            Some(pem) => {
                write_atomic(&state_dir.join(CA_FILE), pem)?;
                Some(CA_FILE)
            }
            None => None,
        };
        let doc = json!({
            "portal": self.portal,
            "collectorId": self.collector_id,
            "pinSha256": self.trust.pin_sha256.map(hex::encode),
            "caFile": ca,
            "registeredOn": registered_on,
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        write_atomic(&state_dir.join(PORTAL_FILE), text.as_bytes())?;
        write_atomic(&state_dir.join(KEY_FILE), self.key.as_bytes())
    }
}

/// What became of a result batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// 2xx: stored (or stored before: `duplicate`).
    Delivered {
        /// The portal had seen the id already.
        duplicate: bool,
        /// Values accepted.
        accepted: u64,
        /// Results refused item by item (devices not monitored by this collector).
        refused: usize,
    },
    /// The portal refuses the batch itself as malformed (400, 413, 422): sending the same
    /// bytes again can never succeed.
    Malformed(String),
    /// Anything else: keep it and retry later.
    Retry(String),
}

/// The answer to a work request.
#[derive(Debug)]
pub enum WorkAnswer {
    /// 304: unchanged.
    NotModified,
    /// 200: the work and its ETag.
    Work {
        /// The body.
        body: Value,
        /// `ETag` header, quotes included.
        etag: Option<String>,
    },
}

/// A connection to the portal.
#[derive(Debug, Clone)]
pub struct Portal {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

fn error_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["errorMessage"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

impl Portal {
    /// A portal client; `key` is `None` only to register.
    pub fn new(base: &str, trust: &Trust, key: Option<String>) -> Result<Portal> {
        let url = check_portal_url(base)?;
        Ok(Portal {
            http: http_client(trust)?,
            base: url.as_str().trim_end_matches('/').to_string(),
            key,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/collector/v1{path}", self.base)
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    async fn json_answer(resp: reqwest::Response) -> Result<Value> {
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(Error::Portal {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| Error::Portal {
            status: status.as_u16(),
            message: format!("the answer is not JSON: {e}"),
        })
    }

    /// Exchanges a one-time registration secret for the collector's id and key.
    pub async fn register(&self, secret: &str, report: &Report) -> Result<(i64, String)> {
        let resp = self
            .http
            .post(self.url("/register"))
            .json(&json!({"registrationSecret": secret, "report": report}))
            .send()
            .await?;
        let v = Self::json_answer(resp).await?;
        let id = v["collectorId"].as_i64().ok_or_else(|| Error::Portal {
            status: 200,
            message: "no collectorId in the answer".into(),
        })?;
        let key = v["collectorKey"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::Portal {
                status: 200,
                message: "no collectorKey in the answer".into(),
            })?;
        Ok((id, key.to_string()))
    }

    /// Sends a heartbeat; returns the portal's `workVersion`.
    pub async fn heartbeat(&self, report: &Report) -> Result<String> {
        let resp = self
            .authed(self.http.post(self.url("/heartbeat")))
            .json(&json!({"report": report}))
            .send()
            .await?;
        let v = Self::json_answer(resp).await?;
        Ok(v["workVersion"].as_str().unwrap_or_default().to_string())
    }

    /// Fetches the work, conditionally on `etag`.
    pub async fn work(&self, etag: Option<&str>) -> Result<WorkAnswer> {
        let mut rb = self.authed(self.http.get(self.url("/work")));
        if let Some(tag) = etag {
            rb = rb.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let resp = rb.send().await?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(WorkAnswer::NotModified);
        }
        let etag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = Self::json_answer(resp).await?;
        Ok(WorkAnswer::Work { body, etag })
    }

    /// Posts a result batch (the exact buffered body).
    pub async fn results(&self, body: Vec<u8>) -> Delivery {
        let sent = self
            .authed(self.http.post(self.url("/results")))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Delivery::Retry(format!("cannot reach the portal: {e}")),
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            return Delivery::Delivered {
                duplicate: v["duplicate"].as_bool().unwrap_or(false),
                accepted: v["accepted"].as_u64().unwrap_or(0),
                refused: v["refused"].as_array().map_or(0, Vec::len),
            };
        }
        let msg = format!("{}: {}", status.as_u16(), error_message(&text));
        match status.as_u16() {
            400 | 413 | 422 => Delivery::Malformed(msg),
            _ => Delivery::Retry(msg),
        }
    }
}

/// Reads a one-time registration secret from a file.
pub fn read_secret(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let secret = text.trim().to_string();
    if !secret.starts_with("palr_") {
        return Err(Error::Config(format!(
            "{} does not hold a registration secret (palr_…)",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn portal_urls() {
        assert!(check_portal_url("https://portal.example").is_ok());
        assert!(check_portal_url("http://127.0.0.1:8080").is_ok());
        assert!(check_portal_url("http://[::1]:8080/").is_ok());
        assert!(check_portal_url("http://localhost:1").is_ok());
        let e = check_portal_url("http://portal.example").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(check_portal_url("ftp://x").is_err());
        assert!(check_portal_url("not a url").is_err());
    }

    #[test]
    fn pins() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_pin(&hex64).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
        assert!(parse_pin("abcd").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
        assert!(http_client(&Trust {
            ca_pem: None,
            pin_sha256: Some([1; 32])
        })
        .is_ok());
        assert!(http_client(&Trust {
            ca_pem: Some(b"nothing".to_vec()),
            pin_sha256: None
        })
        .is_err());
    }

    #[test]
    fn identity_round_trip_and_redaction() {
        let d =
            std::env::temp_dir().join(format!("palisade-collector-id-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        let id = Identity {
            portal: "http://127.0.0.1:1".into(),
            collector_id: 7,
            key: "palc_secretvalue".into(),
            trust: Trust {
                ca_pem: None,
                pin_sha256: Some([2; 32]),
            },
        };
        id.save(&d, 1).unwrap();
        let back = Identity::load(&d).unwrap();
        assert_eq!(back.key, "palc_secretvalue");
        assert_eq!(back.collector_id, 7);
        assert_eq!(back.trust.pin_sha256, Some([2; 32]));
        assert!(!format!("{back:?}").contains("palc_secretvalue"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let missing = Identity::load(&d.join("nope")).unwrap_err();
        assert!(matches!(missing, Error::NotRegistered(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
