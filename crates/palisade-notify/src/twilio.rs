//! SMS and voice through a Twilio-compatible REST API.

use std::fmt;
use std::time::Duration;

use palisade_core::secret::Secret;
use reqwest::Url;

use crate::http::{self, Endpoint};
use crate::{is_clean_field, is_e164, Channel, DeliveryError, Message, Sender, DEFAULT_TIMEOUT};

/// Twilio's API root, the default [`TwilioConfig::base_url`].
pub const DEFAULT_TWILIO_BASE_URL: &str = "https://api.twilio.com";

/// Configuration of a [`TwilioSender`].
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    /// The API root, [`DEFAULT_TWILIO_BASE_URL`] for Twilio itself; `https://...`, or
    /// `http://` on a loopback address. A path prefix is kept.
    pub base_url: String,
    /// The account SID (`AC...`), also the basic-auth user name.
    pub account_sid: String,
    /// The auth token, the basic-auth password.
    pub auth_token: Secret<String>,
    /// The sending number (E.164) or, for SMS where the provider allows it, a sender ID.
    pub from: String,
    /// How long to wait for the connection and the answer together.
    pub timeout: Duration,
}

impl TwilioConfig {
    /// A configuration for Twilio itself ([`DEFAULT_TWILIO_BASE_URL`]) with the default
    /// timeout ([`DEFAULT_TIMEOUT`]).
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: Secret<String>,
        from: impl Into<String>,
    ) -> Self {
        TwilioConfig {
            base_url: DEFAULT_TWILIO_BASE_URL.to_owned(),
            account_sid: account_sid.into(),
            auth_token,
            from: from.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Delivers SMS and voice calls through a Twilio-compatible REST API.
///
/// SMS: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with the form fields `To`,
/// `From`, `Body`. Voice: `POST {base}/2010-04-01/Accounts/{sid}/Calls.json` with `To`, `From`
/// and `Twiml` ([`voice_twiml`]). Both with HTTP basic auth (SID, token); any 2xx answer
/// (Twilio says 201) means accepted.
pub struct TwilioSender {
    client: reqwest::Client,
    messages: Endpoint,
    calls: Endpoint,
    account_sid: String,
    auth_token: Secret<String>,
    from: String,
}

impl fmt::Debug for TwilioSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioSender")
            .field("host", &self.messages.host)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

impl TwilioSender {
    /// Checks the configuration and builds the sender (no connection is made yet).
    pub fn new(config: TwilioConfig) -> Result<Self, DeliveryError> {
        let sid = config.account_sid.trim();
        if sid.is_empty() || sid.len() > 64 || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DeliveryError::Config(
                "the account SID must be 1 to 64 letters and digits",
            ));
        }
        if config.auth_token.expose().is_empty() {
            return Err(DeliveryError::Config("the auth token is empty"));
        }
        if !is_clean_field(&config.from) {
            return Err(DeliveryError::Config(
                "the sending number is empty or contains control characters",
            ));
        }
        let base = http::endpoint(&config.base_url)?;
        if base.url.query().is_some() {
            return Err(DeliveryError::Config("the base URL must not have a query"));
        }
        let messages = api_endpoint(&base, sid, "Messages.json")?;
        let calls = api_endpoint(&base, sid, "Calls.json")?;
        Ok(TwilioSender {
            client: http::client(config.timeout)?,
            messages,
            calls,
            account_sid: sid.to_owned(),
            auth_token: config.auth_token,
            from: config.from.trim().to_owned(),
        })
    }
}

fn api_endpoint(base: &Endpoint, sid: &str, resource: &str) -> Result<Endpoint, DeliveryError> {
    let root = base.url.as_str().trim_end_matches('/');
    let url = Url::parse(&format!("{root}/2010-04-01/Accounts/{sid}/{resource}"))
        .map_err(|_| DeliveryError::Config("the base URL does not parse"))?;
    Ok(Endpoint {
        url,
        host: base.host.clone(),
    })
}

#[async_trait::async_trait]
impl Sender for TwilioSender {
    async fn send(&self, msg: &Message) -> Result<(), DeliveryError> {
        let (endpoint, content_field, content) = match msg.channel {
            Channel::Sms => (&self.messages, "Body", msg.text.clone()),
            Channel::Voice => (&self.calls, "Twiml", voice_twiml(&msg.text)),
            Channel::Email => {
                return Err(DeliveryError::UnsupportedChannel {
                    channel: msg.channel,
                })
            }
        };
        if !is_e164(&msg.to) {
            return Err(DeliveryError::InvalidRecipient {
                channel: msg.channel,
            });
        }
        let form = [
            ("To", msg.to.as_str()),
            ("From", self.from.as_str()),
            (content_field, content.as_str()),
        ];
        let request = self
            .client
            .post(endpoint.url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form);
        let result = http::execute(request, &endpoint.host).await;
        match &result {
            Ok(()) => {
                tracing::debug!(host = %endpoint.host, channel = %msg.channel, "provider accepted the message")
            }
            Err(e) => {
                tracing::warn!(host = %endpoint.host, channel = %msg.channel, error = %e, "provider delivery failed")
            }
        }
        result
    }

