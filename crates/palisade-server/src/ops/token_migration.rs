//! The token migration assistant: propose the smallest role that covers what a token did,
//! replace the token with one of an API-only user holding that role, and retire the old one.
//!
//! Steps (each audited), shared by the API and `palisade token migrate`:
//!
//! 1. [`plan`]: read the token's API calls of the last N days from the audit log and compute
//!    the proposal ([`palisade_core::token_migration`]), with the objects of the calls
//!    resolved exactly as the API gate resolves them ([`crate::access::resolve`]).
//! 2. [`start`]: create the role, the API-only user and a token of the same kind (its secret
//!    returned once), in one transaction; the old token becomes *retiring* (it still works).
//! 3. [`confirm_disable`]: the owner confirms the new token works; the old one is disabled
//!    and its grace period starts (`token.migration_grace_days`, default 14). Confirming
//!    again restarts the grace period (after fixing what still used it).
//! 4. [`finish`] (run by `serve` periodically, or explicitly): once the grace period has
//!    passed and nothing used the old token since it was disabled, it is deleted; if
//!    something did, it is kept and the calls are reported (method, path, address, count).

use crate::error::ApiError;
use crate::monitor::estate::EstateCache;
use crate::ops::token_import::violation_text;
use crate::portal::{Actor, Portal};
use crate::AppState;
use palisade_core::access::{requirement, Requirement, Scope, Target};
use palisade_core::policy::{self, OwnerFacts};
use palisade_core::privilege::Privilege;
use palisade_core::secret::Secret;
use palisade_core::token_migration::{self as tm, Call, Proposal};
use palisade_store::token_migration::{
    CallAggregate, MigrationRecord, RetirementState, StartMigration, TokenImport,
};
use palisade_store::{NewRole, NewToken, NewUser, TokenRecord, TokenType, UserRecord};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const DAY_MS: i64 = 86_400_000;
/// Aggregated call rows read per proposal (distinct method, path and query, status, address).
const MAX_AGGREGATES: i64 = 50_000;
/// How often `serve` checks disabled tokens whose grace period may have passed.
pub const CHECK_EVERY: Duration = Duration::from_secs(600);
/// The first check after `serve` starts.
const FIRST_CHECK_AFTER: Duration = Duration::from_secs(3);

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

/// Whether imported tokens whose owner breaks the mandate still work at `now_ms`: until the
/// date in `token.imported_violating_until` (unset or `none`: they keep working).
pub async fn imported_violating_allowed(portal: &Portal, now_ms: i64) -> Result<bool, ApiError> {
    let v = crate::settings::get(portal, "token.imported_violating_until").await?;
    Ok(match crate::settings::parse_date_ms(&v) {
        Some(until) => now_ms < until,
        None => true,
    })
}

/// The grace period a disabled old token must stay unused before it is deleted, in days.
pub async fn grace_days(portal: &Portal) -> Result<i64, ApiError> {
    let v = crate::settings::get(portal, "token.migration_grace_days").await?;
    Ok(v.parse::<i64>().unwrap_or(tm::DEFAULT_GRACE_DAYS))
}

/// A proposal for one token.
#[derive(Debug)]
pub struct Plan {
    /// The token.
    pub token: TokenRecord,
    /// Its owner.
    pub owner: UserRecord,
    /// Days read.
    pub days: i64,
    /// Calls read from here on, epoch ms.
    pub since_ms: i64,
    /// The proposal.
    pub proposal: Proposal,
    /// Suggested API-only user name.
    pub username: String,
    /// Suggested role name.
    pub role_name: String,
    /// Why no role can be made from it.
    pub refusal: Option<String>,
    /// More distinct calls than were read.
    pub truncated: bool,
    /// The token is already being migrated.
    pub migration: Option<MigrationRecord>,
    /// Why the owner's tokens break the mandate.
    pub violates_mandate: Option<&'static str>,
}

