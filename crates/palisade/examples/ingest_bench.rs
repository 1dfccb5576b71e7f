//! End-to-end HTTP benchmark of push ingest (`POST /rest/v2/metric/ingest?create=true`).
//!
//! Sends LMv1-signed, gzip-compressed ingest requests as the LogicMonitor data SDK does (the
//! signature covers the uncompressed body and the path below `/rest`) over `--connections`
//! keep-alive HTTP/1.1 connections, each sending its next request as soon as the previous one
//! is answered, for `--seconds`; then prints requests/s, accepted samples/s, latency
//! percentiles and error counts.
//!
//! The estate is `--devices` devices × `--instances` instances × `--datapoints` datapoints of
//! one datasource. Each device becomes one payload (several if it has more than 100
//! instances, the API's limit per payload); payloads are packed into requests of at most
//! 1 MiB uncompressed. One request carries one timestamp for all its samples: the current
//! second, as a pusher sends fresh data (requests within the same second repeat the
//! timestamp: the store keeps the last value). Bodies are built, compressed and signed once
//! per request slot and second, so the client spends little CPU next to the server.
//!
//! Before the measured run every request slot is sent once (this creates the devices and
//! instances: `create=true`), so device creation is not measured.
//!
//! ```text
//! cargo run --release -p palisade --example ingest_bench -- \
//!     --url http://127.0.0.1:8080 --access-id ID --access-key KEY \
//!     --connections 2 --seconds 10 --devices 100 --instances 10 --datapoints 4
//! ```

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Parser;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest uncompressed request body the server accepts.
const MAX_BODY: usize = 1024 * 1024;
/// Most instances in one payload.
const MAX_INSTANCES_PER_PAYLOAD: usize = 100;
/// The path the LMv1 signature covers (the data SDK's host ends in `/rest`).
const SIGNED_PATH: &str = "/v2/metric/ingest";

#[derive(Debug, Parser)]
#[command(about = "HTTP push-ingest benchmark for Palisade (LMv1 + gzip)")]
struct Args {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// LMv1 access id.
    #[arg(long)]
    access_id: String,
    /// LMv1 access key.
    #[arg(long)]
    access_key: String,
    /// Concurrent keep-alive connections (one request in flight on each).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Length of the measured run in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Devices (one payload each, more when a device has over 100 instances).
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Instances per device.
    #[arg(long, default_value_t = 10)]
    instances: usize,
    /// Datapoints per instance.
    #[arg(long, default_value_t = 4)]
    datapoints: usize,
    /// Datasource name.
    #[arg(long, default_value = "BenchIngest")]
    datasource: String,
    /// Device name prefix (devices are `<prefix>-00000`, ...).
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// gzip level (0-9).
    #[arg(long, default_value_t = 1)]
    gzip_level: u32,
}

/// One request slot: a fixed set of payloads (device, instance range).
#[derive(Debug, Clone)]
struct Slot {
    /// (device index, first instance, instance count).
    parts: Vec<(usize, usize, usize)>,
    samples: u64,
}

