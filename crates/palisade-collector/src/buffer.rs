//! The on-disk result buffer: every result is written here before anything tries to send
//! it, and a batch leaves only once the portal acknowledged it.
//!
//! One batch is one file in `<state>/buffer/`, named
//! `<sequence:20>-<created ms:13>-<batch id>.batch`, so that the order (oldest first), the
//! age and the id are known without reading it. A file holds the magic `PCB1`, the CRC-32
//! of the payload and its length (both little-endian `u32`), then the payload: the exact
//! body of `POST /api/collector/v1/results` (`{"batchId": …, "results": […]}`), so a retry
//! sends the same id with the same content.
//!
//! Writes go to a `.tmp-` file that is fsynced, renamed into place and followed by an fsync
//! of the directory: after a crash a batch file is either complete or absent, and leftover
//! temporary files are removed at start. A file whose CRC does not match (a damaged disk)
//! is moved to `rejected/` and counted as dropped, as is a batch the portal refuses as
//! malformed.
//!
//! Bounds: the total size (default 256 MiB) and the age (default 7 days). Beyond them the
//! oldest batches are dropped (as Fluent Bit and LogicMonitor's collector do: newer data is
//! worth more), each drop counted in `dropped` (kept in a file, reported to the portal as
//! `droppedBatches`). The newest batch is never dropped for size.
//!
//! Why files and not an embedded database: the only operations are append, read the
//! oldest, delete; a rename is atomic and an unlink frees space at once, so there is no
//! compaction, no format to migrate, and no dependency; a service-user migration only has
//! to `chown` the directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"PCB1";
const HEADER: usize = 12;
const SUFFIX: &str = ".batch";
const TMP_PREFIX: &str = ".tmp-";
const DROPPED_FILE: &str = "dropped";
const REJECTED_DIR: &str = "rejected";
/// Most files kept in `rejected/` (for inspection); older ones are deleted.
const MAX_REJECTED: usize = 100;

/// One buffered batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the buffer (increasing).
    pub seq: u64,
    /// When it was written, epoch ms.
    pub created_ms: i64,
    /// The batch id.
    pub id: String,
    /// Size of the file.
    pub bytes: u64,
}

impl Entry {
    fn file_name(&self) -> String {
        format!(
            "{:020}-{:013}-{}{SUFFIX}",
            self.seq, self.created_ms, self.id
        )
    }

    fn parse(name: &str) -> Option<(u64, i64, String)> {
        let stem = name.strip_suffix(SUFFIX)?;
        let (seq, rest) = stem.split_once('-')?;
        let (created, id) = rest.split_once('-')?;
        if id.is_empty() || !id.bytes().all(valid_id_byte) {
            return None;
        }
        Some((seq.parse().ok()?, created.parse().ok()?, id.to_string()))
    }
}

