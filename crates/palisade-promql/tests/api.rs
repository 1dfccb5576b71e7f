#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{key, MemStore};
use palisade_promql::api;
use palisade_promql::eval::EvalOptions;
use serde_json::{json, Value as Json};

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const T0: i64 = 1_700_000_000_000;

fn store() -> MemStore {
    let s = MemStore::new();
    s.add(
        key("up", &[("job", "api"), ("instance", "a")]),
        &[(T0 - 30_000, 1.0), (T0, 1.0)],
    );
    s.add(
        key("up", &[("job", "db"), ("instance", "b")]),
        &[(T0 - 30_000, 0.0), (T0, 0.5)],
    );
    s.add(key("temp", &[("room", "x")]), &[(T0, f64::INFINITY)]);
    s
}

async fn query(s: &MemStore, p: &[(&str, &str)]) -> (u16, Json) {
    api::query(s, &params(p), T0, &EvalOptions::default()).await
}

async fn query_range(s: &MemStore, p: &[(&str, &str)]) -> (u16, Json) {
    api::query_range(s, &params(p), &EvalOptions::default()).await
}

fn assert_error(resp: &(u16, Json), status: u16, kind: &str, fragment: &str) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["status"], "error");
    assert_eq!(resp.1["errorType"], kind, "{}", resp.1);
    let msg = resp.1["error"].as_str().unwrap();
    assert!(msg.contains(fragment), "{msg:?} lacks {fragment:?}");
}

#[tokio::test]
async fn instant_query_shapes() {
    let s = store();
    let (status, body) = query(&s, &[("query", "up"), ("time", "1700000000")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a", "job": "api"}, "value": [1_700_000_000i64, "1"]},
            {"metric": {"__name__": "up", "instance": "b", "job": "db"}, "value": [1_700_000_000i64, "0.5"]}
        ]}})
    );
    // `time` defaults to now; RFC 3339 works too; fractions are kept.
    let (_, by_default) = query(&s, &[("query", "up")]).await;
    assert_eq!(by_default, body);
    let (_, rfc) = query(&s, &[("query", "up"), ("time", "2023-11-14T22:13:20Z")]).await;
    assert_eq!(rfc, body);
    let (_, b) = query(&s, &[("query", "1.5"), ("time", "1700000000.25")]).await;
    assert_eq!(
        b,
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1_700_000_000.25, "1.5"]}})
    );
    let (_, b) = query(&s, &[("query", "\"hi\"")]).await;
    assert_eq!(b["data"]["resultType"], "string");
    assert_eq!(b["data"]["result"], json!([1_700_000_000i64, "hi"]));
    let (_, b) = query(&s, &[("query", "temp")]).await;
    assert_eq!(b["data"]["result"][0]["value"][1], "+Inf");
    let (_, b) = query(&s, &[("query", "-temp")]).await;
    assert_eq!(b["data"]["result"][0]["value"][1], "-Inf");
    assert_eq!(b["data"]["result"][0]["metric"], json!({"room": "x"}));
    let (_, b) = query(&s, &[("query", "vector(0/0)")]).await;
    assert_eq!(b["data"]["result"][0]["value"][1], "NaN");
    // A range selector gives the raw samples.
    let (_, b) = query(&s, &[("query", "up{job=\"api\"}[1m]")]).await;
    assert_eq!(b["data"]["resultType"], "matrix");
    assert_eq!(
        b["data"]["result"][0]["values"],
        json!([[1_699_999_970i64, "1"], [1_700_000_000i64, "1"]])
    );
    // Empty results are an empty array.
    let (_, b) = query(&s, &[("query", "nothing")]).await;
    assert_eq!(b["data"]["result"], json!([]));
}

