#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{approx, key, labels, MemStore};
use palisade_promql::eval::{self, EvalError, EvalOptions};
use palisade_promql::value::{InstantSample, RangeSeries};
use palisade_promql::{parse, Value};
use palisade_tsdb::{Labels, Sample};
use std::time::Duration;

const S: i64 = 1000;
const M: i64 = 60 * S;

async fn instant(store: &MemStore, q: &str, t: i64) -> Result<Value, EvalError> {
    let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    eval::instant(store, &e, t).await
}

async fn vector(store: &MemStore, q: &str, t: i64) -> Vec<InstantSample> {
    match instant(store, q, t)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    {
        Value::Vector(v) => v,
        v => panic!("{q}: not a vector: {v:?}"),
    }
}

/// The single value of an instant query (vector of one, or scalar).
async fn one(store: &MemStore, q: &str, t: i64) -> f64 {
    match instant(store, q, t)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    {
        Value::Vector(v) if v.len() == 1 => v[0].value,
        Value::Scalar { value, .. } => value,
        v => panic!("{q}: expected one value, got {v:?}"),
    }
}

async fn matrix(store: &MemStore, q: &str, start: i64, end: i64, step: i64) -> Vec<RangeSeries> {
    let e = parse(q).unwrap();
    match eval::range(store, &e, start, end, step)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    {
        Value::Matrix(m) => m,
        v => panic!("{q}: not a matrix: {v:?}"),
    }
}

fn by_labels(v: &[InstantSample]) -> Vec<(Labels, f64)> {
    v.iter().map(|s| (s.labels.clone(), s.value)).collect()
}

/// Counter `c{job="a"}` every 15 s from 0 to 120 s: 0, 10, 20, 5 (reset), 15, 25, 35, 45, 55.
fn counter_store() -> MemStore {
    let s = MemStore::new();
    let vals = [0.0, 10.0, 20.0, 5.0, 15.0, 25.0, 35.0, 45.0, 55.0];
    let samples: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64 * 15 * S, *v))
        .collect();
    s.add(key("c", &[("job", "a")]), &samples);
    s
}

#[tokio::test]
async fn rate_increase_with_counter_reset() {
    let s = counter_store();
    // Window (0, 60s]: 10, 20, 5, 15 at 15..60 s. Raw increase 15 - 10 + 20 (reset) = 25
    // over 45 s; the window start is 15 s before the first sample (< 1.1 × 15 s), and the
    // zero point (45 s × 10/25 = 18 s) is farther, so extrapolate to 60 s.
    let inc = one(&s, "increase(c[1m])", 60 * S).await;
    assert!(approx(inc, 25.0 * 60.0 / 45.0), "{inc}");
    let rate = one(&s, "rate(c[1m])", 60 * S).await;
    assert!(approx(rate, 25.0 / 45.0), "{rate}");
    // Window (60s, 120s]: 25, 35, 45, 55 → 30 over 45 s → 40 (zero point 45·25/30 = 37.5 s
    // is farther than 15 s).
    assert!(approx(one(&s, "increase(c[1m])", 120 * S).await, 40.0));
    // irate at 60 s: last two 5 → 15 over 15 s; at 45 s: 20 → 5 is a reset → 5 / 15 s.
    assert!(approx(one(&s, "irate(c[1m])", 60 * S).await, 10.0 / 15.0));
    assert!(approx(one(&s, "irate(c[1m])", 45 * S).await, 5.0 / 15.0));
    assert!(approx(one(&s, "idelta(c[1m])", 45 * S).await, -15.0));
    // delta ignores resets: 15 - 10 = 5 over 45 s, extrapolated to 60 s.
    assert!(approx(
        one(&s, "delta(c[1m])", 60 * S).await,
        5.0 * 60.0 / 45.0
    ));
    assert!(approx(one(&s, "resets(c[2m])", 120 * S).await, 1.0));
    assert!(approx(one(&s, "changes(c[2m])", 120 * S).await, 7.0));
    // One sample in the window: no rate.
    assert!(vector(&s, "rate(c[10s])", 60 * S).await.is_empty());
    // Names are dropped by functions.
    let v = vector(&s, "rate(c[1m])", 60 * S).await;
    assert_eq!(v[0].labels, labels(&[("job", "a")]));
}

