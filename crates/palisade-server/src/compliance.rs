//! The compliance center's portal side: gathers the facts from the store, evaluates them
//! with [`palisade_core::compliance`], keeps snapshots of the scores over time, and records
//! compliance exceptions on collectors. Shared by the API (`/api/compliance`) and the CLI
//! (`palisade compliance ...`); see `docs/compliance.md`.

use crate::error::ApiError;
use crate::portal::{Actor, Portal};
use crate::settings::SigninSettings;
use palisade_core::compliance::{
    self as rules, CollectorFacts, ExceptionFacts, Inputs, ModuleFacts, PrivilegeFacts, Report,
    RoleFacts, TokenFacts, UserFacts, DAY_MS,
};
use palisade_store::compliance::{ComplianceSnapshotDoc, SnapshotScore};
use palisade_store::inventory::{
    CollectorDoc, CollectorReport, ComplianceException, DatasourceDoc,
};
use palisade_store::objects::{self, ObjectQuery};
use palisade_store::{StoreError, TokenType, TOKEN_ENABLED};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;

/// How often `serve` checks whether the daily snapshot is due.
pub const DAILY_CHECK: Duration = Duration::from_secs(3600);

/// Longest accepted justification of an exception.
pub const MAX_JUSTIFICATION: usize = 1024;

/// Gathers the facts the rules need. Never reads a secret: tokens are described by id,
/// owner, access id and times only.
pub async fn gather(portal: &Portal) -> Result<Inputs, ApiError> {
    let now = portal.now();
    let store = portal.store.as_ref();
    let settings = SigninSettings::load(portal).await?;
    let roles = store.list_roles().await?;
    let mut users = Vec::new();
    for u in store.list_users().await? {
        let has_factor = store.list_factors(u.id).await?.iter().any(|f| f.confirmed);
        users.push(UserFacts {
            id: u.id,
            username: u.username.clone(),
            active: u.is_active(),
            support_window_open: u.is_support() && u.support_until.is_some_and(|t| t > now),
            role_ids: u.role_ids.clone(),
            mfa: crate::signin::mfa_input(&u, &roles, has_factor, &settings, now),
        });
    }
    let administrator_privileges = roles
        .iter()
        .find(|r| r.is_administrator())
        .map(|r| r.privileges.clone())
        .unwrap_or_else(palisade_core::privilege::administrator_privileges);
    let tokens = store
        .list_tokens(None)
        .await?
        .into_iter()
        .map(|t| TokenFacts {
            id: t.id,
            owner_id: t.user_id,
            kind: match t.kind {
                TokenType::Lmv1 => "LMv1".into(),
                TokenType::Bearer => "Bearer".into(),
                TokenType::Widget => "widget".into(),
            },
            access_id: t.access_id,
            enabled: t.status == TOKEN_ENABLED,
            created_on_ms: t.created_on,
            last_used_on_ms: t.last_used_on,
            expires_on_ms: t.expires_on,
        })
        .collect();
    let collectors: Vec<CollectorDoc> = objects::list(store, ObjectQuery::default()).await?;
    let collectors = collectors.iter().map(collector_facts).collect();
    let datasources: Vec<DatasourceDoc> = objects::list(store, ObjectQuery::default()).await?;
    let modules = datasources
        .iter()
        .filter_map(|d| {
            let c = d.definition.get("collector")?;
            (c.get("method").and_then(Value::as_str) == Some("script")).then(|| ModuleFacts {
                id: d.id,
                name: d.name.clone(),
                source: c.get("source").and_then(Value::as_str).map(str::to_string),
                updated_on_ms: d.updated_on,
            })
        })
        .collect();
    Ok(Inputs {
        sso_restrict: settings.restrict_to_sso,
        break_glass: settings.break_glass.clone(),
        users,
        roles: roles
            .iter()
            .map(|r| RoleFacts {
                id: r.id,
                name: r.name.clone(),
                is_administrator: r.is_administrator(),
                privileges: r.privileges.clone(),
            })
            .collect(),
        administrator_privileges,
        tokens,
        collectors,
        modules,
    })
}

