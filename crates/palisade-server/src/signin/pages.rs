//! The sign-in, second-factor, enrolment and account pages: server-rendered HTML (maud, which
//! escapes everything it interpolates), plain forms that work without JavaScript, and a small
//! script only for passkeys. Forms carry the session's CSRF token; the pages before a session
//! exists are protected by a same-origin check and `SameSite` cookies.

use super::api::{origin_of, same_origin};
use super::enrol;
use super::flow::{self, FactorInput};
use super::gate::SessionCaller;
use super::session::{self, Session, SessionState};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use palisade_core::mfa::Requirement;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

const STYLE: &str = r#"
:root{color-scheme:light dark;--fg:#111;--bg:#fff;--muted:#555;--accent:#0b5cad;--bad:#a40000;--card:#f4f6f8}
@media (prefers-color-scheme: dark){:root{--fg:#eee;--bg:#111;--muted:#bbb;--accent:#7ab7ff;--bad:#ff8a8a;--card:#1d2126}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:.75rem 1.5rem;border-bottom:1px solid var(--muted);display:flex;gap:1rem;align-items:center;justify-content:space-between}
header strong{font-size:1.1rem}main{max-width:40rem;margin:2rem auto;padding:0 1.5rem}
.card{background:var(--card);padding:1.25rem 1.5rem;border-radius:.5rem;margin-bottom:1rem}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}input[type=text],input[type=password],input[type=email],input[type=tel]{width:100%;padding:.55rem;font-size:1rem;border:1px solid var(--muted);border-radius:.3rem;background:var(--bg);color:var(--fg)}
button{margin-top:1rem;padding:.55rem 1.1rem;font-size:1rem;border:0;border-radius:.3rem;background:var(--accent);color:#fff;cursor:pointer}button.link{background:none;color:var(--accent);padding:0;margin:0;text-decoration:underline}
button:focus,input:focus,a:focus{outline:3px solid var(--accent);outline-offset:2px}
.error{color:var(--bad);font-weight:600}.muted{color:var(--muted)}.banner{border-left:4px solid var(--bad);padding:.5rem 1rem;background:var(--card)}
code.secret{font-size:1.1rem;letter-spacing:.1em;word-break:break-all}ul.codes{columns:2;font-family:monospace;font-size:1.05rem}
"#;

fn page(title: &str, user: Option<&str>, csrf: Option<&str>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Palisade" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { "Palisade" }
                    @if let (Some(u), Some(c)) = (user, csrf) {
                        form method="post" action="/logout" {
                            span.muted { "Signed in as " (u) " · " }
                            input type="hidden" name="csrf" value=(c);
                            button.link type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    let mut resp = (StatusCode::OK, axum::response::Html(markup.into_string())).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, super::api::header_value("no-store"));
    h.insert("content-security-policy", super::api::header_value("default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"));
    h.insert("x-frame-options", super::api::header_value("DENY"));
    resp
}

fn redirect_with_cookie(state: &AppState, to: &str, id: &str) -> Response {
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(id, state.secure_cookies),
    );
    resp
}

fn next_page(s: SessionState) -> &'static str {
    match s {
        SessionState::AwaitFactor => "/login/factor",
        SessionState::MustEnrol => "/enrol",
        SessionState::PasswordChange => "/account/password",
        SessionState::Active => "/",
    }
}

fn csrf_ok(caller: &SessionCaller, presented: &str) -> Result<(), ApiError> {
    if session::csrf_ok(&caller.session, Some(presented)) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the form expired; reload the page".into(),
        ))
    }
}

fn login_form(state: &AppState, error: Option<&str>) -> Response {
    let oidc = state.sso.oidc_names();
    let saml = state.sso.saml_names();
    page(
        "Sign in",
        None,
        None,
        html! {
            div.card {
                @if let Some(e) = error { p.error role="alert" { (e) } }
                form method="post" action="/login" {
                    label for="username" { "Username" }
                    input type="text" id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    button type="submit" id="sign-in" { "Sign in" }
                }
            }
            @if !oidc.is_empty() || !saml.is_empty() {
                div.card {
                    h2 { "Single sign-on" }
                    ul {
                        @for n in &oidc { li { a href={"/sso/oidc/" (n) "/login"} id={"sso-oidc-" (n)} { "Sign in with " (n) } } }
                        @for n in &saml { li { a href={"/sso/saml/" (n) "/login"} id={"sso-saml-" (n)} { "Sign in with " (n) " (SAML)" } } }
                    }
                }
            }
        },
    )
}

