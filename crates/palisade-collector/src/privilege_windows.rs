//! Windows: whether the collector's process holds administrative power (mandate §3).
//!
//! [`token_facts`] (Windows only) reads the process token: the account (`TokenUser`,
//! looked up to `DOMAIN\name`, and its SID string), whether the token is elevated
//! (`TokenElevation`) and its elevation type (`TokenElevationType`: a UAC split token is
//! `limited` or `full`), and whether BUILTIN\Administrators is present **and enabled** in it
//! (`CheckTokenMembership` with `CreateWellKnownSid(WinBuiltinAdministratorsSid)`: a
//! deny-only group of a UAC-filtered token does not count). [`assess`] turns those facts
//! into the same [`Assessment`] as the Linux side (it feeds `isAdminAccount`, `elevated` and
//! `nonCompliance` of the report, and [`crate::privilege::may_run`]); [`report`] builds the
//! free-form `privilege` object of the protocol for Windows, with the Linux keys where they
//! mean the same thing (`user`, `elevated`, `nonCompliance`, `allowRoot`).
//!
//! The Win32 calls live in the `palisade-wintoken` crate (the workspace forbids unsafe
//! code). The pure part here is compiled and tested on every platform in test builds;
//! [`token_facts`] only on Windows, and it has not been compiled for a Windows target: see
//! `docs/collector.md`.

use serde::Serialize;

use crate::privilege::Assessment;

/// LocalSystem (`NT AUTHORITY\SYSTEM`): holds every privilege, administrative by definition.
pub const LOCAL_SYSTEM_SID: &str = "S-1-5-18";

/// `TOKEN_ELEVATION_TYPE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ElevationType {
    /// Not read.
    #[default]
    Unknown,
    /// No linked token: UAC off, a service, or a standard user.
    Default,
    /// The elevated half of a UAC split token.
    Full,
    /// The filtered half of a UAC split token (an administrator not elevated).
    Limited,
}

impl ElevationType {
    /// From the `TOKEN_ELEVATION_TYPE` value (1, 2, 3).
    pub fn from_raw(v: i32) -> ElevationType {
        match v {
            1 => ElevationType::Default,
            2 => ElevationType::Full,
            3 => ElevationType::Limited,
            _ => ElevationType::Unknown,
        }
    }
}

/// What the process token says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// `DOMAIN\name` of the token's user (the SID string when it has no name).
    pub user: String,
    /// The user's SID (`S-1-5-…`).
    pub sid: String,
    /// `TokenIsElevated`.
    pub elevated: bool,
    /// `TokenElevationType`.
    pub elevation_type: ElevationType,
    /// BUILTIN\Administrators present and enabled in the token.
    pub administrators_member: bool,
}

/// The Windows `privilege` object of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsPrivilege {
    /// `DOMAIN\name`.
    pub user: String,
    /// The user's SID.
    pub sid: String,
    /// `TokenIsElevated`.
    pub token_elevated: bool,
    /// `default`, `full`, `limited` (`unknown` if unreadable).
    pub elevation_type: ElevationType,
    /// BUILTIN\Administrators present and enabled in the token.
    pub administrators_member: bool,
    /// Same as `isAdminAccount`.
    pub elevated: bool,
    /// Why the process counts as administrative (empty when compliant).
    pub non_compliance: Vec<String>,
    /// Whether `--allow-root` (on Windows: run as an administrator anyway) was given.
    pub allow_root: bool,
}

/// Judges a token. Anything that could not be read was filled in as administrative by
/// [`token_facts`], so an unreadable token is never taken for a safe one.
pub fn assess(f: &TokenFacts) -> Assessment {
    let mut reasons = Vec::new();
    if f.sid == LOCAL_SYSTEM_SID {
        reasons.push("it runs as LocalSystem (S-1-5-18)".to_string());
    }
    if f.elevated {
        reasons.push("its token is elevated".to_string());
    }
    if f.administrators_member {
        reasons.push("its token holds BUILTIN\\Administrators (enabled)".to_string());
    }
    if f.elevation_type == ElevationType::Limited {
        // Not administrative as it runs, but the account is an administrator: the mandate
        // asks for a non-admin account, not a filtered one.
        reasons.push("the account is an administrator (UAC-filtered token)".to_string());
    }
    Assessment {
        is_admin: !reasons.is_empty(),
        reasons,
    }
}

