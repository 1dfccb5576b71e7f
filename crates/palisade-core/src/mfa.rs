//! The two-factor mandate: whether a user must have a second factor, and from when.
//!
//! [`requirement`] turns the facts about a user ([`MfaInput`]) and the current time into a
//! [`Requirement`]. The deadline is computed on every read and never stored, so shortening
//! the grace period or moving the enforcement date applies at once (the GitLab bug where a
//! shortened grace period spared users who had already skipped cannot happen).
//!
//! # Decision table
//!
//! Evaluated top to bottom; the first matching row wins. `G = created_on_ms + grace`, with
//! the grace period clamped to `0..=MAX_GRACE_MS`; `E` is the account-wide enforcement date.
//!
//! | # | user kind | has factor | role requires 2FA | enforcement date | per-user override `D` | deadline | result |
//! |---|---|---|---|---|---|---|---|
//! | 1 | `Sso`, `ApiOnly` | any | any | any | any | — | `NotApplicable` |
//! | 2 | `Local`, `Support` | yes | any | any | any | — | `Satisfied` |
//! | 3 | `Local`, `Support` | no | any | any | `Some(D)` | `D` | `Grace` / `MustEnrol` |
//! | 4 | `Local`; `Support` always | no | yes | any | `None` | `G` | `Grace` / `MustEnrol` |
//! | 5 | `Local` | no | no | `Some(E)` | `None` | `max(E, G)` | `Grace` / `MustEnrol` |
//! | 6 | `Local` | no | no | `None` | `None` | — | `Optional` |
//!
//! `Grace { deadline_ms }` while `now_ms < deadline`, `MustEnrol` from the deadline on
//! (a grace period of 0 therefore means "at the next sign-in").
//!
//! Why these rows:
//! - **No surprises (row 5).** A user created long before the enforcement date has until that
//!   date; a user created after it (or shortly before) still gets their own grace period from
//!   creation. Nobody is forced to enrol at a moment the operator did not announce.
//! - **Roles are the stricter switch (row 4).** A role with `twoFARequired` is an explicit
//!   operator decision about that role: its members get only their own grace period from
//!   creation (the earlier of rows 4 and 5, since `G <= max(E, G)`). A long-standing user
//!   put into such a role must enrol at their next sign-in.
//! - **The support account always needs a factor (row 4).** It is a local account with
//!   wide power that never signs in through the customer's SSO; it is treated as if one of
//!   its roles required 2FA, even when nothing is configured.
//! - **The per-user override (row 3)** replaces the computed deadline in either direction (an
//!   administrator extends one user's grace, or ends it at once). It also applies where no
//!   mandate is configured (row 6): setting a deadline for a user is itself a requirement.
//! - **Row 6** exists for installations where the operator has configured neither an
//!   enforcement date nor a role requirement. Palisade promises two-factor for every local
//!   user, so the portal should always configure an enforcement date (for example install
//!   or upgrade time plus [`DEFAULT_GRACE_MS`]); `None` then means "not configured yet".
//! - SSO users are exempt (their identity provider is expected to require MFA) and API-only
//!   users cannot sign in interactively, whatever stale 2FA state they carry (row 1).
//!
//! ```
//! use palisade_core::mfa::{requirement, MfaInput, Requirement, UserKind, DEFAULT_GRACE_MS};
//! let day = 24 * 60 * 60 * 1000;
//! let input = MfaInput {
//!     kind: UserKind::Local,
//!     has_confirmed_factor: false,
//!     created_on_ms: 0,
//!     enforcement_date_ms: Some(30 * day),
//!     grace_ms: DEFAULT_GRACE_MS,
//!     role_requires_2fa: false,
//!     deadline_override_ms: None,
//! };
//! assert_eq!(requirement(&input, 10 * day), Requirement::Grace { deadline_ms: 30 * day });
//! assert_eq!(requirement(&input, 30 * day), Requirement::MustEnrol);
//! ```

