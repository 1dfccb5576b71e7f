//! A small but real OpenID Connect identity provider, for tests only (feature `test-provider`).
//!
//! It serves, on a loopback socket, the discovery document, `/authorize` (which approves a
//! configured user at once, recording the PKCE challenge and the nonce, and redirects to the
//! client's redirect URI with `code` and `state`), `/token` (which checks the client's
//! authentication, the redirect URI, the code's single use and that
//! `BASE64URL(SHA-256(code_verifier))` equals the stored S256 challenge, and returns an ID
//! token signed RS256) and `/jwks`.
//!
//! Tests can make it misbehave ([`Tamper`]) to show that the relying party refuses what it
//! must, rotate its signing key, and count the requests it served. Its RSA keys are the test
//! keys under `tests/fixtures/` (RSA key generation is too slow in unoptimised builds); they
//! are public and must never be trusted by anything but a test. It reads the system clock,
//! unlike the relying party.
//!
//! `cargo run -p palisade-oidc --example test-idp -- --help` runs it as a process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{json, Value};

/// The provider's first RSA signing key (test only; PKCS#8 PEM).
pub const TEST_RSA_KEY_PEM: &str = include_str!("../tests/fixtures/idp-rsa-1.pem");
/// A second RSA key, for key rotation (test only).
pub const TEST_RSA_KEY_2_PEM: &str = include_str!("../tests/fixtures/idp-rsa-2.pem");
/// An RSA key the provider never publishes, for forged signatures (test only).
pub const ATTACKER_RSA_KEY_PEM: &str = include_str!("../tests/fixtures/attacker-rsa.pem");

/// How long an authorization code stays valid, in seconds.
const CODE_LIFETIME_SECS: i64 = 120;
/// How long an ID token is valid, in seconds.
const ID_TOKEN_LIFETIME_SECS: i64 = 300;

/// Why the test provider could not be set up or driven.
#[derive(Debug, thiserror::Error)]
pub enum TestProviderError {
    /// A key could not be read.
    #[error("invalid test key: {0}")]
    Key(&'static str),
    /// A `--user` specification could not be read.
    #[error("invalid user specification: {0}")]
    UserSpec(&'static str),
    /// Binding or serving failed.
    #[error("test provider I/O failed")]
    Io(#[from] std::io::Error),
    /// The "browser" could not follow the authorization URL.
    #[error("following the authorization URL failed: {0}")]
    Browser(String),
}

/// An RSA signing key with its public JWK and key ID (the RFC 7638 thumbprint).
pub struct RsaSigningKey {
    pair: RsaKeyPair,
    kid: String,
    jwk: Value,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn thumbprint(canonical_members: &Value) -> String {
    // serde_json writes object members sorted (no `preserve_order`), without whitespace:
    // the RFC 7638 form when the members are the required ones.
    let canonical = canonical_members.to_string();
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

impl RsaSigningKey {
    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) RSA key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<RsaSigningKey, TestProviderError> {
        if !pem.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(TestProviderError::Key("not a PKCS#8 PEM private key"));
        }
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| TestProviderError::Key("PEM body is not base64"))?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| TestProviderError::Key("not an RSA PKCS#8 key ring accepts"))?;
        let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let n = URL_SAFE_NO_PAD.encode(&public.n);
        let e = URL_SAFE_NO_PAD.encode(&public.e);
        let kid = thumbprint(&json!({"e": e, "kty": "RSA", "n": n}));
        let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
        Ok(RsaSigningKey { pair, kid, jwk })
    }

    /// The key ID published in the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as DER `RSAPublicKey` (PKCS#1).
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ()> {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut sig,
            )
            .map_err(|_| ())?;
        Ok(sig)
    }
}

/// The provider's P-256 key (ES256), generated at start.
struct EcSigningKey {
    pair: EcdsaKeyPair,
    kid: String,
    jwk: Value,
}

impl EcSigningKey {
    fn generate() -> Result<EcSigningKey, TestProviderError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| TestProviderError::Key("cannot generate a P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|_| TestProviderError::Key("cannot load the P-256 key"))?;
        let point = pair.public_key().as_ref();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(TestProviderError::Key("unexpected P-256 public key form"));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        let kid = thumbprint(&json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}));
        let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y});
        Ok(EcSigningKey { pair, kid, jwk })
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ()> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| ())
    }
}