/// The assessment and the `privilege` object for the report (`isAdminAccount` is
/// `assessment.is_admin`).
pub fn report(f: &TokenFacts, allow_root: bool) -> (Assessment, WindowsPrivilege) {
    let a = assess(f);
    let p = WindowsPrivilege {
        user: f.user.clone(),
        sid: f.sid.clone(),
        token_elevated: f.elevated,
        elevation_type: f.elevation_type,
        administrators_member: f.administrators_member,
        elevated: a.is_admin,
        non_compliance: a.reasons.clone(),
        allow_root,
    };
    (a, p)
}

/// Reads the current process's token. What cannot be read counts as administrative
/// (`elevated` and `administrators_member` true): never mistake what is unseen for safety.
#[cfg(windows)]
pub fn token_facts() -> TokenFacts {
    let mut f = TokenFacts {
        elevated: true,
        administrators_member: true,
        ..TokenFacts::default()
    };
    let token = match palisade_wintoken::CurrentToken::open() {
        Ok(t) => t,
        Err(_) => return f,
    };
    if let Ok(e) = token.elevated() {
        f.elevated = e;
    }
    if let Ok(t) = token.elevation_type() {
        f.elevation_type = ElevationType::from_raw(t);
    }
    if let Ok(m) = palisade_wintoken::administrators_member() {
        f.administrators_member = m;
    }
    if let Ok((user, sid)) = token.user() {
        f.user = user;
        f.sid = sid;
    }
    f
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn service_account() -> TokenFacts {
        TokenFacts {
            user: "NT SERVICE\\palisade-collector".into(),
            sid: "S-1-5-80-1-2-3-4-5".into(),
            elevated: false,
            elevation_type: ElevationType::Default,
            administrators_member: false,
        }
    }

    #[test]
    fn non_admin_service_account_is_compliant() {
        let (a, p) = report(&service_account(), false);
        assert!(!a.is_admin, "{a:?}");
        assert!(crate::privilege::may_run(&a, false).is_ok());
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["elevated"], false);
        assert_eq!(v["elevationType"], "default");
        assert_eq!(v["administratorsMember"], false);
        assert_eq!(v["user"], "NT SERVICE\\palisade-collector");
        assert!(v["nonCompliance"].as_array().unwrap().is_empty());
    }

    #[test]
    fn each_admin_signal_counts() {
        let mut f = service_account();
        f.elevated = true;
        f.elevation_type = ElevationType::Full;
        assert!(assess(&f).is_admin);
        let mut f = service_account();
        f.administrators_member = true;
        let a = assess(&f);
        assert!(a.is_admin && a.reasons[0].contains("Administrators"));
        let mut f = service_account();
        f.sid = LOCAL_SYSTEM_SID.into();
        assert!(assess(&f).reasons[0].contains("LocalSystem"));
        let mut f = service_account();
        f.elevation_type = ElevationType::Limited;
        assert!(assess(&f).is_admin);
        assert!(crate::privilege::may_run(&assess(&f), false).is_err());
        assert!(crate::privilege::may_run(&assess(&f), true).is_ok());
    }

    #[test]
    fn unreadable_token_is_administrative() {
        // What token_facts returns when nothing can be read.
        let f = TokenFacts {
            elevated: true,
            administrators_member: true,
            ..TokenFacts::default()
        };
        assert!(assess(&f).is_admin);
        assert_eq!(ElevationType::from_raw(7), ElevationType::Unknown);
        assert_eq!(ElevationType::from_raw(3), ElevationType::Limited);
    }
}
