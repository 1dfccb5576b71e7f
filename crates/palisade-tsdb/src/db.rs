//! The embedded store, [`Tsdb`]. See the crate documentation for the design and layout.

use crate::block::{
    Block, BlockWriter, IndexEntry, KIND_RAW, KIND_ROLLUP, LEVEL_COMPACTED, LEVEL_FLUSHED,
};
use crate::catalog::Catalog;
use crate::chunk::{decode_raw, decode_rollup, encode_raw, encode_rollup};
use crate::codec::Codec;
use crate::error::{Result, TsdbError};
use crate::fsutil::{dir_size, ensure_dir, remove_file, sync_dir, write_atomic};
use crate::head::{
    encode_key, encode_key_into, key_hash, key_matches, range, shard_of, Frozen, Shard, SHARDS,
};
use crate::index::{Selected, SeriesEntry, SeriesIndex};
use crate::query::{
    aligned, bucket_ranges, bucketize, group_labels, merge_runs, reduce, single, Grid, GroupAcc,
    Rows, Run,
};
use crate::types::{bucket_count, Aggregation, Grouping, Labels, Sample, Selector, SeriesKey};
use crate::wal::{
    decode_samples_body, decode_series_body, list_segments, put_series_record, replay_segment,
    SamplesRecord, Wal, REC_SAMPLES, REC_SERIES,
};
use crate::TimeSeriesStore;
use async_trait::async_trait;
use hashbrown::DefaultHashBuilder;
use parking_lot::{Condvar, Mutex, RwLock};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One day in milliseconds: raw blocks never straddle a UTC day boundary.
pub const DAY_MS: i64 = 86_400_000;
/// Rollup blocks cover 30-day periods aligned to the epoch.
pub const ROLLUP_PERIOD_MS: i64 = 30 * DAY_MS;
/// Blocks cut from the head are short-lived (compaction rewrites them): cheap codecs.
const FLUSH_CODEC: Codec = Codec::Fast;
/// Compacted day blocks and rollups: pco. Level 4: on day-long chunks of polled data it
/// compresses within a fraction of a percent of level 8 (the default) but decodes about a
/// quarter faster (fewer bins: smaller tables to build per chunk) and encodes three times
/// faster.
const COMPACT_CODEC: Codec = Codec::Compact(4);
/// Series per parallel query task.
const QUERY_BATCH: usize = 128;
/// Series per parallel compaction task.
const COMPACT_BATCH: usize = 1024;
/// WAL samples records are closed once they exceed this many bytes.
const MAX_RECORD_BYTES: usize = 8 << 20;
/// Samples of one series per WAL entry (larger vectors are split).
const MAX_SAMPLES_PER_ENTRY: usize = 1 << 16;
/// Coalesce chunk reads separated by less than this.
const READ_GAP: u64 = 64 << 10;
/// Largest coalesced read.
const READ_SPAN: u64 = 16 << 20;

const META_MAGIC: &[u8; 8] = b"PTSMETA1";

/// Settings of the embedded store.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cut the head into blocks at least this often (default 2 h).
    pub flush_interval: Duration,
    /// Cut the head into blocks once it holds this many samples (default 4 M ≈ 64 MiB).
    /// With the background thread, appenders wait (back-pressure) while the head holds four
    /// times this.
    pub max_head_samples: usize,
    /// Keep raw samples this long (default 30 days; applied per whole UTC day).
    pub raw_retention: Duration,
    /// Keep hourly rollups this long (default 365 days; applied per 30-day period).
    pub rollup_retention: Duration,
    /// Compact a day into one block (and compute its rollups) this long after it ended
    /// (default 1 h). Later samples for that day are merged by a later compaction.
    pub compaction_delay: Duration,
    /// Run compaction and retention this often in the background (default 60 s).
    pub maintenance_interval: Duration,
    /// Run the background thread (flushes, compaction, retention by the wall clock).
    /// Without it, call [`TimeSeriesStore::flush`], [`Tsdb::flush_now`] and
    /// [`Tsdb::maintain_at`] yourself.
    pub background: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flush_interval: Duration::from_secs(2 * 3600),
            max_head_samples: 4_000_000,
            raw_retention: Duration::from_secs(30 * 86_400),
            rollup_retention: Duration::from_secs(365 * 86_400),
            compaction_delay: Duration::from_secs(3600),
            maintenance_interval: Duration::from_secs(60),
            background: true,
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(ms)
        .unwrap_or(0)
}

fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_MS) * DAY_MS
}

/// What opening found.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// Series known after open.
    pub series: usize,
    /// WAL segments replayed.
    pub wal_segments: usize,
    /// Intact WAL records replayed.
    pub wal_records: u64,
    /// Samples put back into the head from the WAL.
    pub wal_samples: u64,
    /// Bytes cut off torn WAL tails.
    pub wal_truncated_bytes: u64,
    /// Raw blocks in service.
    pub raw_blocks: usize,
    /// Rollup blocks in service.
    pub rollup_blocks: usize,
    /// Blocks superseded by a compaction that finished just before a crash, removed.
    pub superseded_blocks: usize,
    /// Blocks that failed their checks, renamed to `*.corrupt` and left out.
    pub quarantined_blocks: Vec<PathBuf>,
}

/// What a flush wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Series written.
    pub series: usize,
    /// Samples written.
    pub samples: u64,
    /// Block files written (one per UTC day touched).
    pub blocks: usize,
}

/// What a maintenance run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Days compacted into one block each (with their rollups).
    pub compacted_days: usize,
    /// Raw blocks removed by retention.
    pub removed_raw_blocks: usize,
    /// Rollup blocks removed by retention.
    pub removed_rollup_blocks: usize,
    /// Raw samples are kept from this instant on (`None`: no raw retention applied yet).
    pub raw_floor_ms: Option<i64>,
}

/// Counters for monitoring the store.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Known series.
    pub series: usize,
    /// Samples in the head (not yet in blocks).
    pub head_samples: usize,
    /// Raw blocks.
    pub raw_blocks: usize,
    /// Rollup blocks.
    pub rollup_blocks: usize,
    /// Samples dropped on append because they are older than the raw retention.
    pub dropped_samples: u64,
    /// Raw samples are kept from this instant on.
    pub raw_floor_ms: Option<i64>,
}

/// Bytes on disk, by kind.
#[derive(Clone, Debug, Default)]
pub struct DiskUsage {
    /// Write-ahead log segments.
    pub wal: u64,
    /// Raw blocks (chunks and per-block index).
    pub raw_blocks: u64,
    /// Rollup blocks.
    pub rollup_blocks: u64,
    /// The series catalog.
    pub catalog: u64,
}

#[derive(Clone, Default)]
struct ReadState {
    /// Ascending `(range_start, seq)`.
    raw: Vec<Arc<Block>>,
    /// Ascending `range_start`, one per period.
    rollup: Vec<Arc<Block>>,
    /// Heads being flushed, oldest first.
    frozen: Vec<Arc<Frozen>>,
}

impl ReadState {
    fn sort(&mut self) {
        self.raw.sort_by_key(|b| (b.meta.range_start, b.meta.seq));
        self.rollup
            .sort_by_key(|b| (b.meta.range_start, b.meta.seq));
    }
}

struct CatalogState {
    catalog: Catalog,
    /// Every series with a lower id is in the catalog.
    upto: u64,
}

#[derive(Default)]
struct BgState {
    stop: bool,
}

struct Inner {
    dir: PathBuf,
    blocks_dir: PathBuf,
    opts: Options,
    hasher: DefaultHashBuilder,
    shards: Vec<Mutex<Shard>>,
    index: RwLock<SeriesIndex>,
    /// Appenders hold it shared while they update the head and queue WAL bytes; a flush
    /// holds it exclusively while it freezes the head and rotates the WAL.
    epoch: RwLock<()>,
    state: RwLock<ReadState>,
    wal: Wal,
    catalog: Mutex<CatalogState>,
    head_samples: AtomicUsize,
    dropped: AtomicU64,
    raw_floor: AtomicI64,
    next_seq: AtomicU64,
    maint: Mutex<()>,
    closed: AtomicBool,
    bg: Mutex<BgState>,
    bg_cv: Condvar,
    bg_thread: Mutex<Option<JoinHandle<()>>>,
    flush_wanted: AtomicBool,
    flush_done: tokio::sync::Notify,
    open_report: OpenReport,
    /// Start offsets of concurrent appenders (see [`Inner::for_shards`]).
    rotor: AtomicUsize,
    /// Identifies this open store in its [`SeriesRef`]s (24 bits).
    store_tag: u32,
    /// Recently seen batch shapes, most recent first.
    shapes: Mutex<Vec<Arc<Shape>>>,
    _lock: File,
}

/// A handle to one series of one open [`Tsdb`], from [`Tsdb::resolve`]: appending through
/// it ([`Tsdb::append_refs`]) skips hashing and looking up the key. Valid for as long as the
/// store that issued it is open (series are never removed); other stores, and the same
/// directory after a reopen, refuse it ([`TsdbError::InvalidSeries`]; checked with a random
/// per-open tag): resolve again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesRef {
    id: u64,
    slot: u32,
    /// The store's tag (high 24 bits) and the shard (low 8 bits).
    tag: u32,
}

impl SeriesRef {
    fn shard(&self) -> usize {
        (self.tag & 0xff) as usize
    }

    /// The series' id in its store (stable across reopens; ids are not reused).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// A tag that differs between the stores opened by this process (and, very likely,
/// between processes).
fn new_store_tag() -> u32 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = (t ^ u64::from(std::process::id()).rotate_left(32))
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    ((mixed >> 40) as u32) & 0xFF_FFFF
}