/// A user the provider signs in (the first configured one, or the one `login_hint` names by
/// subject or email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// `sub`.
    pub subject: String,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified`.
    pub email_verified: bool,
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username`.
    pub preferred_username: Option<String>,
    /// `amr`.
    pub amr: Vec<String>,
    /// `acr`.
    pub acr: Option<String>,
}

impl TestUser {
    /// A user with a verified email and the given authentication methods.
    pub fn new(subject: &str, email: &str, amr: &[&str]) -> TestUser {
        TestUser {
            subject: subject.to_owned(),
            email: (!email.is_empty()).then(|| email.to_owned()),
            email_verified: true,
            name: None,
            preferred_username: None,
            amr: amr.iter().map(|m| (*m).to_owned()).collect(),
            acr: None,
        }
    }

    /// Reads `sub:email:amr[,amr...][:name]`, as the `test-idp` example's `--user` takes it.
    /// An empty email or amr part means none.
    pub fn parse_spec(spec: &str) -> Result<TestUser, TestProviderError> {
        let mut parts = spec.splitn(4, ':');
        let subject = parts.next().unwrap_or_default();
        if subject.is_empty() {
            return Err(TestProviderError::UserSpec("the subject is empty"));
        }
        let email = parts.next().unwrap_or_default();
        let amr: Vec<&str> = parts
            .next()
            .unwrap_or_default()
            .split(',')
            .filter(|m| !m.is_empty())
            .collect();
        let mut user = TestUser::new(subject, email, &amr);
        user.name = parts.next().filter(|n| !n.is_empty()).map(str::to_owned);
        Ok(user)
    }
}

/// The client the provider knows, and its users.
#[derive(Debug)]
pub struct TestProviderConfig {
    /// The one registered client's ID.
    pub client_id: String,
    /// Its secret (`client_secret_basic` or `client_secret_post`); `None` for a public client.
    pub client_secret: Option<String>,
    /// Its one registered redirect URI (compared exactly).
    pub redirect_uri: String,
    /// The users; the first signs in unless `login_hint` names another.
    pub users: Vec<TestUser>,
    /// The RSA signing key (PKCS#8 PEM); [`TEST_RSA_KEY_PEM`] by default.
    pub signing_key_pem: String,
}

impl TestProviderConfig {
    /// A configuration with the default test signing key.
    pub fn new(
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uri: &str,
        users: Vec<TestUser>,
    ) -> TestProviderConfig {
        TestProviderConfig {
            client_id: client_id.to_owned(),
            client_secret: client_secret.map(str::to_owned),
            redirect_uri: redirect_uri.to_owned(),
            users,
            signing_key_pem: TEST_RSA_KEY_PEM.to_owned(),
        }
    }
}

/// How the provider signs the ID token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the published RSA key (the honest default).
    #[default]
    Rs256,
    /// ES256 with the published P-256 key.
    Es256,
    /// RS256 with an unpublished key, under the published RSA key's `kid`.
    ForeignRsaKey,
    /// `alg: none` and an empty signature, under the RSA key's `kid`.
    AlgNone,
    /// HS256 keyed with the RSA public key (DER), under the RSA key's `kid`: the classic
    /// algorithm-confusion forgery.
    Hs256WithPublicKey,
    /// ES256 signed with the published P-256 key, but under the RSA key's `kid`.
    Es256UnderRsaKid,
}

/// Deviations from correct behaviour, applied to the ID tokens issued from now on.
#[derive(Debug, Clone, Default)]
pub struct Tamper {
    /// How to sign.
    pub signing: Signing,
    /// `iss` instead of the provider's issuer.
    pub issuer: Option<String>,
    /// `aud` instead of the client ID.
    pub audience: Option<Value>,
    /// An `azp` claim.
    pub azp: Option<String>,
    /// `exp` relative to now instead of +300 s.
    pub exp_offset_secs: Option<i64>,
    /// `iat` relative to now (default 0).
    pub iat_offset_secs: i64,
    /// `nonce` instead of the one the client sent.
    pub nonce: Option<String>,
    /// `kid` in the header instead of the signing key's.
    pub kid: Option<String>,
}

/// What the client sent to `/authorize` last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRecord {
    /// `scope`.
    pub scope: String,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// `code_challenge`.
    pub code_challenge: String,
    /// `code_challenge_method`.
    pub code_challenge_method: String,
}

/// An issued authorization code's context.
struct Grant {
    client_id: String,
    redirect_uri: String,
    user: TestUser,
    nonce: String,
    code_challenge: String,
    issued_at: i64,
}

