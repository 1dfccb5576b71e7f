//! Who is calling: LMv1 and Bearer authentication, the token mandate on every request, and
//! the caller's privileges at the moment of the request.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use palisade_core::privilege::{allows, covers, Need, Privilege};
use palisade_core::{lmv1, policy, token};
use palisade_store::{RoleRecord, TokenRecord, TokenType, UserRecord, TOKEN_ENABLED};

/// An authenticated caller, placed in the request by the API gate.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who, from where (for audit entries).
    pub actor: Actor,
    /// The token's owner as of this request.
    pub user: UserRecord,
    /// The token used; `None` for a browser session.
    pub token: Option<TokenRecord>,
    /// The owner's privileges as of this request.
    pub privileges: Vec<Privilege>,
}

impl Caller {
    /// Refuses with 403 unless the caller's privileges grant `need`.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if allows(&self.privileges, &need) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "user `{}` lacks the privilege {need}; grant it through a custom role",
                self.user.username
            )))
        }
    }

    /// Refuses with 403 unless the caller's privileges permit `check` (the API gate's
    /// decision, [`palisade_core::access`]).
    pub fn require_check(&self, check: &palisade_core::access::Check) -> Result<(), ApiError> {
        if check.permits(&self.privileges) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "user `{}` lacks the privilege {check}; grant it through a custom role",
                self.user.username
            )))
        }
    }

    /// Refuses with 403 unless the caller holds every privilege it is about to grant.
    pub fn require_covers<'a>(
        &self,
        granted: impl IntoIterator<Item = &'a Privilege>,
    ) -> Result<(), ApiError> {
        for p in granted {
            if !covers(&self.privileges, p) {
                return Err(ApiError::Forbidden(format!(
                    "user `{}` cannot grant {p}, a privilege it does not hold itself",
                    self.user.username
                )));
            }
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("route is not behind the API gate".into()))
    }
}

/// A successful authentication.
#[derive(Debug)]
pub struct Authenticated {
    /// The token.
    pub token: TokenRecord,
    /// Its owner.
    pub user: UserRecord,
    /// All roles (to compute privileges and the mandate).
    pub roles: Vec<RoleRecord>,
}

/// A refused authentication, with what is known of the caller for the audit entry.
#[derive(Debug)]
pub struct Denied {
    /// The answer.
    pub error: ApiError,
    /// The claimed token's owner, when the token exists.
    pub user: Option<(i64, String)>,
    /// The claimed token, when it exists.
    pub token_id: Option<i64>,
}

fn denied(msg: &str) -> Denied {
    Denied {
        error: ApiError::Unauthenticated(msg.to_string()),
        user: None,
        token_id: None,
    }
}

