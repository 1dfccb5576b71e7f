//! The estate: device groups and devices resolved into what the API, the collector protocol
//! and alerting need — full group paths, dynamic group membership, inherited properties and
//! the collector that monitors each device.
//!
//! Resolution order of a device's properties, the nearer level winning: the groups on the
//! paths from the root to each static group (shallower first), then dynamic groups, then
//! the device's own custom properties; `system.*` properties are set by Palisade and win
//! over everything. Dynamic groups (`appliesTo`) are evaluated against the device's system
//! properties, its own properties and what it inherits through its static groups, so that
//! membership never depends on itself.
//!
//! A snapshot is rebuilt from the store when this process changed the estate, and at the
//! latest every few seconds (changes made by another portal instance).

use crate::error::ApiError;
use crate::portal::Portal;
use palisade_core::applies_to;
use palisade_core::failover::{self, CollectorState};
use palisade_store::inventory::{CollectorDoc, DeviceDoc, DeviceGroupDoc, Property};
use palisade_store::objects::{self, ObjectQuery};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The id of the root group.
pub const ROOT_GROUP: i64 = 1;

/// How long a snapshot is trusted without a local change.
const MAX_AGE: Duration = Duration::from_secs(5);

/// Where a resolved property comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Set by Palisade.
    System,
    /// Set on the device (or group) itself.
    Custom,
    /// Inherited from a group.
    Inherited(i64),
}

/// A resolved property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Name as written at the winning level.
    pub name: String,
    /// Value (sealed form for credentials).
    pub value: String,
    /// Whether `value` is sealed.
    pub sealed: bool,
    /// Where it comes from.
    pub source: Source,
}

/// A group with its place in the tree.
#[derive(Debug, Clone)]
pub struct GroupNode {
    /// The stored group.
    pub doc: DeviceGroupDoc,
    /// `a/b/c` (the root's is empty).
    pub full_path: String,
    /// Ancestors from the root down to the parent.
    pub ancestors: Vec<i64>,
    /// The parsed `appliesTo` of a dynamic group.
    pub applies_to: Option<applies_to::Expr>,
}

/// A device resolved.
#[derive(Debug, Clone)]
pub struct DeviceView {
    /// The stored device.
    pub doc: DeviceDoc,
    /// Dynamic groups it belongs to.
    pub dynamic_groups: Vec<i64>,
    /// Every group it is in, directly or below: static, dynamic and their ancestors.
    pub all_groups: BTreeSet<i64>,
    /// Resolved properties by lower-case name.
    pub properties: BTreeMap<String, Resolved>,
    /// The collector that monitors it now (0: none): its assigned collector, or another
    /// one while that is down ([`palisade_core::failover`]).
    pub collector_id: i64,
    /// The collector it is assigned (its own choice, else the nearest group default).
    pub assigned_collector_id: i64,
}

impl DeviceView {
    /// A property's value (not for credentials: those are sealed).
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties
            .get(&name.to_ascii_lowercase())
            .filter(|p| !p.sealed)
            .map(|p| p.value.as_str())
    }

    /// The direct groups, static then dynamic (LogicMonitor's `hostGroupIds`).
    pub fn direct_groups(&self) -> Vec<i64> {
        let mut g = self.doc.group_ids.clone();
        for d in &self.dynamic_groups {
            if !g.contains(d) {
                g.push(*d);
            }
        }
        g
    }
}

/// One snapshot of the estate.
#[derive(Debug, Clone, Default)]
pub struct Estate {
    /// Groups by id.
    pub groups: BTreeMap<i64, GroupNode>,
    /// Devices by id.
    pub devices: BTreeMap<i64, DeviceView>,
    /// Device ids by lower-case display name (unique).
    pub by_display_name: std::collections::HashMap<String, i64>,
    /// The host name each collector reports, by collector id.
    pub collector_hosts: BTreeMap<i64, String>,
    /// Each collector's health and failover settings.
    pub collectors: Vec<CollectorState>,
    /// The devices of collectors' own hosts (they never fail over).
    pub collector_devices: BTreeSet<i64>,
    /// How long a silent collector counts as up.
    pub down_after_ms: i64,
}

