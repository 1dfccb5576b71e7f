//! The in-memory head: per series, the samples not yet in a block, kept sorted by
//! timestamp with one value per timestamp (the last write wins). Series are spread over
//! shards by key hash; each shard has its own lock.

use crate::codec::{put_uvarint, put_uvarint_at};
use crate::error::{Result, TsdbError};
use crate::types::{Sample, SeriesKey, METRIC_LABEL};
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Number of head shards (a power of two).
pub(crate) const SHARDS: usize = 32;

pub(crate) fn shard_of(hash: u64) -> usize {
    (hash >> 58) as usize & (SHARDS - 1)
}

/// The live head of one series. Kept small (40 bytes) so that the hot append path touches
/// one cache line per series; the key lives in [`Shard::keys`].
pub(crate) struct SeriesHead {
    pub id: u64,
    /// The timestamp of the last sample (`i64::MIN` when there is none), so that an
    /// in-order append decides without reading the samples (a cache miss per series).
    last_ts: i64,
    /// Sorted by timestamp, one sample per timestamp.
    samples: Vec<Sample>,
}

impl SeriesHead {
    pub(crate) fn new(id: u64) -> Self {
        SeriesHead {
            id,
            last_ts: i64::MIN,
            samples: Vec::new(),
        }
    }

    pub(crate) fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Inserts keeping the samples sorted; an equal timestamp replaces the value. Returns
    /// whether the sample was new (not a replacement).
    #[inline]
    pub(crate) fn insert(&mut self, s: Sample) -> bool {
        if s.ts_ms > self.last_ts {
            self.samples.push(s);
            self.last_ts = s.ts_ms;
            true
        } else {
            insert_late(&mut self.samples, s)
        }
    }

    /// Before the first sample: room for `n` (a guess of what the series gets until the
    /// next flush), so that series filled in step do not all reallocate at the same time.
    #[inline]
    pub(crate) fn reserve_first(&mut self, n: usize) {
        if self.samples.capacity() == 0 {
            self.samples.reserve_exact(n);
        }
    }

    /// Takes the samples out (for a flush); `next` (empty, perhaps with room) replaces
    /// them.
    pub(crate) fn take(&mut self, mut next: Vec<Sample>) -> Vec<Sample> {
        next.clear();
        self.last_ts = i64::MIN;
        std::mem::replace(&mut self.samples, next)
    }
}

#[derive(Default)]
pub(crate) struct Shard {
    /// `(hash, slot)`: probing compares hashes without touching the series.
    table: HashTable<(u64, u32)>,
    pub series: Vec<SeriesHead>,
    /// Per slot, the key in one allocation (see [`encode_key`]), compared on lookup: a few
    /// cache lines instead of a tree of small strings.
    keys: Vec<Box<[u8]>>,
}

impl Shard {
    /// The slot of the series whose encoded key is `enc`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, enc: &[u8]) -> Option<u32> {
        self.table
            .find(hash, |&(h, slot)| {
                h == hash && self.keys.get(slot as usize).is_some_and(|k| **k == *enc)
            })
            .map(|&(_, slot)| slot)
    }

    pub(crate) fn insert(&mut self, hash: u64, id: u64, enc: Box<[u8]>) -> u32 {
        let slot = self.series.len() as u32;
        self.series.push(SeriesHead::new(id));
        self.keys.push(enc);
        self.table.insert_unique(hash, (hash, slot), |&(h, _)| h);
        slot
    }
}

/// Appends the canonical encoding of `key` to `out`, checking the key's rules on the way:
/// `metric len (uvarint), metric, then per label: name len, name, value len, value` (in memory
/// only, never stored).
/// Equal keys have equal encodings and different keys different ones.
#[inline]
pub(crate) fn encode_key_into(key: &SeriesKey, out: &mut Vec<u8>) -> Result<()> {
    let mut ok = !key.metric.is_empty();
    let put = |s: &str, out: &mut Vec<u8>| {
        let n = s.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            put_uvarint(out, n as u64);
        }
        out.extend_from_slice(s.as_bytes());
    };
    put(&key.metric, out);
    for (k, v) in &key.labels {
        ok &= !k.is_empty() && !v.is_empty() && k != METRIC_LABEL;
        put(k, out);
        put(v, out);
    }
    if ok {
        Ok(())
    } else {
        Err(key
            .validate()
            .err()
            .unwrap_or_else(|| TsdbError::InvalidSeries(key.to_string())))
    }
}

