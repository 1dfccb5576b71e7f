//! The write-ahead log: segment files of checksummed records, written by one thread that
//! commits groups.
//!
//! Appenders copy their encoded records into a shared buffer and get a sequence number; the
//! writer thread repeatedly takes the whole buffer, writes it and calls `fdatasync` once, then
//! publishes "durable up to sequence N". Everything that arrived while one sync was running
//! rides on the next one, so concurrent appenders share fsyncs (group commit) without any
//! timer. An appender is acknowledged only after the sync that covers its bytes returned.

use crate::codec::{
    begin_record, end_record, put_ivarint, put_str, put_uvarint, put_uvarint_at, zigzag, Reader,
    RecordIter,
};
use crate::error::{Result, TsdbError};
use crate::fsutil::sync_dir;
use crate::types::{Sample, SeriesKey};
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Record kind: a series definition (`id`, metric, labels).
pub(crate) const REC_SERIES: u8 = 1;
/// Record kind: samples of one or more series.
pub(crate) const REC_SAMPLES: u8 = 2;

/// First bytes of every WAL segment.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"PTSWAL01";

/// Above this, the writer's spare buffer is released instead of reused.
const MAX_SPARE: usize = 64 << 20;

pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.wal"))
}

/// Segment numbers and paths in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".wal") else {
            continue;
        };
        if let Ok(n) = stem.parse::<u64>() {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Encodes a series definition record body.
pub(crate) fn encode_series_body(out: &mut Vec<u8>, id: u64, key: &SeriesKey) {
    put_uvarint(out, id);
    put_str(out, &key.metric);
    put_uvarint(out, key.labels.len() as u64);
    for (k, v) in &key.labels {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Appends a complete series definition record.
pub(crate) fn put_series_record(out: &mut Vec<u8>, id: u64, key: &SeriesKey) {
    let start = begin_record(out, REC_SERIES);
    encode_series_body(out, id, key);
    end_record(out, start);
}

pub(crate) fn decode_series_body(body: &[u8]) -> Result<(u64, SeriesKey)> {
    let mut r = Reader::new(body);
    let id = r.uvarint()?;
    let metric = r.str()?.to_owned();
    let n = r.uvarint()?;
    let mut labels = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?.to_owned();
        let v = r.str()?.to_owned();
        labels.insert(k, v);
    }
    Ok((id, SeriesKey { metric, labels }))
}

/// Builds one samples record: `base_ts` (zigzag varint), then per series `id`, `n`, and `n`
/// samples as (zigzag varint delta to the previous timestamp, starting from `base_ts`;
/// 8 bytes of value bits).
pub(crate) struct SamplesRecord {
    start: usize,
    base: i64,
    entries: usize,
}

impl SamplesRecord {
    pub(crate) fn begin(out: &mut Vec<u8>, base: i64) -> Self {
        let start = begin_record(out, REC_SAMPLES);
        put_ivarint(out, base);
        SamplesRecord {
            start,
            base,
            entries: 0,
        }
    }

    pub(crate) fn series_header(&mut self, out: &mut Vec<u8>, id: u64, n: usize) -> i64 {
        self.entries += 1;
        put_uvarint(out, id);
        put_uvarint(out, n as u64);
        self.base
    }

    /// Writes a series entry with exactly one sample (the usual case) in one copy: the
    /// same bytes as [`SamplesRecord::series_header`] with `n = 1` and one
    /// [`SamplesRecord::sample`].
    #[inline]
    pub(crate) fn single(&mut self, out: &mut Vec<u8>, id: u64, s: Sample) {
        self.entries += 1;
        let mut tmp = [0u8; 32];
        let mut n = put_uvarint_at(&mut tmp, 0, id);
        tmp[n] = 1;
        n = put_uvarint_at(&mut tmp, n + 1, zigzag(s.ts_ms.wrapping_sub(self.base)));
        tmp[n..n + 8].copy_from_slice(&s.value.to_bits().to_le_bytes());
        // A fixed-size copy (two vector stores, no call), then cut to the real length.
        let at = out.len();
        out.extend_from_slice(&tmp);
        out.truncate(at + n + 8);
    }

    /// Writes one sample; returns the new "previous timestamp".
    #[inline]
    pub(crate) fn sample(out: &mut Vec<u8>, prev: i64, s: Sample) -> i64 {
        put_ivarint(out, s.ts_ms.wrapping_sub(prev));
        out.extend_from_slice(&s.value.to_bits().to_le_bytes());
        s.ts_ms
    }

    /// Finishes the record; an empty record is removed again. Returns whether one was kept.
    pub(crate) fn end(self, out: &mut Vec<u8>) -> bool {
        if self.entries == 0 {
            out.truncate(self.start);
            return false;
        }
        end_record(out, self.start);
        true
    }
}

pub(crate) fn decode_samples_body(body: &[u8], mut f: impl FnMut(u64, Sample)) -> Result<()> {
    let mut r = Reader::new(body);
    let base = r.ivarint()?;
    while !r.is_empty() {
        let id = r.uvarint()?;
        let n = r.uvarint()?;
        let mut prev = base;
        for _ in 0..n {
            let ts = prev.wrapping_add(r.ivarint()?);
            let value = f64::from_bits(r.u64_le()?);
            f(id, Sample { ts_ms: ts, value });
            prev = ts;
        }
    }
    Ok(())
}

/// What replaying one segment found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SegmentReplay {
    pub records: u64,
    pub truncated_bytes: u64,
}

/// Reads a segment, calls `apply` for each intact record, and truncates a damaged tail (a
/// record cut short or failing its checksum, as a crash in the middle of a write leaves it).
pub(crate) fn replay_segment(
    path: &Path,
    mut apply: impl FnMut(u8, &[u8]) -> Result<()>,
) -> Result<SegmentReplay> {
    let data = std::fs::read(path).map_err(|e| TsdbError::io(path, e))?;
    let mut out = SegmentReplay::default();
    if data.len() < SEGMENT_MAGIC.len() {
        // Created but its header never made it to disk: nothing was written to it.
        out.truncated_bytes = data.len() as u64;
        rewrite_header(path)?;
        return Ok(out);
    }
    if &data[..SEGMENT_MAGIC.len()] != SEGMENT_MAGIC {
        return Err(TsdbError::corrupt(path, "not a WAL segment (bad magic)"));
    }
    let body = &data[SEGMENT_MAGIC.len()..];
    let mut it = RecordIter::new(body);
    for (kind, payload) in it.by_ref() {
        apply(kind, payload)
            .map_err(|e| TsdbError::corrupt(path, format!("record {}: {e}", out.records)))?;
        out.records += 1;
    }
    let valid = SEGMENT_MAGIC.len() + it.valid_len();
    if valid < data.len() {
        out.truncated_bytes = (data.len() - valid) as u64;
        tracing::warn!(
            segment = %path.display(),
            bytes = out.truncated_bytes,
            "truncating a torn write-ahead-log tail"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| TsdbError::io(path, e))?;
        f.set_len(valid as u64)
            .map_err(|e| TsdbError::io(path, e))?;
        f.sync_all().map_err(|e| TsdbError::io(path, e))?;
    }
    Ok(out)
}

fn rewrite_header(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| TsdbError::io(path, e))?;
    f.write_all(SEGMENT_MAGIC)
        .map_err(|e| TsdbError::io(path, e))?;
    f.sync_all().map_err(|e| TsdbError::io(path, e))
}

