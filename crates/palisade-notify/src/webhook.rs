//! SMS and voice through your own gateway: a signed JSON `POST`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use palisade_core::secret::Secret;
use serde::Serialize;
use sha2::Sha256;

use crate::http::{self, Endpoint};
use crate::{is_e164, Channel, DeliveryError, Message, Sender, DEFAULT_TIMEOUT};

/// The header that carries `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub const SIGNATURE_HEADER: &str = "X-Palisade-Signature";
/// The header that carries the signing time in Unix seconds.
pub const TIMESTAMP_HEADER: &str = "X-Palisade-Timestamp";

/// The shortest webhook secret accepted, in bytes.
const MIN_SECRET_LEN: usize = 16;

/// Configuration of a [`WebhookSender`].
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where to `POST`: `https://...`, or `http://` on a loopback address.
    pub url: String,
    /// The shared HMAC key, at least 16 bytes.
    pub secret: Secret<String>,
    /// How long to wait for the connection and the answer together.
    pub timeout: Duration,
}

impl WebhookConfig {
    /// A configuration with the default timeout ([`DEFAULT_TIMEOUT`]).
    pub fn new(url: impl Into<String>, secret: Secret<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Delivers SMS and voice messages by `POST`ing JSON to a gateway of your own.
///
/// The body is `{"number": to, "message": text, "channel": "sms"|"voice"}`; the request
/// carries [`TIMESTAMP_HEADER`] (Unix seconds) and [`SIGNATURE_HEADER`]
/// (`sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`), which the gateway checks with
/// [`verify_webhook_signature`] (and should also refuse stale timestamps). Any 2xx answer
/// means delivered; redirects are not followed.
pub struct WebhookSender {
    client: reqwest::Client,
    endpoint: Endpoint,
    secret: Secret<String>,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("host", &self.endpoint.host)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    number: &'a str,
    message: &'a str,
    channel: Channel,
}

impl WebhookSender {
    /// Checks the configuration and builds the sender (no connection is made yet).
    pub fn new(config: WebhookConfig) -> Result<Self, DeliveryError> {
        let endpoint = http::endpoint(&config.url)?;
        if config.secret.expose().len() < MIN_SECRET_LEN {
            return Err(DeliveryError::Config(
                "the webhook secret must be at least 16 bytes",
            ));
        }
        let client = http::client(config.timeout)?;
        Ok(WebhookSender {
            client,
            endpoint,
            secret: config.secret,
        })
    }
}

#[async_trait::async_trait]
impl Sender for WebhookSender {
    async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
        if !self.channels().contains(&msg.channel) {
            return Err(DeliveryError::UnsupportedChannel {
                channel: msg.channel,
            });
        }
        if !is_e164(&msg.to) {
            return Err(DeliveryError::InvalidRecipient {
                channel: msg.channel,
            });
        }
        let body = serde_json::to_vec(&Payload {
            number: &msg.to,
            message: &msg.text,
            channel: msg.channel,
        })
        .map_err(|_| DeliveryError::Config("the webhook payload could not be encoded"))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let signature = sign_webhook(self.secret.expose().as_bytes(), &timestamp, &body);
        let request = self
            .client
            .post(self.endpoint.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body);
        let result = http::execute(request, &self.endpoint.host).await;
        match &result {
            Ok(()) => {
                tracing::debug!(host = %self.endpoint.host, channel = %msg.channel, "webhook accepted the message")
            }
            Err(e) => {
                tracing::warn!(host = %self.endpoint.host, channel = %msg.channel, error = %e, "webhook delivery failed")
            }
        }
        result
    }

    fn channels(&self) -> &[Channel] {
        &[Channel::Sms, Channel::Voice]
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => <Hmac<Sha256> as Mac>::new(&Default::default()),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The [`SIGNATURE_HEADER`] value for a request: `sha256=<hex HMAC-SHA256(secret, timestamp
/// + "." + body)>`.
pub fn sign_webhook(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a webhook request's [`SIGNATURE_HEADER`] value against the shared secret, the
/// [`TIMESTAMP_HEADER`] value and the raw body, in constant time.
///
/// This checks authenticity only: the receiver should also refuse timestamps more than a few
/// minutes from its clock, so that a recorded request cannot be replayed later.
pub fn verify_webhook_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    // `verify_slice` compares in constant time (via `subtle`).
    mac(secret, timestamp, body).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-webhook";

    #[test]
    fn sign_and_verify() {
        let body = br#"{"number":"+14155550100","message":"code 482913","channel":"sms"}"#;
        let sig = sign_webhook(SECRET, "1700000000", body);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify_webhook_signature(SECRET, "1700000000", body, &sig));
        assert!(verify_webhook_signature(
            SECRET,
            "1700000000",
            body,
            &sig.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify_webhook_signature(SECRET, "1700000001", body, &sig));
        assert!(!verify_webhook_signature(
            b"another-secret-of-16+",
            "1700000000",
            body,
            &sig
        ));
        assert!(!verify_webhook_signature(SECRET, "1700000000", b"{}", &sig));
        assert!(!verify_webhook_signature(SECRET, "1700000000", body, ""));
        assert!(!verify_webhook_signature(
            SECRET,
            "1700000000",
            body,
            &sig["sha256=".len()..]
        ));
        assert!(!verify_webhook_signature(
            SECRET,
            "1700000000",
            body,
            "sha256=zz"
        ));
        assert!(!verify_webhook_signature(
            SECRET,
            "1700000000",
            body,
            &sig[..sig.len() - 2]
        ));
    }

    #[test]
    fn known_vector() {
        // Python: hmac.new(b"Jefe", b"1700000000." + body, hashlib.sha256).hexdigest()
        let body = br#"{"number":"+14155550100","message":"Your code is 482913","channel":"sms"}"#;
        let sig = sign_webhook(b"Jefe", "1700000000", body);
        assert_eq!(
            sig,
            "sha256=7b85cbcf6df1df97abc4365e60738287654df729acbf2ade957ee45e0f5ffe3f"
        );
    }

    #[test]
    fn config_checks() {
        let short = WebhookConfig::new("https://sms.example.com/", Secret::new("short".into()));
        assert!(matches!(
            WebhookSender::new(short),
            Err(DeliveryError::Config(_))
        ));
        let cleartext = WebhookConfig::new(
            "http://sms.example.com/",
            Secret::new("0123456789abcdef".into()),
        );
        assert!(matches!(
            WebhookSender::new(cleartext),
            Err(DeliveryError::Config(_))
        ));
        let ok = WebhookConfig::new(
            "https://sms.example.com/hook?key=abc",
            Secret::new("0123456789abcdef".into()),
        );
        let sender = WebhookSender::new(ok);
        assert!(sender.is_ok());
        let shown = format!("{sender:?}");
        assert!(!shown.contains("0123456789abcdef") && !shown.contains("key=abc"));
    }
}