/// Whether `enc` is the encoding of `key` (see [`encode_key_into`]), compared in place.
#[inline]
pub(crate) fn key_matches(key: &SeriesKey, enc: &[u8]) -> bool {
    let mut rest = enc;
    let mut take = |s: &str| -> bool {
        let n = s.len();
        let l = if n < 0x80 {
            if rest.first() != Some(&(n as u8)) {
                return false;
            }
            1
        } else {
            let mut len = [0u8; 10];
            let l = put_uvarint_at(&mut len, 0, n as u64);
            if rest.get(..l) != Some(&len[..l]) {
                return false;
            }
            l
        };
        match rest.get(l..l + n) {
            Some(bytes) if bytes == s.as_bytes() => {
                rest = &rest[l + n..];
                true
            }
            _ => false,
        }
    };
    take(&key.metric) && key.labels.iter().all(|(k, v)| take(k) && take(v)) && rest.is_empty()
}

/// The canonical encoding of a (valid) key.
pub(crate) fn encode_key(key: &SeriesKey) -> Box<[u8]> {
    let mut out = Vec::new();
    // Keys read back from the catalog or WAL were valid when written; encode regardless.
    let _ = encode_key_into(key, &mut out);
    out.into_boxed_slice()
}

/// The shard-table hash of an encoded key.
#[inline]
pub(crate) fn key_hash(hasher: &impl BuildHasher, enc: &[u8]) -> u64 {
    hasher.hash_one(enc)
}

/// Inserts keeping `v` sorted by timestamp; an equal timestamp replaces the value.
/// Returns whether the sample was new (not a replacement).
#[cfg(test)]
pub(crate) fn insert_sample(v: &mut Vec<Sample>, s: Sample) -> bool {
    match v.last_mut() {
        Some(last) if s.ts_ms <= last.ts_ms => insert_late(v, s),
        _ => {
            v.push(s);
            true
        }
    }
}

/// [`insert_sample`] for a sample that is not newer than the last one.
#[inline(never)]
fn insert_late(v: &mut Vec<Sample>, s: Sample) -> bool {
    let n = v.len();
    // Most common late case: just before the last sample (two appenders racing).
    if n >= 2 && v[n - 2].ts_ms < s.ts_ms && s.ts_ms < v[n - 1].ts_ms {
        let last = v[n - 1];
        v[n - 1] = s;
        v.push(last);
        return true;
    }
    // Late samples are usually only a little late (concurrent appenders of neighbouring
    // timestamps): look back a few entries (same cache line) before a binary search.
    let lo = n.saturating_sub(8);
    let pos = match v[lo..].iter().rposition(|x| x.ts_ms <= s.ts_ms) {
        Some(p) => Ok(lo + p),
        None if lo == 0 => Err(0),
        None => v.binary_search_by_key(&s.ts_ms, |x| x.ts_ms),
    };
    match pos {
        Ok(i) if v[i].ts_ms == s.ts_ms => {
            v[i].value = s.value;
            false
        }
        Ok(i) => {
            v.insert(i + 1, s);
            true
        }
        Err(i) => {
            v.insert(i, s);
            true
        }
    }
}

/// The samples in `[lo, hi]` of a sorted slice.
pub(crate) fn range(v: &[Sample], lo: i64, hi: i64) -> &[Sample] {
    let a = v.partition_point(|s| s.ts_ms < lo);
    let b = v.partition_point(|s| s.ts_ms <= hi);
    if a >= b {
        &[]
    } else {
        &v[a..b]
    }
}

/// A head taken out of service by a flush: immutable, readable until its blocks are
/// published.
pub(crate) struct Frozen {
    /// `(series id, sorted samples)`, ascending id.
    pub series: Vec<(u64, Vec<Sample>)>,
}