#[tokio::test]
async fn rate_extrapolation_limits() {
    let s = MemStore::new();
    // Only two samples late in the window (0, 60s]: 100 at 40 s, 110 at 50 s.
    // Average interval 10 s, threshold 11 s: the start gap (40 s) is too large, so
    // extrapolate by 5 s; the end gap (10 s) is below the threshold, so extrapolate fully.
    s.add(key("g", &[]), &[(40 * S, 100.0), (50 * S, 110.0)]);
    assert!(approx(
        one(&s, "increase(g[1m])", 60 * S).await,
        10.0 * 25.0 / 10.0
    ));
    assert!(approx(one(&s, "rate(g[1m])", 60 * S).await, 25.0 / 60.0));
    // A counter starting near zero is not extrapolated below zero:
    // 1 at 20 s, 11 at 30 s, 21 at 40 s in (0, 40s]: the 20 s gap to the window start is
    // above the threshold (11 s), so 5 s would be added, but the zero point is only
    // 20 s × 1/20 = 1 s before the first sample: extrapolate by 1 s.
    let s = MemStore::new();
    s.add(
        key("z", &[]),
        &[(20 * S, 1.0), (30 * S, 11.0), (40 * S, 21.0)],
    );
    let inc = one(&s, "increase(z[40s])", 40 * S).await;
    assert!(approx(inc, 20.0 * (20.0 + 1.0) / 20.0), "{inc}");
}

#[tokio::test]
async fn over_time_functions() {
    let s = MemStore::new();
    s.add(
        key("g", &[("h", "x")]),
        &[(10 * S, 1.0), (20 * S, 2.0), (30 * S, 3.0), (40 * S, 4.0)],
    );
    let t = 40 * S;
    assert_eq!(one(&s, "sum_over_time(g[1m])", t).await, 10.0);
    assert_eq!(one(&s, "avg_over_time(g[1m])", t).await, 2.5);
    assert_eq!(one(&s, "min_over_time(g[1m])", t).await, 1.0);
    assert_eq!(one(&s, "max_over_time(g[1m])", t).await, 4.0);
    assert_eq!(one(&s, "count_over_time(g[1m])", t).await, 4.0);
    assert_eq!(one(&s, "last_over_time(g[1m])", t).await, 4.0);
    assert_eq!(one(&s, "present_over_time(g[1m])", t).await, 1.0);
    assert!(approx(one(&s, "stdvar_over_time(g[1m])", t).await, 1.25));
    assert!(approx(
        one(&s, "stddev_over_time(g[1m])", t).await,
        1.25f64.sqrt()
    ));
    // Left-open window: (10 s, 40 s] leaves out the sample at 10 s.
    assert_eq!(one(&s, "count_over_time(g[30s])", t).await, 3.0);
    assert_eq!(one(&s, "sum_over_time(g[30s])", t).await, 9.0);
    // last_over_time keeps the metric name, the others drop it.
    let v = vector(&s, "last_over_time(g[1m])", t).await;
    assert_eq!(v[0].labels, labels(&[("__name__", "g"), ("h", "x")]));
    let v = vector(&s, "max_over_time(g[1m])", t).await;
    assert_eq!(v[0].labels, labels(&[("h", "x")]));
    // Offset moves the window: (−20 s, 40 s − 30 s] holds only the sample at 10 s.
    assert_eq!(one(&s, "sum_over_time(g[1m] offset 30s)", t).await, 1.0);
}