/// A ready request: body compressed and signed for one second.
struct Prepared {
    second: i64,
    gzipped: Arc<Vec<u8>>,
    authorization: String,
    samples: u64,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One payload's JSON: one device, instances `[first, first + count)`.
fn payload_json(a: &Args, device: usize, first: usize, count: usize, ts: i64, out: &mut String) {
    use std::fmt::Write as _;
    let name = format!("{}-{device:05}", a.prefix);
    let _ = write!(
        out,
        r#"{{"resourceName":"{name}","resourceIds":{{"system.displayname":"{name}"}},"dataSource":"{}","dataSourceGroup":"bench","instances":["#,
        a.datasource
    );
    for i in first..first + count {
        if i > first {
            out.push(',');
        }
        let _ = write!(out, r#"{{"instanceName":"inst{i}","dataPoints":["#);
        for p in 0..a.datapoints {
            if p > 0 {
                out.push(',');
            }
            // A value that moves with time and differs per series.
            let v = ((device * 131 + i * 17 + p * 7) as i64 + ts) % 10_000;
            let _ = write!(
                out,
                r#"{{"dataPointName":"dp{p}","dataPointType":"GAUGE","dataPointAggregationType":"none","values":{{"{ts}":"{v}.5"}}}}"#
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}");
}

fn body_json(a: &Args, slot: &Slot, ts: i64) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push('[');
    for (n, &(d, first, count)) in slot.parts.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        payload_json(a, d, first, count, ts, &mut out);
    }
    out.push(']');
    out
}

/// Splits the estate into request slots of at most MAX_BODY bytes (uncompressed).
fn plan(a: &Args) -> anyhow::Result<Vec<Slot>> {
    // Timestamps and values have a fixed width, so a payload's size does not depend on the
    // second; measure each kind of payload once at a 10-digit timestamp.
    let probe_ts = 1_999_999_999;
    let mut slots = Vec::new();
    let mut cur = Slot {
        parts: Vec::new(),
        samples: 0,
    };
    let mut cur_len = 2usize; // "[]"
    let budget = MAX_BODY - 4096; // value widths vary by a few digits
    for d in 0..a.devices {
        let mut first = 0;
        while first < a.instances {
            let count = (a.instances - first).min(MAX_INSTANCES_PER_PAYLOAD);
            let mut s = String::new();
            payload_json(a, d, first, count, probe_ts, &mut s);
            let len = s.len() + 1;
            if len + 2 > budget {
                bail!(
                    "one payload ({count} instances × {} datapoints) is over 1 MiB",
                    a.datapoints
                );
            }
            if cur_len + len > budget && !cur.parts.is_empty() {
                slots.push(std::mem::replace(
                    &mut cur,
                    Slot {
                        parts: Vec::new(),
                        samples: 0,
                    },
                ));
                cur_len = 2;
            }
            cur.parts.push((d, first, count));
            cur.samples += (count * a.datapoints) as u64;
            cur_len += len;
            first += count;
        }
    }
    if !cur.parts.is_empty() {
        slots.push(cur);
    }
    Ok(slots)
}

fn sign(a: &Args, body: &str) -> anyhow::Result<String> {
    let epoch = now_ms().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(a.access_key.as_bytes()).context("HMAC key")?;
    mac.update(b"POST");
    mac.update(epoch.as_bytes());
    mac.update(body.as_bytes());
    mac.update(SIGNED_PATH.as_bytes());
    let hexdigest = hex::encode(mac.finalize().into_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(hexdigest.as_bytes());
    Ok(format!("LMv1 {}:{sig}:{epoch}", a.access_id))
}

fn prepare(a: &Args, slot: &Slot, second: i64) -> anyhow::Result<Prepared> {
    let body = body_json(a, slot, second);
    if body.len() > MAX_BODY {
        bail!("request body of {} bytes is over 1 MiB", body.len());
    }
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(a.gzip_level.min(9)),
    );
    enc.write_all(body.as_bytes())?;
    let gzipped = Arc::new(enc.finish()?);
    Ok(Prepared {
        second,
        gzipped,
        authorization: sign(a, &body)?,
        samples: slot.samples,
    })
}

/// Per-slot cache of the request for the current second.
struct Cache {
    slots: Vec<Slot>,
    ready: Vec<Mutex<Option<Arc<Prepared>>>>,
}

fn locked<T, R>(m: &Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
    let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut g)
}

impl Cache {
    fn get(&self, a: &Args, idx: usize) -> anyhow::Result<Arc<Prepared>> {
        let second = now_secs();
        let slot = &self.slots[idx];
        let cached = locked(&self.ready[idx], |c| c.clone());
        if let Some(p) = cached.filter(|p| p.second == second) {
            return Ok(p);
        }
        let fresh = Arc::new(prepare(a, slot, second)?);
        locked(&self.ready[idx], |c| *c = Some(fresh.clone()));
        Ok(fresh)
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    accepted_samples: u64,
    partial: u64,
    http_errors: BTreeMap<u16, u64>,
    transport_errors: u64,
    latencies_us: Vec<u64>,
    first_error: Option<String>,
}

enum Answer {
    Accepted,
    Partial(String),
    Http(u16, String),
    Transport(String),
}

async fn send(client: &reqwest::Client, url: &str, p: &Prepared) -> Answer {
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .header("Authorization", &p.authorization)
        .body(p.gzipped.as_ref().clone())
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return Answer::Transport(e.to_string()),
    };
    let status = resp.status().as_u16();
    let text = match resp.text().await {
        Ok(t) => t,
        Err(e) => return Answer::Transport(e.to_string()),
    };
    if status != 202 {
        return Answer::Http(status, text.chars().take(300).collect());
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v)
            if v.get("errors")
                .and_then(|e| e.as_array())
                .is_some_and(|e| e.is_empty()) =>
        {
            Answer::Accepted
        }
        _ => Answer::Partial(text.chars().take(300).collect()),
    }
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run(a: Arc<Args>) -> anyhow::Result<()> {
    if a.connections == 0 || a.devices == 0 || a.instances == 0 || a.datapoints == 0 {
        bail!("--connections, --devices, --instances and --datapoints must be at least 1");
    }
    let slots = plan(&a)?;
    let samples_per_round: u64 = slots.iter().map(|s| s.samples).sum();
    let cache = Arc::new(Cache {
        ready: slots.iter().map(|_| Mutex::new(None)).collect(),
        slots,
    });
    let url = format!(
        "{}/rest/v2/metric/ingest?create=true",
        a.url.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let n_slots = cache.slots.len();
    let max_body = (0..n_slots)
        .map(|i| body_json(&a, &cache.slots[i], now_secs()).len())
        .max()
        .unwrap_or_default();
    println!(
        "ingest bench: {} connections, {:.0} s, {} devices x {} instances x {} datapoints = {} series; \
         {} request(s) per round (max {:.0} KiB uncompressed, {} samples each at most)",
        a.connections,
        a.seconds,
        a.devices,
        a.instances,
        a.datapoints,
        samples_per_round,
        n_slots,
        max_body as f64 / 1024.0,
        cache.slots.iter().map(|s| s.samples).max().unwrap_or_default(),
    );

    // Warm-up: every slot once, creating devices and instances.
    let warm = Instant::now();
    for i in 0..n_slots {
        let p = cache.get(&a, i)?;
        match send(&client, &url, &p).await {
            Answer::Accepted => {}
            Answer::Partial(b) => bail!("warm-up request {i}: 202 with errors: {b}"),
            Answer::Http(s, b) => bail!("warm-up request {i}: HTTP {s}: {b}"),
            Answer::Transport(e) => bail!("warm-up request {i}: {e}"),
        }
    }
    println!(
        "warm-up: {n_slots} request(s) (devices created) in {:.2} s",
        warm.elapsed().as_secs_f64()
    );

    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds.max(0.1));
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (a, cache, client, url, next) = (
            a.clone(),
            cache.clone(),
            client.clone(),
            url.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while Instant::now() < deadline {
                let idx = (next.fetch_add(1, Ordering::Relaxed) % n_slots as u64) as usize;
                let p = match cache.get(&a, idx) {
                    Ok(p) => p,
                    Err(e) => {
                        t.first_error
                            .get_or_insert(format!("building a request: {e}"));
                        break;
                    }
                };
                let sent = Instant::now();
                let answer = send(&client, &url, &p).await;
                t.latencies_us.push(sent.elapsed().as_micros() as u64);
                t.requests += 1;
                match answer {
                    Answer::Accepted => t.accepted_samples += p.samples,
                    Answer::Partial(b) => {
                        t.partial += 1;
                        t.first_error.get_or_insert(format!("202 with errors: {b}"));
                    }
                    Answer::Http(s, b) => {
                        *t.http_errors.entry(s).or_default() += 1;
                        t.first_error.get_or_insert(format!("HTTP {s}: {b}"));
                    }
                    Answer::Transport(e) => {
                        t.transport_errors += 1;
                        t.first_error.get_or_insert(format!("transport: {e}"));
                        // Do not spin on a dead server.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            t
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.requests += t.requests;
        all.accepted_samples += t.accepted_samples;
        all.partial += t.partial;
        all.transport_errors += t.transport_errors;
        for (s, n) in t.http_errors {
            *all.http_errors.entry(s).or_default() += n;
        }
        all.latencies_us.extend(t.latencies_us);
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let http_errors: u64 = all.http_errors.values().sum();
    println!(
        "requests: {} in {:.2} s = {:.1} req/s; accepted samples: {} = {:.0} samples/s",
        all.requests,
        elapsed,
        all.requests as f64 / elapsed,
        all.accepted_samples,
        all.accepted_samples as f64 / elapsed
    );
    println!(
        "latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&all.latencies_us, 0.50),
        pct(&all.latencies_us, 0.99),
        pct(&all.latencies_us, 1.0)
    );
    println!(
        "errors: http {http_errors} {:?}, 202-with-errors {}, transport {}",
        all.http_errors, all.partial, all.transport_errors
    );
    if let Some(e) = all.first_error {
        println!("first error: {e}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}
