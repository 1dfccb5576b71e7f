//! Evaluation of a parsed expression against a [`TimeSeriesStore`].
//!
//! Evaluation has two phases. First every selector of the expression is fetched **once**
//! with [`Aggregation::Raw`] for the whole window the query needs
//! (`[start - offset - range_or_lookback, end - offset]`; identical selectors and windows
//! are fetched once). Then the tree is evaluated synchronously for all steps at once: each
//! node produces, per series, one value per step (a dense vector with a private "absent"
//! marker), and windows slide over the fetched samples with two pointers, so the cost is
//! linear in samples plus steps per series (plus the window length per step for the
//! `*_over_time` functions, as in Prometheus).
//!
//! Semantics follow Prometheus 3: an instant selector at `t` takes the latest sample in
//! `(t - offset - lookback, t - offset]` (lookback 5 minutes); a range selector the samples in
//! `(t - offset - range, t - offset]`; Prometheus staleness markers end a series. Functions
//! and arithmetic drop the metric name (`last_over_time`, `sort`, filtering comparisons and
//! set operators keep it).

mod aggregate;
mod binary;
mod functions;

use crate::ast::{Expr, Function, MatrixSelector, ValueType, VectorSelector};
use crate::value::{InstantSample, RangeSeries, Value};
use palisade_tsdb::{
    Aggregation, Labels, Matcher, Sample, Selector, SeriesKey, TimeSeriesStore, TsdbError,
    METRIC_LABEL,
};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Limits and settings of an evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// How far back an instant selector looks for a sample (default 5 minutes).
    pub lookback_ms: i64,
    /// The most raw samples a query may fetch, over all its selectors; also the most
    /// points (series × steps) a selector or range function may produce (default 50 M).
    pub max_samples: usize,
    /// The most steps of a range query (default 11,000, as Prometheus).
    pub max_steps: usize,
    /// Give up after this long (checked between fetches and while evaluating).
    pub timeout: Option<Duration>,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            lookback_ms: 5 * 60_000,
            max_samples: 50_000_000,
            max_steps: 11_000,
            timeout: None,
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The store failed or refused the request.
    #[error("storage error: {0}")]
    Store(#[from] TsdbError),
    /// The query needs more samples than [`EvalOptions::max_samples`].
    #[error("query processing would load too many samples into memory ({needed} or more; the limit is {limit}): narrow the selectors or the time range")]
    TooManySamples {
        /// Samples (or points) counted when the limit was hit.
        needed: usize,
        /// The limit.
        limit: usize,
    },
    /// A range query with more steps than [`EvalOptions::max_steps`].
    #[error("exceeded maximum resolution of {limit} points per timeseries. Try decreasing the query resolution (?step=XX)")]
    TooManySteps {
        /// The limit.
        limit: usize,
    },
    /// Bad start / end / step.
    #[error("{0}")]
    InvalidRange(String),
    /// A range query of something that is not a scalar or an instant vector.
    #[error("invalid expression type \"{0}\" for range query, must be Scalar or instant Vector")]
    RangeQueryType(ValueType),
    /// The data does not allow the operation (e.g. many-to-many matching, duplicate label
    /// sets, a NaN parameter).
    #[error("{0}")]
    Execution(String),
    /// [`EvalOptions::timeout`] passed.
    #[error("query timed out in expression evaluation")]
    Timeout,
}

/// Evaluates `expr` at one instant, with default options.
pub async fn instant(
    store: &dyn TimeSeriesStore,
    expr: &Expr,
    time_ms: i64,
) -> Result<Value, EvalError> {
    instant_with(store, expr, time_ms, &EvalOptions::default()).await
}

