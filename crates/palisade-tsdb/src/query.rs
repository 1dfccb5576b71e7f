//! Query arithmetic: step buckets, accumulators, merging overlapping runs, grouping.

use crate::types::{Aggregation, Grouping, Labels, Sample, SeriesKey};
use std::collections::{BTreeMap, HashMap};

/// Running min / max / sum / count of a bucket. A raw sample is `(v, v, v, 1)`; an hourly
/// rollup row is its own four values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Acc {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: f64,
}

impl Acc {
    pub(crate) const EMPTY: Acc = Acc {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        sum: 0.0,
        count: 0.0,
    };

    #[inline]
    pub(crate) fn of(v: f64) -> Acc {
        Acc {
            min: v,
            max: v,
            sum: v,
            count: 1.0,
        }
    }

    #[inline]
    pub(crate) fn merge(&mut self, o: Acc) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
    }

    #[inline]
    pub(crate) fn value(&self, agg: Aggregation) -> f64 {
        match agg {
            Aggregation::Avg => self.sum / self.count,
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::Sum => self.sum,
            Aggregation::Count => self.count,
            Aggregation::Raw => self.sum / self.count,
        }
    }
}

/// The bucket grid of a range query.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    pub start: i64,
    pub step: i64,
    pub n: usize,
}

impl Grid {
    /// The instant of bucket `k`.
    pub(crate) fn ts(&self, k: usize) -> i64 {
        self.start
            .saturating_add((k as i64).saturating_mul(self.step))
    }

    /// The last instant any bucket covers.
    pub(crate) fn last_covered(&self) -> i64 {
        self.ts(self.n.saturating_sub(1))
            .saturating_add(self.step)
            .saturating_sub(1)
    }
}

/// Streams sorted `(ts, acc)` items into buckets and calls `emit(bucket, acc)` for each
/// non-empty bucket, in order. Items must come in ascending timestamp order.
pub(crate) struct Bucketer<F: FnMut(usize, Acc)> {
    grid: Grid,
    k: usize,
    hi: i64,
    acc: Acc,
    open: bool,
    done: bool,
    emit: F,
}

impl<F: FnMut(usize, Acc)> Bucketer<F> {
    pub(crate) fn new(grid: Grid, emit: F) -> Self {
        Bucketer {
            grid,
            k: 0,
            hi: i64::MIN,
            acc: Acc::EMPTY,
            open: false,
            done: false,
            emit,
        }
    }

    #[inline(always)]
    pub(crate) fn push(&mut self, ts: i64, a: Acc) {
        if self.open && ts < self.hi {
            self.acc.merge(a);
            return;
        }
        self.new_bucket(ts, a);
    }

    #[inline]
    fn new_bucket(&mut self, ts: i64, a: Acc) {
        if self.done || ts < self.grid.start {
            return;
        }
        let k = if self.open && ts < self.hi.saturating_add(self.grid.step) {
            self.k + 1
        } else {
            ((ts as i128 - self.grid.start as i128) / self.grid.step as i128) as usize
        };
        if self.open {
            (self.emit)(self.k, self.acc);
        }
        if k >= self.grid.n {
            self.open = false;
            self.done = true;
            return;
        }
        self.k = k;
        self.hi = self.grid.ts(k).saturating_add(self.grid.step);
        self.acc = a;
        self.open = true;
    }

    pub(crate) fn finish(mut self) {
        if self.open {
            (self.emit)(self.k, self.acc);
        }
    }
}

/// Feeds rollup rows (older) then raw samples (newer) into step buckets.
#[inline]
pub(crate) fn bucketize(grid: Grid, data: &Run, rows: &Rows, emit: impl FnMut(usize, Acc)) {
    let mut b = Bucketer::new(grid, emit);
    for r in 0..rows.len() {
        b.push(rows.ts[r], rows.acc(r));
    }
    for (&t, &v) in data.ts.iter().zip(&data.vals) {
        b.push(t, Acc::of(v));
    }
    b.finish();
}