#[tokio::test]
async fn lookback_and_offset() {
    let s = MemStore::new();
    s.add(key("x", &[]), &[(0, 1.0), (10 * M, 2.0)]);
    assert_eq!(one(&s, "x", 0).await, 1.0);
    assert_eq!(one(&s, "x", 5 * M - 1).await, 1.0);
    assert!(
        vector(&s, "x", 5 * M).await.is_empty(),
        "(t-5m, t] excludes t-5m"
    );
    assert!(vector(&s, "x", -1).await.is_empty());
    assert_eq!(one(&s, "x", 10 * M).await, 2.0);
    assert_eq!(one(&s, "x offset 10m", 10 * M).await, 1.0);
    assert_eq!(one(&s, "x offset 10m", 14 * M).await, 1.0);
    assert!(vector(&s, "x offset 10m", 15 * M).await.is_empty());
    assert_eq!(one(&s, "x offset -10m", 0).await, 2.0);
    // Custom lookback.
    let e = parse("x").unwrap();
    let opts = EvalOptions {
        lookback_ms: M,
        ..EvalOptions::default()
    };
    assert!(matches!(
        eval::instant_with(&s, &e, 2 * M, &opts).await.unwrap(),
        Value::Vector(v) if v.is_empty()
    ));
    // The instant selector keeps the metric name.
    let v = vector(&s, "x", 0).await;
    assert_eq!(v[0].labels, labels(&[("__name__", "x")]));
}

fn cpu_store() -> MemStore {
    let s = MemStore::new();
    s.add(key("cpu", &[("host", "a"), ("dc", "x")]), &[(0, 1.0)]);
    s.add(key("cpu", &[("host", "b"), ("dc", "x")]), &[(0, 2.0)]);
    s.add(key("cpu", &[("host", "c"), ("dc", "y")]), &[(0, 4.0)]);
    s.add(key("mem", &[("host", "a")]), &[(0, 10.0)]);
    s.add(key("mem", &[("host", "b")]), &[(0, 20.0)]);
    s
}

#[tokio::test]
async fn aggregations() {
    let s = cpu_store();
    assert_eq!(one(&s, "sum(cpu)", 0).await, 7.0);
    assert_eq!(
        by_labels(&vector(&s, "sum by (dc) (cpu)", 0).await),
        vec![(labels(&[("dc", "x")]), 3.0), (labels(&[("dc", "y")]), 4.0)]
    );
    assert_eq!(
        by_labels(&vector(&s, "sum(cpu) by (dc)", 0).await),
        by_labels(&vector(&s, "sum by (dc) (cpu)", 0).await)
    );
    assert_eq!(
        by_labels(&vector(&s, "sum without (host) (cpu)", 0).await),
        vec![(labels(&[("dc", "x")]), 3.0), (labels(&[("dc", "y")]), 4.0)]
    );
    assert_eq!(
        by_labels(&vector(&s, "avg by (dc) (cpu)", 0).await),
        vec![(labels(&[("dc", "x")]), 1.5), (labels(&[("dc", "y")]), 4.0)]
    );
    // `by` a label some series lack groups those under "absent".
    assert_eq!(
        by_labels(&vector(&s, "count by (dc) ({__name__=~\"cpu|mem\"})", 0).await),
        vec![
            (labels(&[]), 2.0),
            (labels(&[("dc", "x")]), 2.0),
            (labels(&[("dc", "y")]), 1.0)
        ]
    );
    assert_eq!(one(&s, "count(cpu)", 0).await, 3.0);
    assert_eq!(one(&s, "min(cpu)", 0).await, 1.0);
    assert_eq!(one(&s, "max(cpu)", 0).await, 4.0);
    assert_eq!(one(&s, "group(cpu)", 0).await, 1.0);
    assert!(approx(one(&s, "stdvar(cpu)", 0).await, 14.0 / 9.0));
    assert!(approx(
        one(&s, "stddev(cpu)", 0).await,
        (14.0f64 / 9.0).sqrt()
    ));
    assert_eq!(one(&s, "quantile(0.5, cpu)", 0).await, 2.0);
    assert_eq!(one(&s, "quantile(0.75, cpu)", 0).await, 3.0);
    assert_eq!(one(&s, "sum by (__name__) (cpu)", 0).await, 7.0);
    // topk / bottomk keep the series' own labels (name included), sorted by value.
    let top = vector(&s, "topk(2, cpu)", 0).await;
    assert_eq!(
        by_labels(&top),
        vec![
            (
                labels(&[("__name__", "cpu"), ("dc", "y"), ("host", "c")]),
                4.0
            ),
            (
                labels(&[("__name__", "cpu"), ("dc", "x"), ("host", "b")]),
                2.0
            )
        ]
    );
    let bottom = vector(&s, "bottomk by (dc) (1, cpu)", 0).await;
    assert_eq!(bottom.len(), 2);
    assert_eq!(bottom[0].value, 1.0);
    assert_eq!(bottom[1].value, 4.0);
    assert!(vector(&s, "topk(0, cpu)", 0).await.is_empty());
    assert_eq!(vector(&s, "topk(100, cpu)", 0).await.len(), 3);
    assert!(matches!(
        instant(&s, "topk(NaN, cpu)", 0).await,
        Err(EvalError::Execution(m)) if m.contains("NaN")
    ));
    // Aggregating nothing gives nothing.
    assert!(vector(&s, "sum(nothing)", 0).await.is_empty());
    // sort / sort_desc order instant results by value.
    let v = vector(&s, "sort_desc(cpu)", 0).await;
    assert_eq!(
        v.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![4.0, 2.0, 1.0]
    );
    let v = vector(&s, "sort(-cpu)", 0).await;
    assert_eq!(
        v.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![-4.0, -2.0, -1.0]
    );
}