/// Evaluates `expr` at `start_ms, start_ms + step_ms, ...` up to `end_ms`, with default
/// options. The result is always a matrix.
pub async fn range(
    store: &dyn TimeSeriesStore,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Value, EvalError> {
    range_with(
        store,
        expr,
        start_ms,
        end_ms,
        step_ms,
        &EvalOptions::default(),
    )
    .await
}

/// [`instant`] with explicit options.
pub async fn instant_with(
    store: &dyn TimeSeriesStore,
    expr: &Expr,
    time_ms: i64,
    opts: &EvalOptions,
) -> Result<Value, EvalError> {
    let grid = Grid {
        start: time_ms,
        step: 1,
        n: 1,
    };
    let ctx = Ctx::load(store, expr, grid, opts).await?;
    let top = expr.unparen();
    if let Expr::Matrix(ms) = top {
        return ctx.raw_matrix(ms, time_ms);
    }
    let order = output_order(top);
    Ok(match ctx.eval(expr)? {
        Data::Scalar(v) => Value::Scalar {
            t_ms: time_ms,
            value: v.first().copied().unwrap_or(f64::NAN),
        },
        Data::String(s) => Value::String {
            t_ms: time_ms,
            value: s,
        },
        Data::Vector(series) => {
            let mut out: Vec<InstantSample> = series
                .into_iter()
                .filter_map(|s| {
                    let v = s.vals.first().copied().filter(|v| present(*v))?;
                    Some(InstantSample {
                        labels: s.labels,
                        t_ms: time_ms,
                        value: v,
                    })
                })
                .collect();
            match order {
                OutputOrder::Labels => out.sort_by(|a, b| a.labels.cmp(&b.labels)),
                OutputOrder::ValueAsc => out.sort_by(|a, b| cmp_nan_last(a.value, b.value)),
                OutputOrder::ValueDesc => out.sort_by(|a, b| cmp_nan_last(b.value, a.value)),
            }
            Value::Vector(out)
        }
    })
}

/// [`range`] with explicit options.
pub async fn range_with(
    store: &dyn TimeSeriesStore,
    expr: &Expr,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &EvalOptions,
) -> Result<Value, EvalError> {
    if end_ms < start_ms {
        return Err(EvalError::InvalidRange(
            "end timestamp must not be before start time".into(),
        ));
    }
    if step_ms <= 0 {
        return Err(EvalError::InvalidRange(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    let steps = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) + 1;
    if steps > opts.max_steps as i128 {
        return Err(EvalError::TooManySteps {
            limit: opts.max_steps,
        });
    }
    let t = expr.value_type();
    if t != ValueType::Scalar && t != ValueType::Vector {
        return Err(EvalError::RangeQueryType(t));
    }
    let grid = Grid {
        start: start_ms,
        step: step_ms,
        n: usize::try_from(steps).unwrap_or(0),
    };
    let ctx = Ctx::load(store, expr, grid, opts).await?;
    let mut out = match ctx.eval(expr)? {
        Data::Scalar(vals) => vec![RangeSeries {
            labels: Labels::new(),
            samples: vals
                .iter()
                .enumerate()
                .map(|(i, v)| Sample::new(grid.t(i), *v))
                .collect(),
        }],
        Data::Vector(series) => series
            .into_iter()
            .filter_map(|s| {
                let samples: Vec<Sample> = s
                    .vals
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| present(**v))
                    .map(|(i, v)| Sample::new(grid.t(i), *v))
                    .collect();
                (!samples.is_empty()).then_some(RangeSeries {
                    labels: s.labels,
                    samples,
                })
            })
            .collect(),
        Data::String(_) => return Err(EvalError::RangeQueryType(ValueType::String)),
    };
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(Value::Matrix(out))
}

enum OutputOrder {
    Labels,
    ValueAsc,
    ValueDesc,
}

/// Instant vectors come sorted by labels, except for a top-level `sort`, `sort_desc`,
/// `topk` or `bottomk`, whose order is by value.
fn output_order(top: &Expr) -> OutputOrder {
    use crate::ast::AggregateOp;
    match top {
        Expr::Call(c) if c.func == Function::Sort => OutputOrder::ValueAsc,
        Expr::Call(c) if c.func == Function::SortDesc => OutputOrder::ValueDesc,
        Expr::Aggregate(a) if a.op == AggregateOp::Topk => OutputOrder::ValueDesc,
        Expr::Aggregate(a) if a.op == AggregateOp::Bottomk => OutputOrder::ValueAsc,
        _ => OutputOrder::Labels,
    }
}

/// Ascending, NaN after every number.
pub(crate) fn cmp_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

// ---- per-step values ----

/// A NaN payload that marks "no value at this step". Every value taken from the store or
/// computed is canonicalised with [`canon`], so real NaNs never carry this payload.
const ABSENT_BITS: u64 = 0x7ff8_dead_beef_0001;

/// Prometheus' staleness marker (a NaN with this payload): the series ended.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

#[inline]
pub(crate) fn absent() -> f64 {
    f64::from_bits(ABSENT_BITS)
}

#[inline]
pub(crate) fn present(v: f64) -> bool {
    v.to_bits() != ABSENT_BITS
}

/// Replaces every NaN by the canonical NaN (so no value can look absent).
#[inline]
pub(crate) fn canon(v: f64) -> f64 {
    if v.is_nan() {
        f64::NAN
    } else {
        v
    }
}

#[inline]
fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The evaluation steps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub(crate) start: i64,
    pub(crate) step: i64,
    pub(crate) n: usize,
}

impl Grid {
    #[inline]
    pub(crate) fn t(&self, i: usize) -> i64 {
        // i < n and start + (n-1)·step <= end, so this cannot overflow.
        self.start + i as i64 * self.step
    }

    fn last(&self) -> i64 {
        self.t(self.n.saturating_sub(1))
    }
}

/// One series with a value (or [`absent`]) per step.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub(crate) labels: Labels,
    pub(crate) vals: Vec<f64>,
}

