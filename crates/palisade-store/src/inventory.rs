//! The documents of the monitored estate: device groups, devices, collector groups,
//! collectors and datasources. Credential property values are stored sealed (the portal
//! encrypts them before they reach the store; see `palisade_core::property`).

use crate::objects::{Document, ObjectKind};
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// One property as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    /// Name, as written.
    pub name: String,
    /// The value, or for a credential its sealed form.
    pub value: String,
    /// Whether `value` is sealed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sealed: bool,
}

/// A threshold set on a group or device for one datapoint of a datasource (overrides the
/// datasource's default; an empty expression disables alerting on it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdOverride {
    /// Datasource name.
    pub datasource: String,
    /// Datapoint name.
    pub datapoint: String,
    /// LogicMonitor `alertExpr`, e.g. `> 60 80 90`.
    pub alert_expr: String,
}

/// A device group (`/device/groups`). The root group has id 1 and parent 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceGroupDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique among siblings, case-insensitive).
    pub name: String,
    /// Parent group (0 for the root).
    pub parent_id: i64,
    /// Description.
    pub description: String,
    /// `appliesTo` expression: when set, the group is dynamic.
    pub applies_to: String,
    /// No alerts for its devices.
    pub disable_alerting: bool,
    /// Collector for devices that name none (0: none).
    pub default_collector_id: i64,
    /// Custom properties.
    pub properties: Vec<Property>,
    /// Threshold overrides.
    pub thresholds: Vec<ThresholdOverride>,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
}

impl Document for DeviceGroupDoc {
    const KIND: ObjectKind = ObjectKind::DeviceGroup;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(format!("{}/{}", self.parent_id, self.name.to_lowercase()))
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.parent_id)
    }
    fn set_times(&mut self, created_on: i64, _updated_on: i64) {
        self.created_on = created_on;
    }
}

/// A device (`/device/devices`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeviceDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Host name or IP address the collector reaches it by.
    pub name: String,
    /// Display name (unique, case-insensitive).
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Collector that monitors it (0: the default collector of its groups).
    pub preferred_collector_id: i64,
    /// No alerts.
    pub disable_alerting: bool,
    /// Static groups.
    pub group_ids: Vec<i64>,
    /// Custom properties.
    pub properties: Vec<Property>,
    /// Threshold overrides.
    pub thresholds: Vec<ThresholdOverride>,
    /// Who created it.
    pub created_by: String,
    /// Link shown in the UI.
    pub link: String,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
    /// Changed, epoch ms.
    #[serde(skip)]
    pub updated_on: i64,
}

impl Document for DeviceDoc {
    const KIND: ObjectKind = ObjectKind::Device;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(self.display_name.to_lowercase())
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.preferred_collector_id)
    }
    fn set_times(&mut self, created_on: i64, updated_on: i64) {
        self.created_on = created_on;
        self.updated_on = updated_on;
    }
}

/// A collector group (`/setting/collector/groups`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CollectorGroupDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique).
    pub name: String,
    /// Description.
    pub description: String,
    /// Custom properties.
    pub properties: Vec<Property>,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
}

impl Document for CollectorGroupDoc {
    const KIND: ObjectKind = ObjectKind::CollectorGroup;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(self.name.to_lowercase())
    }
    fn set_times(&mut self, created_on: i64, _updated_on: i64) {
        self.created_on = created_on;
    }
}

/// What a collector reports about itself (hello and heartbeats).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CollectorReport {
    /// Host name.
    pub hostname: String,
    /// `Linux` or `Windows`.
    pub platform: String,
    /// CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Collector build.
    pub build: String,
    /// Whether it runs as root / an administrator.
    pub is_admin_account: bool,
    /// The privilege report: user, uid, groups, capabilities or elevation (free form,
    /// defined in docs/collector-protocol.md).
    pub privilege: serde_json::Value,
    /// When the collector process started, epoch ms.
    pub started_on: i64,
    /// Results buffered on the collector, not yet delivered.
    pub buffered_batches: i64,
}

/// A collector (`/setting/collector/collectors`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CollectorDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Description.
    pub description: String,
    /// Collector group (0: none).
    pub group_id: i64,
    /// Keyed hash of the one-time registration secret, until it is used.
    pub registration_hash: Option<String>,
    /// When the registration secret expires, epoch ms.
    pub registration_expires: Option<i64>,
    /// Keyed hash of the collector's key, once registered.
    pub key_hash: Option<String>,
    /// Registered, epoch ms.
    pub registered_on: Option<i64>,
    /// The collector's own report.
    pub report: Option<CollectorReport>,
    /// Last heartbeat, epoch ms.
    pub last_heartbeat: Option<i64>,
    /// Address of the last heartbeat.
    pub last_ip: String,
    /// Suspended by an administrator (its requests are refused).
    pub suspended: bool,
    /// Backup collector (0: none).
    pub backup_agent_id: i64,
    /// The device of the collector's own host, created at registration (0: none).
    pub device_id: i64,
    /// Custom properties.
    pub properties: Vec<Property>,
    /// A recorded compliance exception (a Windows collector that must keep an administrator
    /// account), shown in the compliance center as excepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compliance_exception: Option<ComplianceException>,
    /// The first report of the current non-compliant spell (root, capabilities beyond
    /// `cap_net_raw`, an administrator account), epoch ms; `None` while compliant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncompliant_since: Option<i64>,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
    /// Changed, epoch ms.
    #[serde(skip)]
    pub updated_on: i64,
}

/// A justified exception to a mandate, recorded on an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ComplianceException {
    /// Why the object must stay as it is.
    pub justification: String,
    /// Until when, epoch ms; `None`: no end.
    pub expires_on: Option<i64>,
    /// Who recorded it.
    pub created_by: String,
    /// When, epoch ms.
    pub created_on: i64,
}

impl Document for CollectorDoc {
    const KIND: ObjectKind = ObjectKind::Collector;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        self.key_hash
            .as_ref()
            .map(|h| format!("k:{h}"))
            .or_else(|| self.registration_hash.as_ref().map(|h| format!("r:{h}")))
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.group_id)
    }
    fn set_times(&mut self, created_on: i64, updated_on: i64) {
        self.created_on = created_on;
        self.updated_on = updated_on;
    }
}

/// A datasource (`/setting/datasources`): its definition as JSON (see
/// `palisade_core::datasource`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DatasourceDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique).
    pub name: String,
    /// Shipped with Palisade.
    pub builtin: bool,
    /// Version, increased on every change.
    pub version: i64,
    /// The definition.
    pub definition: serde_json::Value,
    /// Created, epoch ms.
    #[serde(skip)]
    pub created_on: i64,
    /// Changed, epoch ms.
    #[serde(skip)]
    pub updated_on: i64,
}

impl Document for DatasourceDoc {
    const KIND: ObjectKind = ObjectKind::Datasource;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(self.name.to_lowercase())
    }
    fn set_times(&mut self, created_on: i64, updated_on: i64) {
        self.created_on = created_on;
        self.updated_on = updated_on;
    }
}
