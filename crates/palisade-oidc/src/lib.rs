//! Palisade as an OpenID Connect relying party.
//!
//! Users of a configured identity provider (IdP) sign in with the authorization code flow and
//! PKCE (S256): [`Client::begin`] builds the authorization URL and a [`PendingLogin`] that the
//! server keeps on its side; when the browser comes back, [`Client::complete`] checks the
//! `state`, exchanges the code at the token endpoint and validates the ID token, returning
//! the [`Identity`] the IdP vouches for, with the authentication methods (`amr`) it reports.
//! SSO users are exempt from Palisade's own second factor; their `amr` is what gets recorded.
//!
//! What the ID token must satisfy:
//! - a JWS in compact form whose `alg` is RS256 or ES256 — `none`, the HMAC algorithms and all
//!   others are refused before any key is consulted;
//! - signed by the key its `kid` names in the IdP's JWKS, of the key type that `alg` is defined
//!   for (an unknown `kid` makes the client fetch the JWKS once more, for key rotation);
//! - `iss` equal to the configured issuer, byte for byte; `aud` containing the client ID and
//!   `azp` equal to it whenever present (required when there are several audiences);
//! - `exp` and `iat` (and `nbf` when present) within [`CLOCK_SKEW_SECS`] of `now_unix_secs`;
//! - `nonce` equal to the pending login's (compared in constant time, like `state`).
//!
//! Network: the client talks only to the configured issuer's discovery document, token
//! endpoint and JWKS — over https, or plain http to a loopback address (for tests) — and
//! follows no redirects and no proxy settings. Time is always a parameter; randomness is
//! passed in, except in [`Client::begin_with_os_rng`], which draws it from the OS.
//!
//! With the `test-provider` feature, the `testing` module holds a small identity provider for tests
//! (also runnable as `cargo run -p palisade-oidc --example test-idp`).

#![deny(missing_docs)]

mod claims;
mod error;
mod jws;
#[cfg(feature = "test-provider")]
pub mod testing;

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use palisade_core::secret::Secret;
use rand::RngCore as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

pub use claims::CLOCK_SKEW_SECS;
pub use error::{EndpointKind, OidcError};
use jws::{Jwk, KeyLookup};

/// The largest answer read from any IdP endpoint, in bytes.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The longest authorization code accepted from the browser, in bytes.
const MAX_CODE_LEN: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The scopes requested when the configuration names none: `openid email profile`.
pub fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

/// One identity provider, as configured by the administrator.
#[derive(Debug, Clone, Deserialize)]
pub struct OidcConfig {
    /// Palisade's identifier for this IdP (shown to users, kept with their accounts).
    pub name: String,
    /// The issuer identifier, exactly as the IdP writes it in `iss` (https; http only for
    /// loopback addresses). Discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client ID Palisade is registered under at the IdP.
    pub client_id: String,
    /// The client secret, sent with `client_secret_basic`; `None` for a public client.
    #[serde(default, deserialize_with = "secret_serde::deserialize_option")]
    pub client_secret: Option<Secret<String>>,
    /// Palisade's callback URL, registered at the IdP (https; http only for loopback).
    pub redirect_uri: String,
    /// The scopes to request; `openid` is added when missing, and an empty list means
    /// [`default_scopes`].
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The IdP's endpoints; `None` to discover them from the issuer.
    #[serde(default)]
    pub endpoints: Option<Endpoints>,
}

impl OidcConfig {
    /// A configuration with the default scopes and discovered endpoints.
    pub fn new(
        name: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Option<Secret<String>>,
        redirect_uri: impl Into<String>,
    ) -> OidcConfig {
        OidcConfig {
            name: name.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes: default_scopes(),
            endpoints: None,
        }
    }
}

/// The IdP endpoints the relying party uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the authorization code is exchanged for tokens.
    pub token_endpoint: String,
    /// The JSON Web Key Set with the keys that sign ID tokens.
    pub jwks_uri: String,
}