/// The embedded time-series store. Open it with [`Tsdb::open`]; use it through
/// [`TimeSeriesStore`]. Dropping it stops its threads (queued WAL bytes are written).
pub struct Tsdb {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn read_meta(path: &Path) -> Option<i64> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the store's meta file; raw retention restarts");
            return None;
        }
    };
    if data.len() != 20 || &data[..8] != META_MAGIC {
        tracing::warn!("the store's meta file is damaged; raw retention restarts");
        return None;
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&data[16..20]);
    if crc32fast::hash(&data[..16]) != u32::from_le_bytes(crc) {
        tracing::warn!("the store's meta file fails its checksum; raw retention restarts");
        return None;
    }
    let mut v = [0u8; 8];
    v.copy_from_slice(&data[8..16]);
    Some(i64::from_le_bytes(v))
}

fn write_meta(path: &Path, raw_floor: i64) -> Result<()> {
    let mut data = Vec::with_capacity(20);
    data.extend_from_slice(META_MAGIC);
    data.extend_from_slice(&raw_floor.to_le_bytes());
    let crc = crc32fast::hash(&data);
    data.extend_from_slice(&crc.to_le_bytes());
    write_atomic(path, &data)
}

/// Registers a series in the (not yet shared) shards and index during open.
fn register(
    shards: &mut [Shard],
    index: &mut SeriesIndex,
    hasher: &DefaultHashBuilder,
    id: u64,
    key: SeriesKey,
    path: &Path,
) -> Result<()> {
    if let Some(e) = index.get(id) {
        if *e.key != key {
            return Err(TsdbError::corrupt(
                path,
                format!("series {id} is defined twice with different keys"),
            ));
        }
        return Ok(());
    }
    let enc = encode_key(&key);
    let hash = key_hash(hasher, &enc);
    let shard = shard_of(hash);
    if let Some(slot) = shards[shard].find(hash, &enc) {
        let other = shards[shard].series[slot as usize].id;
        return Err(TsdbError::corrupt(
            path,
            format!("series {key} has two ids ({other} and {id})"),
        ));
    }
    let key = Arc::new(key);
    let slot = shards[shard].insert(hash, id, enc);
    index.insert(
        id,
        SeriesEntry {
            key,
            shard: shard as u32,
            slot,
        },
    );
    Ok(())
}

/// Opens every block in `dir`; returns raw and rollup blocks and what was cleaned up.
fn load_blocks(dir: &Path, report: &mut OpenReport) -> Result<ReadState> {
    let mut st = ReadState::default();
    let rd = std::fs::read_dir(dir).map_err(|e| TsdbError::io(dir, e))?;
    let mut paths = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("tmp-") {
            remove_file(&entry.path())?;
        } else if name.ends_with(".blk") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    for path in paths {
        match Block::open(&path) {
            Ok(b) if b.meta.kind == KIND_ROLLUP => st.rollup.push(Arc::new(b)),
            Ok(b) if b.meta.kind == KIND_RAW => st.raw.push(Arc::new(b)),
            Ok(_) | Err(TsdbError::Corrupt { .. }) => {
                let to = path.with_extension("blk.corrupt");
                tracing::error!(block = %path.display(), "block fails its checks; set aside");
                std::fs::rename(&path, &to).map_err(|e| TsdbError::io(&path, e))?;
                report.quarantined_blocks.push(to);
            }
            Err(e) => return Err(e),
        }
    }
    // A compacted block supersedes every older block of its day; the newest rollup block
    // of a period supersedes older ones (each rewrite contains its predecessor).
    let mut newest_compacted: HashMap<i64, u64> = HashMap::new();
    for b in &st.raw {
        if b.meta.level == LEVEL_COMPACTED {
            let e = newest_compacted.entry(b.meta.range_start).or_insert(0);
            *e = (*e).max(b.meta.seq);
        }
    }
    let mut newest_rollup: HashMap<i64, u64> = HashMap::new();
    for b in &st.rollup {
        let e = newest_rollup.entry(b.meta.range_start).or_insert(0);
        *e = (*e).max(b.meta.seq);
    }
    let mut dead = Vec::new();
    st.raw.retain(|b| {
        let keep = newest_compacted
            .get(&b.meta.range_start)
            .is_none_or(|&s| b.meta.seq >= s);
        if !keep {
            dead.push(b.path.clone());
        }
        keep
    });
    st.rollup.retain(|b| {
        let keep = newest_rollup
            .get(&b.meta.range_start)
            .is_none_or(|&s| b.meta.seq >= s);
        if !keep {
            dead.push(b.path.clone());
        }
        keep
    });
    for p in &dead {
        remove_file(p)?;
    }
    if !dead.is_empty() {
        sync_dir(dir)?;
    }
    report.superseded_blocks = dead.len();
    st.sort();
    Ok(st)
}

impl Tsdb {
    /// Opens (or creates) a store in `dir`: loads the series catalog and the blocks,
    /// replays the WAL into the head (truncating a torn tail), and starts the WAL writer and,
    /// if enabled, the background thread. Blocking; call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Tsdb> {
        let dir = dir.as_ref().to_path_buf();
        let wal_dir = dir.join("wal");
        let blocks_dir = dir.join("blocks");
        ensure_dir(&dir)?;
        ensure_dir(&wal_dir)?;
        ensure_dir(&blocks_dir)?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| TsdbError::io(&lock_path, e))?;
        if fs4::FileExt::try_lock(&lock).is_err() {
            return Err(TsdbError::Locked(dir));
        }
        let mut report = OpenReport::default();
        let raw_floor = read_meta(&dir.join("meta")).unwrap_or(i64::MIN);
        let hasher = DefaultHashBuilder::default();
        let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::default()).collect();
        let mut index = SeriesIndex::default();

        let cat_path = dir.join("series.cat");
        let (catalog, cat_series) = Catalog::open(&cat_path)?;
        let mut in_catalog = vec![false; 0];
        for (id, key) in cat_series {
            let i = id as usize;
            if in_catalog.len() <= i {
                in_catalog.resize(i + 1, false);
            }
            in_catalog[i] = true;
            register(&mut shards, &mut index, &hasher, id, key, &cat_path)?;
        }

        let state = load_blocks(&blocks_dir, &mut report)?;
        let max_seq = state
            .raw
            .iter()
            .chain(&state.rollup)
            .map(|b| b.meta.seq)
            .max()
            .unwrap_or(0);
        let max_seq = max_seq.max(max_tmp_or_corrupt_seq(&blocks_dir));

        // Replay the WAL.
        let segments = list_segments(&wal_dir)?;
        let mut head_samples = 0usize;
        let mut unknown = 0u64;
        for (_, path) in &segments {
            let r = replay_segment(path, |kind, body| {
                match kind {
                    REC_SERIES => {
                        let (id, key) = decode_series_body(body)?;
                        register(&mut shards, &mut index, &hasher, id, key, path)?;
                    }
                    REC_SAMPLES => {
                        decode_samples_body(body, |id, s| {
                            report.wal_samples += 1;
                            if s.ts_ms < raw_floor {
                                return;
                            }
                            match index.get(id) {
                                Some(e) => {
                                    let head =
                                        &mut shards[e.shard as usize].series[e.slot as usize];
                                    if head.insert(s) {
                                        head_samples += 1;
                                    }
                                }
                                None => unknown += 1,
                            }
                        })?;
                    }
                    _ => {}
                }
                Ok(())
            })?;
            report.wal_records += r.records;
            report.wal_truncated_bytes += r.truncated_bytes;
        }
        report.wal_segments = segments.len();
        if unknown > 0 {
            tracing::warn!(samples = unknown, "WAL samples of unknown series skipped");
        }

        // Make the catalog hold every series before any WAL segment can be deleted.
        let mut catalog = catalog;
        let missing: Vec<(u64, Arc<SeriesKey>)> = index
            .iter()
            .filter(|(id, _)| !in_catalog.get(*id as usize).copied().unwrap_or(false))
            .map(|(id, k)| (id, Arc::clone(k)))
            .collect();
        catalog.append(missing.iter().map(|(id, k)| (*id, &**k)))?;
        let upto = index.next_id();

        let first_segment = segments.last().map(|s| s.0 + 1).unwrap_or(1);
        let wal = Wal::start(&wal_dir, first_segment)?;

        report.series = index.len();
        report.raw_blocks = state.raw.len();
        report.rollup_blocks = state.rollup.len();
        let inner = Arc::new(Inner {
            dir: dir.clone(),
            blocks_dir,
            opts: opts.clone(),
            hasher,
            shards: shards.into_iter().map(Mutex::new).collect(),
            index: RwLock::new(index),
            epoch: RwLock::new(()),
            state: RwLock::new(state),
            wal,
            catalog: Mutex::new(CatalogState { catalog, upto }),
            head_samples: AtomicUsize::new(head_samples),
            dropped: AtomicU64::new(0),
            raw_floor: AtomicI64::new(raw_floor),
            next_seq: AtomicU64::new(max_seq + 1),
            maint: Mutex::new(()),
            closed: AtomicBool::new(false),
            bg: Mutex::new(BgState::default()),
            bg_cv: Condvar::new(),
            bg_thread: Mutex::new(None),
            flush_wanted: AtomicBool::new(false),
            flush_done: tokio::sync::Notify::new(),
            open_report: report,
            rotor: AtomicUsize::new(0),
            store_tag: new_store_tag(),
            shapes: Mutex::new(Vec::new()),
            _lock: lock,
        });
        if opts.background {
            let bg_inner = Arc::clone(&inner);
            let handle = std::thread::Builder::new()
                .name("tsdb-maintenance".into())
                .spawn(move || background_loop(&bg_inner))
                .map_err(|e| TsdbError::io(&dir, e))?;
            *inner.bg_thread.lock() = Some(handle);
        }
        Ok(Tsdb { inner })
    }

    /// What opening found (replayed WAL, truncated bytes, quarantined blocks).
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.open_report
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Handles for `keys` (in their order), creating the series that do not exist yet, for
    /// [`Tsdb::append_refs`]. An ingest path that writes the same series again and again
    /// resolves each key once and keeps the handle. Blocking but quick (no I/O: new series
    /// definitions are queued to the WAL and become durable with the next append).
    pub fn resolve(&self, keys: &[SeriesKey]) -> Result<Vec<SeriesRef>> {
        self.inner.resolve(keys)
    }

    /// [`TimeSeriesStore::append`] through handles from [`Tsdb::resolve`]: one sample per
    /// entry (repeat a handle for several samples of one series). Returns when the samples
    /// are durable (synced to the WAL). Fails with [`TsdbError::InvalidSeries`], before
    /// storing anything, on a handle from another store.
    pub async fn append_refs(&self, samples: &[(SeriesRef, Sample)]) -> Result<()> {
        self.inner.append_refs(samples).await
    }

    /// Cuts the head into blocks now (blocking). See [`TimeSeriesStore::flush`].
    pub fn flush_now(&self) -> Result<FlushReport> {
        self.inner.flush()
    }

    /// Runs compaction and retention as of `now_ms` (blocking): every finished day with
    /// several blocks, or only a flushed one, becomes one compacted block plus its hourly
    /// rollups; raw days and rollup periods past retention are deleted.
    pub fn maintain_at(&self, now_ms: i64) -> Result<MaintenanceReport> {
        self.inner.maintain_at(now_ms)
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        let st = self.inner.state.read();
        let floor = self.inner.raw_floor.load(Ordering::Acquire);
        Stats {
            series: self.inner.index.read().len(),
            head_samples: self.inner.head_samples.load(Ordering::Relaxed),
            raw_blocks: st.raw.len(),
            rollup_blocks: st.rollup.len(),
            dropped_samples: self.inner.dropped.load(Ordering::Relaxed),
            raw_floor_ms: (floor != i64::MIN).then_some(floor),
        }
    }

    /// Bytes on disk by kind.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let st = self.inner.state.read().clone();
        Ok(DiskUsage {
            wal: dir_size(&self.inner.dir.join("wal"))?,
            raw_blocks: st.raw.iter().map(|b| b.bytes).sum(),
            rollup_blocks: st.rollup.iter().map(|b| b.bytes).sum(),
            catalog: std::fs::metadata(self.inner.dir.join("series.cat"))
                .map(|m| m.len())
                .unwrap_or(0),
        })
    }

    /// Stops the background thread and the WAL writer (blocking). Later appends fail with
    /// [`TsdbError::Closed`]; reads keep working.
    pub fn close_now(&self) {
        self.inner.close();
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        self.inner.close();
    }
}