fn valid_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Counts for the report and `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Batches waiting.
    pub batches: u64,
    /// Their total size.
    pub bytes: u64,
    /// Batches dropped so far.
    pub dropped: u64,
}

/// Reading a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is gone (dropped for size or age meanwhile).
    #[error("batch {0} is no longer in the buffer")]
    Gone(String),
    /// The file is damaged.
    #[error("batch {id} is damaged: {why}")]
    Corrupt {
        /// Batch id.
        id: String,
        /// What is wrong.
        why: String,
    },
    /// Another I/O error.
    #[error(transparent)]
    Io(#[from] Error),
}

struct Inner {
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    total: u64,
    dropped: u64,
}

/// The buffer of a state directory.
pub struct Buffer {
    dir: PathBuf,
    max_bytes: u64,
    max_age_ms: i64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("dir", &self.dir).finish()
    }
}

/// The buffer directory of a state directory.
pub fn dir_of(state_dir: &Path) -> PathBuf {
    state_dir.join("buffer")
}

fn scan(dir: &Path) -> Result<BTreeMap<u64, Entry>> {
    let mut entries = BTreeMap::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(Error::io("cannot list", dir, e)),
    };
    for item in rd {
        let item = item.map_err(|e| Error::io("cannot list", dir, e))?;
        let name = item.file_name();
        let Some((seq, created_ms, id)) = name.to_str().and_then(Entry::parse) else {
            continue;
        };
        let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
        entries.insert(
            seq,
            Entry {
                seq,
                created_ms,
                id,
                bytes,
            },
        );
    }
    Ok(entries)
}

fn read_dropped(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(DROPPED_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Counts of the buffer in `state_dir` without opening it for writing (for `status`).
pub fn counts_of(state_dir: &Path) -> Result<Counts> {
    let dir = dir_of(state_dir);
    let entries = scan(&dir)?;
    Ok(Counts {
        batches: entries.len() as u64,
        bytes: entries.values().map(|e| e.bytes).sum(),
        dropped: read_dropped(&dir),
    })
}

/// The batches of the buffer in `state_dir` with their payloads, oldest first, read
/// without changing anything (safe while `run` holds the buffer; for `status`, tests and
/// operators). Files that vanish or fail their CRC meanwhile are skipped.
pub fn inspect(state_dir: &Path) -> Result<Vec<(Entry, Vec<u8>)>> {
    let dir = dir_of(state_dir);
    let mut out = Vec::new();
    for e in scan(&dir)?.into_values() {
        let Ok(bytes) = fs::read(dir.join(e.file_name())) else {
            continue;
        };
        if let Ok(payload) = decode(&bytes) {
            out.push((e, payload.to_vec()));
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot sync", dir, e))
}

/// Writes `bytes` to `path` atomically and durably (temporary file, fsync, rename, fsync
/// of the directory), with mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Config(format!("{} has no directory", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!("{TMP_PREFIX}{name}"));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io("cannot create", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| Error::io("cannot rename into", path, e))?;
    sync_dir(dir)
}

/// Encodes a payload as a batch file.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Decodes a batch file; `Err` says what is wrong.
pub fn decode(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err("not a batch file (bad magic)".into());
    }
    let word = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let crc = word(4);
    let len = word(8) as usize;
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(format!(
            "length {} but header says {len} (truncated)",
            payload.len()
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err("CRC mismatch".into());
    }
    Ok(payload)
}

impl Buffer {
    /// Opens (creating it, mode 0700) the buffer of `state_dir`, removing leftovers of
    /// interrupted writes.
    pub fn open(state_dir: &Path, max_bytes: u64, max_age_secs: u64) -> Result<Buffer> {
        let dir = dir_of(state_dir);
        create_private_dir(&dir)?;
        if let Ok(rd) = fs::read_dir(&dir) {
            for item in rd.flatten() {
                if item.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    let _ = fs::remove_file(item.path());
                }
            }
        }
        let entries = scan(&dir)?;
        let next_seq = entries.keys().next_back().map_or(1, |s| s + 1);
        let total = entries.values().map(|e| e.bytes).sum();
        let dropped = read_dropped(&dir);
        Ok(Buffer {
            dir,
            max_bytes,
            max_age_ms: i64::try_from(max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            inner: Mutex::new(Inner {
                entries,
                next_seq,
                total,
                dropped,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent with the
        // files in a way later calls cannot cope with: keep going.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The buffer directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a batch durably. `id` must be 1 to 128 of `[A-Za-z0-9_-]`.
    pub fn append(&self, id: &str, payload: &[u8], now_ms: i64) -> Result<Entry> {
        if id.is_empty() || id.len() > 128 || !id.bytes().all(valid_id_byte) {
            return Err(Error::Buffer(format!("invalid batch id `{id}`")));
        }
        let bytes = encode(payload);
        let mut inner = self.lock();
        let entry = Entry {
            seq: inner.next_seq,
            created_ms: now_ms,
            id: id.to_string(),
            bytes: bytes.len() as u64,
        };
        write_atomic(&self.dir.join(entry.file_name()), &bytes)?;
        inner.next_seq += 1;
        inner.total += entry.bytes;
        inner.entries.insert(entry.seq, entry.clone());
        self.enforce(&mut inner, now_ms);
        Ok(entry)
    }

    /// Drops what is beyond the bounds: batches older than the age bound, then the oldest
    /// while the size bound is exceeded (never the newest).
    fn enforce(&self, inner: &mut Inner, now_ms: i64) {
        // Batches are numbered in the order they were written, so the ones to drop are a
        // prefix: stop at the first that is neither too old nor needed for the size bound
        // (a backlog of thousands costs nothing here).
        let mut drop: Vec<u64> = Vec::new();
        let mut total = inner.total;
        let mut remaining = inner.entries.len();
        for e in inner.entries.values() {
            let too_old = now_ms.saturating_sub(e.created_ms) > self.max_age_ms;
            let too_big = total > self.max_bytes && remaining > 1;
            if !too_old && !too_big {
                break;
            }
            drop.push(e.seq);
            total -= e.bytes;
            remaining -= 1;
        }
        if drop.is_empty() {
            return;
        }
        for seq in &drop {
            if let Some(e) = inner.entries.remove(seq) {
                let _ = fs::remove_file(self.dir.join(e.file_name()));
                inner.total -= e.bytes;
                tracing::warn!(batch = %e.id, "buffer bound reached: dropped the batch");
            }
        }
        inner.dropped += drop.len() as u64;
        self.save_dropped(inner.dropped);
    }

    fn save_dropped(&self, n: u64) {
        if let Err(e) = write_atomic(&self.dir.join(DROPPED_FILE), n.to_string().as_bytes()) {
            tracing::error!(error = %e, "cannot record the dropped-batch count");
        }
    }

    /// Applies the age bound now (the sender calls it while the portal is down).
    pub fn expire(&self, now_ms: i64) {
        let mut inner = self.lock();
        self.enforce(&mut inner, now_ms);
    }

    /// The oldest batch.
    pub fn oldest(&self) -> Option<Entry> {
        self.lock().entries.values().next().cloned()
    }

    /// Every batch, oldest first.
    pub fn list(&self) -> Vec<Entry> {
        self.lock().entries.values().cloned().collect()
    }

    /// Batches, bytes, drops.
    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            batches: inner.entries.len() as u64,
            bytes: inner.total,
            dropped: inner.dropped,
        }
    }

    /// Reads a batch's payload, checking its CRC.
    pub fn read(&self, e: &Entry) -> std::result::Result<Vec<u8>, ReadError> {
        let path = self.dir.join(e.file_name());
        let mut bytes = Vec::new();
        match File::open(&path).and_then(|mut f| f.read_to_end(&mut bytes)) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReadError::Gone(e.id.clone()))
            }
            Err(err) => return Err(Error::io("cannot read", &path, err).into()),
        }
        decode(&bytes)
            .map(<[u8]>::to_vec)
            .map_err(|why| ReadError::Corrupt {
                id: e.id.clone(),
                why,
            })
    }

    /// Removes a delivered batch.
    pub fn remove(&self, e: &Entry) -> Result<()> {
        let mut inner = self.lock();
        if let Some(found) = inner.entries.remove(&e.seq) {
            inner.total -= found.bytes;
        }
        let path = self.dir.join(e.file_name());
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(Error::io("cannot remove", &path, err)),
        }
    }

    /// Moves a batch that can never be delivered (damaged, or refused by the portal as
    /// malformed) to `rejected/` and counts it as dropped.
    pub fn reject(&self, e: &Entry, why: &str) {
        let mut inner = self.lock();
        if let Some(found) = inner.entries.remove(&e.seq) {
            inner.total -= found.bytes;
        }
        let rejected = self.dir.join(REJECTED_DIR);
        let from = self.dir.join(e.file_name());
        let moved = create_private_dir(&rejected)
            .and_then(|()| {
                fs::rename(&from, rejected.join(e.file_name()))
                    .map_err(|err| Error::io("cannot move", &from, err))
            })
            .is_ok();
        if !moved {
            let _ = fs::remove_file(&from);
        }
        tracing::error!(batch = %e.id, reason = why, "batch dropped: it can never be delivered");
        inner.dropped += 1;
        self.save_dropped(inner.dropped);
        prune_rejected(&rejected);
    }
}

fn prune_rejected(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut names: Vec<PathBuf> = rd.flatten().map(|i| i.path()).collect();
    if names.len() <= MAX_REJECTED {
        return;
    }
    names.sort();
    for p in &names[..names.len() - MAX_REJECTED] {
        let _ = fs::remove_file(p);
    }
}

/// Creates a directory (and its parents) with mode 0700 if it does not exist.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "palisade-collector-buffer-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn append_read_remove_reopen() {
        let d = temp();
        let b = Buffer::open(&d, 1 << 20, 3600).unwrap();
        let e1 = b
            .append("aaa-1", b"{\"batchId\":\"aaa-1\"}", 1_000)
            .unwrap();
        let e2 = b
            .append("bbb-2", b"{\"batchId\":\"bbb-2\"}", 2_000)
            .unwrap();
        assert!(e1.seq < e2.seq);
        assert_eq!(b.oldest().unwrap().id, "aaa-1");
        assert_eq!(b.read(&e1).unwrap(), b"{\"batchId\":\"aaa-1\"}");
        // A leftover temporary file from a crash disappears at open.
        fs::write(dir_of(&d).join(".tmp-x.batch"), b"partial").unwrap();
        drop(b);
        let b = Buffer::open(&d, 1 << 20, 3600).unwrap();
        assert_eq!(b.list().len(), 2);
        assert!(!dir_of(&d).join(".tmp-x.batch").exists());
        b.remove(&e1).unwrap();
        b.remove(&e1).unwrap(); // twice is fine
        assert_eq!(b.counts().batches, 1);
        // Sequence numbers continue after a reopen.
        drop(b);
        let b = Buffer::open(&d, 1 << 20, 3600).unwrap();
        let e3 = b.append("ccc", b"{}", 3_000).unwrap();
        assert!(e3.seq > e2.seq);
        assert_eq!(counts_of(&d).unwrap().batches, 2);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn size_and_age_bounds_drop_the_oldest() {
        let d = temp();
        let payload = vec![b'x'; 1000];
        let b = Buffer::open(&d, 2_500, 60).unwrap();
        for i in 0..4 {
            b.append(&format!("b{i}"), &payload, 1_000 + i).unwrap();
        }
        let ids: Vec<String> = b.list().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["b2", "b3"]);
        assert_eq!(b.counts().dropped, 2);
        // Age: a minute later everything but the newest write is too old.
        b.append("late", b"{}", 200_000).unwrap();
        let ids: Vec<String> = b.list().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["late"]);
        assert_eq!(b.counts().dropped, 4);
        // The drop count survives a restart.
        drop(b);
        assert_eq!(counts_of(&d).unwrap().dropped, 4);
        // A single batch larger than the bound is kept (never drop the newest).
        let b = Buffer::open(&d, 10, 60).unwrap();
        b.append("big", &payload, 200_001).unwrap();
        assert_eq!(b.list().last().unwrap().id, "big");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn damaged_files_are_detected_and_rejected() {
        let d = temp();
        let b = Buffer::open(&d, 1 << 20, 3600).unwrap();
        let e = b.append("dmg", b"{\"results\":[]}", 1).unwrap();
        let path = dir_of(&d).join(e.file_name());
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(b.read(&e), Err(ReadError::Corrupt { .. })));
        b.reject(&e, "test");
        assert_eq!(b.counts().batches, 0);
        assert_eq!(b.counts().dropped, 1);
        assert!(dir_of(&d).join("rejected").join(e.file_name()).exists());
        assert!(matches!(b.read(&e), Err(ReadError::Gone(_))));
        assert!(b.append("bad/id", b"{}", 1).is_err());
        assert!(decode(b"PCB1").is_err());
        fs::remove_dir_all(&d).unwrap();
    }
}
