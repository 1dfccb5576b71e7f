//! From what a method collected to the results sent to the portal: counters and derives
//! become per-second rates ([`counter_rate`]), `minValue`/`maxValue` discard invalid
//! values, expression datapoints are computed ([`ExpressionSet`]), non-finite values are
//! dropped. Pure, apart from the per-task rate state the caller keeps.

use std::collections::{BTreeMap, HashMap, HashSet};

use palisade_core::datasource::{
    counter_rate, DataPoint, DataSource, DatapointType, ExpressionSet,
};
use serde::{Deserialize, Serialize};

/// One instance as a method collected it: raw values by datapoint name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawInstance {
    /// Instance name; `None` for single-instance datasources.
    pub name: Option<String>,
    /// Name shown in the portal.
    pub display_name: Option<String>,
    /// Properties of the instance (filesystem type, …).
    pub properties: BTreeMap<String, String>,
    /// Raw values (counters as read, not rates) by datapoint name.
    pub values: BTreeMap<String, f64>,
}

/// What a collection gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Data (possibly no instance at all).
    Instances(Vec<RawInstance>),
    /// The collector lacks a privilege: never silently empty.
    Denied {
        /// What happened.
        message: String,
        /// The privilege that would make it work.
        lacks: String,
    },
    /// Anything else that prevented the collection.
    Error {
        /// What happened.
        message: String,
    },
}

impl Outcome {
    /// An error outcome.
    pub fn error(message: impl Into<String>) -> Outcome {
        Outcome::Error {
            message: message.into(),
        }
    }
}

