#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Benchmarks of the embedded store against the targets of issue 4 and the research notes.
//!
//! Dataset (as in `metrics-research.md` §E): 200 devices × 50 datapoints = 10k series,
//! one sample per minute for one UTC day (14.4M samples); 50% random-walk gauges with one
//! decimal, 30% counters with random increments, 20% mostly-constant status values.
//!
//! 1. Durable ingest, live-shaped: batches of 10k series × 1 sample (one timestamp per
//!    call), one appender (6 hours of data) and two concurrent appenders (the whole day),
//!    each call returning only after the WAL group commit; background flushes run as
//!    configured by default. Measured through the trait (`append` with the prebuilt
//!    `SeriesKey`s, as the portal holds them) and through `Tsdb::append_refs` (handles
//!    resolved once). The line starting with `TARGET` sums up the target shape.
//! 2. Disk: bytes per sample after flush + compaction (index included; rollups separately).
//! 3. Query A: the average across all 10k series over the day at 1-minute steps
//!    (`avg(avg_over_time(x[1m]))`), and `avg by (datapoint)`; Query B: one device's 50
//!    series over the day, raw; Query D: `max_over_time([1d])` for every series.
//!
//! Run: `cargo bench -p palisade-tsdb --bench tsdb` (`-- --quick` for a 6-hour dataset,
//! `-- --ingest-only` to stop after the ingest runs, `-- --only keys|refs` for just the
//! two-appender run through one API, e.g. under a profiler).
//! Set `PALISADE_TSDB_BENCH_DIR` to put the store elsewhere than the temp directory.

use palisade_tsdb::{
    Aggregation, Grouping, Options, Sample, Selector, SeriesKey, TimeSeriesStore, Tsdb, DAY_MS,
};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICES: usize = 200;
const DATAPOINTS: usize = 50;
const SERIES: usize = DEVICES * DATAPOINTS;
const MIN: i64 = 60_000;
const DATASOURCES: [&str; 5] = ["HostCPU", "HostMemory", "HostDisk", "HostNet", "Ping"];

fn keys() -> Vec<SeriesKey> {
    let mut v = Vec::with_capacity(SERIES);
    for d in 0..DEVICES {
        for p in 0..DATAPOINTS {
            let ds = DATASOURCES[p / 10];
            let dp = format!("dp{}", p % 10);
            v.push(
                SeriesKey::new(format!("{ds}_{dp}"))
                    .with_label("device", format!("dev-{d:03}"))
                    .with_label("datasource", ds)
                    .with_label("instance", "0")
                    .with_label("datapoint", format!("{ds}.{dp}")),
            );
        }
    }
    v
}

/// `values[minute * SERIES + series]`
fn values(minutes: usize) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut state: Vec<i64> = (0..SERIES)
        .map(|s| match s % 10 {
            0..=4 => rng.gen_range(0..1000),
            5..=7 => rng.gen_range(0..1_000_000),
            _ => 1,
        })
        .collect();
    let mut out = Vec::with_capacity(minutes * SERIES);
    for _ in 0..minutes {
        for (s, st) in state.iter_mut().enumerate() {
            let v = match s % 10 {
                0..=4 => {
                    *st += rng.gen_range(-20..=20);
                    *st as f64 / 10.0
                }
                5..=7 => {
                    *st += rng.gen_range(0..1000);
                    *st as f64
                }
                _ => {
                    if rng.gen_range(0..500) == 0 {
                        *st = rng.gen_range(0..4);
                    }
                    *st as f64
                }
            };
            out.push(v);
        }
    }
    out
}

fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(0.0) + f[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Ingest {
    samples: u64,
    wall: f64,
    cpu: f64,
    lat_p50_ms: f64,
    lat_p99_ms: f64,
}

/// How the appenders hand samples to the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `TimeSeriesStore::append` with the keys (the trait; what a remote backend gets too).
    Keys,
    /// `Tsdb::append_refs` with handles resolved once per appender before the clock starts.
    Refs,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Api::Keys => "append(keys)      ",
            Api::Refs => "append_refs(refs) ",
        }
    }
}

