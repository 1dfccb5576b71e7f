//! Browser sign-in and second factors (mandate §1): sessions, the password step, second
//! factors (TOTP, email, SMS, voice, passkeys, recovery codes), enrolment, the mandate gate,
//! account lockout, single sign-on and the administration of all of it.
//!
//! A sign-in moves a session through states ([`session::SessionState`]): password accepted →
//! `await_factor` (a factor is due) → `active`; or, for a local user without a factor whose
//! deadline passed, `must_enrol` (confined to enrolment); or `password_change` (confined to
//! changing a one-time password). The session id is replaced at every step. One middleware,
//! [`gate::session_gate`], sits in front of every session route and admits each state only
//! to its routes; everything else answers 403 with errorCode 1412.

pub mod admin;
pub mod api;
pub mod delivery;
pub mod enrol;
pub mod flow;
pub mod gate;
pub mod pages;
pub mod session;
pub mod sso;

use crate::portal::Portal;
use palisade_core::mfa::{self, MfaInput, Requirement, UserKind};
use palisade_store::{RoleRecord, UserRecord};

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Source address.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
}

/// How a user signs in, for the mandate.
pub fn user_kind(user: &UserRecord) -> UserKind {
    if user.is_support() {
        UserKind::Support
    } else if user.apionly {
        UserKind::ApiOnly
    } else if user.is_sso() {
        UserKind::Sso
    } else {
        UserKind::Local
    }
}

/// The user's two-factor requirement now.
pub fn requirement(
    user: &UserRecord,
    roles: &[RoleRecord],
    has_factor: bool,
    settings: &crate::settings::SigninSettings,
    now_ms: i64,
) -> Requirement {
    mfa::requirement(
        &mfa_input(user, roles, has_factor, settings, now_ms),
        now_ms,
    )
}

/// The facts that decide the user's two-factor requirement (shared by the gate and the
/// compliance center).
pub fn mfa_input(
    user: &UserRecord,
    roles: &[RoleRecord],
    has_factor: bool,
    settings: &crate::settings::SigninSettings,
    now_ms: i64,
) -> MfaInput {
    let role_requires = roles
        .iter()
        .any(|r| r.two_fa_required && user.role_ids.contains(&r.id));
    let break_glass = settings.restrict_to_sso && settings.is_break_glass(&user.username);
    MfaInput {
        kind: user_kind(user),
        has_confirmed_factor: has_factor,
        created_on_ms: user.created_on,
        enforcement_date_ms: settings.enforcement_date_ms,
        grace_ms: settings.grace_ms,
        // Break-glass accounts and the support account must always have a factor.
        role_requires_2fa: role_requires,
        deadline_override_ms: if break_glass || user.is_support() {
            Some(user.mfa_deadline.unwrap_or(user.created_on).min(now_ms))
        } else {
            user.mfa_deadline
        },
    }
}

/// Whether the user has a confirmed factor.
pub async fn has_factor(portal: &Portal, user_id: i64) -> Result<bool, palisade_store::StoreError> {
    Ok(portal
        .store
        .list_factors(user_id)
        .await?
        .iter()
        .any(|f| f.confirmed))
}
