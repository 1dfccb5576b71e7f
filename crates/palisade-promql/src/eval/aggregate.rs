//! Aggregation operators (`sum by (...)`, `topk`, ...).

use super::functions::kahan_inc;
use super::{absent, canon, cmp_nan_last, present, Ctx, EvalError, Series};
use crate::ast::{Aggregate, AggregateGrouping, AggregateOp};
use palisade_tsdb::{Labels, METRIC_LABEL};
use std::collections::HashMap;

fn group_key(labels: &Labels, grouping: &AggregateGrouping) -> Labels {
    match grouping {
        AggregateGrouping::None => Labels::new(),
        AggregateGrouping::By(names) => names
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
        AggregateGrouping::Without(names) => {
            let mut key = labels.clone();
            key.remove(METRIC_LABEL);
            for n in names {
                key.remove(n);
            }
            key
        }
    }
}

pub(super) fn aggregate(ctx: &Ctx<'_>, a: &Aggregate) -> Result<Vec<Series>, EvalError> {
    let input = ctx.eval_vector(&a.expr)?;
    let param = match &a.param {
        Some(p) => Some(ctx.eval_scalar(p)?),
        None => None,
    };
    // Groups in order of first appearance.
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    for (i, s) in input.iter().enumerate() {
        let key = group_key(&s.labels, &a.grouping);
        match index.get(&key) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![i]));
            }
        }
    }
    ctx.check_deadline()?;
    match (a.op, param) {
        (AggregateOp::Topk | AggregateOp::Bottomk, Some(k)) => {
            Ok(top_k(ctx, &input, &groups, &k, a.op == AggregateOp::Topk)?)
        }
        (AggregateOp::Quantile, Some(q)) => Ok(quantile(ctx, &input, groups, &q)),
        (AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Quantile, None) => Err(
            EvalError::Execution(format!("{} needs a parameter", a.op.name())),
        ),
        (op, _) => Ok(simple(ctx, &input, groups, op)),
    }
}

/// Per-step accumulator of the simple aggregations.
#[derive(Clone, Copy, Default)]
struct Acc {
    n: f64,
    a: f64,
    b: f64,
    c: f64,
    incremental: bool,
}

impl Acc {
    fn add(&mut self, op: AggregateOp, v: f64) {
        if self.n == 0.0 {
            *self = Acc {
                n: 1.0,
                a: v,
                ..Acc::default()
            };
            return;
        }
        self.n += 1.0;
        match op {
            AggregateOp::Sum => (self.a, self.b) = kahan_inc(v, self.a, self.b),
            AggregateOp::Avg => {
                // a: sum (or mean once incremental), b: compensation.
                if !self.incremental {
                    let (s, c) = kahan_inc(v, self.a, self.b);
                    if !s.is_infinite() {
                        (self.a, self.b) = (s, c);
                        return;
                    }
                    self.incremental = true;
                    self.a /= self.n - 1.0;
                    self.b /= self.n - 1.0;
                }
                let q = (self.n - 1.0) / self.n;
                (self.a, self.b) = kahan_inc(v / self.n, q * self.a, q * self.b);
            }
            AggregateOp::Min if self.a > v || self.a.is_nan() => self.a = v,
            AggregateOp::Max if self.a < v || self.a.is_nan() => self.a = v,
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                // a: mean, b: its compensation, c: sum of squared deviations.
                let delta = v - (self.a + self.b);
                (self.a, self.b) = kahan_inc(delta / self.n, self.a, self.b);
                self.c += delta * (v - (self.a + self.b));
            }
            _ => {}
        }
    }

    fn result(&self, op: AggregateOp) -> f64 {
        match op {
            AggregateOp::Sum => self.a + self.b,
            AggregateOp::Avg => {
                if self.incremental {
                    self.a + self.b
                } else {
                    self.a / self.n + self.b / self.n
                }
            }
            AggregateOp::Min | AggregateOp::Max => self.a,
            AggregateOp::Count => self.n,
            AggregateOp::Group => 1.0,
            AggregateOp::Stdvar => self.c / self.n,
            AggregateOp::Stddev => (self.c / self.n).sqrt(),
            _ => f64::NAN,
        }
    }
}

fn simple(
    ctx: &Ctx<'_>,
    input: &[Series],
    groups: Vec<(Labels, Vec<usize>)>,
    op: AggregateOp,
) -> Vec<Series> {
    let n = ctx.grid.n;
    let mut acc = vec![Acc::default(); n];
    let mut out = Vec::with_capacity(groups.len());
    for (labels, members) in groups {
        acc.iter_mut().for_each(|a| *a = Acc::default());
        for &m in &members {
            for (a, &v) in acc.iter_mut().zip(&input[m].vals) {
                if present(v) {
                    a.add(op, v);
                }
            }
        }
        let vals: Vec<f64> = acc
            .iter()
            .map(|a| {
                if a.n == 0.0 {
                    absent()
                } else {
                    canon(a.result(op))
                }
            })
            .collect();
        if vals.iter().any(|v| present(*v)) {
            out.push(Series { labels, vals });
        }
    }
    out
}