fn create_segment(dir: &Path, n: u64) -> Result<File> {
    let path = segment_path(dir, n);
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| TsdbError::io(&path, e))?;
    f.write_all(SEGMENT_MAGIC)
        .map_err(|e| TsdbError::io(&path, e))?;
    f.sync_all().map_err(|e| TsdbError::io(&path, e))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Durability progress published by the writer thread.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// Every submission with a sequence number up to this is on disk.
    pub durable_seq: u64,
    /// The segment now being written; all earlier segments are complete.
    pub segment: u64,
    /// Set once a write or sync failed.
    pub failed: Option<Arc<str>>,
    /// Set when the writer thread has stopped.
    pub stopped: bool,
}

struct State {
    buf: Vec<u8>,
    seq: u64,
    /// The newest requested segment.
    segment: u64,
    /// Pending rotations, in order: the new segment and the offset in `buf` where it starts.
    rotations: Vec<(u64, usize)>,
    shutdown: bool,
    failed: Option<Arc<str>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    progress: Mutex<Progress>,
    progress_cv: Condvar,
    progress_tx: watch::Sender<Progress>,
}

impl Shared {
    fn publish(&self, f: impl FnOnce(&mut Progress)) {
        let snapshot = {
            let mut p = self.progress.lock();
            f(&mut p);
            p.clone()
        };
        self.progress_cv.notify_all();
        self.progress_tx.send_replace(snapshot);
    }
}

