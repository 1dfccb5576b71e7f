//! Function calls.

use super::{absent, canon, dedupe, present, Ctx, Data, EvalError, Series};
use crate::ast::{Expr, Function};
use palisade_tsdb::{Labels, Sample, METRIC_LABEL};

pub(super) fn call(ctx: &Ctx<'_>, func: Function, args: &[Expr]) -> Result<Data, EvalError> {
    if func.takes_range() {
        let Some(Expr::Matrix(ms)) = args.first().map(Expr::unparen) else {
            return Err(EvalError::Execution(format!(
                "{} expects a range vector selector",
                func.name()
            )));
        };
        let range_s = ms.range_ms as f64 / 1000.0;
        let keep_name = func == Function::LastOverTime;
        let series = ctx.over_windows(ms, keep_name, |w, start, end| {
            over_window(func, w, start, end, range_s)
        })?;
        return Ok(Data::Vector(series));
    }
    let n = ctx.grid.n;
    match func {
        Function::Time => Ok(Data::Scalar(
            (0..n).map(|i| ctx.grid.t(i) as f64 / 1000.0).collect(),
        )),
        Function::Vector => {
            let vals = ctx.eval_scalar(arg(args, 0)?)?;
            Ok(Data::Vector(vec![Series {
                labels: Labels::new(),
                vals,
            }]))
        }
        Function::Scalar => {
            let input = ctx.eval_vector(arg(args, 0)?)?;
            let vals = (0..n)
                .map(|i| {
                    let mut it = input.iter().map(|s| s.vals[i]).filter(|v| present(*v));
                    match (it.next(), it.next()) {
                        (Some(v), None) => v,
                        _ => f64::NAN,
                    }
                })
                .collect();
            Ok(Data::Scalar(vals))
        }
        // Ordering only matters for instant queries; eval::instant_with applies it.
        Function::Sort | Function::SortDesc => ctx.eval(arg(args, 0)?),
        Function::Round => {
            let to_nearest = match args.get(1) {
                Some(e) => ctx.eval_scalar(e)?,
                None => vec![1.0; n],
            };
            map_values(ctx, arg(args, 0)?, |v, i| {
                let inv = 1.0 / to_nearest[i];
                Some((v * inv + 0.5).floor() / inv)
            })
        }
        Function::ClampMin => {
            let min = ctx.eval_scalar(arg(args, 1)?)?;
            map_values(ctx, arg(args, 0)?, |v, i| Some(go_max(min[i], v)))
        }
        Function::ClampMax => {
            let max = ctx.eval_scalar(arg(args, 1)?)?;
            map_values(ctx, arg(args, 0)?, |v, i| Some(go_min(max[i], v)))
        }
        Function::Clamp => {
            let min = ctx.eval_scalar(arg(args, 1)?)?;
            let max = ctx.eval_scalar(arg(args, 2)?)?;
            map_values(ctx, arg(args, 0)?, |v, i| {
                (max[i] >= min[i] || min[i].is_nan() || max[i].is_nan())
                    .then(|| go_max(min[i], go_min(max[i], v)))
            })
        }
        Function::Abs => map_values(ctx, arg(args, 0)?, |v, _| Some(v.abs())),
        Function::Ceil => map_values(ctx, arg(args, 0)?, |v, _| Some(v.ceil())),
        Function::Floor => map_values(ctx, arg(args, 0)?, |v, _| Some(v.floor())),
        Function::Sqrt => map_values(ctx, arg(args, 0)?, |v, _| Some(v.sqrt())),
        Function::Exp => map_values(ctx, arg(args, 0)?, |v, _| Some(v.exp())),
        Function::Ln => map_values(ctx, arg(args, 0)?, |v, _| Some(v.ln())),
        Function::Log2 => map_values(ctx, arg(args, 0)?, |v, _| Some(v.log2())),
        Function::Log10 => map_values(ctx, arg(args, 0)?, |v, _| Some(v.log10())),
        Function::Sgn => map_values(ctx, arg(args, 0)?, |v, _| {
            Some(if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            })
        }),
        _ => Err(EvalError::Execution(format!(
            "function {} is not implemented",
            func.name()
        ))),
    }
}

