#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The shared store suite (palisade-tsdb's `tests/suite`) and the remote-specific behaviour,
//! against a real VictoriaMetrics single node that this test starts on a free loopback port
//! with a temporary data directory, and stops at the end.
//!
//! The binary: `$PALISADE_TEST_VM_BIN`, else `victoria-metrics` on `PATH`, else
//! `/usr/bin/victoria-metrics` (Debian's `victoria-metrics` package, which `scripts/test`
//! installs through `scripts/victoria-metrics`). Without it the test fails; it never skips.

#[path = "../../palisade-tsdb/tests/suite/mod.rs"]
mod suite;

use palisade_tsdb::{Aggregation, Sample, Selector, SeriesKey, TimeSeriesStore, TsdbError};
use palisade_tsdb_remote::{Auth, RemoteConfig, RemoteStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use suite::{Capabilities, Scope, MIN, T0};

/// A running VictoriaMetrics; killed and its data removed on drop.
struct Victoria {
    child: Child,
    dir: PathBuf,
    base: String,
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn vm_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PALISADE_TEST_VM_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "PALISADE_TEST_VM_BIN={} does not exist; scripts/test installs VictoriaMetrics \
             (scripts/victoria-metrics prints the path)",
            p.display()
        );
        return p;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("victoria-metrics"))
            .find(|p| p.is_file())
    });
    let fallback = Path::new("/usr/bin/victoria-metrics");
    match on_path {
        Some(p) => p,
        None if fallback.is_file() => fallback.to_path_buf(),
        None => panic!(
            "the victoria-metrics binary was not found (PALISADE_TEST_VM_BIN, PATH, \
             /usr/bin/victoria-metrics). scripts/test installs it (via scripts/victoria-metrics: \
             apt-get install victoria-metrics); run that script or set PALISADE_TEST_VM_BIN"
        ),
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn start_victoria() -> Victoria {
    let bin = vm_binary();
    let mut last_log = String::new();
    // The port is free when chosen; another process may take it before VM binds: retry.
    for _ in 0..3 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("palisade-vm-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("victoria-metrics.log");
        let port = free_port();
        let child = Command::new(&bin)
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .arg("-dedup.minScrapeInterval=1ms")
            .arg("-loggerLevel=WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut vm = Victoria {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = vm.child.try_wait() {
                break; // exited (port taken?)
            }
            let health = client
                .get(format!("{}/health", vm.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if matches!(health, Ok(r) if r.status().is_success()) {
                return vm;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last_log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = vm.child.kill();
    }
    panic!("victoria-metrics did not become healthy; its log:\n{last_log}");
}

fn store(vm: &Victoria) -> RemoteStore {
    RemoteStore::new(RemoteConfig::victoria_metrics(&vm.base)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_suite_and_remote_behaviour_against_victoria_metrics() {
    let t = Instant::now();
    let vm = start_victoria().await;
    eprintln!("victoria-metrics ready in {:?} at {}", t.elapsed(), vm.base);
    let db = store(&vm);

    let total = Instant::now();
    suite::run_all(&db, Capabilities::VICTORIA_METRICS, |case, took| {
        eprintln!("suite case {case}: {took:?}");
    })
    .await;
    eprintln!("suite total: {:?}", total.elapsed());

    let t = Instant::now();
    remote_specifics(&vm).await;
    eprintln!("remote specifics: {:?}", t.elapsed());
}

async fn remote_specifics(vm: &Victoria) {
    // Small requests: a batch is split into many, with auth and tenant headers (ignored by
    // a single node) on every request.
    let cfg = RemoteConfig {
        max_samples_per_request: 7,
        max_request_bytes: 300,
        ..RemoteConfig::victoria_metrics(&vm.base)
    }
    .with_auth(Auth::Bearer("token".into()))
    .with_header("X-Scope-OrgID", "palisade")
    .with_timeout(Duration::from_secs(10));
    let small = RemoteStore::new(cfg).unwrap();
    let s = Scope::shared(&small, "remote", Capabilities::VICTORIA_METRICS);
    let key = |d: &str| {
        SeriesKey::new(s.metric("split"))
            .with_label("device", s.dev(d))
            .with_label("instance", "0")
    };
    let batch: Vec<(SeriesKey, Vec<Sample>)> = (0..5)
        .map(|d| {
            (
                key(&format!("d{d}")),
                (0..101)
                    .map(|i| Sample::new(T0 + i * MIN, (i * d) as f64))
                    .collect(),
            )
        })
        .collect();
    small.append(&batch).await.unwrap();
    small.flush().await.unwrap();
    let sel = Selector::metric(s.metric("split"));
    let got = small
        .query_range(&sel, T0, T0 + 200 * MIN, 0, Aggregation::Raw)
        .await
        .unwrap();
    assert_eq!(got, batch);

    // Label names PromQL cannot spell are refused before anything is sent.
    let bad = SeriesKey::new(s.metric("bad")).with_label("a.b", "x");
    let err = small
        .append(&[
            (key("ok"), vec![Sample::new(T0, 1.0)]),
            (bad, vec![Sample::new(T0, 1.0)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, TsdbError::InvalidSeries(_)), "{err}");
    small.flush().await.unwrap();
    assert!(small
        .series(&Selector::all().eq("device", s.dev("ok")))
        .await
        .unwrap()
        .is_empty());

    // A 4xx answer is an error at once, not retried.
    let wrong_path = RemoteStore::new(RemoteConfig {
        write_url: format!("{}/api/v1/no-such-endpoint", vm.base),
        retry_backoff: Duration::from_secs(5),
        ..RemoteConfig::victoria_metrics(&vm.base)
    })
    .unwrap();
    let t = Instant::now();
    let err = wrong_path
        .append(&[(key("x"), vec![Sample::new(T0, 1.0)])])
        .await
        .unwrap_err();
    assert!(matches!(err, TsdbError::Backend(_)), "{err}");
    assert!(err.to_string().contains("1 attempt"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "4xx was retried");

    // A query the engine refuses is an invalid query; an unreachable engine a backend error
    // after the retries.
    let err = small
        .query_range(&sel, T0, T0 + 100_000 * MIN, MIN, Aggregation::Avg)
        .await;
    assert!(err.is_ok(), "long grids are split: {err:?}");
    let dead = RemoteStore::new(RemoteConfig {
        max_retries: 2,
        retry_backoff: Duration::from_millis(10),
        ..RemoteConfig::victoria_metrics(&format!("http://127.0.0.1:{}", free_port()))
    })
    .unwrap();
    let err = dead
        .append(&[(key("x"), vec![Sample::new(T0, 1.0)])])
        .await
        .unwrap_err();
    assert!(
        matches!(err, TsdbError::Backend(_)) && err.to_string().contains("3 attempt"),
        "{err}"
    );
    assert!(matches!(
        dead.series(&Selector::all()).await,
        Err(TsdbError::Backend(_))
    ));

    // An engine without the flush endpoint: flush is a no-op.
    let no_flush = RemoteStore::new(RemoteConfig {
        flush_url: Some(format!("{}/no-such-flush", vm.base)),
        ..RemoteConfig::victoria_metrics(&vm.base)
    })
    .unwrap();
    no_flush.flush().await.unwrap();
    no_flush.flush().await.unwrap();

    // After close, appends fail and reads keep working.
    small.close().await.unwrap();
    assert!(matches!(small.append(&batch).await, Err(TsdbError::Closed)));
    assert_eq!(small.series(&sel).await.unwrap().len(), 5);
}
