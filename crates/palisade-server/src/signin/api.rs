//! The JSON API of sign-in and enrolment (`/api/auth/...`, `/api/me/...`). Handlers are thin:
//! they parse, call [`super::flow`] or [`super::enrol`], and set the session cookie.

use super::enrol::{self, factor_json};
use super::flow::{self, FactorInput};
use super::gate::SessionCaller;
use super::session::{self, Session};
use super::Origin;
use crate::error::{parse_json, ApiError};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use palisade_core::client_ip::client_ip;
use palisade_core::mfa::Requirement;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// Where a request came from.
pub fn origin_of(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Origin {
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Origin {
        ip: client_ip(peer.ip(), forwarded, &state.trusted_proxies).to_string(),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect(),
    }
}

/// A JSON answer that installs a session cookie.
pub fn with_cookie(state: &AppState, id: &str, body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(id, state.secure_cookies),
    );
    resp
}

fn session_json(s: &Session) -> Value {
    json!({ "state": s.state.as_str(), "csrfToken": s.record.csrf, "authMethod": s.record.auth_method })
}

/// Refuses cross-site form posts to endpoints without a session yet (login CSRF).
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split("://").nth(1).unwrap_or_default();
    if origin == "null" || origin_host != host {
        return Err(ApiError::Forbidden("cross-origin sign-in refused".into()));
    }
    Ok(())
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/auth/login`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let b: LoginBody = parse_json(&body)?;
    let origin = origin_of(&state, peer, &headers);
    let started = flow::password_step(&state, &b.username, &b.password, &origin).await?;
    let methods: Vec<&str> = {
        let mut m: Vec<&str> = started.factors.iter().map(|f| f.kind.as_str()).collect();
        m.sort_unstable();
        m.dedup();
        if !started.factors.is_empty()
            && state
                .portal
                .store
                .count_recovery_codes(started.session.record.user_id)
                .await?
                > 0
        {
            m.push("recovery");
        }
        m
    };
    let mut v = session_json(&started.session);
    if let Some(o) = v.as_object_mut() {
        o.insert("methods".into(), json!(methods));
    }
    Ok(with_cookie(&state, &started.id, v))
}

/// `POST /api/auth/factor`: the second factor of a sign-in, or a step-up when signed in.
pub async fn factor(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: FactorInput = parse_json(&body)?;
    let (id, s) = flow::factor_step(&state, &caller.session, &input).await?;
    Ok(with_cookie(&state, &id, session_json(&s)))
}

#[derive(Deserialize)]
struct ChallengeBody {
    method: String,
}

/// `POST /api/auth/challenge`: sends a sign-in code by email, SMS or voice.
pub async fn challenge(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ChallengeBody = parse_json(&body)?;
    if !matches!(b.method.as_str(), "email" | "sms" | "voice") {
        return Err(ApiError::BadRequest(
            "method must be email, sms or voice".into(),
        ));
    }
    let (challenge_id, sent_to) =
        flow::send_signin_code(&state, &caller.session, &b.method).await?;
    Ok(Json(
        json!({ "challengeId": challenge_id, "sentTo": sent_to }),
    ))
}

/// `POST /api/auth/webauthn/options`: passkey options for the factor step.
pub async fn webauthn_signin_options(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        enrol::webauthn_signin_options(&state, &caller.session, &caller.user).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password`.
pub async fn password(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: PasswordBody = parse_json(&body)?;
    let (id, s) = flow::change_password(
        &state,
        &caller.session,
        &b.current_password,
        &b.new_password,
    )
    .await?;
    Ok(with_cookie(&state, &id, session_json(&s)))
}

/// `POST /api/auth/logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Response, ApiError> {
    flow::sign_out(&state, &caller.session).await?;
    let mut resp = Json(json!({})).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(state.secure_cookies),
    );
    Ok(resp)
}

/// The user's two-factor status, as `/api/me` and the admin list show it.
pub fn requirement_json(r: &Requirement) -> Value {
    match r {
        Requirement::NotApplicable => json!({ "status": "notApplicable" }),
        Requirement::Optional => json!({ "status": "optional" }),
        Requirement::Satisfied => json!({ "status": "satisfied" }),
        Requirement::Grace { deadline_ms } => {
            json!({ "status": "grace", "deadline": deadline_ms / 1000, "deadlineText": crate::wire::utc_text(*deadline_ms) })
        }
        Requirement::MustEnrol => json!({ "status": "mustEnrol" }),
    }
}

