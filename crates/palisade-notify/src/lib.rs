//! Delivery of Palisade's one-time sign-in codes by email, SMS and voice call.
//!
//! This crate owns the last hop of two-factor sign-in: handing a short message that carries a
//! one-time code to a mail server or a telephony provider. It does not generate, store or check
//! codes; the portal does that and passes the finished [`Message`] to a [`Sender`].
//!
//! # Central types
//!
//! - [`Message`]: the recipient (an email address or an E.164 number), a subject, the text and
//!   the [`Channel`] (email, SMS or voice). Its `Debug` output hides the subject and text.
//! - [`Sender`]: the async trait every delivery method implements; [`Sender::channels`] tells
//!   which channels a sender serves.
//! - [`SmtpSender`] ([`SmtpConfig`]): email through an SMTP server with `lettre` over rustls:
//!   `smtps://` (implicit TLS), `smtp+starttls://` (STARTTLS required, never downgraded) or
//!   plain `smtp://` (for a local relay; credentials are refused over it unless the host is
//!   loopback).
//! - [`WebhookSender`] ([`WebhookConfig`]): SMS and voice through your own gateway: a JSON
//!   `POST` signed with HMAC-SHA256 ([`verify_webhook_signature`] checks it on the receiving
//!   side).
//! - [`TwilioSender`] ([`TwilioConfig`]): SMS and voice through a Twilio-compatible REST API;
//!   calls read the code digit by digit, twice ([`voice_twiml`]).
//! - [`DeliveryError`]: what went wrong. Its messages may name the destination host but never
//!   the code, the message text, a password or a token.
//!
//! Every sender connects only to the endpoint it was configured with: HTTP redirects are not
//! followed and proxy settings from the environment are ignored. Cleartext `http://` endpoints
//! are accepted only on loopback addresses. Secrets are held in
//! [`Secret`](palisade_core::secret::Secret).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use palisade_core::secret::Secret;
//! use palisade_notify::{Message, Sender, SmtpConfig, SmtpSender, TwilioConfig, TwilioSender};
//!
//! # async fn run() -> Result<(), palisade_notify::DeliveryError> {
//! let mail = SmtpSender::new(SmtpConfig {
//!     url: "smtps://mail.example.com:465".into(),
//!     from: "Palisade <palisade@example.com>".into(),
//!     username: Some("palisade".into()),
//!     password: Some(Secret::new("app-password".into())),
//!     timeout: Duration::from_secs(10),
//! })?;
//! mail.send(&Message::email(
//!     "alice@example.com",
//!     "Your Palisade sign-in code",
//!     "Your sign-in code is 482913. It expires in 5 minutes.",
//! ))
//! .await?;
//!
//! let phone = TwilioSender::new(TwilioConfig::new(
//!     "AC0123456789abcdef0123456789abcdef",
//!     Secret::new("auth-token".into()),
//!     "+15005550006",
//! ))?;
//! phone.send(&Message::sms("+14155550100", "Palisade code: 482913")).await?;
//! phone.send(&Message::voice("+14155550100", "Your Palisade code is 482913.")).await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

mod http;
mod smtp;
mod twilio;
mod webhook;

pub use smtp::{SmtpConfig, SmtpSender};
pub use twilio::{voice_twiml, TwilioConfig, TwilioSender, DEFAULT_TWILIO_BASE_URL};
pub use webhook::{
    sign_webhook, verify_webhook_signature, WebhookConfig, WebhookSender, SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
};

/// How long a sender waits for its endpoint unless configured otherwise.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The way a message reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// An email to an address such as `alice@example.com`.
    Email,
    /// A text message to an E.164 number such as `+14155550100`.
    Sms,
    /// A phone call to an E.164 number that reads the text aloud.
    Voice,
}

impl Channel {
    /// The lowercase name: `email`, `sms` or `voice` (also the webhook's `channel` field).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Voice => "voice",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to deliver.
///
/// `Debug` shows the recipient and channel only: the subject and text carry the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// An email address (for [`Channel::Email`]) or an E.164 number such as `+14155550100`
    /// (for [`Channel::Sms`] and [`Channel::Voice`]).
    pub to: String,
    /// The email subject; ignored by SMS and voice.
    pub subject: String,
    /// The text: the email body, the SMS body or what the call says.
    pub text: String,
    /// How to deliver it.
    pub channel: Channel,
}

impl Message {
    /// An email.
    pub fn email(
        to: impl Into<String>,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Message {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            channel: Channel::Email,
        }
    }

    /// A text message to an E.164 number.
    pub fn sms(to: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            to: to.into(),
            subject: String::new(),
            text: text.into(),
            channel: Channel::Sms,
        }
    }

    /// A voice call to an E.164 number that reads `text` aloud.
    pub fn voice(to: impl Into<String>, text: impl Into<String>) -> Self {
        Message {
            to: to.into(),
            subject: String::new(),
            text: text.into(),
            channel: Channel::Voice,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .field("subject", &"***")
            .field("text", &"***")
            .field("channel", &self.channel)
            .finish()
    }
}