/// What an `appliesTo` expression reads of a property: its value, or for a credential the
/// mask, so that `snmp.community` (present) holds while its value stays unreadable.
pub fn applies_to_value(p: Option<&Resolved>) -> Option<String> {
    p.map(|p| {
        if p.sealed {
            palisade_core::property::MASK.to_string()
        } else {
            p.value.clone()
        }
    })
}

fn is_loopback_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n == "localhost"
        || n.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn system_properties(d: &DeviceDoc, groups: &BTreeMap<i64, GroupNode>) -> Vec<(String, String)> {
    let paths: Vec<&str> = d
        .group_ids
        .iter()
        .filter_map(|g| groups.get(g).map(|n| n.full_path.as_str()))
        .collect();
    vec![
        ("system.hostname".into(), d.name.clone()),
        ("system.displayname".into(), d.display_name.clone()),
        ("system.deviceId".into(), d.id.to_string()),
        ("system.staticgroups".into(), paths.join(",")),
        ("system.description".into(), d.description.clone()),
    ]
}

impl Estate {
    /// Resolves groups and devices.
    pub fn build(
        groups: Vec<DeviceGroupDoc>,
        devices: Vec<DeviceDoc>,
        collectors: &[CollectorDoc],
        now: i64,
        down_after_ms: i64,
    ) -> Estate {
        let collector_hosts = collectors
            .iter()
            .filter_map(|c| c.report.as_ref().map(|r| (c.id, r.hostname.clone())))
            .collect();
        let collector_devices = collectors
            .iter()
            .map(|c| c.device_id)
            .filter(|d| *d != 0)
            .collect();
        let collectors = collectors
            .iter()
            .map(|c| CollectorState {
                id: c.id,
                group_id: c.group_id,
                backup_id: c.backup_agent_id,
                health: super::collectors::health(c, now, down_after_ms),
            })
            .collect();
        let by_id: BTreeMap<i64, DeviceGroupDoc> = groups.into_iter().map(|g| (g.id, g)).collect();
        let mut nodes = BTreeMap::new();
        for (id, g) in &by_id {
            let mut ancestors = Vec::new();
            let mut names = vec![g.name.clone()];
            let mut cur = g.parent_id;
            // Bounded walk: a corrupt cycle ends instead of looping.
            while cur != 0 && ancestors.len() < 64 {
                match by_id.get(&cur) {
                    Some(p) => {
                        ancestors.push(cur);
                        if cur != ROOT_GROUP {
                            names.push(p.name.clone());
                        }
                        cur = p.parent_id;
                    }
                    None => break,
                }
            }
            ancestors.reverse();
            names.reverse();
            let full_path = if *id == ROOT_GROUP {
                String::new()
            } else {
                names.join("/")
            };
            let applies_to = if g.applies_to.trim().is_empty() {
                None
            } else {
                applies_to::parse(&g.applies_to).ok()
            };
            nodes.insert(
                *id,
                GroupNode {
                    doc: g.clone(),
                    full_path,
                    ancestors,
                    applies_to,
                },
            );
        }
        let mut estate = Estate {
            groups: nodes,
            devices: BTreeMap::new(),
            by_display_name: Default::default(),
            collector_hosts,
            collectors,
            collector_devices,
            down_after_ms,
        };
        for d in devices {
            let view = estate.resolve(d);
            estate
                .by_display_name
                .insert(view.doc.display_name.to_lowercase(), view.doc.id);
            estate.devices.insert(view.doc.id, view);
        }
        estate
    }

    fn chain(&self, group: i64) -> Vec<i64> {
        match self.groups.get(&group) {
            Some(n) => {
                let mut c = n.ancestors.clone();
                c.push(group);
                c
            }
            None => Vec::new(),
        }
    }

    fn layer(props: &mut BTreeMap<String, Resolved>, list: &[Property], source: Source) {
        for p in list {
            props.insert(
                p.name.to_ascii_lowercase(),
                Resolved {
                    name: p.name.clone(),
                    value: p.value.clone(),
                    sealed: p.sealed,
                    source: source.clone(),
                },
            );
        }
    }

