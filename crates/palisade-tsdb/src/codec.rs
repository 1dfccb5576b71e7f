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
//! | 9 | decimal values, bit-packed | `n`, `e` (byte), order (byte); order 0: `min` (zigzag varint), `w` (byte, ≤ 56), ⌈n·w / 8⌉ bytes: the mantissas minus `min`, `w` bits each, least significant bit first; order 1: first mantissa (zigzag varint), then the same for the `n − 1` mantissa deltas |
//! | 10 | decimal values, runs | `n`, `e` (byte), `r` (varint), `r` × (run length (varint), mantissa minus the previous run's (zigzag varint; the first from 0))) |
//!
//! Decimal columns hold values that are exactly `mantissa / 10^e` (`e` ≤ 6, |mantissa| <
//! 2^53), checked bit for bit at encoding, so decoding is lossless; they compress better
//! and decode faster than floats. Regular timestamps (a fixed interval, the common case for
//! polled data) cost a few bytes per chunk and nothing to decode. Blocks cut from the head
//! use the cheap varint / raw forms ([`Codec::Fast`]); compacted blocks use pco
//! ([`Codec::Compact`]), except that a decimal column is written bit-packed or as runs when
//! that is at most 1/16 larger than pco: those decode several times faster (a day-long chunk
//! is small, and pco's per-value and per-chunk work dominates queries over many series),
//! and on polled data (uniform noise, counters, mostly constant states) they are often the
//! smaller form anyway.

use crate::error::{Result, TsdbError};

const COL_TS_REGULAR: u8 = 1;
const COL_TS_PCO: u8 = 2;
const COL_F64_CONST: u8 = 3;
const COL_F64_PCO: u8 = 4;
const COL_TS_VARINT: u8 = 5;
const COL_F64_RAW: u8 = 6;
const COL_F64_DEC_VARINT: u8 = 7;
const COL_F64_DEC_PCO: u8 = 8;
const COL_F64_DEC_PACKED: u8 = 9;
const COL_F64_DEC_RUNS: u8 = 10;

/// Widest bit-packed delta: with at most 7 bits of offset, a value always fits one 8-byte
/// load.
const MAX_PACK_BITS: u32 = 56;

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
                let start = out.len();
                out.push(COL_F64_DEC_PCO);
                put_uvarint(out, values.len() as u64);
                out.push(e);
                put_uvarint(out, bytes.len() as u64);
                out.extend_from_slice(&bytes);
                // A form that decodes faster, if it costs at most 1/16 more.
                let pco_len = out.len() - start;
                let limit = pco_len + pco_len / 16;
                let mut alt = Vec::new();
                let mut best: Option<Vec<u8>> = None;
                if encode_runs(&mut alt, &mantissas, e, limit) {
                    best = Some(std::mem::take(&mut alt));
                }
                let packed_limit = best.as_ref().map_or(limit, |b| b.len().saturating_sub(1));
                if encode_packed(&mut alt, &mantissas, e, packed_limit) {
                    best = Some(alt);
                }
                if let Some(b) = best {
                    out.truncate(start);
                    out.extend_from_slice(&b);
                }
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

