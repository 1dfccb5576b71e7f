//! The compliance center: per mandate, who or what is out of line, since when, and the one
//! action that fixes it.
//!
//! [`evaluate`] is a pure function of [`Inputs`] (plain facts the portal gathers from its
//! store) and `now_ms`. It returns a [`Report`]: the [`Finding`]s, the objects that are
//! excepted (a recorded, justified exception) or exempt (out of the mandate's scope), and per
//! [`Section`] a score, `compliant / total` as a percentage (100 when nothing is in scope).
//!
//! | Section | Mandate | In scope | Rules (severity) |
//! |---|---|---|---|
//! | `two-factor` | 1 | active local users; the support account while its window is open | [`Rule::MfaBreakGlass`] (critical), [`Rule::MfaDeadlinePassed`] (high), [`Rule::MfaInGrace`] (medium), [`Rule::MfaNotEnforced`] (low) |
//! | `linux-collectors` | 2 | registered Linux collectors | [`Rule::CollectorRoot`] (high), [`Rule::CollectorCapabilities`] (high) |
//! | `windows-collectors` | 3 | registered Windows collectors | [`Rule::CollectorWindowsAdmin`] (medium; a valid exception excepts it) |
//! | `api-tokens` | 4 | enabled, unexpired API tokens | [`Rule::TokenSupportOwner`], [`Rule::TokenAdministratorOwner`] (critical), [`Rule::TokenAdministratorEquivalent`] (high), [`Rule::TokenUnused`] (medium), [`Rule::TokenNoExpiry`] (low) |
//! | `custom-modules` | 2 | script datasources | [`Rule::ModuleNeedsElevation`] (high), [`Rule::ModuleUnreviewed`] (medium) |
//!
//! An object in scope is compliant when no rule finds anything about it; an excepted object
//! counts as compliant. A user has at most one two-factor finding (the first that applies, in
//! the order of the table); a token may have several (each with its own fix).
//!
//! Times in the report are epoch **seconds**, like the rest of the API.
//!
//! ```
//! use palisade_core::compliance::{evaluate, Inputs, Section};
//! let report = evaluate(&Inputs::default(), 0);
//! assert!(report.findings.is_empty());
//! assert!(report.sections.iter().all(|s| s.score == 100.0));
//! assert_eq!(report.sections[0].id, Section::TwoFactor);
//! ```

mod evaluate;
mod export;
mod fixes;
mod inputs;

pub use evaluate::{date_text, days_left, evaluate};
pub use export::{csv_cell, to_csv, to_text};
pub use inputs::{
    administrator_equivalent, collector_noncompliant, exception_valid, CollectorFacts,
    ExceptionFacts, Inputs, ModuleFacts, Platform, PrivilegeFacts, RoleFacts, TokenFacts,
    UserFacts,
};

use crate::privilege::Privilege;
use serde::Serialize;
use serde_json::Value;

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A token unused for longer than this is a finding: 90 days.
pub const TOKEN_UNUSED_MS: i64 = 90 * DAY_MS;
/// The expiry the fix of a token without one proposes: 90 days from now.
pub const PROPOSED_EXPIRY_MS: i64 = 90 * DAY_MS;
/// The one capability a Linux collector may hold.
pub const ALLOWED_CAPABILITY: &str = "cap_net_raw";

