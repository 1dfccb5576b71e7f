//! Binary operators: arithmetic, comparisons, set operators; scalar and vector operands.

use super::{absent, canon, dedupe, format_labels, present, Ctx, Data, EvalError, Series};
use crate::ast::{Binary, BinaryOp, VectorMatching};
use palisade_tsdb::{Labels, METRIC_LABEL};
use std::collections::HashMap;

/// Applies `op`; for comparisons the value is the left operand and the flag says whether
/// the comparison holds.
#[inline]
fn apply(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (l, true),
    }
}

pub(super) fn binary(ctx: &Ctx<'_>, b: &Binary) -> Result<Data, EvalError> {
    let lhs = ctx.eval(&b.lhs)?;
    let rhs = ctx.eval(&b.rhs)?;
    match (lhs, rhs) {
        (Data::Scalar(l), Data::Scalar(r)) => Ok(Data::Scalar(
            l.iter()
                .zip(&r)
                .map(|(&l, &r)| {
                    let (v, keep) = apply(b.op, l, r);
                    if b.op.is_comparison() {
                        // The parser only lets `bool` comparisons through here.
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        canon(v)
                    }
                })
                .collect(),
        )),
        (Data::Vector(v), Data::Scalar(s)) => vector_scalar(b, v, &s, false),
        (Data::Scalar(s), Data::Vector(v)) => vector_scalar(b, v, &s, true),
        (Data::Vector(l), Data::Vector(r)) => {
            ctx.check_deadline()?;
            if b.op.is_set() {
                set_op(b.op, b.matching.as_ref(), l, r).map(Data::Vector)
            } else {
                vector_vector(ctx, b, l, &r).map(Data::Vector)
            }
        }
        _ => Err(EvalError::Execution(
            "binary expression must contain only scalar and instant vector types".into(),
        )),
    }
}

fn vector_scalar(
    b: &Binary,
    mut series: Vec<Series>,
    scalar: &[f64],
    scalar_left: bool,
) -> Result<Data, EvalError> {
    let cmp = b.op.is_comparison();
    let drop_name = !cmp || b.return_bool;
    for s in &mut series {
        if drop_name {
            s.labels.remove(METRIC_LABEL);
        }
        for (v, &sv) in s.vals.iter_mut().zip(scalar) {
            if !present(*v) {
                continue;
            }
            let (l, r) = if scalar_left { (sv, *v) } else { (*v, sv) };
            let (res, keep) = apply(b.op, l, r);
            *v = if !cmp {
                canon(res)
            } else if b.return_bool {
                if keep {
                    1.0
                } else {
                    0.0
                }
            } else if keep {
                *v // a filter keeps the vector's value, whichever side it is on
            } else {
                absent()
            };
        }
    }
    series.retain(|s| s.vals.iter().any(|v| present(*v)));
    if drop_name {
        dedupe(series).map(Data::Vector)
    } else {
        Ok(Data::Vector(series))
    }
}

/// The labels two series are matched on.
fn signature(labels: &Labels, matching: Option<&VectorMatching>) -> Labels {
    match matching {
        Some(m) if m.on => m
            .labels
            .iter()
            .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
            .collect(),
        _ => {
            let mut sig = labels.clone();
            sig.remove(METRIC_LABEL);
            if let Some(m) = matching {
                for n in &m.labels {
                    sig.remove(n);
                }
            }
            sig
        }
    }
}

/// Result labels of a one-to-one match (Prometheus' `resultMetric`).
fn result_labels(lhs: &Labels, b: &Binary) -> Labels {
    let mut labels = lhs.clone();
    if b.op.is_arithmetic() || b.return_bool {
        labels.remove(METRIC_LABEL);
    }
    match &b.matching {
        Some(m) if m.on => labels.retain(|k, _| m.labels.iter().any(|n| n == k)),
        Some(m) => {
            for n in &m.labels {
                labels.remove(n);
            }
        }
        None => {}
    }
    labels
}

