//! The token migration assistant's computation: from the API calls a token made, the
//! smallest set of privileges that covers them.
//!
//! Each recorded call (method, path, status) goes through [`crate::access::requirement`], the
//! same table the API gate authorizes every request with, so a proposed role is exactly what
//! enforcement asks for. Then:
//!
//! - a call refused with 403 is listed under [`Proposal::refused`] and not granted;
//! - a call that failed authentication (401) is only counted;
//! - a fixed requirement becomes that privilege;
//! - an object in the path (device, group, collector, alert, SDT) is resolved by the caller
//!   to the groups that hold it *now* ([`Resolve`]); the proposal grants the most specific one
//!   (the device's own group, not its ancestors, not `*`), sharing a group already granted
//!   when it covers the call at the same level;
//! - a listing needs `*` to show every item, and says so in a note;
//! - objects named only in the request body (which the audit log does not keep) are covered
//!   by `*`, with a note to narrow it by hand;
//! - each object gets the lowest level that covers all its calls (`read < ack < write <
//!   manage`), and a privilege that others already cover is dropped.
//!
//! A proposal that would be administrator in all but name is refused
//! ([`Proposal::check_mandate`]): the token mandate forbids exactly that power on a token.
//!
//! Time is an input: calls carry their own timestamps.
//!
//! ```
//! use palisade_core::access::Scope;
//! use palisade_core::token_migration::{propose, Call};
//! let calls = vec![Call::new("GET", "/santaba/rest/device/devices/7", 200, 1_000)];
//! let p = propose(&calls, &|_t: &palisade_core::access::Target| Some(Scope::HostGroups(vec![5, 1])));
//! assert_eq!(p.privilege_texts(), vec!["host_group:5:read"]);
//! ```

use crate::access::{self, Check, Requirement, Scope, Target};
use crate::privilege::{Level, Privilege};
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Days of history a proposal reads by default.
pub const DEFAULT_DAYS: i64 = 30;
/// Days an old token stays disabled, unused, before it is deleted, by default.
pub const DEFAULT_GRACE_DAYS: i64 = 14;
/// Distinct source addresses kept per call group.
const MAX_IPS: usize = 5;

/// Recorded API calls of the token that are alike (method, path and query, status, source
/// address): one call, or many aggregated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path and query as recorded.
    pub path: String,
    /// Answer status (`None`: unknown).
    pub status: Option<i64>,
    /// Source address.
    pub ip: String,
    /// How many calls.
    pub count: u64,
    /// The first, epoch ms.
    pub first_ms: i64,
    /// The last, epoch ms.
    pub last_ms: i64,
}

impl Call {
    /// One call, without source address.
    pub fn new(method: &str, path: &str, status: i64, at_ms: i64) -> Call {
        Call {
            method: method.to_string(),
            path: path.to_string(),
            status: Some(status),
            ip: String::new(),
            count: 1,
            first_ms: at_ms,
            last_ms: at_ms,
        }
    }