/// When every grid bucket holds at most one sample of `data` (regular timestamps at the
/// grid's step and phase): `(first sample inside the grid, its bucket, how many)`.
#[inline]
pub(crate) fn aligned(grid: &Grid, data: &Run) -> Option<(usize, usize, usize)> {
    let n = data.ts.len();
    let (&first, &last) = (data.ts.first()?, data.ts.last()?);
    if grid.step <= 0 {
        return None;
    }
    let delta = if n >= 2 {
        data.ts[1] - first
    } else {
        grid.step
    };
    if !data.regular && !data.ts.windows(2).all(|w| w[1] - w[0] == delta) {
        return None;
    }
    if delta != grid.step || (first as i128 - grid.start as i128).rem_euclid(grid.step as i128) != 0
    {
        return None;
    }
    if last < grid.start {
        return Some((0, 0, 0));
    }
    let skip = if first < grid.start {
        ((grid.start - first) / grid.step) as usize
    } else {
        0
    };
    let k0 = ((data.ts[skip] as i128 - grid.start as i128) / grid.step as i128) as usize;
    if k0 >= grid.n {
        return Some((skip, k0, 0));
    }
    Some((skip, k0, (n - skip).min(grid.n - k0)))
}

/// Calls `f(bucket, i, j)` for every grid bucket holding samples `ts[i..j]` (sorted `ts`).
#[inline]
pub(crate) fn bucket_ranges(grid: &Grid, ts: &[i64], mut f: impl FnMut(usize, usize, usize)) {
    let n = ts.len();
    let mut i = ts.partition_point(|&t| t < grid.start);
    while i < n {
        let k = ((ts[i] as i128 - grid.start as i128) / grid.step as i128) as usize;
        if k >= grid.n {
            break;
        }
        let hi = grid.ts(k).saturating_add(grid.step);
        // Gallop: buckets hold one sample or many.
        let mut step = 1;
        while i + step < n && ts[i + step] < hi {
            step *= 2;
        }
        let lo = i + step / 2;
        let end = (i + step).min(n);
        let j = lo + ts[lo..end].partition_point(|&t| t < hi);
        f(k, i, j);
        i = j;
    }
}

/// The value of one bucket from its samples (not empty).
#[inline]
pub(crate) fn reduce(agg: Aggregation, v: &[f64]) -> f64 {
    match agg {
        Aggregation::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::Sum => v.iter().sum(),
        Aggregation::Count => v.len() as f64,
        Aggregation::Avg | Aggregation::Raw => v.iter().sum::<f64>() / v.len() as f64,
    }
}

/// The value of a bucket holding exactly one sample `v`.
#[inline(always)]
pub(crate) fn single(agg: Aggregation, v: f64) -> f64 {
    if agg == Aggregation::Count {
        1.0
    } else {
        v
    }
}

/// Per-bucket accumulators of a group, structure of arrays: `a` is the sum (avg, sum),
/// the minimum or the maximum; `count` counts contributions (0: empty bucket).
#[derive(Clone, Debug)]
pub(crate) struct GroupAcc {
    op: Aggregation,
    a: Vec<f64>,
    count: Vec<f64>,
}

impl GroupAcc {
    pub(crate) fn new(op: Aggregation, n: usize) -> Self {
        let init = match op {
            Aggregation::Min => f64::INFINITY,
            Aggregation::Max => f64::NEG_INFINITY,
            _ => 0.0,
        };
        GroupAcc {
            op,
            a: vec![init; n],
            count: vec![0.0; n],
        }
    }

    #[inline(always)]
    pub(crate) fn add(&mut self, k: usize, v: f64) {
        let (Some(a), Some(c)) = (self.a.get_mut(k), self.count.get_mut(k)) else {
            return;
        };
        match self.op {
            Aggregation::Min => *a = a.min(v),
            Aggregation::Max => *a = a.max(v),
            Aggregation::Count => {}
            _ => *a += v,
        }
        *c += 1.0;
    }

    /// Adds `vals[i]` to bucket `k0 + i`.
    pub(crate) fn add_slice(&mut self, k0: usize, vals: &[f64]) {
        let end = (k0 + vals.len()).min(self.a.len());
        if k0 >= end {
            return;
        }
        let (a, c) = (&mut self.a[k0..end], &mut self.count[k0..end]);
        let vals = &vals[..end - k0];
        match self.op {
            Aggregation::Min => a.iter_mut().zip(vals).for_each(|(x, v)| *x = x.min(*v)),
            Aggregation::Max => a.iter_mut().zip(vals).for_each(|(x, v)| *x = x.max(*v)),
            Aggregation::Count => {}
            _ => a.iter_mut().zip(vals).for_each(|(x, v)| *x += v),
        }
        c.iter_mut().for_each(|x| *x += 1.0);
    }

    pub(crate) fn merge(&mut self, o: &GroupAcc) {
        for (k, (&a, &c)) in o.a.iter().zip(&o.count).enumerate() {
            if c == 0.0 {
                continue;
            }
            match self.op {
                Aggregation::Min => self.a[k] = self.a[k].min(a),
                Aggregation::Max => self.a[k] = self.a[k].max(a),
                Aggregation::Count => {}
                _ => self.a[k] += a,
            }
            self.count[k] += c;
        }
    }