/// A way to deliver [`Message`]s.
#[async_trait::async_trait]
pub trait Sender: Send + Sync {
    /// Delivers one message; `Ok` once the endpoint accepted it (an SMTP server queued it, an
    /// HTTP endpoint answered 2xx).
    async fn send(&self, msg: &Message) -> Result<(), DeliveryError>;

    /// The channels this sender delivers; [`Sender::send`] refuses others with
    /// [`DeliveryError::UnsupportedChannel`].
    fn channels(&self) -> &[Channel];
}

/// Why a message was not delivered.
///
/// The messages name at most the destination host (`host:port`), never the code, the text,
/// the recipient, a password or a token, so they are safe to log and to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The sender's configuration is unusable (found when the sender is built).
    #[error("invalid notification configuration: {0}")]
    Config(&'static str),
    /// The message asked for a channel this sender does not serve.
    #[error("this sender does not deliver by {channel}")]
    UnsupportedChannel {
        /// The channel that was asked for.
        channel: Channel,
    },
    /// The recipient is not a valid email address (email) or E.164 number (SMS, voice).
    #[error("invalid {channel} recipient")]
    InvalidRecipient {
        /// The message's channel.
        channel: Channel,
    },
    /// The connection could not be made or broke off.
    #[error("connection to {host} failed")]
    Connect {
        /// The destination, `host:port`.
        host: String,
    },
    /// TLS could not be established (bad certificate, or a server that does not offer
    /// STARTTLS when it is required).
    #[error("TLS with {host} failed")]
    Tls {
        /// The destination, `host:port`.
        host: String,
    },
    /// The endpoint did not answer within the configured timeout.
    #[error("{host} did not answer in time")]
    Timeout {
        /// The destination, `host:port`.
        host: String,
    },
    /// The endpoint answered but refused the message: the HTTP status (anything but 2xx) or
    /// the SMTP reply code (4xx, 5xx).
    #[error("the message was refused with status {status}")]
    Rejected {
        /// HTTP status or SMTP reply code.
        status: u16,
    },
    /// The endpoint answered something this crate does not understand.
    #[error("unexpected answer from {host}")]
    Protocol {
        /// The destination, `host:port`.
        host: String,
    },
}

/// Whether `host` (a host name or IP address, IPv6 with or without brackets) is loopback.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// Whether `number` is an E.164 number: `+`, a non-zero digit, 7 to 15 digits in all.
pub(crate) fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Whether `s` is non-empty and free of control characters (header and form safe).
pub(crate) fn is_clean_field(s: &str) -> bool {
    !s.trim().is_empty() && !s.chars().any(char::is_control)
}

/// Whether a rustls error is in the chain: lettre and reqwest report a failed handshake (bad
/// certificate, a server that does not speak TLS) as a connection error.
pub(crate) fn caused_by_tls(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps, so look inside (io errors nest).
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if caused_by_tls(inner) {
                return true;
            }
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        assert!(is_e164("+14155550100"));
        assert!(is_e164("+4930123456"));
        assert!(!is_e164("14155550100"));
        assert!(!is_e164("+04155550100"));
        assert!(!is_e164("+1 415 555 0100"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("+123"));
        assert!(!is_e164("+1415555010a"));
        assert!(!is_e164(""));
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.8.9.10"));
        assert!(is_loopback_host("[::1]"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("LocalHost"));
        assert!(!is_loopback_host("localhost.example.com"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("mail.example.com"));
    }

    #[test]
    fn message_debug_hides_the_code() {
        let msg = Message::email("a@example.com", "Code 482913", "Your code is 482913");
        let shown = format!("{msg:?}");
        assert!(!shown.contains("482913"), "{shown}");
        assert!(shown.contains("a@example.com"));
    }

    #[test]
    fn senders_are_usable_as_trait_objects() {
        fn boxed(sender: impl Sender + 'static) -> Box<dyn Sender> {
            Box::new(sender)
        }
        let config = WebhookConfig::new(
            "https://sms.example.com/",
            palisade_core::secret::Secret::new("0123456789abcdef".into()),
        );
        let senders: Vec<Box<dyn Sender>> =
            WebhookSender::new(config).map(boxed).into_iter().collect();
        assert_eq!(senders.len(), 1);
        assert_eq!(senders[0].channels(), &[Channel::Sms, Channel::Voice]);
    }

    #[test]
    fn errors_name_the_host_only() {
        let err = DeliveryError::Timeout {
            host: "mail.example.com:465".into(),
        };
        assert_eq!(
            err.to_string(),
            "mail.example.com:465 did not answer in time"
        );
        assert_eq!(
            DeliveryError::Rejected { status: 550 }.to_string(),
            "the message was refused with status 550"
        );
    }

    #[test]
    fn channel_names() {
        assert_eq!(Channel::Sms.to_string(), "sms");
        assert_eq!(
            serde_json::to_string(&Channel::Voice).ok().as_deref(),
            Some("\"voice\"")
        );
    }
}
