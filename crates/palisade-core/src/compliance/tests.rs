use super::evaluate::index;
use super::fixes::shell_word;
use super::*;
use crate::mfa::DEFAULT_GRACE_MS;
use crate::mfa::{MfaInput, UserKind};
use crate::privilege::administrator_privileges;
use serde_json::json;

const HOUR: i64 = 60 * 60 * 1000;
const NOW: i64 = 2_000 * DAY_MS;

fn user(id: i64, name: &str, kind: UserKind) -> UserFacts {
    UserFacts {
        id,
        username: name.into(),
        active: true,
        support_window_open: false,
        role_ids: vec![],
        mfa: MfaInput {
            kind,
            has_confirmed_factor: false,
            created_on_ms: NOW - 10 * DAY_MS,
            enforcement_date_ms: Some(NOW - 30 * DAY_MS),
            grace_ms: DEFAULT_GRACE_MS,
            role_requires_2fa: false,
            deadline_override_ms: None,
        },
    }
}

fn report(inputs: &Inputs) -> Report {
    evaluate(inputs, NOW)
}

fn section(r: &Report, s: Section) -> &SectionScore {
    &r.sections[index(s)]
}

fn rules_of(r: &Report, kind: ObjectKind, id: i64) -> Vec<Rule> {
    r.findings
        .iter()
        .filter(|f| f.object.kind == kind && f.object.id == id)
        .map(|f| f.rule)
        .collect()
}

#[test]
fn nothing_in_scope_scores_100() {
    let r = report(&Inputs::default());
    assert_eq!(r.sections.len(), 5);
    assert!(r.sections.iter().all(|s| s.score == 100.0 && s.total == 0));
    assert_eq!(r.overall.score, 100.0);
    assert_eq!(r.generated_on, NOW / 1000);
}

#[test]
fn scores_are_percentages_with_one_decimal() {
    assert_eq!(Score::of(1, 3).score, 33.3);
    assert_eq!(Score::of(2, 3).score, 66.7);
    assert_eq!(Score::of(0, 5).score, 0.0);
    assert_eq!(Score::of(5, 5).score, 100.0);
    assert_eq!(Score::of(0, 0).score, 100.0);
    assert_eq!(Score::of(7, 5).score, 100.0);
}

#[test]
fn sections_and_rules_are_consistent() {
    let ids: Vec<&str> = Section::ALL.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [
            "two-factor",
            "linux-collectors",
            "windows-collectors",
            "api-tokens",
            "custom-modules"
        ]
    );
    assert_eq!(
        Section::ALL.map(Section::mandate),
        [1, 2, 3, 4, 2],
        "custom modules belong to mandate 2"
    );
    for rule in Rule::ALL {
        let serialized = serde_json::to_value(rule).ok();
        assert_eq!(serialized, Some(json!(rule.id())));
        assert!(rule.id().contains('.'));
    }
}

// ------------------------------------------------------------------ two-factor

#[test]
fn users_with_a_factor_are_compliant() {
    let mut u = user(5, "alice", UserKind::Local);
    u.mfa.has_confirmed_factor = true;
    let r = report(&Inputs {
        users: vec![u],
        ..Default::default()
    });
    assert!(r.findings.is_empty());
    assert_eq!(section(&r, Section::TwoFactor).compliant, 1);
    assert_eq!(section(&r, Section::TwoFactor).total, 1);
}

#[test]
fn sso_api_only_suspended_and_closed_support_are_exempt_and_listed() {
    let mut suspended = user(4, "gone", UserKind::Local);
    suspended.active = false;
    let r = report(&Inputs {
        users: vec![
            user(1, "sso-user", UserKind::Sso),
            user(2, "automation", UserKind::ApiOnly),
            user(3, "palisade-support", UserKind::Support),
            suspended,
        ],
        ..Default::default()
    });
    assert!(r.findings.is_empty());
    let s = section(&r, Section::TwoFactor);
    assert_eq!((s.total, s.exempt, s.score), (0, 4, 100.0));
    assert!(r
        .exempt
        .iter()
        .any(|e| e.object.id == 1 && e.reason.contains("single sign-on")));
    assert!(r
        .exempt
        .iter()
        .any(|e| e.object.id == 2 && e.reason.contains("API-only")));
}