    /// The group's value in bucket `k`, if any series contributed.
    pub(crate) fn value(&self, k: usize) -> Option<f64> {
        let c = *self.count.get(k)?;
        if c == 0.0 {
            return None;
        }
        Some(match self.op {
            Aggregation::Avg => self.a[k] / c,
            Aggregation::Count => c,
            _ => self.a[k],
        })
    }
}

/// A decoded run of samples (sorted, unique timestamps), columnar.
#[derive(Default, Debug, Clone)]
pub(crate) struct Run {
    pub ts: Vec<i64>,
    pub vals: Vec<f64>,
    /// Known to have a fixed interval (`ts[1] - ts[0]`).
    pub regular: bool,
}

impl Run {
    pub(crate) fn clear(&mut self) {
        self.ts.clear();
        self.vals.clear();
        self.regular = false;
    }

    /// Keeps only `[lo, hi]`.
    pub(crate) fn clip(&mut self, lo: i64, hi: i64) {
        let a = self.ts.partition_point(|&t| t < lo);
        let b = self.ts.partition_point(|&t| t <= hi);
        if a >= b {
            self.clear();
            return;
        }
        if b < self.ts.len() {
            self.ts.truncate(b);
            self.vals.truncate(b);
        }
        if a > 0 {
            self.ts.drain(..a);
            self.vals.drain(..a);
        }
    }

    pub(crate) fn extend_samples(&mut self, s: &[Sample]) {
        self.regular = false;
        self.ts.extend(s.iter().map(|s| s.ts_ms));
        self.vals.extend(s.iter().map(|s| s.value));
    }
}

