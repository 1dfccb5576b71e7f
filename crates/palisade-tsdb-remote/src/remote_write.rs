//! Prometheus remote_write 1.0 bodies: a hand-written protobuf encoder and the splitting of
//! large batches into bounded requests.
//!
//! ```text
//! message WriteRequest { repeated TimeSeries timeseries = 1; }
//! message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! message Label        { string name = 1; string value = 2; }
//! message Sample       { double value = 1; int64 timestamp = 2; }
//! ```
//!
//! Every field is written, zero values included (valid proto3; decoders accept it).

use palisade_tsdb::{Sample, SeriesKey, METRIC_LABEL};

/// Field 1, wire type 2 (length-delimited): `WriteRequest.timeseries`, `TimeSeries.labels`,
/// `Label.name`.
const TAG_1_LEN: u8 = 0x0a;
/// Field 2, wire type 2: `TimeSeries.samples`, `Label.value`.
const TAG_2_LEN: u8 = 0x12;
/// Field 1, wire type 1 (64-bit): `Sample.value`.
const TAG_1_F64: u8 = 0x09;
/// Field 2, wire type 0 (varint): `Sample.timestamp`.
const TAG_2_VARINT: u8 = 0x10;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// A length-delimited field: tag, length, bytes.
fn put_bytes(buf: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    buf.push(tag);
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Appends one `TimeSeries.labels` field (a `Label` message).
fn put_label(buf: &mut Vec<u8>, name: &str, value: &str) {
    let inner = bytes_field_len(name.len()) + bytes_field_len(value.len());
    buf.push(TAG_1_LEN);
    put_varint(buf, inner as u64);
    put_bytes(buf, TAG_1_LEN, name.as_bytes());
    put_bytes(buf, TAG_2_LEN, value.as_bytes());
}

/// The encoded size of one `TimeSeries.samples` field.
fn sample_field_len(s: &Sample) -> usize {
    let inner = 1 + 8 + 1 + varint_len(s.ts_ms as u64);
    1 + varint_len(inner as u64) + inner
}

/// Appends one `TimeSeries.samples` field (a `Sample` message). Negative timestamps are
/// varints of their two's complement (10 bytes), as protobuf encodes `int64`.
fn put_sample(buf: &mut Vec<u8>, s: &Sample) {
    let inner = 1 + 8 + 1 + varint_len(s.ts_ms as u64);
    buf.push(TAG_2_LEN);
    put_varint(buf, inner as u64);
    buf.push(TAG_1_F64);
    buf.extend_from_slice(&s.value.to_le_bytes());
    buf.push(TAG_2_VARINT);
    put_varint(buf, s.ts_ms as u64);
}

/// The `labels` fields of a series: `__name__` and the labels, sorted by name (remote_write
/// requires sorted labels).
pub(crate) fn encode_labels(key: &SeriesKey) -> Vec<u8> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(key.labels.len() + 1);
    pairs.push((METRIC_LABEL, &key.metric));
    pairs.extend(key.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut buf = Vec::new();
    for (name, value) in pairs {
        put_label(&mut buf, name, value);
    }
    buf
}

/// Cuts a batch into `WriteRequest` bodies (uncompressed protobuf) of at most `max_samples`
/// samples and, unless a single series chunk is larger, about `max_bytes` bytes. A series
/// whose samples do not fit is continued in the next request.
pub(crate) struct Batcher<'a> {
    batch: &'a [(SeriesKey, Vec<Sample>)],
    labels: Vec<Vec<u8>>,
    series: usize,
    offset: usize,
    max_samples: usize,
    max_bytes: usize,
}

impl<'a> Batcher<'a> {
    pub(crate) fn new(
        batch: &'a [(SeriesKey, Vec<Sample>)],
        max_samples: usize,
        max_bytes: usize,
    ) -> Self {
        Batcher {
            batch,
            labels: batch.iter().map(|(k, _)| encode_labels(k)).collect(),
            series: 0,
            offset: 0,
            max_samples: max_samples.max(1),
            max_bytes: max_bytes.max(1),
        }
    }
}