/// Authenticates a request from its headers and raw body.
pub async fn authenticate(
    portal: &Portal,
    headers: &HeaderMap,
    method: &str,
    request_path: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<Authenticated, Denied> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(denied("missing Authorization header (use LMv1 or Bearer)"));
    };
    let value = value
        .to_str()
        .map_err(|_| denied("Authorization header is not ASCII"))?;
    let scheme = value.split(' ').next().unwrap_or_default();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        let presented = value.get(scheme.len()..).unwrap_or_default().trim();
        // Widget tokens (`palw_`, docs/dashboards.md) are sent as Bearer too; the gate then
        // confines them to their one dashboard. A token of another format can only be one
        // imported from an older system.
        let (expected, foreign) = match token::check(presented) {
            Ok(token::TokenKind::Bearer) => (TokenType::Bearer, false),
            Ok(token::TokenKind::Widget) => (TokenType::Widget, false),
            Err(token::TokenFormatError::UnknownPrefix)
                if crate::ops::token_import::plausible_secret(presented) =>
            {
                (TokenType::Bearer, true)
            }
            Ok(_) | Err(_) => return Err(denied("the Bearer token is malformed")),
        };
        let hash = portal.keys.bearer_hash(presented);
        let token = portal
            .store
            .find_token_by_hash(&hash)
            .await
            .map_err(store_down)?
            .ok_or_else(|| denied("unknown or deleted token"))?;
        if token.kind != expected {
            return Err(denied("unknown or deleted token"));
        }
        if foreign
            && portal
                .store
                .get_token_import(token.id)
                .await
                .map_err(store_down)?
                .is_none()
        {
            return Err(denied("unknown or deleted token"));
        }
        token
    } else if scheme.eq_ignore_ascii_case("lmv1") {
        let header = lmv1::parse_header(value).map_err(|e| denied(&e.to_string()))?;
        let token = portal
            .store
            .find_token_by_access_id(header.access_id)
            .await
            .map_err(store_down)?
            .ok_or_else(|| denied("unknown or deleted token"))?;
        let who = |error: ApiError, token: &TokenRecord| Denied {
            error,
            user: Some((token.user_id, String::new())),
            token_id: Some(token.id),
        };
        let Some(sealed) = token
            .access_key_enc
            .as_deref()
            .filter(|_| token.kind == TokenType::Lmv1)
        else {
            return Err(denied("unknown or deleted token"));
        };
        let key = portal.keys.open(sealed, &token.access_id).map_err(|e| {
            tracing::error!(token_id = token.id, error = %e, "cannot decrypt an LMv1 access key");
            who(
                ApiError::Unauthenticated(
                    "the token's key cannot be read; create a new token".into(),
                ),
                &token,
            )
        })?;
        let path = lmv1::resource_path(request_path);
        lmv1::verify(&header, key.expose(), method, body, &path, now_ms)
            .map_err(|e| who(ApiError::Unauthenticated(e.to_string()), &token))?;
        token
    } else {
        return Err(denied(
            "unsupported Authorization scheme (use LMv1 or Bearer)",
        ));
    };
    let refuse = |error: ApiError| Denied {
        error,
        user: Some((token.user_id, String::new())),
        token_id: Some(token.id),
    };
    if token.status != TOKEN_ENABLED {
        return Err(refuse(ApiError::Unauthenticated(
            "the token is disabled".into(),
        )));
    }
    if token.expires_on.is_some_and(|e| e <= now_ms) {
        return Err(refuse(ApiError::Unauthenticated(
            "the token has expired".into(),
        )));
    }
    let user = portal
        .store
        .get_user(token.user_id)
        .await
        .map_err(store_down)?
        .ok_or_else(|| {
            refuse(ApiError::Unauthenticated(
                "the token's owner no longer exists".into(),
            ))
        })?;
    let roles = portal.store.list_roles().await.map_err(store_down)?;
    let facts = Portal::owner_facts(&user, &roles);
    if let Err(r) = policy::check_token_use(&facts) {
        // A token imported from an older system keeps working, flagged, while the policy
        // allows it (docs/token-migration.md); only then is the import looked up.
        let imported = policy::mandate_violation(&facts).is_some()
            && portal
                .store
                .get_token_import(token.id)
                .await
                .map_err(store_down)?
                .is_some();
        let verdict = if imported {
            let allowed = crate::ops::token_migration::imported_violating_allowed(portal, now_ms)
                .await
                .map_err(|e| Denied {
                    error: e,
                    user: None,
                    token_id: None,
                })?;
            policy::check_imported_token_use(&facts, allowed).map(|_| ())
        } else {
            Err(r)
        };
        if let Err(r) = verdict {
            let error = if imported && r != policy::TokenRefusal::OwnerSuspended {
                format!("{r}; imported tokens of such owners were allowed until the date set by `token.imported_violating_until`: replace it with `palisade token migrate {}`", token.id)
            } else {
                r.to_string()
            };
            return Err(Denied {
                error: ApiError::Forbidden(error),
                user: Some((user.id, user.username.clone())),
                token_id: Some(token.id),
            });
        }
    }
    Ok(Authenticated { token, user, roles })
}

fn store_down(e: palisade_store::StoreError) -> Denied {
    Denied {
        error: e.into(),
        user: None,
        token_id: None,
    }
}