fn calls_of(aggregates: &[CallAggregate]) -> Vec<Call> {
    aggregates
        .iter()
        .map(|a| Call {
            method: a.method.clone(),
            path: a.path.clone(),
            status: a.status,
            ip: a.ip.clone(),
            count: u64::try_from(a.count).unwrap_or(0),
            first_ms: a.first_on,
            last_ms: a.last_on,
        })
        .collect()
}

async fn token_and_owner(
    portal: &Portal,
    token_id: i64,
) -> Result<(TokenRecord, UserRecord), ApiError> {
    let token = portal
        .store
        .get_token(token_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("API token {token_id} not found")))?;
    let owner = portal
        .store
        .get_user(token.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the owner of API token {token_id}")))?;
    Ok((token, owner))
}

fn numbered(base: &str, n: u32) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}-{n}")
    }
}

/// `base`, or `base-2`, `base-3`, ... whichever no user has.
async fn free_username(portal: &Portal, base: &str) -> Result<String, ApiError> {
    for n in 1..100 {
        let name = numbered(base, n);
        if portal.store.get_user_by_name(&name).await?.is_none() {
            return Ok(name);
        }
    }
    Err(ApiError::Conflict(format!(
        "no free username like `{base}`; pass one explicitly"
    )))
}

/// `base`, or `base-2`, `base-3`, ... whichever no role has.
async fn free_role_name(portal: &Portal, base: &str) -> Result<String, ApiError> {
    for n in 1..100 {
        let name = numbered(base, n);
        if portal.store.get_role_by_name(&name).await?.is_none() {
            return Ok(name);
        }
    }
    Err(ApiError::Conflict(format!(
        "no free role name like `{base}`; pass one explicitly"
    )))
}

/// Reads the token's calls and proposes the smallest role covering them.
pub async fn plan(
    portal: &Portal,
    estates: &EstateCache,
    token_id: i64,
    days: i64,
) -> Result<Plan, ApiError> {
    if !(1..=3650).contains(&days) {
        return Err(ApiError::BadRequest("days must be from 1 to 3650".into()));
    }
    let (token, owner) = token_and_owner(portal, token_id).await?;
    if token.kind == TokenType::Widget {
        return Err(ApiError::BadRequest(
            "a widget token is already read-only and scoped to one dashboard: revoke it and issue another instead of migrating it".into(),
        ));
    }
    let roles = portal.store.list_roles().await?;
    let facts = Portal::owner_facts(&owner, &roles);
    let since_ms = portal.now() - days * DAY_MS;
    let aggregates = portal
        .store
        .token_calls(token_id, since_ms, 0, MAX_AGGREGATES)
        .await?;
    let truncated = aggregates.len() as i64 >= MAX_AGGREGATES;
    let calls = calls_of(&aggregates);
    // Resolve every object the calls name, as the gate does.
    let mut targets: BTreeSet<Target> = BTreeSet::new();
    for c in &calls {
        if let Requirement::Object { target, .. } = requirement(&c.method, &c.path) {
            targets.insert(target);
        }
    }
    let mut scopes: BTreeMap<Target, Option<Scope>> = BTreeMap::new();
    for t in targets {
        let s = crate::access::resolve(portal, estates, &t).await?;
        scopes.insert(t, s);
    }
    let resolver = |t: &Target| scopes.get(t).cloned().flatten();
    let proposal = tm::propose(&calls, &resolver);
    let refusal = proposal.check_mandate().err().map(|r| r.to_string());
    let base = tm::suggested_name(&owner.username, token_id);
    let username = free_username(portal, &base).await?;
    let role_name = free_role_name(portal, &base).await?;
    let migration = portal.store.get_token_migration(token_id).await?;
    Ok(Plan {
        token,
        owner,
        days,
        since_ms,
        proposal,
        username,
        role_name,
        refusal,
        truncated,
        migration,
        violates_mandate: policy::mandate_violation(&facts).map(violation_text),
    })
}

fn kind_str(k: TokenType) -> &'static str {
    match k {
        TokenType::Lmv1 => "lmv1",
        TokenType::Bearer => "bearer",
        TokenType::Widget => "widget",
    }
}

