//! The configuration file (`palisade serve --config FILE`, TOML): what the portal needs to
//! know about the world around it. Unknown keys are errors; secrets are read from files named
//! here, never written in the configuration itself. Everything is optional: without a file the
//! portal runs with TOTP and recovery codes only.
//!
//! ```toml
//! public_url = "https://palisade.example.com"   # passkeys (relying party) and SSO redirects
//!
//! [smtp]                                         # email codes
//! url = "smtp+starttls://mail.example.com:587"   # or smtp://host:port, smtps://host:port
//! from = "palisade@example.com"
//! username = "palisade"
//! password_file = "/etc/palisade/smtp-password"
//!
//! [phone]                                        # SMS and voice codes: a webhook ...
//! webhook_url = "https://sms-gateway.example.com/send"
//! webhook_secret_file = "/etc/palisade/sms-webhook-secret"
//! # ... or a Twilio-compatible REST API
//! # twilio_base_url = "https://api.twilio.com"
//! # twilio_account_sid = "AC..."
//! # twilio_auth_token_file = "/etc/palisade/twilio-token"
//! # twilio_from = "+15550100"
//! ```

use crate::signin::delivery::Delivery;
use palisade_core::secret::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The URL users reach the portal at.
    pub public_url: Option<String>,
    /// Email delivery.
    pub smtp: Option<RawSmtp>,
    /// SMS and voice delivery.
    pub phone: Option<RawPhone>,
    /// OpenID Connect identity providers.
    #[serde(default)]
    pub oidc: Vec<RawOidc>,
    /// SAML 2.0 identity providers.
    #[serde(default)]
    pub saml: Vec<RawSaml>,
}

/// `[[saml]]`: a SAML 2.0 identity provider (signed assertions only).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaml {
    /// Palisade's name for it (URLs under `/sso/saml/<name>/`).
    pub name: String,
    /// The IdP's entity id (the `Issuer` of its assertions).
    pub idp_entity_id: String,
    /// The IdP's single sign-on URL (HTTP-Redirect binding).
    pub idp_sso_url: String,
    /// PEM file with the IdP's signing certificate(s).
    pub idp_certificate_file: PathBuf,
    /// Roles of users created at their first sign-in (default `readonly`).
    #[serde(default = "default_roles")]
    pub default_roles: Vec<String>,
    /// Create a Palisade user at the first sign-in of an unknown subject (default true).
    #[serde(default = "yes")]
    pub auto_create: bool,
}

/// `[[oidc]]`: an OpenID Connect identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// Palisade's name for it (in URLs: `/sso/oidc/<name>/login`).
    pub name: String,
    /// Issuer URL (its `/.well-known/openid-configuration` is read at first use).
    pub issuer: String,
    /// Client id registered at the IdP.
    pub client_id: String,
    /// File holding the client secret (confidential clients).
    pub client_secret_file: Option<PathBuf>,
    /// Scopes (default `openid email profile`).
    pub scopes: Option<Vec<String>>,
    /// Roles of users created at their first sign-in (default `readonly`).
    #[serde(default = "default_roles")]
    pub default_roles: Vec<String>,
    /// Create a Palisade user at the first sign-in of an unknown subject (default true).
    #[serde(default = "yes")]
    pub auto_create: bool,
}

fn default_roles() -> Vec<String> {
    vec!["readonly".into()]
}

fn yes() -> bool {
    true
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// `smtp://`, `smtp+starttls://` or `smtps://` URL.
    pub url: String,
    /// Sender address.
    pub from: String,
    /// User name.
    pub username: Option<String>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

/// `[phone]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhone {
    /// Webhook URL.
    pub webhook_url: Option<String>,
    /// File holding the webhook's HMAC secret.
    pub webhook_secret_file: Option<PathBuf>,
    /// Twilio-compatible API base URL.
    pub twilio_base_url: Option<String>,
    /// Account SID.
    pub twilio_account_sid: Option<String>,
    /// File holding the auth token.
    pub twilio_auth_token_file: Option<PathBuf>,
    /// Sending number.
    pub twilio_from: Option<String>,
}

/// A configuration that failed to load.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading a file.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// Parsing the TOML.
    #[error("{0}: {1}")]
    Parse(PathBuf, String),
    /// A value that does not work.
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The configuration, checked and turned into working parts.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Code delivery.
    pub delivery: Delivery,
    /// Passkeys.
    pub webauthn: Option<palisade_webauthn::RelyingParty>,
    /// The public URL.
    pub public_url: Option<String>,
    /// Single sign-on providers.
    pub sso: crate::signin::sso::Providers,
}

fn read_secret(path: &Path) -> Result<Secret<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io(path.to_path_buf(), e))?;
    Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
}

