//! The data model shared by every backend: series keys, samples, selectors, aggregations.

use crate::error::{Result, TsdbError};
use std::collections::BTreeMap;

/// The label name under which a series' metric name is matched, as in Prometheus.
pub const METRIC_LABEL: &str = "__name__";

/// Identifies one series: a metric name and a set of labels (for Palisade: `device`,
/// `datasource`, `instance`, `datapoint`).
///
/// Rules (checked on append): the metric is not empty; label names and values are not empty;
/// no label is called `__name__` (the metric *is* `__name__`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeriesKey {
    /// The metric name (`__name__`).
    pub metric: String,
    /// The labels, sorted by name.
    pub labels: BTreeMap<String, String>,
}

impl SeriesKey {
    /// A key with a metric name and no labels.
    pub fn new(metric: impl Into<String>) -> Self {
        SeriesKey {
            metric: metric.into(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a label.
    #[must_use]
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// The value of a label; `__name__` answers the metric. Absent labels answer `None`.
    pub fn label(&self, name: &str) -> Option<&str> {
        if name == METRIC_LABEL {
            Some(&self.metric)
        } else {
            self.labels.get(name).map(String::as_str)
        }
    }

    /// Checks the rules above.
    pub fn validate(&self) -> Result<()> {
        if self.metric.is_empty() {
            return Err(TsdbError::InvalidSeries("empty metric name".into()));
        }
        for (name, value) in &self.labels {
            if name.is_empty() {
                return Err(TsdbError::InvalidSeries(format!(
                    "empty label name in {}",
                    self.metric
                )));
            }
            if name == METRIC_LABEL {
                return Err(TsdbError::InvalidSeries(
                    "`__name__` is the metric, not a label".into(),
                ));
            }
            if value.is_empty() {
                return Err(TsdbError::InvalidSeries(format!(
                    "label {name} of {} has an empty value",
                    self.metric
                )));
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{{", self.metric)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        write!(f, "}}")
    }
}

/// One value at one instant (milliseconds since the Unix epoch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    pub ts_ms: i64,
    /// The value. Any `f64`, NaN included, is stored bit for bit.
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(ts_ms: i64, value: f64) -> Self {
        Sample { ts_ms, value }
    }
}

/// How a [`Matcher`] compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `label="value"`
    Equal,
    /// `label!="value"`
    NotEqual,
    /// `label=~"regex"` (fully anchored, as in Prometheus)
    Regex,
    /// `label!~"regex"` (fully anchored)
    NotRegex,
}

/// One label matcher. As in Prometheus, an absent label has the value `""`, so
/// `device=""` selects series without a `device` label. The metric is matched as `__name__`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Matcher {
    /// The label name (`__name__` for the metric).
    pub label: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regular expression.
    pub value: String,
}

/// A set of matchers, all of which must hold. The empty selector selects every series.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    /// The matchers.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// The selector matching every series.
    pub fn all() -> Self {
        Selector::default()
    }

    /// Selects one metric name.
    pub fn metric(name: impl Into<String>) -> Self {
        Selector::default().eq(METRIC_LABEL, name)
    }

    /// Adds `label="value"`.
    #[must_use]
    pub fn eq(self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(label, MatchOp::Equal, value)
    }

    /// Adds `label!="value"`.
    #[must_use]
    pub fn ne(self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.with(label, MatchOp::NotEqual, value)
    }

    /// Adds `label=~"regex"`.
    #[must_use]
    pub fn re(self, label: impl Into<String>, regex: impl Into<String>) -> Self {
        self.with(label, MatchOp::Regex, regex)
    }

    /// Adds `label!~"regex"`.
    #[must_use]
    pub fn nre(self, label: impl Into<String>, regex: impl Into<String>) -> Self {
        self.with(label, MatchOp::NotRegex, regex)
    }

    fn with(mut self, label: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Self {
        self.matchers.push(Matcher {
            label: label.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// Compiles the selector (regular expressions) for evaluation.
    pub fn compile(&self) -> Result<CompiledSelector> {
        let mut matchers = Vec::with_capacity(self.matchers.len());
        for m in &self.matchers {
            let regex = match m.op {
                MatchOp::Regex | MatchOp::NotRegex => {
                    let anchored = format!("^(?:{})$", m.value);
                    Some(
                        regex::Regex::new(&anchored)
                            .map_err(|e| TsdbError::InvalidSelector(format!("{}: {e}", m.label)))?,
                    )
                }
                MatchOp::Equal | MatchOp::NotEqual => None,
            };
            matchers.push(CompiledMatcher {
                matcher: m.clone(),
                regex,
            });
        }
        Ok(CompiledSelector { matchers })
    }
}

/// A selector ready to be evaluated against series keys.
#[derive(Debug, Clone)]
pub struct CompiledSelector {
    pub(crate) matchers: Vec<CompiledMatcher>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledMatcher {
    pub(crate) matcher: Matcher,
    pub(crate) regex: Option<regex::Regex>,
}

impl CompiledMatcher {
    /// Whether a label value (`""` when absent) satisfies this matcher.
    pub(crate) fn matches_value(&self, value: &str) -> bool {
        match self.matcher.op {
            MatchOp::Equal => value == self.matcher.value,
            MatchOp::NotEqual => value != self.matcher.value,
            MatchOp::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }
}

impl CompiledSelector {
    /// Whether a series key satisfies every matcher.
    pub fn matches(&self, key: &SeriesKey) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches_value(key.label(&m.matcher.label).unwrap_or("")))
    }
}

/// How samples are combined: within a step bucket of one series (`over_time`), or across
/// the series of a group ([`Grouping::op`]).
///
/// Step buckets: a range query with `start`, `end` and `step` produces points at
/// `t = start + k·step` for every `t <= end`; the point at `t` aggregates the samples with
/// `t <= ts < t + step` (the last bucket may reach past `end`). Buckets without samples
/// produce no point. For the Prometheus backend this is `<agg>_over_time(sel[step])`
/// evaluated at `t + step - 1ms` and relabelled to `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregation {
    /// No aggregation: every raw sample with `start <= ts <= end`; `step` is ignored.
    /// Raw samples are kept for the raw retention only (downsampled data is not raw).
    Raw,
    /// The mean.
    Avg,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
    /// The sum.
    Sum,
    /// The number of samples (within a series) or of series (across a group).
    Count,
}

/// The labels identifying a group of a [`Grouping`] (name → value).
pub type Labels = BTreeMap<String, String>;

/// Cross-series aggregation: `op by (by...)`, as PromQL's `avg by (datapoint) (...)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grouping {
    /// The labels that identify a group (`__name__` allowed). Empty: one group of everything.
    pub by: Vec<String>,
    /// How the series' bucket values are combined (not [`Aggregation::Raw`]).
    pub op: Aggregation,
}

/// Bucket arithmetic shared by the backends.
pub(crate) fn bucket_count(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<usize> {
    if end_ms < start_ms {
        return Err(TsdbError::InvalidQuery("end is before start".into()));
    }
    if step_ms <= 0 {
        return Err(TsdbError::InvalidQuery("step must be positive".into()));
    }
    let n = ((end_ms as i128 - start_ms as i128) / step_ms as i128) + 1;
    if n > MAX_POINTS as i128 {
        return Err(TsdbError::InvalidQuery(format!(
            "{n} points per series exceed the limit of {MAX_POINTS}; use a larger step"
        )));
    }
    Ok(n as usize)
}

/// The most points a range query may produce per series.
pub const MAX_POINTS: usize = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_semantics_follow_prometheus() {
        let key = SeriesKey::new("cpu")
            .with_label("device", "web-1")
            .with_label("dc", "x");
        let ok = |s: Selector| s.compile().map(|c| c.matches(&key)).unwrap_or(false);
        assert!(ok(Selector::metric("cpu")));
        assert!(!ok(Selector::metric("mem")));
        assert!(ok(Selector::all().re("device", "web-.*")));
        assert!(
            !ok(Selector::all().re("device", "web")),
            "regex is anchored"
        );
        assert!(ok(Selector::all().eq("missing", "")));
        assert!(!ok(Selector::all().ne("missing", "")));
        assert!(ok(Selector::all().nre("dc", "y|z")));
        assert!(Selector::all().re("a", "(").compile().is_err());
    }

    #[test]
    fn keys_are_validated() {
        assert!(SeriesKey::new("").validate().is_err());
        assert!(SeriesKey::new("m").with_label("", "v").validate().is_err());
        assert!(SeriesKey::new("m").with_label("a", "").validate().is_err());
        assert!(SeriesKey::new("m")
            .with_label(METRIC_LABEL, "x")
            .validate()
            .is_err());
        assert!(SeriesKey::new("m").with_label("a", "b").validate().is_ok());
    }

    #[test]
    fn bucket_limits() {
        assert_eq!(bucket_count(0, 59_999, 60_000).ok(), Some(1));
        assert_eq!(bucket_count(0, 60_000, 60_000).ok(), Some(2));
        assert!(bucket_count(1, 0, 1).is_err());
        assert!(bucket_count(0, 10, 0).is_err());
        assert!(bucket_count(0, i64::MAX, 1).is_err());
    }
}