fn top_k(
    ctx: &Ctx<'_>,
    input: &[Series],
    groups: &[(Labels, Vec<usize>)],
    k: &[f64],
    top: bool,
) -> Result<Vec<Series>, EvalError> {
    let n = ctx.grid.n;
    let mut chosen: Vec<Option<Vec<f64>>> = vec![None; input.len()];
    let mut scratch: Vec<(f64, usize)> = Vec::new();
    for i in 0..n {
        let kf = k.get(i).copied().unwrap_or(f64::NAN);
        if kf.is_nan() {
            return Err(EvalError::Execution("Parameter value is NaN".into()));
        }
        if kf < 1.0 {
            continue;
        }
        // Saturating float → integer conversion.
        let k = kf as usize;
        for (_, members) in groups {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .map(|&m| (input[m].vals[i], m))
                    .filter(|(v, _)| present(*v)),
            );
            if top {
                scratch.sort_by(|a, b| cmp_nan_last(-a.0, -b.0));
            } else {
                scratch.sort_by(|a, b| cmp_nan_last(a.0, b.0));
            }
            for &(v, m) in scratch.iter().take(k) {
                chosen[m].get_or_insert_with(|| vec![absent(); n])[i] = v;
            }
        }
    }
    Ok(chosen
        .into_iter()
        .zip(input)
        .filter_map(|(vals, s)| {
            vals.map(|vals| Series {
                labels: s.labels.clone(),
                vals,
            })
        })
        .collect())
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks.
fn quantile_of(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN first, as Prometheus sorts them.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lo = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let hi = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lo * (1.0 - weight) + hi * weight
}

fn quantile(
    ctx: &Ctx<'_>,
    input: &[Series],
    groups: Vec<(Labels, Vec<usize>)>,
    q: &[f64],
) -> Vec<Series> {
    let n = ctx.grid.n;
    let mut scratch: Vec<f64> = Vec::new();
    let mut out = Vec::with_capacity(groups.len());
    for (labels, members) in groups {
        let mut vals = vec![absent(); n];
        let mut any = false;
        for (i, slot) in vals.iter_mut().enumerate() {
            scratch.clear();
            scratch.extend(
                members
                    .iter()
                    .map(|&m| input[m].vals[i])
                    .filter(|v| present(*v)),
            );
            if !scratch.is_empty() {
                *slot = canon(quantile_of(
                    q.get(i).copied().unwrap_or(f64::NAN),
                    &mut scratch,
                ));
                any = true;
            }
        }
        if any {
            out.push(Series { labels, vals });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile_of(0.5, &mut v), 2.5);
        assert_eq!(quantile_of(0.0, &mut v), 1.0);
        assert_eq!(quantile_of(1.0, &mut v), 4.0);
        assert_eq!(quantile_of(-1.0, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile_of(2.0, &mut v), f64::INFINITY);
        assert!(quantile_of(f64::NAN, &mut v).is_nan());
    }

    #[test]
    fn accumulators() {
        let run = |op, vals: &[f64]| {
            let mut a = Acc::default();
            for v in vals {
                a.add(op, *v);
            }
            a.result(op)
        };
        assert_eq!(run(AggregateOp::Sum, &[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(run(AggregateOp::Avg, &[1.0, 2.0, 3.0]), 2.0);
        assert_eq!(run(AggregateOp::Min, &[f64::NAN, 2.0, 1.0]), 1.0);
        assert_eq!(run(AggregateOp::Max, &[2.0, f64::NAN, 3.0]), 3.0);
        assert_eq!(run(AggregateOp::Count, &[2.0, f64::NAN]), 2.0);
        assert_eq!(run(AggregateOp::Group, &[5.0, 7.0]), 1.0);
        assert_eq!(
            run(
                AggregateOp::Stdvar,
                &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            ),
            4.0
        );
        assert_eq!(
            run(
                AggregateOp::Stddev,
                &[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
            ),
            2.0
        );
        let big = run(AggregateOp::Avg, &[f64::MAX, f64::MAX]);
        assert!((big - f64::MAX).abs() / f64::MAX < 1e-12);
        assert_eq!(run(AggregateOp::Sum, &[1e100, 1.0, -1e100]), 1.0);
    }
}
