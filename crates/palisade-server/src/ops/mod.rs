//! Operations on users, roles, tokens and the audit log: validation, the mandate, hashing
//! and encryption, and the audit entry of each change. The HTTP handlers and the admin CLI
//! both call these, so both apply the same rules.

pub mod audit_verify;
pub mod bootstrap;
pub mod roles;
pub mod token_import;
pub mod token_migration;
pub mod tokens;
pub mod users;

use crate::error::ApiError;
use crate::portal::Portal;
use palisade_store::RoleRecord;

/// Resolves role references (by id, else by name) to role ids.
pub(crate) async fn resolve_roles(
    portal: &Portal,
    refs: &[palisade_api::RoleRef],
) -> Result<Vec<i64>, ApiError> {
    let all: Vec<RoleRecord> = portal.store.list_roles().await?;
    let mut ids = Vec::with_capacity(refs.len());
    for r in refs {
        let found = match (r.id, r.name.as_deref()) {
            (Some(id), _) => all.iter().find(|x| x.id == id),
            (None, Some(name)) => all.iter().find(|x| x.name.eq_ignore_ascii_case(name)),
            (None, None) => {
                return Err(ApiError::BadRequest(
                    "each role needs an `id` (or a `name`)".into(),
                ))
            }
        };
        match found {
            Some(role) if !ids.contains(&role.id) => ids.push(role.id),
            Some(_) => {}
            None => {
                return Err(ApiError::BadRequest(format!(
                    "role {} does not exist",
                    r.id.map(|i| i.to_string())
                        .or(r.name.clone())
                        .unwrap_or_default()
                )))
            }
        }
    }
    Ok(ids)
}