/// A plan as JSON (the API answer and `--dry-run`).
pub fn plan_json(p: &Plan) -> Value {
    json!({
        "tokenId": p.token.id,
        "accessId": p.token.access_id,
        "type": kind_str(p.token.kind),
        "adminId": p.owner.id,
        "adminName": p.owner.username,
        "violatesMandate": p.violates_mandate,
        "days": p.days,
        "since": secs(p.since_ms),
        "callsConsidered": p.proposal.calls_considered,
        "truncated": p.truncated,
        "suggestedRoleName": p.role_name,
        "suggestedUsername": p.username,
        "privileges": p.proposal.privileges,
        "refused": p.proposal.refused,
        "unresolved": p.proposal.unresolved,
        "failedAuthentication": p.proposal.failed_authentication,
        "warnings": p.proposal.warnings,
        "administratorEquivalent": p.proposal.administrator_equivalent,
        "refusal": p.refusal,
        "canConfirm": p.refusal.is_none() && p.migration.is_none(),
        "migration": p.migration.as_ref().map(|m| migration_json(m, Some(&p.token), None)),
    })
}

/// What the owner may choose when confirming.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// Days of calls to read (default 30).
    pub days: Option<i64>,
    /// The role's name (default: the suggestion).
    pub role_name: Option<String>,
    /// The API-only user's name (default: the suggestion).
    pub username: Option<String>,
    /// The privileges the owner saw (`OBJECTTYPE:OBJECTID:OPERATION`); when given, the start
    /// is refused if the proposal has changed since.
    pub expect: Option<Vec<String>>,
}

/// A started migration, with the new token's secret (shown once).
#[derive(Debug)]
pub struct Started {
    /// The plan it was made from.
    pub plan: Plan,
    /// The migration.
    pub record: MigrationRecord,
    /// The new token.
    pub token: TokenRecord,
    /// Its secret.
    pub secret: Secret<String>,
    /// The new API-only user.
    pub username: String,
    /// The new role.
    pub role_name: String,
}

