//! Palisade's time-series store.
//!
//! One interface, [`TimeSeriesStore`], with the embedded implementation [`Tsdb`] here; the
//! Prometheus remote-write backend (write with remote_write 1.0, read through the Prometheus
//! HTTP query API) implements the same trait elsewhere. The trait only speaks in series keys,
//! samples, label selectors with Prometheus semantics and step aggregations that map to
//! `<agg>_over_time` / `<agg> by (...)`, so both backends can answer every call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), palisade_tsdb::TsdbError> {
//! use palisade_tsdb::{Aggregation, Options, Sample, Selector, SeriesKey, TimeSeriesStore, Tsdb};
//! let db = Tsdb::open("palisade-data/tsdb", Options::default())?;
//! let key = SeriesKey::new("HostCPU_usage")
//!     .with_label("device", "web-1")
//!     .with_label("datasource", "HostCPU")
//!     .with_label("instance", "cpu0")
//!     .with_label("datapoint", "usage");
//! db.append(&[(key, vec![Sample::new(1_700_000_000_000, 12.5)])]).await?; // durable now
//! let day = db
//!     .query_range(&Selector::all().eq("device", "web-1"), 1_700_000_000_000,
//!                  1_700_086_399_999, 60_000, Aggregation::Avg)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Design of the embedded store
//!
//! **Write path.** [`TimeSeriesStore::append`] first walks the batch in its order: it
//! validates and encodes each key (one buffer for the batch) and copies the sample of
//! single-sample entries, so that nothing is looked up in the caller's batch later. If the
//! encoded keys equal, byte for byte, those of a recent batch (an ingest path sends the same
//! keys in the same order every poll), that batch's lookups are reused (its *shape*: the
//! series' shard and slot per entry, grouped by shard); otherwise each key is hashed to one
//! of 32 head shards and looked up there. Then, per shard under its lock, it (1) finds or
//! creates the series (a new series gets the next id and a *series record*), (2) inserts the
//! samples into the series' head (a sorted vector; an in-order sample is compared with the
//! series' last timestamp and pushed; an out-of-order one is inserted in place, an equal
//! timestamp replaces the value, so the last write wins), and (3) encodes a *samples record*
//! and queues it to the write-ahead log. Head order and WAL order of a series therefore
//! agree, and a replay reproduces the head exactly. Concurrent appenders start at different
//! shards and pass over busy ones, so they do not queue behind each other. The call wakes
//! the WAL writer once and waits until it reports its bytes synced.
//!
//! [`Tsdb::resolve`] turns keys into [`SeriesRef`] handles (creating missing series) and
//! [`Tsdb::append_refs`] appends `(handle, sample)` pairs: the same path without encoding,
//! hashing or looking up keys. Handles are valid while the store that issued them is open.
//!
//! **Group commit.** One WAL thread loops: take the whole shared buffer, `write`, one
//! `fdatasync`, publish "durable up to sequence N". Appenders that arrive during a sync
//! share the next one; there is no timer and no added latency when idle. An append
//! returns only after the sync covering it, so an acknowledged sample survives `kill -9`
//! and power loss (as far as the disk honours `fdatasync`). A failed write or sync makes the
//! log refuse all further appends ([`TsdbError::WalFailed`]) until the store is reopened.
//!
//! **Flush (head → blocks).** Every [`Options::flush_interval`] (2 h), or when the head
//! holds [`Options::max_head_samples`], the head is frozen (swapped out under a short
//! exclusive lock, still readable; each series' next head gets, allocated beforehand, room
//! for as many samples as it had) and the WAL rotates to a new segment at exactly that
//! point. The frozen samples are written as one *level-0* block per UTC day they touch
//! (cheap varint codecs, so flushing does not compete with ingest for CPU); new series go to
//! the series catalog; then the frozen head is dropped and the older WAL segments are
//! deleted. Out-of-order and late samples simply land in a later block of their day.
//!
//! **Compaction and rollups.** When a day is over (plus [`Options::compaction_delay`]),
//! its blocks are merged into one *level-1* block, re-encoded with pco (a day of a series
//! compresses much better than pieces of it), and the day's hourly rollups (min, max, sum,
//! count per series and hour) are merged into the rollup block of its 30-day period. A late
//! sample for a compacted day creates a new level-0 block; the next maintenance run merges
//! it and recomputes that day's rollups.
//!
//! **Retention.** Raw data is kept for [`Options::raw_retention`] (30 days) by deleting
//! whole day blocks; the instant from which raw data is kept (the *raw floor*) is stored in
//! `meta`. Rollups are kept for [`Options::rollup_retention`] (1 year) by deleting whole
//! periods. Appends older than the raw floor are dropped (counted in [`Stats`]).
//!
//! **Queries.** The selector is evaluated on the postings (label → value → sorted ids).
//! Each series' samples are merged from blocks (by sequence), frozen heads and the live
//! head; on equal timestamps the newest source wins. Step aggregations use raw samples from
//! the raw floor on and hourly rollups before it (hour resolution there). Series are
//! processed in parallel batches; chunk reads of a batch are coalesced into few `pread`s.
//! A grid whose step and phase match a series' regular interval adds value slices
//! directly; other grids reduce whole bucket slices.
//!
//! **Crash safety.** WAL records and catalog records carry a length and a CRC-32; on open a
//! record that is short or fails its checksum ends the segment and the tail is truncated
//! (never fatal). Blocks are written to `tmp-*.blk`, fsynced, renamed, and the directory is
//! fsynced; each chunk and the index carry CRC-32s (checked on every read) and the footer
//! its own. A block that fails its checks on open is renamed `*.corrupt` and left out. A
//! crash between writing a compacted block and deleting its inputs is resolved on open (the
//! newer block supersedes); a crash between flushing a block and deleting the WAL only
//! replays samples that are already in a block (duplicates are merged away).
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/LOCK                      flock: one open store per directory
//! <dir>/meta                      "PTSMETA1", raw floor (i64 LE), CRC-32      (tmp + rename)
//! <dir>/series.cat                "PTSCAT01", then series records (append-only, fsync per flush)
//! <dir>/wal/0000000000000007.wal  "PTSWAL01", then records
//! <dir>/blocks/raw-<seq hex16>.blk     one UTC day of raw samples (level 0 or 1)
//! <dir>/blocks/rollup-<seq hex16>.blk  hourly rollups of one 30-day period
//!
//! record       len u32 LE | crc32(payload) u32 LE | payload = kind u8, body
//! series body  id uvarint, metric str, n uvarint, n × (name str, value str)   (str = len uvarint, UTF-8)
//! samples body base_ts zigzag-varint, then repeated: id uvarint, n uvarint,
//!              n × (ts − previous ts as zigzag varint (previous starts at base_ts), value f64 LE bits)
//! ```
//!
//! Block files (little endian):
//!
//! ```text
//! "PTSBLK01"
//! chunk ...              one per series, ascending series id
//! index                  n × 44 bytes: series u64, min_ts i64, max_ts i64, count u32,
//!                        offset u64, len u32, crc32(chunk) u32
//! footer (88 bytes)      kind u8 (1 raw, 2 rollup), level u8 (0 flushed, 1 compacted),
//!                        6 reserved, seq u64, range_start i64, range_end i64 (the day or
//!                        period), min_ts i64, max_ts i64, samples u64, index_offset u64,
//!                        index_len u64, crc32(index) u32, crc32(footer[..76]) u32, "PTSBEND1"
//! ```
//!
//! A raw chunk is a timestamp column and a value column; a rollup chunk is hour starts and
//! min / max / sum / count columns. Column encodings (first byte = tag):
//!
//! | tag | column | body |
//! |---|---|---|
//! | 1 | regular timestamps | first, interval (zigzag varints), n |
//! | 2 | pco timestamps | n, len, pco `i64` |
//! | 3 | constant values | n, one `f64` |
//! | 4 | pco values | n, len, pco `f64` |
//! | 5 | varint timestamps | n, zigzag varint deltas |
//! | 6 | raw values | n, n × `f64` |
//! | 7 | decimal values, varint | n, e, zigzag varint deltas of the mantissas |
//! | 8 | decimal values, pco | n, e, len, pco `i64` mantissas |
//! | 9 | decimal values, bit-packed | n, e, order (0: mantissas, 1: first mantissa then deltas), min, w, ⌈count·w/8⌉ bytes of (x − min) in w bits each |
//! | 10 | decimal values, runs | n, e, r, r × (run length, mantissa delta from the previous run) |
//!
//! Decimal columns hold values that are exactly `mantissa / 10^e` (e ≤ 6), verified bit
//! for bit when writing, so every encoding is lossless (NaN payloads and -0.0 included).
//! Flushed blocks use tags 1, 3, 5, 6, 7; compacted blocks and rollups 1, 2, 3, 4, 8, 9, 10
//! ([pco](https://docs.rs/pco) 1.x, level 4; a decimal column is bit-packed (9) or written
//! as runs (10) instead of pco (8) when that is at most 1/16 larger, since those decode
//! several times faster). Tags 9 and 10 are newer than the first release: older builds
//! cannot decode chunks that use them (their queries report the block as corrupt), so a
//! store compacted by this version cannot be opened with an older one.
//!
//! # Limits
//!
//! * Series are never removed from the catalog or the in-memory index (churned series cost
//!   memory until a catalog rewrite exists).
//! * The head holds samples uncompressed (16 bytes each) until the next flush.
//! * One process per data directory (`LOCK`); reads are in-process only.