fn arg(args: &[Expr], i: usize) -> Result<&Expr, EvalError> {
    args.get(i)
        .ok_or_else(|| EvalError::Execution(format!("missing argument {}", i + 1)))
}

/// Applies `f(value, step)` to every present value of the vector argument; drops the
/// metric name. `None` removes the value.
fn map_values<F>(ctx: &Ctx<'_>, e: &Expr, f: F) -> Result<Data, EvalError>
where
    F: Fn(f64, usize) -> Option<f64>,
{
    let mut series = ctx.eval_vector(e)?;
    for s in &mut series {
        s.labels.remove(METRIC_LABEL);
        for (i, v) in s.vals.iter_mut().enumerate() {
            if present(*v) {
                *v = f(*v, i).map(canon).unwrap_or_else(absent);
            }
        }
    }
    series.retain(|s| s.vals.iter().any(|v| present(*v)));
    dedupe(series).map(Data::Vector)
}

/// Go's `math.Max`: NaN if either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN if either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == 0.0 && b == 0.0 {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// Prometheus' Kahan–Neumaier summation step (`kahanSumInc`).
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Evaluates a range function over one window (`w` is not empty).
fn over_window(func: Function, w: &[Sample], start: i64, end: i64, range_s: f64) -> Option<f64> {
    let first = w.first()?;
    let last = w.last()?;
    match func {
        Function::Rate => extrapolated_rate(w, start, end, range_s, true, true),
        Function::Increase => extrapolated_rate(w, start, end, range_s, true, false),
        Function::Delta => extrapolated_rate(w, start, end, range_s, false, false),
        Function::Irate => instant_value(w, true),
        Function::Idelta => instant_value(w, false),
        Function::SumOverTime => {
            let (s, c) = w
                .iter()
                .fold((0.0, 0.0), |(s, c), x| kahan_inc(x.value, s, c));
            Some(s + c)
        }
        Function::AvgOverTime => Some(mean(w.iter().map(|s| s.value))),
        Function::MinOverTime => Some(w.iter().fold(first.value, |m, s| {
            if s.value < m || m.is_nan() {
                s.value
            } else {
                m
            }
        })),
        Function::MaxOverTime => Some(w.iter().fold(first.value, |m, s| {
            if s.value > m || m.is_nan() {
                s.value
            } else {
                m
            }
        })),
        Function::CountOverTime => Some(w.len() as f64),
        Function::LastOverTime => Some(last.value),
        Function::PresentOverTime => Some(1.0),
        Function::StddevOverTime => Some(variance(w).sqrt()),
        Function::StdvarOverTime => Some(variance(w)),
        Function::Changes => {
            let mut changes = 0u64;
            let mut prev = first.value;
            for s in w.iter().skip(1) {
                if s.value != prev && !(s.value.is_nan() && prev.is_nan()) {
                    changes += 1;
                }
                prev = s.value;
            }
            Some(changes as f64)
        }
        Function::Resets => {
            let mut resets = 0u64;
            let mut prev = first.value;
            for s in w.iter().skip(1) {
                if s.value < prev {
                    resets += 1;
                }
                prev = s.value;
            }
            Some(resets as f64)
        }
        _ => None,
    }
}

/// Prometheus' `extrapolatedRate` (rate, increase, delta) for float samples.
///
/// The raw change (plus, for counters, the value before every reset) is extrapolated to
/// the window's edges when the first/last sample is within 1.1 average sample intervals
/// of them, else by half an average interval; a counter is never extrapolated below 0.
pub(crate) fn extrapolated_rate(
    w: &[Sample],
    range_start: i64,
    range_end: i64,
    range_s: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = w.first()?;
    let last = w.last()?;
    if last.ts_ms == first.ts_ms {
        return None;
    }
    let mut result = last.value - first.value;
    if is_counter {
        for pair in w.windows(2) {
            if let [prev, cur] = pair {
                if cur.value < prev.value {
                    result += prev.value;
                }
            }
        }
    }
    let mut to_start = (first.ts_ms - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last.ts_ms) as f64 / 1000.0;
    let sampled = (last.ts_ms - first.ts_ms) as f64 / 1000.0;
    let avg_step = sampled / (w.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if is_counter && result > 0.0 && first.value >= 0.0 {
        // Counters cannot be negative: do not extrapolate past the zero point.
        let to_zero = sampled * (first.value / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range_s;
    }
    Some(result * factor)
}

/// Prometheus' `instantValue` (irate, idelta): the last two samples.
pub(crate) fn instant_value(w: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = w else {
        return None;
    };
    let mut v = if is_rate && last.value < prev.value {
        last.value // counter reset
    } else {
        last.value - prev.value
    };
    let dt = last.ts_ms - prev.ts_ms;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// The mean as Prometheus computes it: Kahan sum, switching to an incremental mean if the
/// sum overflows.
pub(crate) fn mean(mut values: impl Iterator<Item = f64>) -> f64 {
    let Some(first) = values.next() else {
        return f64::NAN;
    };
    let (mut sum, mut c, mut count) = (first, 0.0, 1.0);
    let mut incremental = false;
    let mut mean = 0.0;
    for v in values {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        let (m, nc) = kahan_inc(v / count, q * mean, q * c);
        mean = m;
        c = nc;
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

/// Population variance with Prometheus' compensated Welford updates.
fn variance(w: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in w {
        count += 1.0;
        let delta = s.value - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (s.value - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, value: f64) -> Sample {
        Sample::new(ts_ms, value)
    }

    #[test]
    fn rate_matches_prometheus_examples() {
        // Samples every 15s over a 60s window (t-60s, t], t = 60s: values 0..=40 at
        // 15,30,45,60 s → result 30 over 45 s sampled; start gap 15s < 1.1·15 → extrapolate
        // to 60s, but the zero point (first value 10 → 15 s back) is not earlier.
        let w = [
            s(15_000, 10.0),
            s(30_000, 20.0),
            s(45_000, 30.0),
            s(60_000, 40.0),
        ];
        let inc = extrapolated_rate(&w, 0, 60_000, 60.0, true, false).unwrap();
        assert!((inc - 40.0).abs() < 1e-9, "{inc}");
        let rate = extrapolated_rate(&w, 0, 60_000, 60.0, true, true).unwrap();
        assert!((rate - 40.0 / 60.0).abs() < 1e-12);
        // Counter reset: 10, 20, 5, 15 → 10 + 20 (before reset) ... = 15 - 10 + 20 = 25.
        let w = [
            s(15_000, 10.0),
            s(30_000, 20.0),
            s(45_000, 5.0),
            s(60_000, 15.0),
        ];
        let inc = extrapolated_rate(&w, 0, 60_000, 60.0, true, false).unwrap();
        assert!((inc - 25.0 * 60.0 / 45.0).abs() < 1e-9, "{inc}");
        // delta does not treat decreases as resets and may extrapolate below zero.
        let d = extrapolated_rate(&w, 0, 60_000, 60.0, false, false).unwrap();
        assert!((d - 5.0 * 60.0 / 45.0).abs() < 1e-9);
        assert_eq!(
            extrapolated_rate(&w[..1], 0, 60_000, 60.0, true, true),
            None
        );
    }

    #[test]
    fn irate_and_idelta() {
        let w = [s(0, 1.0), s(10_000, 5.0), s(20_000, 2.0)];
        assert_eq!(instant_value(&w, true), Some(2.0 / 10.0));
        assert_eq!(instant_value(&w, false), Some(-3.0));
        assert_eq!(instant_value(&w[..1], true), None);
    }

    #[test]
    fn mean_and_variance() {
        assert_eq!(mean([1.0, 2.0, 3.0, 4.0].into_iter()), 2.5);
        let m = mean([f64::MAX, f64::MAX, f64::MAX].into_iter());
        assert!((m - f64::MAX).abs() / f64::MAX < 1e-12, "{m}");
        let w = [
            s(0, 2.0),
            s(1, 4.0),
            s(2, 4.0),
            s(3, 4.0),
            s(4, 5.0),
            s(5, 5.0),
            s(6, 7.0),
            s(7, 9.0),
        ];
        assert!((variance(&w) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn go_min_max() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert!(go_min(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(1.0, 2.0), 2.0);
        assert_eq!(go_min(1.0, 2.0), 1.0);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(-0.0, 0.0).is_sign_negative());
    }
}
