//! The API gate: one middleware in front of every `/santaba/rest` route.
//!
//! In order: the client address (the socket peer; `X-Forwarded-For` only from trusted
//! proxies), the per-address rate limit, the body (read once, at most 1 MiB, so that LMv1
//! verifies the exact bytes), authentication and the token mandate, the per-token rate limit,
//! the token's last use, authorization by what the request needs ([`crate::access`]), then
//! the handler; finally the API-call audit record and the `X-Rate-Limit-*` headers. Refused
//! requests are audited before they are answered.

use crate::auth::{authenticate, Caller, Denied};
use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_core::client_ip::client_ip;
use palisade_core::ratelimit::Decision;
use palisade_store::{TokenType, TokenUse};
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest accepted request body.
pub const MAX_BODY: usize = 1024 * 1024;

/// How often a token's last use is written at most, per token and portal instance.
const LAST_USED_EVERY_MS: i64 = 60_000;

/// How many distinct recent addresses a token keeps.
const RECENT_IPS: usize = 5;

fn rate_headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-rate-limit-limit", d.limit.to_string()),
        ("x-rate-limit-remaining", d.remaining.to_string()),
        ("x-rate-limit-window", d.window_secs.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

fn is_mutating(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware.
pub async fn api_gate(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let now = state.portal.now();
    let (mut parts, body) = req.into_parts();
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = client_ip(peer.ip(), forwarded, &state.trusted_proxies).to_string();
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let path_and_query: String = original
        .path_and_query()
        .map(|p| p.as_str().chars().take(1024).collect())
        .unwrap_or_default();
    let mut actor = Actor {
        username: "unknown".into(),
        ip: ip.clone(),
        user_agent: parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect(),
        method: parts.method.to_string(),
        path: path_and_query,
        ..Default::default()
    };

    let ip_decision = state.ip_limiter.hit(&ip, now);
    if !ip_decision.allowed {
        let err = ApiError::RateLimited {
            limit: ip_decision.limit,
            window_secs: ip_decision.window_secs,
            retry_after: ip_decision.reset_secs,
        };
        return refuse(&state, &actor, "api.ratelimited", err, &ip_decision).await;
    }

    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                &state,
                &actor,
                "api.denied",
                ApiError::TooLarge(MAX_BODY),
                &ip_decision,
            )
            .await
        }
    };

    // Push ingest sends gzip and signs the uncompressed body: verify what was signed.
    let gzipped = parts
        .headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let bytes = if gzipped {
        match gunzip(&bytes, MAX_BODY) {
            Ok(b) => {
                parts.headers.remove(axum::http::header::CONTENT_ENCODING);
                axum::body::Bytes::from(b)
            }
            Err(err) => return refuse(&state, &actor, "api.denied", err, &ip_decision).await,
        }
    } else {
        bytes
    };

    let mutating = is_mutating(&parts.method);
    // The privileges of a widget token's request (its one dashboard, read).
    let mut scoped: Option<Vec<palisade_core::privilege::Privilege>> = None;
    let session_cookie =
        crate::signin::session::id_from_headers(&parts.headers, state.secure_cookies);
    let has_authorization = parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION);
    let (user, roles, token, kind) = if !has_authorization && session_cookie.is_some() {
        // A browser session calls the same API under the same authorization and audit.
        match crate::signin::gate::resolve(&state, &parts.headers).await {
            Ok(Some(crate::signin::gate::Resolved {
                session,
                user,
                roles,
                ..
            })) => {
                actor.username = user.username.clone();
                actor.user_id = Some(user.id);
                if session.state != crate::signin::session::SessionState::Active {
                    let mut resp = crate::signin::gate::wrong_state(session.state, false);
                    let status = resp.status().as_u16();
                    let mut event = actor.event(
                        now,
                        "api.denied",
                        format!(
                            "Refused API call {} {} -> {status}: session not fully signed in ({})",
                            actor.method,
                            actor.path,
                            session.state.as_str()
                        ),
                    );
                    event.status = Some(i64::from(status));
                    if !state.audit.record(event).await {
                        return ApiError::Unavailable.into_response();
                    }
                    rate_headers(&mut resp, &ip_decision);
                    return resp;
                }
                let presented = parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok());
                if mutating && !crate::signin::session::csrf_ok(&session, presented) {
                    let err = ApiError::Forbidden("missing or wrong X-CSRF-Token header".into());
                    return refuse(&state, &actor, "api.denied", err, &ip_decision).await;
                }
                (user, roles, None, "session".to_string())
            }
            Ok(None) => {
                let err = ApiError::Unauthenticated("the session ended; sign in again".into());
                return refuse(&state, &actor, "api.denied", err, &ip_decision).await;
            }
            Err(e) => return e.into_response(),
        }
    } else {
        let auth = authenticate(
            &state.portal,
            &parts.headers,
            parts.method.as_str(),
            original.path(),
            &bytes,
            now,
        )
        .await;
        let auth = match auth {
            Ok(a) => a,
            Err(Denied {
                error,
                user,
                token_id,
            }) => {
                if let Some((uid, name)) = user {
                    actor.user_id = Some(uid);
                    actor.username = if name.is_empty() {
                        owner_name(&state.portal, uid).await
                    } else {
                        name
                    };
                }
                actor.token_id = token_id;
                return refuse(&state, &actor, "api.denied", error, &ip_decision).await;
            }
        };
        let kind = match auth.token.kind {
            TokenType::Lmv1 => format!("LMv1 token {}", auth.token.id),
            TokenType::Bearer => format!("Bearer token {}", auth.token.id),
            TokenType::Widget => format!("widget token {}", auth.token.id),
        };
        // A widget token reads its one dashboard and nothing else (docs/dashboards.md): the
        // route is checked here, before any handler, and it acts with exactly
        // `dashboard:<id>:read`.
        if auth.token.kind == TokenType::Widget {
            match crate::dashboards::tokens::admit(&state, &auth, &parts.method, original.path())
                .await
            {
                Ok(p) => scoped = Some(p),
                Err(err) => {
                    actor.username = auth.user.username.clone();
                    actor.user_id = Some(auth.user.id);
                    actor.token_id = Some(auth.token.id);
                    return refuse(&state, &actor, "api.denied", err, &ip_decision).await;
                }
            }
        }
        (auth.user, auth.roles, Some(auth.token), kind)
    };
    actor.username = user.username.clone();
    actor.user_id = Some(user.id);
    actor.token_id = token.as_ref().map(|t| t.id);

    let limit_key = match &token {
        Some(t) => t.id.to_string(),
        None => format!("session-user:{}", user.id),
    };
    let token_decision = state.token_limiter.hit(&limit_key, now);
    if !token_decision.allowed {
        let err = ApiError::RateLimited {
            limit: token_decision.limit,
            window_secs: token_decision.window_secs,
            retry_after: token_decision.reset_secs,
        };
        return refuse(&state, &actor, "api.ratelimited", err, &token_decision).await;
    }

    if let Some(t) = &token {
        note_token_use(&state, &actor, t, now).await;
    }

    let privileges = scoped.unwrap_or_else(|| Portal::privileges_of(&user, &roles));
    let caller = Caller {
        actor: actor.clone(),
        user,
        token,
        privileges,
    };
    // Authorization by the one table of what each request needs (palisade_core::access).
    let requirement = palisade_core::access::requirement(&actor.method, original.path());
    let allowed = crate::access::enforce(&state, &caller, &requirement).await;
    parts.extensions.insert(caller);
    let mut resp = match allowed {
        Ok(()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => e.into_response(),
    };

    let status = resp.status().as_u16();
    let mut event = actor.event(
        now,
        "api.call",
        format!(
            "API call {} {} -> {status} via {kind}",
            actor.method, actor.path
        ),
    );
    event.status = Some(i64::from(status));
    // Pushed metrics are data, not changes: their call records are written asynchronously
    // like reads (still every call, with its source address), so ingest does not wait on
    // the audit chain.
    let data_plane = actor.path.starts_with("/rest/v2/metric/ingest");
    if (mutating && !data_plane) || status >= 400 {
        if !state.audit.record(event).await {
            tracing::error!("could not write the audit record of an API call");
            if mutating && status < 400 {
                // The change itself was committed with its own audit entry; say so.
                tracing::error!(path = %actor.path, "API call record missing for a committed change");
            }
        }
    } else {
        state.audit.record_nowait(event);
    }
    rate_headers(&mut resp, &token_decision);
    resp
}

