//! The datasource document: a datasource and its datapoints.

use serde::{Deserialize, Serialize};

use super::collector::Collector;

/// A datasource: which devices it applies to, how the collector collects from them, how
/// often, and the datapoints it produces.
///
/// Field names and order are those of the file format (LogicMonitor's names where they
/// exist); see [`super::export`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataSource {
    /// The portal's id. Omitted from exported files and ignored by [`super::import`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Unique name: 1 to 64 letters, digits, `_` or `-`.
    pub name: String,
    /// Name shown in the portal; empty shows [`DataSource::name`].
    #[serde(default)]
    pub display_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The group the portal lists the datasource under (free text, may be empty).
    #[serde(default)]
    pub group: String,
    /// The `appliesTo` expression choosing the devices; empty applies to no device.
    #[serde(default)]
    pub applies_to: String,
    /// How the collector collects; must agree with [`DataSource::collector`].
    pub collect_method: CollectMethod,
    /// Seconds between two collections, 10 to 86 400.
    pub collect_interval: u32,
    /// Whether the datasource has instances (interfaces, filesystems, …) on a device.
    #[serde(default)]
    pub has_multi_instances: bool,
    /// The method's parameters.
    pub collector: Collector,
    /// The datapoints, 1 to [`super::MAX_DATAPOINTS`].
    pub data_points: Vec<DataPoint>,
}

/// One value a datasource produces per instance and collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataPoint {
    /// Name, unique in the datasource: a letter or `_`, then letters, digits or `_`, at
    /// most 64 characters (so that expressions can name it).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// How the collected value becomes the stored value.
    #[serde(rename = "type")]
    pub kind: DatapointType,
    /// For [`DatapointType::Expression`] only: the arithmetic over other datapoints of the
    /// same instance (see [`super::expr`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Default threshold, `"> 80 90 95"` (warning, error, critical), or empty for none.
    #[serde(default)]
    pub alert_expr: String,
    /// Consecutive collections over the threshold before an alert opens (0 to 60).
    #[serde(default)]
    pub alert_transition_interval: u32,
    /// Consecutive collections under the threshold before an alert clears (0 to 60).
    #[serde(default)]
    pub alert_clear_transition_interval: u32,
    /// The alert raised when the datapoint has no data.
    #[serde(default)]
    pub alert_for_no_data: AlertForNoData,
    /// Values below are discarded as invalid (no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// Values above are discarded as invalid (no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
}

/// How a collected value becomes the stored value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatapointType {
    /// The value as collected.
    Gauge,
    /// A monotonic counter, stored as its per-second rate; 32- and 64-bit wraps are
    /// handled and a reset yields no value (see [`super::counter_rate`]).
    Counter,
    /// A per-second rate that may be negative.
    Derive,
    /// Computed from other datapoints of the same instance (see [`super::expr`]).
    Expression,
}

impl DatapointType {
    /// The name in the file format.
    pub fn as_str(self) -> &'static str {
        match self {
            DatapointType::Gauge => "gauge",
            DatapointType::Counter => "counter",
            DatapointType::Derive => "derive",
            DatapointType::Expression => "expression",
        }
    }

    /// Whether the value is collected (everything but expressions).
    pub fn is_collected(self) -> bool {
        self != DatapointType::Expression
    }
}

/// How the collector collects (`collectMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CollectMethod {
    /// SNMP GET of scalars or a walk of a table.
    Snmp,
    /// A command over SSH, or the same data read on the collector's own host.
    Ssh,
    /// An HTTP(S) request.
    Http,
    /// ICMP echo.
    Ping,
    /// A Prometheus exporter's `/metrics`.
    Prometheus,
    /// A script from the collector host's scripts directory.
    Script,
}

impl CollectMethod {
    /// The name in the file format.
    pub fn as_str(self) -> &'static str {
        match self {
            CollectMethod::Snmp => "snmp",
            CollectMethod::Ssh => "ssh",
            CollectMethod::Http => "http",
            CollectMethod::Ping => "ping",
            CollectMethod::Prometheus => "prometheus",
            CollectMethod::Script => "script",
        }
    }
}

impl std::fmt::Display for CollectMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The alert raised when a datapoint has no data (`alertForNoData`), written as
/// LogicMonitor's number: 1 none, 2 warning, 3 error, 4 critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum AlertForNoData {
    /// No alert (1).
    #[default]
    None,
    /// A warning (2).
    Warning,
    /// An error (3).
    Error,
    /// A critical alert (4).
    Critical,
}

impl AlertForNoData {
    /// LogicMonitor's number.
    pub fn code(self) -> u8 {
        match self {
            AlertForNoData::None => 1,
            AlertForNoData::Warning => 2,
            AlertForNoData::Error => 3,
            AlertForNoData::Critical => 4,
        }
    }
}

/// An `alertForNoData` number other than 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("alertForNoData must be 1 (none), 2 (warning), 3 (error) or 4 (critical), not {0}")]
pub struct InvalidAlertForNoData(pub u8);

impl TryFrom<u8> for AlertForNoData {
    type Error = InvalidAlertForNoData;
    fn try_from(code: u8) -> Result<Self, InvalidAlertForNoData> {
        match code {
            1 => Ok(AlertForNoData::None),
            2 => Ok(AlertForNoData::Warning),
            3 => Ok(AlertForNoData::Error),
            4 => Ok(AlertForNoData::Critical),
            other => Err(InvalidAlertForNoData(other)),
        }
    }
}

impl From<AlertForNoData> for u8 {
    fn from(a: AlertForNoData) -> u8 {
        a.code()
    }
}

impl DataSource {
    /// The datapoint called `name`.
    pub fn datapoint(&self, name: &str) -> Option<&DataPoint> {
        self.data_points.iter().find(|d| d.name == name)
    }

    /// The name the portal shows: the display name, or the name when that is empty.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() {
            &self.name
        } else {
            &self.display_name
        }
    }
}
