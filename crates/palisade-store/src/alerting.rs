//! The documents of alerting: scheduled downtime ([`SdtDoc`]), alerts ([`AlertDoc`]),
//! escalation chains ([`AlertChainDoc`]) and alert rules ([`AlertRuleDoc`]), plus the key
//! that names one alerting series ([`series_key`]).
//!
//! Indexed columns:
//!
//! | document | `lookup` | `ref_id` | `flag` |
//! |---|---|---|---|
//! | [`SdtDoc`] | – | the target (device, group or collector id) | [`SdtKind::code`] |
//! | [`AlertDoc`] | the series key while active (one active alert per series) | device id | 0 active, 1 cleared |
//! | [`AlertChainDoc`] | lower-case name | – | 0 |
//! | [`AlertRuleDoc`] | lower-case name | escalation chain id | 0 |

use crate::objects::{Document, ObjectKind};
use palisade_core::sdt::LmSdt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `flag` of an active alert.
pub const ALERT_ACTIVE: i64 = 0;
/// `flag` of a cleared alert.
pub const ALERT_CLEARED: i64 = 1;

/// The key of one alerting series: `[device_id, datasource, instance, datapoint]` as JSON,
/// which no name can break.
pub fn series_key(device_id: i64, datasource: &str, instance: &str, datapoint: &str) -> String {
    serde_json::json!([device_id, datasource, instance, datapoint]).to_string()
}

/// The parts of a [`series_key`], `None` when it is not one.
pub fn parse_series_key(key: &str) -> Option<(i64, String, String, String)> {
    let (device, ds, inst, dp): (i64, String, String, String) = serde_json::from_str(key).ok()?;
    Some((device, ds, inst, dp))
}

/// What an SDT covers (LogicMonitor's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SdtKind {
    /// One device (`ResourceSDT`, formerly `DeviceSDT`).
    #[serde(rename = "ResourceSDT")]
    Resource,
    /// Every device in a group or below it (`ResourceGroupSDT`, formerly `DeviceGroupSDT`),
    /// optionally only one datasource of them.
    #[serde(rename = "ResourceGroupSDT")]
    ResourceGroup,
    /// One datasource on one device (`DeviceDataSourceSDT`).
    #[serde(rename = "DeviceDataSourceSDT")]
    DeviceDataSource,
    /// Every device a collector monitors (`CollectorSDT`).
    #[serde(rename = "CollectorSDT")]
    Collector,
}

impl SdtKind {
    /// All kinds.
    pub const ALL: [SdtKind; 4] = [
        SdtKind::Resource,
        SdtKind::ResourceGroup,
        SdtKind::DeviceDataSource,
        SdtKind::Collector,
    ];

    /// LogicMonitor's `type`.
    pub fn as_lm(self) -> &'static str {
        match self {
            SdtKind::Resource => "ResourceSDT",
            SdtKind::ResourceGroup => "ResourceGroupSDT",
            SdtKind::DeviceDataSource => "DeviceDataSourceSDT",
            SdtKind::Collector => "CollectorSDT",
        }
    }

    /// The kind for a `type`, any case; the v1/v2 names `DeviceSDT` and `DeviceGroupSDT`
    /// are accepted too.
    pub fn parse(s: &str) -> Option<SdtKind> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("DeviceSDT") {
            return Some(SdtKind::Resource);
        }
        if s.eq_ignore_ascii_case("DeviceGroupSDT") {
            return Some(SdtKind::ResourceGroup);
        }
        SdtKind::ALL
            .into_iter()
            .find(|k| k.as_lm().eq_ignore_ascii_case(s))
    }

    /// The indexed `flag` value.
    pub fn code(self) -> i64 {
        match self {
            SdtKind::Resource => 1,
            SdtKind::ResourceGroup => 2,
            SdtKind::DeviceDataSource => 3,
            SdtKind::Collector => 4,
        }
    }

    /// The prefix of the string id (`R_12`).
    pub fn id_prefix(self) -> &'static str {
        match self {
            SdtKind::Resource => "R",
            SdtKind::ResourceGroup => "RG",
            SdtKind::DeviceDataSource => "DDS",
            SdtKind::Collector => "C",
        }
    }
}

