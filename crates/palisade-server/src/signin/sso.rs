//! Single sign-on: OpenID Connect (authorization code with PKCE) and SAML 2.0. SSO users are
//! keyed by (identity provider, subject), are exempt from Palisade's own second factor (their
//! identity provider does it), and the authentication methods the provider reports (`amr`)
//! are recorded with the link and in the audit log.
//!
//! The state of a round trip to the provider (OIDC state, nonce and PKCE verifier) travels in
//! a short-lived cookie sealed with the master key, so any portal instance can finish it.

use super::session::{self, SessionState};
use super::Origin;
use crate::error::ApiError;
use crate::portal::Actor;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use palisade_store::{NewUser, SsoIdentity, UserRecord};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// How long a round trip to the identity provider may take.
const ROUND_TRIP_MS: i64 = 10 * 60 * 1000;
const COOKIE: &str = "palisade_sso";

/// One OIDC provider: its configuration and, once discovered, its client.
pub struct OidcProvider {
    config: palisade_oidc::OidcConfig,
    client: OnceCell<palisade_oidc::Client>,
    default_roles: Vec<String>,
    auto_create: bool,
}

/// One SAML provider.
pub struct SamlProvider {
    sp: palisade_saml::SpConfig,
    default_roles: Vec<String>,
    auto_create: bool,
}

/// The configured providers.
#[derive(Clone, Default)]
pub struct Providers {
    oidc: HashMap<String, Arc<OidcProvider>>,
    saml: HashMap<String, Arc<SamlProvider>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("oidc", &self.oidc.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Providers {
    /// Adds an OIDC provider.
    pub fn add_oidc(
        &mut self,
        config: palisade_oidc::OidcConfig,
        default_roles: Vec<String>,
        auto_create: bool,
    ) {
        let name = config.name.clone();
        self.oidc.insert(
            name,
            Arc::new(OidcProvider {
                config,
                client: OnceCell::new(),
                default_roles,
                auto_create,
            }),
        );
    }

    /// Adds a SAML provider.
    pub fn add_saml(
        &mut self,
        name: String,
        sp: palisade_saml::SpConfig,
        default_roles: Vec<String>,
        auto_create: bool,
    ) {
        self.saml.insert(
            name,
            Arc::new(SamlProvider {
                sp,
                default_roles,
                auto_create,
            }),
        );
    }

    /// Names of the SAML providers.
    pub fn saml_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.saml.keys().cloned().collect();
        v.sort();
        v
    }

    /// Names of the OIDC providers.
    pub fn oidc_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.oidc.keys().cloned().collect();
        v.sort();
        v
    }
}

impl OidcProvider {
    async fn client(&self) -> Result<&palisade_oidc::Client, ApiError> {
        self.client
            .get_or_try_init(|| palisade_oidc::Client::new(self.config.clone()))
            .await
            .map_err(|e| {
                tracing::warn!(provider = %self.config.name, error = %e, "OIDC provider unavailable");
                ApiError::Unavailable
            })
    }
}

#[derive(Serialize, Deserialize)]
struct RoundTrip {
    provider: String,
    started_ms: i64,
    pending: serde_json::Value,
}

fn sso_cookie(value: &str, max_age: i64, secure: bool) -> axum::http::HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    super::api::header_value(&format!(
        "{COOKIE}={value}; Path=/sso; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure_attr}"
    ))
}

fn provider(state: &AppState, name: &str) -> Result<Arc<OidcProvider>, ApiError> {
    state
        .sso
        .oidc
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no identity provider `{name}`")))
}

/// `GET /sso/oidc/{name}/login`: off to the identity provider.
pub async fn oidc_login(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = provider(&state, &name)?;
    let client = p.client().await?;
    let (url, pending) = client
        .begin_with_os_rng()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let trip = RoundTrip {
        provider: name.clone(),
        started_ms: state.portal.now(),
        pending: serde_json::to_value(&pending).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let plain = serde_json::to_vec(&trip).map_err(|e| ApiError::Internal(e.to_string()))?;
    let sealed = state.portal.keys.seal(&plain, "sso-round-trip");
    let cookie_value = sealed.replace('+', "-").replace('/', "_");
    let mut resp = Redirect::to(&url).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        sso_cookie(&cookie_value, ROUND_TRIP_MS / 1000, state.secure_cookies),
    );
    Ok(resp)
}