#[test]
fn the_support_account_during_a_window_needs_its_own_factor() {
    let mut support = user(3, "palisade-support", UserKind::Support);
    support.support_window_open = true;
    support.active = false; // the account stays suspended; the window is what opens it
    support.mfa.deadline_override_ms = Some(NOW - HOUR);
    let r = report(&Inputs {
        users: vec![support],
        ..Default::default()
    });
    assert_eq!(rules_of(&r, ObjectKind::User, 3), [Rule::MfaDeadlinePassed]);
}

#[test]
fn grace_shows_the_days_left_and_since_creation() {
    let mut u = user(7, "bob", UserKind::Local);
    u.mfa.created_on_ms = NOW - 2 * HOUR;
    let r = report(&Inputs {
        users: vec![u],
        ..Default::default()
    });
    let f = &r.findings[0];
    assert_eq!(f.rule, Rule::MfaInGrace);
    assert_eq!(f.severity, Severity::Medium);
    // deadline = created + 72 h = now + 70 h: 2.9 days, rounded up
    assert_eq!(f.days_left, Some(3));
    assert_eq!(f.since, (NOW - 2 * HOUR) / 1000);
    assert_eq!(f.id, "mfa.in-grace/user/7");
    assert_eq!(f.fix.link, "/ui/users/7");
    let api = f.fix.api.as_ref().map(|a| (a.method, a.path.as_str()));
    assert_eq!(api, Some(("POST", "/api/me/factors/totp")));
    assert_eq!(section(&r, Section::TwoFactor).score, 0.0);
}

#[test]
fn days_left_rounds_up_and_stops_at_zero() {
    assert_eq!(days_left(NOW + 1, NOW), 1);
    assert_eq!(days_left(NOW + DAY_MS, NOW), 1);
    assert_eq!(days_left(NOW + DAY_MS + 1, NOW), 2);
    assert_eq!(days_left(NOW, NOW), 0);
    assert_eq!(days_left(NOW - DAY_MS, NOW), 0);
    assert_eq!(days_left(i64::MAX, i64::MIN), i64::MAX / DAY_MS);
}

#[test]
fn a_passed_deadline_is_high_and_dated_at_the_deadline() {
    let mut u = user(8, "carol", UserKind::Local);
    u.mfa.created_on_ms = NOW - 100 * DAY_MS;
    u.mfa.enforcement_date_ms = Some(NOW - 50 * DAY_MS);
    let r = report(&Inputs {
        users: vec![u],
        ..Default::default()
    });
    let f = &r.findings[0];
    assert_eq!(f.rule, Rule::MfaDeadlinePassed);
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.since, (NOW - 50 * DAY_MS) / 1000);
    assert_eq!(f.days_left, Some(0));
    // exactly at the deadline it has passed
    let mut edge = user(9, "dave", UserKind::Local);
    edge.mfa.deadline_override_ms = Some(NOW);
    let r = report(&Inputs {
        users: vec![edge],
        ..Default::default()
    });
    assert_eq!(r.findings[0].rule, Rule::MfaDeadlinePassed);
}

#[test]
fn without_an_enforcement_date_a_missing_factor_is_low() {
    let mut u = user(10, "erin", UserKind::Local);
    u.mfa.enforcement_date_ms = None;
    let r = report(&Inputs {
        users: vec![u],
        ..Default::default()
    });
    assert_eq!(r.findings[0].rule, Rule::MfaNotEnforced);
    assert_eq!(r.findings[0].severity, Severity::Low);
    assert_eq!(r.findings[0].days_left, None);
}

#[test]
fn break_glass_without_factor_is_critical_and_wins() {
    let mut bg = user(11, "Glass", UserKind::Local);
    bg.mfa.created_on_ms = NOW - 100 * DAY_MS;
    let mut ok = user(12, "glass2", UserKind::Local);
    ok.mfa.has_confirmed_factor = true;
    let r = report(&Inputs {
        sso_restrict: true,
        break_glass: vec!["glass".into(), "glass2".into(), "nobody".into()],
        users: vec![bg, ok],
        ..Default::default()
    });
    assert_eq!(rules_of(&r, ObjectKind::User, 11), [Rule::MfaBreakGlass]);
    assert_eq!(r.findings[0].severity, Severity::Critical);
    assert!(r.findings[0].detail.contains("sso.restrict on"));
    assert!(rules_of(&r, ObjectKind::User, 12).is_empty());
    assert_eq!(r.sso.unknown_break_glass, ["nobody"]);
    assert!(r.sso.restrict);
    assert_eq!(section(&r, Section::TwoFactor).score, 50.0);
}

