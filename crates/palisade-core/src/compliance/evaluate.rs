//! The evaluation: every rule over the facts, the tallies and the report.

use super::{administrator_equivalent, exception_valid, Fix};
use super::{
    fixes, Excepted, ExceptionView, Exempt, Finding, Inputs, ObjectKind, ObjectRef, Platform,
    Privilege, Report, RoleFacts, Rule, Score, Section, SectionScore, SsoView, DAY_MS,
    TOKEN_UNUSED_MS,
};
use crate::mfa::{self, Requirement, UserKind};
use crate::module_lint;

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// Whole days from `now_ms` until `deadline_ms`, rounded up; 0 once it has passed.
pub fn days_left(deadline_ms: i64, now_ms: i64) -> i64 {
    let left = deadline_ms.saturating_sub(now_ms);
    if left <= 0 {
        0
    } else {
        left.saturating_add(DAY_MS - 1) / DAY_MS
    }
}

/// A date for texts: `YYYY-MM-DD` (UTC).
pub fn date_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp(secs(ms), 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[derive(Default)]
struct Tally {
    compliant: u64,
    total: u64,
}

struct Builder<'a> {
    inputs: &'a Inputs,
    now_ms: i64,
    tally: [Tally; 5],
    findings: Vec<Finding>,
    excepted: Vec<Excepted>,
    exempt: Vec<Exempt>,
}

pub(super) fn index(section: Section) -> usize {
    match section {
        Section::TwoFactor => 0,
        Section::LinuxCollectors => 1,
        Section::WindowsCollectors => 2,
        Section::ApiTokens => 3,
        Section::CustomModules => 4,
    }
}

