//! Which privilege a request needs: the one table the API gate authorizes with, and the one
//! the token migration assistant ([`crate::token_migration`]) proposes roles from, so that a
//! proposal can never drift from enforcement.
//!
//! [`requirement`] maps a request's method and path (exactly what the audit log records of
//! every API call) to a [`Requirement`]:
//!
//! - [`Requirement::Fixed`]: one privilege, whatever the object (`setting:useraccess:write`,
//!   `host_group:*:read` for the Prometheus API, ...).
//! - [`Requirement::Object`]: an object named in the path (a device, a group, a collector, an
//!   alert, an SDT). The portal resolves it to the groups that hold it (a device: its static
//!   and dynamic groups and their ancestors) and the request needs the level on one of them,
//!   or on `*`. `hidden` objects the caller cannot read answer 404, not 403.
//! - [`Requirement::List`]: a listing. It shows the items the caller may read; seeing every
//!   item needs `*`.
//! - [`Requirement::Body`]: the objects are named in the request body (creating a device in
//!   groups, pushing metrics for a device). The handler checks them; the audit log does not
//!   keep bodies, so a proposal can only cover them with `*`.
//!
//! A resolved requirement is a [`Check`]; [`Check::permits`] is the decision, used by the
//! gate, by the handlers and by the proposal.
//!
//! ```
//! use palisade_core::access::{requirement, Requirement, Target};
//! use palisade_core::privilege::Level;
//! assert_eq!(
//!     requirement("POST", "/santaba/rest/device/devices/7/properties"),
//!     Requirement::Object { target: Target::Device(7), level: Level::Write, hidden: false }
//! );
//! ```

use crate::privilege::{allows, Level, Need, Privilege, SettingObject};
use std::fmt;

/// An object named in a request path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A device.
    Device(i64),
    /// A device group.
    DeviceGroup(i64),
    /// A collector (its collector group decides).
    Collector(i64),
    /// A collector group.
    CollectorGroup(i64),
    /// An alert (`DS12`): its device decides.
    Alert(String),
    /// An SDT (`R_12`): its device, group or collector decides.
    Sdt(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Device(id) => write!(f, "device {id}"),
            Target::DeviceGroup(id) => write!(f, "device group {id}"),
            Target::Collector(id) => write!(f, "collector {id}"),
            Target::CollectorGroup(id) => write!(f, "collector group {id}"),
            Target::Alert(id) => write!(f, "alert {id}"),
            Target::Sdt(id) => write!(f, "SDT {id}"),
        }
    }
}

/// What a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Listing {
    /// `GET /device/devices`.
    Devices,
    /// `GET /device/groups`.
    DeviceGroups,
    /// `GET /setting/collector/collectors`.
    Collectors,
    /// `GET /setting/collector/groups`.
    CollectorGroups,
    /// `GET /alert/alerts`.
    Alerts,
    /// `GET /sdt/sdts` (SDTs of devices, groups and collectors).
    Sdts,
}

impl Listing {
    /// The checks under which the listing shows every item.
    pub fn everything(self, level: Level) -> Vec<Check> {
        let hosts = Check::new(Scope::HostGroups(Vec::new()), level);
        let collectors = Check::new(Scope::CollectorGroups(Vec::new()), level);
        match self {
            Listing::Devices | Listing::DeviceGroups | Listing::Alerts => vec![hosts],
            Listing::Collectors | Listing::CollectorGroups => vec![collectors],
            Listing::Sdts => vec![hosts, collectors],
        }
    }

    /// What is listed, for people.
    pub fn noun(self) -> &'static str {
        match self {
            Listing::Devices => "devices",
            Listing::DeviceGroups => "device groups",
            Listing::Collectors => "collectors",
            Listing::CollectorGroups => "collector groups",
            Listing::Alerts => "alerts",
            Listing::Sdts => "SDTs",
        }
    }
}