/// Decompresses a gzip body, refusing more than `limit` bytes of output.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(compressed).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| ApiError::BadRequest("the body is not valid gzip".into()))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(out)
}

async fn owner_name(portal: &Portal, uid: i64) -> String {
    match portal.store.get_user(uid).await {
        Ok(Some(u)) => u.username,
        _ => format!("user {uid}"),
    }
}

async fn refuse(
    state: &AppState,
    actor: &Actor,
    action: &str,
    err: ApiError,
    d: &Decision,
) -> Response {
    let status = err.status().as_u16();
    let mut event = actor.event(
        state.portal.now(),
        action,
        format!(
            "Refused API call {} {} -> {status}: {err}",
            actor.method, actor.path
        ),
    );
    event.status = Some(i64::from(status));
    let err = if state.audit.record(event).await {
        err
    } else {
        ApiError::Unavailable
    };
    let mut resp = err.into_response();
    rate_headers(&mut resp, d);
    resp
}

/// Records last use (time, address) at most once a minute per token, always on first use
/// and from a new address; a new address is also an audit event. Never fails the request.
async fn note_token_use(
    state: &AppState,
    actor: &Actor,
    token: &palisade_store::TokenRecord,
    now: i64,
) {
    let new_ip = !token.recent_ips.iter().any(|i| i == &actor.ip);
    let due = {
        let mut map = match state.token_use.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let last = map.get(&token.id).copied();
        let due = new_ip
            || token.last_used_on.is_none()
            || last.is_none_or(|l| now - l >= LAST_USED_EVERY_MS);
        if due {
            map.insert(token.id, now);
        }
        due
    };
    if !due {
        return;
    }
    let mut recent = vec![actor.ip.clone()];
    recent.extend(
        token
            .recent_ips
            .iter()
            .filter(|i| **i != actor.ip)
            .take(RECENT_IPS - 1)
            .cloned(),
    );
    let audit = new_ip.then(|| {
        actor.event(
            now,
            "token.new_ip",
            format!(
                "API token {} (access id {}) used from a new address {}",
                token.id, token.access_id, actor.ip
            ),
        )
    });
    if let Err(e) = state
        .portal
        .store
        .record_token_use(
            token.id,
            TokenUse {
                at: now,
                ip: actor.ip.clone(),
                recent_ips: recent,
            },
            audit,
        )
        .await
    {
        tracing::warn!(token_id = token.id, error = %e, "could not record token use");
    }
}
