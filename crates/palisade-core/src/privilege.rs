//! The privilege vocabulary of roles and the decision "does this set of privileges allow
//! that".
//!
//! A privilege is LogicMonitor's `{objectType, objectId, operation, subOperation}`. Palisade
//! understands these (see `docs/permissions.md` for the endpoint each one opens):
//!
//! | objectType | objectId | operations | what it opens |
//! |---|---|---|---|
//! | `setting` | `useraccess` | `read`, `write` | users, roles, API tokens |
//! | `setting` | `accesslogs` | `read` | the audit log |
//! | `setting` | `compliance` | `read` | the compliance center (`/api/compliance`) |
//! | `setting` | `collectorgroup.<id>`, `collectorgroup.*` | `read`, `write` | collectors |
//! | `setting` | `*` | `read`, `write` | every setting above |
//! | `host_group` | `<group id>`, `*` | `read`, `ack`, `write`, `manage` | devices and groups |
//! | `dashboard` | `<dashboard id>`, `*` | `read`, `write`, `manage` | dashboards and their widgets |
//! | `dashboard_group` | `*` | `read`, `write`, `manage` | every dashboard (LogicMonitor's built-in roles) |
//!
//! Operations are ordered `read < ack < write < manage`: a privilege grants its own
//! operation and every lesser one.
//!
//! ```
//! use palisade_core::privilege::{Privilege, Need, Level, SettingObject, allows};
//! let p = vec![Privilege::new("setting", "useraccess", "write")];
//! assert!(allows(&p, &Need::Setting(SettingObject::UserAccess, Level::Read)));
//! assert!(!allows(&p, &Need::Setting(SettingObject::AccessLogs, Level::Read)));
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// One privilege of a role, in LogicMonitor's wire shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Privilege {
    /// The kind of object: `setting`, `host_group`, `dashboard_group`, ...
    pub object_type: String,
    /// Which object: an id, a named setting, or `*` for all.
    pub object_id: String,
    /// What may be done: `read`, `ack`, `write` or `manage`.
    pub operation: String,
    /// LogicMonitor's optional refinement; kept and returned, not interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_operation: Option<String>,
    /// A display name for the object, returned as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
}

impl Privilege {
    /// A privilege without sub-operation or name.
    pub fn new(object_type: &str, object_id: &str, operation: &str) -> Self {
        Privilege {
            object_type: object_type.to_string(),
            object_id: object_id.to_string(),
            operation: operation.to_string(),
            sub_operation: None,
            object_name: None,
        }
    }

    /// Parses the CLI form `OBJECTTYPE:OBJECTID:OPERATION`.
    pub fn parse_triple(s: &str) -> Result<Self, PrivilegeError> {
        let mut it = s.split(':');
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(t), Some(id), Some(op), None) => {
                let p = Privilege::new(t, id, op);
                p.validate()?;
                Ok(p)
            }
            _ => Err(PrivilegeError::Syntax(s.to_string())),
        }
    }

    /// Checks the privilege against the vocabulary.
    pub fn validate(&self) -> Result<(), PrivilegeError> {
        if !KNOWN_OBJECT_TYPES.contains(&self.object_type.as_str()) {
            return Err(PrivilegeError::UnknownObjectType(self.object_type.clone()));
        }
        if self.object_id.is_empty() || self.object_id.len() > 128 {
            return Err(PrivilegeError::BadObjectId(self.object_id.clone()));
        }
        if Level::parse(&self.operation).is_none() {
            return Err(PrivilegeError::UnknownOperation(self.operation.clone()));
        }
        if self.object_type == "setting" {
            let id = self.object_id.as_str();
            let ok = matches!(
                id,
                "*" | "useraccess"
                    | "accesslogs"
                    | "datasources"
                    | "compliance"
                    | "collectorgroup.*"
            ) || id
                .strip_prefix("collectorgroup.")
                .is_some_and(|n| n.parse::<i64>().is_ok());
            if !ok {
                return Err(PrivilegeError::BadObjectId(self.object_id.clone()));
            }
        }
        // Dashboards (docs/dashboards.md): one dashboard by id, or all of them.
        if self.object_type == "dashboard"
            && self.object_id != "*"
            && self.object_id.parse::<i64>().is_err()
        {
            return Err(PrivilegeError::BadObjectId(self.object_id.clone()));
        }
        Ok(())
    }

    fn level(&self) -> Option<Level> {
        Level::parse(&self.operation)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.object_type, self.object_id, self.operation
        )
    }
}