#[tokio::test]
async fn scalar_arithmetic_and_functions() {
    let s = cpu_store();
    assert_eq!(one(&s, "1 + 2 * 3", 0).await, 7.0);
    assert_eq!(one(&s, "(1 + 2) * 3", 0).await, 9.0);
    assert_eq!(one(&s, "2 ^ 3 ^ 2", 0).await, 512.0);
    assert_eq!(one(&s, "-2 ^ 2", 0).await, -4.0);
    assert_eq!(one(&s, "10 % 3", 0).await, 1.0);
    assert_eq!(one(&s, "-7 % 3", 0).await, -1.0);
    assert_eq!(one(&s, "1 / 0", 0).await, f64::INFINITY);
    assert!(one(&s, "0 / 0", 0).await.is_nan());
    assert_eq!(one(&s, "1 < bool 2", 0).await, 1.0);
    assert_eq!(one(&s, "1 == bool 2", 0).await, 0.0);
    assert_eq!(one(&s, "time()", 90 * S).await, 90.0);
    assert_eq!(one(&s, "time() - 30", 90 * S).await, 60.0);
    assert_eq!(one(&s, "vector(1) + 1", 0).await, 2.0);
    assert_eq!(one(&s, "scalar(cpu{host=\"a\"}) * 2", 0).await, 2.0);
    assert!(one(&s, "scalar(cpu)", 0).await.is_nan());
    assert_eq!(one(&s, "abs(-cpu{host=\"b\"})", 0).await, 2.0);
    assert_eq!(one(&s, "ceil(vector(1.2))", 0).await, 2.0);
    assert_eq!(one(&s, "floor(vector(-1.2))", 0).await, -2.0);
    assert_eq!(one(&s, "round(vector(2.5))", 0).await, 3.0);
    assert_eq!(one(&s, "round(vector(-2.5))", 0).await, -2.0);
    assert_eq!(one(&s, "round(vector(7), 5)", 0).await, 5.0);
    assert_eq!(one(&s, "sqrt(vector(16))", 0).await, 4.0);
    assert_eq!(one(&s, "ln(vector(1))", 0).await, 0.0);
    assert_eq!(one(&s, "log2(vector(8))", 0).await, 3.0);
    assert_eq!(one(&s, "log10(vector(1000))", 0).await, 3.0);
    assert_eq!(one(&s, "exp(vector(0))", 0).await, 1.0);
    assert_eq!(one(&s, "sgn(vector(-3))", 0).await, -1.0);
    assert_eq!(one(&s, "clamp_min(cpu{host=\"a\"}, 3)", 0).await, 3.0);
    assert_eq!(one(&s, "clamp_max(cpu{host=\"c\"}, 3)", 0).await, 3.0);
    assert_eq!(one(&s, "clamp(cpu{host=\"c\"}, 0, 2)", 0).await, 2.0);
    assert!(vector(&s, "clamp(cpu, 2, 1)", 0).await.is_empty());
    // String results.
    assert_eq!(
        instant(&s, "\"hello\"", 5 * S).await.unwrap(),
        Value::String {
            t_ms: 5 * S,
            value: "hello".into()
        }
    );
}