/// A scheduled downtime (`/sdt/sdts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SdtDoc {
    /// Id (shown as `<prefix>_<id>`).
    #[serde(skip)]
    pub id: i64,
    /// What it covers.
    pub kind: SdtKind,
    /// Why.
    #[serde(default)]
    pub comment: String,
    /// Who created it.
    #[serde(default)]
    pub admin: String,
    /// The schedule, validated with `palisade_core::sdt::Schedule::from_lm` before storing.
    pub schedule: LmSdt,
    /// `ResourceSDT` and `DeviceDataSourceSDT`: the device.
    #[serde(default)]
    pub device_id: i64,
    /// `ResourceGroupSDT`: the group.
    #[serde(default)]
    pub device_group_id: i64,
    /// `DeviceDataSourceSDT` (required) and `ResourceGroupSDT` (optional): the datasource.
    #[serde(default)]
    pub data_source_name: String,
    /// `CollectorSDT`: the collector.
    #[serde(default)]
    pub collector_id: i64,
}

impl SdtDoc {
    /// The string id, e.g. `R_12`.
    pub fn lm_id(&self) -> String {
        format!("{}_{}", self.kind.id_prefix(), self.id)
    }

    /// The object it is set on.
    pub fn target(&self) -> i64 {
        match self.kind {
            SdtKind::Resource | SdtKind::DeviceDataSource => self.device_id,
            SdtKind::ResourceGroup => self.device_group_id,
            SdtKind::Collector => self.collector_id,
        }
    }
}

impl Document for SdtDoc {
    const KIND: ObjectKind = ObjectKind::Sdt;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.target())
    }
    fn flag(&self) -> i64 {
        self.kind.code()
    }
}

/// A note on an alert (`/alert/alerts/{id}/note`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlertNote {
    /// User name.
    pub by: String,
    /// When, epoch seconds.
    pub epoch: i64,
    /// Text.
    pub comment: String,
}

/// What one destination of a chain was last told about an alert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeliveryMark {
    /// Last successful delivery, epoch ms.
    pub at_ms: i64,
    /// The severity it announced.
    pub severity: u8,
    /// Whether the clear was delivered.
    pub cleared: bool,
    /// Deliveries so far.
    pub count: u32,
}

/// An alert (`/alert/alerts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlertDoc {
    /// Id (shown as `DS<id>`).
    #[serde(skip)]
    pub id: i64,
    /// `dataSourceAlert` (a threshold) or `noData`.
    #[serde(rename = "type")]
    pub alert_type: String,
    /// 2 warning, 3 error, 4 critical.
    pub severity: u8,
    /// Over.
    pub cleared: bool,
    /// Acknowledged.
    pub acked: bool,
    /// Who acknowledged it.
    pub acked_by: String,
    /// When, epoch seconds (0: never).
    pub acked_epoch: i64,
    /// The acknowledgement's comment.
    pub ack_comment: String,
    /// Notes.
    pub notes: Vec<AlertNote>,
    /// In scheduled downtime: nothing is sent while set.
    pub sdted: bool,
    /// Start, epoch seconds.
    pub start_epoch: i64,
    /// End, epoch seconds (0 while active).
    pub end_epoch: i64,
    /// The device.
    pub monitor_object_id: i64,
    /// Its display name.
    pub monitor_object_name: String,
    /// The datasource.
    pub resource_template_name: String,
    /// The instance.
    pub instance_name: String,
    /// The datapoint.
    pub data_point_name: String,
    /// The value that opened it (or last changed its severity).
    pub alert_value: String,
    /// The value that cleared it.
    pub clear_value: String,
    /// The breached condition, e.g. `> 90` (`No Data` for no-data alerts).
    pub threshold: String,
    /// The matching alert rule's name (empty: none matched yet).
    pub rule: String,
    /// The rule's id.
    pub rule_id: i64,
    /// The escalation chain's name.
    pub chain: String,
    /// The chain's id.
    pub chain_id: i64,
    /// Last notification sent, epoch ms (0: never).
    pub last_notified_ms: i64,
    /// Per destination (`email:<addr>`, `webhook:<url>`), what it was last told.
    pub deliveries: BTreeMap<String, DeliveryMark>,
    /// The series ([`series_key`]).
    pub series: String,
}

impl Document for AlertDoc {
    const KIND: ObjectKind = ObjectKind::Alert;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        (!self.cleared).then(|| self.series.clone())
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.monitor_object_id)
    }
    fn flag(&self) -> i64 {
        if self.cleared {
            ALERT_CLEARED
        } else {
            ALERT_ACTIVE
        }
    }
}

/// One destination of an escalation chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Destination {
    /// An email through the portal's SMTP server.
    Email {
        /// The address.
        addr: String,
    },
    /// A signed JSON `POST`.
    Webhook {
        /// `https://...` (or `http://` on loopback).
        url: String,
        /// The HMAC key, sealed by the portal's keys (never returned by the API).
        sealed_secret: String,
    },
}