/// Sequence numbers of leftover temporary or quarantined blocks, so new blocks never reuse
/// their names.
fn max_tmp_or_corrupt_seq(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.split('-').nth(1)?.split('.').next()?.to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .max()
        .unwrap_or(0)
}

fn background_loop(inner: &Inner) {
    let tick = Duration::from_millis(250);
    let mut last_flush = Instant::now();
    let mut last_maint: Option<Instant> = None;
    loop {
        {
            let mut bg = inner.bg.lock();
            if !bg.stop && !inner.flush_wanted.load(Ordering::Acquire) {
                inner.bg_cv.wait_for(&mut bg, tick);
            }
            if bg.stop {
                break;
            }
        }
        let wanted = inner.flush_wanted.swap(false, Ordering::AcqRel);
        let head = inner.head_samples.load(Ordering::Relaxed);
        if head > 0
            && (wanted
                || head >= inner.opts.max_head_samples
                || last_flush.elapsed() >= inner.opts.flush_interval)
        {
            if let Err(e) = inner.flush() {
                tracing::warn!(error = %e, "flushing the head failed; retrying");
            }
            last_flush = Instant::now();
            inner.flush_done.notify_waiters();
        } else if wanted {
            inner.flush_done.notify_waiters();
        }
        if last_maint.is_none_or(|t| t.elapsed() >= inner.opts.maintenance_interval) {
            if let Err(e) = inner.maintain_at(now_ms()) {
                tracing::warn!(error = %e, "time-series maintenance failed");
            }
            last_maint = Some(Instant::now());
        }
    }
}

/// A batch entry on its way to its shard.
#[derive(Clone, Copy)]
struct Item {
    /// The entry's first sample (all of it, for the usual single-sample entry).
    first: Sample,
    /// Position in the batch.
    index: u32,
    /// End of the encoded key in the batch's key buffer (it starts where the previous
    /// item's ends).
    end: u32,
    /// Samples in the entry.
    n: u32,
}

/// Batches with fewer entries are not worth a [`Shape`].
const SHAPE_MIN_ENTRIES: usize = 256;
/// Batches with more key bytes are not cached.
const SHAPE_MAX_BYTES: usize = 16 << 20;
/// Shapes kept (most recently used).
const SHAPES: usize = 4;

/// The series of a batch's keys, cached: an ingest path usually sends the same keys in the
/// same order again and again (every poll of the same devices). A batch whose keys equal a
/// cached shape's (compared in order with its encoded keys, in place) skips hashing and
/// looking up every key. Series never move or disappear while the store is open, so a shape
/// stays valid. Costs one encoded copy of the batch's keys per cached shape.
struct Shape {
    /// The keys of the entries with samples, encoded back to back.
    encs: Vec<u8>,
    /// Where each key ends in `encs`.
    ends: Vec<u32>,
    /// Entry positions, grouped by shard.
    order: Vec<u32>,
    /// Each shard's range in `order`.
    bounds: [u32; SHARDS + 1],
    /// The series' slot in its shard, per `order` position.
    slots: Vec<u32>,
}

/// Shards a concurrent appender's start is offset by (see [`Inner::for_shards`]).
const SHARD_STRIDE: usize = 13;

/// Orders `items` by shard (stably, by counting); returns them and each shard's bounds.
fn group_by_shard<T: Copy>(
    items: &[T],
    shard: impl Fn(&T) -> usize,
) -> (Vec<T>, [u32; SHARDS + 1]) {
    let mut bounds = [0u32; SHARDS + 1];
    let Some(&any) = items.first() else {
        return (Vec::new(), bounds);
    };
    let shards: Vec<u8> = items.iter().map(|it| shard(it) as u8).collect();
    for &s in &shards {
        bounds[s as usize + 1] += 1;
    }
    for i in 1..=SHARDS {
        bounds[i] += bounds[i - 1];
    }
    let mut fill = bounds;
    let mut order = vec![any; items.len()];
    for (it, &s) in items.iter().zip(&shards) {
        let at = &mut fill[s as usize];
        order[*at as usize] = *it;
        *at += 1;
    }
    (order, bounds)
}

/// Samples added to and dropped from the head by one append.
#[derive(Default)]
struct WriteStats {
    added: usize,
    dropped: u64,
    /// Room to reserve in a series' empty head (see [`Inner::write_stats`]).
    first_room: usize,
}

/// Inserts `(slot, samples)` entries into a locked shard's heads and encodes them as WAL
/// samples records into `buf` (in the same order). Samples older than `floor` are dropped.
fn write_entries<'a>(
    shard: &mut Shard,
    buf: &mut Vec<u8>,
    floor: i64,
    entries: impl ExactSizeIterator<Item = (u32, &'a [Sample])>,
    stats: &mut WriteStats,
) {
    buf.reserve(entries.len() * 16 + 64);
    let mut rec: Option<(SamplesRecord, usize)> = None;
    for (slot, samples) in entries {
        let Some(head) = shard.series.get_mut(slot as usize) else {
            continue;
        };
        head.reserve_first(stats.first_room);
        // Bounded records: a huge batch never makes a record the reader would refuse.
        for chunk in samples.chunks(MAX_SAMPLES_PER_ENTRY) {
            let keep = if chunk.iter().all(|s| s.ts_ms >= floor) {
                chunk.len()
            } else {
                chunk.iter().filter(|s| s.ts_ms >= floor).count()
            };
            stats.dropped += (chunk.len() - keep) as u64;
            let Some(first) = chunk.iter().find(|s| s.ts_ms >= floor) else {
                continue;
            };
            let (r, rec_start) = rec.get_or_insert_with(|| {
                let r = SamplesRecord::begin(buf, first.ts_ms);
                (r, buf.len())
            });
            if keep == 1 {
                r.single(buf, head.id, *first);
                stats.added += usize::from(head.insert(*first));
            } else {
                let mut prev = r.series_header(buf, head.id, keep);
                for s in chunk {
                    if s.ts_ms < floor {
                        continue;
                    }
                    stats.added += usize::from(head.insert(*s));
                    prev = SamplesRecord::sample(buf, prev, *s);
                }
            }
            if buf.len() - *rec_start > MAX_RECORD_BYTES {
                if let Some((r, _)) = rec.take() {
                    r.end(buf);
                }
            }
        }
    }
    if let Some((r, _)) = rec {
        r.end(buf);
    }
}

/// Chunks of one block for one query batch, read with few system calls.
struct BatchChunks {
    buf: Vec<u8>,
    /// Per series of the batch: `(start, len)` in `buf`.
    loc: Vec<Option<(usize, usize)>>,
}

impl BatchChunks {
    fn fetch(block: &Block, batch: &[Selected]) -> Result<BatchChunks> {
        let entries: Vec<Option<IndexEntry>> =
            batch.iter().map(|s| block.find(s.id).copied()).collect();
        let mut out = BatchChunks {
            buf: Vec::new(),
            loc: vec![None; batch.len()],
        };
        let present: Vec<(usize, IndexEntry)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (i, e)))
            .collect();
        let mut g = 0;
        while g < present.len() {
            // Grow a span of nearby chunks (offsets ascend with ids).
            let span_start = present[g].1.offset;
            let mut span_end = span_start + u64::from(present[g].1.len);
            let mut h = g + 1;
            while h < present.len() {
                let e = &present[h].1;
                let end = e.offset + u64::from(e.len);
                if e.offset < span_end
                    || e.offset - span_end > READ_GAP
                    || end - span_start > READ_SPAN
                {
                    break;
                }
                span_end = end;
                h += 1;
            }
            let base = out.buf.len();
            out.buf.resize(base + (span_end - span_start) as usize, 0);
            block.read_at(span_start, &mut out.buf[base..])?;
            for (i, e) in &present[g..h] {
                let start = base + (e.offset - span_start) as usize;
                let len = e.len as usize;
                block.verify(e, &out.buf[start..start + len])?;
                out.loc[*i] = Some((start, len));
            }
            g = h;
        }
        Ok(out)
    }

    fn get(&self, i: usize) -> Option<&[u8]> {
        self.loc[i].map(|(s, l)| &self.buf[s..s + l])
    }
}

