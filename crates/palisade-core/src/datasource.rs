//! Datasources: what the collector collects from a device, and how.
//!
//! A [`DataSource`] says which devices it applies to (`appliesTo`, see
//! [`crate::applies_to`]), how the collector collects from them (`collectMethod` and the
//! method's parameters in [`Collector`]: SNMP, SSH, HTTP, ping, Prometheus exporters or a
//! script installed on the collector host), how often (`collectInterval`), whether a device
//! has several instances of it (interfaces, filesystems), and the [`DataPoint`]s it
//! produces with their default thresholds. Field names are LogicMonitor's where it has them.
//!
//! * [`import`] reads the file format users keep under version control and validates it
//!   ([`DataSource::validate`]): unknown fields are refused so that typos are caught, and
//!   every error names the field at fault ([`DatasourceError`]).
//! * [`export`] writes it: pretty JSON, fields in a fixed order, maps sorted, a trailing
//!   newline, no portal `id`. `import(&export(&ds))` gives `ds` back (without its id), and
//!   `export(&import(text)?)` gives back any text that was itself exported.
//! * [`builtins`] are the datasources Palisade ships (host CPU, memory, disks and network
//!   over SSH or on the collector's own host, SNMP system, interfaces, storage and
//!   processors, ping, HTTP).
//! * [`counter_rate`] turns two samples of a `counter` or `derive` datapoint into a
//!   per-second rate, wraps and resets included; [`ExpressionSet`] computes `expression`
//!   datapoints (language in [`expr`]); [`expand_template`] fills `##property##` tokens.
//!
//! The collector's own host is the device whose property `system.collectorhost` is `true`;
//! SSH datasources read it directly instead of over SSH, without running any command.
//!
//! The format is documented for users in `docs/datasources.md`.
//!
//! ```
//! use palisade_core::datasource::{self, CollectMethod};
//! # fn main() -> Result<(), datasource::DatasourceError> {
//! let ping = datasource::builtins()
//!     .into_iter()
//!     .find(|d| d.name == "Ping")
//!     .ok_or(datasource::DatasourceError::Empty { field: "name".into() })?;
//! assert_eq!(ping.collect_method, CollectMethod::Ping);
//! let text = datasource::export(&ping);
//! assert!(text.starts_with("{\n  \"name\": \"Ping\",") && text.ends_with("}\n"));
//! assert_eq!(datasource::import(&text)?, ping);
//! # Ok(())
//! # }
//! ```

mod builtin;
mod check_collector;
mod collector;
mod error;
pub mod expr;
mod model;
mod rate;
mod template;
mod validate;

pub use builtin::builtins;
pub use check_collector::{is_valid_oid, is_valid_script_name};
pub use collector::{
    Collector, HttpCollector, HttpMethod, HttpValue, InvalidHttpValue, PingCollector, PingValue,
    PromSelector, PrometheusCollector, ScriptCollector, SnmpCollector, SnmpTable, SshCollector,
    SshParser, SshTarget, DF_FIELDS, NET_DEV_FIELDS, PROC_STAT_FIELDS,
};
pub use error::DatasourceError;
pub use model::{
    AlertForNoData, CollectMethod, DataPoint, DataSource, DatapointType, InvalidAlertForNoData,
};
pub use rate::counter_rate;
pub use template::{expand_template, MAX_TEMPLATE_LEN};
pub use validate::{
    is_light_threshold, is_valid_datapoint_name, is_valid_name, ExpressionSet, MAX_INTERVAL,
    MIN_INTERVAL,
};

/// Most datapoints in one datasource.
pub const MAX_DATAPOINTS: usize = 100;

/// Largest document [`import`] reads, in bytes.
pub const MAX_DOCUMENT_LEN: usize = 1024 * 1024;

/// The property that marks the collector's own host (value `true`).
pub const COLLECTOR_HOST_PROPERTY: &str = "system.collectorhost";

/// Writes a datasource in the file format: pretty JSON (two-space indentation), fields in
/// the order of the types, maps sorted by key, a trailing newline, and no `id` (a file
/// moves between portals; the id belongs to one).
pub fn export(ds: &DataSource) -> String {
    let mut copy = ds.clone();
    copy.id = None;
    // Serialising these types cannot fail: every map key is a string and every number a
    // plain integer or float.
    let mut text = serde_json::to_string_pretty(&copy).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads a datasource file and validates it. Unknown fields are refused; an `id` is
/// accepted and ignored, so that an exported API answer can be imported as is.
pub fn import(text: &str) -> Result<DataSource, DatasourceError> {
    if text.len() > MAX_DOCUMENT_LEN {
        return Err(DatasourceError::TooLong {
            field: "document".into(),
            len: text.len(),
            max: MAX_DOCUMENT_LEN,
        });
    }
    let mut ds: DataSource = serde_json::from_str(text).map_err(|e| DatasourceError::Format {
        message: e.to_string(),
    })?;
    ds.id = None;
    ds.validate()?;
    Ok(ds)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_methods;