/// Object types accepted in roles: LogicMonitor's vocabulary.
pub const KNOWN_OBJECT_TYPES: &[&str] = &[
    "dashboard_group",
    "dashboard",
    "host_group",
    "service_group",
    "website_group",
    "report_group",
    "remoteSession",
    "chat",
    "setting",
    "device_dashboard",
    "help",
    "logs",
    "configNeedDeviceManagePermission",
    "map",
    "resourceMapTab",
    "tracesManageTab",
    "otlpMetrics",
    "costOptimization",
    "dexda",
    "lmSupportAccess",
];

/// A privilege that is not in Palisade's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrivilegeError {
    /// Not `OBJECTTYPE:OBJECTID:OPERATION`.
    #[error("privilege `{0}` is not of the form OBJECTTYPE:OBJECTID:OPERATION")]
    Syntax(String),
    /// The object type is unknown.
    #[error("unknown privilege objectType `{0}`")]
    UnknownObjectType(String),
    /// The object id is empty, too long, or not a known setting.
    #[error("privilege objectId `{0}` is not valid (settings take useraccess, accesslogs, datasources, compliance, collectorgroup.<id>, collectorgroup.* or *; dashboards a dashboard id or *)")]
    BadObjectId(String),
    /// The operation is unknown.
    #[error("unknown privilege operation `{0}` (use read, ack, write or manage)")]
    UnknownOperation(String),
}

/// How much may be done, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// See.
    Read,
    /// Acknowledge alerts.
    Ack,
    /// Change.
    Write,
    /// Change, create and delete, including children.
    Manage,
}

impl Level {
    /// Parses an operation name (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Some(Level::Read),
            "ack" => Some(Level::Ack),
            "write" => Some(Level::Write),
            "manage" => Some(Level::Manage),
            _ => None,
        }
    }

    /// The operation name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Ack => "ack",
            Level::Write => "write",
            Level::Manage => "manage",
        }
    }
}

/// A named setting object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingObject {
    /// Users, roles and API tokens.
    UserAccess,
    /// The audit log.
    AccessLogs,
    /// Datasource definitions.
    Datasources,
    /// Collectors of one group, or of any group (`None`).
    CollectorGroup(Option<i64>),
    /// The compliance center.
    Compliance,
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A setting at a level.
    Setting(SettingObject, Level),
    /// Devices of one group, or of any group (`None`), at a level.
    HostGroup(Option<i64>, Level),
    /// One dashboard, or every dashboard (`None`), at a level.
    Dashboard(Option<i64>, Level),
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Setting(SettingObject::UserAccess, l) => {
                write!(f, "setting:useraccess:{}", l.as_str())
            }
            Need::Setting(SettingObject::AccessLogs, l) => {
                write!(f, "setting:accesslogs:{}", l.as_str())
            }
            Need::Setting(SettingObject::Datasources, l) => {
                write!(f, "setting:datasources:{}", l.as_str())
            }
            Need::Setting(SettingObject::Compliance, l) => {
                write!(f, "setting:compliance:{}", l.as_str())
            }
            Need::Setting(SettingObject::CollectorGroup(Some(id)), l) => {
                write!(f, "setting:collectorgroup.{id}:{}", l.as_str())
            }
            Need::Setting(SettingObject::CollectorGroup(None), l) => {
                write!(f, "setting:collectorgroup.*:{}", l.as_str())
            }
            Need::HostGroup(Some(id), l) => write!(f, "host_group:{id}:{}", l.as_str()),
            Need::HostGroup(None, l) => write!(f, "host_group:*:{}", l.as_str()),
            Need::Dashboard(Some(id), l) => write!(f, "dashboard:{id}:{}", l.as_str()),
            Need::Dashboard(None, l) => write!(f, "dashboard:*:{}", l.as_str()),
        }
    }
}

fn grants(p: &Privilege, need: &Need) -> bool {
    let (object_type, level) = match need {
        Need::Setting(_, l) => ("setting", *l),
        Need::HostGroup(_, l) => ("host_group", *l),
        Need::Dashboard(_, l) => {
            // LogicMonitor's built-in roles grant dashboards as `dashboard_group:*`: every
            // dashboard at that level.
            if p.object_type == "dashboard_group"
                && p.object_id == "*"
                && p.level().is_some_and(|have| have >= *l)
            {
                return true;
            }
            ("dashboard", *l)
        }
    };
    if p.object_type != object_type || p.level().is_none_or(|have| have < level) {
        return false;
    }
    let id = p.object_id.as_str();
    if id == "*" {
        return true;
    }
    match need {
        Need::Setting(SettingObject::UserAccess, _) => id == "useraccess",
        Need::Setting(SettingObject::AccessLogs, _) => id == "accesslogs",
        Need::Setting(SettingObject::Datasources, _) => id == "datasources",
        Need::Setting(SettingObject::Compliance, _) => id == "compliance",
        Need::Setting(SettingObject::CollectorGroup(group), _) => match group {
            _ if id == "collectorgroup.*" => true,
            Some(g) => {
                id.strip_prefix("collectorgroup.")
                    .and_then(|n| n.parse::<i64>().ok())
                    == Some(*g)
            }
            None => false,
        },
        Need::HostGroup(Some(g), _) => id.parse::<i64>().ok() == Some(*g),
        Need::HostGroup(None, _) => false,
        Need::Dashboard(Some(d), _) => id.parse::<i64>().ok() == Some(*d),
        Need::Dashboard(None, _) => false,
    }
}