    fn key(&self) -> CallKey {
        CallKey {
            method: self.method.to_ascii_uppercase(),
            path: self
                .path
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// Resolves an object named in a path to the scope that decides access to it now; `None`
/// when it no longer exists. The portal implements it over its estate, exactly as the gate
/// resolves the same objects.
pub trait Resolve {
    /// The scope of `target`.
    fn scope(&self, target: &Target) -> Option<Scope>;
}

impl<F: Fn(&Target) -> Option<Scope>> Resolve for F {
    fn scope(&self, target: &Target) -> Option<Scope> {
        self(target)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallKey {
    method: String,
    path: String,
}

fn as_secs<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(ms.div_euclid(1000))
}

/// Calls of one method and path (query strings aside), summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallGroup {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// How many calls.
    pub count: u64,
    /// First call, epoch ms (`firstSeenOn`, epoch seconds, on the wire).
    #[serde(rename = "firstSeenOn", serialize_with = "as_secs")]
    pub first_seen_ms: i64,
    /// Last call, epoch ms (`lastSeenOn`, epoch seconds, on the wire).
    #[serde(rename = "lastSeenOn", serialize_with = "as_secs")]
    pub last_seen_ms: i64,
    /// Distinct source addresses, most recent first (at most five).
    pub ips: Vec<String>,
    /// Answer statuses seen.
    pub statuses: Vec<i64>,
}

/// Summarises calls by method and path, most recent first.
pub fn summarise(calls: &[&Call]) -> Vec<CallGroup> {
    let mut groups: BTreeMap<CallKey, Vec<&Call>> = BTreeMap::new();
    for c in calls {
        groups.entry(c.key()).or_default().push(c);
    }
    let mut out: Vec<CallGroup> = groups
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by_key(|c| std::cmp::Reverse(c.last_ms));
            let mut ips: Vec<String> = Vec::new();
            for c in &v {
                if !c.ip.is_empty() && !ips.contains(&c.ip) && ips.len() < MAX_IPS {
                    ips.push(c.ip.clone());
                }
            }
            let statuses: BTreeSet<i64> = v.iter().filter_map(|c| c.status).collect();
            CallGroup {
                method: k.method,
                path: k.path,
                count: v.iter().map(|c| c.count).sum(),
                first_seen_ms: v.iter().map(|c| c.first_ms).min().unwrap_or(0),
                last_seen_ms: v.iter().map(|c| c.last_ms).max().unwrap_or(0),
                ips,
                statuses: statuses.into_iter().collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.last_seen_ms
            .cmp(&a.last_seen_ms)
            .then_with(|| (&a.method, &a.path).cmp(&(&b.method, &b.path)))
    });
    out
}

/// A privilege of the proposed role and the calls it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposedPrivilege {
    /// The privilege, in LogicMonitor's shape.
    #[serde(flatten)]
    pub privilege: Privilege,
    /// `OBJECTTYPE:OBJECTID:OPERATION`.
    pub text: String,
    /// The calls it covers.
    pub covers: Vec<CallGroup>,
    /// Why it is as wide as it is, when it is `*`.
    pub notes: Vec<String>,
}

/// Calls that were refused (403): listed, not granted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedCalls {
    /// The calls.
    #[serde(flatten)]
    pub calls: CallGroup,
    /// What they would need.
    pub would_need: String,
}

/// Calls no privilege can be proposed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnresolvedCalls {
    /// The calls.
    #[serde(flatten)]
    pub calls: CallGroup,
    /// Why.
    pub reason: String,
}

/// The proposed role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    /// The smallest set of privileges covering the token's calls.
    pub privileges: Vec<ProposedPrivilege>,
    /// Calls the portal refused (403): not granted.
    pub refused: Vec<RefusedCalls>,
    /// Calls on routes or objects that cannot be mapped (unknown route, object gone).
    pub unresolved: Vec<UnresolvedCalls>,
    /// Calls that failed authentication (401), not considered further.
    pub failed_authentication: u64,
    /// Calls read.
    pub calls_considered: u64,
    /// Things the owner should know before confirming.
    pub warnings: Vec<String>,
    /// Whether the privileges are administrator in all but name.
    pub administrator_equivalent: bool,
}

/// Why no role can be made from a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MigrationRefusal {
    /// The calls need everything Palisade enforces.
    #[error("the token's calls use every privilege of the administrator role (user access, the audit log, datasources, all collector groups and all device groups at their highest level): a role granting them would be administrator in all but name, and the token mandate forbids administrator power on any token. Split the integration: give each job its own API-only user, role and token covering only the calls that job makes, then retire this token")]
    AdministratorEquivalent,
    /// Nothing to propose.
    #[error("the token made no API call the portal answered in the period read; there is nothing to propose. If nothing uses it, disable it and delete it (or read a longer period with --days)")]
    NoCalls,
}

impl Proposal {
    /// The proposed privileges.
    pub fn privilege_list(&self) -> Vec<Privilege> {
        self.privileges
            .iter()
            .map(|p| p.privilege.clone())
            .collect()
    }

    /// The proposed privileges as `OBJECTTYPE:OBJECTID:OPERATION`.
    pub fn privilege_texts(&self) -> Vec<String> {
        self.privileges.iter().map(|p| p.text.clone()).collect()
    }

