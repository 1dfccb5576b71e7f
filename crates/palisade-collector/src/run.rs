//! `palisade-collector run`: the heartbeat, work and collection loop.
//!
//! * The privilege check comes first ([`crate::privilege::may_run`]).
//! * A heartbeat every `heartbeat_secs` carries the report; when the portal's
//!   `workVersion` differs from the work held, the work is fetched again (`If-None-Match`).
//! * Each (device, datasource) is a task collecting every `collectInterval`, starting after
//!   a random delay (at most `jitter_secs`) so that collections spread out.
//! * Results go to a writer thread that appends them to the on-disk buffer (group commit:
//!   whatever arrives within a second, up to 1,000 results, forms one batch); a
//!   sender task delivers batches oldest first, retrying with exponential backoff while
//!   the portal is down, and deletes a batch only after a 2xx.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use palisade_core::datasource::{self, ExpressionSet};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::buffer::{self, Buffer, ReadError};
use crate::config::RunSettings;
use crate::error::{Error, Result};
use crate::methods::{Methods, Task};
use crate::portal::{Delivery, Identity, Portal, WorkAnswer};
use crate::process::{self, Outcome, RateState, ResultItem};
use crate::work::{self, Work};
use crate::{privilege, report};

/// Most results in one batch.
pub const MAX_BATCH_ITEMS: usize = 1000;
/// How long the writer waits for more results before it writes a batch: one fsync and one
/// request per second at most, instead of one per collection.
pub const BATCH_LINGER: Duration = Duration::from_millis(1000);
/// Largest batch body (the portal accepts 4 MiB).
pub const MAX_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A random (version 4) UUID, the batch id.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Splits results into batch bodies (`{"batchId": …, "results": […]}`), each at most
/// [`MAX_BATCH_ITEMS`] results and about [`MAX_BATCH_BYTES`].
pub fn batch_bodies(items: &[ResultItem]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    let mut size = 0usize;
    let flush = |current: &mut Vec<Vec<u8>>, out: &mut Vec<(String, Vec<u8>)>| {
        if current.is_empty() {
            return;
        }
        let id = uuid_v4();
        let mut body = format!("{{\"batchId\":\"{id}\",\"results\":[").into_bytes();
        for (i, item) in current.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item);
        }
        body.extend_from_slice(b"]}");
        out.push((id, body));
        current.clear();
    };
    for item in items {
        let Ok(bytes) = serde_json::to_vec(item) else {
            continue;
        };
        if !current.is_empty()
            && (current.len() >= MAX_BATCH_ITEMS || size + bytes.len() > MAX_BATCH_BYTES)
        {
            flush(&mut current, &mut out);
            size = 0;
        }
        size += bytes.len() + 1;
        current.push(bytes);
    }
    flush(&mut current, &mut out);
    out
}

/// Holds the state directory's lock for the life of the process.
#[derive(Debug)]
pub struct StateLock(#[allow(dead_code)] std::fs::File);

/// Locks the state directory so that two `run` processes never share a buffer.
pub fn lock_state_dir(state_dir: &Path) -> Result<StateLock> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("cannot open", &path, e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| Error::Locked(state_dir.display().to_string()))?;
    Ok(StateLock(f))
}

