//! Adding, changing and deleting users.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_api::AdminRequest;
use palisade_core::password;
use palisade_store::{NewUser, UserChange, UserRecord};

fn valid_username(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "username must be 1 to 64 characters of letters, digits and . _ @ + -".into(),
        ))
    }
}

fn valid_email(email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "email must be an address of the form name@domain".into(),
        ))
    }
}

fn valid_status(status: &str) -> Result<(), ApiError> {
    match status {
        "active" | "suspended" => Ok(()),
        _ => Err(ApiError::BadRequest(
            "status must be `active` or `suspended`".into(),
        )),
    }
}

async fn hash_checked(portal: &Portal, pw: &str, username: &str) -> Result<String, ApiError> {
    password::check(pw, username).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    portal
        .hashing
        .hash(pw.to_string())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Adds a user.
pub async fn create(
    portal: &Portal,
    actor: &Actor,
    req: AdminRequest,
) -> Result<UserRecord, ApiError> {
    let username = req
        .username
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::BadRequest("`username` is required".into()))?
        .to_string();
    valid_username(&username)?;
    let email = req
        .email
        .clone()
        .ok_or_else(|| ApiError::BadRequest("`email` is required".into()))?;
    valid_email(&email)?;
    let refs = req.roles.clone().unwrap_or_default();
    if refs.is_empty() {
        return Err(ApiError::BadRequest(
            "`roles` is required: a user needs at least one role".into(),
        ));
    }
    let role_ids = super::resolve_roles(portal, &refs).await?;
    let apionly = req.apionly.unwrap_or(false);
    let status = req.status.clone().unwrap_or_else(|| "active".into());
    valid_status(&status)?;
    let password_hash = match (&req.password, apionly) {
        (Some(_), true) => {
            return Err(ApiError::BadRequest(
                "API-only users have no password; omit `password`".into(),
            ))
        }
        (Some(pw), false) => Some(hash_checked(portal, pw, &username).await?),
        (None, _) => None,
    };
    let new = NewUser {
        username: username.clone(),
        email,
        first_name: req.first_name.unwrap_or_default(),
        last_name: req.last_name.unwrap_or_default(),
        phone: req.phone.unwrap_or_default(),
        note: req.note.unwrap_or_default(),
        status,
        apionly,
        password_hash,
        force_password_change: req.force_password_change.unwrap_or(false),
        builtin: None,
        timezone: req.timezone.unwrap_or_default(),
        sms_email: req.sms_email.unwrap_or_default(),
        sms_email_format: req.sms_email_format.unwrap_or_else(|| "sms".into()),
        contact_method: req.contact_method.unwrap_or_else(|| "email".into()),
        created_by: actor.username.clone(),
        created_on: portal.now(),
        auth_source: "local".into(),
        role_ids: role_ids.clone(),
    };
    let kind = if apionly { "API-only user" } else { "user" };
    let audit = actor.event(
        portal.now(),
        "user.create",
        format!("Added {kind} {username} (id {{id}}) with role ids {role_ids:?}"),
    );
    Ok(portal.store.create_user(new, audit).await?)
}

/// How an update treats absent fields and passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateMode {
    /// `?changePassword=true`: a `password` in the body is applied.
    pub change_password: bool,
}

/// Changes a user (PATCH and PUT: absent fields are kept in both, as LogicMonitor does).
pub async fn update(
    portal: &Portal,
    actor: &Actor,
    id: i64,
    req: AdminRequest,
    mode: UpdateMode,
) -> Result<UserRecord, ApiError> {
    let user = portal
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let mut change = UserChange::default();
    let mut changed: Vec<&str> = Vec::new();
    if let Some(name) = req.username.as_deref().map(str::trim) {
        if name != user.username {
            if user.builtin.is_some() {
                return Err(ApiError::Forbidden(
                    "built-in accounts cannot be renamed".into(),
                ));
            }
            valid_username(name)?;
            change.username = Some(name.to_string());
            changed.push("username");
        }
    }
    if let Some(email) = req.email {
        if email != user.email {
            valid_email(&email)?;
            change.email = Some(email);
            changed.push("email");
        }
    }
    macro_rules! plain {
        ($field:ident, $name:literal) => {
            if let Some(v) = req.$field {
                if v != user.$field {
                    change.$field = Some(v);
                    changed.push($name);
                }
            }
        };
    }
    plain!(first_name, "firstName");
    plain!(last_name, "lastName");
    plain!(phone, "phone");
    plain!(note, "note");
    plain!(timezone, "timezone");
    plain!(sms_email, "smsEmail");
    plain!(sms_email_format, "smsEmailFormat");
    plain!(contact_method, "contactMethod");
    plain!(force_password_change, "forcePasswordChange");
    if let Some(status) = req.status {
        valid_status(&status)?;
        if user.is_support() && status == "active" {
            return Err(ApiError::Forbidden(
                "the built-in support account stays disabled; it is not enabled through the users API".into(),
            ));
        }
        if status != user.status {
            change.status = Some(status);
            changed.push("status");
        }
    }
    let apionly_after = req.apionly.unwrap_or(user.apionly);
    if apionly_after != user.apionly {
        if user.builtin.is_some() {
            return Err(ApiError::Forbidden(
                "built-in accounts cannot become API-only".into(),
            ));
        }
        change.apionly = Some(apionly_after);
        changed.push("apionly");
        if apionly_after {
            change.password_hash = Some(None);
        }
    }
    if let Some(refs) = req.roles {
        if refs.is_empty() {
            return Err(ApiError::BadRequest(
                "a user needs at least one role".into(),
            ));
        }
        let mut ids = super::resolve_roles(portal, &refs).await?;
        ids.sort_unstable();
        if ids != user.role_ids {
            if user.builtin.is_some() {
                return Err(ApiError::Forbidden(
                    "the roles of built-in accounts cannot be changed".into(),
                ));
            }
            change.role_ids = Some(ids);
            changed.push("roles");
        }
    }
    if mode.change_password {
        let pw = req
            .password
            .ok_or_else(|| ApiError::BadRequest("changePassword=true needs a `password`".into()))?;
        if apionly_after {
            return Err(ApiError::BadRequest(
                "API-only users have no password".into(),
            ));
        }
        if user.builtin.is_some() {
            return Err(ApiError::Forbidden(
                "built-in accounts have no password".into(),
            ));
        }
        let name = change
            .username
            .clone()
            .unwrap_or_else(|| user.username.clone());
        change.password_hash = Some(Some(hash_checked(portal, &pw, &name).await?));
        changed.push("password");
    }
    let audit = actor.event(
        portal.now(),
        "user.update",
        format!(
            "Updated user {} (id {id}): {}",
            user.username,
            if changed.is_empty() {
                "no changes".to_string()
            } else {
                changed.join(", ")
            }
        ),
    );
    let ends_sessions = changed
        .iter()
        .any(|c| matches!(*c, "password" | "roles" | "status" | "apionly" | "username"));
    let user = portal.store.update_user(id, change, audit).await?;
    if ends_sessions {
        // A password, role or status change ends every session of the user.
        portal.store.delete_user_sessions(id).await?;
    }
    Ok(user)
}

/// Deletes a user and its tokens.
pub async fn delete(portal: &Portal, actor: &Actor, id: i64) -> Result<(), ApiError> {
    let user = portal
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} not found")))?;
    let audit = actor.event(
        portal.now(),
        "user.delete",
        format!(
            "Deleted user {} (id {id}) and its API tokens",
            user.username
        ),
    );
    Ok(portal.store.delete_user(id, audit).await?)
}
