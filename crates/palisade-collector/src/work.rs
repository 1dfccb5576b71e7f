//! The work the portal hands out (`GET /api/collector/v1/work`): devices with their
//! resolved properties (credentials included, for this collector only) and the
//! datasources that apply to them.
//!
//! Credentials live in memory only. The work cache on disk (`work.json`, used when the
//! collector restarts while the portal is unreachable) has every credential property
//! removed ([`palisade_core::property::is_credential`]), and a [`Device`]'s `Debug` masks
//! them, so that a log line can never carry one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use palisade_core::datasource::{self, DataSource, COLLECTOR_HOST_PROPERTY};
use palisade_core::property::{is_credential, MASK};
use serde_json::Value;

use crate::buffer::write_atomic;
use crate::error::Result;

/// The work cache file in the state directory.
pub const CACHE_FILE: &str = "work.json";

/// A device to collect from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Device {
    /// The portal's id.
    pub id: i64,
    /// Host name or address.
    pub host: String,
    /// Display name.
    pub display_name: String,
    /// Properties by lower-case name.
    properties: BTreeMap<String, String>,
    /// Names of the datasources that apply.
    pub datasources: Vec<String>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let v = if is_credential(k) { MASK } else { v.as_str() };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("display_name", &self.display_name)
            .field("properties", &shown)
            .field("datasources", &self.datasources)
            .finish()
    }
}

impl Device {
    /// A device (for tests and the methods' own tests).
    pub fn new(id: i64, host: &str, properties: &[(&str, &str)]) -> Device {
        Device {
            id,
            host: host.into(),
            display_name: host.into(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_string()))
                .collect(),
            datasources: Vec::new(),
        }
    }

    /// A property (name case-insensitive), credentials included.
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.properties
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// A property for a `##token##` template: never a credential (URLs and arguments end up
    /// in logs and process lists).
    pub fn template_prop(&self, name: &str) -> Option<String> {
        if is_credential(name) {
            return None;
        }
        self.prop(name).map(str::to_string)
    }

    /// The address to contact: `system.hostname`, else the device's host.
    pub fn address(&self) -> &str {
        self.prop("system.hostname")
            .filter(|h| !h.is_empty())
            .unwrap_or(&self.host)
    }

    /// Whether the device is the collector's own host: `system.collectorhost` is `true`,
    /// or its address is a loopback address, `localhost`, or this host's name. (Reading
    /// `/proc` locally is what an SSH session to the same host would read, without running
    /// any command.)
    pub fn is_collector_host(&self, own_hostname: &str) -> bool {
        if self
            .prop(COLLECTOR_HOST_PROPERTY)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return true;
        }
        let addr = self.address().trim_start_matches('[').trim_end_matches(']');
        addr.eq_ignore_ascii_case("localhost")
            || addr
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
            || (!own_hostname.is_empty() && addr.eq_ignore_ascii_case(own_hostname))
    }
}

/// The parsed work.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// The work's version.
    pub version: String,
    /// Devices.
    pub devices: Vec<Device>,
    /// Datasources by name.
    pub datasources: BTreeMap<String, Arc<DataSource>>,
    /// Datasources that could not be read (name or position, and why).
    pub problems: Vec<String>,
}