/// Whether any privilege of the set grants the need.
pub fn allows(privileges: &[Privilege], need: &Need) -> bool {
    privileges.iter().any(|p| grants(p, need))
}

/// Whether the holder's privileges cover granting `p` to someone else: the same object type,
/// the same object (or a wildcard over it) and at least the same operation. A caller may
/// only hand out what it holds itself.
pub fn covers(holder: &[Privilege], p: &Privilege) -> bool {
    let Some(level) = p.level() else { return false };
    holder.iter().any(|h| {
        h.object_type == p.object_type
            && h.level().is_some_and(|l| l >= level)
            && (h.object_id == "*"
                || h.object_id == p.object_id
                || (h.object_id == "collectorgroup.*"
                    && p.object_id.starts_with("collectorgroup.")))
    })
}

/// The privileges of the built-in `administrator` role: everything.
pub fn administrator_privileges() -> Vec<Privilege> {
    let mut v: Vec<Privilege> = KNOWN_OBJECT_TYPES
        .iter()
        .filter(|t| **t != "setting")
        .map(|t| Privilege::new(t, "*", "manage"))
        .collect();
    v.push(Privilege::new("setting", "*", "manage"));
    v
}

/// The privileges of the built-in `manager` role: monitoring, not user access.
pub fn manager_privileges() -> Vec<Privilege> {
    vec![
        Privilege::new("host_group", "*", "manage"),
        Privilege::new("dashboard_group", "*", "manage"),
        Privilege::new("report_group", "*", "manage"),
        Privilege::new("website_group", "*", "manage"),
        Privilege::new("setting", "collectorgroup.*", "write"),
        Privilege::new("setting", "datasources", "write"),
    ]
}

/// The privileges of the built-in `ackonly` role.
pub fn ackonly_privileges() -> Vec<Privilege> {
    vec![
        Privilege::new("host_group", "*", "ack"),
        Privilege::new("dashboard_group", "*", "read"),
    ]
}