/// A sign-in in progress: created by [`Client::begin`], kept server-side (never in the
/// browser), consumed by [`Client::complete`].
///
/// Serializing it writes the PKCE verifier in clear, which is the point (the server stores
/// it); `Debug` hides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the IdP: 32 random bytes, base64url.
    pub state: String,
    /// The `nonce` sent to the IdP: 32 random bytes, base64url.
    pub nonce: String,
    /// The PKCE code verifier: 32 random bytes, base64url (43 characters).
    #[serde(with = "secret_serde")]
    pub pkce_verifier: Secret<String>,
}

/// Who signed in, as the IdP's validated ID token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The configured issuer (equal to the token's `iss`).
    pub issuer: String,
    /// `sub`: the user's stable identifier at this issuer. Link accounts by (issuer, subject),
    /// never by email.
    pub subject: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: Option<bool>,
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username`.
    pub preferred_username: Option<String>,
    /// `amr`: the authentication methods the IdP reports (for example `pwd`, `otp`, `hwk`,
    /// `mfa`); empty when the IdP reports none.
    pub amr: Vec<String>,
    /// `acr`: the authentication context class.
    pub acr: Option<String>,
    /// `auth_time`: when the user last authenticated at the IdP, seconds since the epoch.
    pub auth_time: Option<i64>,
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// A public client: `client_id` in the form, no secret.
    None,
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Basic,
    /// `client_secret_post`, only when the IdP's discovery document offers it and not basic.
    Post,
}

/// An OpenID Connect relying party for one IdP: the configuration, the endpoints (configured
/// or discovered) and a cache of the IdP's signing keys.
pub struct Client {
    config: OidcConfig,
    endpoints: Endpoints,
    authorization_url: Url,
    token_url: Url,
    jwks_url: Url,
    scope: String,
    client_auth: ClientAuth,
    http: reqwest::Client,
    /// The keys from the last JWKS fetch; `None` until the first one.
    jwks: RwLock<Option<Arc<Vec<Jwk>>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.config.name)
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// The OpenID Provider Metadata members this crate reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Parses an endpoint URL: absolute, https (or http to a loopback address), no user info, no
/// fragment.
fn checked_url(raw: &str, problem: &'static str) -> Result<Url, OidcError> {
    let url = Url::parse(raw).map_err(|_| OidcError::Config(problem))?;
    let scheme_ok = match url.scheme() {
        "https" => true,
        "http" => is_loopback(&url),
        _ => false,
    };
    if !scheme_ok
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(OidcError::Config(problem));
    }
    Ok(url)
}

fn http_error(endpoint: EndpointKind, source: reqwest::Error) -> OidcError {
    OidcError::Http {
        endpoint,
        source: source.without_url(),
    }
}

/// Reads a response body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_limited(
    mut response: reqwest::Response,
    endpoint: EndpointKind,
) -> Result<Vec<u8>, OidcError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(OidcError::ResponseTooLarge { endpoint });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| http_error(endpoint, e))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OidcError::ResponseTooLarge { endpoint });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The OAuth `error` code of a refusal, if it is short and made of plain characters.
fn oauth_error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    let plain = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    plain.then(|| code.to_owned())
}

/// `BASE64URL(SHA-256(verifier))`, the S256 code challenge (RFC 7636 §4.2).
fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl Client {
    /// Checks the configuration and, when it names no endpoints, discovers them from
    /// `{issuer}/.well-known/openid-configuration` (whose `issuer` must equal the configured
    /// one exactly).
    pub async fn new(config: OidcConfig) -> Result<Client, OidcError> {
        if config.name.trim().is_empty() {
            return Err(OidcError::Config("the provider needs a name"));
        }
        if config.client_id.is_empty() {
            return Err(OidcError::Config("the client ID is empty"));
        }
        if config
            .client_secret
            .as_ref()
            .is_some_and(|s| s.expose().is_empty())
        {
            return Err(OidcError::Config("the client secret is empty"));
        }
        let issuer_url = checked_url(
            &config.issuer,
            "the issuer must be an https URL (http only for a loopback address)",
        )?;
        if issuer_url.query().is_some() {
            return Err(OidcError::Config("the issuer must not have a query"));
        }
        checked_url(
            &config.redirect_uri,
            "the redirect URI must be an https URL (http only for a loopback address)",
        )?;
        let mut scopes: Vec<&str> = config.scopes.iter().map(String::as_str).collect();
        if scopes.is_empty() {
            scopes = vec!["openid", "email", "profile"];
        }
        if scopes.iter().any(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(OidcError::Config(
                "a scope is empty or has invalid characters",
            ));
        }
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        let scope = scopes.join(" ");

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("palisade-oidc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OidcError::HttpClient(e.without_url()))?;

        let mut client_auth = if config.client_secret.is_some() {
            ClientAuth::Basic
        } else {
            ClientAuth::None
        };
        let endpoints = match &config.endpoints {
            Some(endpoints) => endpoints.clone(),
            None => {
                let discovery = discover(&http, &config.issuer).await?;
                if discovery.issuer != config.issuer {
                    return Err(OidcError::DiscoveryIssuerMismatch);
                }
                if discovery
                    .code_challenge_methods_supported
                    .as_ref()
                    .is_some_and(|methods| !methods.iter().any(|m| m == "S256"))
                {
                    return Err(OidcError::Config("the provider does not support PKCE S256"));
                }
                if let (ClientAuth::Basic, Some(methods)) = (
                    client_auth,
                    discovery.token_endpoint_auth_methods_supported.as_ref(),
                ) {
                    let offers = |m: &str| methods.iter().any(|x| x == m);
                    if !offers("client_secret_basic") {
                        if offers("client_secret_post") {
                            client_auth = ClientAuth::Post;
                        } else {
                            return Err(OidcError::Config(
                                "the provider offers no client secret authentication",
                            ));
                        }
                    }
                }
                Endpoints {
                    authorization_endpoint: discovery.authorization_endpoint,
                    token_endpoint: discovery.token_endpoint,
                    jwks_uri: discovery.jwks_uri,
                }
            }
        };
        let authorization_url = checked_url(
            &endpoints.authorization_endpoint,
            "the authorization endpoint must be an https URL (http only for a loopback address)",
        )?;
        let token_url = checked_url(
            &endpoints.token_endpoint,
            "the token endpoint must be an https URL (http only for a loopback address)",
        )?;
        let jwks_url = checked_url(
            &endpoints.jwks_uri,
            "the JWKS URI must be an https URL (http only for a loopback address)",
        )?;
        Ok(Client {
            config,
            endpoints,
            authorization_url,
            token_url,
            jwks_url,
            scope,
            client_auth,
            http,
            jwks: RwLock::new(None),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The endpoints in use (configured or discovered).
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Starts a sign-in: the URL to send the browser to, and the [`PendingLogin`] to keep
    /// server-side until the browser returns. `random` must be 96 fresh bytes from a
    /// cryptographic generator: the first 32 make the `state`, the next 32 the `nonce`, the
    /// last 32 the PKCE verifier.
    pub fn begin(&self, random: &[u8; 96]) -> (String, PendingLogin) {
        let (state, rest) = random.split_at(32);
        let (nonce, verifier) = rest.split_at(32);
        let pending = PendingLogin {
            state: URL_SAFE_NO_PAD.encode(state),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            pkce_verifier: Secret::new(URL_SAFE_NO_PAD.encode(verifier)),
        };
        let mut url = self.authorization_url.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri)
            .append_pair("scope", &self.scope)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair(
                "code_challenge",
                &pkce_challenge(pending.pkce_verifier.expose()),
            )
            .append_pair("code_challenge_method", "S256");
        (url.into(), pending)
    }

    /// Like [`Client::begin`], drawing the 96 random bytes from the operating system's
    /// generator (`OsRng`). The only place this crate takes randomness itself.
    pub fn begin_with_os_rng(&self) -> Result<(String, PendingLogin), OidcError> {
        let mut random = [0u8; 96];
        rand::rngs::OsRng
            .try_fill_bytes(&mut random)
            .map_err(|_| OidcError::Random)?;
        Ok(self.begin(&random))
    }

    /// Finishes a sign-in when the browser returns with `state` and `code`: checks the state
    /// (constant time), exchanges the code (with the PKCE verifier) at the token endpoint and
    /// validates the ID token against `now_unix_secs`.
    ///
    /// A [`PendingLogin`] is good for one attempt: the server should discard it whatever
    /// this returns.
    pub async fn complete(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        code: &str,
        now_unix_secs: i64,
    ) -> Result<Identity, OidcError> {
        if !bool::from(returned_state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(OidcError::StateMismatch);
        }
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(OidcError::InvalidCode);
        }
        let id_token = self.exchange_code(pending, code).await?;
        self.validate_id_token(id_token.expose(), &pending.nonce, now_unix_secs)
            .await
    }

    /// POSTs the code to the token endpoint and returns the ID token.
    async fn exchange_code(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Secret<String>, OidcError> {
        let endpoint = EndpointKind::Token;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.config.redirect_uri),
            ("client_id", &self.config.client_id),
            ("code_verifier", pending.pkce_verifier.expose()),
        ];
        let mut request = self
            .http
            .post(self.token_url.clone())
            .header(ACCEPT, "application/json");
        match (&self.config.client_secret, self.client_auth) {
            (Some(secret), ClientAuth::Basic) => {
                // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
                let credentials = format!(
                    "{}:{}",
                    form_urlencoded::byte_serialize(self.config.client_id.as_bytes())
                        .collect::<String>(),
                    form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect::<String>()
                );
                let mut value =
                    HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credentials)))
                        .map_err(|_| OidcError::Config("the client credentials cannot be sent"))?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            (Some(secret), ClientAuth::Post) => form.push(("client_secret", secret.expose())),
            _ => {}
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| http_error(endpoint, e))?;
        let status = response.status();
        let body = read_limited(response, endpoint).await?;
        if !status.is_success() {
            return Err(OidcError::TokenRefused {
                status: status.as_u16(),
                error: oauth_error_code(&body),
            });
        }
        let answer: Value =
            serde_json::from_slice(&body).map_err(|_| OidcError::InvalidResponse {
                endpoint,
                reason: "not JSON",
            })?;
        match answer.get("id_token") {
            Some(Value::String(token)) => Ok(Secret::new(token.clone())),
            _ => Err(OidcError::InvalidResponse {
                endpoint,
                reason: "no id_token",
            }),
        }
    }

    /// Verifies the ID token's signature and claims.
    async fn validate_id_token(
        &self,
        token: &str,
        nonce: &str,
        now_unix_secs: i64,
    ) -> Result<Identity, OidcError> {
        let jws = jws::parse_compact(token)?;
        let key = self.key_for(jws.kid.as_deref(), jws.alg).await?;
        key.verify(jws.alg, jws.signing_input, &jws.signature)?;
        claims::validate(
            &jws.payload,
            &claims::Expected {
                issuer: &self.config.issuer,
                client_id: &self.config.client_id,
                nonce,
                now_unix_secs,
            },
        )
    }

    /// Finds the key for a token in the cached JWKS, fetching the JWKS when there is none yet
    /// and once more when the key is not found (the IdP may have rotated its keys).
    async fn key_for(&self, kid: Option<&str>, alg: jws::Alg) -> Result<Jwk, OidcError> {
        let cached = self
            .jwks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (keys, fresh) = match cached {
            Some(keys) => (keys, false),
            None => (self.fetch_jwks().await?, true),
        };
        match jws::select_key(&keys, kid, alg) {
            KeyLookup::Found(key) => return Ok(key.clone()),
            KeyLookup::Mismatch => return Err(OidcError::KeyAlgorithmMismatch),
            KeyLookup::Ambiguous => return Err(OidcError::AmbiguousKey),
            KeyLookup::NotFound if fresh => return Err(OidcError::UnknownKey),
            KeyLookup::NotFound => {}
        }
        let keys = self.fetch_jwks().await?;
        match jws::select_key(&keys, kid, alg) {
            KeyLookup::Found(key) => Ok(key.clone()),
            KeyLookup::Mismatch => Err(OidcError::KeyAlgorithmMismatch),
            KeyLookup::Ambiguous => Err(OidcError::AmbiguousKey),
            KeyLookup::NotFound => Err(OidcError::UnknownKey),
        }
    }

    /// Fetches the JWKS and replaces the cache with it.
    async fn fetch_jwks(&self) -> Result<Arc<Vec<Jwk>>, OidcError> {
        let endpoint = EndpointKind::Jwks;
        let document = get_json(&self.http, self.jwks_url.clone(), endpoint).await?;
        let keys = Arc::new(
            jws::parse_jwks(&document).ok_or(OidcError::InvalidResponse {
                endpoint,
                reason: "not a JWK set",
            })?,
        );
        *self.jwks.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&keys));
        Ok(keys)
    }
}

async fn get_json(
    http: &reqwest::Client,
    url: Url,
    endpoint: EndpointKind,
) -> Result<Value, OidcError> {
    let response = http
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| http_error(endpoint, e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(OidcError::HttpStatus {
            endpoint,
            status: status.as_u16(),
        });
    }
    let body = read_limited(response, endpoint).await?;
    serde_json::from_slice(&body).map_err(|_| OidcError::InvalidResponse {
        endpoint,
        reason: "not JSON",
    })
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, OidcError> {
    let endpoint = EndpointKind::Discovery;
    // OpenID Connect Discovery §4: remove a trailing slash, then append the well-known path.
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let url = Url::parse(&url).map_err(|_| OidcError::Config("the issuer is not a valid URL"))?;
    let document = get_json(http, url, endpoint).await?;
    serde_json::from_value(document).map_err(|_| OidcError::InvalidResponse {
        endpoint,
        reason: "missing or invalid provider metadata",
    })
}

/// Serde for `Secret<String>` fields, which `palisade_core` leaves without serde.
mod secret_serde {
    use palisade_core::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        secret: &Secret<String>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Secret<String>, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }

    pub(crate) fn deserialize_option<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret<String>>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(Secret::new))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn endpoint_urls_must_be_https_except_on_loopback() {
        for ok in [
            "https://idp.example",
            "https://idp.example:8443/realms/x",
            "http://127.0.0.1:9000",
            "http://localhost/x",
            "http://[::1]:80/",
        ] {
            assert!(checked_url(ok, "bad").is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example",
            "http://10.0.0.1",
            "ftp://idp.example",
            "https://user:pw@idp.example",
            "https://idp.example/#frag",
            "idp.example",
            "",
        ] {
            assert!(checked_url(bad, "bad").is_err(), "{bad}");
        }
    }

    #[test]
    fn oauth_error_codes_are_passed_on_only_when_plain() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant","error_description":"x"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(oauth_error_code(br#"{"error":"code abc123 bad"}"#), None);
        assert_eq!(oauth_error_code(b"<html>"), None);
    }

    #[test]
    fn config_deserializes_with_defaults_and_hides_the_secret() {
        let config: OidcConfig = serde_json::from_str(
            r#"{"name":"corp","issuer":"https://idp.example","client_id":"p",
                "client_secret":"s3cr3t-value","redirect_uri":"https://palisade.example/cb"}"#,
        )
        .unwrap();
        assert_eq!(config.scopes, default_scopes());
        assert!(config.endpoints.is_none());
        assert_eq!(
            config.client_secret.as_ref().unwrap().expose(),
            "s3cr3t-value"
        );
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
    }
}