fn collector_facts(c: &CollectorDoc) -> CollectorFacts {
    let report = c.report.clone().unwrap_or_default();
    let name = if !c.description.trim().is_empty() {
        c.description.clone()
    } else if !report.hostname.is_empty() {
        report.hostname.clone()
    } else {
        format!("collector {}", c.id)
    };
    CollectorFacts {
        id: c.id,
        name,
        reported: c.report.is_some(),
        platform: report.platform.clone(),
        is_admin_account: report.is_admin_account,
        privilege: PrivilegeFacts::from_report(&report.privilege),
        reported_on_ms: c.last_heartbeat,
        noncompliant_since_ms: c.noncompliant_since,
        exception: c.compliance_exception.as_ref().map(|e| ExceptionFacts {
            justification: e.justification.clone(),
            expires_on_ms: e.expires_on,
            created_by: e.created_by.clone(),
            created_on_ms: e.created_on,
        }),
    }
}

/// Whether a collector's report is out of line (kept as `noncompliant_since`).
pub fn report_noncompliant(report: &CollectorReport) -> bool {
    rules::collector_noncompliant(&report.platform, report.is_admin_account, &report.privilege)
}

/// The report now, without side effects.
pub async fn compute(portal: &Portal) -> Result<Report, ApiError> {
    let inputs = gather(portal).await?;
    Ok(rules::evaluate(&inputs, portal.now()))
}

/// The report now; takes a snapshot when the last one is more than a day old. A failed
/// snapshot is logged and does not fail the report.
pub async fn report(portal: &Portal) -> Result<Report, ApiError> {
    let report = compute(portal).await?;
    match snapshot_due(portal).await {
        Ok(true) => {
            if let Err(e) = take_snapshot(portal, &report, "report", true).await {
                tracing::warn!(error = %e, "could not store the compliance snapshot");
            }
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the compliance history"),
    }
    Ok(report)
}

/// The snapshots, oldest first; only those taken at or after `since_ms` when given.
pub async fn history(
    portal: &Portal,
    since_ms: Option<i64>,
) -> Result<Vec<ComplianceSnapshotDoc>, ApiError> {
    let mut all: Vec<ComplianceSnapshotDoc> =
        objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
    all.retain(|s| since_ms.is_none_or(|t| s.taken_on >= t));
    all.sort_by_key(|s| (s.taken_on, s.id));
    Ok(all)
}

/// Whether the last snapshot is more than a day old (or there is none).
pub async fn snapshot_due(portal: &Portal) -> Result<bool, ApiError> {
    let last = history(portal, None).await?.last().map(|s| s.taken_on);
    Ok(last.is_none_or(|t| portal.now().saturating_sub(t) >= DAY_MS))
}

fn score(
    id: &str,
    mandate: u8,
    compliant: u64,
    total: u64,
    score: f64,
    findings: u64,
) -> SnapshotScore {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    SnapshotScore {
        id: id.into(),
        mandate: i64::from(mandate),
        compliant: n(compliant),
        total: n(total),
        score,
        findings: n(findings),
    }
}

/// Stores a snapshot of the report's scores. `daily` snapshots carry the UTC day as their
/// unique key: when another portal instance took today's already, nothing is stored and
/// `None` is returned.
pub async fn take_snapshot(
    portal: &Portal,
    report: &Report,
    trigger: &str,
    daily: bool,
) -> Result<Option<ComplianceSnapshotDoc>, ApiError> {
    let now = portal.now();
    let doc = ComplianceSnapshotDoc {
        taken_on: now,
        trigger: trigger.into(),
        day: daily.then(|| rules::date_text(now)),
        overall: score(
            "overall",
            0,
            report.overall.compliant,
            report.overall.total,
            report.overall.score,
            report.findings.len() as u64,
        ),
        sections: report
            .sections
            .iter()
            .map(|s| {
                score(
                    s.id.id(),
                    s.mandate,
                    s.compliant,
                    s.total,
                    s.score,
                    s.findings,
                )
            })
            .collect(),
        ..Default::default()
    };
    match objects::create(portal.store.as_ref(), &doc, None).await {
        Ok(d) => Ok(Some(d)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `serve`'s daily snapshot: checks every [`DAILY_CHECK`] whether the last snapshot is more
/// than a day old, and if so computes the report and stores one.
pub fn start_daily(portal: Portal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(DAILY_CHECK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let result = async {
                if snapshot_due(&portal).await? {
                    let report = compute(&portal).await?;
                    take_snapshot(&portal, &report, "daily", true).await?;
                }
                Ok::<(), ApiError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "daily compliance snapshot");
            }
        }
    })
}

/// A snapshot in the API's shape (times in epoch seconds).
pub fn snapshot_json(s: &ComplianceSnapshotDoc) -> Value {
    json!({
        "id": s.id,
        "takenOn": s.taken_on.div_euclid(1000),
        "trigger": s.trigger,
        "overall": s.overall,
        "sections": s.sections,
    })
}

/// The history in the API's shape.
pub fn history_json(all: &[ComplianceSnapshotDoc]) -> Value {
    json!({
        "total": all.len(),
        "items": all.iter().map(snapshot_json).collect::<Vec<_>>(),
    })
}

/// The history as CSV: one row per snapshot and section (`overall` included).
pub fn history_csv(all: &[ComplianceSnapshotDoc]) -> String {
    let mut out = String::from(
        "takenOn,takenOnUtc,trigger,section,mandate,compliant,total,score,findings\r\n",
    );
    for s in all {
        let when = s.taken_on.div_euclid(1000);
        let utc = crate::wire::utc_text(s.taken_on);
        for sc in std::iter::once(&s.overall).chain(s.sections.iter()) {
            let _ = write!(
                out,
                "{when},{},{},{},{},{},{},{:.1},{}\r\n",
                rules::csv_cell(&utc),
                rules::csv_cell(&s.trigger),
                rules::csv_cell(&sc.id),
                sc.mandate,
                sc.compliant,
                sc.total,
                sc.score,
                sc.findings
            );
        }
    }
    out
}

/// The history as text: one line per snapshot.
pub fn history_text(all: &[ComplianceSnapshotDoc]) -> String {
    let mut out = String::new();
    if all.is_empty() {
        out.push_str("no compliance snapshot yet\n");
    }
    for s in all {
        let sections: Vec<String> = s
            .sections
            .iter()
            .map(|sc| format!("{} {:.1}%", sc.id, sc.score))
            .collect();
        let _ = writeln!(
            out,
            "{} [{}] overall {:.1}% ({}/{}) | {}",
            crate::wire::utc_text(s.taken_on),
            s.trigger,
            s.overall.score,
            s.overall.compliant,
            s.overall.total,
            sections.join(" | ")
        );
    }
    out
}

// ------------------------------------------------------------------------------ exceptions

/// An exception in the API's shape (times in epoch seconds).
pub fn exception_json(e: &ComplianceException) -> Value {
    json!({
        "justification": e.justification,
        "expiresOn": e.expires_on.map(|t| t.div_euclid(1000)),
        "createdBy": e.created_by,
        "createdOn": e.created_on.div_euclid(1000),
    })
}

/// A change of a collector's exception requested in an update body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionChange {
    /// Record (or replace) this exception.
    Record(ComplianceException),
    /// Remove the exception.
    Remove,
}

