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

/// A sign-in page: the portal's stylesheet, the passkey script (bound without inline
/// handlers), and the strict Content-Security-Policy of every page
/// ([`crate::ui::layout::CSP`]: no inline script or style).
fn page(title: &str, user: Option<&str>, csrf: Option<&str>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Palisade" }
                link rel="stylesheet" href=(crate::ui::assets::url("palisade.css"));
                script src=(crate::ui::assets::url("signin.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header.top {
                    a.brand href="/" { "Palisade" }
                    @if let (Some(u), Some(c)) = (user, csrf) {
                        form method="post" action="/logout" {
                            span.muted { "Signed in as " (u) " · " }
                            input type="hidden" name="csrf" value=(c);
                            button.link type="submit" id="sign-out" { "Sign out" }
                        }
                    }
                }
                main.narrow id="main" tabindex="-1" { h1 { (title) } (body) }
            }
        }
    };
    crate::ui::layout::html_response(StatusCode::OK, markup)
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
                    button type="button" id="passkey" { "Use a passkey or security key" }
                    form method="post" action="/login/factor" id="passkey-form" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="method" value="webauthn";
                        input type="hidden" name="credential" id="passkey-credential";
                    }
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

/// The two-factor deadline banner (also on the web UI's overview).
pub(crate) fn banner(r: &Requirement) -> Markup {
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
                    button type="button" id="enrol-passkey" { "Add a passkey" }
                    form method="post" action="/enrol/webauthn" id="register-form" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="credential" id="register-credential";
                    }
                }
            }
        },
    ))
}

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

/// `GET /`: the web UI's overview for a signed-in session (the session gate sends other
/// sessions to sign in, enrol or change their password first).
pub async fn home(_caller: SessionCaller) -> Response {
    Redirect::to("/ui").into_response()
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
            p { a href="/ui" { "Back to the portal" } }
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
