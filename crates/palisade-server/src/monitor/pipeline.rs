//! Where samples enter: from collectors' result batches and from push ingest. Each sample
//! becomes a point of one series in the time-series store, with the labels `device` (the
//! device's display name), `datasource`, `instance` and `datapoint` and the metric name
//! `<datasource>_<datapoint>` (characters outside `[a-zA-Z0-9_]` replaced by `_`); the
//! device's datasource instances are registered for LogicMonitor's data endpoints; then the
//! alert evaluator sees every point.

use crate::error::ApiError;
use crate::AppState;
use palisade_store::objects::InstanceSpec;
use palisade_tsdb::{Sample, SeriesKey};
use std::collections::{BTreeMap, HashSet};

/// One sample of one datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Device id.
    pub device_id: i64,
    /// Device display name (the `device` label).
    pub device: String,
    /// Datasource name.
    pub datasource: String,
    /// Instance name (the datasource's name for single-instance datasources).
    pub instance: String,
    /// Datapoint name.
    pub datapoint: String,
    /// Epoch ms.
    pub ts_ms: i64,
    /// Value.
    pub value: f64,
}

/// `<datasource>_<datapoint>` with characters outside `[a-zA-Z0-9_]` replaced by `_` (and a
/// leading digit prefixed with `_`, which Prometheus requires).
pub fn metric_name(datasource: &str, datapoint: &str) -> String {
    let mut out: String = format!("{datasource}_{datapoint}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The series of a point.
pub fn series_key(device: &str, datasource: &str, instance: &str, datapoint: &str) -> SeriesKey {
    SeriesKey::new(metric_name(datasource, datapoint))
        .with_label("device", device)
        .with_label("datasource", datasource)
        .with_label("instance", instance)
        .with_label("datapoint", datapoint)
}

/// Instances already registered by this process.
#[derive(Debug, Default)]
pub struct KnownInstances(parking_lot::Mutex<HashSet<(i64, String, String)>>);

/// A pushed series: device id, datasource, instance, datapoint.
type CounterSeries = (i64, String, String, String);

/// The last raw value of each pushed counter or derive series, from which the next value's
/// per-second rate is computed (LogicMonitor stores counters as rates). Kept in memory: the
/// first sample of a series after a restart only primes it.
#[derive(Debug, Default)]
pub struct RawCounters(parking_lot::Mutex<std::collections::HashMap<CounterSeries, (i64, f64)>>);

impl RawCounters {
    /// The rate from the previous raw value to this one (`None` for the first sample, on a
    /// reset, or for a sample not newer than the previous one).
    pub fn rate(
        &self,
        series: (i64, &str, &str, &str),
        ts_ms: i64,
        raw: f64,
        kind: palisade_core::datasource::DatapointType,
    ) -> Option<f64> {
        let key = (
            series.0,
            series.1.to_string(),
            series.2.to_string(),
            series.3.to_string(),
        );
        let mut map = self.0.lock();
        let prev = map.get(&key).copied();
        match prev {
            Some((t0, _)) if ts_ms <= t0 => None,
            Some(p) => {
                map.insert(key, (ts_ms, raw));
                palisade_core::datasource::counter_rate(p, (ts_ms, raw), kind)
            }
            None => {
                map.insert(key, (ts_ms, raw));
                None
            }
        }
    }
}

/// Stores points durably (returns when the store acknowledged them), registers new
/// instances, then feeds the alert evaluator.
pub async fn accept(
    state: &AppState,
    points: Vec<Point>,
    instance_meta: &BTreeMap<(i64, String, String), InstanceSpec>,
) -> Result<usize, ApiError> {
    if points.is_empty() {
        return Ok(0);
    }
    let tsdb = state.tsdb()?;
    // Group by series (keys built once per series, not per sample).
    let mut by_series: BTreeMap<(&str, &str, &str, &str), Vec<Sample>> = BTreeMap::new();
    for p in &points {
        by_series
            .entry((&p.device, &p.datasource, &p.instance, &p.datapoint))
            .or_default()
            .push(Sample::new(p.ts_ms, p.value));
    }
    let batch: Vec<(SeriesKey, Vec<Sample>)> = by_series
        .into_iter()
        .map(|((d, ds, i, dp), s)| (series_key(d, ds, i, dp), s))
        .collect();
    tsdb.append(&batch).await.map_err(|e| {
        tracing::error!(error = %e, "time-series store refused samples");
        ApiError::Unavailable
    })?;

    // New instances, registered once per process.
    let mut fresh: BTreeMap<(i64, String), Vec<InstanceSpec>> = BTreeMap::new();
    {
        let mut known = state.known_instances.0.lock();
        for p in &points {
            let k = (p.device_id, p.datasource.clone(), p.instance.clone());
            if known.insert(k.clone()) {
                let spec = instance_meta.get(&k).cloned().unwrap_or(InstanceSpec {
                    name: p.instance.clone(),
                    display_name: p.instance.clone(),
                    description: String::new(),
                    properties: "{}".into(),
                });
                let list = fresh
                    .entry((p.device_id, p.datasource.clone()))
                    .or_default();
                if !list.iter().any(|s| s.name == spec.name) {
                    list.push(spec);
                }
            }
        }
    }
    let now = state.portal.now();
    for ((device, ds), specs) in fresh {
        if let Err(e) = state
            .portal
            .store
            .ensure_instances(device, &ds, &specs, now)
            .await
        {
            // Forget them so the next batch tries again.
            let mut known = state.known_instances.0.lock();
            for s in &specs {
                known.remove(&(device, ds.clone(), s.name.clone()));
            }
            return Err(e.into());
        }
    }
    let n = points.len();
    state.alerts.observe(state, &points).await;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_become_rates() {
        use palisade_core::datasource::DatapointType;
        let c = RawCounters::default();
        let s = (1, "ds", "i", "bytes");
        assert_eq!(c.rate(s, 0, 100.0, DatapointType::Counter), None);
        assert_eq!(c.rate(s, 10_000, 200.0, DatapointType::Counter), Some(10.0));
        assert_eq!(
            c.rate(s, 10_000, 300.0, DatapointType::Counter),
            None,
            "not newer"
        );
        assert_eq!(
            c.rate(s, 20_000, 5.0, DatapointType::Counter),
            None,
            "reset"
        );
        assert_eq!(c.rate(s, 30_000, 55.0, DatapointType::Counter), Some(5.0));
        let d = (1, "ds", "i", "temp");
        assert_eq!(c.rate(d, 0, 10.0, DatapointType::Derive), None);
        assert_eq!(c.rate(d, 1_000, 5.0, DatapointType::Derive), Some(-5.0));
    }

    #[test]
    fn metric_names_are_prometheus_safe() {
        assert_eq!(metric_name("HostCPU", "usage"), "HostCPU_usage");
        assert_eq!(
            metric_name("SNMP Interfaces", "in-octets"),
            "SNMP_Interfaces_in_octets"
        );
        assert_eq!(metric_name("9x", "a.b"), "_9x_a_b");
    }
}
