//! The API-token mandate and the administrator invariant, decided in one place.
//!
//! The mandate (`security-mandates.md` §4): no API token may exist for the built-in support
//! account or for a user holding the built-in `administrator` role. It is applied on token
//! creation ([`check_token_owner`], which returns the proof value [`TokenPolicyChecked`] that
//! the store requires to create a token), on every role change ([`check_role_change`]) and on
//! every request ([`check_token_use`]).
//!
//! ```
//! use palisade_core::policy::{check_token_owner, OwnerFacts, TokenRefusal};
//! let admin = OwnerFacts { is_support: false, holds_administrator: true, active: true };
//! assert_eq!(check_token_owner(&admin).err(), Some(TokenRefusal::AdministratorRole));
//! ```

/// What the mandate needs to know about a token's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerFacts {
    /// The owner is the built-in support account.
    pub is_support: bool,
    /// The owner holds the built-in `administrator` role.
    pub holds_administrator: bool,
    /// The owner's status is active.
    pub active: bool,
}

/// Proof that a token owner passed the mandate. Only [`check_token_owner`] makes one.
#[derive(Debug)]
pub struct TokenPolicyChecked(());

/// Why a token may not be created or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// The owner is the support account.
    #[error("API tokens cannot belong to the built-in support account; create an API-only user with a custom role that grants only what the integration needs")]
    SupportAccount,
    /// The owner holds `administrator`.
    #[error("API tokens cannot belong to a holder of the administrator role; create an API-only user (`palisade user add NAME --api-only --role ROLE`) with a custom role that grants only what the integration needs")]
    AdministratorRole,
    /// The owner is suspended.
    #[error("the token's owner is suspended")]
    OwnerSuspended,
}

/// Decides whether the owner may hold a new token.
pub fn check_token_owner(owner: &OwnerFacts) -> Result<TokenPolicyChecked, TokenRefusal> {
    check_token_use(owner)?;
    Ok(TokenPolicyChecked(()))
}

/// Decides whether an existing token of this owner may be used now.
pub fn check_token_use(owner: &OwnerFacts) -> Result<(), TokenRefusal> {
    if owner.is_support {
        return Err(TokenRefusal::SupportAccount);
    }
    if owner.holds_administrator {
        return Err(TokenRefusal::AdministratorRole);
    }
    if !owner.active {
        return Err(TokenRefusal::OwnerSuspended);
    }
    Ok(())
}

/// Which rule of the mandate a token of this owner breaks, if any: the support account or
/// the administrator role (a suspended owner breaks no rule; its tokens just do not work).
pub fn mandate_violation(owner: &OwnerFacts) -> Option<TokenRefusal> {
    if owner.is_support {
        Some(TokenRefusal::SupportAccount)
    } else if owner.holds_administrator {
        Some(TokenRefusal::AdministratorRole)
    } else {
        None
    }
}

/// Proof that an imported token may be stored. Only [`check_token_import`] makes one.
#[derive(Debug)]
pub struct TokenImportChecked(());

/// Decides whether a token brought from an older system may be imported for this owner.
///
/// An import keeps the token's *original* owner even when that owner breaks the mandate
/// (it holds `administrator`, or it is the support account): refusing it would break the
/// automation that uses it. Such a token is flagged and the migration assistant is the way
/// off it. Only a suspended owner is refused: its tokens could not be used anyway.
pub fn check_token_import(owner: &OwnerFacts) -> Result<TokenImportChecked, TokenRefusal> {
    if !owner.active {
        return Err(TokenRefusal::OwnerSuspended);
    }
    Ok(TokenImportChecked(()))
}

/// Decides whether an *imported* token may be used now. It keeps working while
/// `violating_allowed` (the setting `token.imported_violating_until` has not passed) even when
/// its owner breaks the mandate; the answer then names the rule it breaks. After that, and
/// for a suspended owner, it is refused like any token.
pub fn check_imported_token_use(
    owner: &OwnerFacts,
    violating_allowed: bool,
) -> Result<Option<TokenRefusal>, TokenRefusal> {
    if !owner.active {
        return Err(TokenRefusal::OwnerSuspended);
    }
    match mandate_violation(owner) {
        Some(v) if violating_allowed => Ok(Some(v)),
        Some(v) => Err(v),
        None => Ok(None),
    }
}

