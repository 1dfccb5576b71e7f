//! Importing API tokens from an older system (`palisade token import`).
//!
//! An imported token keeps its original owner and secret, even when the owner breaks the
//! token mandate (holds `administrator`, or is the support account): refusing it would break
//! the automation that uses it. It is stored exactly as created tokens are (an LMv1 key
//! sealed under the master key, a Bearer token as its keyed hash), flagged at once (an audit
//! entry, `imported` and `violatesMandate` on the token) and keeps working while the setting
//! `token.imported_violating_until` allows; the migration assistant replaces it.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_core::policy::{self, TokenRefusal};
use palisade_core::secret::Secret;
use palisade_core::token;
use palisade_store::{NewToken, TokenRecord, TokenType};
use rand::RngCore;

/// What to import.
#[derive(Debug)]
pub struct ImportRequest {
    /// The original owner's username.
    pub owner: String,
    /// LMv1 or Bearer.
    pub kind: TokenType,
    /// The LMv1 access id (required for LMv1; Bearer tokens get a new public handle).
    pub access_id: Option<String>,
    /// The LMv1 access key or the Bearer token.
    pub secret: Secret<String>,
    /// A note on the token.
    pub note: String,
    /// Where it comes from (free text, kept with the import).
    pub source: String,
}

/// Whether a string can be a secret of another system: 8 to 512 printable ASCII characters.
pub fn plausible_secret(s: &str) -> bool {
    (8..=512).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

fn valid_access_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// The mandate rule a token of this owner breaks, in a few words (for `violatesMandate`).
pub fn violation_text(r: TokenRefusal) -> &'static str {
    match r {
        TokenRefusal::SupportAccount => "owner is the built-in support account",
        TokenRefusal::AdministratorRole => "owner holds the administrator role",
        TokenRefusal::OwnerSuspended => "owner is suspended",
    }
}

/// Imports a token under its original owner.
pub async fn import(
    portal: &Portal,
    actor: &Actor,
    req: ImportRequest,
) -> Result<TokenRecord, ApiError> {
    let owner = portal
        .store
        .get_user_by_name(&req.owner)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user named `{}`", req.owner)))?;
    let roles = portal.store.list_roles().await?;
    let facts = Portal::owner_facts(&owner, &roles);
    let proof = policy::check_token_import(&facts).map_err(|r| {
        ApiError::Forbidden(format!(
            "cannot import a token for `{}`: {r}",
            owner.username
        ))
    })?;
    let secret = req.secret.expose().trim();
    if !plausible_secret(secret) {
        return Err(ApiError::BadRequest(
            "the secret must be 8 to 512 printable ASCII characters (read from stdin or a file, one line)".into(),
        ));
    }
    if req.note.len() > 1024 || req.source.len() > 1024 {
        return Err(ApiError::BadRequest(
            "note and source must be at most 1024 characters".into(),
        ));
    }
    if req.kind == TokenType::Widget {
        return Err(ApiError::BadRequest(
            "widget tokens are not imported: issue one on the dashboard".into(),
        ));
    }
    // A Palisade-format secret must be intact (and of the right kind).
    match (token::check(secret), req.kind) {
        (Err(token::TokenFormatError::UnknownPrefix), _) => {}
        (Ok(token::TokenKind::Bearer), TokenType::Bearer)
        | (Ok(token::TokenKind::Lmv1Key), TokenType::Lmv1) => {}
        (Ok(_), _) => {
            return Err(ApiError::BadRequest(
                "the secret is a Palisade token of the other kind (pal_ is Bearer, palk_ is an LMv1 key)".into(),
            ))
        }
        (Err(e), _) => return Err(ApiError::BadRequest(format!("the secret: {e}"))),
    }
    let (access_id, access_key_enc, bearer_hash) = match req.kind {
        TokenType::Lmv1 => {
            let id = req
                .access_id
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::BadRequest("an LMv1 token needs its access id (--access-id)".into())
                })?;
            if !valid_access_id(id) {
                return Err(ApiError::BadRequest(
                    "the access id must be 1 to 128 printable ASCII characters without `:`".into(),
                ));
            }
            let sealed = portal.keys.seal(secret.as_bytes(), id);
            (id.to_string(), Some(sealed), None)
        }
        TokenType::Bearer | TokenType::Widget => {
            let hash = portal.keys.bearer_hash(secret);
            if let Some(t) = portal.store.find_token_by_hash(&hash).await? {
                return Err(ApiError::Conflict(format!(
                    "this Bearer token is already stored (token {})",
                    t.id
                )));
            }
            let mut id_bytes = [0u8; 20];
            rand::rngs::OsRng.fill_bytes(&mut id_bytes);
            (token::access_id(&id_bytes), None, Some(hash))
        }
    };
    if portal
        .store
        .find_token_by_access_id(&access_id)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "a token with access id {access_id} already exists"
        )));
    }
    let label = match req.kind {
        TokenType::Lmv1 => "LMv1",
        TokenType::Bearer | TokenType::Widget => "Bearer",
    };
    let verdict = match policy::mandate_violation(&facts) {
        Some(v) => format!(
            "it breaks the token mandate ({}): flagged; it keeps working while `token.imported_violating_until` allows; replace it with `palisade token migrate {{id}}`",
            violation_text(v)
        ),
        None => "its owner meets the token mandate".into(),
    };
    let from = if req.source.trim().is_empty() {
        String::new()
    } else {
        format!(" from {}", req.source.trim())
    };
    let audit = actor.event(
        portal.now(),
        "token.import",
        format!(
            "Imported {label} API token {{id}} (access id {access_id}) for user {} (id {}){from}; {verdict}",
            owner.username, owner.id
        ),
    );
    let new = NewToken {
        dashboard_id: None,
        user_id: owner.id,
        kind: req.kind,
        access_id,
        access_key_enc,
        bearer_hash,
        note: req.note,
        created_by: actor.username.clone(),
        created_on: portal.now(),
        expires_on: None,
    };
    Ok(portal
        .store
        .import_token(proof, new, req.source.trim().to_string(), audit)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(plausible_secret("lmb_abcdefgh"));
        assert!(!plausible_secret("short"));
        assert!(!plausible_secret("has a space in it"));
        assert!(valid_access_id("5Zh3kQ8vFhA9xYz2LmN0"));
        assert!(!valid_access_id("a:b"));
        assert!(!valid_access_id(""));
        assert_eq!(
            violation_text(TokenRefusal::AdministratorRole),
            "owner holds the administrator role"
        );
    }
}