impl Builder<'_> {
    fn count(&mut self, section: Section, compliant: bool) {
        if let Some(t) = self.tally.get_mut(index(section)) {
            t.total += 1;
            if compliant {
                t.compliant += 1;
            }
        }
    }

    fn finding(
        &mut self,
        rule: Rule,
        object: ObjectRef,
        since_ms: i64,
        days_left: Option<i64>,
        detail: String,
        fix: Fix,
    ) {
        self.findings.push(Finding {
            id: format!("{}/{}/{}", rule.id(), object.kind.as_str(), object.id),
            section: rule.section(),
            mandate: rule.section().mandate(),
            rule,
            severity: rule.severity(),
            object,
            since: secs(since_ms),
            days_left,
            detail,
            fix,
        });
    }

    fn exempt(&mut self, section: Section, object: ObjectRef, reason: &str) {
        self.exempt.push(Exempt {
            section,
            object,
            reason: reason.to_string(),
        });
    }

    fn users(&mut self) {
        let inputs = self.inputs;
        for u in &inputs.users {
            let object = ObjectRef {
                kind: ObjectKind::User,
                id: u.id,
                name: u.username.clone(),
            };
            let section = Section::TwoFactor;
            match u.mfa.kind {
                UserKind::Sso => {
                    self.exempt(section, object, "signs in through single sign-on: the identity provider is responsible for the second factor");
                    continue;
                }
                UserKind::ApiOnly => {
                    self.exempt(
                        section,
                        object,
                        "API-only: holds tokens, never signs in interactively",
                    );
                    continue;
                }
                UserKind::Support if !u.support_window_open => {
                    self.exempt(section, object, "the support account is closed (no password); whoever uses a support window enrols its own second factor");
                    continue;
                }
                UserKind::Local if !u.active => {
                    self.exempt(section, object, "suspended: cannot sign in");
                    continue;
                }
                UserKind::Local | UserKind::Support => {}
            }
            let requirement = mfa::requirement(&u.mfa, self.now_ms);
            if matches!(
                requirement,
                Requirement::Satisfied | Requirement::NotApplicable
            ) {
                self.count(section, true);
                continue;
            }
            self.count(section, false);
            let deadline = mfa::deadline_ms(&u.mfa);
            let break_glass = inputs
                .break_glass
                .iter()
                .any(|b| b.eq_ignore_ascii_case(&u.username));
            let fix = fixes::enrol(u.id, &u.username);
            let created = u.mfa.created_on_ms;
            if break_glass {
                let detail = format!(
                    "break-glass account (sso.break_glass{}) without a confirmed second factor: the one account meant to work when SSO fails can be taken over with its password alone",
                    if inputs.sso_restrict {
                        ", sso.restrict on"
                    } else {
                        ""
                    }
                );
                let left = deadline.map(|d| days_left(d, self.now_ms));
                self.finding(Rule::MfaBreakGlass, object, created, left, detail, fix);
                continue;
            }
            match requirement {
                Requirement::MustEnrol => {
                    let at = deadline.unwrap_or(created);
                    let detail = format!(
                        "no confirmed second factor; the deadline passed on {}: confined to enrolment until they enrol",
                        date_text(at)
                    );
                    self.finding(Rule::MfaDeadlinePassed, object, at, Some(0), detail, fix);
                }
                Requirement::Grace { deadline_ms } => {
                    let left = days_left(deadline_ms, self.now_ms);
                    let detail = format!(
                        "no confirmed second factor; must enrol by {} ({left} day(s) left)",
                        date_text(deadline_ms)
                    );
                    self.finding(Rule::MfaInGrace, object, created, Some(left), detail, fix);
                }
                _ => {
                    let detail = "no confirmed second factor, and no deadline applies (mfa.enforcement_date is not set)".to_string();
                    self.finding(Rule::MfaNotEnforced, object, created, None, detail, fix);
                }
            }
        }
    }

    fn collectors(&mut self) {
        let inputs = self.inputs;
        for c in &inputs.collectors {
            let object = ObjectRef {
                kind: ObjectKind::Collector,
                id: c.id,
                name: c.name.clone(),
            };
            if !c.reported {
                continue;
            }
            let since = c
                .noncompliant_since_ms
                .or(c.reported_on_ms)
                .unwrap_or_default();
            match Platform::of(&c.platform) {
                Platform::Linux => {
                    let extra = c.privilege.extra_capabilities();
                    let root =
                        c.privilege.uid == Some(0) || (c.is_admin_account && extra.is_empty());
                    if root {
                        self.count(Section::LinuxCollectors, false);
                        let who = c.privilege.user.clone().unwrap_or_else(|| "root".into());
                        let detail = format!(
                            "runs as {who} (uid {}){}",
                            c.privilege
                                .uid
                                .map_or_else(|| "unknown".to_string(), |u| u.to_string()),
                            if c.is_admin_account {
                                ", reported as an administrative account"
                            } else {
                                ""
                            }
                        );
                        self.finding(
                            Rule::CollectorRoot,
                            object,
                            since,
                            None,
                            detail,
                            fixes::collector_migrate(c.id),
                        );
                    } else if !extra.is_empty() {
                        self.count(Section::LinuxCollectors, false);
                        let user = c
                            .privilege
                            .user
                            .clone()
                            .unwrap_or_else(|| "palisade-collector".into());
                        let detail = format!(
                            "runs as {user} with effective capabilities beyond cap_net_raw: {}",
                            extra.join(", ")
                        );
                        self.finding(
                            Rule::CollectorCapabilities,
                            object,
                            since,
                            None,
                            detail,
                            fixes::collector_capabilities(c.id, &user),
                        );
                    } else {
                        self.count(Section::LinuxCollectors, true);
                    }
                }
                Platform::Windows => {
                    if !c.is_admin_account {
                        self.count(Section::WindowsCollectors, true);
                        continue;
                    }
                    let detail = "the collector's account is an administrator (isAdminAccount)";
                    match &c.exception {
                        Some(e) if exception_valid(e, self.now_ms) => {
                            self.count(Section::WindowsCollectors, true);
                            self.excepted.push(Excepted {
                                section: Section::WindowsCollectors,
                                rule: Rule::CollectorWindowsAdmin,
                                object,
                                detail: detail.to_string(),
                                exception: ExceptionView {
                                    justification: e.justification.clone(),
                                    expires_on: e.expires_on_ms.map(secs),
                                    created_by: e.created_by.clone(),
                                    created_on: secs(e.created_on_ms),
                                },
                            });
                        }
                        other => {
                            self.count(Section::WindowsCollectors, false);
                            let detail = match other {
                                Some(e) => format!(
                                    "{detail}; its exception (recorded by {}) expired on {}",
                                    e.created_by,
                                    e.expires_on_ms.map(date_text).unwrap_or_default()
                                ),
                                None => format!("{detail}, and no exception is recorded"),
                            };
                            self.finding(
                                Rule::CollectorWindowsAdmin,
                                object,
                                since,
                                None,
                                detail,
                                fixes::windows_admin(c.id, self.now_ms),
                            );
                        }
                    }
                }
                Platform::Other => {}
            }
        }
    }

    fn tokens(&mut self) {
        let inputs = self.inputs;
        for t in &inputs.tokens {
            let Some(owner) = inputs.users.iter().find(|u| u.id == t.owner_id) else {
                continue;
            };
            let object = ObjectRef {
                kind: ObjectKind::Token,
                id: t.id,
                name: format!("{} {} of {}", t.kind, t.access_id, owner.username),
            };
            if !t.enabled || t.expires_on_ms.is_some_and(|e| e <= self.now_ms) {
                self.exempt(
                    Section::ApiTokens,
                    object,
                    if t.enabled {
                        "expired: cannot be used"
                    } else {
                        "disabled: cannot be used"
                    },
                );
                continue;
            }
            let held: Vec<&RoleFacts> = inputs
                .roles
                .iter()
                .filter(|r| owner.role_ids.contains(&r.id))
                .collect();
            let before = self.findings.len();
            let owner_name = owner.username.as_str();
            if owner.mfa.kind == UserKind::Support {
                let detail = format!("owned by the built-in support account {owner_name}");
                let fix = fixes::replace_token(t.id, t.owner_id);
                self.finding(
                    Rule::TokenSupportOwner,
                    object.clone(),
                    t.created_on_ms,
                    None,
                    detail,
                    fix,
                );
            }
            if held.iter().any(|r| r.is_administrator) {
                let detail = format!(
                    "owned by {owner_name}, who holds the built-in administrator role (the portal refuses every call made with it)"
                );
                let fix = fixes::replace_token(t.id, t.owner_id);
                self.finding(
                    Rule::TokenAdministratorOwner,
                    object.clone(),
                    t.created_on_ms,
                    None,
                    detail,
                    fix,
                );
            } else {
                let privileges: Vec<Privilege> = held
                    .iter()
                    .flat_map(|r| r.privileges.iter().cloned())
                    .collect();
                if administrator_equivalent(&privileges, &inputs.administrator_privileges) {
                    let alone: Vec<String> = held
                        .iter()
                        .filter(|r| {
                            administrator_equivalent(
                                &r.privileges,
                                &inputs.administrator_privileges,
                            )
                        })
                        .map(|r| format!("`{}` (id {})", r.name, r.id))
                        .collect();
                    let roles = if alone.is_empty() {
                        format!(
                            "roles {} together",
                            held.iter()
                                .map(|r| format!("`{}` (id {})", r.name, r.id))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    } else {
                        format!("role {}", alone.join(", "))
                    };
                    let detail = format!(
                        "owned by {owner_name}, whose custom {roles} grant everything the administrator role grants"
                    );
                    let fix = fixes::replace_token(t.id, t.owner_id);
                    self.finding(
                        Rule::TokenAdministratorEquivalent,
                        object.clone(),
                        t.created_on_ms,
                        None,
                        detail,
                        fix,
                    );
                }
            }
            let last = t.last_used_on_ms.unwrap_or(t.created_on_ms);
            if self.now_ms.saturating_sub(last) > TOKEN_UNUSED_MS {
                let detail = match t.last_used_on_ms {
                    Some(u) => format!(
                        "last used on {} ({} days ago)",
                        date_text(u),
                        (self.now_ms - u) / DAY_MS
                    ),
                    None => format!(
                        "never used since its creation on {} ({} days ago)",
                        date_text(t.created_on_ms),
                        (self.now_ms - t.created_on_ms) / DAY_MS
                    ),
                };
                let fix = fixes::disable_unused(t.id, t.owner_id);
                self.finding(Rule::TokenUnused, object.clone(), last, None, detail, fix);
            }
            if t.expires_on_ms.is_none() {
                let detail =
                    "has no expiry: a leaked copy works until someone deletes it".to_string();
                let fix = fixes::set_expiry(t.id, t.owner_id, self.now_ms);
                self.finding(
                    Rule::TokenNoExpiry,
                    object,
                    t.created_on_ms,
                    None,
                    detail,
                    fix,
                );
            }
            let clean = self.findings.len() == before;
            self.count(Section::ApiTokens, clean);
        }
    }

    fn modules(&mut self) {
        let inputs = self.inputs;
        for m in &inputs.modules {
            let object = ObjectRef {
                kind: ObjectKind::Datasource,
                id: m.id,
                name: m.name.clone(),
            };
            match &m.source {
                None => {
                    self.count(Section::CustomModules, false);
                    let detail = "script datasource without source: the script on each collector was never reviewed by the portal".to_string();
                    self.finding(
                        Rule::ModuleUnreviewed,
                        object,
                        m.updated_on_ms,
                        None,
                        detail,
                        fixes::module_import(m.id, &m.name, false),
                    );
                }
                Some(source) => {
                    let counted: Vec<module_lint::Finding> = module_lint::lint(source)
                        .into_iter()
                        .filter(|f| !f.in_comment)
                        .collect();
                    if counted.is_empty() {
                        self.count(Section::CustomModules, true);
                        continue;
                    }
                    self.count(Section::CustomModules, false);
                    let detail = format!(
                        "the script needs root or Administrator: {}",
                        counted
                            .iter()
                            .map(|f| format!("line {}: {} ({})", f.line, f.rule, f.finding))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    self.finding(
                        Rule::ModuleNeedsElevation,
                        object,
                        m.updated_on_ms,
                        None,
                        detail,
                        fixes::module_import(m.id, &m.name, true),
                    );
                }
            }
        }
    }
}

/// Evaluates every rule at `now_ms`.
pub fn evaluate(inputs: &Inputs, now_ms: i64) -> Report {
    let mut b = Builder {
        inputs,
        now_ms,
        tally: Default::default(),
        findings: Vec::new(),
        excepted: Vec::new(),
        exempt: Vec::new(),
    };
    b.users();
    b.collectors();
    b.tokens();
    b.modules();
    let Builder {
        tally,
        mut findings,
        excepted,
        exempt,
        ..
    } = b;
    findings.sort_by(|a, b| {
        (a.section, std::cmp::Reverse(a.severity), a.since, &a.id).cmp(&(
            b.section,
            std::cmp::Reverse(b.severity),
            b.since,
            &b.id,
        ))
    });
    let sections: Vec<SectionScore> = Section::ALL
        .iter()
        .zip(tally.iter())
        .map(|(s, t)| {
            let score = Score::of(t.compliant, t.total);
            let count = |n: usize| n as u64;
            SectionScore {
                id: *s,
                mandate: s.mandate(),
                title: s.title(),
                compliant: t.compliant,
                total: t.total,
                score: score.score,
                findings: count(findings.iter().filter(|f| f.section == *s).count()),
                excepted: count(excepted.iter().filter(|e| e.section == *s).count()),
                exempt: count(exempt.iter().filter(|e| e.section == *s).count()),
            }
        })
        .collect();
    let overall = Score::of(
        tally.iter().map(|t| t.compliant).sum(),
        tally.iter().map(|t| t.total).sum(),
    );
    let unknown_break_glass = inputs
        .break_glass
        .iter()
        .filter(|b| {
            !inputs
                .users
                .iter()
                .any(|u| u.username.eq_ignore_ascii_case(b))
        })
        .cloned()
        .collect();
    Report {
        generated_on: secs(now_ms),
        overall,
        sections,
        findings,
        excepted,
        exempt,
        sso: SsoView {
            restrict: inputs.sso_restrict,
            break_glass: inputs.break_glass.clone(),
            unknown_break_glass,
        },
    }
}