/// A part of the report, with its own score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Section {
    /// Mandate 1: a second factor for every local user.
    TwoFactor,
    /// Mandate 2: Linux collectors without root.
    LinuxCollectors,
    /// Mandate 3: Windows collectors without Administrator.
    WindowsCollectors,
    /// Mandate 4: no token with support or administrator power.
    ApiTokens,
    /// Mandate 2: custom module scripts reviewed, none needing root or Administrator.
    CustomModules,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 5] = [
        Section::TwoFactor,
        Section::LinuxCollectors,
        Section::WindowsCollectors,
        Section::ApiTokens,
        Section::CustomModules,
    ];

    /// The id used in JSON, CSV and history.
    pub fn id(self) -> &'static str {
        match self {
            Section::TwoFactor => "two-factor",
            Section::LinuxCollectors => "linux-collectors",
            Section::WindowsCollectors => "windows-collectors",
            Section::ApiTokens => "api-tokens",
            Section::CustomModules => "custom-modules",
        }
    }

    /// The mandate (1 to 4) of `security-mandates.md` the section belongs to.
    pub fn mandate(self) -> u8 {
        match self {
            Section::TwoFactor => 1,
            Section::LinuxCollectors | Section::CustomModules => 2,
            Section::WindowsCollectors => 3,
            Section::ApiTokens => 4,
        }
    }

    /// A title for people.
    pub fn title(self) -> &'static str {
        match self {
            Section::TwoFactor => "Two-factor authentication for local users",
            Section::LinuxCollectors => "Linux collectors without root",
            Section::WindowsCollectors => "Windows collectors without Administrator",
            Section::ApiTokens => "API tokens without support or administrator power",
            Section::CustomModules => "Custom module scripts without root or Administrator",
        }
    }
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hygiene.
    Low,
    /// Out of line, not yet dangerous.
    Medium,
    /// Out of line.
    High,
    /// Power the mandate forbids.
    Critical,
}

impl Severity {
    /// The name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// A user.
    User,
    /// A collector.
    Collector,
    /// An API token.
    Token,
    /// A datasource (custom module).
    Datasource,
}

impl ObjectKind {
    /// The name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::User => "user",
            ObjectKind::Collector => "collector",
            ObjectKind::Token => "token",
            ObjectKind::Datasource => "datasource",
        }
    }

    /// The web UI's path segment: `/ui/<segment>/<id>`.
    pub fn ui_segment(self) -> &'static str {
        match self {
            ObjectKind::User => "users",
            ObjectKind::Collector => "collectors",
            ObjectKind::Token => "tokens",
            ObjectKind::Datasource => "datasources",
        }
    }
}

/// The object a finding names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its id.
    pub id: i64,
    /// Its name (user name, collector description or host, token access id, datasource name).
    pub name: String,
}