impl Frozen {
    pub(crate) fn get(&self, id: u64) -> Option<&[Sample]> {
        self.series
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| self.series[i].1.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_keys_are_canonical_and_checked() {
        let a = SeriesKey::new("m")
            .with_label("a", "b")
            .with_label("c", "d");
        let enc = encode_key(&a);
        let mut again = Vec::new();
        encode_key_into(&a.clone(), &mut again).unwrap();
        assert_eq!(*enc, again[..]);
        for other in [
            SeriesKey::new("m").with_label("a", "b"),
            SeriesKey::new("m")
                .with_label("a", "b")
                .with_label("c", "dd"),
            SeriesKey::new("m")
                .with_label("a", "bc")
                .with_label("x", "d"),
            SeriesKey::new("mm")
                .with_label("a", "b")
                .with_label("c", "d"),
            SeriesKey::new("m")
                .with_label("a", "b")
                .with_label("c", "d")
                .with_label("e", "f"),
        ] {
            assert_ne!(*encode_key(&other), *enc, "{other}");
        }
        for bad in [
            SeriesKey::new(""),
            SeriesKey::new("m").with_label("", "x"),
            SeriesKey::new("m").with_label("x", ""),
            SeriesKey::new("m").with_label("__name__", "x"),
        ] {
            assert!(encode_key_into(&bad, &mut Vec::new()).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_match_their_encoding_only() {
        let long = "x".repeat(300);
        let keys = [
            SeriesKey::new("m"),
            SeriesKey::new("m").with_label("a", "b"),
            SeriesKey::new("m").with_label("a", "bc"),
            SeriesKey::new("m").with_label("ab", "c"),
            SeriesKey::new("m")
                .with_label("a", "b")
                .with_label("c", "d"),
            SeriesKey::new(long.clone()).with_label("a", long.clone()),
            SeriesKey::new(long.clone()).with_label("a", "x".repeat(299)),
        ];
        for a in &keys {
            let enc = encode_key(a);
            for b in &keys {
                assert_eq!(key_matches(b, &enc), a == b, "{a} vs {b}");
            }
            assert!(!key_matches(a, &enc[..enc.len() - 1]));
            let mut more = enc.to_vec();
            more.push(0);
            assert!(!key_matches(a, &more));
        }
    }

    #[test]
    fn insert_matches_a_sorted_dedup_model() {
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let mut v = Vec::new();
            let mut model = std::collections::BTreeMap::new();
            let mut t = 0i64;
            for i in 0..100 {
                // Mostly ascending, some slightly late, some far back, some repeats.
                t += (next() % 5) as i64;
                let ts = match next() % 10 {
                    0 => t - (next() % 4) as i64,
                    1 => (next() % (t as u64 + 1)) as i64,
                    _ => t,
                };
                insert_sample(&mut v, Sample::new(ts, i as f64));
                model.insert(ts, i as f64);
            }
            let want: Vec<Sample> = model.into_iter().map(|(t, x)| Sample::new(t, x)).collect();
            assert_eq!(v, want);
        }
    }

    #[test]
    fn series_head_matches_the_model_across_takes() {
        let mut state = 777u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut head = SeriesHead::new(1);
        for round in 0..50 {
            let mut model = std::collections::BTreeMap::new();
            let mut t = (next() % 1000) as i64 - 500;
            for i in 0..200 {
                t += (next() % 3) as i64;
                let ts = match next() % 8 {
                    0 => t - 1,
                    1 => t - (next() % 20) as i64,
                    _ => t,
                };
                let new = !model.contains_key(&ts);
                assert_eq!(head.insert(Sample::new(ts, i as f64)), new);
                model.insert(ts, i as f64);
            }
            let want: Vec<Sample> = model.into_iter().map(|(t, x)| Sample::new(t, x)).collect();
            assert_eq!(head.samples(), &want[..]);
            let spare = if round % 2 == 0 {
                Vec::with_capacity(10)
            } else {
                vec![Sample::new(1, 1.0)]
            };
            assert_eq!(head.take(spare), want);
            assert!(head.samples().is_empty());
            head.reserve_first(16);
        }
    }

    #[test]
    fn insert_keeps_order_and_last_write_wins() {
        let mut v = Vec::new();
        for (t, x) in [
            (10, 1.0),
            (30, 3.0),
            (20, 2.0),
            (30, 3.5),
            (5, 0.5),
            (20, 2.5),
        ] {
            insert_sample(&mut v, Sample::new(t, x));
        }
        assert_eq!(
            v,
            vec![
                Sample::new(5, 0.5),
                Sample::new(10, 1.0),
                Sample::new(20, 2.5),
                Sample::new(30, 3.5)
            ]
        );
        assert_eq!(range(&v, 6, 20).len(), 2);
        assert_eq!(range(&v, 31, 40).len(), 0);
        assert_eq!(range(&v, 40, 31).len(), 0);
    }
}