#![deny(missing_docs)]

mod block;
mod catalog;
mod chunk;
mod codec;
mod db;
mod error;
mod fsutil;
mod head;
mod index;
mod query;
mod types;
mod wal;

pub use db::{
    now_ms, DiskUsage, FlushReport, MaintenanceReport, OpenReport, Options, SeriesRef, Stats, Tsdb,
    DAY_MS, ROLLUP_PERIOD_MS,
};
pub use error::{Result, TsdbError};
pub use query::group_series;
pub use types::{
    Aggregation, CompiledSelector, Grouping, Labels, MatchOp, Matcher, Sample, Selector, SeriesKey,
    MAX_POINTS, METRIC_LABEL,
};

use async_trait::async_trait;
use std::collections::BTreeSet;

/// A time-series store: the embedded [`Tsdb`], or a remote engine spoken to through
/// Prometheus remote_write and the Prometheus HTTP query API.
#[async_trait]
pub trait TimeSeriesStore: Send + Sync {
    /// Stores samples. Returns only when they are durable: for the embedded store, synced
    /// to the write-ahead log; for a remote engine, acknowledged by it. On error nothing is
    /// acknowledged, but a part of the batch may have been stored. Writing the same series
    /// and timestamp again replaces the value. Empty sample vectors are ignored.
    async fn append(&self, batch: &[(SeriesKey, Vec<Sample>)]) -> Result<(), TsdbError>;