/// An intermediate result.
pub(crate) enum Data {
    Scalar(Vec<f64>),
    Vector(Vec<Series>),
    String(String),
}

pub(crate) fn key_labels(key: &SeriesKey, keep_name: bool) -> Labels {
    let mut labels = key.labels.clone();
    if keep_name {
        labels.insert(METRIC_LABEL.to_owned(), key.metric.clone());
    }
    labels
}

/// Merges series with equal label sets (as left after dropping the metric name); two values
/// at the same step are an error, as in Prometheus.
pub(crate) fn dedupe(series: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    for s in series {
        match index.get(&s.labels) {
            Some(&j) => {
                let target = &mut out[j];
                for (dst, src) in target.vals.iter_mut().zip(&s.vals) {
                    if present(*src) {
                        if present(*dst) {
                            return Err(EvalError::Execution(format!(
                                "vector cannot contain metrics with the same labelset {}",
                                format_labels(&s.labels)
                            )));
                        }
                        *dst = *src;
                    }
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    Ok(out)
}

pub(crate) fn format_labels(labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

// ---- context: fetched data and limits ----

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct FetchKey {
    matchers: Vec<Matcher>,
    start: i64,
    end: i64,
}

type Fetched = Vec<(SeriesKey, Vec<Sample>)>;

pub(crate) struct Ctx<'o> {
    pub(crate) grid: Grid,
    pub(crate) opts: &'o EvalOptions,
    data: HashMap<FetchKey, Fetched>,
    deadline: Option<Instant>,
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// The inclusive fetch window of a selector with this offset and window width.
fn window(grid: &Grid, offset_ms: i64, width_ms: i64) -> (i64, i64) {
    let lo = i128::from(grid.start) - i128::from(offset_ms) - i128::from(width_ms) + 1;
    let hi = i128::from(grid.last()) - i128::from(offset_ms);
    (clamp_i64(lo), clamp_i64(hi))
}

fn collect_selectors<'e>(e: &'e Expr, out: &mut Vec<(&'e VectorSelector, i64)>, lookback: i64) {
    match e {
        Expr::Number(_) | Expr::String(_) => {}
        Expr::Vector(vs) => out.push((vs, lookback)),
        Expr::Matrix(ms) => out.push((&ms.vector, ms.range_ms)),
        Expr::Call(c) => c
            .args
            .iter()
            .for_each(|a| collect_selectors(a, out, lookback)),
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                collect_selectors(p, out, lookback);
            }
            collect_selectors(&a.expr, out, lookback);
        }
        Expr::Neg(inner) | Expr::Paren(inner) => collect_selectors(inner, out, lookback),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, out, lookback);
            collect_selectors(&b.rhs, out, lookback);
        }
    }
}

impl<'o> Ctx<'o> {
    /// Fetches every selector's samples once.
    async fn load(
        store: &dyn TimeSeriesStore,
        expr: &Expr,
        grid: Grid,
        opts: &'o EvalOptions,
    ) -> Result<Ctx<'o>, EvalError> {
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        let mut ctx = Ctx {
            grid,
            opts,
            data: HashMap::new(),
            deadline,
        };
        let mut selectors = Vec::new();
        collect_selectors(expr, &mut selectors, opts.lookback_ms.max(1));
        let mut total: usize = 0;
        for (vs, width) in selectors {
            let (start, end) = window(&grid, vs.offset_ms, width);
            let key = FetchKey {
                matchers: vs.matchers.clone(),
                start,
                end,
            };
            if ctx.data.contains_key(&key) {
                continue;
            }
            ctx.check_deadline()?;
            let selector = Selector {
                matchers: vs.matchers.clone(),
            };
            let fetched = store
                .query_range(&selector, start, end, grid.step.max(1), Aggregation::Raw)
                .await?;
            total = fetched
                .iter()
                .fold(total, |acc, (_, s)| acc.saturating_add(s.len()));
            if total > opts.max_samples {
                return Err(EvalError::TooManySamples {
                    needed: total,
                    limit: opts.max_samples,
                });
            }
            ctx.data.insert(key, fetched);
        }
        ctx.check_deadline()?;
        Ok(ctx)
    }

    pub(crate) fn check_deadline(&self) -> Result<(), EvalError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(EvalError::Timeout),
            _ => Ok(()),
        }
    }

    fn fetched(&self, vs: &VectorSelector, width: i64) -> Result<&Fetched, EvalError> {
        let (start, end) = window(&self.grid, vs.offset_ms, width);
        let key = FetchKey {
            matchers: vs.matchers.clone(),
            start,
            end,
        };
        self.data
            .get(&key)
            .ok_or_else(|| EvalError::Execution("internal error: selector was not fetched".into()))
    }

    /// Refuses to produce more than `max_samples` points in one node.
    pub(crate) fn check_points(&self, series: usize) -> Result<(), EvalError> {
        let points = series.saturating_mul(self.grid.n);
        if points > self.opts.max_samples {
            return Err(EvalError::TooManySamples {
                needed: points,
                limit: self.opts.max_samples,
            });
        }
        Ok(())
    }

    pub(crate) fn eval(&self, e: &Expr) -> Result<Data, EvalError> {
        self.check_deadline()?;
        match e {
            Expr::Number(v) => Ok(Data::Scalar(vec![canon(*v); self.grid.n])),
            Expr::String(s) => Ok(Data::String(s.clone())),
            Expr::Paren(inner) => self.eval(inner),
            Expr::Vector(vs) => self.vector_selector(vs).map(Data::Vector),
            Expr::Matrix(_) => Err(EvalError::Execution(
                "a range vector can only be used as a function argument".into(),
            )),
            Expr::Neg(inner) => match self.eval(inner)? {
                Data::Scalar(mut v) => {
                    v.iter_mut().for_each(|x| *x = -*x);
                    Ok(Data::Scalar(v))
                }
                Data::Vector(mut series) => {
                    for s in &mut series {
                        s.labels.remove(METRIC_LABEL);
                        for x in s.vals.iter_mut().filter(|x| present(**x)) {
                            *x = canon(-*x);
                        }
                    }
                    dedupe(series).map(Data::Vector)
                }
                Data::String(_) => Err(EvalError::Execution("cannot negate a string".into())),
            },
            Expr::Call(c) => functions::call(self, c.func, &c.args),
            Expr::Aggregate(a) => aggregate::aggregate(self, a).map(Data::Vector),
            Expr::Binary(b) => binary::binary(self, b),
        }
    }

    pub(crate) fn eval_vector(&self, e: &Expr) -> Result<Vec<Series>, EvalError> {
        match self.eval(e)? {
            Data::Vector(v) => Ok(v),
            _ => Err(EvalError::Execution(format!(
                "expected an instant vector, got {}",
                e.value_type()
            ))),
        }
    }

    pub(crate) fn eval_scalar(&self, e: &Expr) -> Result<Vec<f64>, EvalError> {
        match self.eval(e)? {
            Data::Scalar(v) => Ok(v),
            _ => Err(EvalError::Execution(format!(
                "expected a scalar, got {}",
                e.value_type()
            ))),
        }
    }

    /// An instant vector selector: the latest sample in `(t - offset - lookback, t - offset]`.
    fn vector_selector(&self, vs: &VectorSelector) -> Result<Vec<Series>, EvalError> {
        let lookback = self.opts.lookback_ms.max(1);
        let data = self.fetched(vs, lookback)?;
        self.check_points(data.len())?;
        let grid = self.grid;
        let mut out = Vec::with_capacity(data.len());
        for (n, (key, samples)) in data.iter().enumerate() {
            if n % 1024 == 1023 {
                self.check_deadline()?;
            }
            let mut vals: Vec<f64> = Vec::new();
            let mut hi = 0;
            for i in 0..grid.n {
                let end = grid.t(i).saturating_sub(vs.offset_ms);
                while hi < samples.len() && samples[hi].ts_ms <= end {
                    hi += 1;
                }
                let Some(s) = hi.checked_sub(1).and_then(|j| samples.get(j)) else {
                    continue;
                };
                if s.ts_ms > end.saturating_sub(lookback) && !is_stale(s.value) {
                    if vals.is_empty() {
                        vals = vec![absent(); grid.n];
                    }
                    vals[i] = canon(s.value);
                }
            }
            if !vals.is_empty() {
                out.push(Series {
                    labels: key_labels(key, true),
                    vals,
                });
            }
        }
        Ok(out)
    }

    /// Applies `f` to each step's window `(t - offset - range, t - offset]` of every
    /// series of a range selector. `f` gets the window's samples (staleness markers
    /// removed, never empty) and the window's bounds.
    pub(crate) fn over_windows<F>(
        &self,
        ms: &MatrixSelector,
        keep_name: bool,
        f: F,
    ) -> Result<Vec<Series>, EvalError>
    where
        F: Fn(&[Sample], i64, i64) -> Option<f64>,
    {
        let data = self.fetched(&ms.vector, ms.range_ms)?;
        self.check_points(data.len())?;
        let grid = self.grid;
        let offset = ms.vector.offset_ms;
        let mut out = Vec::with_capacity(data.len());
        for (n, (key, raw)) in data.iter().enumerate() {
            if n % 1024 == 1023 {
                self.check_deadline()?;
            }
            let samples = without_stale(raw);
            let mut vals: Vec<f64> = Vec::new();
            let (mut lo, mut hi) = (0usize, 0usize);
            for i in 0..grid.n {
                let end = grid.t(i).saturating_sub(offset);
                let start = end.saturating_sub(ms.range_ms);
                while hi < samples.len() && samples[hi].ts_ms <= end {
                    hi += 1;
                }
                while lo < hi && samples[lo].ts_ms <= start {
                    lo += 1;
                }
                let Some(window) = samples.get(lo..hi).filter(|w| !w.is_empty()) else {
                    continue;
                };
                if let Some(v) = f(window, start, end) {
                    if vals.is_empty() {
                        vals = vec![absent(); grid.n];
                    }
                    vals[i] = canon(v);
                }
            }
            if !vals.is_empty() {
                out.push(Series {
                    labels: key_labels(key, keep_name),
                    vals,
                });
            }
        }
        if keep_name {
            Ok(out)
        } else {
            dedupe(out)
        }
    }

    /// An instant query of a range selector: the raw samples of each series' window.
    fn raw_matrix(&self, ms: &MatrixSelector, t_ms: i64) -> Result<Value, EvalError> {
        let data = self.fetched(&ms.vector, ms.range_ms)?;
        let end = t_ms.saturating_sub(ms.vector.offset_ms);
        let start = end.saturating_sub(ms.range_ms);
        let mut out = Vec::new();
        for (key, raw) in data {
            let samples: Vec<Sample> = raw
                .iter()
                .filter(|s| s.ts_ms > start && s.ts_ms <= end && !is_stale(s.value))
                .map(|s| Sample::new(s.ts_ms, canon(s.value)))
                .collect();
            if !samples.is_empty() {
                out.push(RangeSeries {
                    labels: key_labels(key, true),
                    samples,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(Value::Matrix(out))
    }
}

fn without_stale(samples: &[Sample]) -> Cow<'_, [Sample]> {
    if samples.iter().any(|s| is_stale(s.value)) {
        Cow::Owned(
            samples
                .iter()
                .filter(|s| !is_stale(s.value))
                .copied()
                .collect(),
        )
    } else {
        Cow::Borrowed(samples)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn absent_marker_is_never_a_value() {
        assert!(!present(absent()));
        assert!(present(f64::NAN));
        assert!(present(canon(absent())));
        assert!(present(canon(-absent())));
        assert!(present(canon(f64::from_bits(STALE_NAN_BITS))));
        assert!(is_stale(f64::from_bits(STALE_NAN_BITS)));
    }

    #[test]
    fn windows_do_not_overflow() {
        let g = Grid {
            start: i64::MIN + 5,
            step: 1,
            n: 1,
        };
        assert_eq!(window(&g, i64::MAX, i64::MAX).0, i64::MIN);
        let g = Grid {
            start: i64::MAX,
            step: 1,
            n: 1,
        };
        assert_eq!(window(&g, i64::MIN, 1).1, i64::MAX);
    }

    #[test]
    fn dedupe_merges_disjoint_and_rejects_overlap() {
        let a = Series {
            labels: Labels::new(),
            vals: vec![1.0, absent()],
        };
        let b = Series {
            labels: Labels::new(),
            vals: vec![absent(), 2.0],
        };
        let merged = dedupe(vec![a.clone(), b]).unwrap();
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].vals, vec![1.0, 2.0]);
        assert!(dedupe(vec![a.clone(), a]).is_err());
    }
}
