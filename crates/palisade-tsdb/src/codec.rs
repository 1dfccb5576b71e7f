//! Byte-level encodings: varints, checksummed records, and the compressed columns of a
//! block chunk.
//!
//! A chunk is a timestamp column followed by one or more value columns. Columns:
//!
//! | tag | column | body |
//! |---|---|---|
//! | 1 | regular timestamps | `first` (zigzag varint), `delta` (zigzag varint), `n` (varint) |
//! | 2 | pco timestamps | `n` (varint), `len` (varint), `len` bytes of pco standalone `i64` |
//! | 3 | constant values | `n` (varint), 8 bytes (the `f64` bits, little endian) |
//! | 4 | pco values | `n` (varint), `len` (varint), `len` bytes of pco standalone `f64` |
//! | 5 | varint timestamps | `n` (varint), first (zigzag varint), `n − 1` zigzag varint deltas |
//! | 6 | raw values | `n` (varint), `n` × 8 bytes (`f64` bits, little endian) |
//! | 7 | decimal values, varint | `n`, `e` (byte), first mantissa (zigzag varint), `n − 1` zigzag varint deltas |
//! | 8 | decimal values, pco | `n`, `e` (byte), `len` (varint), `len` bytes of pco standalone `i64` mantissas |
//!
//! Decimal columns hold values that are exactly `mantissa / 10^e` (`e` ≤ 6, |mantissa| <
//! 2^53), checked bit for bit at encoding, so decoding is lossless; they compress better
//! and decode faster than floats. Regular timestamps (a fixed interval, the common case for
//! polled data) cost a few bytes per chunk and nothing to decode. Blocks cut from the head
//! use the cheap varint / raw forms ([`Codec::Fast`]); compacted blocks use pco
//! ([`Codec::Compact`]).

use crate::error::{Result, TsdbError};

const COL_TS_REGULAR: u8 = 1;
const COL_TS_PCO: u8 = 2;
const COL_F64_CONST: u8 = 3;
const COL_F64_PCO: u8 = 4;
const COL_TS_VARINT: u8 = 5;
const COL_F64_RAW: u8 = 6;
const COL_F64_DEC_VARINT: u8 = 7;
const COL_F64_DEC_PCO: u8 = 8;

/// Largest decimal exponent tried.
const MAX_DEC_EXP: usize = 6;
const POW10: [f64; MAX_DEC_EXP + 1] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0; // 2^53

/// How hard to compress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// Varints and raw floats: cheap to write (blocks cut from the head).
    Fast,
    /// pco at this level (compacted blocks and rollups).
    Compact(usize),
}

thread_local! {
    static MANTISSAS: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The smallest `e` such that every value is exactly `m / 10^e` for an integer `m` with
/// `|m| < 2^53`; fills `mantissas`.
fn decimal(values: &[f64], mantissas: &mut Vec<i64>) -> Option<u8> {
    'exp: for (e, &p) in POW10.iter().enumerate() {
        mantissas.clear();
        for &v in values {
            let m = (v * p).round();
            if m.is_nan() || m.abs() >= MAX_MANTISSA {
                continue 'exp;
            }
            let mi = m as i64;
            if (mi as f64 / p).to_bits() != v.to_bits() {
                continue 'exp;
            }
            mantissas.push(mi);
        }
        return Some(e as u8);
    }
    None
}

/// Length of a record header: `len: u32 LE` then `crc32(payload): u32 LE`.
pub(crate) const RECORD_HEADER: usize = 8;
/// Largest record accepted when reading (guards against garbage lengths in a torn tail).
pub(crate) const MAX_RECORD: usize = 1 << 30;

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes a varint at `pos` of a buffer with room for it; returns the position after it.
#[inline]
pub(crate) fn put_uvarint_at(out: &mut [u8], mut pos: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        out[pos] = (v as u8) | 0x80;
        v >>= 7;
        pos += 1;
    }
    out[pos] = v as u8;
    pos + 1
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub(crate) fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Starts a record in `out`; returns its start for [`end_record`].
pub(crate) fn begin_record(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER]);
    out.push(kind);
    start
}