    /// Samples of every series the selector matches, sorted by key; series without samples
    /// in the range are left out. With [`Aggregation::Raw`]: the raw samples with
    /// `start_ms <= ts <= end_ms`. Otherwise one point per non-empty step bucket (see
    /// [`Aggregation`] for the bucket rule).
    async fn query_range(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        agg: Aggregation,
    ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError>;

    /// Cross-series aggregation: each series is first reduced per step bucket with
    /// `over_time`, then the series of each group (same values of `grouping.by`) are
    /// combined with `grouping.op`. PromQL: `op by (by) (over_time_over_time(sel[step]))`.
    /// The default computes it from [`TimeSeriesStore::query_range`].
    async fn query_grouped(
        &self,
        selector: &Selector,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        over_time: Aggregation,
        grouping: &Grouping,
    ) -> Result<Vec<(Labels, Vec<Sample>)>, TsdbError> {
        if over_time == Aggregation::Raw || grouping.op == Aggregation::Raw {
            return Err(TsdbError::InvalidQuery(
                "grouping needs a step aggregation and a group aggregation".into(),
            ));
        }
        let per_series = self
            .query_range(selector, start_ms, end_ms, step_ms, over_time)
            .await?;
        Ok(group_series(per_series, grouping))
    }

    /// The keys of every series the selector matches, sorted.
    async fn series(&self, selector: &Selector) -> Result<Vec<SeriesKey>, TsdbError>;

    /// Every label name in use, `__name__` included, sorted.
    async fn label_names(&self) -> Result<Vec<String>, TsdbError> {
        let mut names = BTreeSet::new();
        for key in self.series(&Selector::all()).await? {
            names.insert(METRIC_LABEL.to_owned());
            names.extend(key.labels.into_keys());
        }
        Ok(names.into_iter().collect())
    }

    /// Every value of one label (`__name__`: the metric names), sorted.
    async fn label_values(&self, name: &str) -> Result<Vec<String>, TsdbError> {
        let mut values = BTreeSet::new();
        for key in self.series(&Selector::all()).await? {
            if let Some(v) = key.label(name) {
                values.insert(v.to_owned());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Moves buffered data to its long-term form now (embedded: cuts the head into blocks;
    /// remote: nothing to do). Not needed for durability.
    async fn flush(&self) -> Result<(), TsdbError>;

    /// Runs the housekeeping that is due (embedded: flush, compaction, rollups and
    /// retention by the wall clock; the background thread does this on its own).
    async fn maintain(&self) -> Result<(), TsdbError> {
        Ok(())
    }

    /// Finishes pending writes and stops background work. Later appends fail.
    async fn close(&self) -> Result<(), TsdbError>;
}