/// The rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Rule {
    /// A break-glass account (`sso.break_glass`) without a confirmed second factor.
    #[serde(rename = "mfa.break-glass-without-factor")]
    MfaBreakGlass,
    /// A local user without a factor whose deadline has passed (confined to enrolment).
    #[serde(rename = "mfa.deadline-passed")]
    MfaDeadlinePassed,
    /// A local user without a factor, within their grace period.
    #[serde(rename = "mfa.in-grace")]
    MfaInGrace,
    /// A local user without a factor while no deadline applies (no enforcement date).
    #[serde(rename = "mfa.not-enforced")]
    MfaNotEnforced,
    /// A Linux collector running as root (uid 0, or an administrative account).
    #[serde(rename = "collector.root")]
    CollectorRoot,
    /// A Linux collector holding effective capabilities beyond `cap_net_raw`.
    #[serde(rename = "collector.capabilities")]
    CollectorCapabilities,
    /// A Windows collector on an administrator account, without a valid exception.
    #[serde(rename = "collector.windows-admin")]
    CollectorWindowsAdmin,
    /// A token of the built-in support account.
    #[serde(rename = "token.support-owner")]
    TokenSupportOwner,
    /// A token of a holder of the built-in `administrator` role.
    #[serde(rename = "token.administrator-owner")]
    TokenAdministratorOwner,
    /// A token whose owner's custom roles grant everything `administrator` grants.
    #[serde(rename = "token.administrator-equivalent-role")]
    TokenAdministratorEquivalent,
    /// A token not used for more than 90 days (or never used, created more than 90 days ago).
    #[serde(rename = "token.unused")]
    TokenUnused,
    /// A token without an expiry.
    #[serde(rename = "token.no-expiry")]
    TokenNoExpiry,
    /// A script datasource whose reviewed source needs root or Administrator.
    #[serde(rename = "module.needs-elevation")]
    ModuleNeedsElevation,
    /// A script datasource without source: its script was never reviewed by the portal.
    #[serde(rename = "module.unreviewed")]
    ModuleUnreviewed,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 14] = [
        Rule::MfaBreakGlass,
        Rule::MfaDeadlinePassed,
        Rule::MfaInGrace,
        Rule::MfaNotEnforced,
        Rule::CollectorRoot,
        Rule::CollectorCapabilities,
        Rule::CollectorWindowsAdmin,
        Rule::TokenSupportOwner,
        Rule::TokenAdministratorOwner,
        Rule::TokenAdministratorEquivalent,
        Rule::TokenUnused,
        Rule::TokenNoExpiry,
        Rule::ModuleNeedsElevation,
        Rule::ModuleUnreviewed,
    ];

    /// The rule's id (as in JSON and CSV).
    pub fn id(self) -> &'static str {
        match self {
            Rule::MfaBreakGlass => "mfa.break-glass-without-factor",
            Rule::MfaDeadlinePassed => "mfa.deadline-passed",
            Rule::MfaInGrace => "mfa.in-grace",
            Rule::MfaNotEnforced => "mfa.not-enforced",
            Rule::CollectorRoot => "collector.root",
            Rule::CollectorCapabilities => "collector.capabilities",
            Rule::CollectorWindowsAdmin => "collector.windows-admin",
            Rule::TokenSupportOwner => "token.support-owner",
            Rule::TokenAdministratorOwner => "token.administrator-owner",
            Rule::TokenAdministratorEquivalent => "token.administrator-equivalent-role",
            Rule::TokenUnused => "token.unused",
            Rule::TokenNoExpiry => "token.no-expiry",
            Rule::ModuleNeedsElevation => "module.needs-elevation",
            Rule::ModuleUnreviewed => "module.unreviewed",
        }
    }

    /// The section the rule belongs to.
    pub fn section(self) -> Section {
        match self {
            Rule::MfaBreakGlass
            | Rule::MfaDeadlinePassed
            | Rule::MfaInGrace
            | Rule::MfaNotEnforced => Section::TwoFactor,
            Rule::CollectorRoot | Rule::CollectorCapabilities => Section::LinuxCollectors,
            Rule::CollectorWindowsAdmin => Section::WindowsCollectors,
            Rule::TokenSupportOwner
            | Rule::TokenAdministratorOwner
            | Rule::TokenAdministratorEquivalent
            | Rule::TokenUnused
            | Rule::TokenNoExpiry => Section::ApiTokens,
            Rule::ModuleNeedsElevation | Rule::ModuleUnreviewed => Section::CustomModules,
        }
    }

    /// The rule's severity.
    pub fn severity(self) -> Severity {
        match self {
            Rule::MfaBreakGlass | Rule::TokenSupportOwner | Rule::TokenAdministratorOwner => {
                Severity::Critical
            }
            Rule::MfaDeadlinePassed
            | Rule::CollectorRoot
            | Rule::CollectorCapabilities
            | Rule::TokenAdministratorEquivalent
            | Rule::ModuleNeedsElevation => Severity::High,
            Rule::MfaInGrace
            | Rule::CollectorWindowsAdmin
            | Rule::TokenUnused
            | Rule::ModuleUnreviewed => Severity::Medium,
            Rule::MfaNotEnforced | Rule::TokenNoExpiry => Severity::Low,
        }
    }
}

/// An API call that carries out a fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiCall {
    /// HTTP method.
    pub method: &'static str,
    /// The path on the portal (`/santaba/rest/...` or `/api/...`).
    pub path: String,
    /// The JSON body, when the call takes one that can be given in full.
    pub body: Option<Value>,
    /// What else to know (who calls it, what the body holds when it cannot be given).
    pub note: Option<String>,
}

