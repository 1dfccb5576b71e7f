//! The method-specific `collector` object of a datasource: Palisade's own, tagged with the
//! method (`{"method": "snmp", ...}`).
//!
//! Every method maps collected datapoints (by name) to where their value comes from: an
//! OID, a parser field, an HTTP measurement, a Prometheus series, a script key. Expression
//! datapoints are computed, so they never appear in these maps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::CollectMethod;

/// The parameters of the collection method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Collector {
    /// `snmp`.
    Snmp(SnmpCollector),
    /// `ssh`.
    Ssh(SshCollector),
    /// `http`.
    Http(HttpCollector),
    /// `ping`.
    Ping(PingCollector),
    /// `prometheus`.
    Prometheus(PrometheusCollector),
    /// `script`.
    Script(ScriptCollector),
}

impl Collector {
    /// The method these parameters are for.
    pub fn method(&self) -> CollectMethod {
        match self {
            Collector::Snmp(_) => CollectMethod::Snmp,
            Collector::Ssh(_) => CollectMethod::Ssh,
            Collector::Http(_) => CollectMethod::Http,
            Collector::Ping(_) => CollectMethod::Ping,
            Collector::Prometheus(_) => CollectMethod::Prometheus,
            Collector::Script(_) => CollectMethod::Script,
        }
    }

    /// The datapoints the collector maps to a source, in name order.
    pub fn mapped_datapoints(&self) -> Vec<&str> {
        fn keys<V>(m: &BTreeMap<String, V>) -> Vec<&str> {
            m.keys().map(String::as_str).collect()
        }
        match self {
            Collector::Snmp(c) => keys(&c.oids),
            Collector::Ssh(c) => keys(&c.fields),
            Collector::Http(c) => keys(&c.values),
            Collector::Ping(c) => keys(&c.values),
            Collector::Prometheus(c) => keys(&c.metrics),
            Collector::Script(c) => keys(&c.keys),
        }
    }

    /// The collection timeout, in milliseconds.
    pub fn timeout_ms(&self) -> u32 {
        match self {
            Collector::Snmp(c) => c.timeout_ms,
            Collector::Ssh(c) => c.timeout_ms,
            Collector::Http(c) => c.timeout_ms,
            Collector::Ping(c) => c.timeout_ms,
            Collector::Prometheus(c) => c.timeout_ms,
            Collector::Script(c) => c.timeout_ms,
        }
    }
}

fn default_snmp_timeout() -> u32 {
    5_000
}
fn default_ssh_timeout() -> u32 {
    10_000
}
fn default_http_timeout() -> u32 {
    10_000
}
fn default_ping_timeout() -> u32 {
    1_000
}
fn default_script_timeout() -> u32 {
    30_000
}
fn default_ping_count() -> u32 {
    5
}
fn default_expected_status() -> u16 {
    200
}
fn default_true() -> bool {
    true
}
fn default_separator() -> String {
    "=".into()
}

/// SNMP: a GET of scalar OIDs, or a walk of a table with one instance per row.
///
/// Credentials and transport come from the device's properties: `snmp.version` (`v1`,
/// `v2c` (default) or `v3`), `snmp.community`, `snmp.security` (v3 user), `snmp.auth`
/// (`MD5`, `SHA`, …), `snmp.authToken`, `snmp.priv` (`DES`, `AES`, …), `snmp.privToken`
/// and `snmp.port` (default 161).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnmpCollector {
    /// The table walked for instances; required exactly when the datasource has instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<SnmpTable>,
    /// Datapoint name → OID: a scalar OID (`1.3.6.1.2.1.1.3.0`) without instances, a table
    /// column OID with instances (the value of an instance is `column.index`).
    pub oids: BTreeMap<String, String>,
    /// Timeout of one request, in milliseconds.
    #[serde(default = "default_snmp_timeout")]
    pub timeout_ms: u32,
}

/// How an SNMP table's rows become instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnmpTable {
    /// A column present in every row (ifIndex `1.3.6.1.2.1.2.2.1.1`); walking it lists the
    /// rows, and each row's index (the OID suffix after the column, one or more numbers)
    /// identifies an instance.
    pub index_oid: String,
    /// The column naming an instance (ifName `1.3.6.1.2.1.31.1.1.1.1`); absent: the
    /// instance is named by its index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_oid: Option<String>,
    /// The column describing an instance (ifAlias), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description_oid: Option<String>,
}

/// Where an SSH datasource runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SshTarget {
    /// On the collector's own host (the device whose `system.collectorhost` property is
    /// `true`) the data is read locally; on any other device the command runs over SSH.
    #[default]
    Auto,
    /// Always over SSH.
    Ssh,
    /// Only on the collector's own host, read locally; other devices get no data.
    Local,
}