/// Writes `mantissas` (of a decimal column with exponent `e`) as a bit-packed column into
/// `out` (cleared first) if that takes at most `limit` bytes; returns whether it did. The
/// mantissas themselves are packed (order 0) or their deltas (order 1), whichever is
/// narrower.
fn encode_packed(out: &mut Vec<u8>, mantissas: &[i64], e: u8, limit: usize) -> bool {
    out.clear();
    let Some((&first, _)) = mantissas.split_first() else {
        return false;
    };
    let width = |it: &mut dyn Iterator<Item = i64>| -> (i64, u32) {
        let (lo, hi) = it.fold((i64::MAX, i64::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
        if lo > hi {
            return (0, 0);
        }
        // Mantissas are below 2^53 in magnitude, so deltas and ranges fit.
        (lo, 64 - (hi.wrapping_sub(lo) as u64).leading_zeros())
    };
    let deltas = || mantissas.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let (min0, w0) = width(&mut mantissas.iter().copied());
    let (min1, w1) = width(&mut deltas());
    let n = mantissas.len();
    let (order, min, w, packed) = if w1 as usize * (n - 1) < w0 as usize * n {
        (1u8, min1, w1, n - 1)
    } else {
        (0u8, min0, w0, n)
    };
    if w > MAX_PACK_BITS || (packed * w as usize).div_ceil(8) + 4 > limit {
        return false;
    }
    out.push(COL_F64_DEC_PACKED);
    put_uvarint(out, n as u64);
    out.push(e);
    out.push(order);
    if order == 1 {
        put_ivarint(out, first);
    }
    put_ivarint(out, min);
    out.push(w as u8);
    let mut acc = 0u64;
    let mut bits = 0u32;
    let mut put = |v: i64| {
        acc |= (v.wrapping_sub(min) as u64) << bits;
        bits += w;
        // At most 7 + 56 bits are pending: nothing of `v` was lost above.
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    };
    if order == 1 {
        deltas().for_each(&mut put);
    } else {
        mantissas.iter().copied().for_each(&mut put);
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    out.len() <= limit
}

/// Writes `mantissas` as a runs column into `out` (cleared first) if that takes at most
/// `limit` bytes; returns whether it did.
fn encode_runs(out: &mut Vec<u8>, mantissas: &[i64], e: u8, limit: usize) -> bool {
    out.clear();
    out.push(COL_F64_DEC_RUNS);
    put_uvarint(out, mantissas.len() as u64);
    out.push(e);
    let runs = 1 + mantissas.windows(2).filter(|w| w[0] != w[1]).count();
    put_uvarint(out, runs as u64);
    let mut prev = 0i64;
    let mut i = 0;
    while i < mantissas.len() {
        let m = mantissas[i];
        let len = mantissas[i..].iter().take_while(|&&x| x == m).count();
        put_uvarint(out, len as u64);
        put_ivarint(out, m.wrapping_sub(prev));
        prev = m;
        i += len;
        if out.len() > limit {
            return false;
        }
    }
    out.len() <= limit
}

/// Appends `count` values of `w` bits each from `data` (least significant bit first), plus
/// `min`, to `out`.
fn unpack(data: &[u8], w: u32, min: i64, count: usize, out: &mut Vec<i64>) {
    if w == 0 {
        out.resize(out.len() + count, min);
        return;
    }
    let w = w as usize;
    let mask = (1u64 << w) - 1;
    // Values whose 8-byte window lies inside `data`: plain loads.
    let fast = if data.len() >= 8 {
        (((data.len() - 8) * 8 + 7) / w + 1).min(count)
    } else {
        0
    };
    out.reserve(count);
    out.extend((0..fast).map(|i| {
        let bit = i * w;
        let at = bit >> 3;
        let mut word = [0u8; 8];
        word.copy_from_slice(&data[at..at + 8]);
        min.wrapping_add(((u64::from_le_bytes(word) >> (bit & 7)) & mask) as i64)
    }));
    out.extend((fast..count).map(|i| {
        let bit = i * w;
        min.wrapping_add(((load_u64(data, bit >> 3) >> (bit & 7)) & mask) as i64)
    }));
}

/// 8 bytes of `data` from `at` (zeros past its end), little endian.
#[inline]
fn load_u64(data: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    match data.get(at..at + 8) {
        Some(b) => a.copy_from_slice(b),
        None => {
            let rest = data.get(at..).unwrap_or(&[]);
            a[..rest.len()].copy_from_slice(rest);
        }
    }
    u64::from_le_bytes(a)
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
        COL_F64_DEC_PACKED => {
            let n = checked_len(r.uvarint()?)?;
            let p = pow10(r.u8()?)?;
            if n == 0 {
                return Ok(());
            }
            let order = r.u8()?;
            let (first, packed) = match order {
                0 => (None, n),
                1 => (Some(r.ivarint()?), n - 1),
                o => return Err(TsdbError::Codec(format!("unknown packing order {o}"))),
            };
            let min = r.ivarint()?;
            let w = u32::from(r.u8()?);
            if w > MAX_PACK_BITS {
                return Err(TsdbError::Codec(format!("bit width {w} out of range")));
            }
            let n_bytes = packed
                .checked_mul(w as usize)
                .ok_or_else(|| TsdbError::Codec("length".into()))?
                .div_ceil(8);
            let data = r.bytes(n_bytes)?;
            MANTISSAS.with(|cell| {
                let mut ms = cell.borrow_mut();
                ms.clear();
                ms.extend(first);
                unpack(data, w, min, packed, &mut ms);
                if first.is_some() {
                    let mut m = 0i64;
                    for x in ms.iter_mut() {
                        m = m.wrapping_add(*x);
                        *x = m;
                    }
                }
                if p == 1.0 {
                    out.extend(ms.iter().map(|&m| m as f64));
                } else {
                    out.extend(ms.iter().map(|&m| m as f64 / p));
                }
            });
            Ok(())
        }
        COL_F64_DEC_RUNS => {
            let n = checked_len(r.uvarint()?)?;
            let p = pow10(r.u8()?)?;
            let runs = checked_len(r.uvarint()?)?;
            out.reserve(n);
            let mut m = 0i64;
            for _ in 0..runs {
                let len = checked_len(r.uvarint()?)?;
                m = m.wrapping_add(r.ivarint()?);
                if len > n - out.len() {
                    return Err(TsdbError::Codec("runs exceed the column".into()));
                }
                out.resize(out.len() + len, m as f64 / p);
            }
            if out.len() != n {
                return Err(TsdbError::Codec("runs do not fill the column".into()));
            }
            Ok(())
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

    /// Bit-packed and runs columns round-trip whatever the data (forced), and the compact
    /// codec picks them only when they are at most 1/16 larger than pco.
    #[test]
    fn packed_and_runs_columns() {
        let mut state = 99u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let big = (1i64 << 53) - 1;
        let mut sets: Vec<Vec<i64>> = vec![
            vec![7],
            vec![7, 7, 8],
            vec![-big, big, -big, big],
            vec![big, -big],
            (0..1440).map(|i| i / 500).collect(),
        ];
        for width in [1u64, 3, 7, 8, 9, 13, 31, 40, 52] {
            let mut m = 0i64;
            sets.push(
                (0..1000)
                    .map(|_| {
                        m += (next() % (1 << width)) as i64 - (1 << (width - 1));
                        m
                    })
                    .collect(),
            );
        }
        for (i, ms) in sets.iter().enumerate() {
            for e in [0u8, 1, 3] {
                let p = POW10[e as usize];
                let want: Vec<u64> = ms.iter().map(|&m| (m as f64 / p).to_bits()).collect();
                for packed in [true, false] {
                    let mut out = Vec::new();
                    let ok = if packed {
                        encode_packed(&mut out, ms, e, usize::MAX)
                    } else {
                        encode_runs(&mut out, ms, e, usize::MAX)
                    };
                    if !ok {
                        assert!(packed && i == 2, "set {i} packed {packed}");
                        continue;
                    }
                    let mut v = vec![1.0; 3];
                    let mut r = Reader::new(&out);
                    decode_f64(&mut r, &mut v).unwrap();
                    assert!(r.is_empty());
                    let got: Vec<u64> = v.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "set {i} e {e} packed {packed}");
                    // Cut short: an error, not a panic.
                    for cut in [1, out.len() / 2, out.len() - 1] {
                        let _ = decode_f64(&mut Reader::new(&out[..cut]), &mut v);
                    }
                }
            }
        }
        // The compact codec: a mostly constant column becomes runs, uniform noise packed,
        // a skewed one stays pco.
        let cases: [(Vec<f64>, u8); 3] = [
            (
                (0..1440).map(|i| ((i / 400) % 3) as f64).collect(),
                COL_F64_DEC_RUNS,
            ),
            (
                (0..1440).map(|_| (next() % 1000) as f64 / 10.0).collect(),
                COL_F64_DEC_PACKED,
            ),
            (
                (0..1440)
                    .map(|i| {
                        if i % 97 == 0 {
                            1e9 + i as f64
                        } else {
                            (i % 2) as f64
                        }
                    })
                    .collect(),
                COL_F64_DEC_PCO,
            ),
        ];
        for (vals, tag) in cases {
            let mut out = Vec::new();
            encode_f64(&mut out, &vals, Codec::Compact(4)).unwrap();
            assert_eq!(out[0], tag);
            let mut v = Vec::new();
            decode_f64(&mut Reader::new(&out), &mut v).unwrap();
            assert!(v.iter().zip(&vals).all(|(a, b)| a.to_bits() == b.to_bits()));
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