    fn resolve(&self, doc: DeviceDoc) -> DeviceView {
        // Static groups and their ancestors, shallower first.
        let mut static_chain: Vec<i64> = Vec::new();
        for g in &doc.group_ids {
            for c in self.chain(*g) {
                if !static_chain.contains(&c) {
                    static_chain.push(c);
                }
            }
        }
        if !static_chain.contains(&ROOT_GROUP) {
            static_chain.insert(0, ROOT_GROUP);
        }
        static_chain.sort_by_key(|g| self.groups.get(g).map(|n| n.ancestors.len()).unwrap_or(0));
        let mut props = BTreeMap::new();
        for g in &static_chain {
            if let Some(n) = self.groups.get(g) {
                Self::layer(&mut props, &n.doc.properties, Source::Inherited(*g));
            }
        }
        Self::layer(&mut props, &doc.properties, Source::Custom);
        let system = system_properties(&doc, &self.groups);
        for (k, v) in &system {
            props.insert(
                k.to_ascii_lowercase(),
                Resolved {
                    name: k.clone(),
                    value: v.clone(),
                    sealed: false,
                    source: Source::System,
                },
            );
        }
        // Dynamic groups, evaluated on what is known without them.
        let mut dynamic = Vec::new();
        for (id, n) in &self.groups {
            if let Some(expr) = &n.applies_to {
                let lookup = |name: &str| applies_to_value(props.get(&name.to_ascii_lowercase()));
                if expr.matches(&lookup) {
                    dynamic.push(*id);
                }
            }
        }
        let mut all: BTreeSet<i64> = static_chain.iter().copied().collect();
        let mut with_dynamic = BTreeMap::new();
        for g in &static_chain {
            if let Some(n) = self.groups.get(g) {
                Self::layer(&mut with_dynamic, &n.doc.properties, Source::Inherited(*g));
            }
        }
        for g in &dynamic {
            for c in self.chain(*g) {
                all.insert(c);
                if let Some(n) = self.groups.get(&c) {
                    Self::layer(&mut with_dynamic, &n.doc.properties, Source::Inherited(c));
                }
            }
        }
        Self::layer(&mut with_dynamic, &doc.properties, Source::Custom);
        for (k, v) in system {
            with_dynamic.insert(
                k.to_ascii_lowercase(),
                Resolved {
                    name: k,
                    value: v,
                    sealed: false,
                    source: Source::System,
                },
            );
        }
        // The collector: the device's own choice, else the nearest group default; another
        // one while that is down.
        let mut assigned = doc.preferred_collector_id;
        if assigned == 0 {
            let mut candidates: Vec<i64> = all.iter().copied().collect();
            candidates
                .sort_by_key(|g| std::cmp::Reverse(self.groups.get(g).map(|n| n.ancestors.len())));
            assigned = candidates
                .iter()
                .filter_map(|g| self.groups.get(g))
                .map(|n| n.doc.default_collector_id)
                .find(|c| *c != 0)
                .unwrap_or(0);
        }
        let collector_id = failover::effective(
            assigned,
            doc.id,
            self.collector_devices.contains(&doc.id),
            &self.collectors,
        );
        // `system.collectorhost`: the device is the host its collector runs on (loopback, or
        // the host name the collector reports), so host datasources read it locally.
        let own_host = is_loopback_name(&doc.name)
            || self
                .collector_hosts
                .get(&collector_id)
                .is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(&doc.name));
        if collector_id != 0 && own_host {
            with_dynamic.insert(
                "system.collectorhost".into(),
                Resolved {
                    name: "system.collectorhost".into(),
                    value: "true".into(),
                    sealed: false,
                    source: Source::System,
                },
            );
        }
        DeviceView {
            doc,
            dynamic_groups: dynamic,
            all_groups: all,
            properties: with_dynamic,
            collector_id,
            assigned_collector_id: assigned,
        }
    }

    /// Devices directly in a group (static members and dynamic matches).
    pub fn direct_members(&self, group: i64) -> Vec<&DeviceView> {
        self.devices
            .values()
            .filter(|d| d.doc.group_ids.contains(&group) || d.dynamic_groups.contains(&group))
            .collect()
    }

    /// Devices in a group or below it.
    pub fn members_below(&self, group: i64) -> Vec<&DeviceView> {
        self.devices
            .values()
            .filter(|d| d.all_groups.contains(&group))
            .collect()
    }

    /// Child groups.
    pub fn children(&self, group: i64) -> Vec<&GroupNode> {
        self.groups
            .values()
            .filter(|n| n.doc.parent_id == group && n.doc.id != group)
            .collect()
    }

    /// The device whose display name or host name is this (case-insensitive).
    pub fn device_named(&self, name: &str) -> Option<&DeviceView> {
        self.by_display_name
            .get(&name.to_lowercase())
            .and_then(|id| self.devices.get(id))
            .or_else(|| {
                self.devices
                    .values()
                    .find(|d| d.doc.name.eq_ignore_ascii_case(name))
            })
    }
}