/// Default grace period: 72 hours.
pub const DEFAULT_GRACE_MS: i64 = 72 * 60 * 60 * 1000;
/// Longest grace period an operator may configure: 30 days.
pub const MAX_GRACE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How a user signs in, as far as the mandate is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserKind {
    /// Username and password on Palisade.
    Local,
    /// Single sign-on (SAML, OIDC): the identity provider is responsible for MFA.
    Sso,
    /// API tokens only; no interactive sign-in.
    ApiOnly,
    /// The built-in support account: local, and always required to have a factor.
    Support,
}

/// The facts about one user that decide their two-factor requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaInput {
    /// How the user signs in.
    pub kind: UserKind,
    /// Whether the user has at least one confirmed second factor.
    pub has_confirmed_factor: bool,
    /// When the user was created (milliseconds since the epoch).
    pub created_on_ms: i64,
    /// The account-wide enforcement date (milliseconds since the epoch); `None` when not
    /// configured.
    pub enforcement_date_ms: Option<i64>,
    /// The configured grace period in milliseconds; clamped to `0..=MAX_GRACE_MS`.
    pub grace_ms: i64,
    /// Whether any of the user's roles has `twoFARequired`.
    pub role_requires_2fa: bool,
    /// An administrator's deadline for this user, replacing the computed one.
    pub deadline_override_ms: Option<i64>,
}

/// What the mandate asks of a user now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Requirement {
    /// The mandate does not apply (SSO and API-only users).
    NotApplicable,
    /// No mandate is configured for this user; a second factor is recommended.
    Optional,
    /// The user has a confirmed second factor.
    Satisfied,
    /// The user must enrol by `deadline_ms` and may work until then (show a banner).
    Grace {
        /// The deadline (milliseconds since the epoch).
        deadline_ms: i64,
    },
    /// The deadline has passed: the user is confined to enrolment until they enrol.
    MustEnrol,
}

impl Requirement {
    /// Whether the user may reach nothing but enrolment.
    pub fn must_enrol(&self) -> bool {
        matches!(self, Requirement::MustEnrol)
    }
}

/// Why a grace period setting was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GraceError {
    /// Outside 0 to 30 days.
    #[error("the two-factor grace period must be between 0 and 30 days")]
    OutOfRange,
}

/// Validates a grace period an operator is setting: 0 to [`MAX_GRACE_MS`] inclusive.
pub fn validate_grace_ms(grace_ms: i64) -> Result<i64, GraceError> {
    if (0..=MAX_GRACE_MS).contains(&grace_ms) {
        Ok(grace_ms)
    } else {
        Err(GraceError::OutOfRange)
    }
}

/// The deadline from the decision table (rows 3–5), or `None` for row 6. Meaningful only
/// for local and support users without a factor.
pub fn deadline_ms(input: &MfaInput) -> Option<i64> {
    if let Some(deadline) = input.deadline_override_ms {
        return Some(deadline);
    }
    let own = input
        .created_on_ms
        .saturating_add(input.grace_ms.clamp(0, MAX_GRACE_MS));
    if input.role_requires_2fa || input.kind == UserKind::Support {
        return Some(own);
    }
    input.enforcement_date_ms.map(|date| date.max(own))
}