/// Counters and the last observations, for tests to assert on.
#[derive(Debug, Clone, Default)]
struct Observed {
    discovery_fetches: usize,
    jwks_fetches: usize,
    token_requests: usize,
    last_token_rejection: Option<&'static str>,
    last_client_auth: Option<&'static str>,
    last_authorization: Option<AuthorizationRecord>,
}

struct Inner {
    rsa: Arc<RsaSigningKey>,
    ec: Arc<EcSigningKey>,
    attacker: Arc<RsaSigningKey>,
    codes: HashMap<String, Grant>,
    tamper: Tamper,
    observed: Observed,
}

struct Shared {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    users: Vec<TestUser>,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running test identity provider; stops when dropped.
pub struct TestProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestProvider")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // SystemRandom fails only where the OS has no generator; a test provider then issues
    // predictable codes rather than none.
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestProvider {
    /// Binds `listen` (use `127.0.0.1:0`) and serves until dropped. The issuer is
    /// `http://{bound address}`.
    pub async fn start(
        listen: SocketAddr,
        config: TestProviderConfig,
    ) -> Result<TestProvider, TestProviderError> {
        if config.users.is_empty() {
            return Err(TestProviderError::UserSpec("at least one user is needed"));
        }
        let rsa = Arc::new(RsaSigningKey::from_pkcs8_pem(&config.signing_key_pem)?);
        let attacker = Arc::new(RsaSigningKey::from_pkcs8_pem(ATTACKER_RSA_KEY_PEM)?);
        let ec = Arc::new(EcSigningKey::generate()?);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            client_id: config.client_id,
            client_secret: config.client_secret,
            redirect_uri: config.redirect_uri,
            users: config.users,
            inner: Mutex::new(Inner {
                rsa,
                ec,
                attacker,
                codes: HashMap::new(),
                tamper: Tamper::default(),
                observed: Observed::default(),
            }),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(TestProvider { shared, addr, task })
    }

    /// The issuer identifier, `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes the ID tokens issued from now on deviate as described.
    pub fn set_tamper(&self, tamper: Tamper) {
        self.shared.lock().tamper = tamper;
    }

    /// Rotates the RSA signing key: from now on tokens are signed with `pem`'s key and the
    /// JWKS publishes only it (and the P-256 key).
    pub fn rotate_key(&self, pem: &str) -> Result<(), TestProviderError> {
        let key = Arc::new(RsaSigningKey::from_pkcs8_pem(pem)?);
        self.shared.lock().rsa = key;
        Ok(())
    }

    /// The `kid` of the current RSA signing key.
    pub fn rsa_kid(&self) -> String {
        self.shared.lock().rsa.kid.clone()
    }

    /// How often the discovery document was fetched.
    pub fn discovery_fetches(&self) -> usize {
        self.shared.lock().observed.discovery_fetches
    }

    /// How often the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.lock().observed.jwks_fetches
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().observed.token_requests
    }

    /// Why the token endpoint last refused a request (`client_auth`, `grant_type`,
    /// `unknown_code`, `client_mismatch`, `expired_code`, `redirect_uri`, `pkce`,
    /// `duplicate_parameter`), if it did.
    pub fn last_token_rejection(&self) -> Option<&'static str> {
        self.shared.lock().observed.last_token_rejection
    }

    /// How the client last authenticated at the token endpoint: `client_secret_basic`,
    /// `client_secret_post` or `none`.
    pub fn last_client_auth(&self) -> Option<&'static str> {
        self.shared.lock().observed.last_client_auth
    }

    /// What the last accepted `/authorize` request carried.
    pub fn last_authorization(&self) -> Option<AuthorizationRecord> {
        self.shared.lock().observed.last_authorization.clone()
    }

    /// Serves until the server task ends (for a provider run as a process).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Plays the browser: GETs the authorization URL without following the redirect and returns
