#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An acknowledged sample survives `kill -9`.
//!
//! The test re-executes its own binary as a child that runs [`kill9_writer_child`]: several
//! concurrent appenders write batches with the background flusher cutting blocks every few
//! thousand samples, and print `ACK <writer> <round>` after each append returns. The parent
//! sends SIGKILL at a random moment, reopens the store and checks that every acknowledged
//! batch is there with the right values. Three kill/reopen cycles run on the same directory.

use palisade_tsdb::{Aggregation, Options, Sample, Selector, SeriesKey, TimeSeriesStore, Tsdb};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DIR_ENV: &str = "PALISADE_TSDB_KILL9_DIR";
const CYCLE_ENV: &str = "PALISADE_TSDB_KILL9_CYCLE";
const BASE_ENV: &str = "PALISADE_TSDB_KILL9_BASE";
const WRITERS: usize = 4;
const SERIES: usize = 50;

fn key(cycle: u32, w: usize, s: usize) -> SeriesKey {
    SeriesKey::new("crash_value")
        .with_label("cycle", cycle.to_string())
        .with_label("writer", w.to_string())
        .with_label("series", s.to_string())
}

fn ts(base: i64, round: u64) -> i64 {
    base + round as i64 * 100
}

fn value(w: usize, s: usize, round: u64) -> f64 {
    (w * 1_000_000 + s * 1000) as f64 + round as f64 * 0.5
}

/// The child: runs only when the parent sets the environment; otherwise passes at once.
#[test]
fn kill9_writer_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let cycle: u32 = std::env::var(CYCLE_ENV).unwrap().parse().unwrap();
    let base: i64 = std::env::var(BASE_ENV).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let opts = Options {
            max_head_samples: 3_000,
            maintenance_interval: Duration::from_millis(200),
            ..Options::default()
        };
        let db = Arc::new(Tsdb::open(&dir, opts).unwrap());
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                for round in 0u64.. {
                    let batch: Vec<(SeriesKey, Vec<Sample>)> = (0..SERIES)
                        .map(|s| {
                            (
                                key(cycle, w, s),
                                vec![Sample::new(ts(base, round), value(w, s, round))],
                            )
                        })
                        .collect();
                    if let Err(e) = db.append(&batch).await {
                        println!("ERR {e}");
                        std::process::exit(3);
                    }
                    println!("ACK {w} {round}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[tokio::test]
async fn acknowledged_samples_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("palisade-tsdb-kill9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = palisade_tsdb::now_ms() - 3_600_000;
    let exe = std::env::current_exe().unwrap();
    // Per cycle: the highest acknowledged round of each writer.
    let mut acked: Vec<[Option<u64>; WRITERS]> = Vec::new();
    for cycle in 0..3u32 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill9_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, &dir)
            .env(CYCLE_ENV, cycle.to_string())
            .env(BASE_ENV, base.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut max: [Option<u64>; WRITERS] = [None; WRITERS];
        let record = |line: &str, max: &mut [Option<u64>; WRITERS]| {
            let mut it = line.split_whitespace();
            match it.next() {
                Some("ACK") => {
                    let w: usize = it.next().unwrap().parse().unwrap();
                    let r: u64 = it.next().unwrap().parse().unwrap();
                    max[w] = Some(max[w].map_or(r, |m| m.max(r)));
                }
                Some("ERR") => panic!("child failed: {line}"),
                _ => {}
            }
        };
        // Let it run until enough has been acknowledged (several flushes), then a random
        // extra moment, then SIGKILL.
        let target = 300 + rand::random::<u64>() % 600;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut total = 0u64;
        while total < target && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                record(&line, &mut max);
                total += 1;
            }
        }
        assert!(
            total >= target,
            "the child acknowledged only {total} batches"
        );
        std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 50));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child was killed");
        // Lines already in the pipe were printed after their acknowledgement: count them.
        reader.join().unwrap();
        for line in rx.try_iter() {
            record(&line, &mut max);
        }
        acked.push(max);

        // Reopen and check every cycle so far.
        let db = Tsdb::open(
            &dir,
            Options {
                background: false,
                ..Options::default()
            },
        )
        .unwrap();
        let got: BTreeMap<SeriesKey, Vec<Sample>> = db
            .query_range(
                &Selector::metric("crash_value"),
                i64::MIN,
                i64::MAX,
                0,
                Aggregation::Raw,
            )
            .await
            .unwrap()
            .into_iter()
            .collect();
        let mut checked = 0u64;
        for (c, max) in acked.iter().enumerate() {
            for (w, m) in max.iter().enumerate() {
                let Some(m) = m else { continue };
                for s in 0..SERIES {
                    let series = got
                        .get(&key(c as u32, w, s))
                        .unwrap_or_else(|| panic!("cycle {c}: series {w}/{s} lost"));
                    let by_ts: BTreeMap<i64, f64> =
                        series.iter().map(|x| (x.ts_ms, x.value)).collect();
                    for r in 0..=*m {
                        assert_eq!(
                            by_ts.get(&ts(base, r)),
                            Some(&value(w, s, r)),
                            "cycle {c} writer {w} series {s}: acknowledged round {r} of {m} lost"
                        );
                        checked += 1;
                    }
                    // Whatever else survived (unacknowledged) is intact, not garbage.
                    for (t, v) in &by_ts {
                        let r = ((t - base) / 100) as u64;
                        assert_eq!(*v, value(w, s, r));
                    }
                }
            }
        }
        assert!(checked > 0);
        eprintln!(
            "cycle {cycle}: {checked} acknowledged samples verified after SIGKILL; open report {:?}",
            db.open_report()
        );
        drop(db);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
