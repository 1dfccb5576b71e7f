//! Creating, changing and deleting API tokens, under the token mandate.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_core::policy;
use palisade_core::secret::Secret;
use palisade_core::token::{self, TokenKind};
use palisade_store::{
    NewToken, TokenChange, TokenRecord, TokenType, TOKEN_DISABLED, TOKEN_ENABLED,
};
use rand::RngCore;

/// A token just created, with its secret (shown once).
#[derive(Debug)]
pub struct CreatedToken {
    /// The stored token.
    pub record: TokenRecord,
    /// The LMv1 access key or the Bearer token.
    pub secret: Secret<String>,
}

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Bearer instead of LMv1.
    pub bearer: bool,
    /// Note.
    pub note: String,
    /// Expiry, epoch ms.
    pub expires_on: Option<i64>,
}

/// A new token's identity and secret, in the form it is stored.
#[derive(Debug)]
pub(crate) struct Minted {
    pub(crate) kind: TokenType,
    pub(crate) access_id: String,
    pub(crate) secret: Secret<String>,
    pub(crate) access_key_enc: Option<String>,
    pub(crate) bearer_hash: Option<String>,
}

/// Makes a new access id and secret of a kind: an LMv1 key sealed under the master key, a
/// Bearer token as its keyed hash.
pub(crate) fn mint(portal: &Portal, kind: TokenType) -> Minted {
    let mut rng = rand::rngs::OsRng;
    let mut id_bytes = [0u8; 20];
    rng.fill_bytes(&mut id_bytes);
    let access_id = token::access_id(&id_bytes);
    let mut secret_bytes = [0u8; 32];
    rng.fill_bytes(&mut secret_bytes);
    match kind {
        TokenType::Bearer | TokenType::Widget => {
            let format = if kind == TokenType::Widget {
                TokenKind::Widget
            } else {
                TokenKind::Bearer
            };
            let secret = token::encode(format, &secret_bytes);
            let h = portal.keys.bearer_hash(secret.expose());
            Minted {
                kind,
                access_id,
                secret,
                access_key_enc: None,
                bearer_hash: Some(h),
            }
        }
        TokenType::Lmv1 => {
            let secret = token::encode(TokenKind::Lmv1Key, &secret_bytes);
            let sealed = portal.keys.seal(secret.expose().as_bytes(), &access_id);
            Minted {
                kind,
                access_id,
                secret,
                access_key_enc: Some(sealed),
                bearer_hash: None,
            }
        }
    }
}

/// The limits every new token's note and expiry meet (API, CLI, web UI, widget tokens).
pub(crate) fn check_note_and_expiry(
    portal: &Portal,
    note: &str,
    expires_on: Option<i64>,
) -> Result<(), ApiError> {
    if note.chars().count() > 1024 {
        return Err(ApiError::BadRequest(
            "note must be at most 1024 characters".into(),
        ));
    }
    if expires_on.is_some_and(|e| e <= portal.now()) {
        return Err(ApiError::BadRequest(
            "expiresOn must be in the future".into(),
        ));
    }
    Ok(())
}