/// `GET /login`.
pub async fn login_page(State(state): State<Arc<AppState>>) -> Response {
    login_form(&state, None)
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`.
pub async fn login_submit(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    let origin = origin_of(&state, peer, &headers);
    match flow::password_step(&state, &f.username, &f.password, &origin).await {
        Ok(started) => redirect_with_cookie(&state, next_page(started.session.state), &started.id),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => e.into_response(),
        Err(e) => login_form(&state, Some(&message(&e))),
    }
}

fn message(e: &ApiError) -> String {
    match e {
        ApiError::Unauthenticated(m) | ApiError::Forbidden(m) | ApiError::BadRequest(m) => {
            m.clone()
        }
        other => other.to_string(),
    }
}

async fn factor_page(
    state: &AppState,
    caller: &SessionCaller,
    error: Option<&str>,
    challenge: Option<(&str, &str, &str)>,
) -> Result<Response, ApiError> {
    let factors = enrol::confirmed(state, &caller.user).await?;
    let has = |k: &str| factors.iter().any(|f| f.kind == k);
    let csrf = caller.session.record.csrf.clone();
    Ok(page(
        "Second factor",
        None,
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if has("totp") {
                div.card {
                    form method="post" action="/login/factor" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="method" value="totp";
                        label for="totp-code" { "Code from your authenticator app" }
                        input type="text" id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required autofocus;
                        button type="submit" id="verify-totp" { "Verify" }
                    }
                }
            }
            @for kind in ["email", "sms", "voice"] {
                @if has(kind) {
                    div.card {
                        @if let Some((ch_kind, ch_id, sent_to)) = challenge.filter(|c| c.0 == kind) {
                            form method="post" action="/login/factor" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="method" value=(ch_kind);
                                input type="hidden" name="challenge_id" value=(ch_id);
                                label for={"code-" (kind)} { "Code sent to " (sent_to) }
                                input type="text" id={"code-" (kind)} name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
                                button type="submit" { "Verify" }
                            }
                        } @else {
                            form method="post" action="/login/factor/send" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="method" value=(kind);
                                button type="submit" id={"send-" (kind)} { "Send a code by " (match kind { "email" => "email", "sms" => "SMS", _ => "voice call" }) }
                            }
                        }
                    }
                }
            }
            @if has("webauthn") {
                div.card {
                    button type="button" id="passkey" onclick="palisadePasskey()" { "Use a passkey or security key" }
                    form method="post" action="/login/factor" id="passkey-form" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="method" value="webauthn";
                        input type="hidden" name="credential" id="passkey-credential";
                    }
                    script { (PreEscaped(PASSKEY_SIGNIN_JS)) }
                }
            }
            details.card {
                summary { "Use a recovery code" }
                form method="post" action="/login/factor" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="method" value="recovery";
                    label for="recovery-code" { "Recovery code" }
                    input type="text" id="recovery-code" name="code" autocomplete="off";
                    button type="submit" { "Use recovery code" }
                }
            }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button.link type="submit" { "Cancel and sign out" }
            }
        },
    ))
}

const PASSKEY_SIGNIN_JS: &str = r#"
function b64u(buf){return btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,'');}
function unb64u(s){s=s.replace(/-/g,'+').replace(/_/g,'/');while(s.length%4)s+='=';return Uint8Array.from(atob(s),c=>c.charCodeAt(0));}
async function palisadePasskey(){
  const csrf=document.querySelector('#passkey-form input[name=csrf]').value;
  const r=await fetch('/api/auth/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json();const o=j.publicKey||j;
  o.challenge=unb64u(o.challenge);(o.allowCredentials||[]).forEach(c=>c.id=unb64u(c.id));
  const c=await navigator.credentials.get({publicKey:o});
  const out={id:c.id,rawId:b64u(c.rawId),type:c.type,response:{clientDataJSON:b64u(c.response.clientDataJSON),authenticatorData:b64u(c.response.authenticatorData),signature:b64u(c.response.signature),userHandle:c.response.userHandle?b64u(c.response.userHandle):null}};
  document.getElementById('passkey-credential').value=JSON.stringify(out);
  document.getElementById('passkey-form').submit();
}
"#;

/// `GET /login/factor`.
pub async fn factor_get(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Response, ApiError> {
    if caller.session.state == SessionState::Active {
        return Ok(Redirect::to("/").into_response());
    }
    factor_page(&state, &caller, None, None).await
}

/// The second-factor form.
#[derive(Deserialize)]
pub struct FactorForm {
    csrf: String,
    method: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    challenge_id: Option<String>,
    #[serde(default)]
    credential: Option<String>,
}

/// `POST /login/factor`.
pub async fn factor_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<FactorForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    let input = FactorInput {
        method: f.method.clone(),
        code: f.code,
        challenge_id: f.challenge_id,
        credential: f
            .credential
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
    };
    match flow::factor_step(&state, &caller.session, &input).await {
        Ok((id, s)) => Ok(redirect_with_cookie(&state, next_page(s.state), &id)),
        Err(ApiError::Unauthenticated(m)) if m.contains("sign in again") => {
            Ok(login_form(&state, Some(&m)))
        }
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => Err(e),
        Err(e) => {
            // The session may have been voided; re-read it.
            match state
                .portal
                .store
                .get_session(&caller.session.record.id_hash)
                .await?
            {
                Some(_) => factor_page(&state, &caller, Some(&message(&e)), None).await,
                None => Ok(login_form(&state, Some(&message(&e)))),
            }
        }
    }
}

/// The send-a-code form.
#[derive(Deserialize)]
pub struct SendForm {
    csrf: String,
    method: String,
}

/// `POST /login/factor/send`.
pub async fn factor_send(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<SendForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    match flow::send_signin_code(&state, &caller.session, &f.method).await {
        Ok((id, sent_to)) => {
            factor_page(&state, &caller, None, Some((&f.method, &id, &sent_to))).await
        }
        Err(e) => factor_page(&state, &caller, Some(&message(&e)), None).await,
    }
}

fn banner(r: &Requirement) -> Markup {
    html! {
        @match r {
            Requirement::MustEnrol => p.banner role="alert" { "Your deadline for two-factor authentication has passed. Enrol a second factor to continue." },
            Requirement::Grace { deadline_ms } => p.banner { "Enrol a second factor before " (crate::wire::utc_text(*deadline_ms)) "; after that you can only enrol." },
            _ => {},
        }
    }
}

/// `GET /enrol`.
pub async fn enrol_get(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Response, ApiError> {
    let csrf = caller.session.record.csrf.clone();
    let available = state.delivery.available();
    Ok(page(
        "Set up two-factor authentication",
        Some(&caller.user.username),
        Some(&csrf),
        html! {
            (banner(&caller.requirement))
            div.card {
                h2 { "Authenticator app (recommended)" }
                p { "Works with any TOTP app: Google Authenticator, Microsoft Authenticator, Authy, Okta Verify, 1Password…" }
                form method="post" action="/enrol/totp" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" id="enrol-totp" { "Set up an authenticator app" }
                }
            }
            @if available.contains(&"email") {
                div.card {
                    h2 { "Code by email" }
                    p.muted { "Weaker than an app: anyone who reads your mailbox can sign in." }
                    form method="post" action="/enrol/delivery" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="kind" value="email";
                        label for="email-to" { "Email address" }
                        input type="email" id="email-to" name="to" value=(caller.user.email);
                        button type="submit" id="enrol-email" { "Send a code" }
                    }
                }
            }
            @for kind in ["sms", "voice"] {
                @if available.contains(&kind) {
                    div.card {
                        h2 { (if kind == "sms" { "Code by SMS" } else { "Code by voice call" }) }
                        p.muted { "Weaker than an app: phone numbers can be hijacked." }
                        form method="post" action="/enrol/delivery" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="kind" value=(kind);
                            label for={"phone-" (kind)} { "Phone number (international form, e.g. +33612345678)" }
                            input type="tel" id={"phone-" (kind)} name="to" value=(caller.user.phone);
                            button type="submit" id={"enrol-" (kind)} { "Send a code" }
                        }
                    }
                }
            }
            @if state.webauthn.is_some() {
                div.card {
                    h2 { "Passkey or security key (phishing-resistant)" }
                    button type="button" id="enrol-passkey" onclick="palisadeRegister()" { "Add a passkey" }
                    form method="post" action="/enrol/webauthn" id="register-form" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="credential" id="register-credential";
                    }
                    script { (PreEscaped(PASSKEY_REGISTER_JS)) }
                }
            }
        },
    ))
}

const PASSKEY_REGISTER_JS: &str = r#"
function b64u(buf){return btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,'');}
function unb64u(s){s=s.replace(/-/g,'+').replace(/_/g,'/');while(s.length%4)s+='=';return Uint8Array.from(atob(s),c=>c.charCodeAt(0));}
async function palisadeRegister(){
  const csrf=document.querySelector('#register-form input[name=csrf]').value;
  const r=await fetch('/api/me/factors/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json();const o=j.publicKey||j;
  o.challenge=unb64u(o.challenge);o.user.id=unb64u(o.user.id);(o.excludeCredentials||[]).forEach(c=>c.id=unb64u(c.id));
  const c=await navigator.credentials.create({publicKey:o});
  const out={id:c.id,rawId:b64u(c.rawId),type:c.type,response:{clientDataJSON:b64u(c.response.clientDataJSON),attestationObject:b64u(c.response.attestationObject)}};
  document.getElementById('register-credential').value=JSON.stringify(out);
  document.getElementById('register-form').submit();
}
"#;

/// A CSRF-only form.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

fn confirm_form(
    csrf: &str,
    factor_id: i64,
    challenge_id: Option<&str>,
    label: &str,
    error: Option<&str>,
) -> Markup {
    html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        form method="post" action="/enrol/confirm" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="factor_id" value=(factor_id);
            @if let Some(c) = challenge_id { input type="hidden" name="challenge_id" value=(c); }
            label for="confirm-code" { (label) }
            input type="text" id="confirm-code" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus;
            button type="submit" id="confirm" { "Confirm" }
        }
    }
}

/// `POST /enrol/totp`.
pub async fn enrol_totp(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    let started = enrol::start_totp(&state, &caller.session, &caller.user, "").await?;
    let factor_id = started["factorId"].as_i64().unwrap_or_default();
    let secret = started["secret"].as_str().unwrap_or_default().to_string();
    let uri = started["otpauthUri"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let svg = started["qrSvg"].as_str().unwrap_or_default().to_string();
    let csrf = caller.session.record.csrf.clone();
    Ok(page(
        "Set up an authenticator app",
        Some(&caller.user.username),
        Some(&csrf),
        html! {
            div.card {
                p { "Scan this QR code with your authenticator app, or type the key by hand." }
                div role="img" aria-label="QR code of the authenticator key" { (PreEscaped(svg)) }
                p { "Key: " code.secret id="totp-secret" { (secret) } }
                p.muted { a href=(uri) id="totp-uri" { "Open in an authenticator app on this device" } }
                (confirm_form(&csrf, factor_id, None, "Enter the 6-digit code the app shows", None))
            }
        },
    ))
}

/// The delivery enrolment form.
#[derive(Deserialize)]
pub struct DeliveryForm {
    csrf: String,
    kind: String,
    to: String,
}

/// `POST /enrol/delivery`.
pub async fn enrol_delivery(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<DeliveryForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    let csrf = caller.session.record.csrf.clone();
    match enrol::start_delivery(&state, &caller.session, &caller.user, &f.kind, &f.to).await {
        Ok(v) => {
            let factor_id = v["factorId"].as_i64().unwrap_or_default();
            let challenge = v["challengeId"].as_str().unwrap_or_default().to_string();
            let sent_to = v["sentTo"].as_str().unwrap_or_default().to_string();
            Ok(page(
                "Confirm the code",
                Some(&caller.user.username),
                Some(&csrf),
                html! {
                    div.card { (confirm_form(&csrf, factor_id, Some(&challenge), &format!("Code sent to {sent_to}"), None)) }
                },
            ))
        }
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => Err(e),
        Err(e) => Ok(page(
            "Set up two-factor authentication",
            Some(&caller.user.username),
            Some(&csrf),
            html! { p.error role="alert" { (message(&e)) } p { a href="/enrol" { "Back" } } },
        )),
    }
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    factor_id: i64,
    code: String,
    #[serde(default)]
    challenge_id: Option<String>,
}

fn enrolled_page(state: &AppState, user: &str, c: enrol::Confirmed) -> Response {
    let (csrf, next, cookie) = match &c.new_session {
        Some((id, s)) => (s.record.csrf.clone(), next_page(s.state), Some(id.clone())),
        None => (String::new(), "/", None),
    };
    let mut resp = page(
        "Second factor enrolled",
        Some(user),
        Some(&csrf),
        html! {
            div.card {
                p { "Your second factor is ready. Use it the next time you sign in." }
                @if let Some(codes) = &c.recovery_codes {
                    h2 { "Recovery codes" }
                    p { "Each code works once if you lose your device. Store them somewhere safe now: they will not be shown again." }
                    ul.codes id="recovery-codes" { @for code in codes { li { (code.expose()) } } }
                }
                p { a href=(next) id="continue" { "Continue" } }
            }
        },
    );
    if let Some(id) = cookie {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            session::set_cookie(&id, state.secure_cookies),
        );
    }
    resp
}

/// `POST /enrol/confirm`.
pub async fn enrol_confirm(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    match enrol::confirm(
        &state,
        &caller.session,
        &caller.user,
        f.factor_id,
        &f.code,
        f.challenge_id.as_deref(),
    )
    .await
    {
        Ok(c) => Ok(enrolled_page(&state, &caller.user.username, c)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => Err(e),
        Err(e) => {
            let csrf = caller.session.record.csrf.clone();
            Ok(page(
                "Confirm the code",
                Some(&caller.user.username),
                Some(&csrf),
                html! {
                    div.card { (confirm_form(&csrf, f.factor_id, f.challenge_id.as_deref(), "Enter the 6-digit code", Some(&message(&e)))) }
                },
            ))
        }
    }
}

/// The passkey registration form.
#[derive(Deserialize)]
pub struct RegisterForm {
    csrf: String,
    credential: String,
}

/// `POST /enrol/webauthn`.
pub async fn enrol_webauthn(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<RegisterForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    let cred: serde_json::Value = serde_json::from_str(&f.credential)
        .map_err(|_| ApiError::BadRequest("malformed passkey response".into()))?;
    let c =
        enrol::webauthn_register(&state, &caller.session, &caller.user, &cred, "Passkey").await?;
    Ok(enrolled_page(&state, &caller.user.username, c))
}

/// `GET /`.
pub async fn home(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Response, ApiError> {
    let csrf = caller.session.record.csrf.clone();
    let factors = enrol::confirmed(&state, &caller.user).await?;
    Ok(page(
        "Overview",
        Some(&caller.user.username),
        Some(&csrf),
        html! {
            (banner(&caller.requirement))
            div.card id="welcome" {
                p { "Signed in as " strong { (caller.user.username) } " (" (caller.session.record.auth_method) ")." }
                p { "Second factors: " (factors.len()) ". " a href="/account" { "Manage your account" } }
            }
        },
    ))
}

fn session_of(c: &SessionCaller) -> &Session {
    &c.session
}

/// `GET /account`.
pub async fn account(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Response, ApiError> {
    let csrf = caller.session.record.csrf.clone();
    let factors = enrol::confirmed(&state, &caller.user).await?;
    let left = state
        .portal
        .store
        .count_recovery_codes(caller.user.id)
        .await?;
    let _ = session_of(&caller);
    Ok(page(
        "Your account",
        Some(&caller.user.username),
        Some(&csrf),
        html! {
            (banner(&caller.requirement))
            div.card {
                h2 { "Second factors" }
                @if factors.is_empty() { p { "None yet." } }
                ul id="factors" { @for f in &factors { li { (f.kind) " · " (f.label) } } }
                p { a href="/enrol" { "Add a second factor" } }
                p { "Recovery codes left: " (left) }
            }
            @if !caller.user.is_sso() {
            div.card { p { a href="/account/password" { "Change your password" } } }
        }
        },
    ))
}

/// `GET /account/password`.
pub async fn password_get(caller: SessionCaller) -> Response {
    password_form(&caller, None)
}

fn password_form(caller: &SessionCaller, error: Option<&str>) -> Response {
    let csrf = caller.session.record.csrf.clone();
    let forced = caller.session.state == SessionState::PasswordChange;
    page(
        "Change your password",
        Some(&caller.user.username),
        Some(&csrf),
        html! {
            @if forced { p.banner { "Your password was set for one use only. Choose your own to continue." } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            div.card {
                form method="post" action="/account/password" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="current" { "Current password" }
                    input type="password" id="current" name="current" autocomplete="current-password" required;
                    label for="new" { "New password (at least 12 characters)" }
                    input type="password" id="new" name="new" autocomplete="new-password" minlength="12" required;
                    button type="submit" id="change-password" { "Change password" }
                }
            }
        },
    )
}

/// The password change form.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
}

/// `POST /account/password`.
pub async fn password_post(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<PasswordForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    match flow::change_password(&state, &caller.session, &f.current, &f.new).await {
        Ok((id, s)) => Ok(redirect_with_cookie(&state, next_page(s.state), &id)),
        Err(e @ (ApiError::Unavailable | ApiError::Internal(_))) => Err(e),
        Err(e) => Ok(password_form(&caller, Some(&message(&e)))),
    }
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    csrf_ok(&caller, &f.csrf)?;
    flow::sign_out(&state, &caller.session).await?;
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(state.secure_cookies),
    );
    Ok(resp)
}