/// Fills in the length and checksum of the record begun at `start`.
pub(crate) fn end_record(out: &mut [u8], start: usize) {
    let payload = &out[start + RECORD_HEADER..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Splits checksummed records off the front of `data`. Stops at the first record that is
/// short or fails its checksum; [`RecordIter::valid_len`] is then the length of the intact
/// prefix.
pub(crate) struct RecordIter<'a> {
    data: &'a [u8],
    pos: usize,
    bad: bool,
}

impl<'a> RecordIter<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        RecordIter {
            data,
            pos: 0,
            bad: false,
        }
    }

    /// Bytes of intact records read so far.
    pub(crate) fn valid_len(&self) -> usize {
        self.pos
    }

    /// Whether reading stopped at a damaged record (rather than at the end).
    #[cfg(test)]
    pub(crate) fn stopped_early(&self) -> bool {
        self.bad
    }
}

impl<'a> Iterator for RecordIter<'a> {
    /// `(kind, body)`
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.bad || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let Some(header) = rest.get(..RECORD_HEADER) else {
            self.bad = true;
            return None;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD {
            self.bad = true;
            return None;
        }
        let Some(payload) = rest.get(RECORD_HEADER..RECORD_HEADER + len) else {
            self.bad = true;
            return None;
        };
        if crc32fast::hash(payload) != crc {
            self.bad = true;
            return None;
        }
        self.pos += RECORD_HEADER + len;
        Some((payload[0], &payload[1..]))
    }
}