    /// Whether a role may be created from the proposal.
    pub fn check_mandate(&self) -> Result<(), MigrationRefusal> {
        if self.administrator_equivalent {
            return Err(MigrationRefusal::AdministratorEquivalent);
        }
        if self.privileges.is_empty() {
            return Err(MigrationRefusal::NoCalls);
        }
        Ok(())
    }
}

/// A check some calls need, with notes on why it is wide.
#[derive(Debug, Default)]
struct Needed {
    keys: BTreeSet<CallKey>,
    notes: BTreeSet<String>,
}

fn is_wildcard(p: &Privilege) -> bool {
    p.object_id == "*" || p.object_id == "collectorgroup.*"
}

/// The object a privilege names, without its level.
fn object_of(p: &Privilege) -> (String, String) {
    (p.object_type.clone(), p.object_id.clone())
}

fn build(chosen: &BTreeMap<(String, String), Level>) -> Vec<Privilege> {
    chosen
        .iter()
        .map(|((t, id), l)| Privilege::new(t, id, l.as_str()))
        .collect()
}

/// Computes the proposal from the token's calls.
pub fn propose(calls: &[Call], resolve: &dyn Resolve) -> Proposal {
    let mut needed: BTreeMap<Check, Needed> = BTreeMap::new();
    let mut refused: BTreeMap<CallKey, (Vec<&Call>, String)> = BTreeMap::new();
    let mut unresolved: BTreeMap<CallKey, (Vec<&Call>, String)> = BTreeMap::new();
    let mut failed_authentication = 0u64;
    let mut by_key: BTreeMap<CallKey, Vec<&Call>> = BTreeMap::new();

    let mut need = |check: Check, key: &CallKey, note: Option<String>| {
        let n = needed.entry(check).or_default();
        n.keys.insert(key.clone());
        if let Some(note) = note {
            n.notes.insert(note);
        }
    };

    for call in calls {
        if call.status == Some(401) {
            failed_authentication += call.count;
            continue;
        }
        let key = call.key();
        let req = access::requirement(&call.method, &call.path);
        if call.status == Some(403) {
            let e = refused
                .entry(key)
                .or_insert_with(|| (Vec::new(), would_need(&req, resolve)));
            e.0.push(call);
            continue;
        }
        match &req {
            Requirement::Unknown => {
                let reason = format!(
                    "not an API route Palisade knows (answered {})",
                    call.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "?".into())
                );
                unresolved
                    .entry(key)
                    .or_insert_with(|| (Vec::new(), reason))
                    .0
                    .push(call);
                continue;
            }
            Requirement::Fixed(check) => need(check.clone(), &key, None),
            Requirement::Object { target, level, .. } => match resolve.scope(target) {
                Some(scope) => need(Check::new(scope, *level), &key, None),
                None => {
                    let reason = format!("{target} no longer exists; nothing is granted for it");
                    unresolved
                        .entry(key)
                        .or_insert_with(|| (Vec::new(), reason))
                        .0
                        .push(call);
                    continue;
                }
            },
            Requirement::List { listing, level } => {
                for check in listing.everything(*level) {
                    let note = format!(
                        "{} {} is a list call: it shows every one of the {} only with {}; with a narrower privilege it shows only the {} that privilege covers",
                        key.method,
                        key.path,
                        listing.noun(),
                        check.narrowest(),
                        listing.noun()
                    );
                    need(check, &key, Some(note));
                }
            }
            Requirement::Body { target, level } => {
                for check in target.everything(*level) {
                    let note = format!(
                        "{} {} names {} in its request body, which the audit log does not keep: {} covers whatever it names; narrow it to the groups the integration uses",
                        key.method,
                        key.path,
                        target.describe(),
                        check.narrowest()
                    );
                    need(check, &key, Some(note));
                }
            }
        }
        by_key.entry(call.key()).or_default().push(call);
    }

    // Choose: fixed and wildcard checks first, then specific groups, fewest candidates first.
    let mut chosen: BTreeMap<(String, String), Level> = BTreeMap::new();
    let mut order: Vec<&Check> = needed.keys().collect();
    order.sort_by_key(|c| match &c.scope {
        Scope::Setting(_) => (0, 0),
        Scope::HostGroups(g) | Scope::CollectorGroups(g) if g.is_empty() => (0, 0),
        Scope::HostGroups(g) | Scope::CollectorGroups(g) => (1, g.len()),
    });
    for check in order {
        if check.permits(&build(&chosen)) {
            continue;
        }
        let p = check.narrowest();
        let level = Level::parse(&p.operation).unwrap_or(check.level);
        let slot = chosen.entry(object_of(&p)).or_insert(level);
        if *slot < level {
            *slot = level;
        }
    }
    // Drop privileges the others already cover (specific ones first).
    let mut candidates: Vec<(String, String)> = chosen.keys().cloned().collect();
    candidates
        .sort_by_key(|(t, id)| (id == "*" || id == "collectorgroup.*", t.clone(), id.clone()));
    for key in candidates {
        let Some(level) = chosen.remove(&key) else {
            continue;
        };
        let rest = build(&chosen);
        if !needed.keys().all(|c| c.permits(&rest)) {
            chosen.insert(key, level);
        }
    }
    let final_set = build(&chosen);

    // Attribute each check to the narrowest privilege that permits it.
    let mut covers: BTreeMap<(String, String), (BTreeSet<CallKey>, BTreeSet<String>)> =
        BTreeMap::new();
    for (check, n) in &needed {
        let best = final_set
            .iter()
            .filter(|p| check.permits(std::slice::from_ref(*p)))
            .min_by_key(|p| (is_wildcard(p), Level::parse(&p.operation)));
        if let Some(p) = best {
            let e = covers.entry(object_of(p)).or_default();
            e.0.extend(n.keys.iter().cloned());
            e.1.extend(n.notes.iter().cloned());
        }
    }
    let mut privileges: Vec<ProposedPrivilege> = final_set
        .into_iter()
        .map(|p| {
            let (keys, notes) = covers.remove(&object_of(&p)).unwrap_or_default();
            let calls: Vec<&Call> = keys
                .iter()
                .flat_map(|k| by_key.get(k).cloned().unwrap_or_default())
                .collect();
            ProposedPrivilege {
                text: p.to_string(),
                privilege: p,
                covers: summarise(&calls),
                notes: notes.into_iter().collect(),
            }
        })
        .collect();
    privileges.sort_by(|a, b| {
        (&a.privilege.object_type, &a.privilege.object_id)
            .cmp(&(&b.privilege.object_type, &b.privilege.object_id))
    });

    let list = privileges
        .iter()
        .map(|p| p.privilege.clone())
        .collect::<Vec<_>>();
    let mut warnings = Vec::new();
    if access::Check::setting(crate::privilege::SettingObject::UserAccess, Level::Write)
        .permits(&list)
    {
        warnings.push(
            "setting:useraccess:write lets the token create and change users, roles (up to its own privileges) and API tokens of other users; grant it only to an integration that manages users".into(),
        );
    }
    let administrator_equivalent = access::administrator_equivalent(&list);
    let refused = refused
        .into_values()
        .map(|(calls, would_need)| RefusedCalls {
            calls: summarise(&calls)
                .into_iter()
                .next()
                .unwrap_or_else(empty_group),
            would_need,
        })
        .collect();
    let unresolved = unresolved
        .into_values()
        .map(|(calls, reason)| UnresolvedCalls {
            calls: summarise(&calls)
                .into_iter()
                .next()
                .unwrap_or_else(empty_group),
            reason,
        })
        .collect();
    Proposal {
        privileges,
        refused,
        unresolved,
        failed_authentication,
        calls_considered: calls.iter().map(|c| c.count).sum(),
        warnings,
        administrator_equivalent,
    }
}