#[tokio::test]
async fn vector_scalar_and_comparisons() {
    let s = cpu_store();
    let v = vector(&s, "cpu * 2", 0).await;
    assert_eq!(
        by_labels(&v),
        vec![
            (labels(&[("dc", "x"), ("host", "a")]), 2.0),
            (labels(&[("dc", "x"), ("host", "b")]), 4.0),
            (labels(&[("dc", "y"), ("host", "c")]), 8.0)
        ]
    );
    // Filtering comparisons keep the name and the vector's value.
    let v = vector(&s, "cpu > 1", 0).await;
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|s| s.labels.contains_key("__name__")));
    let v = vector(&s, "2 < cpu", 0).await;
    assert_eq!(
        by_labels(&v).iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![4.0]
    );
    let v = vector(&s, "cpu > bool 1", 0).await;
    assert_eq!(
        v.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![0.0, 1.0, 1.0]
    );
    assert!(v.iter().all(|s| !s.labels.contains_key("__name__")));
    assert_eq!(vector(&s, "cpu == 2", 0).await.len(), 1);
    assert_eq!(vector(&s, "cpu != 2", 0).await.len(), 2);
    assert_eq!(vector(&s, "cpu >= 2", 0).await.len(), 2);
    assert_eq!(vector(&s, "cpu <= 2", 0).await.len(), 2);
    assert_eq!(vector(&s, "cpu < 2", 0).await.len(), 1);
    assert_eq!(one(&s, "-cpu{host=\"c\"} + 1", 0).await, -3.0);
}

#[tokio::test]
async fn vector_matching() {
    let s = cpu_store();
    // Different label sets: no match.
    assert!(vector(&s, "mem / cpu", 0).await.is_empty());
    let v = vector(&s, "mem / on(host) cpu", 0).await;
    assert_eq!(
        by_labels(&v),
        vec![
            (labels(&[("host", "a")]), 10.0),
            (labels(&[("host", "b")]), 10.0)
        ]
    );
    let v = vector(&s, "cpu / ignoring(dc) mem", 0).await;
    assert_eq!(
        by_labels(&v),
        vec![
            (labels(&[("host", "a")]), 0.1),
            (labels(&[("host", "b")]), 0.1)
        ]
    );
    // Identical label sets (names aside) match one-to-one.
    let v = vector(&s, "cpu - cpu", 0).await;
    assert_eq!(v.len(), 3);
    assert!(v
        .iter()
        .all(|s| s.value == 0.0 && !s.labels.contains_key("__name__")));
    let v = vector(&s, "cpu >= cpu", 0).await;
    assert_eq!(v.len(), 3);
    assert!(v
        .iter()
        .all(|s| s.labels.get("__name__").map(String::as_str) == Some("cpu")));
    let v = vector(&s, "cpu > bool on(host) mem", 0).await;
    assert_eq!(
        by_labels(&v),
        vec![
            (labels(&[("host", "a")]), 0.0),
            (labels(&[("host", "b")]), 0.0)
        ]
    );
    // Many-to-many is refused.
    let err = instant(&s, "cpu / on(dc) cpu", 0).await.unwrap_err();
    assert!(err.to_string().contains("many-to-many"), "{err}");
    // Many-to-one needs group_left, which is not supported.
    let err = instant(&s, "cpu / on(dc) sum by (dc) (cpu)", 0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("many-to-one"), "{err}");
    // Dropping the name can make label sets collide.
    let s2 = MemStore::new();
    s2.add(key("a", &[("x", "1")]), &[(0, 1.0)]);
    s2.add(key("b", &[("x", "1")]), &[(0, 2.0)]);
    let err = instant(&s2, "{x=\"1\"} * 2", 0).await.unwrap_err();
    assert!(err.to_string().contains("same labelset"), "{err}");
    assert_eq!(vector(&s2, "{x=\"1\"} > 0", 0).await.len(), 2);
}

