#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Behaviour of the embedded store through the `TimeSeriesStore` trait: every case of the
//! shared suite (`suite/mod.rs`, also run against VictoriaMetrics by palisade-tsdb-remote),
//! then the embedded-only behaviour (WAL, blocks, compaction, retention, locking).

mod suite;

use palisade_tsdb::{
    Aggregation, Grouping, Options, Sample, Selector, SeriesKey, TimeSeriesStore, Tsdb, TsdbError,
    DAY_MS,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use suite::{value, Capabilities, Scope, HOUR, MIN, T0};
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "palisade-tsdb-it-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
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

fn key(device: &str, dp: &str) -> SeriesKey {
    SeriesKey::new(format!("HostCPU_{dp}"))
        .with_label("device", device)
        .with_label("datasource", "HostCPU")
        .with_label("instance", "cpu0")
        .with_label("datapoint", dp)
}

/// `n` series × `minutes` samples from `t0`, one per minute.
fn batches(n: usize, t0: i64, minutes: i64) -> Vec<Vec<(SeriesKey, Vec<Sample>)>> {
    (0..minutes)
        .map(|m| {
            let ts = t0 + m * MIN;
            (0..n)
                .map(|s| {
                    (
                        key(&format!("dev{}", s / 5), &format!("dp{}", s % 5)),
                        vec![Sample::new(ts, value(s, ts))],
                    )
                })
                .collect()
        })
        .collect()
}

async fn raw(
    db: &dyn TimeSeriesStore,
    sel: &Selector,
    lo: i64,
    hi: i64,
) -> Vec<(SeriesKey, Vec<Sample>)> {
    db.query_range(sel, lo, hi, 0, Aggregation::Raw)
        .await
        .unwrap()
}

async fn all_raw(db: &dyn TimeSeriesStore) -> BTreeMap<SeriesKey, Vec<Sample>> {
    raw(db, &Selector::all(), i64::MIN, i64::MAX)
        .await
        .into_iter()
        .collect()
}

fn expected(n: usize, t0: i64, minutes: i64) -> BTreeMap<SeriesKey, Vec<Sample>> {
    let mut m: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
    for b in batches(n, t0, minutes) {
        for (k, s) in b {
            m.entry(k).or_default().extend(s);
        }
    }
    m
}

// ------------------------------------------------------------------ the shared suite

/// Runs one suite case on a fresh store of its own.
macro_rules! suite_case {
    ($name:ident) => {
        #[tokio::test]
        async fn $name() {
            let dir = TempDir::new(stringify!($name));
            let db = Tsdb::open(dir.path(), manual()).unwrap();
            suite::$name(&Scope::exclusive(&db, Capabilities::EMBEDDED)).await;
        }
    };
}

suite_case!(round_trip_raw_aggregates_selectors_and_labels);
suite_case!(invalid_keys_reject_the_whole_batch);
suite_case!(grouped_queries_match_the_generic_path);
suite_case!(aligned_and_unaligned_steps_agree_with_raw_samples);
suite_case!(bucket_boundaries_and_long_grids);
suite_case!(special_values);
suite_case!(selector_semantics_and_escaping);

/// Every suite case in one store, each in its own scope, as a shared remote engine runs them.
#[tokio::test]
async fn suite_in_one_shared_store() {
    let dir = TempDir::new("shared");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    suite::run_all(&db, Capabilities::EMBEDDED, |_, _| {}).await;
}

// ------------------------------------------------------------------ embedded only

#[tokio::test]
async fn out_of_order_and_overwrites_within_the_head_and_across_blocks() {
    let dir = TempDir::new("ooo");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    // The head part is the suite's case; it leaves minutes 0, 1 (rewritten), 3 and 5.
    suite::out_of_order_and_overwrites(&Scope::exclusive(&db, Capabilities::EMBEDDED)).await;
    let k = key("d", "p");
    let put = |ts: i64, v: f64| (k.clone(), vec![Sample::new(ts, v)]);
    // Into a block; then a late sample and an overwrite of a block sample from the head.
    db.flush_now().unwrap();
    db.append(&[put(T0 + 2 * MIN, 2.0)]).await.unwrap();
    db.append(&[put(T0 + 3 * MIN, 30.0)]).await.unwrap();
    let want2 = vec![
        Sample::new(T0, 0.0),
        Sample::new(T0 + MIN, 10.0),
        Sample::new(T0 + 2 * MIN, 2.0),
        Sample::new(T0 + 3 * MIN, 30.0),
        Sample::new(T0 + 5 * MIN, 5.0),
    ];
    assert_eq!(all_raw(&db).await[&k], want2);
    // Same after another flush (two overlapping blocks; the newer wins), after compaction,
    // and after reopening.
    db.flush_now().unwrap();
    assert_eq!(db.stats().raw_blocks, 2);
    assert_eq!(all_raw(&db).await[&k], want2);
    db.maintain_at(T0 + 2 * DAY_MS).unwrap();
    assert_eq!(db.stats().raw_blocks, 1);
    assert_eq!(all_raw(&db).await[&k], want2);
    drop(db);
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert_eq!(all_raw(&db).await[&k], want2);
}

#[tokio::test]
async fn wal_replay_after_drop_without_flush() {
    let dir = TempDir::new("replay");
    {
        let db = Tsdb::open(dir.path(), manual()).unwrap();
        for b in batches(20, T0, 30) {
            db.append(&b).await.unwrap();
        }
        assert_eq!(db.stats().raw_blocks, 0);
        // Dropped without flush or close.
    }
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let r = db.open_report().clone();
    assert_eq!(r.wal_samples, 600);
    assert_eq!(r.series, 20);
    assert_eq!(r.wal_truncated_bytes, 0);
    assert_eq!(db.stats().head_samples, 600);
    assert_eq!(all_raw(&db).await, expected(20, T0, 30));
    // New series and samples after the reopen land in a new segment and replay too.
    for b in batches(25, T0 + 30 * MIN, 10) {
        db.append(&b).await.unwrap();
    }
    drop(db);
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let mut want = expected(20, T0, 30);
    for (k, s) in expected(25, T0 + 30 * MIN, 10) {
        want.entry(k).or_default().extend(s);
    }
    assert_eq!(all_raw(&db).await, want);
}

#[tokio::test]
async fn torn_wal_tail_is_truncated_not_fatal() {
    let dir = TempDir::new("torn");
    {
        let db = Tsdb::open(dir.path(), manual()).unwrap();
        for b in batches(4, T0, 10) {
            db.append(&b).await.unwrap();
        }
    }
    let wal_dir = dir.path().join("wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    // Cut into the last record (as a crash mid-write leaves it) and add garbage after it.
    let mut bytes = std::fs::read(last).unwrap();
    bytes.truncate(len as usize - 7);
    bytes.extend_from_slice(&[0xAB; 100]);
    std::fs::write(last, &bytes).unwrap();

    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let r = db.open_report().clone();
    assert!(r.wal_truncated_bytes > 0, "{r:?}");
    // The last append (4 samples at minute 9, one record per head shard) was torn in its
    // last record; everything before survives.
    let got = all_raw(&db).await;
    for (k, s) in expected(4, T0, 9) {
        assert_eq!(got[&k][..9], s[..]);
    }
    let n: usize = got.values().map(Vec::len).sum();
    assert!((36..40).contains(&n), "{n}");
    // The store keeps working and a second reopen is clean.
    db.append(&batches(4, T0 + 9 * MIN, 1)[0]).await.unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert_eq!(db.open_report().wal_truncated_bytes, 0);
    assert_eq!(all_raw(&db).await, expected(4, T0, 10));

    // A damaged record in the middle: the rest of that segment is dropped, the store opens.
    drop(db);
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let first = &segs[0];
    let mut bytes = std::fs::read(first).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(first, &bytes).unwrap();
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert!(db.open_report().wal_truncated_bytes > 0);
    let got = all_raw(&db).await;
    assert!(got.values().map(Vec::len).sum::<usize>() < 40);
}

#[tokio::test]
async fn block_cut_and_queries_across_head_and_blocks() {
    let dir = TempDir::new("blocks");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    // Two hours before midnight to two hours after: the flush splits per UTC day.
    let start = T0 + DAY_MS - 2 * HOUR;
    for b in batches(30, start, 240) {
        db.append(&b).await.unwrap();
    }
    let f = db.flush_now().unwrap();
    assert_eq!((f.series, f.samples, f.blocks), (30, 30 * 240, 2));
    assert_eq!(db.stats().head_samples, 0);
    let wal_files = std::fs::read_dir(dir.path().join("wal")).unwrap().count();
    assert_eq!(wal_files, 1, "flushed segments are deleted");
    // More data into the head.
    for b in batches(30, start + 240 * MIN, 60) {
        db.append(&b).await.unwrap();
    }
    let want = expected(30, start, 300);
    assert_eq!(all_raw(&db).await, want);
    // Aggregates spanning blocks and head agree with a computation over raw samples.
    let got = db
        .query_range(
            &Selector::all(),
            start,
            start + 300 * MIN - 1,
            30 * MIN,
            Aggregation::Avg,
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 30);
    for (k, pts) in &got {
        assert_eq!(pts.len(), 10);
        for p in pts {
            let vals: Vec<f64> = want[k]
                .iter()
                .filter(|s| s.ts_ms >= p.ts_ms && s.ts_ms < p.ts_ms + 30 * MIN)
                .map(|s| s.value)
                .collect();
            assert!((p.value - vals.iter().sum::<f64>() / vals.len() as f64).abs() < 1e-9);
        }
    }
    // Reopen: blocks from disk plus the WAL for the head.
    drop(db);
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert_eq!(db.open_report().raw_blocks, 2);
    assert_eq!(db.open_report().wal_samples, 30 * 60);
    assert_eq!(all_raw(&db).await, want);
    // Compaction merges the day's blocks; queries are unchanged.
    let m = db.maintain_at(T0 + 3 * DAY_MS).unwrap();
    assert_eq!(m.compacted_days, 2);
    db.flush_now().unwrap();
    db.maintain_at(T0 + 3 * DAY_MS).unwrap();
    assert_eq!(db.stats().raw_blocks, 2);
    assert_eq!(all_raw(&db).await, want);
    let usage = db.disk_usage().unwrap();
    assert!(usage.raw_blocks > 0 && usage.rollup_blocks > 0 && usage.catalog > 0);
}

#[tokio::test]
async fn corrupt_chunks_are_reported_and_bad_blocks_set_aside() {
    let dir = TempDir::new("corrupt");
    {
        let db = Tsdb::open(dir.path(), manual()).unwrap();
        for b in batches(3, T0, 60) {
            db.append(&b).await.unwrap();
        }
        db.flush_now().unwrap();
    }
    let blocks_dir = dir.path().join("blocks");
    let block = std::fs::read_dir(&blocks_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "blk"))
        .unwrap();
    // Damage chunk bytes (right after the 8-byte magic): reads of that series fail loudly.
    let mut bytes = std::fs::read(&block).unwrap();
    bytes[12] ^= 0x55;
    std::fs::write(&block, &bytes).unwrap();
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let err = db
        .query_range(&Selector::all(), T0, T0 + DAY_MS, 0, Aggregation::Raw)
        .await
        .unwrap_err();
    assert!(matches!(err, TsdbError::Corrupt { .. }), "{err}");
    drop(db);
    // Damage the footer: the block is set aside on open, the store opens.
    let n = bytes.len();
    bytes[n - 20] ^= 0x55;
    std::fs::write(&block, &bytes).unwrap();
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert_eq!(db.open_report().quarantined_blocks.len(), 1);
    assert!(all_raw(&db).await.is_empty());
    assert_eq!(
        db.series(&Selector::all()).await.unwrap().len(),
        3,
        "series survive in the catalog"
    );
}

async fn hourly(db: &Tsdb, agg: Aggregation) -> Vec<(SeriesKey, Vec<Sample>)> {
    db.query_range(&Selector::all(), T0, T0 + 3 * DAY_MS - 1, HOUR, agg)
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_and_downsampling() {
    let dir = TempDir::new("retention");
    let opts = Options {
        raw_retention: std::time::Duration::from_secs(2 * 86_400),
        rollup_retention: std::time::Duration::from_secs(40 * 86_400),
        ..manual()
    };
    let db = Tsdb::open(dir.path(), opts.clone()).unwrap();
    // Three days of data, one sample per 10 minutes, 6 series.
    let mut want: BTreeMap<SeriesKey, Vec<Sample>> = BTreeMap::new();
    for m in 0..(3 * 144) {
        let ts = T0 + m * 10 * MIN;
        let batch: Vec<(SeriesKey, Vec<Sample>)> = (0..6)
            .map(|s| {
                (
                    key(&format!("dev{s}"), "dp"),
                    vec![Sample::new(ts, value(s, ts) + (m % 7) as f64)],
                )
            })
            .collect();
        for (k, s) in &batch {
            want.entry(k.clone()).or_default().extend(s);
        }
        db.append(&batch).await.unwrap();
    }
    db.flush_now().unwrap();
    // Hourly answers computed from raw data while it is still there.
    let before_avg = hourly(&db, Aggregation::Avg).await;
    let before_max = hourly(&db, Aggregation::Max).await;
    let before_cnt = hourly(&db, Aggregation::Count).await;
    let before_grouped = db
        .query_grouped(
            &Selector::all(),
            T0,
            T0 + 3 * DAY_MS - 1,
            6 * HOUR,
            Aggregation::Avg,
            &Grouping {
                by: vec![],
                op: Aggregation::Avg,
            },
        )
        .await
        .unwrap();

    // Now = the end of day 3 + 1 h: days 0..2 are compacted, raw day 0 falls out (retention
    // 2 days keeps days 1 and 2).
    let now = T0 + 3 * DAY_MS + HOUR;
    let m = db.maintain_at(now).unwrap();
    assert_eq!(m.compacted_days, 3);
    assert_eq!(m.removed_raw_blocks, 1);
    assert_eq!(m.raw_floor_ms, Some(T0 + DAY_MS));
    assert_eq!(db.stats().raw_blocks, 2);
    // Raw queries no longer see day 0 ...
    let r = all_raw(&db).await;
    for (k, s) in &r {
        assert_eq!(s.len(), 2 * 144, "{k}");
        assert_eq!(s[0].ts_ms, T0 + DAY_MS);
        assert_eq!(*s, want[k][144..]);
    }
    // ... but hourly aggregates are the same, from the rollups.
    assert_eq!(hourly(&db, Aggregation::Avg).await, before_avg);
    assert_eq!(hourly(&db, Aggregation::Max).await, before_max);
    assert_eq!(hourly(&db, Aggregation::Count).await, before_cnt);
    let after_grouped = db
        .query_grouped(
            &Selector::all(),
            T0,
            T0 + 3 * DAY_MS - 1,
            6 * HOUR,
            Aggregation::Avg,
            &Grouping {
                by: vec![],
                op: Aggregation::Avg,
            },
        )
        .await
        .unwrap();
    assert_eq!(after_grouped.len(), 1);
    for (a, b) in after_grouped[0].1.iter().zip(&before_grouped[0].1) {
        assert_eq!(a.ts_ms, b.ts_ms);
        assert!((a.value - b.value).abs() < 1e-9);
    }
    // Samples older than the raw floor are dropped on append.
    db.append(&[(key("dev0", "dp"), vec![Sample::new(T0 + 5 * MIN, 99.0)])])
        .await
        .unwrap();
    assert_eq!(db.stats().dropped_samples, 1);
    // The floor survives a reopen.
    drop(db);
    let db = Tsdb::open(dir.path(), opts).unwrap();
    assert_eq!(db.stats().raw_floor_ms, Some(T0 + DAY_MS));
    assert_eq!(hourly(&db, Aggregation::Avg).await, before_avg);
    // Past the rollup retention everything is gone.
    let m = db.maintain_at(T0 + 100 * DAY_MS).unwrap();
    assert_eq!(m.removed_raw_blocks, 2);
    assert!(m.removed_rollup_blocks >= 1);
    assert!(hourly(&db, Aggregation::Avg).await.is_empty());
    assert_eq!((db.stats().raw_blocks, db.stats().rollup_blocks), (0, 0));
}

#[tokio::test]
async fn late_data_recomputes_rollups() {
    let dir = TempDir::new("late");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let k = key("d", "p");
    db.append(&[(
        k.clone(),
        vec![
            Sample::new(T0 + 10 * MIN, 1.0),
            Sample::new(T0 + 20 * MIN, 3.0),
        ],
    )])
    .await
    .unwrap();
    db.flush_now().unwrap();
    db.maintain_at(T0 + 2 * DAY_MS).unwrap();
    // A late sample for the compacted day.
    db.append(&[(k.clone(), vec![Sample::new(T0 + 30 * MIN, 8.0)])])
        .await
        .unwrap();
    db.flush_now().unwrap();
    assert_eq!(db.stats().raw_blocks, 2);
    db.maintain_at(T0 + 2 * DAY_MS).unwrap();
    assert_eq!(db.stats().raw_blocks, 1);
    assert_eq!(db.stats().rollup_blocks, 1);
    // Drop raw data of that day: the hourly answer (from rollups) includes the late sample.
    let opts = Options {
        raw_retention: std::time::Duration::from_secs(86_400),
        ..manual()
    };
    drop(db);
    let db = Tsdb::open(dir.path(), opts).unwrap();
    db.maintain_at(T0 + 2 * DAY_MS + HOUR).unwrap();
    assert_eq!(db.stats().raw_blocks, 0);
    let got = db
        .query_range(
            &Selector::all(),
            T0,
            T0 + DAY_MS - 1,
            HOUR,
            Aggregation::Avg,
        )
        .await
        .unwrap();
    assert_eq!(got, vec![(k.clone(), vec![Sample::new(T0, 4.0)])]);
    let got = db
        .query_range(
            &Selector::all(),
            T0,
            T0 + DAY_MS - 1,
            DAY_MS,
            Aggregation::Count,
        )
        .await
        .unwrap();
    assert_eq!(got[0].1, vec![Sample::new(T0, 3.0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_with_flushes() {
    let dir = TempDir::new("concurrent");
    let opts = Options {
        max_head_samples: 5_000,
        maintenance_interval: std::time::Duration::from_secs(3600),
        ..Options::default()
    };
    let db = Arc::new(Tsdb::open(dir.path(), opts).unwrap());
    let base = palisade_tsdb::now_ms() - palisade_tsdb::now_ms() % MIN - DAY_MS;
    let writers = 16;
    let rounds = 150i64;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            for r in 0..rounds {
                // Each writer owns 20 series and also writes one series shared by all.
                let ts = base + r * 1000;
                let mut batch: Vec<(SeriesKey, Vec<Sample>)> = (0..20)
                    .map(|s| {
                        (
                            key(&format!("w{w}"), &format!("s{s}")),
                            vec![Sample::new(ts, (w * 1000 + s) as f64 + r as f64)],
                        )
                    })
                    .collect();
                batch.push((
                    key("shared", "x"),
                    vec![Sample::new(ts + w as i64, w as f64)],
                ));
                db.append(&batch).await.unwrap();
            }
        }));
    }
    // Flush concurrently as well.
    let flusher = {
        let db = Arc::clone(&db);
        tokio::spawn(async move {
            for _ in 0..10 {
                db.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    flusher.await.unwrap();
    let check = |got: BTreeMap<SeriesKey, Vec<Sample>>| {
        assert_eq!(got.len(), writers * 20 + 1);
        for w in 0..writers {
            for s in 0..20 {
                let v = &got[&key(&format!("w{w}"), &format!("s{s}"))];
                let want: Vec<Sample> = (0..rounds)
                    .map(|r| Sample::new(base + r * 1000, (w * 1000 + s) as f64 + r as f64))
                    .collect();
                assert_eq!(*v, want);
            }
        }
        assert_eq!(got[&key("shared", "x")].len(), writers * rounds as usize);
    };
    check(all_raw(db.as_ref()).await);
    db.close().await.unwrap();
    assert!(matches!(
        db.append(&batches(1, base, 1)[0]).await,
        Err(TsdbError::Closed)
    ));
    drop(db);
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    check(all_raw(&db).await);
}

#[tokio::test]
async fn one_store_per_directory() {
    let dir = TempDir::new("lock");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    assert!(matches!(
        Tsdb::open(dir.path(), manual()),
        Err(TsdbError::Locked(_))
    ));
    drop(db);
    Tsdb::open(dir.path(), manual()).unwrap();
}
/// A batch far larger than one WAL record (split into several) replays completely.
#[tokio::test]
async fn huge_batches_are_split_into_bounded_records() {
    let dir = TempDir::new("huge");
    let batch = {
        let db = Tsdb::open(dir.path(), manual()).unwrap();
        let scope = Scope::exclusive(&db, Capabilities::EMBEDDED);
        suite::huge_batches_round_trip(&scope).await;
        suite::huge_batch(&scope)
    };
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    // 3 series records and at least 2 samples records (about 9 MB of samples).
    assert!(db.open_report().wal_records >= 5, "{:?}", db.open_report());
    let got = all_raw(&db).await;
    for (k, s) in &batch {
        assert_eq!(got[k], *s);
    }
}