/// Creates the role, the API-only user and the replacement token; the old token becomes
/// retiring. `grantor`, when given, must hold every proposed privilege itself (an API caller
/// cannot hand out what it does not have); the CLI passes `None`.
pub async fn start(
    portal: &Portal,
    estates: &EstateCache,
    actor: &Actor,
    grantor: Option<&crate::auth::Caller>,
    token_id: i64,
    req: StartRequest,
) -> Result<Started, ApiError> {
    let plan = plan(
        portal,
        estates,
        token_id,
        req.days.unwrap_or(tm::DEFAULT_DAYS),
    )
    .await?;
    if let Some(m) = &plan.migration {
        return Err(ApiError::Conflict(format!(
            "API token {token_id} is already being migrated (state {}); see GET /setting/admins/apitokens/{token_id}/migration",
            m.state.as_str()
        )));
    }
    plan.proposal.check_mandate()?;
    let privileges: Vec<Privilege> = plan.proposal.privilege_list();
    if let Some(expect) = &req.expect {
        let mut want: Vec<String> = expect.iter().map(|s| s.trim().to_string()).collect();
        want.sort();
        let mut have = plan.proposal.privilege_texts();
        have.sort();
        if want != have {
            return Err(ApiError::Conflict(format!(
                "the proposal changed since it was shown (now: {}); review it again",
                have.join(", ")
            )));
        }
    }
    if let Some(caller) = grantor {
        caller.require_covers(privileges.iter())?;
    }
    let username = req
        .username
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| plan.username.clone());
    let valid = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    if !valid {
        return Err(ApiError::BadRequest(
            "username must be 1 to 64 characters of letters, digits and . _ @ + -".into(),
        ));
    }
    let role_name = req
        .role_name
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| plan.role_name.clone());
    if role_name.len() > 255 || role_name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the role name must be at most 255 characters without control characters".into(),
        ));
    }
    let now = portal.now();
    let old = &plan.token;
    let owner = &plan.owner;
    let minted = super::tokens::mint(portal, old.kind);
    let kind_label = match old.kind {
        TokenType::Lmv1 => "LMv1",
        TokenType::Bearer => "Bearer",
        TokenType::Widget => "widget",
    };
    let texts = plan.proposal.privilege_texts().join(", ");
    let grace = grace_days(portal).await?;
    let data = json!({
        "oldAccessId": old.access_id,
        "type": kind_str(old.kind),
        "ownerId": owner.id,
        "ownerName": owner.username,
        "username": username,
        "roleName": role_name,
        "privileges": plan.proposal.privilege_texts(),
        "days": plan.days,
        "callsConsidered": plan.proposal.calls_considered,
        "startedBy": actor.username,
    });
    let start = StartMigration {
        old_token_id: old.id,
        role: NewRole {
            name: role_name.clone(),
            description: format!(
                "Least-privilege role for API token {} of {}, proposed by the token migration assistant from its calls of the last {} days",
                old.id, owner.username, plan.days
            ),
            privileges: privileges.clone(),
            builtin: false,
            two_fa_required: false,
            created_on: now,
        },
        user: NewUser {
            username: username.clone(),
            email: owner.email.clone(),
            note: format!(
                "API-only user replacing API token {} of {} (token migration assistant)",
                old.id, owner.username
            ),
            status: "active".into(),
            apionly: true,
            sms_email_format: "sms".into(),
            contact_method: "email".into(),
            created_by: actor.username.clone(),
            created_on: now,
            auth_source: "local".into(),
            ..Default::default()
        },
        token: NewToken {
            dashboard_id: None,
            user_id: 0,
            kind: minted.kind,
            access_id: minted.access_id.clone(),
            access_key_enc: minted.access_key_enc,
            bearer_hash: minted.bearer_hash,
            note: format!("replaces API token {} of {}", old.id, owner.username),
            created_by: actor.username.clone(),
            created_on: now,
            expires_on: old.expires_on,
        },
        grace_days: grace,
        data,
    };
    let audit = vec![
        actor.event(
            now,
            "role.create",
            format!(
                "Added role {role_name} (id {{roleId}}) with privileges [{texts}] for the migration of API token {}",
                old.id
            ),
        ),
        actor.event(
            now,
            "user.create",
            format!(
                "Added API-only user {username} (id {{userId}}) with role ids [{{roleId}}] for the migration of API token {}",
                old.id
            ),
        ),
        actor.event(
            now,
            "token.create",
            format!(
                "Created {kind_label} API token {{tokenId}} (access id {}) for user {username} (id {{userId}}), replacing API token {}",
                minted.access_id, old.id
            ),
        ),
        actor.event(
            now,
            "token.migration.start",
            format!(
                "API token {} (access id {}) of {} is retiring: replaced by token {{tokenId}} of API-only user {username} with role {role_name} [{texts}], proposed from {} calls of the last {} days",
                old.id, old.access_id, owner.username, plan.proposal.calls_considered, plan.days
            ),
        ),
    ];
    let proof = policy::check_token_owner(&OwnerFacts {
        is_support: false,
        holds_administrator: false,
        active: true,
    })
    .map_err(|r| ApiError::Forbidden(r.to_string()))?;
    let started = portal
        .store
        .start_token_migration(proof, start, audit)
        .await?;
    Ok(Started {
        plan,
        record: started.record,
        token: started.token,
        secret: minted.secret,
        username: started.user.username,
        role_name: started.role.name,
    })
}

/// The answer to a started migration: the new token's secret is in it, once.
pub fn started_json(s: &Started) -> Value {
    let mut token = json!({
        "id": s.token.id,
        "adminId": s.token.user_id,
        "adminName": s.username,
        "accessId": s.token.access_id,
        "type": kind_str(s.token.kind),
        "accessKey": s.secret.expose(),
    });
    if s.token.kind == TokenType::Bearer {
        token["bearerToken"] = json!(s.secret.expose());
    }
    json!({
        "migration": migration_json(&s.record, Some(&s.plan.token), Some(&s.token)),
        "role": {"id": s.record.role_id, "name": s.role_name, "privileges": s.plan.proposal.privileges},
        "user": {"id": s.record.new_user_id, "username": s.username, "apionly": true},
        "token": token,
    })
}