    fn channels(&self) -> &[Channel] {
        &[Channel::Sms, Channel::Voice]
    }
}

/// The TwiML a voice call says: the text twice, a pause between, with every digit spoken on
/// its own (`482913` becomes `4, 8, 2, 9, 1, 3`) and the text XML-escaped.
///
/// ```
/// assert_eq!(
///     palisade_notify::voice_twiml("Code <42>"),
///     "<Response><Say>Code &lt;4, 2&gt;</Say><Pause length=\"1\"/>\
///      <Say>Code &lt;4, 2&gt;</Say></Response>"
/// );
/// ```
pub fn voice_twiml(text: &str) -> String {
    let said = xml_escape(&spell_digits(text));
    format!("<Response><Say>{said}</Say><Pause length=\"1\"/><Say>{said}</Say></Response>")
}

/// Separates consecutive digits with `", "` so text-to-speech reads them one by one.
fn spell_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut previous_digit = false;
    for c in text.chars() {
        let digit = c.is_ascii_digit();
        if digit && previous_digit {
            out.push_str(", ");
        }
        out.push(c);
        previous_digit = digit;
    }
    out
}

/// Escapes text for XML element content and attributes; characters XML 1.0 forbids become
/// spaces.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_spelled() {
        assert_eq!(
            spell_digits("Your code is 482913."),
            "Your code is 4, 8, 2, 9, 1, 3."
        );
        assert_eq!(spell_digits("7"), "7");
        assert_eq!(spell_digits("12 34"), "1, 2 3, 4");
        assert_eq!(spell_digits("no digits"), "no digits");
    }

    #[test]
    fn twiml_is_escaped() {
        let twiml = voice_twiml("A & B <Say>\"x\" 'y'\u{1}</Say> 12");
        assert_eq!(
            twiml,
            "<Response><Say>A &amp; B &lt;Say&gt;&quot;x&quot; &apos;y&apos; &lt;/Say&gt; 1, 2</Say>\
             <Pause length=\"1\"/>\
             <Say>A &amp; B &lt;Say&gt;&quot;x&quot; &apos;y&apos; &lt;/Say&gt; 1, 2</Say></Response>"
        );
    }

    fn config() -> TwilioConfig {
        TwilioConfig::new(
            "AC0123456789abcdef0123456789abcdef",
            Secret::new("token".into()),
            "+15005550006",
        )
    }

    #[test]
    fn endpoints_are_built_from_the_base() {
        let sender = TwilioSender::new(config());
        let Ok(sender) = sender else {
            unreachable!("default configuration is valid")
        };
        assert_eq!(
            sender.messages.url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert_eq!(
            sender.calls.url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json"
        );
        assert_eq!(sender.messages.host, "api.twilio.com:443");
        let shown = format!("{sender:?}");
        assert!(!shown.contains("token"), "{shown}");

        let mut prefixed = config();
        prefixed.base_url = "http://127.0.0.1:8099/twilio/".into();
        let sender = TwilioSender::new(prefixed);
        assert_eq!(
            sender.ok().map(|s| s.calls.url.to_string()).as_deref(),
            Some("http://127.0.0.1:8099/twilio/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json")
        );
    }

    #[test]
    fn bad_configs() {
        for sid in ["", "AC/../x", "AC?x=1", "AC 1"] {
            let mut c = config();
            c.account_sid = sid.into();
            assert!(
                matches!(TwilioSender::new(c), Err(DeliveryError::Config(_))),
                "{sid}"
            );
        }
        let mut c = config();
        c.base_url = "http://api.twilio.example/".into();
        assert!(matches!(
            TwilioSender::new(c),
            Err(DeliveryError::Config(_))
        ));
        let mut c = config();
        c.auth_token = Secret::new(String::new());
        assert!(matches!(
            TwilioSender::new(c),
            Err(DeliveryError::Config(_))
        ));
        let mut c = config();
        c.from = "+1500\r\n".into();
        assert!(matches!(
            TwilioSender::new(c),
            Err(DeliveryError::Config(_))
        ));
    }
}