impl Iterator for Batcher<'_> {
    /// One request body and the number of samples in it.
    type Item = (Vec<u8>, usize);

    fn next(&mut self) -> Option<(Vec<u8>, usize)> {
        let mut body = Vec::new();
        let mut samples = 0usize;
        while self.series < self.batch.len() && samples < self.max_samples {
            let all = &self.batch[self.series].1;
            let labels = &self.labels[self.series];
            let rest = &all[self.offset.min(all.len())..];
            if rest.is_empty() {
                self.series += 1;
                self.offset = 0;
                continue;
            }
            // Take samples while both budgets allow (at least one sample per request).
            let mut size = labels.len();
            let mut take = 0usize;
            for s in rest {
                let add = sample_field_len(s);
                let total = body.len() + bytes_field_len(size + add);
                if (take > 0 || !body.is_empty()) && total > self.max_bytes
                    || samples + take >= self.max_samples
                {
                    break;
                }
                size += add;
                take += 1;
            }
            if take == 0 {
                break; // The byte budget is spent; this series goes on in the next request.
            }
            body.push(TAG_1_LEN);
            put_varint(&mut body, size as u64);
            body.extend_from_slice(labels);
            for s in &rest[..take] {
                put_sample(&mut body, s);
            }
            samples += take;
            self.offset += take;
            if self.offset >= all.len() {
                self.series += 1;
                self.offset = 0;
            }
            if body.len() >= self.max_bytes {
                break;
            }
        }
        (samples > 0).then_some((body, samples))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn varints() {
        for (v, want) in [
            (0u64, vec![0u8]),
            (1, vec![1]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
        ] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b, want);
            assert_eq!(varint_len(v), want.len());
        }
        let mut b = Vec::new();
        put_varint(&mut b, -1i64 as u64);
        assert_eq!(b.len(), 10);
        assert_eq!(varint_len(-1i64 as u64), 10);
    }

    #[test]
    fn encodes_the_documented_wire_format() {
        let key = SeriesKey::new("up").with_label("job", "a");
        let batch = vec![(key, vec![Sample::new(1000, 1.5)])];
        let (body, n) = Batcher::new(&batch, 100, 1 << 20).next().unwrap();
        assert_eq!(n, 1);
        let mut want = vec![0x0a]; // WriteRequest.timeseries
        let mut ts = Vec::new();
        // Label __name__="up"
        ts.extend_from_slice(&[0x0a, 14, 0x0a, 8]);
        ts.extend_from_slice(b"__name__");
        ts.extend_from_slice(&[0x12, 2]);
        ts.extend_from_slice(b"up");
        // Label job="a"
        ts.extend_from_slice(&[0x0a, 8, 0x0a, 3]);
        ts.extend_from_slice(b"job");
        ts.extend_from_slice(&[0x12, 1]);
        ts.extend_from_slice(b"a");
        // Sample{value=1.5, timestamp=1000}
        ts.extend_from_slice(&[0x12, 12, 0x09]);
        ts.extend_from_slice(&1.5f64.to_le_bytes());
        ts.extend_from_slice(&[0x10, 0xe8, 0x07]);
        want.push(ts.len() as u8);
        want.extend_from_slice(&ts);
        assert_eq!(body, want);
    }

    #[test]
    fn labels_are_sorted_with_the_metric_name() {
        let key = SeriesKey::new("m")
            .with_label("Zone", "z")
            .with_label("a", "1");
        let b = encode_labels(&key);
        let text = String::from_utf8_lossy(&b);
        let z = text.find("Zone").unwrap();
        let n = text.find("__name__").unwrap();
        let a = text.find("a\u{12}").unwrap();
        assert!(z < n && n < a, "{text:?}");
    }

    #[test]
    fn batches_are_split_within_bounds_and_lose_nothing() {
        let batch: Vec<(SeriesKey, Vec<Sample>)> = (0..7)
            .map(|s| {
                (
                    SeriesKey::new("m").with_label("s", s.to_string()),
                    (0..(s * 13)).map(|i| Sample::new(i, i as f64)).collect(),
                )
            })
            .collect();
        let total: usize = batch.iter().map(|(_, s)| s.len()).sum();
        for (max_samples, max_bytes) in [(1, 1 << 20), (10, 1 << 20), (1000, 200), (7, 1)] {
            let reqs: Vec<_> = Batcher::new(&batch, max_samples, max_bytes).collect();
            assert_eq!(reqs.iter().map(|r| r.1).sum::<usize>(), total);
            for (body, n) in &reqs {
                assert!(*n <= max_samples);
                assert!(*n == 1 || body.len() <= max_bytes, "{}", body.len());
            }
        }
        assert_eq!(Batcher::new(&[], 10, 10).count(), 0);
    }
}