async fn migration_of(portal: &Portal, token_id: i64) -> Result<MigrationRecord, ApiError> {
    portal
        .store
        .get_token_migration(token_id)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "API token {token_id} is not being migrated (start with `palisade token migrate {token_id}`)"
            ))
        })
}

/// The owner confirms the new token works: the old one is disabled and its grace period
/// starts. On a token already disabled, the grace period starts again (after fixing what
/// still used it).
pub async fn confirm_disable(
    portal: &Portal,
    actor: &Actor,
    token_id: i64,
) -> Result<MigrationRecord, ApiError> {
    let m = migration_of(portal, token_id).await?;
    let grace = grace_days(portal).await?;
    let description = match m.state {
        RetirementState::Retiring => format!(
            "Disabled API token {token_id}, replaced by token {}: it is deleted once it has gone unused for {grace} days",
            m.new_token_id.unwrap_or_default()
        ),
        RetirementState::Disabled => format!(
            "Restarted the grace period of disabled API token {token_id} ({grace} days without use before it is deleted)"
        ),
        RetirementState::Deleted => {
            return Err(ApiError::Conflict(format!(
                "API token {token_id} was already deleted"
            )))
        }
    };
    let action = match m.state {
        RetirementState::Retiring => "token.migration.disable",
        _ => "token.migration.regrace",
    };
    let audit = actor.event(portal.now(), action, description);
    // A new grace period starts without the previous one's report.
    let mut data = m.data.clone();
    if let Some(obj) = data.as_object_mut() {
        obj.remove("usedDuringGrace");
    }
    Ok(portal
        .store
        .disable_migrated_token(token_id, portal.now(), grace, Some(data), audit)
        .await?)
}

/// What a grace-period check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still retiring: the owner has not confirmed yet.
    Retiring,
    /// Disabled, unused so far; deleted after this time (epoch ms).
    Waiting(i64),
    /// Used after it was disabled: kept; these calls still use it.
    Kept(Vec<tm::CallGroup>),
    /// Deleted now or before.
    Deleted,
}

/// Checks a disabled old token: deletes it once its grace period passed without any use
/// since it was disabled; if something used it, keeps it and records what.
pub async fn finish(portal: &Portal, actor: &Actor, token_id: i64) -> Result<Outcome, ApiError> {
    let m = migration_of(portal, token_id).await?;
    let (disabled_on, after) = match (m.state, m.disabled_on, m.disabled_seq) {
        (RetirementState::Retiring, _, _) => return Ok(Outcome::Retiring),
        (RetirementState::Deleted, _, _) => return Ok(Outcome::Deleted),
        (RetirementState::Disabled, Some(on), Some(seq)) => (on, seq),
        _ => {
            return Err(ApiError::Internal(format!(
                "migration of token {token_id} is disabled without a time"
            )))
        }
    };
    let now = portal.now();
    let aggregates = portal
        .store
        .token_calls(token_id, 0, after, MAX_AGGREGATES)
        .await?;
    if !aggregates.is_empty() {
        let calls = calls_of(&aggregates);
        let refs: Vec<&Call> = calls.iter().collect();
        let groups = tm::summarise(&refs);
        let count: u64 = groups.iter().map(|g| g.count).sum();
        let last = groups.iter().map(|g| g.last_seen_ms).max().unwrap_or(0);
        let previous = m
            .data
            .get("usedDuringGrace")
            .and_then(|u| u.get("count"))
            .and_then(Value::as_u64);
        let mut data = m.data.clone();
        if let Some(obj) = data.as_object_mut() {
            obj.insert(
                "usedDuringGrace".into(),
                json!({"count": count, "lastSeenOn": secs(last), "calls": groups}),
            );
        }
        // Audited when something new used it, not at every periodic check.
        let audit = (previous != Some(count)).then(|| {
            let what: Vec<String> = groups
                .iter()
                .take(5)
                .map(|g| {
                    format!(
                        "{} {} x{} from {}",
                        g.method,
                        g.path,
                        g.count,
                        g.ips.join(", ")
                    )
                })
                .collect();
            actor.event(
                now,
                "token.migration.kept",
                format!(
                    "Kept disabled API token {token_id}: used {count} time(s) since it was disabled ({}); find and switch what still uses it, then confirm disabling again to restart the grace period",
                    what.join("; ")
                ),
            )
        });
        portal
            .store
            .note_migration_check(token_id, now, data, audit)
            .await?;
        return Ok(Outcome::Kept(groups));
    }
    let delete_after = disabled_on + m.grace_days * DAY_MS;
    if now < delete_after {
        portal
            .store
            .note_migration_check(token_id, now, m.data.clone(), None)
            .await?;
        return Ok(Outcome::Waiting(delete_after));
    }
    let access_id = m
        .data
        .get("oldAccessId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let audit = actor.event(
        now,
        "token.migration.delete",
        format!(
            "Deleted API token {token_id} (access id {access_id}): unused for {} days since it was disabled; replaced by token {}",
            m.grace_days,
            m.new_token_id.unwrap_or_default()
        ),
    );
    match portal
        .store
        .delete_migrated_token(token_id, now, audit)
        .await
    {
        Ok(_) => Ok(Outcome::Deleted),
        // Used between the check and the deletion: the next check reports it.
        Err(palisade_store::StoreError::InUse(_)) => Ok(Outcome::Waiting(now)),
        Err(e) => Err(e.into()),
    }
}