/// Objects named in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BodyTarget {
    /// The groups a new device joins (`hostGroupIds`; the root group without).
    DeviceGroups,
    /// The parent of a new device group (`parentId`).
    ParentGroup,
    /// The collector group of a new collector (`collectorGroupId`).
    CollectorGroup,
    /// The device, group or collector an SDT is set on.
    SdtObject,
    /// The device pushed metrics name (`resourceIds`).
    IngestDevice,
}

impl BodyTarget {
    /// The checks that cover the call whatever the body names.
    pub fn everything(self, level: Level) -> Vec<Check> {
        let hosts = Check::new(Scope::HostGroups(Vec::new()), level);
        let collectors = Check::new(Scope::CollectorGroups(Vec::new()), level);
        match self {
            BodyTarget::CollectorGroup => vec![collectors],
            BodyTarget::SdtObject => vec![hosts, collectors],
            _ => vec![hosts],
        }
    }

    /// Where the body names the object, for people.
    pub fn describe(self) -> &'static str {
        match self {
            BodyTarget::DeviceGroups => "the device's groups (`hostGroupIds`)",
            BodyTarget::ParentGroup => "the new group's parent (`parentId`)",
            BodyTarget::CollectorGroup => "the collector's group (`collectorGroupId`)",
            BodyTarget::SdtObject => "the device, group or collector of the SDT",
            BodyTarget::IngestDevice => "the device of the pushed metrics (`resourceIds`)",
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// One fixed check.
    Fixed(Check),
    /// An object named in the path, at a level.
    Object {
        /// The object.
        target: Target,
        /// The level needed on it.
        level: Level,
        /// Whether the object is absent (404) for a caller who cannot read it.
        hidden: bool,
    },
    /// A listing filtered to what the caller may read.
    List {
        /// What is listed.
        listing: Listing,
        /// The level each item needs to be shown.
        level: Level,
    },
    /// The objects are named in the request body; the handler checks them.
    Body {
        /// Where.
        target: BodyTarget,
        /// The level needed on them.
        level: Level,
    },
    /// Not an API route Palisade knows: the router answers (404).
    Unknown,
}

/// Where a check looks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// A named setting (`useraccess`, `accesslogs`, `datasources`).
    Setting(SettingObject),
    /// One of these host groups, most specific first, or `host_group:*`. Empty: only `*`.
    HostGroups(Vec<i64>),
    /// One of these collector groups, or `collectorgroup.*`. Empty: only `*`.
    CollectorGroups(Vec<i64>),
}

/// One authorization decision: a scope at a level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Check {
    /// Where.
    pub scope: Scope,
    /// How much.
    pub level: Level,
}

impl Check {
    /// A check.
    pub fn new(scope: Scope, level: Level) -> Check {
        Check { scope, level }
    }

    /// A check of a setting object.
    pub fn setting(object: SettingObject, level: Level) -> Check {
        Check::new(Scope::Setting(object), level)
    }

    /// Whether the privileges permit it. This is the decision the gate and the handlers
    /// make for every request.
    pub fn permits(&self, privileges: &[Privilege]) -> bool {
        let level = self.level;
        match &self.scope {
            Scope::Setting(object) => allows(privileges, &Need::Setting(*object, level)),
            Scope::HostGroups(groups) => {
                allows(privileges, &Need::HostGroup(None, level))
                    || groups
                        .iter()
                        .any(|g| allows(privileges, &Need::HostGroup(Some(*g), level)))
            }
            Scope::CollectorGroups(groups) => {
                allows(
                    privileges,
                    &Need::Setting(SettingObject::CollectorGroup(None), level),
                ) || groups.iter().any(|g| {
                    allows(
                        privileges,
                        &Need::Setting(SettingObject::CollectorGroup(Some(*g)), level),
                    )
                })
            }
        }
    }