/// Creates a token for `owner_id`, refusing owners the mandate excludes.
pub async fn create(
    portal: &Portal,
    actor: &Actor,
    owner_id: i64,
    req: TokenRequest,
) -> Result<CreatedToken, ApiError> {
    let owner = portal
        .store
        .get_user(owner_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {owner_id} not found")))?;
    let roles = portal.store.list_roles().await?;
    let proof = policy::check_token_owner(&Portal::owner_facts(&owner, &roles))
        .map_err(|r| ApiError::Forbidden(r.to_string()))?;
    check_note_and_expiry(portal, &req.note, req.expires_on)?;
    let Minted {
        kind,
        access_id,
        secret,
        access_key_enc,
        bearer_hash,
    } = mint(
        portal,
        if req.bearer {
            TokenType::Bearer
        } else {
            TokenType::Lmv1
        },
    );
    let label = if req.bearer { "Bearer" } else { "LMv1" };
    let audit = actor.event(
        portal.now(),
        "token.create",
        format!(
            "Created {label} API token {{id}} (access id {access_id}) for user {} (id {owner_id})",
            owner.username
        ),
    );
    let new = NewToken {
        user_id: owner_id,
        kind,
        access_id,
        access_key_enc,
        bearer_hash,
        dashboard_id: None,
        note: req.note,
        created_by: actor.username.clone(),
        created_on: portal.now(),
        expires_on: req.expires_on,
    };
    let record = portal.store.create_token(proof, new, audit).await?;
    Ok(CreatedToken { record, secret })
}

async fn owned(portal: &Portal, owner_id: i64, token_id: i64) -> Result<TokenRecord, ApiError> {
    match portal.store.get_token(token_id).await? {
        Some(t) if t.user_id == owner_id => Ok(t),
        _ => Err(ApiError::NotFound(format!(
            "API token {token_id} of user {owner_id} not found"
        ))),
    }
}

/// Changes status (1 disabled, 2 enabled) or note.
pub async fn update(
    portal: &Portal,
    actor: &Actor,
    owner_id: i64,
    token_id: i64,
    status: Option<i64>,
    note: Option<String>,
) -> Result<TokenRecord, ApiError> {
    let token = owned(portal, owner_id, token_id).await?;
    if let Some(s) = status {
        if s != TOKEN_DISABLED && s != TOKEN_ENABLED {
            return Err(ApiError::BadRequest(
                "status must be 1 (disabled) or 2 (enabled)".into(),
            ));
        }
    }
    if note.as_ref().is_some_and(|n| n.len() > 1024) {
        return Err(ApiError::BadRequest(
            "note must be at most 1024 characters".into(),
        ));
    }
    let (action, what) = match status {
        Some(s) if s == TOKEN_DISABLED && token.status != TOKEN_DISABLED => {
            ("token.disable", "Disabled")
        }
        Some(s) if s == TOKEN_ENABLED && token.status != TOKEN_ENABLED => {
            ("token.enable", "Enabled")
        }
        _ => ("token.update", "Updated"),
    };
    let audit = actor.event(
        portal.now(),
        action,
        format!(
            "{what} API token {token_id} (access id {}) of user {owner_id}",
            token.access_id
        ),
    );
    Ok(portal
        .store
        .update_token(token_id, TokenChange { status, note }, audit)
        .await?)
}

/// Deletes a token.
pub async fn delete(
    portal: &Portal,
    actor: &Actor,
    owner_id: i64,
    token_id: i64,
) -> Result<(), ApiError> {
    let token = owned(portal, owner_id, token_id).await?;
    let audit = actor.event(
        portal.now(),
        "token.delete",
        format!(
            "Deleted API token {token_id} (access id {}) of user {owner_id}",
            token.access_id
        ),
    );
    Ok(portal.store.delete_token(token_id, audit).await?)
}

/// Gives a token an expiry (epoch ms), or moves it. The same value as now changes nothing
/// (clients send back what they read); any other value must lie in the future.
pub async fn set_expiry(
    portal: &Portal,
    actor: &Actor,
    owner_id: i64,
    token_id: i64,
    expires_on: i64,
) -> Result<TokenRecord, ApiError> {
    let token = owned(portal, owner_id, token_id).await?;
    if token.expires_on == Some(expires_on) {
        return Ok(token);
    }
    if expires_on <= portal.now() {
        return Err(ApiError::BadRequest(
            "expiresOn must be in the future (epoch seconds)".into(),
        ));
    }
    let audit = actor.event(
        portal.now(),
        "token.expiry",
        format!(
            "Set the expiry of API token {token_id} (access id {}) of user {owner_id} to {}",
            token.access_id,
            crate::wire::utc_text(expires_on)
        ),
    );
    Ok(portal
        .store
        .set_token_expiry(token_id, expires_on, audit)
        .await?)
}
