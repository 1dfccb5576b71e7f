#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The wire protocol against a scripted HTTP server on loopback: remote_write headers and
//! body (snappy block + protobuf, decoded here independently), auth and tenant headers, the
//! retry policy (5xx and 429 retried, other 4xx not), and Prometheus API answers with
//! values VictoriaMetrics never returns (NaN).

use palisade_tsdb::{Aggregation, Sample, Selector, SeriesKey, TimeSeriesStore, TsdbError};
use palisade_tsdb_remote::{Auth, RemoteConfig, RemoteStore};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Answers each request with the next scripted (status, body), then 204; records requests.
struct Mock {
    base: String,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<VecDeque<(u16, String)>>>,
}

impl Mock {
    async fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (reqs, scr) = (Arc::clone(&requests), Arc::clone(&script));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (reqs, scr) = (Arc::clone(&reqs), Arc::clone(&scr));
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap().split(' ');
                    let method = first.next().unwrap().to_owned();
                    let path = first.next().unwrap().to_owned();
                    let headers: BTreeMap<String, String> = lines
                        .filter_map(|l| l.split_once(": "))
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                        .collect();
                    let len: usize = headers
                        .get("content-length")
                        .map_or(0, |v| v.parse().unwrap());
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap();
                        assert!(n > 0, "short body");
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = buf[head_end..head_end + len].to_vec();
                    reqs.lock().unwrap().push(Request {
                        method,
                        path,
                        headers,
                        body,
                    });
                    let (status, text) = scr
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((204, String::new()));
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Mock {
            base,
            requests,
            script,
        }
    }

    fn answer(&self, status: u16, body: &str) {
        self.script
            .lock()
            .unwrap()
            .push_back((status, body.to_owned()));
    }

    fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    fn store(&self) -> RemoteStore {
        RemoteStore::new(RemoteConfig {
            retry_backoff: Duration::from_millis(5),
            ..RemoteConfig::victoria_metrics(&self.base)
                .with_auth(Auth::Basic {
                    username: "user".into(),
                    password: "pass".into(),
                })
                .with_header("X-Scope-OrgID", "tenant-1")
        })
        .unwrap()
    }
}

// A protobuf reader independent of the encoder under test.
fn varint(b: &[u8], i: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*i];
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return v;
        }
        shift += 7;
    }
}

enum Field<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Bytes(&'a [u8]),
}

fn fields(b: &[u8]) -> Vec<(u64, Field<'_>)> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let tag = varint(b, &mut i);
        let f = match tag & 7 {
            0 => Field::Varint(varint(b, &mut i)),
            1 => {
                i += 8;
                Field::Fixed64(b[i - 8..i].try_into().unwrap())
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                i += n;
                Field::Bytes(&b[i - n..i])
            }
            w => panic!("wire type {w}"),
        };
        out.push((tag >> 3, f));
    }
    out
}

type Series = (Vec<(String, String)>, Vec<Sample>);

fn decode_write_request(body: &[u8]) -> Vec<Series> {
    let mut out = Vec::new();
    for (no, f) in fields(body) {
        let (1, Field::Bytes(ts)) = (no, f) else {
            panic!("WriteRequest field {no}");
        };
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        for (no, f) in fields(ts) {
            let Field::Bytes(msg) = f else { panic!() };
            match no {
                1 => {
                    let mut l = (String::new(), String::new());
                    for (no, f) in fields(msg) {
                        let Field::Bytes(s) = f else { panic!() };
                        let s = String::from_utf8(s.to_vec()).unwrap();
                        if no == 1 {
                            l.0 = s
                        } else {
                            l.1 = s
                        }
                    }
                    labels.push(l);
                }
                2 => {
                    let mut s = Sample::new(0, 0.0);
                    for (no, f) in fields(msg) {
                        match (no, f) {
                            (1, Field::Fixed64(b)) => s.value = f64::from_le_bytes(b),
                            (2, Field::Varint(v)) => s.ts_ms = v as i64,
                            _ => panic!("Sample field {no}"),
                        }
                    }
                    samples.push(s);
                }
                _ => panic!("TimeSeries field {no}"),
            }
        }
        out.push((labels, samples));
    }
    out
}