// ------------------------------------------------------------------ collectors

fn linux(id: i64, privilege: serde_json::Value, admin: bool) -> CollectorFacts {
    CollectorFacts {
        id,
        name: format!("c{id}"),
        reported: true,
        platform: "Linux".into(),
        is_admin_account: admin,
        privilege: PrivilegeFacts::from_report(&privilege),
        reported_on_ms: Some(NOW - HOUR),
        noncompliant_since_ms: None,
        exception: None,
    }
}

#[test]
fn privilege_reports_are_read_in_both_shapes() {
    let list = PrivilegeFacts::from_report(
        &json!({"user": "x", "uid": 990, "capabilities": ["CAP_NET_RAW", "cap_sys_admin"]}),
    );
    assert_eq!(list.extra_capabilities(), ["cap_sys_admin"]);
    assert_eq!(list.uid, Some(990));
    let obj = PrivilegeFacts::from_report(
        &json!({"uid": 0, "capabilities": {"effective": ["cap_net_raw"], "permitted": ["cap_sys_admin"]}}),
    );
    assert!(obj.extra_capabilities().is_empty());
    assert_eq!(obj.uid, Some(0));
    assert_eq!(
        PrivilegeFacts::from_report(&json!(null)),
        PrivilegeFacts::default()
    );
}

#[test]
fn linux_root_and_capabilities() {
    let mut since = linux(1, json!({"user": "root", "uid": 0}), true);
    since.noncompliant_since_ms = Some(NOW - 5 * DAY_MS);
    let r = report(&Inputs {
        collectors: vec![
            since,
            linux(
                2,
                json!({"uid": 990, "capabilities": ["cap_net_raw"]}),
                false,
            ),
            linux(
                3,
                json!({"user": "svc", "uid": 990, "capabilities": {"effective": ["cap_net_raw", "cap_dac_read_search"]}}),
                true,
            ),
            // admin account with nothing else known: treated as root
            linux(4, json!({}), true),
            // uid 0 even if the flag says otherwise
            linux(5, json!({"uid": 0}), false),
        ],
        ..Default::default()
    });
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 1),
        [Rule::CollectorRoot]
    );
    assert!(rules_of(&r, ObjectKind::Collector, 2).is_empty());
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 3),
        [Rule::CollectorCapabilities]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 4),
        [Rule::CollectorRoot]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 5),
        [Rule::CollectorRoot]
    );
    let root = r.findings.iter().find(|f| f.object.id == 1);
    assert_eq!(root.map(|f| f.since), Some((NOW - 5 * DAY_MS) / 1000));
    assert_eq!(
        root.and_then(|f| f.fix.cli.clone()).as_deref(),
        Some("palisade-collector migrate --to-user palisade-collector")
    );
    let caps = r.findings.iter().find(|f| f.object.id == 3);
    assert!(
        caps.is_some_and(|f| f.detail.contains("cap_dac_read_search")
            && f.since == (NOW - HOUR) / 1000
            && f.fix.cli.as_deref()
                == Some(
                    "palisade-collector install --user svc && systemctl restart palisade-collector"
                ))
    );
    let s = section(&r, Section::LinuxCollectors);
    assert_eq!((s.compliant, s.total, s.score), (1, 5, 20.0));
}

#[test]
fn unreported_and_unknown_platforms_are_not_counted() {
    let mut fresh = linux(1, json!({}), false);
    fresh.reported = false;
    let mut other = linux(2, json!({"uid": 0}), true);
    other.platform = "Solaris".into();
    let r = report(&Inputs {
        collectors: vec![fresh, other],
        ..Default::default()
    });
    assert!(r.findings.is_empty());
    assert_eq!(section(&r, Section::LinuxCollectors).total, 0);
}