#[tokio::test]
async fn set_operators() {
    let s = cpu_store();
    let hosts = |v: Vec<InstantSample>| -> Vec<String> {
        v.iter()
            .map(|s| format!("{}:{}", s.labels["__name__"], s.labels["host"]))
            .collect()
    };
    assert_eq!(
        hosts(vector(&s, "cpu and on(host) mem", 0).await),
        vec!["cpu:a", "cpu:b"]
    );
    assert_eq!(
        hosts(vector(&s, "cpu unless on(host) mem", 0).await),
        vec!["cpu:c"]
    );
    assert_eq!(
        hosts(vector(&s, "cpu and mem", 0).await),
        Vec::<String>::new()
    );
    assert_eq!(
        hosts(vector(&s, "mem or cpu", 0).await),
        vec!["cpu:a", "cpu:b", "cpu:c", "mem:a", "mem:b"]
    );
    assert_eq!(
        hosts(vector(&s, "mem or on(host) cpu", 0).await),
        vec!["cpu:c", "mem:a", "mem:b"]
    );
    assert_eq!(
        hosts(vector(&s, "cpu{host=\"a\"} or cpu", 0).await),
        vec!["cpu:a", "cpu:b", "cpu:c"]
    );
    assert_eq!(
        hosts(vector(&s, "cpu > 1 and cpu < 4", 0).await),
        vec!["cpu:b"]
    );
}

#[tokio::test]
async fn selectors_and_matchers() {
    let s = cpu_store();
    assert_eq!(vector(&s, "{__name__=~\"cpu|mem\"}", 0).await.len(), 5);
    assert_eq!(vector(&s, "cpu{host!=\"a\"}", 0).await.len(), 2);
    assert_eq!(vector(&s, "cpu{host=~\"a|b\"}", 0).await.len(), 2);
    assert_eq!(vector(&s, "cpu{host=~\"a\"}", 0).await.len(), 1, "anchored");
    assert_eq!(vector(&s, "cpu{host!~\"a\"}", 0).await.len(), 2);
    assert_eq!(vector(&s, "{dc=\"\", host=\"a\"}", 0).await.len(), 1);
    assert_eq!(vector(&s, "cpu{missing=\"\"}", 0).await.len(), 3);
    assert!(vector(&s, "nothing", 0).await.is_empty());
}

#[tokio::test]
async fn range_queries() {
    let s = MemStore::new();
    s.add(
        key("x", &[("a", "1")]),
        &[(0, 1.0), (60 * S, 2.0), (120 * S, 3.0)],
    );
    let m = matrix(&s, "x", 0, 120 * S, 30 * S).await;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].labels, labels(&[("__name__", "x"), ("a", "1")]));
    let pts: Vec<(i64, f64)> = m[0].samples.iter().map(|p| (p.ts_ms, p.value)).collect();
    assert_eq!(
        pts,
        vec![
            (0, 1.0),
            (30 * S, 1.0),
            (60 * S, 2.0),
            (90 * S, 2.0),
            (120 * S, 3.0)
        ]
    );
    // Steps after the data run out are left out after the 5-minute lookback.
    let m = matrix(&s, "x", 0, 10 * M, M).await;
    assert_eq!(m[0].samples.len(), 7, "{:?}", m[0].samples);
    assert_eq!(m[0].samples.last().unwrap().ts_ms, 6 * M);
    // Scalars make one series without labels.
    let m = matrix(&s, "time()", 0, 60 * S, 30 * S).await;
    assert_eq!(m.len(), 1);
    assert!(m[0].labels.is_empty());
    assert_eq!(
        m[0].samples,
        vec![
            Sample::new(0, 0.0),
            Sample::new(30 * S, 30.0),
            Sample::new(60 * S, 60.0)
        ]
    );
    // Range queries of strings or range vectors are refused.
    let e = parse("\"s\"").unwrap();
    assert!(matches!(
        eval::range(&s, &e, 0, 1, 1).await,
        Err(EvalError::RangeQueryType(_))
    ));
    let e = parse("x[5m]").unwrap();
    assert!(matches!(
        eval::range(&s, &e, 0, 1, 1).await,
        Err(EvalError::RangeQueryType(_))
    ));
    let e = parse("x").unwrap();
    assert!(matches!(
        eval::range(&s, &e, 10, 0, 1).await,
        Err(EvalError::InvalidRange(_))
    ));
    assert!(matches!(
        eval::range(&s, &e, 0, 10, 0).await,
        Err(EvalError::InvalidRange(_))
    ));
}

