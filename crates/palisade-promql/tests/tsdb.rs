#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Evaluation against the real embedded store gives the same answers as the in-memory
//! reference store.

mod common;

use common::{key, MemStore};
use palisade_promql::eval::EvalOptions;
use palisade_promql::{api, eval, parse, Value};
use palisade_tsdb::{now_ms, Options, Sample, SeriesKey, TimeSeriesStore, Tsdb};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "palisade-promql-test-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data(end: i64) -> Vec<(SeriesKey, Vec<Sample>)> {
    let mut out = Vec::new();
    for (d, device) in ["web-1", "web-2", "db-1"].iter().enumerate() {
        for (p, datapoint) in ["in", "out"].iter().enumerate() {
            let k = key(
                "net_bytes_total",
                &[("device", device), ("datapoint", datapoint)],
            );
            let mut v = 0.0;
            let samples: Vec<Sample> = (0..240)
                .map(|i| {
                    // A counter with a reset half-way for one series.
                    v = if d == 1 && p == 0 && i == 120 {
                        3.0
                    } else {
                        v + (10 * (d + 1) + p) as f64 + (i % 7) as f64
                    };
                    Sample::new(end - (239 - i) * 15_000, v)
                })
                .collect();
            out.push((k, samples));
        }
        out.push((
            key("cpu_usage", &[("device", device)]),
            (0..240)
                .map(|i| Sample::new(end - (239 - i) * 15_000, (i * (d as i64 + 3) % 100) as f64))
                .collect(),
        ));
    }
    out
}

#[tokio::test]
async fn embedded_store_matches_reference() {
    let dir = TempDir::new();
    let opts = Options {
        background: false,
        ..Options::default()
    };
    let db = Tsdb::open(&dir.0, opts).unwrap();
    let end = now_ms() / 60_000 * 60_000;
    let batch = data(end);
    db.append(&batch).await.unwrap();
    let reference = MemStore::new();
    reference.append(&batch).await.unwrap();

    let queries = [
        "net_bytes_total",
        "rate(net_bytes_total[5m])",
        "sum by (device) (rate(net_bytes_total{datapoint=\"in\"}[5m]))",
        "increase(net_bytes_total[10m] offset 5m)",
        "irate(net_bytes_total{device=~\"web-.*\"}[1m])",
        "avg_over_time(cpu_usage[10m])",
        "max without (device) (cpu_usage)",
        "topk(2, cpu_usage)",
        "cpu_usage > 50",
        "sum by (device) (rate(net_bytes_total[5m])) / on(device) group(cpu_usage) by (device)",
        "sum(rate({__name__=~\"net_.*\", datapoint!=\"out\"}[2m])) * 8",
    ];
    let (start, step) = (end - 3_600_000, 60_000);
    for round in 0..2 {
        for q in queries {
            let e = parse(q).unwrap();
            let got = eval::range(&db, &e, start, end, step).await.unwrap();
            let want = eval::range(&reference, &e, start, end, step).await.unwrap();
            assert_eq!(got, want, "{q} (round {round})");
            match &got {
                Value::Matrix(m) => assert!(!m.is_empty(), "{q}"),
                v => panic!("{v:?}"),
            }
            let got = eval::instant(&db, &e, end - 90_000).await.unwrap();
            let want = eval::instant(&reference, &e, end - 90_000).await.unwrap();
            assert_eq!(got, want, "{q} (round {round})");
        }
        // Second round: the samples come from blocks instead of the head.
        db.flush().await.unwrap();
    }

    // The reset is handled: increase over the whole hour equals the true increase
    // (extrapolation aside) and is positive.
    let e = parse("increase(net_bytes_total{device=\"web-2\", datapoint=\"in\"}[1h])").unwrap();
    match eval::instant(&db, &e, end).await.unwrap() {
        Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert!(v[0].value > 0.0);
        }
        v => panic!("{v:?}"),
    }

    // The API on top of the embedded store.
    let params: Vec<(String, String)> = [
        (
            "query",
            "sum by (device) (rate(net_bytes_total[5m]))".to_string(),
        ),
        ("start", format!("{}", start / 1000)),
        ("end", format!("{}", end / 1000)),
        ("step", "60".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (status, body) = api::query_range(&db, &params, &EvalOptions::default()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 3);
    let (status, body) = api::label_values(&db, "device", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::json!(["db-1", "web-1", "web-2"]));
    let match_cpu = vec![("match[]".to_string(), "cpu_usage".to_string())];
    let (_, body) = api::series(&db, &match_cpu).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    let (_, body) = api::labels(&db, &[]).await;
    assert_eq!(
        body["data"],
        serde_json::json!(["__name__", "datapoint", "device"])
    );
    db.close().await.unwrap();
}