/// the `code` and `state` from the `Location` it points to.
pub async fn follow_authorization(url: &str) -> Result<(String, String), TestProviderError> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| TestProviderError::Browser(e.without_url().to_string()))?;
    let response = browser
        .get(url)
        .send()
        .await
        .map_err(|e| TestProviderError::Browser(e.without_url().to_string()))?;
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .ok_or_else(|| TestProviderError::Browser(format!("no redirect (HTTP {status})")))?;
    let location = reqwest::Url::parse(location)
        .map_err(|_| TestProviderError::Browser("redirect to an invalid URL".into()))?;
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    if let Some(error) = params.get("error") {
        return Err(TestProviderError::Browser(format!(
            "the provider answered error={error}"
        )));
    }
    match (params.get("code"), params.get("state")) {
        (Some(code), Some(state)) => Ok((code.clone(), state.clone())),
        _ => Err(TestProviderError::Browser(
            "redirect without code and state".into(),
        )),
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.lock().observed.discovery_fetches += 1;
    let issuer = &shared.issuer;
    let auth_methods = if shared.client_secret.is_some() {
        json!(["client_secret_basic", "client_secret_post"])
    } else {
        json!(["none"])
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": ["openid", "email", "profile"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr",
            "acr", "email", "email_verified", "name", "preferred_username"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut inner = shared.lock();
    inner.observed.jwks_fetches += 1;
    Json(json!({"keys": [inner.rsa.jwk.clone(), inner.ec.jwk.clone()]}))
}

fn bad_request(reason: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response()
}

fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = reqwest::Url::parse(redirect_uri) else {
        return bad_request("invalid redirect_uri");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

fn is_pkce_syntax(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    // Errors about the client or its redirect URI are shown, never redirected (RFC 6749 §4.1.2.1).
    if param("client_id") != shared.client_id {
        return bad_request("unknown client_id");
    }
    if param("redirect_uri") != shared.redirect_uri {
        return bad_request("redirect_uri is not the registered one");
    }
    let state = param("state");
    let error = |code: &str| redirect(&shared.redirect_uri, &[("error", code), ("state", state)]);
    if param("response_type") != "code" {
        return error("unsupported_response_type");
    }
    if !param("scope").split(' ').any(|s| s == "openid") {
        return error("invalid_scope");
    }
    if state.is_empty()
        || param("nonce").is_empty()
        || param("code_challenge_method") != "S256"
        || !is_pkce_syntax(param("code_challenge"))
    {
        return error("invalid_request");
    }
    let hint = param("login_hint");
    let user = shared
        .users
        .iter()
        .find(|u| !hint.is_empty() && (u.subject == hint || u.email.as_deref() == Some(hint)))
        .or_else(|| shared.users.first());
    let Some(user) = user.cloned() else {
        return error("access_denied");
    };
    let code = random_token();
    {
        let mut inner = shared.lock();
        inner.observed.last_authorization = Some(AuthorizationRecord {
            scope: param("scope").to_owned(),
            state: state.to_owned(),
            nonce: param("nonce").to_owned(),
            code_challenge: param("code_challenge").to_owned(),
            code_challenge_method: param("code_challenge_method").to_owned(),
        });
        let now = now_unix_secs();
        inner
            .codes
            .retain(|_, g| g.issued_at + CODE_LIFETIME_SECS > now);
        inner.codes.insert(
            code.clone(),
            Grant {
                client_id: shared.client_id.clone(),
                redirect_uri: shared.redirect_uri.clone(),
                user,
                nonce: param("nonce").to_owned(),
                code_challenge: param("code_challenge").to_owned(),
                issued_at: now,
            },
        );
    }
    redirect(&shared.redirect_uri, &[("code", &code), ("state", state)])
}

fn token_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(json!({"error": error}))).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"test-idp\""),
        );
    }
    response
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `(client_id, client_secret)` from `Authorization: Basic` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn reject(inner: &mut Inner, status: StatusCode, error: &str, why: &'static str) -> Response {
    inner.observed.last_token_rejection = Some(why);
    token_error(status, error)
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut guard = shared.lock();
    let inner = &mut *guard;
    inner.observed.token_requests += 1;
    inner.observed.last_token_rejection = None;

    let mut form: HashMap<String, String> = HashMap::new();
    for (name, value) in form_urlencoded::parse(&body) {
        if form.insert(name.into_owned(), value.into_owned()).is_some() {
            let status = StatusCode::BAD_REQUEST;
            return reject(inner, status, "invalid_request", "duplicate_parameter");
        }
    }
    let field = |name: &str| form.get(name).map(String::as_str);

    // Client authentication: at most one method, and the registered client's credentials.
    let basic = basic_credentials(&headers);
    if headers.contains_key(header::AUTHORIZATION) && basic.is_none() {
        return reject(
            inner,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_auth",
        );
    }
    let (method, client_id, secret) = match (&basic, field("client_secret")) {
        (Some(_), Some(_)) => {
            return reject(
                inner,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_auth",
            );
        }
        (Some((id, secret)), None) => (
            "client_secret_basic",
            Some(id.as_str()),
            Some(secret.as_str()),
        ),
        (None, Some(secret)) => ("client_secret_post", field("client_id"), Some(secret)),
        (None, None) => ("none", field("client_id"), None),
    };
    let authenticated = client_id == Some(shared.client_id.as_str())
        && secret == shared.client_secret.as_deref()
        && field("client_id").is_none_or(|id| id == shared.client_id);
    if !authenticated {
        return reject(
            inner,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_auth",
        );
    }
    inner.observed.last_client_auth = Some(method);

    if field("grant_type") != Some("authorization_code") {
        let status = StatusCode::BAD_REQUEST;
        return reject(inner, status, "unsupported_grant_type", "grant_type");
    }
    // A code is good for one request, whatever its outcome.
    let Some(grant) = inner.codes.remove(field("code").unwrap_or_default()) else {
        return reject(
            inner,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown_code",
        );
    };
    let rejection = if grant.client_id != shared.client_id {
        Some("client_mismatch")
    } else if grant.issued_at + CODE_LIFETIME_SECS <= now_unix_secs() {
        Some("expired_code")
    } else if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        Some("redirect_uri")
    } else {
        match field("code_verifier") {
            Some(v) if is_pkce_syntax(v) && s256_challenge(v) == grant.code_challenge => None,
            _ => Some("pkce"),
        }
    };
    if let Some(why) = rejection {
        return reject(inner, StatusCode::BAD_REQUEST, "invalid_grant", why);
    }

    let Ok(id_token) = issue_id_token(&shared, inner, &grant) else {
        return token_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
    };
    let mut response = Json(json!({
        "access_token": random_token(),
        "token_type": "Bearer",
        "expires_in": ID_TOKEN_LIFETIME_SECS,
        "id_token": id_token,
        "scope": "openid",
    }))
    .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `BASE64URL(SHA-256(verifier))`, computed here independently of the relying party's code.
fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

fn issue_id_token(shared: &Shared, inner: &Inner, grant: &Grant) -> Result<String, ()> {
    let tamper = &inner.tamper;
    let now = now_unix_secs();
    let user = &grant.user;
    let mut claims = json!({
        "iss": tamper.issuer.clone().unwrap_or_else(|| shared.issuer.clone()),
        "sub": user.subject,
        "aud": tamper.audience.clone().unwrap_or_else(|| json!(shared.client_id)),
        "exp": now + tamper.exp_offset_secs.unwrap_or(ID_TOKEN_LIFETIME_SECS),
        "iat": now + tamper.iat_offset_secs,
        "auth_time": grant.issued_at,
        "nonce": tamper.nonce.clone().unwrap_or_else(|| grant.nonce.clone()),
        "amr": user.amr,
    });
    if let Value::Object(map) = &mut claims {
        let optional = [
            ("email", user.email.clone()),
            ("name", user.name.clone()),
            ("preferred_username", user.preferred_username.clone()),
            ("acr", user.acr.clone()),
            ("azp", tamper.azp.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.insert(name.to_owned(), json!(value));
            }
        }
        if user.email.is_some() {
            map.insert("email_verified".to_owned(), json!(user.email_verified));
        }
    }
    let rsa_kid = inner.rsa.kid.clone();
    let (alg, kid) = match tamper.signing {
        Signing::Rs256 => ("RS256", rsa_kid),
        Signing::Es256 => ("ES256", inner.ec.kid.clone()),
        Signing::ForeignRsaKey => ("RS256", rsa_kid),
        Signing::AlgNone => ("none", rsa_kid),
        Signing::Hs256WithPublicKey => ("HS256", rsa_kid),
        Signing::Es256UnderRsaKid => ("ES256", rsa_kid),
    };
    let kid = tamper.kid.clone().unwrap_or(kid);
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let message = signing_input.as_bytes();
    let signature = match tamper.signing {
        Signing::Rs256 => inner.rsa.sign(message)?,
        Signing::Es256 | Signing::Es256UnderRsaKid => inner.ec.sign(message)?,
        Signing::ForeignRsaKey => inner.attacker.sign(message)?,
        Signing::AlgNone => Vec::new(),
        Signing::Hs256WithPublicKey => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, inner.rsa.public_key_der());
            ring::hmac::sign(&key, message).as_ref().to_vec()
        }
    };
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}