/// Runs [`finish`] for every disabled old token (the periodic check of `serve`).
pub async fn finish_all(portal: &Portal, actor: &Actor) -> Result<Vec<(i64, Outcome)>, ApiError> {
    let mut out = Vec::new();
    for m in portal.store.list_token_migrations().await? {
        if m.state == RetirementState::Disabled {
            out.push((m.old_token_id, finish(portal, actor, m.old_token_id).await?));
        }
    }
    Ok(out)
}

/// Starts the periodic check in `serve`.
pub fn start_checks(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_CHECK_AFTER).await;
        let mut interval = tokio::time::interval(CHECK_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(state) = weak.upgrade() else { break };
            let actor = Actor::system("TokenRetirementCheck");
            match finish_all(&state.portal, &actor).await {
                Ok(done) => {
                    for (id, o) in done {
                        match o {
                            Outcome::Deleted => {
                                tracing::info!(token_id = id, "deleted a retired API token")
                            }
                            Outcome::Kept(g) => tracing::warn!(
                                token_id = id,
                                calls = g.iter().map(|g| g.count).sum::<u64>(),
                                "a disabled, retiring API token is still used; kept"
                            ),
                            _ => {}
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "token retirement check failed"),
            }
        }
    });
}

/// A migration's status as JSON (the token listing's `retirement`, the status endpoint).
pub fn migration_json(
    m: &MigrationRecord,
    old: Option<&TokenRecord>,
    new: Option<&TokenRecord>,
) -> Value {
    let since = match m.state {
        RetirementState::Retiring => m.started_on,
        RetirementState::Disabled => m.disabled_on.unwrap_or(m.started_on),
        RetirementState::Deleted => m.deleted_on.unwrap_or(m.started_on),
    };
    let used = m.data.get("usedDuringGrace").cloned();
    let delete_after = match (m.state, m.disabled_on) {
        (RetirementState::Disabled, Some(d)) if used.is_none() => {
            Some(secs(d + m.grace_days * DAY_MS))
        }
        _ => None,
    };
    let next = match (m.state, used.is_some()) {
        (RetirementState::Retiring, _) => "confirm-disable",
        (RetirementState::Disabled, true) => "switch-remaining-users-then-confirm-disable",
        (RetirementState::Disabled, false) => "wait-for-grace-period",
        (RetirementState::Deleted, _) => "done",
    };
    let field = |k: &str| m.data.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "tokenId": m.old_token_id,
        "state": m.state.as_str(),
        "replacedBy": m.new_token_id,
        "since": secs(since),
        "startedOn": secs(m.started_on),
        "disabledOn": m.disabled_on.map(secs),
        "deletedOn": m.deleted_on.map(secs),
        "graceDays": m.grace_days,
        "deleteAfter": delete_after,
        "checkedOn": m.checked_on.map(secs),
        "usedDuringGrace": used,
        "next": next,
        "newUserId": m.new_user_id,
        "newUsername": field("username"),
        "roleId": m.role_id,
        "roleName": field("roleName"),
        "privileges": field("privileges"),
        "type": field("type"),
        "oldAccessId": field("oldAccessId"),
        "ownerId": field("ownerId"),
        "ownerName": field("ownerName"),
        "oldToken": old.map(|t| json!({
            "exists": true,
            "status": t.status,
            "lastUsedOn": t.last_used_on.map(secs).unwrap_or(0),
            "lastAuthIp": t.last_auth_ip.clone().unwrap_or_default(),
        })).unwrap_or_else(|| json!({"exists": false})),
        "newToken": new.map(|t| json!({
            "id": t.id,
            "status": t.status,
            "lastUsedOn": t.last_used_on.map(secs).unwrap_or(0),
            "lastAuthIp": t.last_auth_ip.clone().unwrap_or_default(),
        })),
    })
}