/// Appends results to the buffer (a dedicated thread: fsync blocks).
fn writer_loop(
    mut rx: mpsc::UnboundedReceiver<Vec<ResultItem>>,
    buffer: Arc<Buffer>,
    notify: Arc<Notify>,
) {
    while let Some(mut items) = rx.blocking_recv() {
        let until = std::time::Instant::now() + BATCH_LINGER;
        let mut closed = false;
        while items.len() < MAX_BATCH_ITEMS {
            match rx.try_recv() {
                Ok(more) => items.extend(more),
                Err(mpsc::error::TryRecvError::Empty) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        for (id, body) in batch_bodies(&items) {
            let mut tries = 0;
            loop {
                match buffer.append(&id, &body, now_ms()) {
                    Ok(_) => break,
                    Err(e) if tries < 5 => {
                        tries += 1;
                        tracing::error!(error = %e, "cannot write a batch to the buffer; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, batch = %id, "cannot write a batch to the buffer: results lost");
                        break;
                    }
                }
            }
        }
        notify.notify_one();
        if closed {
            return;
        }
    }
}

/// Delivers buffered batches, oldest first.
async fn sender_loop(
    portal: Portal,
    buffer: Arc<Buffer>,
    notify: Arc<Notify>,
    retry_max_secs: u64,
) {
    let mut failures: u32 = 0;
    loop {
        buffer.expire(now_ms());
        let Some(entry) = buffer.oldest() else {
            tokio::select! {
                () = notify.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            continue;
        };
        let b = buffer.clone();
        let e = entry.clone();
        let read = tokio::task::spawn_blocking(move || b.read(&e)).await;
        let payload = match read {
            Ok(Ok(p)) => p,
            Ok(Err(ReadError::Gone(id))) => {
                // Removed behind our back: forget it, or it would stay the oldest forever.
                tracing::warn!(batch = %id, "a buffered batch disappeared from the buffer directory");
                let _ = buffer.remove(&entry);
                continue;
            }
            Ok(Err(ReadError::Corrupt { why, .. })) => {
                buffer.reject(&entry, &why);
                continue;
            }
            Ok(Err(ReadError::Io(err))) => {
                tracing::error!(error = %err, "cannot read a buffered batch");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
            Err(err) => {
                tracing::error!(error = %err, "buffer read task failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        match portal.results(payload).await {
            Delivery::Delivered {
                duplicate,
                accepted,
                refused,
            } => {
                if failures > 0 {
                    tracing::info!(after = failures, "the portal is reachable again");
                }
                failures = 0;
                if refused > 0 {
                    tracing::warn!(batch = %entry.id, refused, "the portal refused some results (devices not monitored by this collector)");
                }
                tracing::debug!(batch = %entry.id, duplicate, accepted, "batch delivered");
                let b = buffer.clone();
                let e = entry.clone();
                match tokio::task::spawn_blocking(move || b.remove(&e)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => {
                        tracing::error!(error = %err, "cannot remove a delivered batch")
                    }
                    Err(err) => tracing::error!(error = %err, "buffer remove task failed"),
                }
            }
            Delivery::Malformed(why) => buffer.reject(&entry, &why),
            Delivery::Retry(why) => {
                failures = failures.saturating_add(1);
                let base = 1u64 << failures.min(16);
                let pause = base.min(retry_max_secs);
                // ±25 % so that collectors do not retry in step after a portal restart.
                let jitter = rand::random::<f64>() * 0.5 + 0.75;
                let pause = Duration::from_secs_f64(pause as f64 * jitter);
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(reason = %why, failures, buffered = buffer.counts().batches, "cannot deliver results; they stay in the buffer");
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn fingerprint(device: &work::Device, ds: &datasource::DataSource) -> u64 {
    let mut h = DefaultHasher::new();
    device.hash(&mut h);
    datasource::export(ds).hash(&mut h);
    h.finish()
}

/// One task: collect, process, hand over; forever.
async fn task_loop(
    methods: Arc<Methods>,
    task: Task,
    tx: mpsc::UnboundedSender<Vec<ResultItem>>,
    jitter_secs: u64,
) {
    let ds = task.datasource.clone();
    let exprs = match ExpressionSet::compile(&ds) {
        Ok(e) => e,
        Err(e) => {
            // Cannot happen for a datasource that passed validation; report it anyway.
            let _ = tx.send(vec![ResultItem {
                device_id: task.device.id,
                datasource: ds.name.clone(),
                instance: None,
                instance_display_name: None,
                instance_properties: Default::default(),
                timestamp: now_ms(),
                values: Default::default(),
                status: "error".into(),
                message: Some(format!("datasource: {e}")),
                lacks: None,
            }]);
            return;
        }
    };
    let interval = Duration::from_secs(u64::from(ds.collect_interval.max(1)));
    let max_delay = jitter_secs.min(u64::from(ds.collect_interval));
    if max_delay > 0 {
        let delay = rand::random::<f64>() * max_delay as f64;
        tokio::time::sleep(Duration::from_secs_f64(delay)).await;
    }
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = RateState::default();
    let mut last: Option<(String, Option<String>, Option<String>)> = None;
    loop {
        tick.tick().await;
        let ts = now_ms();
        let outcome = match tokio::time::timeout(interval, methods.collect(&task)).await {
            Ok(o) => o,
            Err(_) => Outcome::error(format!(
                "the collection took longer than the collect interval ({} s)",
                ds.collect_interval
            )),
        };
        let items = process::process(&ds, &exprs, &mut state, task.device.id, ts, outcome);
        let now = items
            .iter()
            .find(|i| i.status != "ok")
            .map(|i| (i.status.clone(), i.message.clone(), i.lacks.clone()));
        if now != last {
            match &now {
                Some((status, message, lacks)) => tracing::warn!(
                    datasource = %ds.name,
                    device = task.device.id,
                    status = %status,
                    message = message.as_deref().unwrap_or_default(),
                    lacks = lacks.as_deref().unwrap_or_default(),
                    "collection failed"
                ),
                None => {
                    tracing::info!(datasource = %ds.name, device = task.device.id, "collection works")
                }
            }
            last = now;
        }
        if !items.is_empty() && tx.send(items).is_err() {
            break;
        }
    }
}

/// The running tasks.
struct Scheduler {
    methods: Arc<Methods>,
    tx: mpsc::UnboundedSender<Vec<ResultItem>>,
    jitter_secs: u64,
    hostname: String,
    tasks: HashMap<(i64, String), (u64, JoinHandle<()>)>,
}

impl Scheduler {
    fn apply(&mut self, work: &Work) {
        let mut wanted: HashMap<(i64, String), (u64, Task)> = HashMap::new();
        for device in &work.devices {
            let own_host = device.is_collector_host(&self.hostname);
            let dev = Arc::new(device.clone());
            for name in &device.datasources {
                let Some(ds) = work.datasources.get(name) else {
                    continue;
                };
                wanted.insert(
                    (device.id, name.clone()),
                    (
                        fingerprint(device, ds),
                        Task {
                            device: dev.clone(),
                            datasource: ds.clone(),
                            own_host,
                        },
                    ),
                );
            }
        }
        self.tasks.retain(|key, (fp, handle)| {
            let keep = wanted.get(key).is_some_and(|(new_fp, _)| new_fp == fp);
            if !keep {
                handle.abort();
            }
            keep
        });
        let mut started = 0;
        for (key, (fp, task)) in wanted {
            if self.tasks.contains_key(&key) {
                continue;
            }
            let handle = tokio::spawn(task_loop(
                self.methods.clone(),
                task,
                self.tx.clone(),
                self.jitter_secs,
            ));
            self.tasks.insert(key, (fp, handle));
            started += 1;
        }
        tracing::info!(
            tasks = self.tasks.len(),
            started,
            devices = work.devices.len(),
            version = %work.version,
            "work applied"
        );
    }

    fn stop(&mut self) {
        for (_, (_, h)) in self.tasks.drain() {
            h.abort();
        }
    }
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Runs the collector until SIGTERM or SIGINT.
pub async fn run(settings: RunSettings) -> Result<()> {
    let status = report::proc_status();
    let assessment = privilege::assess(status.euid(), status.cap_eff);
    privilege::may_run(&assessment, settings.allow_root).map_err(Error::Privilege)?;
    if assessment.is_admin {
        tracing::warn!(
            reasons = %assessment.reasons.join("; "),
            "running with administrative privilege because of --allow-root: reported to the portal as non-compliant (isAdminAccount: true)"
        );
    }
    let state_dir = settings.state_dir.clone();
    let identity = Identity::load(&state_dir)?;
    let _lock = lock_state_dir(&state_dir)?;
    let buffer = Arc::new(Buffer::open(
        &state_dir,
        settings.buffer_max_bytes,
        settings.buffer_max_age_secs,
    )?);
    let portal = Portal::new(
        &identity.portal,
        &identity.trust,
        Some(identity.key.clone()),
    )?;
    let methods = Arc::new(Methods::new(settings.scripts_dir.clone())?);
    let started_on = now_ms();
    let hostname = report::hostname();
    tracing::info!(
        collector = identity.collector_id,
        portal = %identity.portal,
        buffered = buffer.counts().batches,
        "palisade-collector started"
    );

    let notify = Arc::new(Notify::new());
    let (tx, rx) = mpsc::unbounded_channel::<Vec<ResultItem>>();
    let writer = {
        let buffer = buffer.clone();
        let notify = notify.clone();
        std::thread::Builder::new()
            .name("buffer-writer".into())
            .spawn(move || writer_loop(rx, buffer, notify))
            .map_err(|e| Error::io("cannot start the buffer writer", &state_dir, e))?
    };
    let sender = tokio::spawn(sender_loop(
        portal.clone(),
        buffer.clone(),
        notify.clone(),
        settings.retry_max_secs,
    ));
    let mut sched = Scheduler {
        methods,
        tx,
        jitter_secs: settings.jitter_secs,
        hostname,
        tasks: HashMap::new(),
    };
    // Until the portal answers, collect what the cached work says (credentials are not in
    // the cache, so methods that need them report errors until then).
    if let Some(cached) = work::load_cache(&state_dir) {
        sched.apply(&work::parse(&cached));
    }
    let mut etag: Option<String> = None;
    let mut held_version = String::new();
    let mut tick = tokio::time::interval(Duration::from_secs(settings.heartbeat_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut shutdown => break,
        }
        let counts = buffer.counts();
        let report = report::gather(
            &state_dir,
            settings.allow_root,
            started_on,
            counts.batches,
            counts.dropped,
        );
        let version = match portal.heartbeat(&report).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "heartbeat failed");
                continue;
            }
        };
        if etag.is_some() && version == held_version {
            continue;
        }
        match portal.work(etag.as_deref()).await {
            Ok(WorkAnswer::NotModified) => held_version = version,
            Ok(WorkAnswer::Work { body, etag: tag }) => {
                let w = work::parse(&body);
                for p in &w.problems {
                    tracing::warn!(problem = %p, "a datasource of the work cannot be used");
                }
                sched.apply(&w);
                held_version = w.version.clone();
                etag = tag.or_else(|| Some(format!("\"{}\"", w.version)));
                let dir = state_dir.clone();
                let saved =
                    tokio::task::spawn_blocking(move || work::save_cache(&dir, &body)).await;
                if let Ok(Err(e)) = saved {
                    tracing::warn!(error = %e, "cannot save the work cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot fetch the work"),
        }
    }
    tracing::info!("stopping: writing what was collected to the buffer");
    sched.stop();
    drop(sched);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    sender.abort();
    let counts = buffer.counts();
    tracing::info!(buffered = counts.batches, "stopped");
    Ok(())
}

/// The JSON `status` prints: the privilege report and the buffer's counts.
pub fn status_json(state_dir: &Path, allow_root: bool) -> Result<serde_json::Value> {
    let counts = buffer::counts_of(state_dir)?;
    let report = report::gather(
        state_dir,
        allow_root,
        now_ms(),
        counts.batches,
        counts.dropped,
    );
    let identity = Identity::load(state_dir).ok();
    let status = report::proc_status();
    let assessment = privilege::assess(status.euid(), status.cap_eff);
    Ok(serde_json::json!({
        "stateDir": state_dir.display().to_string(),
        "registered": identity.is_some(),
        "collectorId": identity.as_ref().map(|i| i.collector_id),
        "portal": identity.as_ref().map(|i| i.portal.clone()),
        "compliant": !assessment.is_admin,
        "wouldRun": privilege::may_run(&assessment, allow_root).is_ok(),
        "report": report,
        "buffer": {
            "batches": counts.batches,
            "bytes": counts.bytes,
            "dropped": counts.dropped,
        },
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, uuid_v4());
    }

    #[test]
    fn batches_are_split_and_valid_json() {
        let item = |i: i64| ResultItem {
            device_id: i,
            datasource: "X".into(),
            instance: None,
            instance_display_name: None,
            instance_properties: Default::default(),
            timestamp: 1,
            values: [("v".to_string(), 1.5)].into_iter().collect(),
            status: "ok".into(),
            message: None,
            lacks: None,
        };
        let items: Vec<ResultItem> = (0..2500).map(item).collect();
        let bodies = batch_bodies(&items);
        assert_eq!(bodies.len(), 3);
        let mut total = 0;
        for (id, body) in &bodies {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["batchId"], id.as_str());
            total += v["results"].as_array().unwrap().len();
        }
        assert_eq!(total, 2500);
        assert!(batch_bodies(&[]).is_empty());
    }
}