/// The cached snapshot.
#[derive(Debug, Default)]
pub struct EstateCache {
    current: parking_lot::RwLock<Option<Snapshot>>,
    generation: AtomicU64,
}

/// Logs when devices move to another collector or back.
fn log_failover(before: Option<&Estate>, after: &Estate) {
    let moved = |e: &Estate| -> BTreeMap<i64, i64> {
        e.devices
            .values()
            .filter(|d| d.collector_id != d.assigned_collector_id)
            .map(|d| (d.doc.id, d.collector_id))
            .collect()
    };
    let now = moved(after);
    let was = before.map(moved).unwrap_or_default();
    if now == was {
        return;
    }
    let away: Vec<String> = now
        .iter()
        .filter(|(d, c)| was.get(d) != Some(c))
        .map(|(d, c)| format!("{d}→{c}"))
        .collect();
    let back: Vec<i64> = was
        .keys()
        .filter(|d| !now.contains_key(d))
        .copied()
        .collect();
    tracing::warn!(
        failed_over = now.len(),
        moved = %away.join(","),
        returned = ?back,
        "collector failover: device assignments changed"
    );
}

/// A built estate and when: wall time for age, the portal clock for collector health.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    clock_ms: i64,
    generation: u64,
    estate: Arc<Estate>,
}