/// Reads `complianceException` from a collector update body: absent → `None`; `null` →
/// remove; `{"justification": "...", "expiresOn": epochSeconds?}` → record, by `actor`, for
/// a collector that reported itself as Windows (exceptions are for mandate 3: Linux
/// collectors migrate, they are not excepted).
pub fn exception_change(
    body: &Value,
    collector: &CollectorDoc,
    actor: &Actor,
    now_ms: i64,
) -> Result<Option<ExceptionChange>, ApiError> {
    let Some(v) = body.get("complianceException") else {
        return Ok(None);
    };
    let obj = match v {
        Value::Null => return Ok(Some(ExceptionChange::Remove)),
        Value::Object(o) => o,
        _ => {
            return Err(ApiError::BadRequest(
                "`complianceException` must be an object {\"justification\": \"...\", \"expiresOn\": epochSeconds} or null".into(),
            ))
        }
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "justification" | "expiresOn"))
    {
        return Err(ApiError::BadRequest(format!(
            "`complianceException.{k}` is not a known field (justification, expiresOn)"
        )));
    }
    let justification = obj
        .get("justification")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if justification.is_empty()
        || justification.len() > MAX_JUSTIFICATION
        || justification.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(ApiError::BadRequest(format!(
            "`complianceException.justification` is required: why the collector needs an administrator account (1 to {MAX_JUSTIFICATION} bytes, no control characters)"
        )));
    }
    let expires_on = match obj.get("expiresOn") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let secs = v.as_i64().ok_or_else(|| {
                ApiError::BadRequest("`complianceException.expiresOn` must be epoch seconds".into())
            })?;
            if secs == 0 {
                None
            } else {
                let ms = secs.saturating_mul(1000);
                if ms <= now_ms {
                    return Err(ApiError::BadRequest(
                        "`complianceException.expiresOn` must be in the future".into(),
                    ));
                }
                Some(ms)
            }
        }
    };
    let platform = collector
        .report
        .as_ref()
        .map(|r| r.platform.clone())
        .unwrap_or_default();
    if rules::Platform::of(&platform) != rules::Platform::Windows {
        return Err(ApiError::BadRequest(format!(
            "compliance exceptions are for Windows collectors on administrator accounts (mandate 3); collector {} reports platform `{}`: a Linux collector is migrated instead (palisade-collector migrate --to-user palisade-collector)",
            collector.id,
            if platform.is_empty() { "none yet" } else { &platform }
        )));
    }
    Ok(Some(ExceptionChange::Record(ComplianceException {
        justification: justification.to_string(),
        expires_on,
        created_by: actor.username.clone(),
        created_on: now_ms,
    })))
}