/// Every point of a range query equals the instant query at that step.
#[tokio::test]
async fn range_points_match_instant_queries() {
    let s = MemStore::new();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for host in ["a", "b", "c"] {
        for dc in ["x", "y"] {
            let mut v = 0.0;
            let mut samples = Vec::new();
            let mut t = (rnd() % 20_000) as i64;
            while t < 30 * M {
                // A counter with occasional resets and irregular gaps.
                v = if rnd() % 40 == 0 {
                    0.0
                } else {
                    v + (rnd() % 100) as f64
                };
                samples.push((t, v));
                t += 5_000 + (rnd() % 30_000) as i64;
                if rnd() % 50 == 0 {
                    t += 8 * M;
                }
            }
            s.add(key("req", &[("host", host), ("dc", dc)]), &samples);
        }
    }
    let queries = [
        "req",
        "req offset 3m",
        "rate(req[5m])",
        "irate(req[2m])",
        "increase(req[3m] offset 1m)",
        "delta(req[4m])",
        "sum by (dc) (rate(req[5m]))",
        "avg without (host) (req)",
        "max_over_time(req[7m])",
        "avg_over_time(req[90s])",
        "count_over_time(req[1m])",
        "topk(2, req)",
        "req > 3000",
        "req / on(host, dc) (req + 1)",
        "sum(req) / count(req)",
        "quantile(0.3, req)",
        "req and on(host) (req > 2000)",
        "time() + 1",
    ];
    let (start, end, step) = (-M, 32 * M, 37 * S);
    for q in queries {
        let m = matrix(&s, q, start, end, step).await;
        let mut t = start;
        while t <= end {
            let inst = match instant(&s, q, t).await.unwrap() {
                Value::Vector(v) => by_labels(&v),
                Value::Scalar { value, .. } => vec![(Labels::new(), value)],
                v => panic!("{v:?}"),
            };
            let mut from_range: Vec<(Labels, f64)> = m
                .iter()
                .filter_map(|s| {
                    s.samples
                        .iter()
                        .find(|p| p.ts_ms == t)
                        .map(|p| (s.labels.clone(), p.value))
                })
                .collect();
            let mut inst = inst;
            inst.sort_by(|a, b| a.0.cmp(&b.0));
            from_range.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(inst.len(), from_range.len(), "{q} at {t}");
            for (a, b) in inst.iter().zip(&from_range) {
                assert_eq!(a.0, b.0, "{q} at {t}");
                assert!(approx(a.1, b.1), "{q} at {t}: {} vs {}", a.1, b.1);
            }
            t += step;
        }
    }
}