/// The user's two-factor requirement at `now_ms` (see the decision table in the module doc).
pub fn requirement(input: &MfaInput, now_ms: i64) -> Requirement {
    match input.kind {
        UserKind::Sso | UserKind::ApiOnly => return Requirement::NotApplicable,
        UserKind::Local | UserKind::Support => {}
    }
    if input.has_confirmed_factor {
        return Requirement::Satisfied;
    }
    match deadline_ms(input) {
        None => Requirement::Optional,
        Some(deadline) if now_ms < deadline => Requirement::Grace {
            deadline_ms: deadline,
        },
        Some(_) => Requirement::MustEnrol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * 60 * 1000;
    const DAY: i64 = 24 * HOUR;
    const CREATED: i64 = 1_000 * DAY;

    fn local() -> MfaInput {
        MfaInput {
            kind: UserKind::Local,
            has_confirmed_factor: false,
            created_on_ms: CREATED,
            enforcement_date_ms: None,
            grace_ms: DEFAULT_GRACE_MS,
            role_requires_2fa: false,
            deadline_override_ms: None,
        }
    }

    fn grace(deadline_ms: i64) -> Requirement {
        Requirement::Grace { deadline_ms }
    }

    #[test]
    fn row1_sso_and_api_only_are_not_applicable() {
        for kind in [UserKind::Sso, UserKind::ApiOnly] {
            for has_confirmed_factor in [false, true] {
                let input = MfaInput {
                    kind,
                    has_confirmed_factor,
                    role_requires_2fa: true,
                    enforcement_date_ms: Some(0),
                    deadline_override_ms: Some(0),
                    ..local()
                };
                assert_eq!(
                    requirement(&input, CREATED + 100 * DAY),
                    Requirement::NotApplicable
                );
            }
        }
    }

    #[test]
    fn row2_a_confirmed_factor_satisfies() {
        for kind in [UserKind::Local, UserKind::Support] {
            let input = MfaInput {
                kind,
                has_confirmed_factor: true,
                role_requires_2fa: true,
                enforcement_date_ms: Some(0),
                deadline_override_ms: Some(0),
                ..local()
            };
            assert_eq!(
                requirement(&input, CREATED + 100 * DAY),
                Requirement::Satisfied
            );
        }
    }

    #[test]
    fn row3_the_override_replaces_the_computed_deadline() {
        // extends a role's deadline
        let extended = MfaInput {
            role_requires_2fa: true,
            deadline_override_ms: Some(CREATED + 10 * DAY),
            ..local()
        };
        assert_eq!(
            requirement(&extended, CREATED + 5 * DAY),
            grace(CREATED + 10 * DAY)
        );
        assert_eq!(
            requirement(&extended, CREATED + 10 * DAY),
            Requirement::MustEnrol
        );
        // shortens an enforcement date
        let shortened = MfaInput {
            enforcement_date_ms: Some(CREATED + 60 * DAY),
            deadline_override_ms: Some(CREATED + HOUR),
            ..local()
        };
        assert_eq!(
            requirement(&shortened, CREATED + 2 * HOUR),
            Requirement::MustEnrol
        );
        // applies where nothing else is configured, and to the support account
        for kind in [UserKind::Local, UserKind::Support] {
            let only = MfaInput {
                kind,
                deadline_override_ms: Some(CREATED + 200 * DAY),
                ..local()
            };
            assert_eq!(
                requirement(&only, CREATED + 100 * DAY),
                grace(CREATED + 200 * DAY)
            );
        }
    }

    #[test]
    fn row4_a_role_requiring_2fa_gives_the_own_grace_period() {
        let input = MfaInput {
            role_requires_2fa: true,
            ..local()
        };
        assert_eq!(requirement(&input, CREATED), grace(CREATED + 72 * HOUR));
        assert_eq!(
            requirement(&input, CREATED + 72 * HOUR - 1),
            grace(CREATED + 72 * HOUR)
        );
        assert_eq!(
            requirement(&input, CREATED + 72 * HOUR),
            Requirement::MustEnrol
        );
        // a later enforcement date does not extend it (the earlier deadline wins)
        let both = MfaInput {
            enforcement_date_ms: Some(CREATED + 30 * DAY),
            ..input
        };
        assert_eq!(
            requirement(&both, CREATED + 4 * DAY),
            Requirement::MustEnrol
        );
        // a long-standing user put into such a role must enrol now
        assert_eq!(
            requirement(&input, CREATED + 365 * DAY),
            Requirement::MustEnrol
        );
    }

    #[test]
    fn row4_the_support_account_always_needs_a_factor() {
        let support = MfaInput {
            kind: UserKind::Support,
            ..local()
        };
        assert_eq!(
            requirement(&support, CREATED + HOUR),
            grace(CREATED + 72 * HOUR)
        );
        assert_eq!(
            requirement(&support, CREATED + 72 * HOUR),
            Requirement::MustEnrol
        );
        let with_date = MfaInput {
            enforcement_date_ms: Some(CREATED + 30 * DAY),
            ..support
        };
        assert_eq!(
            requirement(&with_date, CREATED + 4 * DAY),
            Requirement::MustEnrol
        );
    }

    #[test]
    fn row5_enforcement_date_gives_the_later_of_date_and_own_grace() {
        // created long before the date: until the date
        let early = MfaInput {
            enforcement_date_ms: Some(CREATED + 30 * DAY),
            ..local()
        };
        assert_eq!(
            requirement(&early, CREATED + 29 * DAY),
            grace(CREATED + 30 * DAY)
        );
        assert_eq!(
            requirement(&early, CREATED + 30 * DAY),
            Requirement::MustEnrol
        );
        // created after the date: own grace period from creation
        let late = MfaInput {
            enforcement_date_ms: Some(CREATED - 30 * DAY),
            ..local()
        };
        assert_eq!(
            requirement(&late, CREATED + HOUR),
            grace(CREATED + 72 * HOUR)
        );
        assert_eq!(
            requirement(&late, CREATED + 72 * HOUR),
            Requirement::MustEnrol
        );
        // created just before the date: the grace period outlasts it
        let close = MfaInput {
            enforcement_date_ms: Some(CREATED + HOUR),
            ..local()
        };
        assert_eq!(
            requirement(&close, CREATED + 2 * HOUR),
            grace(CREATED + 72 * HOUR)
        );
    }

    #[test]
    fn row6_nothing_configured_is_optional() {
        assert_eq!(
            requirement(&local(), CREATED + 365 * DAY),
            Requirement::Optional
        );
        assert!(!Requirement::Optional.must_enrol());
    }

    #[test]
    fn a_shortened_grace_period_applies_at_once() {
        let input = MfaInput {
            role_requires_2fa: true,
            grace_ms: 30 * DAY,
            ..local()
        };
        let now = CREATED + 10 * DAY;
        assert_eq!(requirement(&input, now), grace(CREATED + 30 * DAY));
        let shortened = MfaInput {
            grace_ms: DEFAULT_GRACE_MS,
            ..input
        };
        assert_eq!(requirement(&shortened, now), Requirement::MustEnrol);
        assert!(requirement(&shortened, now).must_enrol());
    }

    #[test]
    fn zero_grace_means_the_next_sign_in() {
        let input = MfaInput {
            role_requires_2fa: true,
            grace_ms: 0,
            ..local()
        };
        assert_eq!(requirement(&input, CREATED), Requirement::MustEnrol);
    }

    #[test]
    fn grace_is_clamped_and_validated() {
        let huge = MfaInput {
            role_requires_2fa: true,
            grace_ms: i64::MAX,
            ..local()
        };
        assert_eq!(deadline_ms(&huge), Some(CREATED + MAX_GRACE_MS));
        let negative = MfaInput {
            role_requires_2fa: true,
            grace_ms: -DAY,
            ..local()
        };
        assert_eq!(deadline_ms(&negative), Some(CREATED));
        assert_eq!(validate_grace_ms(0), Ok(0));
        assert_eq!(validate_grace_ms(MAX_GRACE_MS), Ok(MAX_GRACE_MS));
        assert_eq!(
            validate_grace_ms(MAX_GRACE_MS + 1),
            Err(GraceError::OutOfRange)
        );
        assert_eq!(validate_grace_ms(-1), Err(GraceError::OutOfRange));
        let extreme = MfaInput {
            role_requires_2fa: true,
            created_on_ms: i64::MAX,
            ..local()
        };
        assert_eq!(deadline_ms(&extreme), Some(i64::MAX));
        assert_eq!(requirement(&extreme, i64::MAX), Requirement::MustEnrol);
    }
}