/// What a query reads, fixed at its start.
struct Snapshot {
    raw: Vec<Arc<Block>>,
    frozen: Vec<Arc<Frozen>>,
    rollup: Vec<Arc<Block>>,
    heads: Vec<Vec<Sample>>,
    raw_lo: i64,
    hi: i64,
    rollup_lo: i64,
    rollup_hi: i64,
}

/// Per-task scratch buffers of a query.
#[derive(Default)]
struct Scratch {
    runs: Vec<Run>,
    merged: Run,
    tmp: Run,
    rows: Rows,
    tmp_rows: Rows,
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        if let Some(f) = self.wal.failed() {
            return Err(TsdbError::WalFailed(f.to_string()));
        }
        Ok(())
    }

    fn alloc_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::AcqRel)
    }

    fn request_flush(&self) {
        if !self.flush_wanted.swap(true, Ordering::AcqRel) {
            let _g = self.bg.lock();
            self.bg_cv.notify_all();
        }
    }

    /// Waits while the head is over its hard limit (back-pressure on a flush that cannot
    /// keep up).
    async fn admit(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.background {
            let hard = self.opts.max_head_samples.saturating_mul(4);
            while self.head_samples.load(Ordering::Relaxed) >= hard {
                let notified = self.flush_done.notified();
                self.request_flush();
                if self.head_samples.load(Ordering::Relaxed) < hard {
                    break;
                }
                notified.await;
                self.check_open()?;
            }
        }
        Ok(())
    }

    /// After an append: asks for a flush when the head is full, then waits for the WAL.
    async fn finish_append(&self, seq: Option<u64>) -> Result<()> {
        if self.head_samples.load(Ordering::Relaxed) >= self.opts.max_head_samples
            && self.opts.background
        {
            self.request_flush();
        }
        match seq {
            Some(seq) => self.wal.wait_durable(seq).await,
            None => Ok(()),
        }
    }

    async fn append(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<()> {
        self.admit().await?;
        let seq = self.append_sync(batch)?;
        self.finish_append(seq).await
    }

    async fn append_refs(&self, batch: &[(SeriesRef, Sample)]) -> Result<()> {
        self.admit().await?;
        let seq = self.append_refs_sync(batch)?;
        self.finish_append(seq).await
    }

    /// Runs `f` on every shard `s` with work (`bounds[s] < bounds[s + 1]`), each under its
    /// lock, and queues the WAL bytes `f` encodes while the shard is still locked, so that
    /// head order and WAL order of every series agree. Concurrent appenders start at
    /// different shards and pass over shards that are busy, so they do not queue behind
    /// each other. The WAL writer is woken once, at the end. Returns the WAL sequence to
    /// wait for.
    ///
    /// `f` must fail only before it changes the shard (its bytes are not queued then).
    fn for_shards(
        &self,
        bounds: &[u32; SHARDS + 1],
        mut f: impl FnMut(usize, &mut Shard, &mut Vec<u8>) -> Result<()>,
    ) -> Result<Option<u64>> {
        let _epoch = self.epoch.read();
        self.check_open()?;
        let first = self
            .rotor
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(SHARD_STRIDE);
        let mut pending = [0u8; SHARDS];
        let mut n = 0;
        for i in 0..SHARDS {
            let s = first.wrapping_add(i) % SHARDS;
            if bounds[s] < bounds[s + 1] {
                pending[n] = s as u8;
                n += 1;
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut last = None;
        let mut run = |s: usize, shard: &mut Shard| -> Result<()> {
            buf.clear();
            f(s, shard, &mut buf)?;
            if !buf.is_empty() {
                last = Some(self.wal.submit_quiet(&buf)?);
            }
            Ok(())
        };
        let mut result = Ok(());
        'outer: while n > 0 {
            let mut i = 0;
            let mut progressed = false;
            while i < n {
                let s = pending[i] as usize;
                if let Some(mut shard) = self.shards[s].try_lock() {
                    if let Err(e) = run(s, &mut shard) {
                        result = Err(e);
                        break 'outer;
                    }
                    pending.copy_within(i + 1..n, i);
                    n -= 1;
                    progressed = true;
                } else {
                    i += 1;
                }
            }
            if !progressed {
                // Everything left is busy: queue for the first one.
                let s = pending[0] as usize;
                let mut shard = self.shards[s].lock();
                if let Err(e) = run(s, &mut shard) {
                    result = Err(e);
                    break 'outer;
                }
                pending.copy_within(1..n, 0);
                n -= 1;
            }
        }
        drop(_epoch);
        if last.is_some() {
            // Also after an error: what was queued is in the head and must reach the disk.
            self.wal.kick();
        }
        result.map(|()| last)
    }

    /// Updates the head and queues the WAL records; returns the WAL sequence to wait for.
    fn append_sync(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<Option<u64>> {
        fn samples_of<'a>(batch: &'a [(SeriesKey, Vec<Sample>)], it: &'a Item) -> &'a [Sample] {
            if it.n == 1 {
                std::slice::from_ref(&it.first)
            } else {
                &batch[it.index as usize].1
            }
        }
        let floor = self.raw_floor.load(Ordering::Acquire);
        let mut stats = self.write_stats(batch.len());
        if let Some((shape, items)) = self.match_shape(batch) {
            // The same keys as an earlier batch: their series are known, no lookups.
            let last_seq = self.for_shards(&shape.bounds, |shard_i, shard, buf| {
                let range = shape.bounds[shard_i] as usize..shape.bounds[shard_i + 1] as usize;
                let entries = shape.order[range.clone()]
                    .iter()
                    .zip(&shape.slots[range])
                    .map(|(&p, &slot)| (slot, samples_of(batch, &items[p as usize])));
                write_entries(shard, buf, floor, entries, &mut stats);
                Ok(())
            });
            self.account(stats);
            return last_seq;
        }
        // One pass over the batch, in its order: encode (and check) each key into one
        // buffer and copy the sample of single-sample entries, so that the per-shard pass
        // below does not go back to the batch. Nothing changes before every key has passed.
        let mut encs: Vec<u8> = Vec::with_capacity(batch.len() * 96);
        let mut items: Vec<Item> = Vec::with_capacity(batch.len());
        for (i, (key, samples)) in batch.iter().enumerate() {
            let Some(&first) = samples.first() else {
                continue;
            };
            encode_key_into(key, &mut encs)?;
            items.push(Item {
                first,
                index: i as u32,
                end: encs.len() as u32,
                n: samples.len() as u32,
            });
        }
        let last_seq = {
            let mut start = 0usize;
            let hashes: Vec<u64> = items
                .iter()
                .map(|it| {
                    let h = key_hash(&self.hasher, &encs[start..it.end as usize]);
                    start = it.end as usize;
                    h
                })
                .collect();
            let positions: Vec<u32> = (0..items.len() as u32).collect();
            let (order, bounds) = group_by_shard(&positions, |&p| shard_of(hashes[p as usize]));
            drop(positions);
            let mut slots: Vec<u32> = vec![0; order.len()];
            let result = self.for_shards(&bounds, |shard_i, shard, buf| {
                let range = bounds[shard_i] as usize..bounds[shard_i + 1] as usize;
                for (&p, slot) in order[range.clone()].iter().zip(&mut slots[range.clone()]) {
                    let p = p as usize;
                    let start = if p == 0 { 0 } else { items[p - 1].end as usize };
                    let enc = &encs[start..items[p].end as usize];
                    let hash = hashes[p];
                    *slot = match shard.find(hash, enc) {
                        Some(s) => s,
                        None => self.create_series(
                            shard,
                            shard_i,
                            hash,
                            &batch[items[p].index as usize].0,
                            enc,
                            buf,
                        ),
                    };
                }
                let entries = order[range.clone()]
                    .iter()
                    .zip(&slots[range])
                    .map(|(&p, &slot)| (slot, samples_of(batch, &items[p as usize])));
                write_entries(shard, buf, floor, entries, &mut stats);
                Ok(())
            });
            if result.is_ok() {
                self.remember_shape(encs, &items, order, bounds, slots);
            }
            result
        };
        self.account(stats);
        last_seq
    }

    /// The cached shape of a batch with exactly these keys, if any, and the batch's items.
    /// The keys are compared with the shape's encoded keys in place (nothing is encoded; a
    /// different batch usually differs in its first keys).
    fn match_shape(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Option<(Arc<Shape>, Vec<Item>)> {
        let entries = batch.iter().filter(|(_, s)| !s.is_empty()).count();
        if entries < SHAPE_MIN_ENTRIES {
            return None;
        }
        let candidates: Vec<Arc<Shape>> = self
            .shapes
            .lock()
            .iter()
            .filter(|s| s.ends.len() == entries)
            .cloned()
            .collect();
        let mut items: Vec<Item> = Vec::with_capacity(entries);
        let found = candidates.into_iter().find(|shape| {
            items.clear();
            let mut start = 0usize;
            let mut ends = shape.ends.iter();
            for (i, (key, samples)) in batch.iter().enumerate() {
                let Some(&first) = samples.first() else {
                    continue;
                };
                let Some(&end) = ends.next() else {
                    return false;
                };
                let Some(enc) = shape.encs.get(start..end as usize) else {
                    return false;
                };
                if !key_matches(key, enc) {
                    return false;
                }
                start = end as usize;
                items.push(Item {
                    first,
                    index: i as u32,
                    end,
                    n: samples.len() as u32,
                });
            }
            true
        })?;
        let mut shapes = self.shapes.lock();
        if let Some(i) = shapes.iter().position(|s| Arc::ptr_eq(s, &found)) {
            // Most recently used first.
            shapes[..=i].rotate_right(1);
        }
        Some((found, items))
    }

    /// Caches the shape of a batch whose series were just looked up.
    fn remember_shape(
        &self,
        encs: Vec<u8>,
        items: &[Item],
        order: Vec<u32>,
        bounds: [u32; SHARDS + 1],
        slots: Vec<u32>,
    ) {
        if items.len() < SHAPE_MIN_ENTRIES || encs.len() > SHAPE_MAX_BYTES {
            return;
        }
        let shape = Arc::new(Shape {
            encs,
            ends: items.iter().map(|it| it.end).collect(),
            order,
            bounds,
            slots,
        });
        let mut shapes = self.shapes.lock();
        shapes.insert(0, shape);
        shapes.truncate(SHAPES);
    }

    /// [`Inner::append_sync`] for series handles.
    fn append_refs_sync(&self, batch: &[(SeriesRef, Sample)]) -> Result<Option<u64>> {
        let floor = self.raw_floor.load(Ordering::Acquire);
        for (r, _) in batch {
            self.check_ref(r)?;
        }
        let (order, bounds) = group_by_shard(batch, |(r, _)| r.shard());
        let mut stats = self.write_stats(batch.len());
        let last_seq = self.for_shards(&bounds, |shard_i, shard, buf| {
            let entries = &order[bounds[shard_i] as usize..bounds[shard_i + 1] as usize];
            // Check every handle before changing anything (this pass also brings the
            // series' heads into the cache, many at a time).
            for (r, _) in entries {
                if shard.series.get(r.slot as usize).map(|h| h.id) != Some(r.id) {
                    return Err(TsdbError::InvalidSeries(format!(
                        "series handle {r:?} does not belong to this store"
                    )));
                }
            }
            let entries = entries
                .iter()
                .map(|(r, s)| (r.slot, std::slice::from_ref(s)));
            write_entries(shard, buf, floor, entries, &mut stats);
            Ok(())
        });
        self.account(stats);
        last_seq
    }

    /// Counters for one append. A series' first sample after a flush (or ever) reserves
    /// room for its share of the head, so that series filled in step do not all reallocate
    /// together (after a flush, the flush has already made room for what they had).
    /// `entries`: the batch's length (a batch that creates its series counts them).
    fn write_stats(&self, entries: usize) -> WriteStats {
        let series = self.index.read().len().max(entries).max(1);
        WriteStats {
            // A quarter more than the share: the flush starts a little after the head is
            // full.
            first_room: (self.opts.max_head_samples / series * 5 / 4).clamp(4, 1024),
            ..WriteStats::default()
        }
    }

    fn account(&self, stats: WriteStats) {
        if stats.added > 0 {
            self.head_samples.fetch_add(stats.added, Ordering::Relaxed);
        }
        if stats.dropped > 0 {
            self.dropped.fetch_add(stats.dropped, Ordering::Relaxed);
        }
    }

    fn check_ref(&self, r: &SeriesRef) -> Result<()> {
        if r.tag >> 8 != self.store_tag || r.shard() >= SHARDS {
            return Err(TsdbError::InvalidSeries(format!(
                "series handle {r:?} does not belong to this store"
            )));
        }
        Ok(())
    }

    /// Handles for `keys`, creating the series that do not exist yet.
    fn resolve(&self, keys: &[SeriesKey]) -> Result<Vec<SeriesRef>> {
        self.check_open()?;
        let mut encs: Vec<u8> = Vec::with_capacity(keys.len() * 96);
        let mut items: Vec<(u64, u32, u32, u32)> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let start = encs.len();
            encode_key_into(key, &mut encs)?;
            let hash = key_hash(&self.hasher, &encs[start..]);
            items.push((hash, i as u32, start as u32, encs.len() as u32));
        }
        let (order, bounds) = group_by_shard(&items, |it| shard_of(it.0));
        let mut out = vec![
            SeriesRef {
                id: 0,
                slot: 0,
                tag: 0
            };
            keys.len()
        ];
        self.for_shards(&bounds, |shard_i, shard, buf| {
            for &(hash, i, start, end) in
                &order[bounds[shard_i] as usize..bounds[shard_i + 1] as usize]
            {
                let enc = &encs[start as usize..end as usize];
                let slot = match shard.find(hash, enc) {
                    Some(s) => s,
                    None => self.create_series(shard, shard_i, hash, &keys[i as usize], enc, buf),
                };
                let id = shard
                    .series
                    .get(slot as usize)
                    .map(|h| h.id)
                    .unwrap_or(u64::MAX);
                out[i as usize] = SeriesRef {
                    id,
                    slot,
                    tag: (self.store_tag << 8) | shard_i as u32,
                };
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Creates a series inside its (locked) shard and queues its definition record.
    fn create_series(
        &self,
        shard: &mut Shard,
        shard_i: usize,
        hash: u64,
        key: &SeriesKey,
        enc: &[u8],
        buf: &mut Vec<u8>,
    ) -> u32 {
        let key = Arc::new(key.clone());
        let mut index = self.index.write();
        let id = index.next_id();
        let slot = shard.insert(hash, id, enc.into());
        index.insert(
            id,
            SeriesEntry {
                key: Arc::clone(&key),
                shard: shard_i as u32,
                slot,
            },
        );
        drop(index);
        put_series_record(buf, id, &key);
        slot
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        {
            let mut bg = self.bg.lock();
            bg.stop = true;
        }
        self.bg_cv.notify_all();
        let handle = self.bg_thread.lock().take();
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("the time-series maintenance thread panicked");
            }
        }
        self.wal.shutdown();
        self.flush_done.notify_waiters();
    }

    // ---- flush ----

    fn flush(&self) -> Result<FlushReport> {
        let _m = self.maint.lock();
        // The next head of a series most likely grows as large as this one: allocate that
        // room now, before the exclusive lock (fresh memory costs page faults, and the
        // freeze below must stay short), instead of reallocating it step by step later.
        let spare: Vec<Vec<(u32, Vec<Sample>)>> = self
            .shards
            .iter()
            .map(|shard| {
                let lens: Vec<(u32, usize)> = shard
                    .lock()
                    .series
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| !h.samples().is_empty())
                    .map(|(slot, h)| (slot as u32, h.samples().len()))
                    .collect();
                lens.into_iter()
                    .map(|(slot, n)| (slot, Vec::with_capacity(n + n / 8)))
                    .collect()
            })
            .collect();
        let rotate_to = {
            let _w = self.epoch.write();
            let mut series = Vec::new();
            for (shard, spare) in self.shards.iter().zip(spare) {
                let mut sh = shard.lock();
                let mut spare = spare.into_iter().peekable();
                for (slot, h) in sh.series.iter_mut().enumerate() {
                    let next = spare
                        .next_if(|(s, _)| *s as usize == slot)
                        .map(|(_, v)| v)
                        .unwrap_or_default();
                    if !h.samples().is_empty() {
                        series.push((h.id, h.take(next)));
                    }
                }
            }
            self.head_samples.store(0, Ordering::Relaxed);
            let mut st = self.state.write();
            if series.is_empty() && st.frozen.is_empty() {
                return Ok(FlushReport::default());
            }
            if !series.is_empty() {
                series.sort_unstable_by_key(|(id, _)| *id);
                st.frozen.push(Arc::new(Frozen { series }));
            }
            drop(st);
            self.wal.rotate()?
        };
        let frozen = self.state.read().frozen.clone();
        let (blocks, report) = self.write_flushed(&frozen)?;
        self.persist_catalog()?;
        {
            let mut st = self.state.write();
            st.raw.extend(blocks.into_iter().map(Arc::new));
            st.frozen
                .retain(|f| !frozen.iter().any(|g| Arc::ptr_eq(f, g)));
            st.sort();
        }
        // The frozen heads are freed here, outside the lock.
        drop(frozen);
        self.wal.wait_segment(rotate_to)?;
        self.wal.remove_segments_below(rotate_to)?;
        Ok(report)
    }

    fn write_flushed(&self, frozen: &[Arc<Frozen>]) -> Result<(Vec<Block>, FlushReport)> {
        let floor = self.raw_floor.load(Ordering::Acquire);
        let mut ids: Vec<u64> = frozen
            .iter()
            .flat_map(|f| f.series.iter().map(|(id, _)| *id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        type Encoded = (i64, u64, i64, i64, u32, Vec<u8>);
        let encoded: Vec<Vec<Encoded>> = ids
            .par_chunks(256)
            .map(|chunk| -> Result<Vec<Encoded>> {
                let mut out = Vec::new();
                let mut runs: Vec<Run> = vec![Run::default(); frozen.len()];
                let (mut merged, mut tmp, mut part) =
                    (Run::default(), Run::default(), Run::default());
                for &id in chunk {
                    let mut n = 0;
                    for f in frozen {
                        if let Some(s) = f.get(id) {
                            runs[n].clear();
                            runs[n].extend_samples(s);
                            n += 1;
                        }
                    }
                    merge_runs(&runs[..n], &mut merged, &mut tmp);
                    merged.clip(floor, i64::MAX);
                    let mut a = 0;
                    while a < merged.ts.len() {
                        let day = day_of(merged.ts[a]);
                        let b = a + merged.ts[a..].partition_point(|&t| t < day + DAY_MS);
                        part.clear();
                        part.ts.extend_from_slice(&merged.ts[a..b]);
                        part.vals.extend_from_slice(&merged.vals[a..b]);
                        let mut bytes = Vec::new();
                        encode_raw(&part, FLUSH_CODEC, &mut bytes)?;
                        out.push((
                            day,
                            id,
                            part.ts[0],
                            part.ts[b - a - 1],
                            (b - a) as u32,
                            bytes,
                        ));
                        a = b;
                    }
                }
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut writers: BTreeMap<i64, BlockWriter> = BTreeMap::new();
        let mut report = FlushReport::default();
        for batch in &encoded {
            let mut last_id = None;
            for (day, id, min, max, count, bytes) in batch {
                if !writers.contains_key(day) {
                    let w = BlockWriter::create(
                        &self.blocks_dir,
                        KIND_RAW,
                        LEVEL_FLUSHED,
                        self.alloc_seq(),
                        *day,
                        day + DAY_MS,
                    )?;
                    writers.insert(*day, w);
                }
                if let Some(w) = writers.get_mut(day) {
                    w.add(*id, *min, *max, *count, bytes)?;
                }
                report.samples += u64::from(*count);
                if last_id != Some(*id) {
                    report.series += 1;
                    last_id = Some(*id);
                }
            }
        }
        let mut blocks = Vec::with_capacity(writers.len());
        for (_, w) in writers {
            blocks.push(w.finish()?);
        }
        report.blocks = blocks.len();
        Ok((blocks, report))
    }

    fn persist_catalog(&self) -> Result<()> {
        let mut cat = self.catalog.lock();
        let items: Vec<(u64, Arc<SeriesKey>)> = {
            let idx = self.index.read();
            if idx.next_id() <= cat.upto {
                return Ok(());
            }
            idx.iter()
                .filter(|(id, _)| *id >= cat.upto)
                .map(|(id, k)| (id, Arc::clone(k)))
                .collect()
        };
        let next = items.last().map(|(id, _)| id + 1).unwrap_or(cat.upto);
        cat.catalog
            .append(items.iter().map(|(id, k)| (*id, &**k)))?;
        cat.upto = next;
        Ok(())
    }

    // ---- compaction and retention ----

    fn maintain_at(&self, now: i64) -> Result<MaintenanceReport> {
        let _m = self.maint.lock();
        let mut report = MaintenanceReport::default();
        let floor = self.raw_floor.load(Ordering::Acquire);
        let delay = ms(self.opts.compaction_delay);
        let mut days: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
        for b in &self.state.read().raw {
            days.entry(b.meta.range_start)
                .or_default()
                .push(Arc::clone(b));
        }
        for (day, mut blocks) in days {
            if day < floor || (day + DAY_MS).saturating_add(delay) > now {
                continue;
            }
            if blocks.len() == 1 && blocks[0].meta.level == LEVEL_COMPACTED {
                continue;
            }
            blocks.sort_by_key(|b| b.meta.seq);
            self.compact_day(day, &blocks)?;
            report.compacted_days += 1;
        }

        // Retention.
        let raw_cut = day_of(now.saturating_sub(ms(self.opts.raw_retention)));
        if raw_cut > floor {
            write_meta(&self.dir.join("meta"), raw_cut)?;
            self.raw_floor.store(raw_cut, Ordering::Release);
        }
        let floor = self.raw_floor.load(Ordering::Acquire);
        let rollup_cut = now.saturating_sub(ms(self.opts.rollup_retention));
        let mut dead = Vec::new();
        {
            let mut st = self.state.write();
            st.raw.retain(|b| {
                let keep = b.meta.range_end > floor;
                if !keep {
                    dead.push(b.path.clone());
                    report.removed_raw_blocks += 1;
                }
                keep
            });
            st.rollup.retain(|b| {
                let keep = b.meta.range_end > rollup_cut;
                if !keep {
                    dead.push(b.path.clone());
                    report.removed_rollup_blocks += 1;
                }
                keep
            });
        }
        for p in &dead {
            remove_file(p)?;
        }
        if !dead.is_empty() {
            sync_dir(&self.blocks_dir)?;
        }
        report.raw_floor_ms = (floor != i64::MIN).then_some(floor);
        Ok(report)
    }

    fn compact_day(&self, day: i64, inputs: &[Arc<Block>]) -> Result<()> {
        let mut ids: Vec<u64> = inputs
            .iter()
            .flat_map(|b| b.index.iter().map(|e| e.series))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut writer = BlockWriter::create(
            &self.blocks_dir,
            KIND_RAW,
            LEVEL_COMPACTED,
            self.alloc_seq(),
            day,
            day + DAY_MS,
        )?;
        let mut new_rows: Vec<(u64, Rows)> = Vec::new();
        type Out = Option<(u64, i64, i64, u32, Vec<u8>, Rows)>;
        for chunk in ids.chunks(COMPACT_BATCH) {
            let encoded: Vec<Out> = chunk
                .par_iter()
                .map_init(
                    || {
                        (
                            Vec::new(),
                            vec![Run::default(); inputs.len()],
                            Run::default(),
                            Run::default(),
                        )
                    },
                    |(buf, runs, merged, tmp), &id| -> Result<Out> {
                        let mut n = 0;
                        for b in inputs {
                            if let Some(e) = b.find(id) {
                                b.read_chunk(e, buf)?;
                                decode_raw(buf, &mut runs[n])
                                    .map_err(|err| TsdbError::corrupt(&b.path, err.to_string()))?;
                                runs[n].clip(day, day + DAY_MS - 1);
                                n += 1;
                            }
                        }
                        merge_runs(&runs[..n], merged, tmp);
                        let (Some(&min), Some(&max)) = (merged.ts.first(), merged.ts.last()) else {
                            return Ok(None);
                        };
                        let mut bytes = Vec::new();
                        encode_raw(merged, COMPACT_CODEC, &mut bytes)?;
                        let rows = Rows::from_run(merged);
                        Ok(Some((id, min, max, merged.ts.len() as u32, bytes, rows)))
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            for (id, min, max, count, bytes, rows) in encoded.into_iter().flatten() {
                writer.add(id, min, max, count, &bytes)?;
                new_rows.push((id, rows));
            }
        }
        let new_raw = if writer.is_empty() {
            None
        } else {
            Some(writer.finish()?)
        };
        let period = day.div_euclid(ROLLUP_PERIOD_MS) * ROLLUP_PERIOD_MS;
        let existing = self
            .state
            .read()
            .rollup
            .iter()
            .find(|b| b.meta.range_start == period)
            .cloned();
        let new_rollup = self.write_rollup(period, existing.as_deref(), day, &new_rows)?;
        {
            let mut st = self.state.write();
            st.raw.retain(|b| !inputs.iter().any(|i| Arc::ptr_eq(i, b)));
            if let Some(b) = new_raw {
                st.raw.push(Arc::new(b));
            }
            if let Some(old) = &existing {
                st.rollup.retain(|b| !Arc::ptr_eq(b, old));
            }
            if let Some(r) = new_rollup {
                st.rollup.push(Arc::new(r));
            }
            st.sort();
        }
        for b in inputs {
            remove_file(&b.path)?;
        }
        if let Some(old) = existing {
            remove_file(&old.path)?;
        }
        sync_dir(&self.blocks_dir)
    }

    /// Writes the rollup block of `period`: the existing block's rows, with those of `day`
    /// replaced by `new_rows` (ascending series id).
    fn write_rollup(
        &self,
        period: i64,
        existing: Option<&Block>,
        day: i64,
        new_rows: &[(u64, Rows)],
    ) -> Result<Option<Block>> {
        enum Item<'a> {
            Keep(&'a IndexEntry),
            New(u64, &'a Rows),
            Merge(&'a IndexEntry, &'a Rows),
        }
        let ex: &[IndexEntry] = existing.map(|b| b.index.as_slice()).unwrap_or(&[]);
        let mut items = Vec::with_capacity(ex.len().max(new_rows.len()));
        let (mut i, mut j) = (0, 0);
        while i < ex.len() || j < new_rows.len() {
            match (ex.get(i), new_rows.get(j)) {
                (Some(e), Some((id, rows))) if e.series == *id => {
                    items.push(Item::Merge(e, rows));
                    i += 1;
                    j += 1;
                }
                (Some(e), Some((id, _))) if e.series < *id => {
                    items.push(Item::Keep(e));
                    i += 1;
                }
                (Some(e), None) => {
                    items.push(Item::Keep(e));
                    i += 1;
                }
                (_, Some((id, rows))) => {
                    items.push(Item::New(*id, rows));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let mut writer = BlockWriter::create(
            &self.blocks_dir,
            KIND_ROLLUP,
            LEVEL_COMPACTED,
            self.alloc_seq(),
            period,
            period + ROLLUP_PERIOD_MS,
        )?;
        type Out = (u64, i64, i64, u32, Vec<u8>);
        for chunk in items.chunks(COMPACT_BATCH) {
            let encoded: Vec<Out> = chunk
                .par_iter()
                .map_init(
                    || (Vec::new(), Rows::default()),
                    |(buf, old), item| -> Result<Out> {
                        match item {
                            Item::Keep(e) => {
                                let b = existing.ok_or_else(|| {
                                    TsdbError::Internal("rollup entry without block".into())
                                })?;
                                let mut bytes = Vec::new();
                                b.read_chunk(e, &mut bytes)?;
                                Ok((e.series, e.min_ts, e.max_ts, e.count, bytes))
                            }
                            Item::New(id, rows) => {
                                let mut bytes = Vec::new();
                                encode_rollup(rows, COMPACT_CODEC, &mut bytes)?;
                                let (min, max) = (
                                    rows.ts.first().copied().unwrap_or(day),
                                    rows.ts.last().copied().unwrap_or(day),
                                );
                                Ok((*id, min, max, rows.len() as u32, bytes))
                            }
                            Item::Merge(e, rows) => {
                                let b = existing.ok_or_else(|| {
                                    TsdbError::Internal("rollup entry without block".into())
                                })?;
                                b.read_chunk(e, buf)?;
                                decode_rollup(buf, old)
                                    .map_err(|err| TsdbError::corrupt(&b.path, err.to_string()))?;
                                let mut merged = Rows::default();
                                let mut k = 0;
                                while k < old.len() && old.ts[k] < day {
                                    merged.push(old.ts[k], old.acc(k));
                                    k += 1;
                                }
                                for r in 0..rows.len() {
                                    merged.push(rows.ts[r], rows.acc(r));
                                }
                                while k < old.len() {
                                    if old.ts[k] >= day + DAY_MS {
                                        merged.push(old.ts[k], old.acc(k));
                                    }
                                    k += 1;
                                }
                                let mut bytes = Vec::new();
                                encode_rollup(&merged, COMPACT_CODEC, &mut bytes)?;
                                let (min, max) = (
                                    merged.ts.first().copied().unwrap_or(day),
                                    merged.ts.last().copied().unwrap_or(day),
                                );
                                Ok((e.series, min, max, merged.len() as u32, bytes))
                            }
                        }
                    },
                )
                .collect::<Result<Vec<_>>>()?;
            for (id, min, max, count, bytes) in encoded {
                if count > 0 {
                    writer.add(id, min, max, count, &bytes)?;
                }
            }
        }
        if writer.is_empty() {
            return Ok(None);
        }
        writer.finish().map(Some)
    }

    // ---- queries ----

    fn select(&self, selector: &Selector) -> Result<Vec<Selected>> {
        let compiled = selector.compile()?;
        Ok(self.index.read().select(&compiled))
    }

    fn snapshot(&self, selected: &[Selected], lo: i64, hi: i64, rollups: bool) -> Snapshot {
        let floor = self.raw_floor.load(Ordering::Acquire);
        let raw_lo = lo.max(floor);
        let rollup_lo = lo;
        let rollup_hi = if rollups {
            hi.min(floor.saturating_sub(1))
        } else {
            i64::MIN
        };
        let _e = self.epoch.read();
        let st = self.state.read();
        let raw: Vec<Arc<Block>> = if raw_lo <= hi {
            let mut v: Vec<Arc<Block>> = st
                .raw
                .iter()
                .filter(|b| b.overlaps(raw_lo, hi))
                .cloned()
                .collect();
            v.sort_by_key(|b| b.meta.seq);
            v
        } else {
            Vec::new()
        };
        let frozen = if raw_lo <= hi {
            st.frozen.clone()
        } else {
            Vec::new()
        };
        let rollup: Vec<Arc<Block>> = if rollup_lo <= rollup_hi {
            st.rollup
                .iter()
                .filter(|b| b.overlaps(rollup_lo, rollup_hi))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        drop(st);
        let mut heads = vec![Vec::new(); selected.len()];
        if raw_lo <= hi {
            let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
            for (i, s) in selected.iter().enumerate() {
                if let Some(v) = by_shard.get_mut(s.shard as usize) {
                    v.push(i);
                }
            }
            for (sh, idxs) in by_shard.iter().enumerate() {
                if idxs.is_empty() {
                    continue;
                }
                let g = self.shards[sh].lock();
                for &i in idxs {
                    if let Some(h) = g.series.get(selected[i].slot as usize) {
                        heads[i] = range(h.samples(), raw_lo, hi).to_vec();
                    }
                }
            }
        }
        Snapshot {
            raw,
            frozen,
            rollup,
            heads,
            raw_lo,
            hi,
            rollup_lo,
            rollup_hi,
        }
    }

    /// Runs `f` for every selected series, in parallel batches, with its merged raw
    /// samples and its rollup rows (only before the raw floor).
    fn scan<T, I, F>(&self, selected: &[Selected], snap: &Snapshot, init: I, f: F) -> Result<Vec<T>>
    where
        T: Send,
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, &Run, &Rows) -> Result<()> + Sync,
    {
        // One accumulator per rayon split (not per batch): group accumulators can be large.
        selected
            .par_chunks(QUERY_BATCH)
            .enumerate()
            .try_fold(
                || (init(), Scratch::default()),
                |(mut t, mut sc), (ci, batch)| -> Result<(T, Scratch)> {
                    let base = ci * QUERY_BATCH;
                    let raw: Vec<BatchChunks> = snap
                        .raw
                        .iter()
                        .map(|b| BatchChunks::fetch(b, batch))
                        .collect::<Result<_>>()?;
                    let roll: Vec<BatchChunks> = snap
                        .rollup
                        .iter()
                        .map(|b| BatchChunks::fetch(b, batch))
                        .collect::<Result<_>>()?;
                    sc.runs
                        .resize_with(snap.raw.len() + snap.frozen.len() + 1, Run::default);
                    for (j, sel) in batch.iter().enumerate() {
                        let mut n = 0;
                        for (bi, bc) in raw.iter().enumerate() {
                            if let Some(bytes) = bc.get(j) {
                                decode_raw(bytes, &mut sc.runs[n]).map_err(|e| {
                                    TsdbError::corrupt(&snap.raw[bi].path, e.to_string())
                                })?;
                                sc.runs[n].clip(snap.raw_lo, snap.hi);
                                n += 1;
                            }
                        }
                        for fz in &snap.frozen {
                            if let Some(s) = fz.get(sel.id) {
                                let s = range(s, snap.raw_lo, snap.hi);
                                if !s.is_empty() {
                                    sc.runs[n].clear();
                                    sc.runs[n].extend_samples(s);
                                    n += 1;
                                }
                            }
                        }
                        let head = &snap.heads[base + j];
                        if !head.is_empty() {
                            sc.runs[n].clear();
                            sc.runs[n].extend_samples(head);
                            n += 1;
                        }
                        sc.rows.clear();
                        for (ri, rc) in roll.iter().enumerate() {
                            if let Some(bytes) = rc.get(j) {
                                decode_rollup(bytes, &mut sc.tmp_rows).map_err(|e| {
                                    TsdbError::corrupt(&snap.rollup[ri].path, e.to_string())
                                })?;
                                sc.tmp_rows.retain_range(snap.rollup_lo, snap.rollup_hi);
                                for r in 0..sc.tmp_rows.len() {
                                    sc.rows.push(sc.tmp_rows.ts[r], sc.tmp_rows.acc(r));
                                }
                            }
                        }
                        let data: &Run = if n == 1 {
                            &sc.runs[0]
                        } else {
                            merge_runs(&sc.runs[..n], &mut sc.merged, &mut sc.tmp);
                            &sc.merged
                        };
                        f(&mut t, base + j, data, &sc.rows)?;
                    }
                    Ok((t, sc))
                },
            )
            .map(|r| r.map(|(t, _)| t))
            .collect()
    }

    fn query_range(
        &self,
        selector: &Selector,
        start: i64,
        end: i64,
        step: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>> {
        let selected = self.select(selector)?;
        let mut results: Vec<(usize, Vec<Sample>)> = if agg == Aggregation::Raw {
            if end < start {
                return Err(TsdbError::InvalidQuery("end is before start".into()));
            }
            let snap = self.snapshot(&selected, start, end, false);
            self.scan(&selected, &snap, Vec::new, |out, i, data, _| {
                if !data.ts.is_empty() {
                    let s = data
                        .ts
                        .iter()
                        .zip(&data.vals)
                        .map(|(&t, &v)| Sample::new(t, v))
                        .collect();
                    out.push((i, s));
                }
                Ok(())
            })?
            .into_iter()
            .flatten()
            .collect()
        } else {
            let grid = Grid {
                start,
                step,
                n: bucket_count(start, end, step)?,
            };
            let snap = self.snapshot(&selected, start, grid.last_covered(), true);
            self.scan(&selected, &snap, Vec::new, |out, i, data, rows| {
                let mut s = Vec::new();
                match (rows.len(), aligned(&grid, data)) {
                    (0, Some((skip, k0, len))) => s.extend(
                        data.vals[skip..skip + len]
                            .iter()
                            .enumerate()
                            .map(|(j, &v)| Sample::new(grid.ts(k0 + j), single(agg, v))),
                    ),
                    (0, None) => bucket_ranges(&grid, &data.ts, |k, a, b| {
                        s.push(Sample::new(grid.ts(k), reduce(agg, &data.vals[a..b])))
                    }),
                    _ => bucketize(grid, data, rows, |k, a| {
                        s.push(Sample::new(grid.ts(k), a.value(agg)))
                    }),
                }
                if !s.is_empty() {
                    out.push((i, s));
                }
                Ok(())
            })?
            .into_iter()
            .flatten()
            .collect()
        };
        results.sort_by(|a, b| selected[a.0].key.cmp(&selected[b.0].key));
        Ok(results
            .into_iter()
            .map(|(i, s)| ((*selected[i].key).clone(), s))
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn query_grouped(
        &self,
        selector: &Selector,
        start: i64,
        end: i64,
        step: i64,
        over_time: Aggregation,
        grouping: &Grouping,
    ) -> Result<Vec<(Labels, Vec<Sample>)>> {
        if over_time == Aggregation::Raw || grouping.op == Aggregation::Raw {
            return Err(TsdbError::InvalidQuery(
                "grouping needs a step aggregation and a group aggregation".into(),
            ));
        }
        let grid = Grid {
            start,
            step,
            n: bucket_count(start, end, step)?,
        };
        let selected = self.select(selector)?;
        let mut group_ids: HashMap<BTreeMap<String, String>, u32> = HashMap::new();
        let mut groups: Vec<BTreeMap<String, String>> = Vec::new();
        let group_of: Vec<u32> = selected
            .iter()
            .map(|s| {
                let labels = group_labels(&s.key, &grouping.by);
                *group_ids.entry(labels.clone()).or_insert_with(|| {
                    groups.push(labels);
                    (groups.len() - 1) as u32
                })
            })
            .collect();
        let snap = self.snapshot(&selected, start, grid.last_covered(), true);
        let partials = self.scan(
            &selected,
            &snap,
            HashMap::<u32, GroupAcc>::new,
            |accs, i, data, rows| {
                if data.ts.is_empty() && rows.len() == 0 {
                    return Ok(());
                }
                let g = accs
                    .entry(group_of[i])
                    .or_insert_with(|| GroupAcc::new(grouping.op, grid.n));
                match (rows.len(), aligned(&grid, data), over_time) {
                    (0, Some((_, k0, len)), Aggregation::Count) => {
                        g.add_slice(k0, &vec![1.0; len]);
                    }
                    (0, Some((skip, k0, len)), _) => g.add_slice(k0, &data.vals[skip..skip + len]),
                    (0, None, _) => bucket_ranges(&grid, &data.ts, |k, a, b| {
                        g.add(k, reduce(over_time, &data.vals[a..b]))
                    }),
                    _ => bucketize(grid, data, rows, |k, a| g.add(k, a.value(over_time))),
                }
                Ok(())
            },
        )?;
        let mut total: HashMap<u32, GroupAcc> = HashMap::new();
        for part in partials {
            for (g, accs) in part {
                match total.get_mut(&g) {
                    Some(t) => t.merge(&accs),
                    None => {
                        total.insert(g, accs);
                    }
                }
            }
        }
        let mut out: Vec<(Labels, Vec<Sample>)> = total
            .into_iter()
            .map(|(g, accs)| {
                let samples = (0..grid.n)
                    .filter_map(|k| accs.value(k).map(|v| Sample::new(grid.ts(k), v)))
                    .collect();
                (groups[g as usize].clone(), samples)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

async fn run_blocking<T, F>(inner: &Arc<Inner>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Inner) -> Result<T> + Send + 'static,
{
    let inner = Arc::clone(inner);
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| TsdbError::Internal(format!("query task failed: {e}")))?,
        Err(_) => f(&inner),
    }
}

#[async_trait]
impl TimeSeriesStore for Tsdb {
    async fn append(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<()> {
        self.inner.append(batch).await
    }

    async fn query_range(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>> {
        let selector = selector.clone();
        run_blocking(&self.inner, move |i| {
            i.query_range(&selector, start_ms, end_ms, step_ms, agg)
        })
        .await
    }

    async fn query_grouped(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        over_time: Aggregation,
        grouping: &Grouping,
    ) -> Result<Vec<(Labels, Vec<Sample>)>> {
        let selector = selector.clone();
        let grouping = grouping.clone();
        run_blocking(&self.inner, move |i| {
            i.query_grouped(&selector, start_ms, end_ms, step_ms, over_time, &grouping)
        })
        .await
    }

    async fn series(&self, selector: &Selector) -> Result<Vec<SeriesKey>> {
        let mut keys: Vec<SeriesKey> = self
            .inner
            .select(selector)?
            .into_iter()
            .map(|s| (*s.key).clone())
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn label_names(&self) -> Result<Vec<String>> {
        Ok(self.inner.index.read().label_names())
    }

    async fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.inner.index.read().label_values(name))
    }

    async fn flush(&self) -> Result<()> {
        run_blocking(&self.inner, |i| i.flush().map(|_| ())).await
    }

    async fn maintain(&self) -> Result<()> {
        run_blocking(&self.inner, |i| {
            i.flush()?;
            i.maintain_at(now_ms()).map(|_| ())
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        run_blocking(&self.inner, |i| {
            i.close();
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static N: AtomicU64 = AtomicU64::new(0);
            let p = std::env::temp_dir().join(format!(
                "palisade-tsdb-db-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn manual() -> Options {
        Options {
            background: false,
            ..Options::default()
        }
    }

    fn key(i: usize) -> SeriesKey {
        SeriesKey::new("m")
            .with_label("device", format!("d{:04}", i / 10))
            .with_label("point", format!("p{}", i % 10))
    }

    async fn raw(db: &Tsdb) -> BTreeMap<SeriesKey, Vec<Sample>> {
        db.query_range(&Selector::all(), i64::MIN, i64::MAX, 0, Aggregation::Raw)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    const T0: i64 = 1_000_000_000_000_000;

    #[tokio::test]
    async fn handles_append_survive_flush_and_reopen_and_are_store_bound() {
        let dir = TempDir::new("refs");
        let keys: Vec<SeriesKey> = (0..300).map(key).collect();
        let mut want: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
        let old_ref;
        {
            let db = Tsdb::open(&dir.0, manual()).unwrap();
            // Some series exist before (through the trait), the rest are created by resolve.
            db.append(&[(keys[7].clone(), vec![Sample::new(T0 - 5, 0.5)])])
                .await
                .unwrap();
            want.entry(keys[7].clone())
                .or_default()
                .push(Sample::new(T0 - 5, 0.5));
            let refs = db.resolve(&keys).unwrap();
            assert_eq!(refs.len(), keys.len());
            assert_eq!(db.resolve(&keys[..10]).unwrap(), refs[..10].to_vec());
            let ids: std::collections::BTreeSet<u64> = refs.iter().map(|r| r.id()).collect();
            assert_eq!(ids.len(), keys.len(), "one series per key");
            for round in 0..3i64 {
                // Later rounds first: out of order within the head.
                let r = 2 - round;
                let batch: Vec<(SeriesRef, Sample)> = refs
                    .iter()
                    .enumerate()
                    .map(|(i, &h)| (h, Sample::new(T0 + r * 1000, (i as i64 * 10 + r) as f64)))
                    .collect();
                db.append_refs(&batch).await.unwrap();
                for (i, k) in keys.iter().enumerate() {
                    want.entry(k.clone())
                        .or_default()
                        .push(Sample::new(T0 + r * 1000, (i as i64 * 10 + r) as f64));
                }
                if round == 1 {
                    db.flush_now().unwrap();
                }
            }
            // The same handle twice in one batch: both samples; an equal timestamp replaces.
            db.append_refs(&[
                (refs[3], Sample::new(T0 + 5000, 1.0)),
                (refs[3], Sample::new(T0 + 6000, 2.0)),
                (refs[3], Sample::new(T0 + 1000, 9.0)),
            ])
            .await
            .unwrap();
            let w = want.get_mut(&keys[3]).unwrap();
            w.push(Sample::new(T0 + 5000, 1.0));
            w.push(Sample::new(T0 + 6000, 2.0));
            for s in w.iter_mut() {
                if s.ts_ms == T0 + 1000 {
                    s.value = 9.0;
                }
            }
            for v in want.values_mut() {
                v.sort_by_key(|s| s.ts_ms);
            }
            assert_eq!(raw(&db).await, want);
            assert_eq!(db.stats().series, keys.len());
            old_ref = refs[0];
            db.close_now();
            assert!(matches!(
                db.append_refs(&[(refs[0], Sample::new(T0, 1.0))]).await,
                Err(TsdbError::Closed)
            ));
        }
        // Reopen: the WAL replays what was not flushed; handles of the old store are refused.
        let db = Tsdb::open(&dir.0, manual()).unwrap();
        assert_eq!(raw(&db).await, want);
        let err = db
            .append_refs(&[(old_ref, Sample::new(T0, 1.0))])
            .await
            .unwrap_err();
        assert!(matches!(err, TsdbError::InvalidSeries(_)), "{err}");
        let again = db.resolve(&keys).unwrap();
        assert_eq!(again[0].id(), old_ref.id(), "ids are stable");
        let other = Tsdb::open(TempDir::new("other").0.as_path(), manual()).unwrap();
        assert!(matches!(
            other.append_refs(&[(again[0], Sample::new(T0, 1.0))]).await,
            Err(TsdbError::InvalidSeries(_))
        ));
        assert!(matches!(
            db.resolve(&[SeriesKey::new("")]),
            Err(TsdbError::InvalidSeries(_))
        ));
    }

    /// Batches with the keys of an earlier batch reuse its lookups; batches that only look
    /// alike (same count, same encoded length, other keys or another order) do not.
    #[tokio::test]
    async fn batch_shapes_are_reused_only_for_identical_keys() {
        let dir = TempDir::new("shape");
        let db = Tsdb::open(&dir.0, manual()).unwrap();
        let n = SHAPE_MIN_ENTRIES + 44;
        let keys: Vec<SeriesKey> = (0..n).map(key).collect();
        let mut reversed = keys.clone();
        reversed.reverse();
        // Same encoded length as `keys`, one key different.
        let mut changed = keys.clone();
        changed[5] = SeriesKey::new("m")
            .with_label("device", "x0000")
            .with_label("point", "p5");
        let mut want: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
        let mut ts = T0;
        for (round, ks) in [&keys, &keys, &reversed, &changed, &keys, &reversed]
            .into_iter()
            .enumerate()
        {
            ts += 1000;
            let batch: Vec<(SeriesKey, Vec<Sample>)> = ks
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    // Multi-sample entries and empty ones (skipped) in some rounds.
                    let samples = match (round, i % 50) {
                        (1, 0) => vec![Sample::new(ts, i as f64), Sample::new(ts + 1, -1.0)],
                        (4, 1) => Vec::new(),
                        _ => vec![Sample::new(ts, (round * 100_000 + i) as f64)],
                    };
                    (k.clone(), samples)
                })
                .collect();
            db.append(&batch).await.unwrap();
            for (k, s) in batch {
                want.entry(k).or_default().extend(s);
            }
        }
        assert!(!db.inner.shapes.lock().is_empty(), "shapes are cached");
        assert_eq!(raw(&db).await, want);
        assert_eq!(db.stats().series, n + 1);
    }

    /// Two appenders that interleave timestamps of the same series end up sorted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appenders_interleave() {
        let dir = TempDir::new("conc");
        let db = Arc::new(Tsdb::open(&dir.0, manual()).unwrap());
        let keys: Vec<SeriesKey> = (0..400).map(key).collect();
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for a in 0..2 {
            let db = Arc::clone(&db);
            let keys = keys.clone();
            let next = Arc::clone(&next);
            tasks.push(tokio::spawn(async move {
                let refs = db.resolve(&keys).unwrap();
                loop {
                    let m = next.fetch_add(1, Ordering::Relaxed);
                    if m >= 60 {
                        break;
                    }
                    let ts = T0 + m as i64 * 60_000;
                    if a == 0 {
                        let b: Vec<(SeriesKey, Vec<Sample>)> = keys
                            .iter()
                            .map(|k| (k.clone(), vec![Sample::new(ts, m as f64)]))
                            .collect();
                        db.append(&b).await.unwrap();
                    } else {
                        let b: Vec<(SeriesRef, Sample)> = refs
                            .iter()
                            .map(|&r| (r, Sample::new(ts, m as f64)))
                            .collect();
                        db.append_refs(&b).await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let got = raw(&db).await;
        assert_eq!(got.len(), keys.len());
        for s in got.values() {
            let want: Vec<Sample> = (0..60)
                .map(|m| Sample::new(T0 + m * 60_000, m as f64))
                .collect();
            assert_eq!(s, &want);
        }
        assert_eq!(db.stats().head_samples, 400 * 60);
    }
}
