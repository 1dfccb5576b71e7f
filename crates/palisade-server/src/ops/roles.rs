//! Adding, changing and deleting roles.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_api::RoleRequest;
use palisade_core::privilege::Privilege;
use palisade_store::{NewRole, RoleChangeSet, RoleRecord};

/// Parses and validates privileges from a request body.
pub fn parse_privileges(raw: Vec<serde_json::Value>) -> Result<Vec<Privilege>, ApiError> {
    raw.into_iter()
        .map(|v| {
            let p: Privilege = serde_json::from_value(v).map_err(|e| {
                ApiError::BadRequest(format!(
                    "each privilege needs objectType, objectId and operation: {e}"
                ))
            })?;
            p.validate()
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            Ok(p)
        })
        .collect()
}

fn valid_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(ApiError::BadRequest(
            "role `name` must be 1 to 64 characters".into(),
        ));
    }
    Ok(())
}

/// Adds a custom role.
pub async fn create(
    portal: &Portal,
    actor: &Actor,
    req: RoleRequest,
) -> Result<RoleRecord, ApiError> {
    let name = req
        .name
        .ok_or_else(|| ApiError::BadRequest("`name` is required".into()))?;
    valid_name(&name)?;
    let privileges = parse_privileges(req.privileges.ok_or_else(|| {
        ApiError::BadRequest("`privileges` is required (it may be empty)".into())
    })?)?;
    create_checked(
        portal,
        actor,
        name.trim().to_string(),
        req.description.unwrap_or_default(),
        privileges,
        req.two_fa_required.unwrap_or(false),
    )
    .await
}

/// Adds a role from already validated privileges (the CLI's path).
pub async fn create_checked(
    portal: &Portal,
    actor: &Actor,
    name: String,
    description: String,
    privileges: Vec<Privilege>,
    two_fa_required: bool,
) -> Result<RoleRecord, ApiError> {
    let listed: Vec<String> = privileges.iter().map(ToString::to_string).collect();
    let audit = actor.event(
        portal.now(),
        "role.create",
        format!(
            "Added role {name} (id {{id}}) with privileges [{}]",
            listed.join(", ")
        ),
    );
    let new = NewRole {
        name,
        description,
        privileges,
        builtin: false,
        two_fa_required,
        created_on: portal.now(),
    };
    Ok(portal.store.create_role(new, audit).await?)
}

/// Changes a role. The built-in `administrator` role cannot be changed.
pub async fn update(
    portal: &Portal,
    actor: &Actor,
    id: i64,
    req: RoleRequest,
) -> Result<RoleRecord, ApiError> {
    let role = portal
        .store
        .get_role(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("role {id} not found")))?;
    if let Some(n) = &req.name {
        valid_name(n)?;
    }
    let privileges = req.privileges.map(parse_privileges).transpose()?;
    let mut changed = vec![];
    if req.name.as_ref().is_some_and(|n| n.trim() != role.name) {
        changed.push("name".to_string());
    }
    if let Some(p) = &privileges {
        let listed: Vec<String> = p.iter().map(ToString::to_string).collect();
        changed.push(format!("privileges [{}]", listed.join(", ")));
    }
    if req.description.is_some() {
        changed.push("description".into());
    }
    if req.two_fa_required.is_some() {
        changed.push("twoFARequired".into());
    }
    let audit = actor.event(
        portal.now(),
        "role.update",
        format!(
            "Updated role {} (id {id}): {}",
            role.name,
            changed.join(", ")
        ),
    );
    let change = RoleChangeSet {
        name: req.name.map(|n| n.trim().to_string()),
        description: req.description,
        privileges,
        two_fa_required: req.two_fa_required,
    };
    Ok(portal.store.update_role(id, change, audit).await?)
}

/// Deletes a custom role that no user holds.
pub async fn delete(portal: &Portal, actor: &Actor, id: i64) -> Result<(), ApiError> {
    let role = portal
        .store
        .get_role(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("role {id} not found")))?;
    let audit = actor.event(
        portal.now(),
        "role.delete",
        format!("Deleted role {} (id {id})", role.name),
    );
    Ok(portal.store.delete_role(id, audit).await?)
}
