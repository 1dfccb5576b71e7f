//! Delivery of one-time codes through the configured senders (`palisade-notify`): email
//! over SMTP; SMS and voice through a webhook or a Twilio-compatible provider.

use palisade_notify::{DeliveryError, Message, Sender};
use std::sync::Arc;

/// The configured senders.
#[derive(Clone, Default)]
pub struct Delivery {
    /// Email.
    pub email: Option<Arc<dyn Sender>>,
    /// SMS and voice.
    pub phone: Option<Arc<dyn Sender>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("email", &self.email.is_some())
            .field("phone", &self.phone.is_some())
            .finish()
    }
}

/// Why a code could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No sender is configured for the channel.
    #[error("no {0} delivery is configured on this portal")]
    NotConfigured(&'static str),
    /// The sender failed.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

impl Delivery {
    /// Which channels can be used.
    pub fn available(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.email.is_some() {
            v.push("email");
        }
        if let Some(p) = &self.phone {
            let ch = p.channels();
            if ch.contains(&palisade_notify::Channel::Sms) {
                v.push("sms");
            }
            if ch.contains(&palisade_notify::Channel::Voice) {
                v.push("voice");
            }
        }
        v
    }

    /// Sends a sign-in code over `channel` (`email`, `sms`, `voice`) to `to`.
    pub async fn send(&self, channel: &str, to: &str, code: &str) -> Result<(), SendError> {
        let text = format!("Your Palisade verification code is {code}. It expires in 10 minutes. If you did not try to sign in, tell your administrator.");
        match channel {
            "email" => {
                let s = self
                    .email
                    .as_ref()
                    .ok_or(SendError::NotConfigured("email"))?;
                s.send(&Message::email(
                    to,
                    format!("Palisade verification code {code}"),
                    text,
                ))
                .await?;
            }
            "sms" => {
                let s = self.phone.as_ref().ok_or(SendError::NotConfigured("SMS"))?;
                s.send(&Message::sms(to, text)).await?;
            }
            "voice" => {
                let s = self
                    .phone
                    .as_ref()
                    .ok_or(SendError::NotConfigured("voice"))?;
                s.send(&Message::voice(
                    to,
                    format!("Your Palisade verification code is {code}."),
                ))
                .await?;
            }
            _ => return Err(SendError::NotConfigured("such")),
        }
        Ok(())
    }
}