#[tokio::test]
async fn range_query_shapes() {
    let s = store();
    let (status, body) = query_range(
        &s,
        &[
            ("query", "sum(up)"),
            ("start", "1699999970"),
            ("end", "1700000000"),
            ("step", "15s"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1_699_999_970i64, "1"], [1_699_999_985i64, "1"], [1_700_000_000i64, "1.5"]]}
        ]}})
    );
    // Steps in seconds, fractional times.
    let (status, body) = query_range(
        &s,
        &[
            ("query", "time()"),
            ("start", "1700000000.5"),
            ("end", "1700000001.5"),
            ("step", "0.5"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([
            [1_700_000_000.5, "1700000000.5"],
            [1_700_000_001i64, "1700000001"],
            [1_700_000_001.5, "1700000001.5"]
        ])
    );
}

#[tokio::test]
async fn query_errors() {
    let s = store();
    assert_error(&query(&s, &[]).await, 400, "bad_data", "\"query\"");
    assert_error(
        &query(&s, &[("query", "sum(up")]).await,
        400,
        "bad_data",
        "position 6",
    );
    assert_error(
        &query(&s, &[("query", "up"), ("time", "yesterday")]).await,
        400,
        "bad_data",
        "\"time\"",
    );
    assert_error(
        &query(&s, &[("query", "up / on(job) group_left up")]).await,
        400,
        "bad_data",
        "group_left",
    );
    assert_error(
        &query(&s, &[("query", "up / on() up")]).await,
        422,
        "execution",
        "many-to-many",
    );
    let tiny = EvalOptions {
        max_samples: 1,
        ..EvalOptions::default()
    };
    let r = api::query(&s, &params(&[("query", "up")]), T0, &tiny).await;
    assert_error(&r, 422, "execution", "too many samples");
    let r = api::query(
        &s,
        &params(&[("query", "up"), ("timeout", "0.000001")]),
        T0,
        &EvalOptions::default(),
    )
    .await;
    assert_error(&r, 400, "bad_data", "timeout");
    let r = api::query(
        &s,
        &params(&[("query", "up"), ("timeout", "1ms")]),
        T0,
        &EvalOptions {
            timeout: Some(std::time::Duration::ZERO),
            ..EvalOptions::default()
        },
    )
    .await;
    assert_error(&r, 503, "timeout", "timed out");
    let base = [
        ("query", "up"),
        ("start", "1700000000"),
        ("end", "1700003600"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut p = base.to_vec();
        p.push(extra);
        p
    };
    assert_error(&query_range(&s, &base).await, 400, "bad_data", "\"step\"");
    assert_error(
        &query_range(&s, &with(("step", "0"))).await,
        400,
        "bad_data",
        "zero or negative",
    );
    assert_error(
        &query_range(&s, &with(("step", "-5"))).await,
        400,
        "bad_data",
        "zero or negative",
    );
    assert_error(
        &query_range(&s, &with(("step", "0.1"))).await,
        400,
        "bad_data",
        "exceeded maximum resolution of 11000 points",
    );
    assert!(query_range(&s, &with(("step", "0.33"))).await.0 == 200);
    assert_error(
        &query_range(
            &s,
            &[
                ("query", "up"),
                ("start", "10"),
                ("end", "5"),
                ("step", "1"),
            ],
        )
        .await,
        400,
        "bad_data",
        "before start",
    );
    assert_error(
        &query_range(
            &s,
            &[
                ("query", "up[5m]"),
                ("start", "1"),
                ("end", "5"),
                ("step", "1"),
            ],
        )
        .await,
        400,
        "bad_data",
        "range vector",
    );
}

#[tokio::test]
async fn series_labels_and_values() {
    let s = store();
    let (status, body) = api::series(&s, &params(&[("match[]", "up{job=\"api\"}")])).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "success", "data": [{"__name__": "up", "instance": "a", "job": "api"}]})
    );
    // The union over matchers, each series once, sorted.
    let (_, body) = api::series(
        &s,
        &params(&[
            ("match[]", "up"),
            ("match[]", "{room=\"x\"}"),
            ("match[]", "up{job=\"db\"}"),
            ("start", "1699990000"),
            ("end", "2023-11-14T22:13:20Z"),
        ]),
    )
    .await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["__name__"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["temp", "up", "up"]);
    let (_, body) = api::series(&s, &params(&[("match[]", "up"), ("limit", "1")])).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_error(
        &api::series(&s, &params(&[])).await,
        400,
        "bad_data",
        "no match[]",
    );
    assert_error(
        &api::series(&s, &params(&[("match[]", "rate(up[5m])")])).await,
        400,
        "bad_data",
        "match[]",
    );
    assert_error(
        &api::series(&s, &params(&[("match[]", "{job=~\".*\"}")])).await,
        400,
        "bad_data",
        "non-empty matcher",
    );
    assert_error(
        &api::series(&s, &params(&[("match[]", "up"), ("start", "x")])).await,
        400,
        "bad_data",
        "\"start\"",
    );

    let (_, body) = api::labels(&s, &params(&[])).await;
    assert_eq!(body["data"], json!(["__name__", "instance", "job", "room"]));
    let (_, body) = api::labels(&s, &params(&[("match[]", "temp")])).await;
    assert_eq!(body["data"], json!(["__name__", "room"]));
    let (_, body) = api::labels(&s, &params(&[("match[]", "nothing")])).await;
    assert_eq!(body["data"], json!([]));

    let (_, body) = api::label_values(&s, "job", &params(&[])).await;
    assert_eq!(body["data"], json!(["api", "db"]));
    let (_, body) = api::label_values(&s, "__name__", &params(&[])).await;
    assert_eq!(body["data"], json!(["temp", "up"]));
    let (_, body) =
        api::label_values(&s, "job", &params(&[("match[]", "up{instance=\"b\"}")])).await;
    assert_eq!(body["data"], json!(["db"]));
    let (_, body) = api::label_values(&s, "missing", &params(&[])).await;
    assert_eq!(body["data"], json!([]));
    assert_error(
        &api::label_values(&s, "bad-name", &params(&[])).await,
        400,
        "bad_data",
        "invalid label name",
    );
}

#[test]
fn helpers() {
    assert_eq!(
        api::error_response(api::ErrorKind::Timeout, "slow"),
        (
            503,
            json!({"status": "error", "errorType": "timeout", "error": "slow"})
        )
    );
    assert_eq!(api::success_response(json!([])).0, 200);
    assert_eq!(api::ErrorKind::Internal.status(), 500);
}

#[tokio::test]
async fn text_variants_match_json_values() {
    let s = store();
    let opts = EvalOptions::default();
    for p in [
        vec![("query", "up"), ("time", "1700000000.5")],
        vec![("query", "up[1m]")],
        vec![("query", "-temp")],
        vec![("query", "\"s\\\"q\"")],
        vec![("query", "1 +")],
    ] {
        let p = params(&p);
        let (s1, json) = api::query(&s, &p, T0, &opts).await;
        let (s2, text) = api::query_text(&s, &p, T0, &opts).await;
        assert_eq!(s1, s2);
        assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), json, "{text}");
    }
    let p = params(&[
        ("query", "rate(up[1m]) or up"),
        ("start", "1699999900"),
        ("end", "1700000000"),
        ("step", "7.5"),
    ]);
    let (s1, json) = api::query_range(&s, &p, &opts).await;
    let (s2, text) = api::query_range_text(&s, &p, &opts).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), json);
    let (status, text) = api::query_range_text(&s, &params(&[("query", "up")]), &opts).await;
    assert_eq!(status, 400);
    assert!(text.contains("bad_data"));
}