/// SSH: a command run over SSH (`ssh.user`, `ssh.pass` or `ssh.key`, `ssh.port` default
/// 22), its output read by a named parser.
///
/// On the collector's own host the collector never runs the command: it reads the
/// parser's own source (`/proc/stat`, `/proc/meminfo`, mounted filesystems,
/// `/proc/net/dev`), so that a datasource cannot run commands on collector hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshCollector {
    /// Where it runs.
    #[serde(default)]
    pub target: SshTarget,
    /// The command run over SSH, taken literally (no property tokens). Required unless the
    /// target is `local`.
    #[serde(default)]
    pub command: String,
    /// How the output is read.
    pub parser: SshParser,
    /// Datapoint name → parser field.
    pub fields: BTreeMap<String, String>,
    /// Timeout of the whole command, in milliseconds.
    #[serde(default = "default_ssh_timeout")]
    pub timeout_ms: u32,
}

/// The parsers of SSH output. (The variants without parameters are empty structs so that
/// unknown fields are refused in them too.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SshParser {
    /// `/proc/stat`: the aggregate `cpu` line and a few counters. One instance.
    ProcStat {},
    /// `/proc/meminfo`: every key, in bytes when the line says `kB`. One instance.
    Meminfo {},
    /// `df -P -k`: one instance per filesystem, named by its mount point.
    Df {},
    /// `/proc/net/dev`: one instance per interface, named by the interface.
    NetDev {},
    /// `key<separator>value` lines; with instances `instance.key<separator>value`, the
    /// instance being everything before the last `.` of the left side.
    KeyValue {
        /// The separator, `=` by default.
        #[serde(default = "default_separator")]
        separator: String,
    },
    /// A regular expression with named captures, each capture a field. Without instances
    /// the first match counts; with instances every match is one, named by the capture
    /// `instance`.
    Regex {
        /// The pattern (the `regex` crate's syntax).
        pattern: String,
    },
}

/// Fields of the `proc_stat` parser.
pub const PROC_STAT_FIELDS: &[&str] = &[
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
    "total",
    "ctxt",
    "intr",
    "processes",
    "procs_running",
    "procs_blocked",
];

/// Fields of the `df` parser (bytes, and the `Capacity` column in percent).
pub const DF_FIELDS: &[&str] = &["total", "used", "available", "used_percent"];

/// Fields of the `net_dev` parser.
pub const NET_DEV_FIELDS: &[&str] = &[
    "rx_bytes",
    "rx_packets",
    "rx_errs",
    "rx_drop",
    "rx_fifo",
    "rx_frame",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errs",
    "tx_drop",
    "tx_fifo",
    "tx_colls",
    "tx_carrier",
    "tx_compressed",
];

impl SshParser {
    /// The parser's name in the file format.
    pub fn kind(&self) -> &'static str {
        match self {
            SshParser::ProcStat {} => "proc_stat",
            SshParser::Meminfo {} => "meminfo",
            SshParser::Df {} => "df",
            SshParser::NetDev {} => "net_dev",
            SshParser::KeyValue { .. } => "key_value",
            SshParser::Regex { .. } => "regex",
        }
    }

    /// The fields the parser produces, when it is a fixed set.
    pub fn fixed_fields(&self) -> Option<&'static [&'static str]> {
        match self {
            SshParser::ProcStat {} => Some(PROC_STAT_FIELDS),
            SshParser::Df {} => Some(DF_FIELDS),
            SshParser::NetDev {} => Some(NET_DEV_FIELDS),
            _ => None,
        }
    }

    /// Whether the collector can read the parser's data on its own host without running a
    /// command.
    pub fn has_local_source(&self) -> bool {
        matches!(
            self,
            SshParser::ProcStat {}
                | SshParser::Meminfo {}
                | SshParser::Df {}
                | SshParser::NetDev {}
        )
    }

    /// `Some(true)` when the parser always yields instances, `Some(false)` when it never
    /// does, `None` when either works.
    pub fn instances(&self) -> Option<bool> {
        match self {
            SshParser::ProcStat {} | SshParser::Meminfo {} => Some(false),
            SshParser::Df {} | SshParser::NetDev {} => Some(true),
            SshParser::KeyValue { .. } | SshParser::Regex { .. } => None,
        }
    }
}

/// The HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD`.
    Head,
    /// `POST`, with [`HttpCollector::body`].
    Post,
}

/// HTTP: one request per collection. Single instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCollector {
    /// `http://` or `https://` URL template; `##property##` tokens are replaced by the
    /// device's properties (`https://##system.hostname##/health`).
    pub url: String,
    /// The request method.
    #[serde(default)]
    pub http_method: HttpMethod,
    /// The request body, for `POST` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The status `statusOk` compares with.
    #[serde(default = "default_expected_status")]
    pub expected_status: u16,
    /// Timeout of the request, in milliseconds.
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u32,
    /// Whether the server's certificate is verified. The certificate's expiry is measured
    /// either way.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// Datapoint name → measurement.
    pub values: BTreeMap<String, HttpValue>,
}