/// Merges `runs` (in priority order: on equal timestamps the later run wins) into `out`.
pub(crate) fn merge_runs(runs: &[Run], out: &mut Run, tmp: &mut Run) {
    out.clear();
    let mut nonempty = runs.iter().filter(|r| !r.ts.is_empty());
    let Some(first) = nonempty.next() else {
        return;
    };
    out.ts.extend_from_slice(&first.ts);
    out.vals.extend_from_slice(&first.vals);
    out.regular = first.regular;
    for r in nonempty {
        out.regular = false;
        let (Some(&out_last), Some(&r_first)) = (out.ts.last(), r.ts.first()) else {
            continue;
        };
        if r_first > out_last {
            out.ts.extend_from_slice(&r.ts);
            out.vals.extend_from_slice(&r.vals);
            continue;
        }
        std::mem::swap(out, tmp);
        out.clear();
        let (a, b) = (&*tmp, r);
        let (mut i, mut j) = (0, 0);
        while i < a.ts.len() && j < b.ts.len() {
            match a.ts[i].cmp(&b.ts[j]) {
                std::cmp::Ordering::Less => {
                    out.ts.push(a.ts[i]);
                    out.vals.push(a.vals[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.ts.push(b.ts[j]);
                    out.vals.push(b.vals[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.ts.push(b.ts[j]);
                    out.vals.push(b.vals[j]);
                    i += 1;
                    j += 1;
                }
            }
        }
        out.ts.extend_from_slice(&a.ts[i..]);
        out.vals.extend_from_slice(&a.vals[i..]);
        out.ts.extend_from_slice(&b.ts[j..]);
        out.vals.extend_from_slice(&b.vals[j..]);
    }
}

/// Hourly rollup rows, columnar.
#[derive(Default, Debug, Clone)]
pub(crate) struct Rows {
    pub ts: Vec<i64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub sum: Vec<f64>,
    pub count: Vec<f64>,
}

pub(crate) const HOUR_MS: i64 = 3_600_000;

impl Rows {
    pub(crate) fn clear(&mut self) {
        self.ts.clear();
        self.min.clear();
        self.max.clear();
        self.sum.clear();
        self.count.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.ts.len()
    }

    pub(crate) fn acc(&self, i: usize) -> Acc {
        Acc {
            min: self.min[i],
            max: self.max[i],
            sum: self.sum[i],
            count: self.count[i],
        }
    }

    pub(crate) fn push(&mut self, ts: i64, a: Acc) {
        self.ts.push(ts);
        self.min.push(a.min);
        self.max.push(a.max);
        self.sum.push(a.sum);
        self.count.push(a.count);
    }

    /// Hourly rows of a sorted run.
    pub(crate) fn from_run(run: &Run) -> Rows {
        let mut rows = Rows::default();
        let mut cur: Option<(i64, Acc)> = None;
        for (&t, &v) in run.ts.iter().zip(&run.vals) {
            let h = t.div_euclid(HOUR_MS) * HOUR_MS;
            match &mut cur {
                Some((ch, acc)) if *ch == h => acc.merge(Acc::of(v)),
                _ => {
                    if let Some((ch, acc)) = cur.take() {
                        rows.push(ch, acc);
                    }
                    cur = Some((h, Acc::of(v)));
                }
            }
        }
        if let Some((ch, acc)) = cur {
            rows.push(ch, acc);
        }
        rows
    }

    /// Keeps the rows with `lo <= ts <= hi`.
    pub(crate) fn retain_range(&mut self, lo: i64, hi: i64) {
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| self.ts[i] >= lo && self.ts[i] <= hi)
            .collect();
        if keep.len() == self.len() {
            return;
        }
        let mut out = Rows::default();
        for i in keep {
            out.push(self.ts[i], self.acc(i));
        }
        *self = out;
    }
}

/// The labels identifying a series' group.
pub(crate) fn group_labels(key: &SeriesKey, by: &[String]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for name in by {
        if let Some(v) = key.label(name) {
            m.insert(name.clone(), v.to_owned());
        }
    }
    m
}

/// Combines per-series bucket values into groups (the generic path for backends without a
/// fused implementation).
pub fn group_series(
    results: Vec<(SeriesKey, Vec<Sample>)>,
    grouping: &Grouping,
) -> Vec<(Labels, Vec<Sample>)> {
    let mut groups: HashMap<BTreeMap<String, String>, BTreeMap<i64, Acc>> = HashMap::new();
    for (key, samples) in results {
        let g = groups.entry(group_labels(&key, &grouping.by)).or_default();
        for s in samples {
            g.entry(s.ts_ms)
                .or_insert(Acc::EMPTY)
                .merge(Acc::of(s.value));
        }
    }
    let mut out: Vec<(Labels, Vec<Sample>)> = groups
        .into_iter()
        .map(|(labels, points)| {
            let samples = points
                .into_iter()
                .map(|(t, a)| Sample::new(t, a.value(grouping.op)))
                .collect();
            (labels, samples)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ts: &[i64], vals: &[f64]) -> Run {
        Run {
            ts: ts.to_vec(),
            vals: vals.to_vec(),
            regular: false,
        }
    }

    #[test]
    fn buckets_cover_start_inclusive_and_skip_empty() {
        let grid = Grid {
            start: 100,
            step: 10,
            n: 3,
        };
        let mut out = Vec::new();
        let mut b = Bucketer::new(grid, |k, a| out.push((k as u32, a)));
        for (t, v) in [
            (95, 9.0),
            (100, 1.0),
            (109, 3.0),
            (125, 5.0),
            (129, 7.0),
            (130, 100.0),
        ] {
            b.push(t, Acc::of(v));
        }
        b.finish();
        let got: Vec<(u32, f64, f64)> = out
            .iter()
            .map(|(k, a)| (*k, a.value(Aggregation::Avg), a.value(Aggregation::Count)))
            .collect();
        assert_eq!(got, vec![(0, 2.0, 2.0), (2, 6.0, 2.0)]);
        assert_eq!(grid.last_covered(), 129);
    }

    #[test]
    fn buckets_jump_far() {
        let grid = Grid {
            start: 0,
            step: 10,
            n: 1000,
        };
        let mut out = Vec::new();
        let mut b = Bucketer::new(grid, |k, a| out.push((k as u32, a)));
        for t in [0, 11, 12, 5000, 5001, 9999, 10_000] {
            b.push(t, Acc::of(1.0));
        }
        b.finish();
        let ks: Vec<u32> = out.iter().map(|(k, _)| *k).collect();
        assert_eq!(ks, vec![0, 1, 500, 999]);
    }

    #[test]
    fn aligned_fast_path_agrees_with_bucketing() {
        let grid = Grid {
            start: 1000,
            step: 60,
            n: 10,
        };
        for (first, n) in [
            (1000, 5),
            (880, 8),
            (1540, 5),
            (400, 3),
            (1600, 2),
            (1060, 1),
            (1480, 4),
        ] {
            let mut r = run(
                &(0..n).map(|i| first + i * 60).collect::<Vec<_>>(),
                &(0..n).map(|i| i as f64).collect::<Vec<_>>(),
            );
            r.regular = true;
            let mut slow = Vec::new();
            bucketize(grid, &r, &Rows::default(), |k, a| {
                slow.push((k, a.value(Aggregation::Avg)))
            });
            let (skip, k0, len) = aligned(&grid, &r).unwrap();
            let fast: Vec<(usize, f64)> = (0..len).map(|i| (k0 + i, r.vals[skip + i])).collect();
            assert_eq!(fast, slow, "first {first} n {n}");
        }
        let mut r = run(&[1000, 1030], &[1.0, 2.0]);
        r.regular = true;
        assert!(
            aligned(&grid, &r).is_none(),
            "interval differs from the step"
        );
        let r = run(&[1000, 1060, 1120], &[1.0, 2.0, 3.0]);
        assert_eq!(
            aligned(&grid, &r),
            Some((0, 0, 3)),
            "regular without the flag"
        );
        let r = run(&[1000, 1060, 1180], &[1.0, 2.0, 3.0]);
        assert!(aligned(&grid, &r).is_none(), "a gap");
        let mut r = run(&[1010, 1070], &[1.0, 2.0]);
        r.regular = true;
        assert!(aligned(&grid, &r).is_none(), "phase differs");
    }

    #[test]
    fn bucket_ranges_agree_with_bucketing() {
        let mut state = 99u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let n = (next() % 60) as usize;
            let mut t = (next() % 500) as i64 - 250;
            let mut ts = Vec::new();
            for _ in 0..n {
                t += 1 + (next() % 40) as i64;
                ts.push(t);
            }
            let vals: Vec<f64> = (0..n).map(|i| (i as f64) * 1.5 - 7.0).collect();
            let grid = Grid {
                start: (next() % 300) as i64 - 150,
                step: 1 + (next() % 100) as i64,
                n: 1 + (next() % 30) as usize,
            };
            let r = run(&ts, &vals);
            for agg in [
                Aggregation::Avg,
                Aggregation::Min,
                Aggregation::Max,
                Aggregation::Sum,
                Aggregation::Count,
            ] {
                let mut slow = Vec::new();
                bucketize(grid, &r, &Rows::default(), |k, a| {
                    slow.push((k, a.value(agg)))
                });
                let mut fast = Vec::new();
                bucket_ranges(&grid, &ts, |k, i, j| {
                    fast.push((k, reduce(agg, &vals[i..j])))
                });
                assert_eq!(fast, slow, "{grid:?} {agg:?}");
            }
        }
    }

    #[test]
    fn group_accumulators() {
        for (op, want) in [
            (Aggregation::Avg, [Some(2.0), None, Some(5.0)]),
            (Aggregation::Sum, [Some(4.0), None, Some(5.0)]),
            (Aggregation::Min, [Some(1.0), None, Some(5.0)]),
            (Aggregation::Max, [Some(3.0), None, Some(5.0)]),
            (Aggregation::Count, [Some(2.0), None, Some(1.0)]),
        ] {
            let mut a = GroupAcc::new(op, 3);
            a.add(0, 1.0);
            let mut b = GroupAcc::new(op, 3);
            b.add_slice(0, &[3.0]);
            b.add(2, 5.0);
            b.add(7, 9.0);
            a.merge(&b);
            assert_eq!([a.value(0), a.value(1), a.value(2)], want, "{op:?}");
        }
    }

    #[test]
    fn merge_prefers_later_runs() {
        let runs = vec![
            run(&[1, 3, 5], &[1.0, 3.0, 5.0]),
            run(&[3, 4], &[30.0, 40.0]),
            run(&[7], &[70.0]),
        ];
        let (mut out, mut tmp) = (Run::default(), Run::default());
        merge_runs(&runs, &mut out, &mut tmp);
        assert_eq!(out.ts, vec![1, 3, 4, 5, 7]);
        assert_eq!(out.vals, vec![1.0, 30.0, 40.0, 5.0, 70.0]);
        let mut r = out.clone();
        r.clip(3, 5);
        assert_eq!(r.ts, vec![3, 4, 5]);
    }

    #[test]
    fn hourly_rows() {
        let r = run(&[0, 1000, HOUR_MS, HOUR_MS + 5], &[1.0, 3.0, 10.0, 20.0]);
        let rows = Rows::from_run(&r);
        assert_eq!(rows.ts, vec![0, HOUR_MS]);
        assert_eq!(
            rows.acc(0),
            Acc {
                min: 1.0,
                max: 3.0,
                sum: 4.0,
                count: 2.0
            }
        );
        assert_eq!(rows.acc(1).value(Aggregation::Avg), 15.0);
    }
}