impl Destination {
    /// The key under which deliveries to it are tracked (`email:<addr>`, `webhook:<url>`).
    pub fn key(&self) -> String {
        match self {
            Destination::Email { addr } => format!("email:{}", addr.to_lowercase()),
            Destination::Webhook { url, .. } => format!("webhook:{url}"),
        }
    }
}

/// An escalation chain (`/setting/alert/chains`, LogicMonitor's `EscalatingChain`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlertChainDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// Description.
    pub description: String,
    /// Where notifications go.
    pub destinations: Vec<Destination>,
    /// Minutes between repeated notifications of an active, unacknowledged alert (0: none).
    pub repeat_interval: i64,
}

impl Document for AlertChainDoc {
    const KIND: ObjectKind = ObjectKind::AlertChain;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(self.name.to_lowercase())
    }
}

/// An alert rule (`/setting/alert/rules`): which alerts go to which chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AlertRuleDoc {
    /// Id.
    #[serde(skip)]
    pub id: i64,
    /// Name (unique, case-insensitive).
    pub name: String,
    /// Lower numbers are matched first.
    pub priority: i64,
    /// Minimum severity: `All` (= `Warn`), `Warn`, `Error` or `Critical`.
    pub level_str: String,
    /// Globs on the device's display name (empty: any).
    pub devices: Vec<String>,
    /// Globs on the full paths of the device's groups (empty: any).
    pub device_groups: Vec<String>,
    /// Glob on the datasource name (empty: any).
    pub datasource: String,
    /// Glob on the instance name (empty: any).
    pub instance: String,
    /// Glob on the datapoint name (empty: any).
    pub datapoint: String,
    /// The escalation chain.
    pub escalating_chain_id: i64,
    /// Minutes between repeats; when positive it overrides the chain's repeat interval.
    pub escalation_interval: i64,
    /// No clear notifications.
    pub suppress_alert_clear: bool,
    /// Stored and echoed (acknowledgement and SDT notifications are not sent by Palisade).
    pub suppress_alert_ack_sdt: bool,
}

impl Document for AlertRuleDoc {
    const KIND: ObjectKind = ObjectKind::AlertRule;
    fn id(&self) -> i64 {
        self.id
    }
    fn set_id(&mut self, id: i64) {
        self.id = id;
    }
    fn lookup(&self) -> Option<String> {
        Some(self.name.to_lowercase())
    }
    fn ref_id(&self) -> Option<i64> {
        Some(self.escalating_chain_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn series_keys_round_trip_any_name() {
        let k = series_key(7, "Host \"CPU\"", "a,b]", "x\u{1f}y");
        assert_eq!(
            parse_series_key(&k),
            Some((7, "Host \"CPU\"".into(), "a,b]".into(), "x\u{1f}y".into()))
        );
        assert_eq!(parse_series_key("not json"), None);
    }

    #[test]
    fn sdt_kinds() {
        assert_eq!(SdtKind::parse("resourcesdt"), Some(SdtKind::Resource));
        assert_eq!(
            SdtKind::parse("DeviceGroupSDT"),
            Some(SdtKind::ResourceGroup)
        );
        assert_eq!(SdtKind::parse("WebsiteSDT"), None);
        for k in SdtKind::ALL {
            assert_eq!(SdtKind::parse(k.as_lm()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_lm()));
        }
    }

    #[test]
    fn alert_columns_follow_state() {
        let mut a = AlertDoc {
            series: series_key(1, "ds", "i", "dp"),
            monitor_object_id: 1,
            ..AlertDoc::default()
        };
        assert_eq!(a.flag(), ALERT_ACTIVE);
        assert_eq!(a.lookup(), Some(a.series.clone()));
        a.cleared = true;
        assert_eq!(a.flag(), ALERT_CLEARED);
        assert_eq!(a.lookup(), None);
        let json = serde_json::to_value(&a).unwrap();
        assert!(json.get("type").is_some());
    }

    #[test]
    fn destinations_are_tagged() {
        let d: Destination =
            serde_json::from_str(r#"{"type":"email","addr":"Ops@Example.com"}"#).unwrap();
        assert_eq!(d.key(), "email:ops@example.com");
        let w = Destination::Webhook {
            url: "https://h.example/x".into(),
            sealed_secret: "s".into(),
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["type"], "webhook");
    }
}