#[test]
fn the_noncompliance_test_used_for_since() {
    assert!(collector_noncompliant("Linux", false, &json!({"uid": 0})));
    assert!(collector_noncompliant(
        "linux",
        false,
        &json!({"uid": 5, "capabilities": ["cap_sys_ptrace"]})
    ));
    assert!(!collector_noncompliant(
        "Linux",
        false,
        &json!({"uid": 5, "capabilities": ["cap_net_raw"]})
    ));
    assert!(collector_noncompliant("Windows", true, &json!({})));
    assert!(!collector_noncompliant(
        "Windows",
        false,
        &json!({"uid": 0})
    ));
}

fn windows(id: i64, admin: bool, exception: Option<ExceptionFacts>) -> CollectorFacts {
    CollectorFacts {
        id,
        name: format!("w{id}"),
        reported: true,
        platform: "Windows".into(),
        is_admin_account: admin,
        privilege: PrivilegeFacts::default(),
        reported_on_ms: Some(NOW - HOUR),
        noncompliant_since_ms: Some(NOW - 3 * DAY_MS),
        exception,
    }
}

fn exception(expires: Option<i64>) -> ExceptionFacts {
    ExceptionFacts {
        justification: "legacy Exchange counters need local admin".into(),
        expires_on_ms: expires,
        created_by: "ops".into(),
        created_on_ms: NOW - DAY_MS,
    }
}

#[test]
fn windows_admin_accounts_and_exceptions() {
    let r = report(&Inputs {
        collectors: vec![
            windows(1, true, None),
            windows(2, true, Some(exception(None))),
            windows(3, true, Some(exception(Some(NOW + DAY_MS)))),
            windows(4, true, Some(exception(Some(NOW)))),
            windows(5, false, None),
        ],
        ..Default::default()
    });
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 1),
        [Rule::CollectorWindowsAdmin]
    );
    assert!(rules_of(&r, ObjectKind::Collector, 2).is_empty());
    assert!(rules_of(&r, ObjectKind::Collector, 3).is_empty());
    // an exception ending now no longer applies
    assert_eq!(
        rules_of(&r, ObjectKind::Collector, 4),
        [Rule::CollectorWindowsAdmin]
    );
    let expired = r.findings.iter().find(|f| f.object.id == 4);
    assert!(expired.is_some_and(|f| f.detail.contains("expired")));
    let first = r.findings.iter().find(|f| f.object.id == 1);
    assert!(first.is_some_and(|f| f.since == (NOW - 3 * DAY_MS) / 1000
        && f.fix.api.as_ref().is_some_and(|a| a.method == "PATCH"
            && a.path == "/santaba/rest/setting/collector/collectors/1"
            && a.body
                .as_ref()
                .and_then(|b| b.pointer("/complianceException/expiresOn"))
                == Some(&json!((NOW + PROPOSED_EXPIRY_MS) / 1000)))));
    assert_eq!(r.excepted.len(), 2);
    let e = &r.excepted[0];
    assert_eq!(e.object.id, 2);
    assert_eq!(e.exception.created_by, "ops");
    assert_eq!(e.exception.created_on, (NOW - DAY_MS) / 1000);
    assert_eq!(e.exception.expires_on, None);
    let s = section(&r, Section::WindowsCollectors);
    assert_eq!((s.compliant, s.total, s.excepted, s.findings), (3, 5, 2, 2));
}

// ------------------------------------------------------------------ tokens

fn token(id: i64, owner: i64) -> TokenFacts {
    TokenFacts {
        id,
        owner_id: owner,
        kind: "LMv1".into(),
        access_id: format!("acc{id}"),
        enabled: true,
        created_on_ms: NOW - 10 * DAY_MS,
        last_used_on_ms: Some(NOW - DAY_MS),
        expires_on_ms: Some(NOW + 30 * DAY_MS),
    }
}

fn role(id: i64, name: &str, privileges: Vec<Privilege>, admin: bool) -> RoleFacts {
    RoleFacts {
        id,
        name: name.into(),
        is_administrator: admin,
        privileges,
    }
}