/// A cursor over an encoded body. Every read checks bounds and reports corruption as an
/// error, never a panic.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn err(what: &str) -> TsdbError {
        TsdbError::Codec(format!("truncated or malformed {what}"))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let b = *self.data.get(self.pos).ok_or_else(|| Self::err("byte"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift >= 64 {
                return Err(Self::err("varint"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64> {
        Ok(unzigzag(self.uvarint()?))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| Self::err("length"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| Self::err("bytes"))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u64_le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let n = self.uvarint()? as usize;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Self::err("string"))
    }
}

/// Zero bytes after a pco column when decoding it. pco's reader wants up to a few KiB of
/// input ahead of its position; near the end of its input it copies the rest into a fresh
/// zeroed buffer first, a 9 KiB `calloc` and `memset` per column: more than decoding a
/// day-long chunk costs. Reading from a padded copy avoids that.
const PCO_PAD: usize = 24 << 10;

thread_local! {
    static PCO_IN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes a pco standalone column into `out` (sized to the expected length); returns the
/// number of values it held.
fn pco_decode<T: pco::data_types::Number>(bytes: &[u8], out: &mut [T]) -> Result<usize> {
    PCO_IN.with(|cell| {
        let mut padded = cell.borrow_mut();
        let need = bytes.len() + PCO_PAD;
        if padded.len() < need {
            padded.resize(need, 0);
        }
        padded[..bytes.len()].copy_from_slice(bytes);
        let progress = pco::standalone::simple_decompress_into(&padded[..need], out);
        // Back to all zeros for the next column.
        padded[..bytes.len()].fill(0);
        progress.map(|p| p.n_processed).map_err(pco_err)
    })
}

fn pco_config(level: usize) -> pco::ChunkConfig {
    pco::ChunkConfig::default().with_compression_level(level)
}

fn pco_err(e: pco::errors::PcoError) -> TsdbError {
    TsdbError::Codec(e.to_string())
}

/// Appends a timestamp column.
pub(crate) fn encode_ts(out: &mut Vec<u8>, ts: &[i64], codec: Codec) -> Result<()> {
    if ts.len() <= 2 || is_regular(ts) {
        let first = ts.first().copied().unwrap_or(0);
        let delta = if ts.len() >= 2 {
            ts[1].wrapping_sub(ts[0])
        } else {
            0
        };
        out.push(COL_TS_REGULAR);
        put_ivarint(out, first);
        put_ivarint(out, delta);
        put_uvarint(out, ts.len() as u64);
        return Ok(());
    }
    match codec {
        Codec::Fast => {
            out.push(COL_TS_VARINT);
            put_uvarint(out, ts.len() as u64);
            let mut prev = 0i64;
            for &t in ts {
                put_ivarint(out, t.wrapping_sub(prev));
                prev = t;
            }
        }
        Codec::Compact(level) => {
            let bytes =
                pco::standalone::simple_compress(ts, &pco_config(level)).map_err(pco_err)?;
            out.push(COL_TS_PCO);
            put_uvarint(out, ts.len() as u64);
            put_uvarint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
    }
    Ok(())
}

fn is_regular(ts: &[i64]) -> bool {
    let d = ts[1].wrapping_sub(ts[0]);
    ts.windows(2).all(|w| w[1].wrapping_sub(w[0]) == d)
}

/// Appends a value column.
pub(crate) fn encode_f64(out: &mut Vec<u8>, values: &[f64], codec: Codec) -> Result<()> {
    let first = values.first().map(|v| v.to_bits()).unwrap_or(0);
    if values.iter().all(|v| v.to_bits() == first) {
        out.push(COL_F64_CONST);
        put_uvarint(out, values.len() as u64);
        out.extend_from_slice(&first.to_le_bytes());
        return Ok(());
    }
    MANTISSAS.with(|m| {
        let mut mantissas = m.borrow_mut();
        let dec = decimal(values, &mut mantissas);
        match (dec, codec) {
            (Some(e), Codec::Fast) => {
                out.push(COL_F64_DEC_VARINT);
                put_uvarint(out, values.len() as u64);
                out.push(e);
                let mut prev = 0i64;
                for &m in mantissas.iter() {
                    put_ivarint(out, m.wrapping_sub(prev));
                    prev = m;
                }
            }
            (Some(e), Codec::Compact(level)) => {
                let bytes = pco::standalone::simple_compress(&mantissas, &pco_config(level))
                    .map_err(pco_err)?;
                out.push(COL_F64_DEC_PCO);
                put_uvarint(out, values.len() as u64);
                out.push(e);
                put_uvarint(out, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
            (None, Codec::Fast) => {
                out.push(COL_F64_RAW);
                put_uvarint(out, values.len() as u64);
                for v in values {
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
            (None, Codec::Compact(level)) => {
                let bytes = pco::standalone::simple_compress(values, &pco_config(level))
                    .map_err(pco_err)?;
                out.push(COL_F64_PCO);
                put_uvarint(out, values.len() as u64);
                put_uvarint(out, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
        }
        Ok(())
    })
}

/// Reads a timestamp column into `out` (replacing its content). Returns whether the column
/// is regular (a fixed interval).
pub(crate) fn decode_ts(r: &mut Reader<'_>, out: &mut Vec<i64>) -> Result<bool> {
    let tag = r.u8()?;
    if tag != COL_TS_PCO {
        out.clear();
    }
    match tag {
        COL_TS_REGULAR => {
            let first = r.ivarint()?;
            let delta = r.ivarint()?;
            let n = checked_len(r.uvarint()?)?;
            out.resize(n, 0);
            let mut t = first;
            for x in out.iter_mut() {
                *x = t;
                t = t.wrapping_add(delta);
            }
            Ok(true)
        }
        COL_TS_VARINT => {
            let n = checked_len(r.uvarint()?)?;
            out.reserve(n);
            let mut prev = 0i64;
            for _ in 0..n {
                prev = prev.wrapping_add(r.ivarint()?);
                out.push(prev);
            }
            Ok(false)
        }
        COL_TS_PCO => {
            let n = checked_len(r.uvarint()?)?;
            let len = checked_len(r.uvarint()?)?;
            let bytes = r.bytes(len)?;
            set_len_for_overwrite(out, n);
            if pco_decode(bytes, out)? != n {
                return Err(TsdbError::Codec("timestamp column is short".into()));
            }
            Ok(false)
        }
        t => Err(TsdbError::Codec(format!(
            "unknown timestamp column tag {t}"
        ))),
    }
}

fn pow10(e: u8) -> Result<f64> {
    POW10
        .get(e as usize)
        .copied()
        .ok_or_else(|| TsdbError::Codec(format!("decimal exponent {e} out of range")))
}

/// Reads a value column into `out` (replacing its content).
pub(crate) fn decode_f64(r: &mut Reader<'_>, out: &mut Vec<f64>) -> Result<()> {
    let tag = r.u8()?;
    if tag != COL_F64_PCO {
        out.clear();
    }
    match tag {
        COL_F64_CONST => {
            let n = checked_len(r.uvarint()?)?;
            let v = f64::from_bits(r.u64_le()?);
            out.resize(n, v);
            Ok(())
        }
        COL_F64_PCO => {
            let n = checked_len(r.uvarint()?)?;
            let len = checked_len(r.uvarint()?)?;
            let bytes = r.bytes(len)?;
            set_len_for_overwrite(out, n);
            if pco_decode(bytes, out)? != n {
                return Err(TsdbError::Codec("value column is short".into()));
            }
            Ok(())
        }
        COL_F64_RAW => {
            let n = checked_len(r.uvarint()?)?;
            let bytes = r.bytes(
                n.checked_mul(8)
                    .ok_or_else(|| TsdbError::Codec("length".into()))?,
            )?;
            out.extend(bytes.chunks_exact(8).map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                f64::from_bits(u64::from_le_bytes(a))
            }));
            Ok(())
        }
        COL_F64_DEC_VARINT => {
            let n = checked_len(r.uvarint()?)?;
            let p = pow10(r.u8()?)?;
            out.reserve(n);
            let mut m = 0i64;
            for _ in 0..n {
                m = m.wrapping_add(r.ivarint()?);
                out.push(m as f64 / p);
            }
            Ok(())
        }
        COL_F64_DEC_PCO => {
            let n = checked_len(r.uvarint()?)?;
            let p = pow10(r.u8()?)?;
            let len = checked_len(r.uvarint()?)?;
            let bytes = r.bytes(len)?;
            MANTISSAS.with(|m| {
                let mut mantissas = m.borrow_mut();
                set_len_for_overwrite(&mut mantissas, n);
                if pco_decode(bytes, &mut mantissas)? != n {
                    return Err(TsdbError::Codec("value column is short".into()));
                }
                if p == 1.0 {
                    out.extend(mantissas.iter().map(|&m| m as f64));
                } else {
                    out.extend(mantissas.iter().map(|&m| m as f64 / p));
                }
                Ok(())
            })
        }
        t => Err(TsdbError::Codec(format!("unknown value column tag {t}"))),
    }
}

/// Sets `v`'s length to `n` without clearing what it held: pco overwrites every element,
/// and only growth needs filling.
fn set_len_for_overwrite<T: Copy + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    } else {
        v.truncate(n);
    }
}

/// Lengths beyond this are corruption (a chunk holds far fewer samples).
fn checked_len(n: u64) -> Result<usize> {
    if n > (1 << 32) {
        return Err(TsdbError::Codec(format!("implausible column length {n}")));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let mut out = Vec::new();
        let vals = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for v in vals {
            put_ivarint(&mut out, v);
        }
        put_uvarint(&mut out, u64::MAX);
        let mut r = Reader::new(&out);
        for v in vals {
            assert_eq!(r.ivarint().unwrap(), v);
        }
        assert_eq!(r.uvarint().unwrap(), u64::MAX);
        assert!(r.is_empty());
        assert!(r.u8().is_err());
    }

    #[test]
    fn columns_round_trip() {
        let cases: Vec<Vec<i64>> = vec![
            vec![],
            vec![5],
            vec![5, 7],
            (0..1000).map(|i| 1_700_000_000_000 + i * 60_000).collect(),
            (0..1000)
                .map(|i| 1_700_000_000_000 + i * 60_000 + (i % 7) * 13)
                .collect(),
        ];
        for ts in cases {
            let n = ts.len();
            let value_sets: Vec<Vec<f64>> = vec![
                // decimal with one digit
                ts.iter().map(|t| (*t % 1000) as f64 / 10.0).collect(),
                // integers
                ts.iter().map(|t| (*t % 977) as f64 * 3.0).collect(),
                // not decimal: computed floats, NaN, infinities, -0.0, subnormals
                (0..n)
                    .map(|i| match i % 6 {
                        0 => 0.1 + 0.2,
                        1 => f64::NAN,
                        2 => -0.0,
                        3 => f64::INFINITY,
                        4 => 5e-324,
                        _ => i as f64 / 3.0,
                    })
                    .collect(),
                // large integers beyond 2^53 and tiny decimals
                (0..n).map(|i| 1e17 + i as f64 * 4.0).collect(),
                (0..n).map(|i| i as f64 * 1e-6).collect(),
                vec![f64::NAN; n],
            ];
            for codec in [Codec::Fast, Codec::Compact(4)] {
                let mut out = Vec::new();
                encode_ts(&mut out, &ts, codec).unwrap();
                for vals in &value_sets {
                    encode_f64(&mut out, vals, codec).unwrap();
                }
                let mut r = Reader::new(&out);
                let (mut t2, mut v2) = (Vec::new(), Vec::new());
                decode_ts(&mut r, &mut t2).unwrap();
                assert_eq!(t2, ts);
                for vals in &value_sets {
                    decode_f64(&mut r, &mut v2).unwrap();
                    let a: Vec<u64> = vals.iter().map(|v| v.to_bits()).collect();
                    let b: Vec<u64> = v2.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(a, b, "{codec:?}");
                }
                assert!(r.is_empty());
            }
        }
    }

    #[test]
    fn decimal_detection_is_exact() {
        let mut m = Vec::new();
        assert_eq!(decimal(&[1.5, 2.25, -3.0], &mut m), Some(2));
        assert_eq!(m, vec![150, 225, -300]);
        assert_eq!(decimal(&[12.3, 0.1], &mut m), Some(1));
        assert_eq!(decimal(&[0.1 + 0.2], &mut m), None);
        assert_eq!(
            decimal(&[-0.0], &mut m),
            None,
            "-0.0 would come back as +0.0"
        );
        assert_eq!(decimal(&[f64::NAN], &mut m), None);
        assert_eq!(decimal(&[1e300], &mut m), None);
        assert_eq!(decimal(&[], &mut m), Some(0));
    }

    #[test]
    fn records_stop_at_damage() {
        let mut buf = Vec::new();
        for i in 0..3u8 {
            let s = begin_record(&mut buf, 7);
            buf.extend_from_slice(&[i; 10]);
            end_record(&mut buf, s);
        }
        let full = buf.len();
        let one = full / 3;
        assert_eq!(RecordIter::new(&buf).count(), 3);
        // A torn tail: the last record is cut short.
        let mut it = RecordIter::new(&buf[..full - 3]);
        assert_eq!(it.by_ref().count(), 2);
        assert_eq!(it.valid_len(), 2 * one);
        assert!(it.stopped_early());
        // A flipped bit in the second record.
        buf[one + RECORD_HEADER + 3] ^= 1;
        let mut it = RecordIter::new(&buf);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.valid_len(), one);
    }
}
