//! The gate's authorization: [`palisade_core::access::requirement`] for every request, its
//! objects resolved against the estate, decided by [`Check::permits`].
//!
//! The API gate calls [`enforce`] before any handler runs; the token migration assistant
//! resolves the objects of recorded calls with the same [`resolve`], so what it proposes is
//! what the gate checks. Handlers still check what only the body names (the groups of a new
//! device, the device of pushed metrics) and filter listings to what the caller may read.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::monitor::estate::{Estate, EstateCache};
use crate::portal::Portal;
use crate::AppState;
use palisade_core::access::{Check, Requirement, Scope, Target};
use palisade_core::privilege::Level;
use palisade_store::alerting::{AlertDoc, SdtDoc, SdtKind};
use palisade_store::inventory::{CollectorDoc, CollectorGroupDoc};
use palisade_store::objects;
use std::cmp::Reverse;

/// The host groups that decide access to a device, most specific first: its own groups
/// (static, then dynamic), then the groups above them, deepest first.
pub fn device_scope(estate: &Estate, id: i64) -> Option<Scope> {
    let v = estate.devices.get(&id)?;
    let mut groups = v.direct_groups();
    let mut rest: Vec<i64> = v
        .all_groups
        .iter()
        .copied()
        .filter(|g| !groups.contains(g))
        .collect();
    rest.sort_by_key(|g| {
        (
            Reverse(estate.groups.get(g).map(|n| n.ancestors.len()).unwrap_or(0)),
            *g,
        )
    });
    groups.extend(rest);
    Some(Scope::HostGroups(groups))
}

/// The host groups that decide access to a group: itself, then its ancestors upwards.
pub fn group_scope(estate: &Estate, id: i64) -> Option<Scope> {
    let n = estate.groups.get(&id)?;
    let mut groups = vec![id];
    groups.extend(n.ancestors.iter().rev().copied());
    Some(Scope::HostGroups(groups))
}

/// A collector group's scope: the group (no group: only `collectorgroup.*`).
fn collector_group_scope(group: i64) -> Scope {
    if group == 0 {
        Scope::CollectorGroups(Vec::new())
    } else {
        Scope::CollectorGroups(vec![group])
    }
}

/// The scope that decides access to an object now; `None` when it does not exist.
pub async fn resolve(
    portal: &Portal,
    estates: &EstateCache,
    target: &Target,
) -> Result<Option<Scope>, ApiError> {
    let store = portal.store.as_ref();
    Ok(match target {
        Target::Device(id) => device_scope(&*estates.get(portal).await?, *id),
        Target::DeviceGroup(id) => group_scope(&*estates.get(portal).await?, *id),
        Target::Collector(id) => {
            let c: Option<CollectorDoc> = objects::get(store, *id).await?;
            c.map(|c| collector_group_scope(c.group_id))
        }
        Target::CollectorGroup(id) => {
            let g: Option<CollectorGroupDoc> = objects::get(store, *id).await?;
            g.map(|g| collector_group_scope(g.id))
        }
        Target::Alert(raw) => {
            let Ok(id) = crate::monitor::alerts::alert_id(raw) else {
                return Ok(None);
            };
            let a: Option<AlertDoc> = objects::get(store, id).await?;
            match a {
                Some(a) => device_scope(&*estates.get(portal).await?, a.monitor_object_id),
                None => None,
            }
        }
        Target::Sdt(raw) => {
            let Ok((kind, id)) = crate::monitor::sdt::parse_id(raw) else {
                return Ok(None);
            };
            let s: Option<SdtDoc> = objects::get(store, id).await?;
            let Some(s) = s.filter(|s| kind.is_none_or(|k| k == s.kind)) else {
                return Ok(None);
            };
            match s.kind {
                SdtKind::Resource | SdtKind::DeviceDataSource => {
                    device_scope(&*estates.get(portal).await?, s.device_id)
                }
                SdtKind::ResourceGroup => {
                    group_scope(&*estates.get(portal).await?, s.device_group_id)
                }
                SdtKind::Collector => {
                    let c: Option<CollectorDoc> = objects::get(store, s.collector_id).await?;
                    Some(
                        c.map(|c| collector_group_scope(c.group_id))
                            .unwrap_or(Scope::CollectorGroups(Vec::new())),
                    )
                }
            }
        }
    })
}

/// Authorizes a request by its requirement, before the handler runs: a fixed privilege, or
/// the level on the object the path names (an object the caller cannot read is absent when
/// the route hides it). Objects that do not exist are left to the handler (404); listings
/// and objects named in the body are the handler's.
pub async fn enforce(
    state: &AppState,
    caller: &Caller,
    requirement: &Requirement,
) -> Result<(), ApiError> {
    match requirement {
        Requirement::Fixed(check) => caller.require_check(check),
        Requirement::Object {
            target,
            level,
            hidden,
        } => {
            let Some(scope) = resolve(&state.portal, &state.estate, target).await? else {
                return Ok(());
            };
            if *hidden && !Check::new(scope.clone(), Level::Read).permits(&caller.privileges) {
                return Err(ApiError::NotFound(format!("{target} not found")));
            }
            caller.require_check(&Check::new(scope, *level))
        }
        Requirement::List { .. } | Requirement::Body { .. } | Requirement::Unknown => Ok(()),
    }
}
