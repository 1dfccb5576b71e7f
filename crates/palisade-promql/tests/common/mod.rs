//! A simple Vec-backed `TimeSeriesStore` honouring the trait's semantics, for tests.
#![allow(dead_code)]

use async_trait::async_trait;
use palisade_tsdb::{Aggregation, Labels, Sample, Selector, SeriesKey, TimeSeriesStore, TsdbError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// In-memory store: series key → samples sorted by time (last write wins).
#[derive(Default)]
pub struct MemStore {
    data: Mutex<BTreeMap<SeriesKey, BTreeMap<i64, f64>>>,
    /// How many `query_range` calls were made.
    pub range_calls: AtomicUsize,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples `(ts_ms, value)` to a series.
    pub fn add(&self, key: SeriesKey, samples: &[(i64, f64)]) {
        let mut data = self.data.lock().unwrap();
        let series = data.entry(key).or_default();
        for (t, v) in samples {
            series.insert(*t, *v);
        }
    }

    pub fn calls(&self) -> usize {
        self.range_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TimeSeriesStore for MemStore {
    async fn append(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<(), TsdbError> {
        for (key, samples) in batch {
            key.validate()?;
            let pairs: Vec<(i64, f64)> = samples.iter().map(|s| (s.ts_ms, s.value)).collect();
            self.add(key.clone(), &pairs);
        }
        Ok(())
    }

    async fn query_range(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        _step_ms: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError> {
        self.range_calls.fetch_add(1, Ordering::SeqCst);
        if agg != Aggregation::Raw {
            return Err(TsdbError::InvalidQuery("only raw queries in tests".into()));
        }
        if end_ms < start_ms {
            return Err(TsdbError::InvalidQuery("end is before start".into()));
        }
        let compiled = selector.compile()?;
        let data = self.data.lock().unwrap();
        let mut out = Vec::new();
        for (key, samples) in data.iter() {
            if !compiled.matches(key) {
                continue;
            }
            let s: Vec<Sample> = samples
                .range(start_ms..=end_ms)
                .map(|(t, v)| Sample::new(*t, *v))
                .collect();
            if !s.is_empty() {
                out.push((key.clone(), s));
            }
        }
        Ok(out)
    }

    async fn series(&self, selector: &Selector) -> Result<Vec<SeriesKey>, TsdbError> {
        let compiled = selector.compile()?;
        let data = self.data.lock().unwrap();
        Ok(data
            .keys()
            .filter(|k| compiled.matches(k))
            .cloned()
            .collect())
    }

    async fn flush(&self) -> Result<(), TsdbError> {
        Ok(())
    }

    async fn close(&self) -> Result<(), TsdbError> {
        Ok(())
    }
}

/// A series key from a metric name and labels.
pub fn key(metric: &str, labels: &[(&str, &str)]) -> SeriesKey {
    let mut k = SeriesKey::new(metric);
    for (n, v) in labels {
        k = k.with_label(*n, *v);
    }
    k
}

/// A label set (use `("__name__", ...)` for the metric name).
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Asserts two floats are equal up to a relative 1e-9 (NaN equals NaN).
pub fn approx(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
}