fn empty_group() -> CallGroup {
    CallGroup {
        method: String::new(),
        path: String::new(),
        count: 0,
        first_seen_ms: 0,
        last_seen_ms: 0,
        ips: Vec::new(),
        statuses: Vec::new(),
    }
}

fn would_need(req: &Requirement, resolve: &dyn Resolve) -> String {
    match req {
        Requirement::Fixed(c) => c.to_string(),
        Requirement::Object { target, level, .. } => match resolve.scope(target) {
            Some(scope) => Check::new(scope, *level).to_string(),
            None => format!("{target} (no longer exists)"),
        },
        Requirement::List { listing, level } => listing
            .everything(*level)
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        Requirement::Body { target, level } => {
            format!("{} on {}", level.as_str(), target.describe())
        }
        Requirement::Unknown => "nothing known (not an API route Palisade knows)".into(),
    }
}

/// A name for the API-only user and the role a migration creates: `<owner>-token-<id>`,
/// reduced to the characters usernames allow.
pub fn suggested_name(owner: &str, token_id: i64) -> String {
    let base: String = owner
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let base = base.trim_matches('-');
    if base.is_empty() {
        format!("token-{token_id}")
    } else {
        format!("{base}-token-{token_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Device 7 in group 5 (under 2, under root 1); device 8 in group 6 (under 2); device 9
    /// in groups 5 and 6; collector 3 in collector group 4; alert DS1 on device 7.
    fn resolver() -> impl Fn(&Target) -> Option<Scope> {
        let mut devices: HashMap<i64, Vec<i64>> = HashMap::new();
        devices.insert(7, vec![5, 2, 1]);
        devices.insert(8, vec![6, 2, 1]);
        devices.insert(9, vec![5, 6, 2, 1]);
        move |t: &Target| match t {
            Target::Device(id) => devices.get(id).map(|g| Scope::HostGroups(g.clone())),
            Target::DeviceGroup(5) => Some(Scope::HostGroups(vec![5, 2, 1])),
            Target::DeviceGroup(2) => Some(Scope::HostGroups(vec![2, 1])),
            Target::DeviceGroup(1) => Some(Scope::HostGroups(vec![1])),
            Target::Collector(3) => Some(Scope::CollectorGroups(vec![4])),
            Target::CollectorGroup(4) => Some(Scope::CollectorGroups(vec![4])),
            Target::Alert(a) if a == "DS1" => Some(Scope::HostGroups(vec![5, 2, 1])),
            _ => None,
        }
    }

    fn call(method: &str, path: &str, status: i64, at: i64) -> Call {
        Call {
            ip: "10.0.0.1".into(),
            ..Call::new(method, &format!("/santaba/rest{path}"), status, at)
        }
    }

    #[test]
    fn aggregated_calls_count_as_many() {
        let mut c = call("GET", "/setting/admins", 200, 50);
        c.count = 7;
        c.first_ms = 10;
        let mut d = call("GET", "/setting/admins?size=5", 200, 40);
        d.count = 2;
        let p = propose(&[c, d], &resolver());
        let g = &p.privileges[0].covers[0];
        assert_eq!((g.count, g.first_seen_ms, g.last_seen_ms), (9, 10, 50));
        assert_eq!(p.calls_considered, 9);
    }

    fn texts(calls: &[Call]) -> Vec<String> {
        propose(calls, &resolver()).privilege_texts()
    }

    #[test]
    fn specific_groups_at_the_lowest_level() {
        let calls = vec![
            call("GET", "/device/devices/7", 200, 1_000),
            call("GET", "/device/devices/7/properties", 200, 2_000),
            call("POST", "/device/devices/7/properties", 200, 3_000),
            call("GET", "/device/groups/5/devices?size=50", 200, 4_000),
        ];
        // Read on group 5 is covered by write on group 5: one privilege.
        assert_eq!(texts(&calls), vec!["host_group:5:write"]);
        let p = propose(&calls, &resolver());
        let covers = &p.privileges[0].covers;
        assert_eq!(covers.len(), 4);
        let props = covers
            .iter()
            .find(|c| c.method == "POST")
            .expect("POST covered");
        assert_eq!((props.count, props.last_seen_ms), (1, 3_000));
        assert_eq!(props.path, "/santaba/rest/device/devices/7/properties");
        assert!(p.check_mandate().is_ok());
        assert!(p.refused.is_empty() && p.unresolved.is_empty());
    }

    #[test]
    fn several_devices_get_their_own_groups_not_the_common_ancestor() {
        let calls = vec![
            call("GET", "/device/devices/7", 200, 1),
            call("GET", "/device/devices/8", 200, 2),
        ];
        assert_eq!(
            texts(&calls),
            vec!["host_group:5:read", "host_group:6:read"]
        );
        // A device in both groups shares a group already granted.
        let calls = vec![
            call("GET", "/device/devices/7", 200, 1),
            call("GET", "/device/devices/9", 200, 2),
        ];
        assert_eq!(texts(&calls), vec!["host_group:5:read"]);
    }

    #[test]
    fn a_group_read_covers_its_subgroups_devices() {
        let calls = vec![
            call("GET", "/device/groups/2", 200, 1),
            call("GET", "/device/devices/7", 200, 2),
            call("GET", "/device/devices/8", 200, 3),
        ];
        assert_eq!(texts(&calls), vec!["host_group:2:read"]);
        // A higher level on a device does not widen the ancestor: the device's group gets it.
        let calls = vec![
            call("GET", "/device/groups/2", 200, 1),
            call("PATCH", "/device/devices/7", 200, 2),
        ];
        assert_eq!(
            texts(&calls),
            vec!["host_group:2:read", "host_group:5:write"]
        );
    }

    #[test]
    fn list_calls_need_the_wildcard_and_say_so() {
        let calls = vec![
            call("GET", "/setting/collector/collectors?size=50", 200, 1),
            call("GET", "/setting/collector/collectors/3", 200, 2),
        ];
        let p = propose(&calls, &resolver());
        assert_eq!(p.privilege_texts(), vec!["setting:collectorgroup.*:read"]);
        assert!(p.privileges[0].notes[0].contains("list call"));
        assert_eq!(p.privileges[0].covers.len(), 2);
        // Without the list, the specific collector group.
        let calls = vec![call("PATCH", "/setting/collector/collectors/3", 200, 2)];
        assert_eq!(texts(&calls), vec!["setting:collectorgroup.4:write"]);
        // A wildcard read and a specific write stay apart.
        let calls = vec![
            call("GET", "/device/devices", 200, 1),
            call("PATCH", "/device/devices/7", 200, 2),
            call("GET", "/device/devices/8", 200, 3),
        ];
        assert_eq!(
            texts(&calls),
            vec!["host_group:*:read", "host_group:5:write"]
        );
    }

    #[test]
    fn refused_and_failed_calls_are_not_granted() {
        let calls = vec![
            call("GET", "/device/devices/7", 200, 1),
            call("GET", "/setting/admins", 403, 2),
            call("GET", "/setting/admins", 403, 3),
            call("GET", "/setting/roles", 401, 4),
        ];
        let p = propose(&calls, &resolver());
        assert_eq!(p.privilege_texts(), vec!["host_group:5:read"]);
        assert_eq!(p.refused.len(), 1);
        assert_eq!(p.refused[0].calls.count, 2);
        assert_eq!(p.refused[0].calls.last_seen_ms, 3);
        assert_eq!(p.refused[0].would_need, "setting:useraccess:read");
        assert_eq!(p.failed_authentication, 1);
        assert_eq!(p.calls_considered, 4);
    }

    #[test]
    fn unknown_routes_and_gone_objects_are_unresolved() {
        let calls = vec![
            call("GET", "/device/devices/404", 404, 1),
            call("GET", "/nothing/here", 404, 2),
            call("GET", "/setting/accesslogs", 200, 3),
        ];
        let p = propose(&calls, &resolver());
        assert_eq!(p.privilege_texts(), vec!["setting:accesslogs:read"]);
        assert_eq!(p.unresolved.len(), 2);
        assert!(p
            .unresolved
            .iter()
            .any(|u| u.reason.contains("device 404 no longer exists")));
    }

    #[test]
    fn body_named_objects_get_the_wildcard_with_a_note() {
        let calls = vec![call("POST", "/device/devices", 200, 1)];
        let p = propose(&calls, &resolver());
        assert_eq!(p.privilege_texts(), vec!["host_group:*:manage"]);
        assert!(p.privileges[0].notes[0].contains("request body"));
    }

    #[test]
    fn settings_merge_to_the_highest_level() {
        let calls = vec![
            call("GET", "/setting/admins", 200, 1),
            call("POST", "/setting/admins", 200, 2),
            call("GET", "/setting/datasources/4/export", 200, 3),
            call("POST", "/alert/alerts/DS1/ack", 200, 4),
        ];
        let p = propose(&calls, &resolver());
        assert_eq!(
            p.privilege_texts(),
            vec![
                "host_group:5:ack",
                "setting:datasources:read",
                "setting:useraccess:write"
            ]
        );
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn every_proposal_permits_every_covered_call() {
        let calls = vec![
            call("GET", "/device/devices/7", 200, 1),
            call("DELETE", "/device/devices/9", 200, 2),
            call("GET", "/device/groups/2", 200, 3),
            call("GET", "/setting/collector/groups/4", 200, 4),
            call(
                "POST",
                "/setting/collector/collectors/3/registration",
                200,
                5,
            ),
            call("GET", "/alert/alerts/DS1", 200, 6),
            Call::new("GET", "/api/v1/labels", 200, 7),
        ];
        let r = resolver();
        let p = propose(&calls, &r);
        let set = p.privilege_list();
        for c in &calls {
            let check = match access::requirement(&c.method, &c.path) {
                Requirement::Fixed(c) => c,
                Requirement::Object { target, level, .. } => {
                    Check::new(r.scope(&target).expect("resolves"), level)
                }
                other => panic!("unexpected {other:?}"),
            };
            assert!(
                check.permits(&set),
                "{} {} not covered by {set:?}",
                c.method,
                c.path
            );
        }
        assert_eq!(
            p.privilege_texts(),
            vec![
                "host_group:*:read",
                "host_group:5:manage",
                "setting:collectorgroup.4:write"
            ]
        );
    }

    #[test]
    fn administrator_equivalent_proposals_are_refused() {
        let calls = vec![
            call("POST", "/setting/admins", 200, 1),
            call("GET", "/setting/accesslogs", 200, 2),
            call("POST", "/setting/datasources", 200, 3),
            call("POST", "/setting/collector/groups", 200, 4),
            call("POST", "/device/devices", 200, 5),
        ];
        let p = propose(&calls, &resolver());
        assert!(p.administrator_equivalent);
        assert_eq!(
            p.check_mandate(),
            Err(MigrationRefusal::AdministratorEquivalent)
        );
        assert!(MigrationRefusal::AdministratorEquivalent
            .to_string()
            .contains("administrator in all but name"));
        // Without one of them it is a (wide) custom role, not the administrator.
        let p = propose(&calls[..4], &resolver());
        assert!(!p.administrator_equivalent);
        assert!(p.check_mandate().is_ok());
    }

    #[test]
    fn no_calls_no_role() {
        let p = propose(&[], &resolver());
        assert_eq!(p.check_mandate(), Err(MigrationRefusal::NoCalls));
        let only_refused = vec![call("GET", "/setting/admins", 403, 1)];
        assert_eq!(
            propose(&only_refused, &resolver()).check_mandate(),
            Err(MigrationRefusal::NoCalls)
        );
    }

    #[test]
    fn names() {
        assert_eq!(suggested_name("admin", 3), "admin-token-3");
        assert_eq!(suggested_name("ops team@x", 4), "ops-team-x-token-4");
        assert_eq!(suggested_name("@@", 5), "token-5");
    }

    #[test]
    fn summaries_keep_recent_addresses() {
        let mut a = call("GET", "/setting/admins?size=1", 200, 5);
        a.ip = "10.0.0.2".into();
        let b = call("GET", "/setting/admins?size=2", 200, 9);
        let g = summarise(&[&a, &b]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].ips, vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!((g[0].first_seen_ms, g[0].last_seen_ms), (5, 9));
    }
}