fn token_inputs(tokens: Vec<TokenFacts>) -> Inputs {
    let mut support = user(1, "palisade-support", UserKind::Support);
    support.role_ids = vec![13];
    let mut admin = user(2, "admin", UserKind::Local);
    admin.role_ids = vec![10];
    admin.mfa.has_confirmed_factor = true;
    let mut equivalent = user(3, "ops-bot", UserKind::ApiOnly);
    equivalent.role_ids = vec![11];
    let mut split = user(4, "split-bot", UserKind::ApiOnly);
    split.role_ids = vec![12, 14];
    let mut plain = user(5, "reporter", UserKind::ApiOnly);
    plain.role_ids = vec![13];
    let admin_privs = administrator_privileges();
    let (setting, rest): (Vec<Privilege>, Vec<Privilege>) = admin_privs
        .iter()
        .cloned()
        .partition(|p| p.object_type == "setting");
    let mut almost = admin_privs.clone();
    almost.retain(|p| p.object_type != "lmSupportAccess");
    Inputs {
        users: vec![support, admin, equivalent, split, plain],
        roles: vec![
            role(10, "administrator", admin_privs.clone(), true),
            role(11, "everything", admin_privs.clone(), false),
            role(12, "monitoring", rest, false),
            role(
                13,
                "readonly",
                vec![Privilege::new("host_group", "*", "read")],
                false,
            ),
            role(14, "settings", setting, false),
            role(15, "almost", almost, false),
        ],
        administrator_privileges: admin_privs,
        tokens,
        ..Default::default()
    }
}

#[test]
fn administrator_equivalence() {
    let admin = administrator_privileges();
    assert!(administrator_equivalent(&admin, &admin));
    let mut almost = admin.clone();
    almost.pop();
    assert!(!administrator_equivalent(&almost, &admin));
    // lower operations do not cover manage
    let read: Vec<Privilege> = admin
        .iter()
        .map(|p| Privilege::new(&p.object_type, "*", "write"))
        .collect();
    assert!(!administrator_equivalent(&read, &admin));
    // nothing is equivalent to an unknown administrator
    assert!(!administrator_equivalent(&admin, &[]));
}

#[test]
fn support_administrator_and_equivalent_owners() {
    let mut inputs = token_inputs(vec![
        token(1, 1),
        token(2, 2),
        token(3, 3),
        token(4, 4),
        token(5, 5),
    ]);
    let mut almost_user = user(6, "almost-bot", UserKind::ApiOnly);
    almost_user.role_ids = vec![15];
    inputs.users.push(almost_user);
    inputs.tokens.push(token(6, 6));
    let r = report(&inputs);
    assert_eq!(
        rules_of(&r, ObjectKind::Token, 1),
        [Rule::TokenSupportOwner]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Token, 2),
        [Rule::TokenAdministratorOwner]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Token, 3),
        [Rule::TokenAdministratorEquivalent]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Token, 4),
        [Rule::TokenAdministratorEquivalent]
    );
    assert!(rules_of(&r, ObjectKind::Token, 5).is_empty());
    assert!(rules_of(&r, ObjectKind::Token, 6).is_empty());
    let one = r.findings.iter().find(|f| f.object.id == 3);
    assert!(one.is_some_and(|f| f.detail.contains("role `everything` (id 11)")));
    let two = r.findings.iter().find(|f| f.object.id == 4);
    assert!(two.is_some_and(|f| f.detail.contains("together")));
    let support = r.findings.iter().find(|f| f.object.id == 1);
    assert!(support.is_some_and(|f| f.severity == Severity::Critical
        && f.since == (NOW - 10 * DAY_MS) / 1000
        && f.fix.cli.as_deref() == Some("palisade token migrate 1")
        && f.fix
            .api
            .as_ref()
            .is_some_and(|a| a.path == "/santaba/rest/setting/admins/1/apitokens/1"
                && a.body == Some(json!({"status": 1})))));
    assert_eq!(
        r.findings
            .iter()
            .find(|f| f.object.id == 2)
            .map(|f| f.object.name.as_str()),
        Some("LMv1 acc2 of admin")
    );
    let s = section(&r, Section::ApiTokens);
    assert_eq!((s.compliant, s.total), (2, 6));
}