#[tokio::test]
async fn remote_write_wire_format_headers_and_retries() {
    let mock = Mock::start().await;
    let store = mock.store();
    let key = SeriesKey::new("HostCPU_usage")
        .with_label("device", "web \"1\"")
        .with_label("Zone", "eu");
    let samples = vec![
        Sample::new(1_700_000_000_000, 12.5),
        Sample::new(-5, f64::NEG_INFINITY),
    ];
    // Two server errors, then success: three identical requests.
    mock.answer(503, "busy");
    mock.answer(500, "oops");
    store
        .append(&[
            (key.clone(), samples.clone()),
            (SeriesKey::new("x"), vec![]),
        ])
        .await
        .unwrap();
    let reqs = mock.take();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/v1/write")
        );
        assert_eq!(r.headers["content-encoding"], "snappy");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(r.headers["x-scope-orgid"], "tenant-1");
        assert_eq!(r.headers["authorization"], "Basic dXNlcjpwYXNz");
        assert_eq!(r.body, reqs[0].body);
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&reqs[0].body)
        .unwrap();
    let series = decode_write_request(&raw);
    let labels: Vec<(String, String)> = [
        ("Zone", "eu"),
        ("__name__", "HostCPU_usage"),
        ("device", "web \"1\""),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(series, vec![(labels, samples.clone())]);

    // 429 is retried too; other 4xx fail at once.
    mock.answer(429, "slow down");
    store
        .append(&[(key.clone(), samples.clone())])
        .await
        .unwrap();
    assert_eq!(mock.take().len(), 2);
    mock.answer(400, "bad labels");
    let err = store
        .append(&[(key.clone(), samples.clone())])
        .await
        .unwrap_err();
    assert!(matches!(err, TsdbError::Backend(_)), "{err}");
    assert!(err.to_string().contains("bad labels"), "{err}");
    assert_eq!(mock.take().len(), 1);
    // Persistent server errors: 1 + max_retries attempts, then the error.
    for _ in 0..4 {
        mock.answer(502, "down");
    }
    let err = store.append(&[(key.clone(), samples)]).await.unwrap_err();
    assert!(err.to_string().contains("4 attempt"), "{err}");
    assert_eq!(mock.take().len(), 4);

    // A big batch is split; every sample arrives once, in order per series.
    let store = RemoteStore::new(RemoteConfig {
        max_samples_per_request: 1000,
        ..RemoteConfig::victoria_metrics(&mock.base)
    })
    .unwrap();
    let big: Vec<Sample> = (0..4500).map(|i| Sample::new(i, i as f64)).collect();
    store.append(&[(key.clone(), big.clone())]).await.unwrap();
    let reqs = mock.take();
    assert_eq!(reqs.len(), 5);
    let mut got = Vec::new();
    for r in reqs {
        let raw = snap::raw::Decoder::new().decompress_vec(&r.body).unwrap();
        for (_, s) in decode_write_request(&raw) {
            got.extend(s);
        }
    }
    assert_eq!(got, big);
}

#[tokio::test]
async fn prometheus_api_answers_are_parsed() {
    let mock = Mock::start().await;
    let store = mock.store();
    mock.answer(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"m","a":"x"},"values":[[1.5,"NaN"],[2,"+Inf"],[3.001,"-Inf"],[3.001,"7"],[4,"1e-3"]]}]}}"#,
    );
    let got = store
        .query_range(&Selector::metric("m"), 1000, 5000, 0, Aggregation::Raw)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, SeriesKey::new("m").with_label("a", "x"));
    let s = &got[0].1;
    assert_eq!(s.len(), 4, "equal timestamps collapse to the last");
    assert!(s[0].ts_ms == 1500 && s[0].value.is_nan());
    assert_eq!(
        &s[1..],
        &[
            Sample::new(2000, f64::INFINITY),
            Sample::new(3001, 7.0),
            Sample::new(4000, 0.001),
        ]
    );
    let req = &mock.take()[0];
    assert_eq!(req.path, "/api/v1/query");
    let form: BTreeMap<String, String> = form_pairs(&req.body);
    assert_eq!(form["query"], r#"{__name__="m"}[4001ms]"#);
    assert_eq!(form["time"], "5.000");
    assert_eq!(req.headers["authorization"], "Basic dXNlcjpwYXNz");

    // Step queries ask for <agg>_over_time at t + step - 1ms and relabel to t.
    mock.answer(
        200,
        r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"x"},"values":[[60.999,"2"],[180.999,"NaN"]]}]}}"#,
    );
    let got = store
        .query_range(
            &Selector::metric("m"),
            1000,
            200_000,
            60_000,
            Aggregation::Sum,
        )
        .await
        .unwrap();
    assert_eq!(got[0].0, SeriesKey::new("m").with_label("a", "x"));
    assert_eq!(got[0].1[0], Sample::new(1000, 2.0));
    assert_eq!(got[0].1[1].ts_ms, 121_000);
    let form = form_pairs(&mock.take()[0].body);
    assert_eq!(form["query"], r#"sum_over_time({__name__="m"}[60000ms])"#);
    assert_eq!(
        (form["start"].as_str(), form["end"].as_str()),
        ("60.999", "240.999")
    );
    assert_eq!(form["step"], "60.000");

    // The engine refusing a query is an invalid query; garbage is a backend error.
    mock.answer(
        422,
        r#"{"status":"error","errorType":"bad_data","error":"no"}"#,
    );
    let err = store
        .query_range(&Selector::metric("m"), 0, 1, 0, Aggregation::Raw)
        .await
        .unwrap_err();
    assert!(matches!(err, TsdbError::InvalidQuery(_)), "{err}");
    mock.answer(200, "<html>");
    let err = store.series(&Selector::all()).await.unwrap_err();
    assert!(matches!(err, TsdbError::Backend(_)), "{err}");
    mock.answer(
        200,
        r#"{"status":"success","data":["b","__name__","a","a"]}"#,
    );
    assert_eq!(
        store.label_names().await.unwrap(),
        vec!["__name__", "a", "b"]
    );
    mock.take();
}

fn form_pairs(body: &[u8]) -> BTreeMap<String, String> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
