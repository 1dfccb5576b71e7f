//! Email through an SMTP server (lettre, tokio, rustls with ring).

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use palisade_core::secret::Secret;
use reqwest::Url;

use crate::{
    caused_by_tls, is_loopback_host, Channel, DeliveryError, Message, Sender, DEFAULT_TIMEOUT,
};

/// Configuration of an [`SmtpSender`].
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The server: `smtps://host[:465]` (implicit TLS), `smtp+starttls://host[:587]`
    /// (STARTTLS, required) or `smtp://host[:25]` (no TLS: for a relay on loopback or a
    /// trusted network; credentials are refused over it unless the host is loopback).
    /// Credentials go in `username`/`password`, never in the URL.
    pub url: String,
    /// The sender, `palisade@example.com` or `Palisade <palisade@example.com>`.
    pub from: String,
    /// The SMTP AUTH user name, if the server wants one.
    pub username: Option<String>,
    /// The SMTP AUTH password; set together with `username`.
    pub password: Option<Secret<String>>,
    /// How long the whole delivery (connect, TLS, AUTH, the message) may take.
    pub timeout: Duration,
}

impl SmtpConfig {
    /// A configuration without credentials and with the default timeout
    /// ([`DEFAULT_TIMEOUT`]).
    pub fn new(url: impl Into<String>, from: impl Into<String>) -> Self {
        SmtpConfig {
            url: url.into(),
            from: from.into(),
            username: None,
            password: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Wrapper,
}

/// Delivers email through one SMTP server, one connection per message.
///
/// The message is `text/plain` in UTF-8 with the given subject; TLS is verified against the
/// Mozilla roots (webpki-roots) and never downgraded: with `smtp+starttls://` a server that
/// does not offer STARTTLS gets neither credentials nor the message.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    security: Security,
    timeout: Duration,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.host)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Checks the configuration and builds the sender (no connection is made yet).
    pub fn new(config: SmtpConfig) -> Result<Self, DeliveryError> {
        let url = Url::parse(config.url.trim())
            .map_err(|_| DeliveryError::Config("the SMTP URL does not parse"))?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (Security::Plain, 25),
            "smtp+starttls" => (Security::StartTls, 587),
            "smtps" => (Security::Wrapper, 465),
            _ => {
                return Err(DeliveryError::Config(
                    "the SMTP URL must start with smtps://, smtp+starttls:// or smtp://",
                ))
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DeliveryError::Config(
                "the SMTP URL must not contain credentials: use username and password",
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(DeliveryError::Config(
                "the SMTP URL takes only a host and a port (TLS is chosen by the scheme)",
            ));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(DeliveryError::Config("the SMTP URL has no host")),
        };
        // lettre wants the bare address; the label keeps the brackets of IPv6.
        let server = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .to_owned();
        let port = url.port().unwrap_or(default_port);
        let label = format!("{host}:{port}");
        if config.timeout.is_zero() {
            return Err(DeliveryError::Config("the timeout must be positive"));
        }
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| DeliveryError::Config("the sender address is not a valid mailbox"))?;

        let tls = match security {
            Security::Plain => Tls::None,
            Security::StartTls | Security::Wrapper => {
                let params = TlsParameters::new(server.clone())
                    .map_err(|_| DeliveryError::Config("TLS could not be set up for the host"))?;
                if security == Security::StartTls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout));
        match (config.username, config.password) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                if user.is_empty() {
                    return Err(DeliveryError::Config("the SMTP user name is empty"));
                }
                if security == Security::Plain && !is_loopback_host(&host) {
                    return Err(DeliveryError::Config(
                        "credentials would cross the network in clear text: use smtps:// or \
                         smtp+starttls:// (smtp:// with credentials only on loopback)",
                    ));
                }
                builder = builder.credentials(Credentials::new(user, password.into_inner()));
            }
            _ => {
                return Err(DeliveryError::Config(
                    "set both the SMTP user name and password, or neither",
                ))
            }
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            host: label,
            security,
            timeout: config.timeout,
        })
    }

    fn map_error(&self, err: &lettre::transport::smtp::Error) -> DeliveryError {
        let host = self.host.clone();
        if err.is_timeout() {
            DeliveryError::Timeout { host }
        } else if let Some(code) = err.status() {
            DeliveryError::Rejected {
                status: u16::from(code),
            }
        } else if err.is_tls() || caused_by_tls(err) {
            DeliveryError::Tls { host }
        } else if err.is_client() {
            // lettre's own refusals; the one that matters is a server without STARTTLS when
            // it is required. Only the classification uses the text, never the output.
            if self.security == Security::StartTls && err.to_string().contains("STARTTLS") {
                DeliveryError::Tls { host }
            } else {
                DeliveryError::Protocol { host }
            }
        } else if err.is_response() {
            DeliveryError::Protocol { host }
        } else {
            DeliveryError::Connect { host }
        }
    }
}