/// The log writer.
pub(crate) struct Wal {
    dir: PathBuf,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Creates segment `first_segment` and starts the writer thread.
    pub(crate) fn start(dir: &Path, first_segment: u64) -> Result<Wal> {
        let file = create_segment(dir, first_segment)?;
        let progress = Progress {
            segment: first_segment,
            ..Progress::default()
        };
        let (progress_tx, _) = watch::channel(progress.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                seq: 0,
                segment: first_segment,
                rotations: Vec::new(),
                shutdown: false,
                failed: None,
            }),
            wake: Condvar::new(),
            progress: Mutex::new(progress),
            progress_cv: Condvar::new(),
            progress_tx,
        });
        let thread_shared = Arc::clone(&shared);
        let thread_dir = dir.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("tsdb-wal".into())
            .spawn(move || writer_loop(&thread_shared, &thread_dir, file, first_segment))
            .map_err(|e| TsdbError::io(dir, e))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            shared,
            thread: Mutex::new(Some(handle)),
        })
    }

    /// Queues encoded records and wakes the writer; returns the sequence number to wait for.
    #[cfg(test)]
    pub(crate) fn submit(&self, bytes: &[u8]) -> Result<u64> {
        let seq = self.submit_quiet(bytes)?;
        self.kick();
        Ok(seq)
    }

    /// Queues encoded records without waking the writer (an appender that queues several
    /// pieces wakes it once, with [`Wal::kick`], after the last); returns the sequence number
    /// to wait for. A writer that is already busy takes the bytes on its next round anyway.
    pub(crate) fn submit_quiet(&self, bytes: &[u8]) -> Result<u64> {
        let mut st = self.shared.state.lock();
        if let Some(f) = &st.failed {
            return Err(TsdbError::WalFailed(f.to_string()));
        }
        if st.shutdown {
            return Err(TsdbError::Closed);
        }
        st.buf.extend_from_slice(bytes);
        st.seq += 1;
        Ok(st.seq)
    }

    /// Wakes the writer if it is waiting for bytes.
    pub(crate) fn kick(&self) {
        self.shared.wake.notify_one();
    }

    /// Waits until submission `seq` is on disk.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.shared.progress_tx.subscribe();
        loop {
            {
                let p = rx.borrow_and_update();
                if p.durable_seq >= seq {
                    return Ok(());
                }
                if let Some(f) = &p.failed {
                    return Err(TsdbError::WalFailed(f.to_string()));
                }
                if p.stopped {
                    return Err(TsdbError::Closed);
                }
            }
            if rx.changed().await.is_err() {
                return Err(TsdbError::Closed);
            }
        }
    }

    /// Blocking form of [`Wal::wait_durable`].
    #[cfg(test)]
    pub(crate) fn wait_durable_blocking(&self, seq: u64) -> Result<()> {
        let mut p = self.shared.progress.lock();
        loop {
            if p.durable_seq >= seq {
                return Ok(());
            }
            if let Some(f) = &p.failed {
                return Err(TsdbError::WalFailed(f.to_string()));
            }
            if p.stopped {
                return Err(TsdbError::Closed);
            }
            self.shared.progress_cv.wait(&mut p);
        }
    }

    /// Asks the writer to start a new segment exactly after everything submitted so far
    /// (bytes submitted later go to the new segment). Returns the new segment's number; once
    /// [`Wal::wait_segment`] for it returns, every earlier segment is complete and durable.
    pub(crate) fn rotate(&self) -> Result<u64> {
        let mut st = self.shared.state.lock();
        if let Some(f) = &st.failed {
            return Err(TsdbError::WalFailed(f.to_string()));
        }
        if st.shutdown {
            return Err(TsdbError::Closed);
        }
        st.segment += 1;
        let seg = st.segment;
        let at = st.buf.len();
        st.rotations.push((seg, at));
        drop(st);
        self.shared.wake.notify_one();
        Ok(seg)
    }

    /// Waits until the writer has moved to segment `seg` (or beyond).
    pub(crate) fn wait_segment(&self, seg: u64) -> Result<()> {
        let mut p = self.shared.progress.lock();
        loop {
            if p.segment >= seg {
                return Ok(());
            }
            if let Some(f) = &p.failed {
                return Err(TsdbError::WalFailed(f.to_string()));
            }
            if p.stopped {
                return Err(TsdbError::Closed);
            }
            self.shared.progress_cv.wait(&mut p);
        }
    }

    /// Deletes the segments numbered below `seg`.
    pub(crate) fn remove_segments_below(&self, seg: u64) -> Result<usize> {
        let mut removed = 0;
        for (n, path) in list_segments(&self.dir)? {
            if n < seg {
                crate::fsutil::remove_file(&path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Whether the log has failed.
    pub(crate) fn failed(&self) -> Option<Arc<str>> {
        self.shared.state.lock().failed.clone()
    }

    /// Writes what is queued, stops the writer thread and waits for it.
    pub(crate) fn shutdown(&self) {
        {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
        }
        self.shared.wake.notify_one();
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("the write-ahead-log thread panicked");
            }
        }
    }

    /// Bytes submitted but not yet taken by the writer (for tests and stats).
    #[cfg(test)]
    pub(crate) fn pending_bytes(&self) -> usize {
        self.shared.state.lock().buf.len()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write_sync(file: &mut File, bytes: &[u8], dir: &Path, segment: u64) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| TsdbError::io(segment_path(dir, segment), e))
}

fn writer_loop(shared: &Shared, dir: &Path, mut file: File, mut segment: u64) {
    let mut spare: Vec<u8> = Vec::new();
    let mut rotations: Vec<(u64, usize)> = Vec::new();
    loop {
        let (upto, shutdown) = {
            let mut st = shared.state.lock();
            while st.buf.is_empty() && st.rotations.is_empty() && !st.shutdown {
                shared.wake.wait(&mut st);
            }
            std::mem::swap(&mut st.buf, &mut spare);
            std::mem::swap(&mut st.rotations, &mut rotations);
            (st.seq, st.shutdown)
        };
        let mut result = Ok(());
        let mut from = 0;
        for &(n, at) in &rotations {
            let at = at.clamp(from, spare.len());
            match write_sync(&mut file, &spare[from..at], dir, segment)
                .and_then(|()| create_segment(dir, n))
            {
                Ok(f) => {
                    file = f;
                    segment = n;
                    from = at;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        rotations.clear();
        if result.is_ok() {
            result = write_sync(&mut file, &spare[from..], dir, segment);
        }
        spare.clear();
        if spare.capacity() > MAX_SPARE {
            spare = Vec::new();
        }
        match result {
            Ok(()) => shared.publish(|p| {
                p.durable_seq = upto;
                p.segment = segment;
            }),
            Err(e) => {
                tracing::error!(error = %e, "write-ahead log failed; refusing further writes");
                let msg: Arc<str> = Arc::from(e.to_string());
                shared.state.lock().failed = Some(Arc::clone(&msg));
                shared.publish(|p| p.failed = Some(msg));
                break;
            }
        }
        if shutdown && shared.state.lock().buf.is_empty() {
            break;
        }
    }
    shared.publish(|p| p.stopped = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "palisade-tsdb-wal-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn samples_record(id: u64, samples: &[Sample]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rec = SamplesRecord::begin(&mut out, samples[0].ts_ms);
        let mut prev = rec.series_header(&mut out, id, samples.len());
        for s in samples {
            prev = SamplesRecord::sample(&mut out, prev, *s);
        }
        assert!(rec.end(&mut out));
        out
    }

    #[tokio::test]
    async fn group_commit_and_replay() {
        let dir = tmpdir("gc");
        let wal = Arc::new(Wal::start(&dir, 1).unwrap());
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let wal = Arc::clone(&wal);
            tasks.push(tokio::spawn(async move {
                for i in 0..50i64 {
                    let mut rec = Vec::new();
                    put_series_record(&mut rec, t, &SeriesKey::new(format!("m{t}")));
                    rec.extend(samples_record(t, &[Sample::new(i * 1000, i as f64)]));
                    let seq = wal.submit(&rec).unwrap();
                    wal.wait_durable(seq).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(wal.pending_bytes(), 0);
        wal.shutdown();
        let mut n = 0;
        let mut series = 0;
        let segs = list_segments(&dir).unwrap();
        assert_eq!(segs.len(), 1);
        replay_segment(&segs[0].1, |kind, body| {
            match kind {
                REC_SERIES => {
                    decode_series_body(body)?;
                    series += 1;
                }
                REC_SAMPLES => decode_samples_body(body, |_, _| n += 1)?,
                _ => panic!("unknown kind"),
            }
            Ok(())
        })
        .unwrap();
        assert_eq!((n, series), (400, 400));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Bytes submitted after `rotate()` never land in a segment before the rotation point,
    /// however the writer thread is scheduled.
    #[test]
    fn rotation_splits_exactly_at_the_call() {
        let dir = tmpdir("split");
        let wal = Wal::start(&dir, 1).unwrap();
        let mut rotations = Vec::new();
        for i in 0..300u64 {
            let before = wal
                .submit(&samples_record(2 * i, &[Sample::new(1, 1.0)]))
                .unwrap();
            let seg = wal.rotate().unwrap();
            let after = wal
                .submit(&samples_record(2 * i + 1, &[Sample::new(1, 1.0)]))
                .unwrap();
            rotations.push(seg);
            if i % 7 == 0 {
                wal.wait_durable_blocking(before.max(after)).unwrap();
            }
        }
        let last = wal
            .submit(&samples_record(10_000, &[Sample::new(1, 1.0)]))
            .unwrap();
        wal.wait_durable_blocking(last).unwrap();
        wal.shutdown();
        let mut seg_of = std::collections::HashMap::new();
        for (n, path) in list_segments(&dir).unwrap() {
            replay_segment(&path, |_, body| {
                decode_samples_body(body, |id, _| {
                    seg_of.insert(id, n);
                })
            })
            .unwrap();
        }
        for (i, seg) in rotations.iter().enumerate() {
            let i = i as u64;
            assert!(
                seg_of[&(2 * i)] < *seg,
                "record {i} before rotation to {seg}"
            );
            assert!(
                seg_of[&(2 * i + 1)] >= *seg,
                "record {i} after rotation to {seg}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn torn_tail_is_truncated_and_rotation_completes_segments() {
        let dir = tmpdir("torn");
        let wal = Wal::start(&dir, 1).unwrap();
        let rec = samples_record(3, &[Sample::new(10, 1.5), Sample::new(5, 2.5)]);
        let seq = wal.submit(&rec).unwrap();
        wal.wait_durable_blocking(seq).unwrap();
        let seg = wal.rotate().unwrap();
        wal.wait_segment(seg).unwrap();
        let seq = wal.submit(&rec).unwrap();
        wal.wait_durable_blocking(seq).unwrap();
        wal.shutdown();
        let segs = list_segments(&dir).unwrap();
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
        // Tear the last record of segment 2 in half.
        let p = &segs[1].1;
        let len = std::fs::metadata(p).unwrap().len();
        let f = OpenOptions::new().write(true).open(p).unwrap();
        f.set_len(len - 5).unwrap();
        let mut got = Vec::new();
        let r = replay_segment(p, |_, body| {
            decode_samples_body(body, |id, s| got.push((id, s)))
        })
        .unwrap();
        assert_eq!(r.records, 0);
        assert_eq!(
            std::fs::metadata(p).unwrap().len(),
            8,
            "truncated to the header"
        );
        let r = replay_segment(&segs[0].1, |_, body| {
            decode_samples_body(body, |id, s| got.push((id, s)))
        })
        .unwrap();
        assert_eq!((r.records, r.truncated_bytes), (1, 0));
        assert_eq!(
            got,
            vec![(3, Sample::new(10, 1.5)), (3, Sample::new(5, 2.5))]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