/// What an HTTP datapoint measures. Written as a string: `statusCode`, `statusOk`,
/// `latencyMs`, `bodyBytes`, `certDaysToExpiry` or `json:` followed by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HttpValue {
    /// The response status code.
    StatusCode,
    /// 1 when the status is the expected one, 0 otherwise.
    StatusOk,
    /// Milliseconds from the request to the end of the response.
    LatencyMs,
    /// Length of the response body.
    BodyBytes,
    /// Days until the server certificate expires (negative once expired); `https` only.
    CertDaysToExpiry,
    /// The number at this JSON pointer (RFC 6901) in a JSON body; a string holding a
    /// number counts, `true` is 1 and `false` 0.
    Json(String),
}

/// A string naming no [`HttpValue`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown HTTP value `{0}`: use statusCode, statusOk, latencyMs, bodyBytes, certDaysToExpiry or json:/pointer")]
pub struct InvalidHttpValue(pub String);

impl TryFrom<String> for HttpValue {
    type Error = InvalidHttpValue;
    fn try_from(s: String) -> Result<Self, InvalidHttpValue> {
        Ok(match s.as_str() {
            "statusCode" => HttpValue::StatusCode,
            "statusOk" => HttpValue::StatusOk,
            "latencyMs" => HttpValue::LatencyMs,
            "bodyBytes" => HttpValue::BodyBytes,
            "certDaysToExpiry" => HttpValue::CertDaysToExpiry,
            other => match other.strip_prefix("json:") {
                Some(pointer) => HttpValue::Json(pointer.to_string()),
                None => return Err(InvalidHttpValue(s)),
            },
        })
    }
}

impl From<HttpValue> for String {
    fn from(v: HttpValue) -> String {
        match v {
            HttpValue::StatusCode => "statusCode".into(),
            HttpValue::StatusOk => "statusOk".into(),
            HttpValue::LatencyMs => "latencyMs".into(),
            HttpValue::BodyBytes => "bodyBytes".into(),
            HttpValue::CertDaysToExpiry => "certDaysToExpiry".into(),
            HttpValue::Json(pointer) => format!("json:{pointer}"),
        }
    }
}

/// Ping: ICMP echo to `system.hostname`. Single instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PingCollector {
    /// Echo requests per collection (1 to 20).
    #[serde(default = "default_ping_count")]
    pub count: u32,
    /// How long to wait for each reply, in milliseconds.
    #[serde(default = "default_ping_timeout")]
    pub timeout_ms: u32,
    /// Datapoint name → measurement.
    pub values: BTreeMap<String, PingValue>,
}

/// What a ping datapoint measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PingValue {
    /// Percentage of requests without a reply (0 to 100).
    LossPercent,
    /// Average round-trip time of the replies, in milliseconds (no value without replies).
    RttAvgMs,
    /// Shortest round-trip time, in milliseconds.
    RttMinMs,
    /// Longest round-trip time, in milliseconds.
    RttMaxMs,
}

/// Prometheus: an exporter's text exposition, read over HTTP(S).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusCollector {
    /// The exporter's URL template (`http://##system.hostname##:9100/metrics`).
    pub url: String,
    /// Timeout of the request, in milliseconds.
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u32,
    /// Whether the exporter's certificate is verified.
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// The label whose values are the instances; required exactly when the datasource has
    /// instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_label: Option<String>,
    /// Datapoint name → the series it reads.
    pub metrics: BTreeMap<String, PromSelector>,
}

/// A set of Prometheus series: a metric name and exact label matches. When several series
/// match (for one instance) the datapoint is their sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromSelector {
    /// The metric name.
    pub metric: String,
    /// Label name → required value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Script: a script the collector host's administrator installed in the collector's
/// scripts directory, named here, never a command line. It prints `key=value` lines (with
/// instances `instance.key=value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScriptCollector {
    /// The script's file name in the scripts directory (no path).
    pub script: String,
    /// Arguments, passed as such (no shell); `##property##` tokens are replaced by the
    /// device's properties. Credential properties are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Timeout of the run, in milliseconds.
    #[serde(default = "default_script_timeout")]
    pub timeout_ms: u32,
    /// Datapoint name → key in the output.
    pub keys: BTreeMap<String, String>,
    /// The script's text as uploaded with the module, for review: the portal lints it
    /// ([`crate::module_lint`]) and shows the findings, and the collector runs its
    /// installed copy only when it is byte-for-byte this text (SHA-256 compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}
