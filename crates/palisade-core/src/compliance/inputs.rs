//! The facts the rules read (plain data the portal gathers), and the small judgements on
//! them shared with the portal (is a collector report out of line, is a set of privileges
//! administrator-equivalent, is an exception in force).

use crate::mfa::MfaInput;
use crate::privilege::{covers, Privilege};
use serde_json::Value;

use super::ALLOWED_CAPABILITY;

/// The facts the evaluation needs. Times are epoch milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `sso.restrict`.
    pub sso_restrict: bool,
    /// `sso.break_glass` usernames.
    pub break_glass: Vec<String>,
    /// Every user.
    pub users: Vec<UserFacts>,
    /// Every role.
    pub roles: Vec<RoleFacts>,
    /// The privileges of the built-in `administrator` role.
    pub administrator_privileges: Vec<Privilege>,
    /// Every API token.
    pub tokens: Vec<TokenFacts>,
    /// Every collector.
    pub collectors: Vec<CollectorFacts>,
    /// Script datasources (others are out of scope).
    pub modules: Vec<ModuleFacts>,
}

/// One user.
#[derive(Debug, Clone)]
pub struct UserFacts {
    /// Id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// Status is active.
    pub active: bool,
    /// The support account's access window is open.
    pub support_window_open: bool,
    /// Role ids held.
    pub role_ids: Vec<i64>,
    /// The two-factor facts, as the sign-in gate computes them (kind, factor, creation,
    /// enforcement date, grace, role requirement, deadline override).
    pub mfa: MfaInput,
}

/// One role.
#[derive(Debug, Clone, Default)]
pub struct RoleFacts {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The built-in `administrator` role.
    pub is_administrator: bool,
    /// Its privileges.
    pub privileges: Vec<Privilege>,
}

/// One API token (never its secret).
#[derive(Debug, Clone, Default)]
pub struct TokenFacts {
    /// Id.
    pub id: i64,
    /// Owner's user id.
    pub owner_id: i64,
    /// `LMv1` or `Bearer`.
    pub kind: String,
    /// Public access id.
    pub access_id: String,
    /// Enabled (status 2).
    pub enabled: bool,
    /// Created.
    pub created_on_ms: i64,
    /// Last used.
    pub last_used_on_ms: Option<i64>,
    /// Expiry.
    pub expires_on_ms: Option<i64>,
}

/// A recorded compliance exception.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFacts {
    /// Why.
    pub justification: String,
    /// Until when; `None`: no end.
    pub expires_on_ms: Option<i64>,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_on_ms: i64,
}

/// One collector and its latest privilege report.
#[derive(Debug, Clone, Default)]
pub struct CollectorFacts {
    /// Id.
    pub id: i64,
    /// Description, else host name.
    pub name: String,
    /// Whether it has reported at all (registered).
    pub reported: bool,
    /// Reported platform (`Linux`, `Windows`).
    pub platform: String,
    /// Reported `isAdminAccount`.
    pub is_admin_account: bool,
    /// From the privilege report.
    pub privilege: PrivilegeFacts,
    /// Time of the latest report.
    pub reported_on_ms: Option<i64>,
    /// First report of the current non-compliant spell.
    pub noncompliant_since_ms: Option<i64>,
    /// A recorded exception (Windows administrator accounts only).
    pub exception: Option<ExceptionFacts>,
}

/// What the evaluation reads from a collector's free-form privilege report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrivilegeFacts {
    /// Effective user name.
    pub user: Option<String>,
    /// Effective uid.
    pub uid: Option<i64>,
    /// Effective capabilities (lower case).
    pub capabilities: Vec<String>,
}

impl PrivilegeFacts {
    /// Reads the report: `user`, `uid`, and `capabilities` either as a list or as
    /// `{"effective": [...], ...}` (the Linux collector's shape).
    pub fn from_report(privilege: &Value) -> PrivilegeFacts {
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let capabilities = match privilege.get("capabilities") {
            Some(v @ Value::Array(_)) => names(v),
            Some(Value::Object(o)) => o.get("effective").map(names).unwrap_or_default(),
            _ => Vec::new(),
        };
        PrivilegeFacts {
            user: privilege
                .get("user")
                .and_then(Value::as_str)
                .map(str::to_string),
            uid: privilege.get("uid").and_then(Value::as_i64),
            capabilities,
        }
    }

    /// The effective capabilities beyond `cap_net_raw`.
    pub fn extra_capabilities(&self) -> Vec<String> {
        self.capabilities
            .iter()
            .filter(|c| !c.eq_ignore_ascii_case(ALLOWED_CAPABILITY))
            .cloned()
            .collect()
    }
}

/// One script datasource.
#[derive(Debug, Clone, Default)]
pub struct ModuleFacts {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The script's source uploaded with the module, if any.
    pub source: Option<String>,
    /// Last change of the definition.
    pub updated_on_ms: i64,
}

/// Which platform a collector reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux (mandate 2).
    Linux,
    /// Windows (mandate 3).
    Windows,
    /// Anything else, or nothing yet.
    Other,
}

impl Platform {
    /// From the reported platform string.
    pub fn of(platform: &str) -> Platform {
        let p = platform.trim().to_ascii_lowercase();
        if p.starts_with("linux") {
            Platform::Linux
        } else if p.starts_with("windows") {
            Platform::Windows
        } else {
            Platform::Other
        }
    }
}

/// Whether a collector report is out of line: on Linux uid 0, an administrative account or
/// a capability beyond `cap_net_raw`; on Windows an administrator account. The portal keeps
/// the time of the first such report (`since` of the finding).
pub fn collector_noncompliant(platform: &str, is_admin_account: bool, privilege: &Value) -> bool {
    match Platform::of(platform) {
        Platform::Linux => {
            let p = PrivilegeFacts::from_report(privilege);
            is_admin_account || p.uid == Some(0) || !p.extra_capabilities().is_empty()
        }
        Platform::Windows => is_admin_account,
        Platform::Other => is_admin_account,
    }
}

/// Whether a set of privileges holds every privilege of the administrator role (directly or
/// through `*` object ids). An empty administrator set matches nothing.
pub fn administrator_equivalent(privileges: &[Privilege], administrator: &[Privilege]) -> bool {
    !administrator.is_empty() && administrator.iter().all(|p| covers(privileges, p))
}

/// Whether an exception is in force at `now_ms`.
pub fn exception_valid(e: &ExceptionFacts, now_ms: i64) -> bool {
    e.expires_on_ms.is_none_or(|t| t > now_ms)
}