impl EstateCache {
    /// Marks the snapshot stale (after a change by this process).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The current snapshot, rebuilt when stale.
    pub async fn get(&self, portal: &Portal) -> Result<Arc<Estate>, ApiError> {
        let generation = self.generation.load(Ordering::SeqCst);
        let now = portal.now();
        if let Some(snap) = self.current.read().as_ref() {
            // Collector health depends on the clock: a snapshot is as old as the older of
            // its two ages.
            let clock_age = u64::try_from(now - snap.clock_ms).unwrap_or(u64::MAX);
            if snap.generation == generation
                && snap.at.elapsed() < MAX_AGE
                && Duration::from_millis(clock_age) < MAX_AGE
            {
                return Ok(snap.estate.clone());
            }
        }
        let groups: Vec<DeviceGroupDoc> =
            objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
        let devices: Vec<DeviceDoc> =
            objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
        let collectors: Vec<CollectorDoc> =
            objects::list(portal.store.as_ref(), ObjectQuery::default()).await?;
        let down_after_ms = super::collectors::down_after_ms(portal).await?;
        let estate = Arc::new(Estate::build(
            groups,
            devices,
            &collectors,
            now,
            down_after_ms,
        ));
        let previous = self.current.write().replace(Snapshot {
            at: Instant::now(),
            clock_ms: now,
            generation,
            estate: estate.clone(),
        });
        log_failover(previous.map(|p| p.estate).as_deref(), &estate);
        Ok(estate)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn group(
        id: i64,
        parent: i64,
        name: &str,
        applies: &str,
        props: &[(&str, &str)],
    ) -> DeviceGroupDoc {
        DeviceGroupDoc {
            id,
            parent_id: parent,
            name: name.into(),
            applies_to: applies.into(),
            properties: props
                .iter()
                .map(|(n, v)| Property {
                    name: (*n).into(),
                    value: (*v).into(),
                    sealed: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn inheritance_dynamic_groups_and_collectors() {
        let mut linux = group(3, 2, "linux", "", &[("ssh.user", "mon"), ("env", "prod")]);
        linux.default_collector_id = 7;
        let groups = vec![
            group(1, 0, "", "", &[("env", "dev"), ("snmp.version", "v2c")]),
            group(2, 1, "servers", "", &[]),
            linux,
            group(
                4,
                1,
                "web",
                "system.hostname =~ \"web\"",
                &[("role", "web")],
            ),
        ];
        let d = DeviceDoc {
            id: 10,
            name: "web-1".into(),
            display_name: "Web 1".into(),
            group_ids: vec![3],
            properties: vec![Property {
                name: "env".into(),
                value: "staging".into(),
                sealed: false,
            }],
            ..Default::default()
        };
        let local = DeviceDoc {
            id: 11,
            name: "collector-1.example".into(),
            display_name: "the collector".into(),
            preferred_collector_id: 7,
            ..Default::default()
        };
        let collector = CollectorDoc {
            id: 7,
            report: Some(palisade_store::inventory::CollectorReport {
                hostname: "Collector-1.example".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = Estate::build(groups, vec![d, local], &[collector], 0, 180_000);
        assert_eq!(e.devices[&11].prop("system.collectorhost"), Some("true"));
        assert_eq!(e.devices[&10].prop("system.collectorhost"), None);
        assert_eq!(e.groups[&3].full_path, "servers/linux");
        let v = &e.devices[&10];
        assert_eq!(v.prop("env"), Some("staging"));
        assert_eq!(v.prop("ssh.user"), Some("mon"));
        assert_eq!(v.prop("snmp.version"), Some("v2c"));
        assert_eq!(v.prop("role"), Some("web"));
        assert_eq!(v.dynamic_groups, vec![4]);
        assert_eq!(v.direct_groups(), vec![3, 4]);
        assert_eq!(v.collector_id, 7);
        assert_eq!(v.prop("system.staticgroups"), Some("servers/linux"));
        assert_eq!(e.direct_members(4).len(), 1);
        assert_eq!(e.members_below(2).len(), 1);
        assert!(
            is_loopback_name("127.0.0.1")
                && is_loopback_name("LOCALHOST")
                && is_loopback_name("::1")
        );
        assert!(!is_loopback_name("10.0.0.1"));
    }

    #[test]
    fn devices_fail_over_within_the_collector_group_and_come_back() {
        let collector = |id: i64, heartbeat: i64, device_id: i64| CollectorDoc {
            id,
            group_id: 4,
            key_hash: Some("k".into()),
            registered_on: Some(0),
            last_heartbeat: Some(heartbeat),
            device_id,
            ..Default::default()
        };
        let device = |id: i64, name: &str| DeviceDoc {
            id,
            name: name.into(),
            display_name: name.into(),
            preferred_collector_id: 1,
            ..Default::default()
        };
        let groups = vec![group(1, 0, "", "", &[])];
        let devices = vec![device(10, "a"), device(11, "b"), device(12, "col-1")];
        let minute = 60_000;
        // Both heartbeating: every device on collector 1.
        let up = [collector(1, 10 * minute, 12), collector(2, 10 * minute, 0)];
        let e = Estate::build(
            groups.clone(),
            devices.clone(),
            &up,
            11 * minute,
            3 * minute,
        );
        assert!(e.devices.values().all(|d| d.collector_id == 1));
        // Collector 1 silent for 4 minutes: its devices move to 2, its own host stays.
        let down = [collector(1, 7 * minute, 12), collector(2, 11 * minute, 0)];
        let e = Estate::build(
            groups.clone(),
            devices.clone(),
            &down,
            11 * minute,
            3 * minute,
        );
        assert_eq!(e.devices[&10].collector_id, 2);
        assert_eq!(e.devices[&11].collector_id, 2);
        assert_eq!(e.devices[&10].assigned_collector_id, 1);
        assert_eq!(
            e.devices[&12].collector_id, 1,
            "a collector's own host never moves"
        );
        // A longer threshold: not down yet.
        let e = Estate::build(groups, devices, &down, 11 * minute, 5 * minute);
        assert_eq!(e.devices[&10].collector_id, 1);
    }
}