/// One result of the protocol (`results[]` of `POST /api/collector/v1/results`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultItem {
    /// The device.
    pub device_id: i64,
    /// The datasource name.
    pub datasource: String,
    /// Instance; omitted for single-instance datasources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Shown name of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_display_name: Option<String>,
    /// Instance properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_properties: BTreeMap<String, String>,
    /// Epoch ms of the collection.
    pub timestamp: i64,
    /// Datapoint → stored value.
    pub values: BTreeMap<String, f64>,
    /// `ok`, `denied` or `error`.
    pub status: String,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The missing privilege (for `denied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lacks: Option<String>,
}

/// The previous raw sample of each counter and derive, per instance and datapoint.
#[derive(Debug, Default, Clone)]
pub struct RateState {
    prev: HashMap<(String, String), (i64, f64)>,
}

fn within(dp: &DataPoint, v: f64) -> bool {
    v.is_finite() && dp.min_value.is_none_or(|m| v >= m) && dp.max_value.is_none_or(|m| v <= m)
}

/// Turns an outcome into results at `timestamp`.
pub fn process(
    ds: &DataSource,
    exprs: &ExpressionSet,
    state: &mut RateState,
    device_id: i64,
    timestamp: i64,
    outcome: Outcome,
) -> Vec<ResultItem> {
    let base = |status: &str, message: Option<String>, lacks: Option<String>| ResultItem {
        device_id,
        datasource: ds.name.clone(),
        instance: None,
        instance_display_name: None,
        instance_properties: BTreeMap::new(),
        timestamp,
        values: BTreeMap::new(),
        status: status.into(),
        message,
        lacks,
    };
    let instances = match outcome {
        Outcome::Denied { message, lacks } => {
            return vec![base("denied", Some(message), Some(lacks))]
        }
        Outcome::Error { message } => return vec![base("error", Some(message), None)],
        Outcome::Instances(i) => i,
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(instances.len());
    for inst in instances {
        let key = inst.name.clone().unwrap_or_default();
        seen.insert(key.clone());
        let mut values = BTreeMap::new();
        for dp in ds.data_points.iter().filter(|d| d.kind.is_collected()) {
            let Some(&raw) = inst.values.get(&dp.name) else {
                continue;
            };
            let stored = match dp.kind {
                DatapointType::Gauge => Some(raw),
                DatapointType::Counter | DatapointType::Derive => {
                    let prev = state
                        .prev
                        .insert((key.clone(), dp.name.clone()), (timestamp, raw));
                    prev.and_then(|p| counter_rate(p, (timestamp, raw), dp.kind))
                }
                DatapointType::Expression => None,
            };
            if let Some(v) = stored.filter(|v| within(dp, *v)) {
                values.insert(dp.name.clone(), v);
            }
        }
        exprs.evaluate(&mut values);
        values.retain(|name, v| ds.datapoint(name).is_some_and(|dp| within(dp, *v)));
        let mut item = base("ok", None, None);
        item.instance = inst.name;
        item.instance_display_name = inst.display_name;
        item.instance_properties = inst.properties;
        item.values = values;
        out.push(item);
    }
    // Forget instances that went away, so that the state stays bounded.
    state.prev.retain(|(inst, _), _| seen.contains(inst));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use palisade_core::datasource::builtins;

    fn ds(name: &str) -> DataSource {
        builtins().into_iter().find(|d| d.name == name).unwrap()
    }

    fn inst(name: Option<&str>, vals: &[(&str, f64)]) -> RawInstance {
        RawInstance {
            name: name.map(str::to_string),
            values: vals.iter().map(|(k, v)| ((*k).to_string(), *v)).collect(),
            ..RawInstance::default()
        }
    }

    #[test]
    fn counters_become_rates_and_expressions_follow() {
        let cpu = ds("HostCPU");
        let ex = ExpressionSet::compile(&cpu).unwrap();
        let mut st = RateState::default();
        let first = process(
            &cpu,
            &ex,
            &mut st,
            1,
            0,
            Outcome::Instances(vec![inst(
                None,
                &[
                    ("User", 100.0),
                    ("Idle", 900.0),
                    ("IOWait", 0.0),
                    ("Total", 1000.0),
                    ("ProcsRunning", 3.0),
                ],
            )]),
        );
        // First sample: counters have no rate yet; gauges do.
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].values.get("ProcsRunning"), Some(&3.0));
        assert!(!first[0].values.contains_key("User"));
        assert!(first[0].instance.is_none());
        let second = process(
            &cpu,
            &ex,
            &mut st,
            1,
            10_000,
            Outcome::Instances(vec![inst(
                None,
                &[
                    ("User", 200.0),
                    ("Idle", 1700.0),
                    ("IOWait", 0.0),
                    ("Total", 2000.0),
                    ("ProcsRunning", 1.0),
                ],
            )]),
        );
        let v = &second[0].values;
        assert_eq!(v["User"], 10.0);
        assert_eq!(v["Total"], 100.0);
        assert_eq!(v["CPUBusyPercent"], 20.0, "{v:?}");
    }

    #[test]
    fn memory_expressions_and_limits() {
        let mem = ds("HostMemory");
        let ex = ExpressionSet::compile(&mem).unwrap();
        let mut st = RateState::default();
        let r = process(
            &mem,
            &ex,
            &mut st,
            1,
            5,
            Outcome::Instances(vec![inst(
                None,
                &[
                    ("MemTotal", 1000.0),
                    ("MemAvailable", 250.0),
                    ("SwapTotal", 0.0),
                    ("SwapFree", 0.0),
                    ("Bogus", 1.0),
                ],
            )]),
        );
        let v = &r[0].values;
        assert_eq!(v["MemUsedPercent"], 75.0);
        assert!(
            !v.contains_key("SwapUsedPercent"),
            "division by zero gives no value"
        );
        assert!(!v.contains_key("Bogus"));
        // A negative byte count is below minValue? HostMemory has no minValue: kept.
        assert_eq!(r[0].status, "ok");
        assert_eq!(r[0].timestamp, 5);
    }

    #[test]
    fn denied_and_error_results() {
        let ping = ds("Ping");
        let ex = ExpressionSet::compile(&ping).unwrap();
        let mut st = RateState::default();
        let d = process(
            &ping,
            &ex,
            &mut st,
            9,
            1,
            Outcome::Denied {
                message: "no".into(),
                lacks: "CAP_NET_RAW".into(),
            },
        );
        assert_eq!(d[0].status, "denied");
        assert_eq!(d[0].lacks.as_deref(), Some("CAP_NET_RAW"));
        let json = serde_json::to_value(&d[0]).unwrap();
        assert_eq!(json["deviceId"], 9);
        assert!(json.get("instance").is_none());
        let e = process(&ping, &ex, &mut st, 9, 1, Outcome::error("boom"));
        assert_eq!(e[0].status, "error");
        assert!(e[0].values.is_empty());
    }

    #[test]
    fn instance_state_is_pruned() {
        let net = ds("HostNetwork");
        let ex = ExpressionSet::compile(&net).unwrap();
        let mut st = RateState::default();
        let one = |n: &str, v: f64| inst(Some(n), &[("RxBytes", v)]);
        process(
            &net,
            &ex,
            &mut st,
            1,
            0,
            Outcome::Instances(vec![one("eth0", 0.0), one("eth1", 0.0)]),
        );
        assert_eq!(st.prev.len(), 2);
        let r = process(
            &net,
            &ex,
            &mut st,
            1,
            1_000,
            Outcome::Instances(vec![one("eth0", 1_000.0)]),
        );
        assert_eq!(st.prev.len(), 1);
        assert_eq!(r[0].values["RxBytes"], 1_000.0);
        assert_eq!(r[0].values["RxBitsPerSecond"], 8_000.0);
        assert_eq!(r[0].instance.as_deref(), Some("eth0"));
    }
}