#[test]
fn unused_tokens_from_last_use_or_creation() {
    let mut never = token(1, 5);
    never.last_used_on_ms = None;
    never.created_on_ms = NOW - 91 * DAY_MS;
    let mut stale = token(2, 5);
    stale.created_on_ms = NOW - 400 * DAY_MS;
    stale.last_used_on_ms = Some(NOW - 100 * DAY_MS);
    let mut edge = token(3, 5);
    edge.created_on_ms = NOW - 400 * DAY_MS;
    edge.last_used_on_ms = Some(NOW - TOKEN_UNUSED_MS);
    let mut old_but_used = token(4, 5);
    old_but_used.created_on_ms = NOW - 400 * DAY_MS;
    let r = report(&token_inputs(vec![never, stale, edge, old_but_used]));
    assert_eq!(rules_of(&r, ObjectKind::Token, 1), [Rule::TokenUnused]);
    assert_eq!(rules_of(&r, ObjectKind::Token, 2), [Rule::TokenUnused]);
    assert!(rules_of(&r, ObjectKind::Token, 3).is_empty());
    assert!(rules_of(&r, ObjectKind::Token, 4).is_empty());
    let stale = r.findings.iter().find(|f| f.object.id == 2);
    assert!(stale.is_some_and(|f| f.since == (NOW - 100 * DAY_MS) / 1000
        && f.detail.contains("100 days ago")
        && f.fix
            .api
            .as_ref()
            .is_some_and(|a| a.body == Some(json!({"status": 1})))));
    let never = r.findings.iter().find(|f| f.object.id == 1);
    assert!(never.is_some_and(|f| f.detail.contains("never used")));
}

#[test]
fn tokens_without_expiry_and_several_findings_count_once() {
    let mut forever = token(1, 5);
    forever.expires_on_ms = None;
    let mut admin_forever = token(2, 2);
    admin_forever.expires_on_ms = None;
    let r = report(&token_inputs(vec![forever, admin_forever]));
    assert_eq!(rules_of(&r, ObjectKind::Token, 1), [Rule::TokenNoExpiry]);
    assert_eq!(
        rules_of(&r, ObjectKind::Token, 2),
        [Rule::TokenAdministratorOwner, Rule::TokenNoExpiry]
    );
    let f = r.findings.iter().find(|f| f.rule == Rule::TokenNoExpiry);
    assert!(f.is_some_and(|f| f.severity == Severity::Low
        && f.fix.api.as_ref().is_some_and(|a| a.method == "PATCH"
            && a.body == Some(json!({"expiresOn": (NOW + PROPOSED_EXPIRY_MS) / 1000})))));
    let s = section(&r, Section::ApiTokens);
    assert_eq!((s.compliant, s.total, s.findings), (0, 2, 3));
}

#[test]
fn disabled_and_expired_tokens_are_exempt() {
    let mut disabled = token(1, 2);
    disabled.enabled = false;
    let mut expired = token(2, 1);
    expired.expires_on_ms = Some(NOW);
    let r = report(&token_inputs(vec![disabled, expired]));
    assert!(r.findings.is_empty());
    let s = section(&r, Section::ApiTokens);
    assert_eq!((s.total, s.exempt, s.score), (0, 2, 100.0));
}

// ------------------------------------------------------------------ modules

fn module(id: i64, source: Option<&str>) -> ModuleFacts {
    ModuleFacts {
        id,
        name: format!("Script_{id}"),
        source: source.map(str::to_string),
        updated_on_ms: NOW - 7 * DAY_MS,
    }
}

#[test]
fn script_modules() {
    let r = report(&Inputs {
        modules: vec![
            module(1, None),
            module(2, Some("#!/bin/sh\nsudo cat /etc/shadow\n")),
            module(3, Some("#!/bin/sh\n# sudo was needed once\necho ok=1\n")),
            module(4, Some("echo ok=1\n")),
        ],
        ..Default::default()
    });
    assert_eq!(
        rules_of(&r, ObjectKind::Datasource, 1),
        [Rule::ModuleUnreviewed]
    );
    assert_eq!(
        rules_of(&r, ObjectKind::Datasource, 2),
        [Rule::ModuleNeedsElevation]
    );
    assert!(rules_of(&r, ObjectKind::Datasource, 3).is_empty());
    assert!(rules_of(&r, ObjectKind::Datasource, 4).is_empty());
    let f = r.findings.iter().find(|f| f.object.id == 2);
    assert!(f.is_some_and(|f| f.detail.contains("line 2: elevation")
        && f.detail.contains("root-only-file")
        && f.since == (NOW - 7 * DAY_MS) / 1000
        && f.fix.cli.as_deref() == Some("palisade datasource import Script_2.json")));
    assert_eq!(section(&r, Section::CustomModules).score, 50.0);
}