/// Replaces control characters (a CR or LF could start a new header) with spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[async_trait::async_trait]
impl Sender for SmtpSender {
    async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
        if msg.channel != Channel::Email {
            return Err(DeliveryError::UnsupportedChannel {
                channel: msg.channel,
            });
        }
        let to: Mailbox = msg
            .to
            .trim()
            .parse()
            .map_err(|_| DeliveryError::InvalidRecipient {
                channel: Channel::Email,
            })?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&msg.subject))
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|_| DeliveryError::InvalidRecipient {
                channel: Channel::Email,
            })?;
        let result = match tokio::time::timeout(self.timeout, self.transport.send(email)).await {
            Err(_elapsed) => Err(DeliveryError::Timeout {
                host: self.host.clone(),
            }),
            Ok(Err(e)) => Err(self.map_error(&e)),
            Ok(Ok(_response)) => Ok(()),
        };
        match &result {
            Ok(()) => tracing::debug!(host = %self.host, "SMTP server accepted the message"),
            Err(e) => tracing::warn!(host = %self.host, error = %e, "email delivery failed"),
        }
        result
    }

    fn channels(&self) -> &[Channel] {
        &[Channel::Email]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> SmtpConfig {
        SmtpConfig::new(url, "Palisade <palisade@example.com>")
    }

    fn with_credentials(url: &str) -> SmtpConfig {
        SmtpConfig {
            username: Some("palisade".into()),
            password: Some(Secret::new("hunter2-smtp".into())),
            ..config(url)
        }
    }

    #[test]
    fn accepted_urls() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://[::1]:2525/",
            "smtp://relay.internal",
            "smtp+starttls://mail.example.com:587",
            "smtps://mail.example.com",
        ] {
            assert!(SmtpSender::new(config(url)).is_ok(), "{url}");
        }
        let Ok(sender) = SmtpSender::new(config("smtps://mail.example.com")) else {
            unreachable!("valid configuration")
        };
        assert_eq!(sender.host, "mail.example.com:465");
        let Ok(sender) = SmtpSender::new(config("smtp://[::1]:2525")) else {
            unreachable!("valid configuration")
        };
        assert_eq!(sender.host, "[::1]:2525");
    }

    #[test]
    fn refused_urls() {
        for url in [
            "",
            "mail.example.com:25",
            "http://mail.example.com",
            "smtp://user:pw@mail.example.com",
            "smtp://mail.example.com:25?tls=required",
            "smtp://mail.example.com/path",
        ] {
            let err = SmtpSender::new(config(url)).err();
            assert!(matches!(err, Some(DeliveryError::Config(_))), "{url}");
            assert!(!format!("{err:?}").contains("pw@"));
        }
    }

    #[test]
    fn credentials_only_over_tls_or_loopback() {
        assert!(SmtpSender::new(with_credentials("smtps://mail.example.com")).is_ok());
        assert!(SmtpSender::new(with_credentials("smtp+starttls://mail.example.com")).is_ok());
        assert!(SmtpSender::new(with_credentials("smtp://127.0.0.1:2525")).is_ok());
        let err = SmtpSender::new(with_credentials("smtp://relay.example.com")).err();
        assert!(matches!(err, Some(DeliveryError::Config(_))));
        assert!(!err
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("hunter2"));

        let half = SmtpConfig {
            username: Some("palisade".into()),
            ..config("smtps://mail.example.com")
        };
        assert!(matches!(
            SmtpSender::new(half),
            Err(DeliveryError::Config(_))
        ));
    }

    #[test]
    fn bad_sender_address() {
        let c = SmtpConfig::new("smtps://mail.example.com", "not an address");
        assert!(matches!(SmtpSender::new(c), Err(DeliveryError::Config(_))));
    }

    #[test]
    fn subject_stays_on_one_line() {
        assert_eq!(one_line("Code\r\nBcc: x@evil"), "Code  Bcc: x@evil");
    }
}