fn vector_vector(
    ctx: &Ctx<'_>,
    b: &Binary,
    lhs: Vec<Series>,
    rhs: &[Series],
) -> Result<Vec<Series>, EvalError> {
    let n = ctx.grid.n;
    let matching = b.matching.as_ref();
    let cmp = b.op.is_comparison();
    let mut rhs_groups: HashMap<Labels, Vec<usize>> = HashMap::new();
    for (i, s) in rhs.iter().enumerate() {
        rhs_groups
            .entry(signature(&s.labels, matching))
            .or_default()
            .push(i);
    }
    let mut lhs_index: HashMap<Labels, usize> = HashMap::new();
    let mut lhs_groups: Vec<(Labels, Vec<usize>)> = Vec::new();
    for (i, s) in lhs.iter().enumerate() {
        let sig = signature(&s.labels, matching);
        match lhs_index.get(&sig) {
            Some(&g) => lhs_groups[g].1.push(i),
            None => {
                lhs_index.insert(sig.clone(), lhs_groups.len());
                lhs_groups.push((sig, vec![i]));
            }
        }
    }
    let mut out: Vec<Series> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    // The output series of each lhs series, created on first use.
    let mut target: Vec<Option<usize>> = vec![None; lhs.len()];
    for (sig, members) in &lhs_groups {
        let Some(rmembers) = rhs_groups.get(sig) else {
            continue;
        };
        for i in 0..n {
            let mut matched: Option<f64> = None;
            for &r in rmembers {
                let v = rhs[r].vals[i];
                if present(v) {
                    if matched.is_some() {
                        return Err(EvalError::Execution(format!(
                            "found duplicate series for the match group {} on the right hand-side of the operation; many-to-many matching not allowed: matching labels must be unique on one side",
                            format_labels(sig)
                        )));
                    }
                    matched = Some(v);
                }
            }
            let Some(rv) = matched else {
                continue;
            };
            let mut produced = false;
            for &l in members {
                let lv = lhs[l].vals[i];
                if !present(lv) {
                    continue;
                }
                let (res, keep) = apply(b.op, lv, rv);
                let value = if !cmp {
                    canon(res)
                } else if b.return_bool {
                    if keep {
                        1.0
                    } else {
                        0.0
                    }
                } else if keep {
                    lv
                } else {
                    continue;
                };
                if produced {
                    return Err(EvalError::Execution(format!(
                        "multiple matches for labels {}: many-to-one matching must be explicit (group_left/group_right)",
                        format_labels(sig)
                    )));
                }
                produced = true;
                let t = match target[l] {
                    Some(t) => t,
                    None => {
                        let labels = result_labels(&lhs[l].labels, b);
                        let t = match out_index.get(&labels) {
                            Some(&t) => t,
                            None => {
                                ctx.check_points(out.len() + 1)?;
                                out_index.insert(labels.clone(), out.len());
                                out.push(Series {
                                    labels,
                                    vals: vec![absent(); n],
                                });
                                out.len() - 1
                            }
                        };
                        target[l] = Some(t);
                        t
                    }
                };
                let slot = &mut out[t].vals[i];
                if present(*slot) {
                    return Err(EvalError::Execution(format!(
                        "vector cannot contain metrics with the same labelset {}",
                        format_labels(&out[t].labels)
                    )));
                }
                *slot = value;
            }
        }
    }
    Ok(out)
}

/// Per signature, whether any series with it has a value at each step.
fn presence(series: &[Series], matching: Option<&VectorMatching>) -> HashMap<Labels, Vec<bool>> {
    let mut masks: HashMap<Labels, Vec<bool>> = HashMap::new();
    for s in series {
        let mask = masks
            .entry(signature(&s.labels, matching))
            .or_insert_with(|| vec![false; s.vals.len()]);
        for (m, v) in mask.iter_mut().zip(&s.vals) {
            *m |= present(*v);
        }
    }
    masks
}

/// Keeps the values where `keep(mask)` holds (`mask`: the other side's presence).
fn filter(
    series: Vec<Series>,
    masks: &HashMap<Labels, Vec<bool>>,
    matching: Option<&VectorMatching>,
    keep_where_present: bool,
) -> Vec<Series> {
    let mut out = Vec::with_capacity(series.len());
    for mut s in series {
        match masks.get(&signature(&s.labels, matching)) {
            Some(mask) => {
                for (v, m) in s.vals.iter_mut().zip(mask) {
                    if *m != keep_where_present {
                        *v = absent();
                    }
                }
            }
            None if keep_where_present => continue,
            None => {}
        }
        if s.vals.iter().any(|v| present(*v)) {
            out.push(s);
        }
    }
    out
}

fn set_op(
    op: BinaryOp,
    matching: Option<&VectorMatching>,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
) -> Result<Vec<Series>, EvalError> {
    match op {
        BinaryOp::And => Ok(filter(lhs, &presence(&rhs, matching), matching, true)),
        BinaryOp::Unless => Ok(filter(lhs, &presence(&rhs, matching), matching, false)),
        _ => {
            let masks = presence(&lhs, matching);
            let mut out = lhs;
            out.extend(filter(rhs, &masks, matching, false));
            dedupe(out)
        }
    }
}