/// Reads a work answer. Invalid datasources are left out and listed in `problems`.
pub fn parse(v: &Value) -> Work {
    let mut work = Work {
        version: v["version"].as_str().unwrap_or_default().to_string(),
        ..Work::default()
    };
    for (i, def) in v["datasources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match datasource::import(&def.to_string()) {
            Ok(ds) => {
                work.datasources.insert(ds.name.clone(), Arc::new(ds));
            }
            Err(e) => {
                let name = def["name"].as_str().map_or(format!("#{i}"), str::to_string);
                work.problems.push(format!("datasource {name}: {e}"));
            }
        }
    }
    for d in v["devices"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let Some(id) = d["id"].as_i64() else { continue };
        let properties = d["properties"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.to_ascii_lowercase(), s.into())))
                    .collect()
            })
            .unwrap_or_default();
        work.devices.push(Device {
            id,
            host: d["host"].as_str().unwrap_or_default().to_string(),
            display_name: d["displayName"].as_str().unwrap_or_default().to_string(),
            properties,
            datasources: d["datasources"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    work
}

/// The work answer without any credential property.
pub fn strip_credentials(v: &Value) -> Value {
    let mut out = v.clone();
    if let Some(devices) = out.get_mut("devices").and_then(Value::as_array_mut) {
        for d in devices {
            if let Some(props) = d.get_mut("properties").and_then(Value::as_object_mut) {
                props.retain(|k, _| !is_credential(k));
            }
        }
    }
    out
}

/// Saves the work cache (credentials stripped).
pub fn save_cache(state_dir: &Path, v: &Value) -> Result<()> {
    let text = serde_json::to_vec(&strip_credentials(v)).unwrap_or_default();
    write_atomic(&state_dir.join(CACHE_FILE), &text)
}

/// Loads the work cache, if any.
pub fn load_cache(state_dir: &Path) -> Option<Value> {
    let text = std::fs::read(state_dir.join(CACHE_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        let ping = datasource::export(
            &datasource::builtins()
                .into_iter()
                .find(|d| d.name == "Ping")
                .unwrap(),
        );
        json!({
            "collectorId": 7, "version": "v1",
            "devices": [{"id": 12, "host": "10.0.0.5", "displayName": "web-1",
                "properties": {"system.hostname": "10.0.0.5", "snmp.community": "s3cret",
                               "ssh.pass": "pw", "SSH.User": "mon"},
                "datasources": ["Ping", "Broken"]}],
            "datasources": [serde_json::from_str::<Value>(&ping).unwrap(),
                            {"name": "Broken", "collectMethod": "ping"}]
        })
    }

    #[test]
    fn parses_devices_and_datasources() {
        let w = parse(&sample());
        assert_eq!(w.version, "v1");
        assert_eq!(w.devices.len(), 1);
        let d = &w.devices[0];
        assert_eq!(d.prop("ssh.user"), Some("mon"));
        assert_eq!(d.prop("SNMP.community"), Some("s3cret"));
        assert_eq!(d.template_prop("snmp.community"), None);
        assert_eq!(
            d.template_prop("system.hostname").as_deref(),
            Some("10.0.0.5")
        );
        assert!(w.datasources.contains_key("Ping"));
        assert_eq!(w.problems.len(), 1);
        assert!(w.problems[0].contains("Broken"));
    }

    #[test]
    fn credentials_never_in_debug_or_cache() {
        let v = sample();
        let w = parse(&v);
        let dbg = format!("{:?}", w.devices[0]);
        assert!(!dbg.contains("s3cret") && !dbg.contains("\"pw\""), "{dbg}");
        let stripped = strip_credentials(&v).to_string();
        assert!(!stripped.contains("s3cret") && !stripped.contains("ssh.pass"));
        assert!(stripped.contains("SSH.User"));
        let dir =
            std::env::temp_dir().join(format!("palisade-collector-work-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        save_cache(&dir, &v).unwrap();
        let raw = std::fs::read_to_string(dir.join(CACHE_FILE)).unwrap();
        assert!(!raw.contains("s3cret"));
        assert_eq!(load_cache(&dir).unwrap()["version"], "v1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn collector_host() {
        assert!(Device::new(1, "127.0.0.1", &[]).is_collector_host("h"));
        assert!(Device::new(1, "::1", &[]).is_collector_host("h"));
        assert!(Device::new(1, "Box-A", &[]).is_collector_host("box-a"));
        assert!(
            Device::new(1, "10.0.0.1", &[("system.collectorhost", "true")]).is_collector_host("h")
        );
        assert!(!Device::new(1, "10.0.0.1", &[]).is_collector_host("h"));
        assert!(!Device::new(1, "10.0.0.1", &[]).is_collector_host(""));
    }
}
