//! First start: the built-in roles, the support account and the first administrator.
//! Every step is idempotent, so `serve` and the CLI run it on every start.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use palisade_core::privilege;
use palisade_core::secret::Secret;
use palisade_store::{
    NewRole, NewUser, StoreError, ADMINISTRATOR_ROLE, BUILTIN_SUPPORT, SUPPORT_USERNAME,
};
use rand::Rng;

/// Name of the first administrator.
pub const FIRST_ADMIN: &str = "admin";

/// What bootstrap created.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// The first administrator's one-time password, when it was created now.
    pub first_admin_password: Option<Secret<String>>,
}

/// Creates whatever built-in object is missing.
pub async fn run(portal: &Portal) -> Result<Bootstrapped, ApiError> {
    let actor = Actor::system("bootstrap");
    let builtins = [
        (
            ADMINISTRATOR_ROLE,
            "Every privilege. Cannot be changed or deleted, and its holders cannot own API tokens.",
            privilege::administrator_privileges(),
        ),
        (
            "manager",
            "Manages monitoring (devices, dashboards, reports, collectors); no user access.",
            privilege::manager_privileges(),
        ),
        (
            "ackonly",
            "Sees and acknowledges alerts.",
            privilege::ackonly_privileges(),
        ),
        (
            "readonly",
            "Sees monitoring data.",
            privilege::readonly_privileges(),
        ),
    ];
    for (name, description, privileges) in builtins {
        if portal.store.get_role_by_name(name).await?.is_some() {
            continue;
        }
        let audit = actor.event(
            portal.now(),
            "role.create",
            format!("Created built-in role {name} (id {{id}})"),
        );
        let new = NewRole {
            name: name.into(),
            description: description.into(),
            privileges,
            builtin: true,
            two_fa_required: false,
            created_on: portal.now(),
        };
        ignore_conflict(portal.store.create_role(new, audit).await)?;
    }
    crate::monitor::datasources::install_builtins(portal).await?;
    if portal
        .store
        .get_user_by_name(SUPPORT_USERNAME)
        .await?
        .is_none()
    {
        let readonly = portal
            .store
            .get_role_by_name("readonly")
            .await?
            .map(|r| r.id);
        let audit = actor.event(
            portal.now(),
            "user.create",
            format!("Created built-in support account {SUPPORT_USERNAME} (id {{id}}), disabled"),
        );
        let new = NewUser {
            username: SUPPORT_USERNAME.into(),
            email: "support@palisade.invalid".into(),
            first_name: "Palisade".into(),
            last_name: "Support".into(),
            status: "suspended".into(),
            builtin: Some(BUILTIN_SUPPORT.into()),
            note: "Built-in support account: disabled, no password, never holds API tokens.".into(),
            created_by: actor.username.clone(),
            created_on: portal.now(),
            role_ids: readonly.into_iter().collect(),
            sms_email_format: "sms".into(),
            contact_method: "email".into(),
            ..Default::default()
        };
        ignore_conflict(portal.store.create_user(new, audit).await)?;
    }
    if portal
        .store
        .get_setting("mfa.enforcement_date")
        .await?
        .is_none()
    {
        // A new portal enforces two-factor from its first day: every local user gets their
        // grace period from creation. Operators see and can change it (`palisade settings`).
        let today = crate::wire::utc_text(portal.now())
            .chars()
            .take(10)
            .collect::<String>();
        crate::settings::set(portal, &actor, "mfa.enforcement_date", &today).await?;
    }
    let mut out = Bootstrapped::default();
    let roles = portal.store.list_roles().await?;
    let Some(admin_role) = roles.iter().find(|r| r.is_administrator()) else {
        return Err(ApiError::Internal(
            "administrator role missing after bootstrap".into(),
        ));
    };
    let users = portal.store.list_users().await?;
    let has_admin = users.iter().any(|u| u.role_ids.contains(&admin_role.id));
    if !has_admin
        && !users
            .iter()
            .any(|u| u.username.eq_ignore_ascii_case(FIRST_ADMIN))
    {
        let password = one_time_password();
        let hash = portal
            .hashing
            .hash(password.expose().clone())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let audit = actor.event(
            portal.now(),
            "user.create",
            format!(
                "Created first administrator {FIRST_ADMIN} (id {{id}}) with a one-time password"
            ),
        );
        let new = NewUser {
            username: FIRST_ADMIN.into(),
            email: "admin@localhost".into(),
            status: "active".into(),
            password_hash: Some(hash),
            force_password_change: true,
            created_by: actor.username.clone(),
            created_on: portal.now(),
            role_ids: vec![admin_role.id],
            sms_email_format: "sms".into(),
            contact_method: "email".into(),
            ..Default::default()
        };
        match portal.store.create_user(new, audit).await {
            Ok(_) => out.first_admin_password = Some(password),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

fn ignore_conflict<T>(r: Result<T, StoreError>) -> Result<(), ApiError> {
    match r {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// 20 characters from an unambiguous alphabet: about 110 bits.
fn one_time_password() -> Secret<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let s: String = (0..20)
        .map(|_| {
            char::from(
                ALPHABET
                    .get(rng.gen_range(0..ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'x'),
            )
        })
        .collect();
    Secret::new(s)
}