impl RawConfig {
    /// Reads a file.
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Io(path.to_path_buf(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_path_buf(), e.to_string()))
    }

    /// Checks the values and builds the senders.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut delivery = Delivery::default();
        if let Some(s) = self.smtp {
            let mut c = palisade_notify::SmtpConfig::new(s.url, s.from);
            c.username = s.username;
            c.password = s.password_file.as_deref().map(read_secret).transpose()?;
            let sender = palisade_notify::SmtpSender::new(c)
                .map_err(|e| ConfigError::Invalid(format!("[smtp] {e}")))?;
            delivery.email = Some(Arc::new(sender));
        }
        if let Some(p) = self.phone {
            match (&p.webhook_url, &p.twilio_account_sid) {
                (Some(url), None) => {
                    let file = p.webhook_secret_file.as_deref().ok_or_else(|| {
                        ConfigError::Invalid(
                            "[phone] webhook_secret_file is required with webhook_url".into(),
                        )
                    })?;
                    let c = palisade_notify::WebhookConfig::new(url.clone(), read_secret(file)?);
                    let sender = palisade_notify::WebhookSender::new(c)
                        .map_err(|e| ConfigError::Invalid(format!("[phone] {e}")))?;
                    delivery.phone = Some(Arc::new(sender));
                }
                (None, Some(sid)) => {
                    let file = p.twilio_auth_token_file.as_deref().ok_or_else(|| {
                        ConfigError::Invalid("[phone] twilio_auth_token_file is required".into())
                    })?;
                    let from = p.twilio_from.clone().ok_or_else(|| {
                        ConfigError::Invalid("[phone] twilio_from is required".into())
                    })?;
                    let mut c =
                        palisade_notify::TwilioConfig::new(sid.clone(), read_secret(file)?, from);
                    if let Some(base) = &p.twilio_base_url {
                        c.base_url = base.clone();
                    }
                    let sender = palisade_notify::TwilioSender::new(c)
                        .map_err(|e| ConfigError::Invalid(format!("[phone] {e}")))?;
                    delivery.phone = Some(Arc::new(sender));
                }
                _ => {
                    return Err(ConfigError::Invalid(
                        "[phone] needs either webhook_url or twilio_account_sid".into(),
                    ))
                }
            }
        }
        let webauthn = match &self.public_url {
            Some(url) => {
                let host = url
                    .split("://")
                    .nth(1)
                    .and_then(|rest| rest.split(['/', ':']).next())
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| {
                        ConfigError::Invalid(format!("public_url `{url}` is not an http(s) URL"))
                    })?;
                Some(palisade_webauthn::RelyingParty {
                    id: host.to_string(),
                    name: "Palisade".into(),
                    origins: vec![url.trim_end_matches('/').to_string()],
                })
            }
            None => None,
        };
        let mut sso = crate::signin::sso::Providers::default();
        for o in self.oidc {
            let base = self.public_url.as_deref().ok_or_else(|| {
                ConfigError::Invalid(
                    "[[oidc]] needs public_url (the redirect URI is built from it)".into(),
                )
            })?;
            if o.name.is_empty()
                || !o
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "[[oidc]] name `{}` must be letters, digits, - and _",
                    o.name
                )));
            }
            let secret = o
                .client_secret_file
                .as_deref()
                .map(read_secret)
                .transpose()?;
            let redirect = format!(
                "{}/sso/oidc/{}/callback",
                base.trim_end_matches('/'),
                o.name
            );
            let mut c = palisade_oidc::OidcConfig::new(
                o.name.clone(),
                o.issuer,
                o.client_id,
                secret,
                redirect,
            );
            if let Some(scopes) = o.scopes {
                c.scopes = scopes;
            }
            sso.add_oidc(c, o.default_roles, o.auto_create);
        }
        for s in self.saml {
            let base = self.public_url.as_deref().ok_or_else(|| {
                ConfigError::Invalid(
                    "[[saml]] needs public_url (the service provider URLs are built from it)"
                        .into(),
                )
            })?;
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "[[saml]] name `{}` must be letters, digits, - and _",
                    s.name
                )));
            }
            let pem = std::fs::read_to_string(&s.idp_certificate_file)
                .map_err(|e| ConfigError::Io(s.idp_certificate_file.clone(), e))?;
            let certs = palisade_saml::pem_certificates(&pem)
                .map_err(|e| ConfigError::Invalid(format!("[[saml]] {}: {e}", s.name)))?;
            let root = format!("{}/sso/saml/{}", base.trim_end_matches('/'), s.name);
            let sp = palisade_saml::SpConfig::new(
                format!("{root}/metadata"),
                format!("{root}/acs"),
                s.idp_entity_id,
                s.idp_sso_url,
                certs,
            );
            sso.add_saml(s.name, sp, s.default_roles, s.auto_create);
        }
        Ok(Config {
            delivery,
            webauthn,
            public_url: self.public_url,
            sso,
        })
    }
}