/// `GET /api/me`.
pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    let factors = state.portal.store.list_factors(caller.user.id).await?;
    let recovery = state
        .portal
        .store
        .count_recovery_codes(caller.user.id)
        .await?;
    Ok(Json(json!({
        "id": caller.user.id,
        "username": caller.user.username,
        "email": caller.user.email,
        "session": session_json(&caller.session),
        "twoFactor": requirement_json(&caller.requirement),
        "factors": factors.iter().filter(|f| f.confirmed).map(factor_json).collect::<Vec<_>>(),
        "recoveryCodesLeft": recovery,
        "deliveryMethods": state.delivery.available(),
        "passkeys": state.webauthn.is_some(),
    })))
}

#[derive(Deserialize, Default)]
struct LabelBody {
    #[serde(default)]
    label: String,
}

/// `POST /api/me/factors/totp`.
pub async fn enrol_totp(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: LabelBody = parse_json(&body)?;
    Ok(Json(
        enrol::start_totp(&state, &caller.session, &caller.user, &b.label).await?,
    ))
}

#[derive(Deserialize)]
struct DeliveryBody {
    kind: String,
    #[serde(default)]
    to: Option<String>,
}

/// `POST /api/me/factors/delivery`: email (default address: the user's), SMS or voice.
pub async fn enrol_delivery(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: DeliveryBody = parse_json(&body)?;
    let to = match (b.kind.as_str(), b.to) {
        (_, Some(t)) => t,
        ("email", None) => caller.user.email.clone(),
        ("sms" | "voice", None) => caller.user.phone.clone(),
        _ => String::new(),
    };
    Ok(Json(
        enrol::start_delivery(&state, &caller.session, &caller.user, &b.kind, &to).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfirmBody {
    code: String,
    #[serde(default)]
    challenge_id: Option<String>,
}

fn confirmed_response(state: &AppState, c: enrol::Confirmed) -> Response {
    let mut v = json!({ "confirmed": true });
    if let (Some(o), Some(codes)) = (v.as_object_mut(), &c.recovery_codes) {
        o.insert(
            "recoveryCodes".into(),
            json!(codes.iter().map(|c| c.expose().clone()).collect::<Vec<_>>()),
        );
    }
    match &c.new_session {
        Some((id, s)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("session".into(), session_json(s));
            }
            with_cookie(state, id, v)
        }
        None => Json(v).into_response(),
    }
}

/// `POST /api/me/factors/{id}/confirm`.
pub async fn confirm(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: ConfirmBody = parse_json(&body)?;
    let c = enrol::confirm(
        &state,
        &caller.session,
        &caller.user,
        id,
        &b.code,
        b.challenge_id.as_deref(),
    )
    .await?;
    Ok(confirmed_response(&state, c))
}

/// `DELETE /api/me/factors/{id}`.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    enrol::remove(&state, &caller.session, &caller.user, id).await?;
    Ok(Json(json!({})))
}

/// `POST /api/me/recovery-codes`: ten new codes, shown once.
pub async fn recovery_codes(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    enrol::require_step_up(&state, &caller.session, &caller.user).await?;
    if !super::has_factor(&state.portal, caller.user.id).await? {
        return Err(ApiError::BadRequest("enrol a second factor first".into()));
    }
    let codes = enrol::new_recovery_codes(&state, &caller.session, &caller.user).await?;
    Ok(Json(
        json!({ "recoveryCodes": codes.iter().map(|c| c.expose().clone()).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/me/factors/webauthn/options`.
pub async fn webauthn_register_options(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        enrol::webauthn_register_options(&state, &caller.session, &caller.user).await?,
    ))
}

#[derive(Deserialize)]
struct WebauthnBody {
    credential: Value,
    #[serde(default)]
    label: String,
}

/// `POST /api/me/factors/webauthn`.
pub async fn webauthn_register(
    State(state): State<Arc<AppState>>,
    caller: SessionCaller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: WebauthnBody = parse_json(&body)?;
    let c = enrol::webauthn_register(
        &state,
        &caller.session,
        &caller.user,
        &b.credential,
        &b.label,
    )
    .await?;
    Ok(confirmed_response(&state, c))
}

/// A header value, for tests and pages.
pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}
