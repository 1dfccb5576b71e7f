#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Behaviour of the embedded store through the `TimeSeriesStore` trait.

use palisade_tsdb::{
    Aggregation, Grouping, Options, Sample, Selector, SeriesKey, TimeSeriesStore, Tsdb, TsdbError,
    DAY_MS,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const T0: i64 = 1_700_006_400_000 - 1_700_006_400_000 % DAY_MS; // a UTC midnight (2023-11-15)
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

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

fn value(series: usize, ts: i64) -> f64 {
    ((ts / MIN) as f64 * 0.1 + series as f64).round() / 2.0
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

#[tokio::test]
async fn round_trip_raw_aggregates_selectors_and_labels() {
    let dir = TempDir::new("roundtrip");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    for b in batches(10, T0, 120) {
        db.append(&b).await.unwrap();
    }
    let got = all_raw(&db).await;
    assert_eq!(got, expected(10, T0, 120));

    // Selectors.
    let one = raw(
        &db,
        &Selector::all().eq("device", "dev1").eq("datapoint", "dp3"),
        T0,
        T0 + DAY_MS,
    )
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].0, key("dev1", "dp3"));
    assert_eq!(one[0].1.len(), 120);
    let re = db
        .series(
            &Selector::all()
                .re("datapoint", "dp[01]")
                .ne("device", "dev0"),
        )
        .await
        .unwrap();
    assert_eq!(re, vec![key("dev1", "dp0"), key("dev1", "dp1")]);
    assert_eq!(
        db.series(&Selector::metric("HostCPU_dp2"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        db.label_names().await.unwrap(),
        vec!["__name__", "datapoint", "datasource", "device", "instance"]
    );
    assert_eq!(
        db.label_values("device").await.unwrap(),
        vec!["dev0", "dev1"]
    );

    // Raw range bounds are inclusive.
    let r = raw(
        &db,
        &Selector::all().eq("device", "dev0").eq("datapoint", "dp0"),
        T0 + MIN,
        T0 + 3 * MIN,
    )
    .await;
    assert_eq!(
        r[0].1.iter().map(|s| s.ts_ms).collect::<Vec<_>>(),
        vec![T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN]
    );

    // Step aggregation: buckets [t, t + step).
    let sel = Selector::all().eq("device", "dev0").eq("datapoint", "dp0");
    let samples = &expected(10, T0, 120)[&key("dev0", "dp0")];
    for agg in [
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
        Aggregation::Sum,
        Aggregation::Count,
    ] {
        let got = db
            .query_range(&sel, T0, T0 + 2 * HOUR - 1, HOUR / 2, agg)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        let pts = &got[0].1;
        assert_eq!(pts.len(), 4);
        for (k, p) in pts.iter().enumerate() {
            let lo = T0 + k as i64 * HOUR / 2;
            let vals: Vec<f64> = samples
                .iter()
                .filter(|s| s.ts_ms >= lo && s.ts_ms < lo + HOUR / 2)
                .map(|s| s.value)
                .collect();
            let want = match agg {
                Aggregation::Avg => vals.iter().sum::<f64>() / vals.len() as f64,
                Aggregation::Min => vals.iter().copied().fold(f64::INFINITY, f64::min),
                Aggregation::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                Aggregation::Sum => vals.iter().sum(),
                Aggregation::Count => vals.len() as f64,
                Aggregation::Raw => unreachable!(),
            };
            assert_eq!(p.ts_ms, lo);
            assert!(
                (p.value - want).abs() < 1e-9,
                "{agg:?} bucket {k}: {} vs {want}",
                p.value
            );
        }
    }
    // Empty buckets produce no point.
    let sparse = db
        .query_range(&sel, T0 - HOUR, T0 + HOUR - 1, HOUR, Aggregation::Count)
        .await
        .unwrap();
    assert_eq!(sparse[0].1, vec![Sample::new(T0, 60.0)]);
    // Bad queries.
    assert!(matches!(
        db.query_range(&sel, T0, T0 - 1, MIN, Aggregation::Avg)
            .await,
        Err(TsdbError::InvalidQuery(_))
    ));
    assert!(matches!(
        db.query_range(&sel, T0, T0 + 1, 0, Aggregation::Avg).await,
        Err(TsdbError::InvalidQuery(_))
    ));
    assert!(matches!(
        db.query_range(
            &Selector::all().re("device", "("),
            T0,
            T0,
            MIN,
            Aggregation::Avg
        )
        .await,
        Err(TsdbError::InvalidSelector(_))
    ));
}

#[tokio::test]
async fn invalid_keys_reject_the_whole_batch() {
    let dir = TempDir::new("invalid");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let good = (key("d", "p"), vec![Sample::new(T0, 1.0)]);
    let bad = (
        SeriesKey::new("m").with_label("device", ""),
        vec![Sample::new(T0, 1.0)],
    );
    let err = db.append(&[good.clone(), bad]).await.unwrap_err();
    assert!(matches!(err, TsdbError::InvalidSeries(_)), "{err}");
    assert!(all_raw(&db).await.is_empty());
    assert!(db.series(&Selector::all()).await.unwrap().is_empty());
    db.append(&[good]).await.unwrap();
    assert_eq!(all_raw(&db).await.len(), 1);
}

#[tokio::test]
async fn out_of_order_and_overwrites_within_the_head_and_across_blocks() {
    let dir = TempDir::new("ooo");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    let k = key("d", "p");
    let put = |ts: i64, v: f64| (k.clone(), vec![Sample::new(ts, v)]);
    // Out of order within one batch and across batches.
    db.append(&[(
        k.clone(),
        vec![Sample::new(T0 + 5 * MIN, 5.0), Sample::new(T0 + MIN, 1.0)],
    )])
    .await
    .unwrap();
    db.append(&[put(T0 + 3 * MIN, 3.0)]).await.unwrap();
    db.append(&[put(T0, 0.0)]).await.unwrap();
    // An overwrite of a head sample.
    db.append(&[put(T0 + MIN, 10.0)]).await.unwrap();
    let want = vec![
        Sample::new(T0, 0.0),
        Sample::new(T0 + MIN, 10.0),
        Sample::new(T0 + 3 * MIN, 3.0),
        Sample::new(T0 + 5 * MIN, 5.0),
    ];
    assert_eq!(all_raw(&db).await[&k], want);
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

#[tokio::test]
async fn grouped_queries_match_the_generic_path() {
    struct Generic<'a>(&'a Tsdb);
    #[async_trait::async_trait]
    impl TimeSeriesStore for Generic<'_> {
        async fn append(&self, b: &[(SeriesKey, Vec<Sample>)]) -> Result<(), TsdbError> {
            self.0.append(b).await
        }
        async fn query_range(
            &self,
            s: &Selector,
            a: i64,
            b: i64,
            c: i64,
            d: Aggregation,
        ) -> Result<Vec<(SeriesKey, Vec<Sample>)>, TsdbError> {
            self.0.query_range(s, a, b, c, d).await
        }
        async fn series(&self, s: &Selector) -> Result<Vec<SeriesKey>, TsdbError> {
            self.0.series(s).await
        }
        async fn flush(&self) -> Result<(), TsdbError> {
            Ok(())
        }
        async fn close(&self) -> Result<(), TsdbError> {
            Ok(())
        }
    }
    let dir = TempDir::new("grouped");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    for b in batches(40, T0, 180) {
        db.append(&b).await.unwrap();
    }
    db.flush_now().unwrap();
    for b in batches(40, T0 + 180 * MIN, 60) {
        db.append(&b).await.unwrap();
    }
    let generic = Generic(&db);
    for (by, op) in [
        (vec!["datapoint".to_owned()], Aggregation::Avg),
        (vec![], Aggregation::Max),
        (
            vec!["device".to_owned(), "__name__".to_owned()],
            Aggregation::Sum,
        ),
        (vec!["instance".to_owned()], Aggregation::Count),
    ] {
        let g = Grouping { by, op };
        let fused = db
            .query_grouped(
                &Selector::all(),
                T0,
                T0 + 4 * HOUR,
                5 * MIN,
                Aggregation::Avg,
                &g,
            )
            .await
            .unwrap();
        let slow = generic
            .query_grouped(
                &Selector::all(),
                T0,
                T0 + 4 * HOUR,
                5 * MIN,
                Aggregation::Avg,
                &g,
            )
            .await
            .unwrap();
        assert_eq!(fused.len(), slow.len());
        for ((la, sa), (lb, sb)) in fused.iter().zip(&slow) {
            assert_eq!(la, lb);
            assert_eq!(sa.len(), sb.len());
            for (a, b) in sa.iter().zip(sb) {
                assert_eq!(a.ts_ms, b.ts_ms);
                assert!((a.value - b.value).abs() < 1e-9 * a.value.abs().max(1.0));
            }
        }
    }
    // The default label helpers agree with the index-backed ones.
    assert_eq!(
        generic.label_names().await.unwrap(),
        db.label_names().await.unwrap()
    );
    assert_eq!(
        generic.label_values("device").await.unwrap(),
        db.label_values("device").await.unwrap()
    );
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

/// Steps equal to the sampling interval (the fast path for regular chunks) and steps that
/// are not aligned give the same answers as a computation over the raw samples.
#[tokio::test]
async fn aligned_and_unaligned_steps_agree_with_raw_samples() {
    let dir = TempDir::new("aligned");
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    for b in batches(12, T0, 90) {
        db.append(&b).await.unwrap();
    }
    db.flush_now().unwrap(); // regular chunks in a block
    check_steps(&db, &expected(12, T0, 90)).await;
    for b in batches(12, T0 + 90 * MIN, 30) {
        db.append(&b).await.unwrap(); // merged with head data
    }
    check_steps(&db, &expected(12, T0, 120)).await;
    // A gap breaks the regularity.
    db.append(&batches(12, T0 + 125 * MIN, 1)[0]).await.unwrap();
    let mut want = expected(12, T0, 120);
    for (k, s) in expected(12, T0 + 125 * MIN, 1) {
        want.entry(k).or_default().extend(s);
    }
    check_steps(&db, &want).await;
}

async fn check_steps(db: &Tsdb, want: &BTreeMap<SeriesKey, Vec<Sample>>) {
    let bucket = |samples: &[Sample], lo: i64, step: i64, agg: Aggregation| -> Option<f64> {
        let v: Vec<f64> = samples
            .iter()
            .filter(|s| s.ts_ms >= lo && s.ts_ms < lo + step)
            .map(|s| s.value)
            .collect();
        if v.is_empty() {
            return None;
        }
        Some(match agg {
            Aggregation::Avg => v.iter().sum::<f64>() / v.len() as f64,
            Aggregation::Sum => v.iter().sum(),
            Aggregation::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Aggregation::Count => v.len() as f64,
            Aggregation::Raw => unreachable!(),
        })
    };
    for start in [T0 - 5 * MIN, T0, T0 + 30_000, T0 + 17 * MIN] {
        for step in [MIN, 2 * MIN] {
            let end = T0 + 130 * MIN;
            for agg in [Aggregation::Avg, Aggregation::Count, Aggregation::Max] {
                let got = db
                    .query_range(&Selector::all(), start, end, step, agg)
                    .await
                    .unwrap();
                assert_eq!(got.len(), 12);
                for (k, pts) in &got {
                    let mut exp = Vec::new();
                    let mut t = start;
                    while t <= end {
                        if let Some(v) = bucket(&want[k], t, step, agg) {
                            exp.push(Sample::new(t, v));
                        }
                        t += step;
                    }
                    assert_eq!(*pts, exp, "{k} start {start} step {step} {agg:?}");
                }
            }
            // Grouped: sum over all series of the per-series step averages.
            let g = db
                .query_grouped(
                    &Selector::all(),
                    start,
                    end,
                    step,
                    Aggregation::Avg,
                    &Grouping {
                        by: vec![],
                        op: Aggregation::Sum,
                    },
                )
                .await
                .unwrap();
            let mut t = start;
            let mut exp = Vec::new();
            while t <= end {
                let vals: Vec<f64> = want
                    .values()
                    .filter_map(|s| bucket(s, t, step, Aggregation::Avg))
                    .collect();
                if !vals.is_empty() {
                    exp.push((t, vals.iter().sum::<f64>()));
                }
                t += step;
            }
            assert_eq!(g[0].1.len(), exp.len());
            for (a, (t, v)) in g[0].1.iter().zip(&exp) {
                assert_eq!(a.ts_ms, *t);
                assert!(
                    (a.value - v).abs() < 1e-9,
                    "start {start} step {step}: {} vs {v}",
                    a.value
                );
            }
        }
    }
}

/// A batch far larger than one WAL record (split into several) replays completely.
#[tokio::test]
async fn huge_batches_are_split_into_bounded_records() {
    let dir = TempDir::new("huge");
    let n = 300_000i64;
    let batch: Vec<(SeriesKey, Vec<Sample>)> = (0..3)
        .map(|s| {
            (
                key(&format!("d{s}"), "p"),
                (0..n)
                    .map(|i| Sample::new(T0 + i * 1000, (i * (s + 1)) as f64 * 0.25))
                    .collect(),
            )
        })
        .collect();
    {
        let db = Tsdb::open(dir.path(), manual()).unwrap();
        db.append(&batch).await.unwrap();
    }
    let db = Tsdb::open(dir.path(), manual()).unwrap();
    // 3 series records and at least 2 samples records (about 9 MB of samples).
    assert!(db.open_report().wal_records >= 5, "{:?}", db.open_report());
    let got = all_raw(&db).await;
    for (k, s) in &batch {
        assert_eq!(got[k], *s);
    }
}