/// The audit description of an exception change.
pub fn exception_audit_text(id: i64, change: &ExceptionChange) -> String {
    match change {
        ExceptionChange::Record(e) => format!(
            "recorded a compliance exception for collector {id} (administrator account, mandate 3) {}: {:?}",
            e.expires_on
                .map(|t| format!("until {}", crate::wire::utc_text(t)))
                .unwrap_or_else(|| "without end".into()),
            e.justification
        ),
        ExceptionChange::Remove => {
            format!("removed the compliance exception of collector {id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_store::inventory::CollectorReport;

    fn collector(platform: &str) -> CollectorDoc {
        CollectorDoc {
            id: 4,
            report: Some(CollectorReport {
                platform: platform.into(),
                is_admin_account: true,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn actor() -> Actor {
        Actor {
            username: "ops".into(),
            ..Default::default()
        }
    }

    #[test]
    fn exceptions_are_validated() {
        let now = 1_000_000_000;
        let w = collector("Windows");
        let a = actor();
        assert_eq!(exception_change(&json!({}), &w, &a, now).ok(), Some(None));
        assert_eq!(
            exception_change(&json!({"complianceException": null}), &w, &a, now).ok(),
            Some(Some(ExceptionChange::Remove))
        );
        let rec = exception_change(
            &json!({"complianceException": {"justification": " legacy WMI ", "expiresOn": now / 1000 + 60}}),
            &w,
            &a,
            now,
        );
        assert!(matches!(
            rec,
            Ok(Some(ExceptionChange::Record(ComplianceException { ref justification, expires_on: Some(e), ref created_by, created_on })))
                if justification == "legacy WMI" && e == now + 60_000 && created_by == "ops" && created_on == now
        ));
        for bad in [
            json!({"complianceException": {"justification": ""}}),
            json!({"complianceException": {"justification": "x".repeat(MAX_JUSTIFICATION + 1)}}),
            json!({"complianceException": {"justification": "a\u{7}b"}}),
            json!({"complianceException": {"justification": "ok", "expiresOn": now / 1000 - 1}}),
            json!({"complianceException": {"justification": "ok", "expiresOn": "soon"}}),
            json!({"complianceException": {"justification": "ok", "until": 5}}),
            json!({"complianceException": "yes"}),
        ] {
            assert!(
                matches!(
                    exception_change(&bad, &w, &a, now),
                    Err(ApiError::BadRequest(_))
                ),
                "{bad}"
            );
        }
        let body = json!({"complianceException": {"justification": "needed"}});
        for platform in ["Linux", ""] {
            let err = exception_change(&body, &collector(platform), &a, now);
            assert!(
                matches!(&err, Err(ApiError::BadRequest(m)) if m.contains("migrate")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn history_exports() {
        let s = ComplianceSnapshotDoc {
            id: 1,
            taken_on: 86_400_000,
            trigger: "daily".into(),
            day: Some("1970-01-02".into()),
            overall: score("overall", 0, 1, 2, 50.0, 1),
            sections: vec![score("two-factor", 1, 1, 2, 50.0, 1)],
        };
        let csv = history_csv(std::slice::from_ref(&s));
        assert!(csv.contains("86400,1970-01-02 00:00:00 UTC,daily,overall,0,1,2,50.0,1\r\n"));
        assert!(csv.contains(",two-factor,1,1,2,50.0,1\r\n"));
        let v = history_json(std::slice::from_ref(&s));
        assert_eq!(v["items"][0]["takenOn"], json!(86_400));
        assert_eq!(v["items"][0]["sections"][0]["id"], json!("two-factor"));
        assert!(history_text(&[s]).contains("overall 50.0% (1/2) | two-factor 50.0%"));
        assert_eq!(history_text(&[]), "no compliance snapshot yet\n");
    }
}