/// The privileges of the built-in `readonly` role.
pub fn readonly_privileges() -> Vec<Privilege> {
    vec![
        Privilege::new("host_group", "*", "read"),
        Privilege::new("dashboard_group", "*", "read"),
        Privilege::new("report_group", "*", "read"),
        Privilege::new("website_group", "*", "read"),
        Privilege::new("setting", "collectorgroup.*", "read"),
        Privilege::new("setting", "datasources", "read"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_implies_read_but_not_manage() {
        let p = vec![Privilege::new("setting", "useraccess", "write")];
        assert!(allows(
            &p,
            &Need::Setting(SettingObject::UserAccess, Level::Read)
        ));
        assert!(allows(
            &p,
            &Need::Setting(SettingObject::UserAccess, Level::Write)
        ));
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::UserAccess, Level::Manage)
        ));
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::AccessLogs, Level::Read)
        ));
    }

    #[test]
    fn star_settings_cover_all_settings() {
        let p = vec![Privilege::new("setting", "*", "read")];
        assert!(allows(
            &p,
            &Need::Setting(SettingObject::AccessLogs, Level::Read)
        ));
        assert!(allows(
            &p,
            &Need::Setting(SettingObject::CollectorGroup(Some(3)), Level::Read)
        ));
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::UserAccess, Level::Write)
        ));
        assert!(!allows(&p, &Need::HostGroup(None, Level::Read)));
    }

    #[test]
    fn collector_groups_by_id() {
        let p = vec![Privilege::new("setting", "collectorgroup.4", "write")];
        assert!(allows(
            &p,
            &Need::Setting(SettingObject::CollectorGroup(Some(4)), Level::Write)
        ));
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::CollectorGroup(Some(5)), Level::Read)
        ));
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::CollectorGroup(None), Level::Read)
        ));
        let all = vec![Privilege::new("setting", "collectorgroup.*", "read")];
        assert!(allows(
            &all,
            &Need::Setting(SettingObject::CollectorGroup(None), Level::Read)
        ));
    }

    #[test]
    fn compliance_is_its_own_setting() {
        let p = vec![Privilege::new("setting", "compliance", "read")];
        let need = Need::Setting(SettingObject::Compliance, Level::Read);
        assert!(allows(&p, &need));
        assert_eq!(need.to_string(), "setting:compliance:read");
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::AccessLogs, Level::Read)
        ));
        assert!(allows(&[Privilege::new("setting", "*", "read")], &need));
        assert!(!allows(
            &[Privilege::new("setting", "accesslogs", "read")],
            &need
        ));
        assert!(Privilege::parse_triple("setting:compliance:read").is_ok());
    }

    #[test]
    fn host_groups() {
        let p = vec![Privilege::new("host_group", "7", "manage")];
        assert!(allows(&p, &Need::HostGroup(Some(7), Level::Write)));
        assert!(!allows(&p, &Need::HostGroup(Some(8), Level::Read)));
        assert!(!allows(&p, &Need::HostGroup(None, Level::Read)));
    }

    #[test]
    fn dashboards_by_id_star_and_dashboard_group_star() {
        let one = vec![Privilege::new("dashboard", "5", "read")];
        assert!(allows(&one, &Need::Dashboard(Some(5), Level::Read)));
        assert!(!allows(&one, &Need::Dashboard(Some(5), Level::Write)));
        assert!(!allows(&one, &Need::Dashboard(Some(6), Level::Read)));
        assert!(!allows(&one, &Need::Dashboard(None, Level::Read)));
        let all = vec![Privilege::new("dashboard", "*", "manage")];
        assert!(allows(&all, &Need::Dashboard(None, Level::Manage)));
        assert!(allows(&all, &Need::Dashboard(Some(9), Level::Write)));
        let group = vec![Privilege::new("dashboard_group", "*", "read")];
        assert!(allows(&group, &Need::Dashboard(Some(9), Level::Read)));
        assert!(!allows(&group, &Need::Dashboard(Some(9), Level::Write)));
        let other_group = vec![Privilege::new("dashboard_group", "3", "manage")];
        assert!(!allows(
            &other_group,
            &Need::Dashboard(Some(3), Level::Read)
        ));
        assert!(!allows(&one, &Need::HostGroup(Some(5), Level::Read)));
        assert!(Privilege::parse_triple("dashboard:12:write").is_ok());
        assert!(Privilege::parse_triple("dashboard:*:read").is_ok());
        assert!(matches!(
            Privilege::parse_triple("dashboard:abc:read"),
            Err(PrivilegeError::BadObjectId(_))
        ));
    }

    #[test]
    fn unknown_operations_grant_nothing() {
        let p = vec![Privilege::new("setting", "*", "everything")];
        assert!(!allows(
            &p,
            &Need::Setting(SettingObject::AccessLogs, Level::Read)
        ));
    }

    #[test]
    fn administrator_allows_everything() {
        let a = administrator_privileges();
        for need in [
            Need::Setting(SettingObject::UserAccess, Level::Manage),
            Need::Setting(SettingObject::AccessLogs, Level::Read),
            Need::Setting(SettingObject::CollectorGroup(None), Level::Write),
            Need::HostGroup(None, Level::Manage),
        ] {
            assert!(allows(&a, &need), "{need}");
        }
        assert!(a.iter().all(|p| p.validate().is_ok()));
    }

    #[test]
    fn covers_only_what_is_held() {
        let holder = vec![
            Privilege::new("setting", "useraccess", "write"),
            Privilege::new("setting", "collectorgroup.*", "read"),
        ];
        assert!(covers(
            &holder,
            &Privilege::new("setting", "useraccess", "read")
        ));
        assert!(covers(
            &holder,
            &Privilege::new("setting", "collectorgroup.3", "read")
        ));
        assert!(!covers(
            &holder,
            &Privilege::new("setting", "collectorgroup.3", "write")
        ));
        assert!(!covers(&holder, &Privilege::new("setting", "*", "read")));
        assert!(!covers(&holder, &Privilege::new("host_group", "*", "read")));
        assert!(administrator_privileges()
            .iter()
            .all(|p| covers(&administrator_privileges(), p)));
        assert!(!administrator_privileges()
            .iter()
            .all(|p| covers(&holder, p)));
    }

    #[test]
    fn parse_and_validate() {
        assert!(Privilege::parse_triple("setting:useraccess:write").is_ok());
        assert!(Privilege::parse_triple("setting:collectorgroup.12:read").is_ok());
        assert!(Privilege::parse_triple("host_group:*:manage").is_ok());
        assert!(matches!(
            Privilege::parse_triple("setting:useraccess"),
            Err(PrivilegeError::Syntax(_))
        ));
        assert!(matches!(
            Privilege::parse_triple("bogus:*:read"),
            Err(PrivilegeError::UnknownObjectType(_))
        ));
        assert!(matches!(
            Privilege::parse_triple("setting:users:read"),
            Err(PrivilegeError::BadObjectId(_))
        ));
        assert!(matches!(
            Privilege::parse_triple("setting:useraccess:own"),
            Err(PrivilegeError::UnknownOperation(_))
        ));
    }
}