/// A change to a user's roles, status or existence, described by its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleChange {
    /// The user holds `administrator` before the change.
    pub was_administrator: bool,
    /// The user was an active administrator before the change.
    pub was_active_administrator: bool,
    /// The user holds `administrator` after the change (false when deleted).
    pub holds_administrator_after: bool,
    /// The user is active after the change (false when deleted).
    pub active_after: bool,
    /// Active (enabled) tokens the user owns.
    pub active_tokens: usize,
    /// Active administrators in the portal before the change, this user included.
    pub active_administrators: usize,
}

/// Why a change to users or roles is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoleChangeRefusal {
    /// Granting administrator to a token holder.
    #[error("the user owns {0} active API token(s); disable or delete them before granting the administrator role")]
    AdministratorWithTokens(usize),
    /// Removing the last active administrator.
    #[error("at least one active administrator must remain")]
    LastAdministrator,
}

/// Decides whether a change of a user's roles, status or existence is allowed.
pub fn check_role_change(change: &RoleChange) -> Result<(), RoleChangeRefusal> {
    if change.holds_administrator_after && !change.was_administrator && change.active_tokens > 0 {
        return Err(RoleChangeRefusal::AdministratorWithTokens(
            change.active_tokens,
        ));
    }
    let active_administrator_after = change.holds_administrator_after && change.active_after;
    if change.was_active_administrator
        && !active_administrator_after
        && change.active_administrators <= 1
    {
        return Err(RoleChangeRefusal::LastAdministrator);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: OwnerFacts = OwnerFacts {
        is_support: false,
        holds_administrator: false,
        active: true,
    };

    #[test]
    fn token_owner_rules() {
        assert!(check_token_owner(&PLAIN).is_ok());
        assert_eq!(
            check_token_owner(&OwnerFacts {
                is_support: true,
                ..PLAIN
            })
            .err(),
            Some(TokenRefusal::SupportAccount)
        );
        assert_eq!(
            check_token_owner(&OwnerFacts {
                holds_administrator: true,
                ..PLAIN
            })
            .err(),
            Some(TokenRefusal::AdministratorRole)
        );
        assert_eq!(
            check_token_use(&OwnerFacts {
                active: false,
                ..PLAIN
            }),
            Err(TokenRefusal::OwnerSuspended)
        );
        assert!(TokenRefusal::AdministratorRole
            .to_string()
            .contains("--api-only"));
    }

    #[test]
    fn imported_tokens() {
        let admin = OwnerFacts {
            holds_administrator: true,
            ..PLAIN
        };
        let support = OwnerFacts {
            is_support: true,
            ..PLAIN
        };
        assert!(check_token_import(&admin).is_ok());
        assert!(check_token_import(&support).is_ok());
        assert_eq!(
            check_token_import(&OwnerFacts {
                active: false,
                ..admin
            })
            .err(),
            Some(TokenRefusal::OwnerSuspended)
        );
        assert_eq!(
            check_imported_token_use(&admin, true),
            Ok(Some(TokenRefusal::AdministratorRole))
        );
        assert_eq!(
            check_imported_token_use(&admin, false),
            Err(TokenRefusal::AdministratorRole)
        );
        assert_eq!(check_imported_token_use(&PLAIN, false), Ok(None));
        assert_eq!(
            mandate_violation(&support),
            Some(TokenRefusal::SupportAccount)
        );
        assert_eq!(mandate_violation(&PLAIN), None);
    }

    #[test]
    fn role_change_rules() {
        let grant = RoleChange {
            was_administrator: false,
            was_active_administrator: false,
            holds_administrator_after: true,
            active_after: true,
            active_tokens: 2,
            active_administrators: 1,
        };
        assert_eq!(
            check_role_change(&grant),
            Err(RoleChangeRefusal::AdministratorWithTokens(2))
        );
        assert_eq!(
            check_role_change(&RoleChange {
                active_tokens: 0,
                ..grant
            }),
            Ok(())
        );
        let demote = RoleChange {
            was_administrator: true,
            was_active_administrator: true,
            holds_administrator_after: false,
            active_after: true,
            active_tokens: 0,
            active_administrators: 1,
        };
        assert_eq!(
            check_role_change(&demote),
            Err(RoleChangeRefusal::LastAdministrator)
        );
        let suspend = RoleChange {
            holds_administrator_after: true,
            active_after: false,
            ..demote
        };
        assert_eq!(
            check_role_change(&suspend),
            Err(RoleChangeRefusal::LastAdministrator)
        );
        assert_eq!(
            check_role_change(&RoleChange {
                active_administrators: 2,
                ..demote
            }),
            Ok(())
        );
    }
}