/// `appenders` concurrent tasks, like a sender with that many connections: each takes the
/// next minute (in time order, from a shared counter), writes it as one call with one
/// sample for each of the 10k series (one timestamp per call), and waits for it to be
/// durable before taking the next. (Fixed minute subsets per appender instead would let the
/// appenders drift apart by hundreds of minutes, which no real sender does.)
async fn ingest(
    db: &Arc<Tsdb>,
    keys: &[SeriesKey],
    vals: &Arc<Vec<f64>>,
    day: i64,
    minutes: usize,
    appenders: usize,
    api: Api,
) -> Ingest {
    // The batches are built before the clock starts, as an ingest path holds them: the keys
    // (or their handles) prebuilt; each call only writes the new timestamp and values.
    let mut key_batches = Vec::new();
    let mut ref_batches = Vec::new();
    for _ in 0..appenders {
        match api {
            Api::Keys => key_batches.push(
                keys.iter()
                    .map(|k| (k.clone(), vec![Sample::new(0, 0.0)]))
                    .collect::<Vec<(SeriesKey, Vec<Sample>)>>(),
            ),
            Api::Refs => ref_batches.push(
                db.resolve(keys)
                    .unwrap()
                    .into_iter()
                    .map(|r| (r, Sample::new(0, 0.0)))
                    .collect::<Vec<_>>(),
            ),
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..appenders {
        let db = Arc::clone(db);
        let vals = Arc::clone(vals);
        let next = Arc::clone(&next);
        let mut key_batch = key_batches.pop().unwrap_or_default();
        let mut ref_batch = ref_batches.pop().unwrap_or_default();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let m = next.fetch_add(1, Ordering::Relaxed);
                if m >= minutes {
                    break;
                }
                let ts = day + m as i64 * MIN;
                let row = &vals[m * SERIES..(m + 1) * SERIES];
                let t = Instant::now();
                match api {
                    Api::Keys => {
                        for (entry, v) in key_batch.iter_mut().zip(row) {
                            entry.1[0] = Sample::new(ts, *v);
                        }
                        db.append(&key_batch).await.unwrap();
                    }
                    Api::Refs => {
                        for (entry, v) in ref_batch.iter_mut().zip(row) {
                            entry.1 = Sample::new(ts, *v);
                        }
                        db.append_refs(&ref_batch).await.unwrap();
                    }
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = t0.elapsed().as_secs_f64();
    Ingest {
        samples: (minutes * SERIES) as u64,
        wall,
        cpu: cpu_seconds() - cpu0,
        lat_p50_ms: pct(&mut lat, 0.5),
        lat_p99_ms: pct(&mut lat, 0.99),
    }
}

fn report_ingest(name: &str, r: &Ingest) {
    println!(
        "ingest {name}: {} samples in {:.2} s = {:.2} M samples/s wall; process CPU {:.2} s = {:.2} M samples per CPU-second; append latency p50 {:.1} ms, p99 {:.1} ms",
        r.samples,
        r.wall,
        r.samples as f64 / r.wall / 1e6,
        r.cpu,
        r.samples as f64 / r.cpu / 1e6,
        r.lat_p50_ms,
        r.lat_p99_ms
    );
}

async fn time_query<F, Fut, T>(name: &str, runs: usize, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let _warm = f().await;
    let mut times = Vec::new();
    let mut last = None;
    let cpu0 = cpu_seconds();
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let cpu_ms = (cpu_seconds() - cpu0) * 1000.0 / runs as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "{name}: wall p50 {:.2} ms (min {:.2}, max {:.2}); process CPU {:.1} ms per query ({runs} warm runs)",
        pct(&mut times, 0.5),
        min,
        max,
        cpu_ms
    );
    last.unwrap()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ingest_only = std::env::args().any(|a| a == "--ingest-only");
    let minutes = if quick { 360 } else { 1440 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `--reuse DIR`: keep the sealed store in DIR and, when it is already there, skip
    // ingest and sealing (for iterating on queries).
    let reuse: Option<std::path::PathBuf> = std::env::args()
        .skip_while(|a| a != "--reuse")
        .nth(1)
        .map(std::path::PathBuf::from);
    let base_dir = reuse.clone().unwrap_or_else(|| {
        std::env::var_os("PALISADE_TSDB_BENCH_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("palisade-tsdb-bench-{}", std::process::id()))
    });
    let reused = reuse.is_some() && base_dir.join("main").join("series.cat").exists();
    if reuse.is_none() {
        let _ = std::fs::remove_dir_all(&base_dir);
    }
    println!(
        "machine: {} CPUs, load average {} at start; dataset {SERIES} series × {minutes} minutes",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        loadavg()
    );
    let keys = keys();
    let t = Instant::now();
    let vals = Arc::new(values(minutes));
    println!(
        "generated {} values in {:.1} s",
        vals.len(),
        t.elapsed().as_secs_f64()
    );
    // A day that is over (compaction needs that) but within the raw retention.
    let day = (palisade_tsdb::now_ms() / DAY_MS - 2) * DAY_MS;

    rt.block_on(async {
        let day_file = base_dir.join("day");
        let (db, day) = if reused {
            let day: i64 = std::fs::read_to_string(&day_file).unwrap().trim().parse().unwrap();
            println!("reusing the sealed store in {}", base_dir.display());
            let opts = Options { background: false, ..Options::default() };
            (Arc::new(Tsdb::open(base_dir.join("main"), opts).unwrap()), day)
        } else {
            // 1. Durable ingest, live-shaped: every call is 10k series × 1 sample (one
            //    timestamp); one appender over 6 hours, then two concurrent appenders over
            //    the whole dataset; each through the trait (keys) and through handles. The
            //    two-appender run through the trait fills the store used below.
            let ingest_opts = || Options {
                maintenance_interval: Duration::from_secs(3600),
                ..Options::default()
            };
            let mut two = Vec::new();
            // `--only keys|refs`: only the two-appender run through that API (for profiling).
            let only = std::env::args().skip_while(|a| a != "--only").nth(1);
            if let Some(only) = only {
                let api = if only == "refs" { Api::Refs } else { Api::Keys };
                let dir = base_dir.join("only");
                let db = Arc::new(Tsdb::open(&dir, ingest_opts()).unwrap());
                let r = ingest(&db, &keys, &vals, day, minutes, 2, api).await;
                report_ingest(&format!("{} 2 appenders", api.name()), &r);
                db.close().await.unwrap();
                drop(db);
                let _ = std::fs::remove_dir_all(&dir);
                return;
            }
            for api in [Api::Keys, Api::Refs] {
                let dir = base_dir.join("one");
                let db = Arc::new(Tsdb::open(&dir, ingest_opts()).unwrap());
                let r = ingest(&db, &keys, &vals, day, minutes.min(360), 1, api).await;
                report_ingest(&format!("{} 1 appender ", api.name()), &r);
                db.close().await.unwrap();
                drop(db);
                let _ = std::fs::remove_dir_all(&dir);
                if api == Api::Refs {
                    let dir = base_dir.join("refs");
                    let db = Arc::new(Tsdb::open(&dir, ingest_opts()).unwrap());
                    let r = ingest(&db, &keys, &vals, day, minutes, 2, api).await;
                    report_ingest(&format!("{} 2 appenders", api.name()), &r);
                    two.push((api, r.samples as f64 / r.wall / 1e6));
                    db.close().await.unwrap();
                    drop(db);
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            let dir = base_dir.join("main");
            let db = Arc::new(Tsdb::open(&dir, ingest_opts()).unwrap());
            let r = ingest(&db, &keys, &vals, day, minutes, 2, Api::Keys).await;
            report_ingest(&format!("{} 2 appenders", Api::Keys.name()), &r);
            two.insert(0, (Api::Keys, r.samples as f64 / r.wall / 1e6));
            println!(
                "TARGET durable ingest, {SERIES} series × 1 timestamp per call, 2 concurrent appenders (target ≥ 2.5 M samples/s): {}",
                two.iter()
                    .map(|(api, m)| format!("{} {m:.2} M/s", api.name().trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if ingest_only {
                return;
            }

            // 2. Seal: flush, compact the day, measure the disk.
            let t = Instant::now();
            let f = db.flush_now().unwrap();
            let flush_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let m = db.maintain_at(day + 2 * DAY_MS).unwrap();
            println!(
                "seal: final flush of {} samples {:.2} s; compaction of {} day(s) incl. rollups {:.2} s",
                f.samples,
                flush_s,
                m.compacted_days,
                t.elapsed().as_secs_f64()
            );
            std::fs::write(&day_file, day.to_string()).unwrap();
            (db, day)
        };
        let u = db.disk_usage().unwrap();
        let n = (minutes * SERIES) as f64;
        println!(
            "disk: raw blocks {} B = {:.3} B/sample (chunks + per-block index); + catalog {} B = {:.3} B/sample; hourly rollups {} B (+{:.3} B/sample); WAL {} B",
            u.raw_blocks,
            u.raw_blocks as f64 / n,
            u.catalog,
            (u.raw_blocks + u.catalog) as f64 / n,
            u.rollup_blocks,
            u.rollup_blocks as f64 / n,
            u.wal
        );

        // 3. Queries (warm: the block file is in the page cache).
        let end = day + minutes as i64 * MIN - 1;
        let all = Selector::all();
        let g = Grouping { by: vec![], op: Aggregation::Avg };
        let runs_a = std::env::args()
            .skip_while(|a| a != "--runs-a")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(9);
        let res = time_query("query A: avg across 10k series, 1 day @ 1 min", runs_a, || db.query_grouped(&all, day, end, MIN, Aggregation::Avg, &g)).await.unwrap();
        assert_eq!(res.len(), 1);
        assert_eq!(res[0].1.len(), minutes);
        let g2 = Grouping { by: vec!["datapoint".into()], op: Aggregation::Avg };
        let res = time_query("query A': avg by (datapoint), 1 day @ 1 min", 9, || db.query_grouped(&all, day, end, MIN, Aggregation::Avg, &g2)).await.unwrap();
        assert_eq!(res.len(), DATAPOINTS);
        let dev = Selector::all().eq("device", "dev-017");
        let res = time_query("query B: one device's 50 series, raw, 1 day", 31, || db.query_range(&dev, day, end, 0, Aggregation::Raw)).await.unwrap();
        assert_eq!(res.len(), DATAPOINTS);
        assert!(res.iter().all(|(_, s)| s.len() == minutes));
        let res = time_query("query B': one device's 50 series, avg @ 1 min, 1 day", 31, || db.query_range(&dev, day, end, MIN, Aggregation::Avg)).await.unwrap();
        assert_eq!(res.len(), DATAPOINTS);
        let res = time_query("query D: max_over_time(1 day) for 10k series", 5, || db.query_range(&all, day, day, DAY_MS, Aggregation::Max)).await.unwrap();
        assert_eq!(res.len(), SERIES);
        db.close().await.unwrap();
    });
    println!("load average {} at end", loadavg());
    if reuse.is_none() {
        let _ = std::fs::remove_dir_all(&base_dir);
    }
}