/// The query of the redirect back from the provider.
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /sso/oidc/{name}/callback`.
pub async fn oidc_callback(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, ApiError> {
    let origin = super::api::origin_of(&state, peer, &headers);
    let actor = Actor {
        username: format!("oidc:{name}"),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        ..Default::default()
    };
    if let Some(e) = q.error {
        let e: String = e
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(sso_failure(
            &state,
            &actor,
            "OIDC",
            &name,
            format!("the identity provider answered `{e}`"),
        )
        .await);
    }
    let p = provider(&state, &name)?;
    let Some(cookie) = session::cookie_value(&headers, COOKIE) else {
        return Err(sso_failure(
            &state,
            &actor,
            "OIDC",
            &name,
            "the sign-in round trip expired or was started elsewhere; start again".into(),
        )
        .await);
    };
    let sealed = cookie.replace('-', "+").replace('_', "/");
    let trip: RoundTrip = match state
        .portal
        .keys
        .open(&sealed, "sso-round-trip")
        .ok()
        .and_then(|p| serde_json::from_slice(p.expose()).ok())
    {
        Some(t) => t,
        None => {
            return Err(sso_failure(
                &state,
                &actor,
                "OIDC",
                &name,
                "the sign-in round trip is not valid; start again".into(),
            )
            .await)
        }
    };
    if trip.provider != name || state.portal.now() - trip.started_ms > ROUND_TRIP_MS {
        return Err(sso_failure(
            &state,
            &actor,
            "OIDC",
            &name,
            "the sign-in round trip expired; start again".into(),
        )
        .await);
    }
    let pending: palisade_oidc::PendingLogin =
        serde_json::from_value(trip.pending).map_err(|e| ApiError::Internal(e.to_string()))?;
    let client = p.client().await?;
    let identity = match client
        .complete(
            &pending,
            q.state.as_deref().unwrap_or_default(),
            q.code.as_deref().unwrap_or_default(),
            state.portal.now().div_euclid(1000),
        )
        .await
    {
        Ok(i) => i,
        Err(e) => return Err(sso_failure(&state, &actor, "OIDC", &name, e.to_string()).await),
    };
    let display = identity
        .preferred_username
        .clone()
        .or(identity.email.clone())
        .unwrap_or_else(|| identity.subject.clone());
    let user = match link_user(
        &state,
        &format!("oidc:{name}"),
        &identity.subject,
        &display,
        identity.email.as_deref(),
        &p.default_roles,
        p.auto_create,
        &identity.amr,
    )
    .await
    {
        Ok(u) => u,
        Err(e) => return Err(sso_failure(&state, &actor, "OIDC", &name, e.to_string()).await),
    };
    let amr = if identity.amr.is_empty() {
        "not reported".to_string()
    } else {
        identity.amr.join(",")
    };
    signed_in(
        &state,
        &user,
        &format!("oidc:{name}"),
        &origin,
        format!("OIDC provider {name} (amr: {amr})"),
        true,
    )
    .await
}

fn saml_provider(state: &AppState, name: &str) -> Result<Arc<SamlProvider>, ApiError> {
    state
        .sso
        .saml
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("no identity provider `{name}`")))
}

/// `GET /sso/saml/{name}/metadata`: the service provider's metadata for the IdP.
pub async fn saml_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = saml_provider(&state, &name)?;
    let mut resp = p.sp.sp_metadata_xml().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        super::api::header_value("application/samlmetadata+xml"),
    );
    Ok(resp)
}

#[derive(Serialize, Deserialize)]
struct SamlTrip {
    p: String,
    r: String,
    t: i64,
}

/// `GET /sso/saml/{name}/login`: an AuthnRequest (HTTP-Redirect binding). The request id
/// travels back in a sealed RelayState, since the IdP's cross-site POST carries no
/// `SameSite=Lax` cookie.
pub async fn saml_login(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = saml_provider(&state, &name)?;
    let mut random = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
    let request_id = format!("_{}", hex::encode(random));
    let trip = SamlTrip {
        p: name,
        r: request_id,
        t: state.portal.now(),
    };
    let plain = serde_json::to_vec(&trip).map_err(|e| ApiError::Internal(e.to_string()))?;
    let relay = state.portal.keys.seal(&plain, "saml-relay-state");
    let req =
        p.sp.authn_request(&random, &relay, state.portal.now().div_euclid(1000));
    Ok(Redirect::to(&req.redirect_url).into_response())
}

/// The ACS form.
#[derive(Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState", default)]
    relay_state: Option<String>,
}

struct NoteReplay(Option<(String, i64)>);

impl palisade_saml::ReplayCache for NoteReplay {
    fn check_and_remember(&mut self, assertion_id: &str, expires_at_unix_secs: i64) -> bool {
        // The shared check is done in the database once the response is valid.
        self.0 = Some((assertion_id.to_string(), expires_at_unix_secs));
        true
    }
}

/// `POST /sso/saml/{name}/acs`: the IdP's signed response.
pub async fn saml_acs(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<AcsForm>,
) -> Result<Response, ApiError> {
    let origin = super::api::origin_of(&state, peer, &headers);
    let actor = Actor {
        username: format!("saml:{name}"),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        ..Default::default()
    };
    let p = saml_provider(&state, &name)?;
    let now = state.portal.now();
    // A response we asked for names our request; an unsolicited one (IdP-initiated) has none.
    let expected = match form.relay_state.as_deref().filter(|r| !r.is_empty()) {
        Some(relay) => {
            let trip: Option<SamlTrip> = state
                .portal
                .keys
                .open(relay, "saml-relay-state")
                .ok()
                .and_then(|p| serde_json::from_slice(p.expose()).ok());
            match trip {
                Some(t) if t.p == name && now - t.t <= ROUND_TRIP_MS => Some(t.r),
                _ => {
                    return Err(sso_failure(
                        &state,
                        &actor,
                        "SAML",
                        &name,
                        "the sign-in round trip expired or is not valid; start again".into(),
                    )
                    .await)
                }
            }
        }
        None => None,
    };
    let mut seen = NoteReplay(None);
    let identity = match p.sp.consume(
        &form.saml_response,
        expected.as_deref(),
        now.div_euclid(1000),
        &mut seen,
    ) {
        Ok(i) => i,
        Err(e) => return Err(sso_failure(&state, &actor, "SAML", &name, e.to_string()).await),
    };
    if let Some((id, exp)) = seen.0 {
        if !state
            .portal
            .store
            .saml_assertion_first_use(&id, exp.saturating_mul(1000), now)
            .await?
        {
            return Err(sso_failure(
                &state,
                &actor,
                "SAML",
                &name,
                "the assertion was already used (replay)".into(),
            )
            .await);
        }
    }
    // The address attribute by its usual names: LDAP `mail` (also as its OID, which pysaml2,
    // Shibboleth and ADFS send), or `email`.
    let email = [
        "mail",
        "urn:oid:0.9.2342.19200300.100.1.3",
        "email",
        "emailaddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ]
    .iter()
    .find_map(|k| identity.attributes.get(*k))
    .and_then(|v| v.first())
    .cloned();
    let amr: Vec<String> = identity.authn_context_class.iter().cloned().collect();
    let user = match link_user(
        &state,
        &format!("saml:{name}"),
        &identity.name_id,
        &identity.name_id,
        email.as_deref(),
        &p.default_roles,
        p.auto_create,
        &amr,
    )
    .await
    {
        Ok(u) => u,
        Err(e) => return Err(sso_failure(&state, &actor, "SAML", &name, e.to_string()).await),
    };
    let context = amr
        .first()
        .cloned()
        .unwrap_or_else(|| "not reported".into());
    signed_in(
        &state,
        &user,
        &format!("saml:{name}"),
        &origin,
        format!("SAML provider {name} (authn context: {context})"),
        false,
    )
    .await
}

/// Audits a failed SSO sign-in and returns the answer (503 when the audit cannot be written).
async fn sso_failure(
    state: &AppState,
    actor: &Actor,
    kind: &str,
    name: &str,
    why: String,
) -> ApiError {
    let event = actor.event(
        state.portal.now(),
        "signin.sso_failure",
        format!("{kind} sign-in through {name} failed: {why}"),
    );
    if !state.audit.record(event).await {
        return ApiError::Unavailable;
    }
    ApiError::Unauthenticated(format!("single sign-on failed: {why}"))
}

/// Starts the session of an SSO user, audits the sign-in and sends the browser home.
async fn signed_in(
    state: &AppState,
    user: &UserRecord,
    method: &str,
    origin: &Origin,
    through: String,
    clear_round_trip: bool,
) -> Result<Response, ApiError> {
    let (id, _) = session::start(
        &state.portal,
        user.id,
        SessionState::Active,
        method,
        &origin.ip,
        &origin.user_agent,
        true,
    )
    .await?;
    let actor = Actor {
        username: user.username.clone(),
        user_id: Some(user.id),
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
        ..Default::default()
    };
    let event = actor.event(
        state.portal.now(),
        "signin.sso",
        format!("Signed in {} through {through}", user.username),
    );
    if !state.audit.record(event).await {
        return Err(ApiError::Unavailable);
    }
    let mut resp = Redirect::to("/").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(&id, state.secure_cookies),
    );
    if clear_round_trip {
        h.append(header::SET_COOKIE, sso_cookie("", 0, state.secure_cookies));
    }
    Ok(resp)
}

/// Finds the user linked to (idp, subject), creating one at the first sign-in when allowed.
#[allow(clippy::too_many_arguments)]
pub async fn link_user(
    state: &AppState,
    idp: &str,
    subject: &str,
    display: &str,
    email: Option<&str>,
    default_roles: &[String],
    auto_create: bool,
    amr: &[String],
) -> Result<UserRecord, ApiError> {
    let now = state.portal.now();
    let existing = state.portal.store.find_sso_identity(idp, subject).await?;
    let user = match existing {
        Some(link) => state
            .portal
            .store
            .get_user(link.user_id)
            .await?
            .ok_or_else(|| ApiError::Forbidden("the linked account no longer exists".into()))?,
        None => {
            if !auto_create {
                return Err(ApiError::Forbidden(
                    "no Palisade account is linked to this identity; ask an administrator".into(),
                ));
            }
            let mut username: String = display
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._@+-".contains(*c))
                .take(56)
                .collect();
            if username.is_empty() {
                username = "sso-user".into();
            }
            if state
                .portal
                .store
                .get_user_by_name(&username)
                .await?
                .is_some()
            {
                // Never take over a local account with the same name: suffix instead.
                let mut b = [0u8; 3];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
                username = format!("{username}-{}", hex::encode(b));
            }
            let roles = state.portal.store.list_roles().await?;
            let role_ids: Vec<i64> = roles
                .iter()
                .filter(|r| {
                    default_roles
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&r.name))
                        && !r.is_administrator()
                })
                .map(|r| r.id)
                .collect();
            if role_ids.is_empty() {
                return Err(ApiError::Forbidden(
                    "the provider's default roles do not exist".into(),
                ));
            }
            let actor = Actor::system(idp);
            let new = NewUser {
                username: username.clone(),
                email: email.unwrap_or_default().to_string(),
                status: "active".into(),
                created_by: actor.username.clone(),
                created_on: now,
                auth_source: "sso".into(),
                role_ids,
                sms_email_format: "sms".into(),
                contact_method: "email".into(),
                note: format!("Created at first sign-in through {idp}"),
                ..Default::default()
            };
            let event = actor.event(
                now,
                "user.create",
                format!("Created SSO user {username} (id {{id}}) for subject of {idp}"),
            );
            state.portal.store.create_user(new, event).await?
        }
    };
    if !user.is_sso() {
        return Err(ApiError::Forbidden(
            "this identity is linked to a local account".into(),
        ));
    }
    if !user.is_active() {
        return Err(ApiError::Forbidden("the account is suspended".into()));
    }
    state
        .portal
        .store
        .put_sso_identity(&SsoIdentity {
            idp: idp.into(),
            subject: subject.into(),
            user_id: user.id,
            amr: amr.to_vec(),
            last_login_on: Some(now),
        })
        .await?;
    Ok(user)
}