// ------------------------------------------------------------------ order, fixes, export

#[test]
fn findings_are_ordered_by_section_severity_and_age() {
    let mut old = user(1, "old", UserKind::Local);
    old.mfa.created_on_ms = NOW - 100 * DAY_MS;
    let young = user(2, "young", UserKind::Local);
    let mut forever = token(1, 5);
    forever.expires_on_ms = None;
    let mut inputs = token_inputs(vec![forever, token(2, 1)]);
    inputs.users.extend([young, old]);
    let r = report(&inputs);
    let order: Vec<(Section, Severity)> =
        r.findings.iter().map(|f| (f.section, f.severity)).collect();
    let mut sorted = order.clone();
    sorted.sort_by_key(|a| (a.0, std::cmp::Reverse(a.1)));
    assert_eq!(order, sorted);
    assert_eq!(r.findings[0].object.name, "old");
    assert_eq!(r.findings[0].rule, Rule::MfaDeadlinePassed);
}

#[test]
fn shell_words() {
    assert_eq!(shell_word("palisade-collector"), "palisade-collector");
    assert_eq!(shell_word("My DS.json"), "'My DS.json'");
    assert_eq!(shell_word("a'b"), r"'a'\''b'");
    assert_eq!(shell_word(""), "''");
    assert_eq!(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
}

#[test]
fn csv_quotes_and_defuses_formulas() {
    assert_eq!(csv_cell("plain"), "plain");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
}

#[test]
fn csv_and_text_exports() {
    let mut inputs = token_inputs(vec![token(1, 1)]);
    inputs
        .users
        .push(user(20, "=cmd|'/c calc'!A0", UserKind::Local));
    inputs
        .collectors
        .push(windows(9, true, Some(exception(None))));
    let r = report(&inputs);
    let csv = to_csv(&r);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], export::CSV_HEADER.join(","));
    assert_eq!(
        lines.len(),
        1 + r.findings.len() + r.excepted.len() + r.exempt.len()
    );
    assert!(lines.iter().any(|l| l
        .starts_with("finding,api-tokens,4,token.support-owner,critical,token,1,")
        && l.ends_with(",palisade token migrate 1")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("excepted,windows-collectors,3,collector.windows-admin,")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("exempt,two-factor,1,,,user,")));
    assert!(csv.contains("'=cmd|"));
    assert!(!csv.contains(",=cmd"));
    let text = to_text(&r);
    assert!(text.contains("API tokens without support or administrator power (mandate 4): 0/1"));
    assert!(text.contains("cli:    palisade token migrate 1"));
    assert!(text.contains("[excepted] collector 9"));
    assert!(text.contains("[exempt] user 3 `ops-bot`"));
}

#[test]
fn reports_serialize_with_camel_case_fields() {
    let mut u = user(7, "bob", UserKind::Local);
    u.mfa.created_on_ms = NOW - HOUR;
    let r = report(&Inputs {
        users: vec![u],
        ..Default::default()
    });
    let v = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(v["findings"][0]["daysLeft"], json!(3));
    assert_eq!(v["findings"][0]["section"], json!("two-factor"));
    assert_eq!(v["findings"][0]["rule"], json!("mfa.in-grace"));
    assert_eq!(v["findings"][0]["object"]["kind"], json!("user"));
    assert_eq!(v["findings"][0]["fix"]["cli"], json!(null));
    assert_eq!(v["sections"][0]["id"], json!("two-factor"));
    assert_eq!(v["overall"]["score"], json!(0.0));
    assert_eq!(v["sso"]["unknownBreakGlass"], json!([]));
    assert!(v.get("generatedOn").is_some());
}