#[tokio::test]
async fn step_and_sample_limits() {
    let s = counter_store();
    let e = parse("c").unwrap();
    // 11,000 points are fine, 11,001 are not.
    assert!(eval::range(&s, &e, 0, 10_999 * S, S).await.is_ok());
    assert!(matches!(
        eval::range(&s, &e, 0, 11_000 * S, S).await,
        Err(EvalError::TooManySteps { limit: 11_000 })
    ));
    let opts = EvalOptions {
        max_samples: 5,
        ..EvalOptions::default()
    };
    let e = parse("sum_over_time(c[10m])").unwrap();
    let err = eval::instant_with(&s, &e, 120 * S, &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EvalError::TooManySamples { limit: 5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("too many samples"));
    let e = parse("sum_over_time(c[1m])").unwrap();
    assert!(eval::instant_with(&s, &e, 120 * S, &opts).await.is_ok());
    // Points: 1 series × 10 steps > 5.
    let e = parse("c").unwrap();
    assert!(matches!(
        eval::range_with(&s, &e, 0, 9 * S, S, &opts).await,
        Err(EvalError::TooManySamples { .. })
    ));
    // A timeout.
    let opts = EvalOptions {
        timeout: Some(Duration::ZERO),
        ..EvalOptions::default()
    };
    assert!(matches!(
        eval::instant_with(&s, &e, 0, &opts).await,
        Err(EvalError::Timeout)
    ));
}

#[tokio::test]
async fn each_selector_is_fetched_once() {
    let s = counter_store();
    let e = parse("rate(c[5m]) + rate(c[5m]) * sum(rate(c[5m]))").unwrap();
    eval::range(&s, &e, 0, 10 * M, 15 * S).await.unwrap();
    assert_eq!(s.calls(), 1);
    let s = counter_store();
    let e = parse("c + c offset 1m + rate(c[1m])").unwrap();
    eval::range(&s, &e, 0, 10 * M, 15 * S).await.unwrap();
    assert_eq!(s.calls(), 3);
}

#[tokio::test]
async fn staleness_markers_end_series() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let s = MemStore::new();
    s.add(key("x", &[]), &[(0, 1.0), (30 * S, stale), (60 * S, 3.0)]);
    assert_eq!(one(&s, "x", 10 * S).await, 1.0);
    assert!(vector(&s, "x", 40 * S).await.is_empty());
    assert_eq!(one(&s, "x", 70 * S).await, 3.0);
    assert_eq!(one(&s, "count_over_time(x[2m])", 70 * S).await, 2.0);
    // A real NaN is a value.
    let s = MemStore::new();
    s.add(key("n", &[]), &[(0, f64::NAN)]);
    assert!(one(&s, "n", 0).await.is_nan());
    assert!(one(&s, "n + 1", 0).await.is_nan());
}

#[tokio::test]
async fn instant_range_selector_returns_raw_samples() {
    let s = counter_store();
    match instant(&s, "c[30s]", 60 * S).await.unwrap() {
        Value::Matrix(m) => {
            assert_eq!(m.len(), 1);
            assert_eq!(m[0].labels, labels(&[("__name__", "c"), ("job", "a")]));
            assert_eq!(
                m[0].samples,
                vec![Sample::new(45 * S, 5.0), Sample::new(60 * S, 15.0)]
            );
        }
        v => panic!("{v:?}"),
    }
    match instant(&s, "c[30s] offset 30s", 60 * S).await.unwrap() {
        Value::Matrix(m) => assert_eq!(
            m[0].samples,
            vec![Sample::new(15 * S, 10.0), Sample::new(30 * S, 20.0)]
        ),
        v => panic!("{v:?}"),
    }
}

#[test]
fn deepest_expressions_evaluate_in_a_2_mib_stack() {
    // Tokio's worker threads have 2 MiB stacks; parsing, evaluating and dropping the
    // deepest accepted trees must fit with room to spare, even unoptimised.
    let depth = palisade_promql::parser::MAX_DEPTH;
    let queries = vec![
        format!(
            "{}c{}",
            "sum(abs(".repeat(depth / 2 - 1),
            "))".repeat(depth / 2 - 1)
        ),
        format!("{}c{}", "(".repeat(depth - 2), ")".repeat(depth - 2)),
        vec!["c"; depth - 1].join(" + "),
        format!("{}1", "2 ^ ".repeat(depth - 2)),
        format!("{}c", "-".repeat(depth - 2)),
    ];
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let s = counter_store();
                for q in &queries {
                    let e = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
                    eval::instant(&s, &e, 60 * S).await.unwrap();
                    eval::range(&s, &e, 0, 120 * S, 15 * S).await.unwrap();
                }
            });
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn evaluation_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let s = MemStore::new();
    let e = parse("x").unwrap();
    assert_send(eval::instant(&s, &e, 0));
    assert_send(eval::range(&s, &e, 0, 1, 1));
    let params: Vec<(String, String)> = Vec::new();
    let opts = EvalOptions::default();
    assert_send(palisade_promql::api::query(&s, &params, 0, &opts));
    assert_send(palisade_promql::api::query_range(&s, &params, &opts));
    assert_send(palisade_promql::api::query_text(&s, &params, 0, &opts));
    assert_send(palisade_promql::api::query_range_text(&s, &params, &opts));
    assert_send(palisade_promql::api::series(&s, &params));
    assert_send(palisade_promql::api::labels(&s, &params));
    assert_send(palisade_promql::api::label_values(&s, "x", &params));
}