/// The status of a token's migration, with both tokens' last use.
pub async fn status(portal: &Portal, token_id: i64) -> Result<Value, ApiError> {
    let m = migration_of(portal, token_id).await?;
    let old = portal.store.get_token(token_id).await?;
    let new = match m.new_token_id {
        Some(id) => portal.store.get_token(id).await?,
        None => None,
    };
    Ok(migration_json(&m, old.as_ref(), new.as_ref()))
}

/// What the token listing adds to each token: import flags, the mandate, retirement.
#[derive(Debug, Default)]
pub struct TokenFlags {
    imports: BTreeMap<i64, TokenImport>,
    retiring: BTreeMap<i64, MigrationRecord>,
    replaces: BTreeMap<i64, i64>,
}

impl TokenFlags {
    /// Loads them.
    pub async fn load(portal: &Portal) -> Result<TokenFlags, ApiError> {
        let imports = portal
            .store
            .list_token_imports()
            .await?
            .into_iter()
            .map(|i| (i.token_id, i))
            .collect();
        let mut retiring = BTreeMap::new();
        let mut replaces = BTreeMap::new();
        for m in portal.store.list_token_migrations().await? {
            if let Some(n) = m.new_token_id {
                replaces.insert(n, m.old_token_id);
            }
            retiring.insert(m.old_token_id, m);
        }
        Ok(TokenFlags {
            imports,
            retiring,
            replaces,
        })
    }

    /// Adds `imported`, `importedOn`, `violatesMandate`, `retirement` and `replaces` to a
    /// rendered token.
    pub fn annotate(&self, v: &mut Value, t: &TokenRecord, owner: Option<&OwnerFacts>) {
        let Some(obj) = v.as_object_mut() else { return };
        let import = self.imports.get(&t.id);
        obj.insert("imported".into(), json!(import.is_some()));
        obj.insert(
            "importedOn".into(),
            json!(import.map(|i| secs(i.imported_on)).unwrap_or(0)),
        );
        obj.insert(
            "violatesMandate".into(),
            json!(owner
                .and_then(policy::mandate_violation)
                .map(violation_text)),
        );
        obj.insert(
            "retirement".into(),
            self.retiring
                .get(&t.id)
                .map(|m| {
                    let full = migration_json(m, Some(t), None);
                    json!({
                        "state": full["state"],
                        "replacedBy": full["replacedBy"],
                        "since": full["since"],
                        "graceDays": full["graceDays"],
                        "deleteAfter": full["deleteAfter"],
                        "usedDuringGrace": full["usedDuringGrace"]["count"],
                        "next": full["next"],
                    })
                })
                .unwrap_or(Value::Null),
        );
        obj.insert("replaces".into(), json!(self.replaces.get(&t.id)));
    }
}