/// The one action that fixes a finding, in three forms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// What to do, in words.
    pub action: String,
    /// Where in the web UI: `/ui/<kind>/<id>`.
    pub link: String,
    /// The API call, where the portal's API carries the fix out.
    pub api: Option<ApiCall>,
    /// The command, where one carries the fix out (`palisade ...` on the portal host,
    /// `palisade-collector ...` on the collector host).
    pub cli: Option<String>,
}

/// Something out of line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// A stable id: `<rule>/<kind>/<object id>`.
    pub id: String,
    /// The section.
    pub section: Section,
    /// The mandate.
    pub mandate: u8,
    /// The rule.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// What it is about.
    pub object: ObjectRef,
    /// Since when (epoch seconds): the deadline that passed, the creation or last use, the
    /// first non-compliant report, the last change of the module.
    pub since: i64,
    /// Two-factor findings: whole days until the deadline (0 once it has passed).
    pub days_left: Option<i64>,
    /// What exactly is wrong.
    pub detail: String,
    /// How to fix it.
    pub fix: Fix,
}

/// A recorded exception, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionView {
    /// Why.
    pub justification: String,
    /// Until when (epoch seconds); `None`: no end.
    pub expires_on: Option<i64>,
    /// Who recorded it.
    pub created_by: String,
    /// When (epoch seconds).
    pub created_on: i64,
}

/// An object that a rule would flag, excepted by a recorded exception (counts as compliant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Excepted {
    /// The section.
    pub section: Section,
    /// The rule the exception covers.
    pub rule: Rule,
    /// The object.
    pub object: ObjectRef,
    /// What the rule would report.
    pub detail: String,
    /// The exception: who, when, why, until.
    pub exception: ExceptionView,
}

/// An object out of a mandate's scope (not counted), with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exempt {
    /// The section.
    pub section: Section,
    /// The object.
    pub object: ObjectRef,
    /// Why it is out of scope.
    pub reason: String,
}

/// A score: compliant objects over objects in scope.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// Compliant (or excepted) objects.
    pub compliant: u64,
    /// Objects in scope.
    pub total: u64,
    /// `compliant / total` in percent, one decimal; 100 when `total` is 0.
    pub score: f64,
}

impl Score {
    /// A score from its counts.
    pub fn of(compliant: u64, total: u64) -> Score {
        let score = if total == 0 {
            100.0
        } else {
            let tenths = (compliant.min(total) as f64) * 1000.0 / (total as f64);
            tenths.round() / 10.0
        };
        Score {
            compliant,
            total,
            score,
        }
    }
}

/// One section's score and counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionScore {
    /// The section.
    pub id: Section,
    /// Its mandate.
    pub mandate: u8,
    /// Its title.
    pub title: &'static str,
    /// Compliant (or excepted) objects.
    pub compliant: u64,
    /// Objects in scope.
    pub total: u64,
    /// Percent, one decimal.
    pub score: f64,
    /// Findings (a token may have several).
    pub findings: u64,
    /// Excepted objects.
    pub excepted: u64,
    /// Exempt objects.
    pub exempt: u64,
}

/// The single sign-on settings, as the two-factor section shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SsoView {
    /// `sso.restrict`: password sign-in only for break-glass accounts.
    pub restrict: bool,
    /// `sso.break_glass`.
    pub break_glass: Vec<String>,
    /// Break-glass names that match no user.
    pub unknown_break_glass: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// When it was computed (epoch seconds).
    pub generated_on: i64,
    /// Every section together.
    pub overall: Score,
    /// Per section, in [`Section::ALL`] order.
    pub sections: Vec<SectionScore>,
    /// Findings: by section, then severity (highest first), then since (oldest first).
    pub findings: Vec<Finding>,
    /// Excepted objects.
    pub excepted: Vec<Excepted>,
    /// Exempt objects.
    pub exempt: Vec<Exempt>,
    /// The single sign-on settings.
    pub sso: SsoView,
}

#[cfg(test)]
mod tests;