    /// The narrowest privilege that permits it: the most specific group, else `*`.
    pub fn narrowest(&self) -> Privilege {
        let op = self.level.as_str();
        match &self.scope {
            Scope::Setting(object) => Privilege::new("setting", &setting_id(*object), op),
            Scope::HostGroups(groups) => match groups.first() {
                Some(g) => Privilege::new("host_group", &g.to_string(), op),
                None => Privilege::new("host_group", "*", op),
            },
            Scope::CollectorGroups(groups) => match groups.first() {
                Some(g) => Privilege::new("setting", &format!("collectorgroup.{g}"), op),
                None => Privilege::new("setting", "collectorgroup.*", op),
            },
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.level.as_str();
        let alternatives = |f: &mut fmt::Formatter<'_>, kind: &str, ids: &[String]| match ids {
            [] => write!(f, "{kind}*:{op}"),
            [one] => write!(f, "{kind}{one}:{op} (or {kind}*:{op})"),
            [first, rest @ ..] => write!(
                f,
                "{kind}{first}:{op} (or one of {}, or {kind}*:{op})",
                rest.iter()
                    .map(|r| format!("{kind}{r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match &self.scope {
            Scope::Setting(object) => write!(f, "{}", Need::Setting(*object, self.level)),
            Scope::HostGroups(g) => alternatives(
                f,
                "host_group:",
                &g.iter().map(i64::to_string).collect::<Vec<_>>(),
            ),
            Scope::CollectorGroups(g) => alternatives(
                f,
                "setting:collectorgroup.",
                &g.iter().map(i64::to_string).collect::<Vec<_>>(),
            ),
        }
    }
}

/// The checks that together are everything Palisade enforces, each at the highest level any
/// route asks for. A privilege set permitting all of them is administrator in all but name.
pub fn administrator_checks() -> Vec<Check> {
    vec![
        Check::setting(SettingObject::UserAccess, Level::Write),
        Check::setting(SettingObject::AccessLogs, Level::Read),
        Check::setting(SettingObject::Datasources, Level::Write),
        Check::new(Scope::CollectorGroups(Vec::new()), Level::Write),
        Check::new(Scope::HostGroups(Vec::new()), Level::Manage),
    ]
}

/// Whether a privilege set is administrator-equivalent: it permits every
/// [`administrator_checks`] check.
pub fn administrator_equivalent(privileges: &[Privilege]) -> bool {
    administrator_checks().iter().all(|c| c.permits(privileges))
}

/// The `objectId` of a setting object.
fn setting_id(object: SettingObject) -> String {
    match object {
        SettingObject::UserAccess => "useraccess".into(),
        SettingObject::AccessLogs => "accesslogs".into(),
        SettingObject::Datasources => "datasources".into(),
        SettingObject::Compliance => "compliance".into(),
        SettingObject::CollectorGroup(Some(g)) => format!("collectorgroup.{g}"),
        SettingObject::CollectorGroup(None) => "collectorgroup.*".into(),
    }
}

fn fixed_setting(object: SettingObject, level: Level) -> Requirement {
    Requirement::Fixed(Check::setting(object, level))
}

fn all_hosts(level: Level) -> Requirement {
    Requirement::Fixed(Check::new(Scope::HostGroups(Vec::new()), level))
}

fn object(target: Target, level: Level, hidden: bool) -> Requirement {
    Requirement::Object {
        target,
        level,
        hidden,
    }
}

/// Read or write by method: `GET` reads, `POST`, `PUT`, `PATCH` and `DELETE` write.
fn read_write(method: &str, read: Requirement, write: Requirement) -> Requirement {
    match method {
        "GET" => read,
        "POST" | "PUT" | "PATCH" | "DELETE" => write,
        _ => Requirement::Unknown,
    }
}

/// What a request needs, from its method and path (a query string is ignored). Paths are the
/// portal's: `/santaba/rest/...`, `/rest/v2/metric/ingest`, `/api/compliance[/history]`
/// and `/api/v1/...`.
pub fn requirement(method: &str, path: &str) -> Requirement {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let method = method.to_ascii_uppercase();
    let m = method.as_str();
    if let Some(rest) = path.strip_prefix("/santaba/rest/") {
        let segments: Vec<&str> = rest.split('/').collect();
        return rest_requirement(m, &segments);
    }
    if path == "/rest/v2/metric/ingest" {
        return match m {
            "POST" => Requirement::Body {
                target: BodyTarget::IngestDevice,
                level: Level::Write,
            },
            _ => Requirement::Unknown,
        };
    }
    // The compliance report and its history (docs/compliance.md): reading, and taking a
    // snapshot of the scores, both need read on the report.
    if matches!(
        (m, path),
        ("GET", "/api/compliance") | ("GET" | "POST", "/api/compliance/history")
    ) {
        return fixed_setting(SettingObject::Compliance, Level::Read);
    }
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        let segments: Vec<&str> = rest.split('/').collect();
        let known = matches!(
            (m, segments.as_slice()),
            (
                "GET" | "POST",
                ["query" | "query_range" | "series" | "labels"]
            ) | ("GET", ["label", _, "values"])
        );
        return if known {
            all_hosts(Level::Read)
        } else {
            Requirement::Unknown
        };
    }
    Requirement::Unknown
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn rest_requirement(m: &str, s: &[&str]) -> Requirement {
    use Level::{Ack, Manage, Read, Write};
    use Requirement::Unknown;
    match s {
        ["device", "devices"] => match m {
            "GET" => Requirement::List {
                listing: Listing::Devices,
                level: Read,
            },
            "POST" => Requirement::Body {
                target: BodyTarget::DeviceGroups,
                level: Manage,
            },
            _ => Unknown,
        },
        ["device", "devices", id, rest @ ..] => {
            let Some(id) = num(id) else { return Unknown };
            let dev = |level, hidden| object(Target::Device(id), level, hidden);
            match (m, rest) {
                ("GET", []) => dev(Read, true),
                ("PATCH" | "PUT", []) => dev(Write, false),
                ("DELETE", []) => dev(Manage, false),
                ("GET", ["properties"] | ["properties", _]) => dev(Read, true),
                ("POST", ["properties"]) => dev(Write, false),
                ("PUT" | "PATCH" | "DELETE", ["properties", _]) => dev(Write, false),
                ("GET", ["devicedatasources"])
                | ("GET", ["devicedatasources", _, "instances"])
                | ("GET", ["devicedatasources", _, "instances", _, "data"]) => dev(Read, true),
                ("GET", ["sdts"]) => dev(Read, true),
                ("GET", ["alertsettings"]) => dev(Read, true),
                ("PUT", ["alertsettings"]) => dev(Write, true),
                _ => Unknown,
            }
        }
        ["device", "groups"] => match m {
            "GET" => Requirement::List {
                listing: Listing::DeviceGroups,
                level: Read,
            },
            "POST" => Requirement::Body {
                target: BodyTarget::ParentGroup,
                level: Manage,
            },
            _ => Unknown,
        },
        ["device", "groups", id, rest @ ..] => {
            let Some(id) = num(id) else { return Unknown };
            let grp = |level, hidden| object(Target::DeviceGroup(id), level, hidden);
            match (m, rest) {
                ("GET", []) => grp(Read, true),
                ("PATCH" | "PUT", []) => grp(Write, false),
                ("DELETE", []) => grp(Manage, false),
                ("GET", ["devices"]) => grp(Read, true),
                ("GET", ["properties"] | ["properties", _]) => grp(Read, true),
                ("POST", ["properties"]) => grp(Write, false),
                ("PUT" | "PATCH" | "DELETE", ["properties", _]) => grp(Write, false),
                ("GET", ["sdts"]) => grp(Read, true),
                ("GET", ["alertsettings"]) => grp(Read, true),
                ("PUT", ["alertsettings"]) => grp(Write, true),
                _ => Unknown,
            }
        }
        // Users, roles and API tokens.
        ["setting", "admins"]
        | ["setting", "admins", _]
        | ["setting", "admins", _, "apitokens"]
        | ["setting", "roles"]
        | ["setting", "roles", _] => read_write(
            m,
            fixed_setting(SettingObject::UserAccess, Read),
            fixed_setting(SettingObject::UserAccess, Write),
        ),
        ["setting", "admins", "apitokens", rest @ ..] => match (m, rest) {
            ("GET", []) => fixed_setting(SettingObject::UserAccess, Read),
            // The token migration assistant.
            ("GET", ["migrations"])
            | ("GET", [_, "migration"])
            | ("GET", [_, "migration", "proposal"]) => {
                fixed_setting(SettingObject::UserAccess, Read)
            }
            ("POST", [_, "migration"]) | ("POST", [_, "migration", "disable" | "finish"]) => {
                fixed_setting(SettingObject::UserAccess, Write)
            }
            _ => Unknown,
        },
        ["setting", "admins", _, "apitokens", _] => match m {
            "PATCH" | "PUT" | "DELETE" => fixed_setting(SettingObject::UserAccess, Write),
            _ => Unknown,
        },
        ["setting", "accesslogs"] | ["setting", "accesslogs", _] => match m {
            "GET" => fixed_setting(SettingObject::AccessLogs, Read),
            _ => Unknown,
        },
        ["setting", "collector", "collectors"] => match m {
            "GET" => Requirement::List {
                listing: Listing::Collectors,
                level: Read,
            },
            "POST" => Requirement::Body {
                target: BodyTarget::CollectorGroup,
                level: Write,
            },
            _ => Unknown,
        },
        ["setting", "collector", "collectors", id, rest @ ..] => {
            let Some(id) = num(id) else { return Unknown };
            match (m, rest) {
                ("GET", []) => object(Target::Collector(id), Read, false),
                ("PATCH" | "PUT" | "DELETE", []) | ("POST", ["registration"]) => {
                    object(Target::Collector(id), Write, false)
                }
                _ => Unknown,
            }
        }
        ["setting", "collector", "groups"] => match m {
            "GET" => Requirement::List {
                listing: Listing::CollectorGroups,
                level: Read,
            },
            "POST" => Requirement::Fixed(Check::new(Scope::CollectorGroups(Vec::new()), Write)),
            _ => Unknown,
        },
        ["setting", "collector", "groups", id] => {
            let Some(id) = num(id) else { return Unknown };
            match m {
                "GET" => object(Target::CollectorGroup(id), Read, false),
                "DELETE" => object(Target::CollectorGroup(id), Write, false),
                _ => Unknown,
            }
        }
        ["setting", "datasources"] | ["setting", "datasources", _] => read_write(
            m,
            fixed_setting(SettingObject::Datasources, Read),
            fixed_setting(SettingObject::Datasources, Write),
        ),
        ["setting", "datasources", _, "export"] => match m {
            "GET" => fixed_setting(SettingObject::Datasources, Read),
            _ => Unknown,
        },
        ["alert", "alerts"] => match m {
            "GET" => Requirement::List {
                listing: Listing::Alerts,
                level: Read,
            },
            _ => Unknown,
        },
        ["alert", "alerts", id] => match m {
            "GET" => object(Target::Alert((*id).to_string()), Read, true),
            _ => Unknown,
        },
        ["alert", "alerts", id, "ack" | "note"] => match m {
            "POST" => object(Target::Alert((*id).to_string()), Ack, true),
            _ => Unknown,
        },
        ["sdt", "sdts"] => match m {
            "GET" => Requirement::List {
                listing: Listing::Sdts,
                level: Read,
            },
            "POST" => Requirement::Body {
                target: BodyTarget::SdtObject,
                level: Write,
            },
            _ => Unknown,
        },
        ["sdt", "sdts", id] => {
            let sdt = |level| object(Target::Sdt((*id).to_string()), level, true);
            match m {
                "GET" => sdt(Read),
                "PATCH" | "PUT" | "DELETE" => sdt(Write),
                _ => Unknown,
            }
        }
        ["setting", "alert", "chains"] | ["setting", "alert", "chains", _] => match m {
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => all_hosts(Manage),
            _ => Unknown,
        },
        ["setting", "alert", "rules"] | ["setting", "alert", "rules", _] => {
            read_write(m, all_hosts(Read), all_hosts(Manage))
        }
        _ => Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: SettingObject, l: Level) -> Requirement {
        Requirement::Fixed(Check::setting(s, l))
    }

    #[test]
    fn settings_routes() {
        use SettingObject::*;
        for (m, p, want) in [
            (
                "GET",
                "/santaba/rest/setting/admins",
                fixed(UserAccess, Level::Read),
            ),
            (
                "POST",
                "/santaba/rest/setting/admins",
                fixed(UserAccess, Level::Write),
            ),
            (
                "GET",
                "/santaba/rest/setting/admins/4?fields=id",
                fixed(UserAccess, Level::Read),
            ),
            (
                "DELETE",
                "/santaba/rest/setting/admins/4",
                fixed(UserAccess, Level::Write),
            ),
            (
                "GET",
                "/santaba/rest/setting/admins/apitokens",
                fixed(UserAccess, Level::Read),
            ),
            (
                "POST",
                "/santaba/rest/setting/admins/4/apitokens?type=bearer",
                fixed(UserAccess, Level::Write),
            ),
            (
                "PATCH",
                "/santaba/rest/setting/admins/4/apitokens/9",
                fixed(UserAccess, Level::Write),
            ),
            (
                "GET",
                "/santaba/rest/setting/admins/apitokens/9/migration",
                fixed(UserAccess, Level::Read),
            ),
            (
                "POST",
                "/santaba/rest/setting/admins/apitokens/9/migration/disable",
                fixed(UserAccess, Level::Write),
            ),
            (
                "PUT",
                "/santaba/rest/setting/roles/3",
                fixed(UserAccess, Level::Write),
            ),
            (
                "GET",
                "/santaba/rest/setting/accesslogs?size=5",
                fixed(AccessLogs, Level::Read),
            ),
            (
                "GET",
                "/santaba/rest/setting/datasources/3/export",
                fixed(Datasources, Level::Read),
            ),
            (
                "POST",
                "/santaba/rest/setting/datasources/import",
                fixed(Datasources, Level::Write),
            ),
        ] {
            assert_eq!(requirement(m, p), want, "{m} {p}");
        }
        assert_eq!(
            requirement("POST", "/santaba/rest/setting/accesslogs"),
            Requirement::Unknown
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/setting/admins/4/apitokens/9"),
            Requirement::Unknown
        );
    }

    #[test]
    fn device_routes() {
        let dev = |id, level, hidden| Requirement::Object {
            target: Target::Device(id),
            level,
            hidden,
        };
        assert_eq!(
            requirement("get", "/santaba/rest/device/devices/12"),
            dev(12, Level::Read, true)
        );
        assert_eq!(
            requirement("PATCH", "/santaba/rest/device/devices/12?opType=replace"),
            dev(12, Level::Write, false)
        );
        assert_eq!(
            requirement("DELETE", "/santaba/rest/device/devices/12"),
            dev(12, Level::Manage, false)
        );
        assert_eq!(
            requirement("PUT", "/santaba/rest/device/devices/12/properties/x.y"),
            dev(12, Level::Write, false)
        );
        assert_eq!(
            requirement(
                "GET",
                "/santaba/rest/device/devices/12/devicedatasources/3/instances/4/data"
            ),
            dev(12, Level::Read, true)
        );
        assert_eq!(
            requirement("PUT", "/santaba/rest/device/devices/12/alertsettings"),
            dev(12, Level::Write, true)
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/device/devices/x12"),
            Requirement::Unknown
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/device/groups/5/devices?size=10"),
            Requirement::Object {
                target: Target::DeviceGroup(5),
                level: Level::Read,
                hidden: true
            }
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/device/devices"),
            Requirement::List {
                listing: Listing::Devices,
                level: Level::Read
            }
        );
        assert_eq!(
            requirement("POST", "/santaba/rest/device/devices"),
            Requirement::Body {
                target: BodyTarget::DeviceGroups,
                level: Level::Manage
            }
        );
    }

    #[test]
    fn collectors_alerts_and_the_rest() {
        assert_eq!(
            requirement(
                "POST",
                "/santaba/rest/setting/collector/collectors/3/registration"
            ),
            Requirement::Object {
                target: Target::Collector(3),
                level: Level::Write,
                hidden: false
            }
        );
        assert_eq!(
            requirement("POST", "/santaba/rest/setting/collector/groups"),
            Requirement::Fixed(Check::new(Scope::CollectorGroups(vec![]), Level::Write))
        );
        assert_eq!(
            requirement("POST", "/santaba/rest/alert/alerts/DS4/ack"),
            Requirement::Object {
                target: Target::Alert("DS4".into()),
                level: Level::Ack,
                hidden: true
            }
        );
        assert_eq!(
            requirement("DELETE", "/santaba/rest/sdt/sdts/R_3"),
            Requirement::Object {
                target: Target::Sdt("R_3".into()),
                level: Level::Write,
                hidden: true
            }
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/setting/alert/chains"),
            Requirement::Fixed(Check::new(Scope::HostGroups(vec![]), Level::Manage))
        );
        assert_eq!(
            requirement("GET", "/santaba/rest/setting/alert/rules/2"),
            Requirement::Fixed(Check::new(Scope::HostGroups(vec![]), Level::Read))
        );
        assert_eq!(
            requirement("POST", "/api/v1/query_range"),
            Requirement::Fixed(Check::new(Scope::HostGroups(vec![]), Level::Read))
        );
        assert_eq!(
            requirement("POST", "/rest/v2/metric/ingest?create=true"),
            Requirement::Body {
                target: BodyTarget::IngestDevice,
                level: Level::Write
            }
        );
        assert_eq!(requirement("GET", "/healthz"), Requirement::Unknown);
        assert_eq!(
            requirement("GET", "/santaba/rest/nope"),
            Requirement::Unknown
        );
    }

    #[test]
    fn checks_permit_like_the_privileges() {
        let p = vec![
            Privilege::new("host_group", "5", "write"),
            Privilege::new("setting", "collectorgroup.2", "read"),
        ];
        assert!(Check::new(Scope::HostGroups(vec![7, 5, 1]), Level::Write).permits(&p));
        assert!(!Check::new(Scope::HostGroups(vec![7, 5, 1]), Level::Manage).permits(&p));
        assert!(!Check::new(Scope::HostGroups(vec![]), Level::Read).permits(&p));
        assert!(Check::new(Scope::CollectorGroups(vec![2]), Level::Read).permits(&p));
        assert!(!Check::new(Scope::CollectorGroups(vec![]), Level::Read).permits(&p));
        let star = vec![Privilege::new("setting", "collectorgroup.*", "write")];
        assert!(Check::new(Scope::CollectorGroups(vec![]), Level::Read).permits(&star));
    }

    #[test]
    fn narrowest_and_display() {
        let c = Check::new(Scope::HostGroups(vec![7, 5, 1]), Level::Write);
        assert_eq!(c.narrowest().to_string(), "host_group:7:write");
        assert!(c
            .to_string()
            .starts_with("host_group:7:write (or one of host_group:5"));
        let s = Check::setting(SettingObject::UserAccess, Level::Read);
        assert_eq!(s.narrowest().to_string(), "setting:useraccess:read");
        assert_eq!(s.to_string(), "setting:useraccess:read");
        let cg = Check::new(Scope::CollectorGroups(vec![]), Level::Read);
        assert_eq!(cg.narrowest().to_string(), "setting:collectorgroup.*:read");
        assert!(cg.narrowest().validate().is_ok());
    }

    #[test]
    fn administrator_equivalence() {
        assert!(administrator_equivalent(
            &crate::privilege::administrator_privileges()
        ));
        assert!(!administrator_equivalent(
            &crate::privilege::manager_privileges()
        ));
        let all = vec![
            Privilege::new("setting", "*", "write"),
            Privilege::new("host_group", "*", "manage"),
        ];
        assert!(administrator_equivalent(&all));
    }
}
