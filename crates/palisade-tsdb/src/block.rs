//! Immutable block files: compressed per-series chunks, an index sorted by series id, and a
//! fixed-size footer. Written to a temporary name, fsynced, renamed, directory fsynced.
//!
//! ```text
//! offset 0   "PTSBLK01"
//!            chunk, chunk, ...            (ascending series id; see codec.rs for columns)
//! index      n × 44 bytes, little endian: series u64, min_ts i64, max_ts i64, count u32,
//!            offset u64, len u32, crc32(chunk) u32
//! footer     88 bytes: kind u8 (1 raw, 2 rollup), level u8 (0 flushed, 1 compacted),
//!            6 reserved, seq u64, range_start i64, range_end i64, min_ts i64, max_ts i64,
//!            samples u64, index_offset u64, index_len u64, crc32(index) u32,
//!            crc32(footer[..76]) u32, "PTSBEND1"
//! ```

use crate::error::{Result, TsdbError};
use crate::fsutil::{read_exact_at, remove_file, sync_dir};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub(crate) const KIND_RAW: u8 = 1;
pub(crate) const KIND_ROLLUP: u8 = 2;
pub(crate) const LEVEL_FLUSHED: u8 = 0;
pub(crate) const LEVEL_COMPACTED: u8 = 1;

const MAGIC: &[u8; 8] = b"PTSBLK01";
const FOOTER_MAGIC: &[u8; 8] = b"PTSBEND1";
const FOOTER_LEN: usize = 88;
const ENTRY_LEN: usize = 44;

/// Where one series' chunk lies in a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub series: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub count: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// What a block covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockMeta {
    pub kind: u8,
    pub level: u8,
    /// Creation order; a higher sequence wins when blocks overlap.
    pub seq: u64,
    /// The day (raw) or rollup period this block belongs to, `[start, end)`.
    pub range_start: i64,
    pub range_end: i64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub samples: u64,
}

/// An open block: its file, footer and index.
pub(crate) struct Block {
    pub path: PathBuf,
    file: File,
    pub meta: BlockMeta,
    pub index: Vec<IndexEntry>,
    pub bytes: u64,
}

pub(crate) fn file_name(kind: u8, seq: u64) -> String {
    match kind {
        KIND_ROLLUP => format!("rollup-{seq:016x}.blk"),
        _ => format!("raw-{seq:016x}.blk"),
    }
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

impl Block {
    /// Opens a block and checks its footer and index checksums.
    pub(crate) fn open(path: &Path) -> Result<Block> {
        let file = File::open(path).map_err(|e| TsdbError::io(path, e))?;
        let bytes = file.metadata().map_err(|e| TsdbError::io(path, e))?.len();
        if bytes < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(TsdbError::corrupt(path, "shorter than a block"));
        }
        let mut head = [0u8; 8];
        read_exact_at(&file, path, 0, &mut head)?;
        if &head != MAGIC {
            return Err(TsdbError::corrupt(path, "bad block magic"));
        }
        let mut f = [0u8; FOOTER_LEN];
        read_exact_at(&file, path, bytes - FOOTER_LEN as u64, &mut f)?;
        if &f[80..88] != FOOTER_MAGIC {
            return Err(TsdbError::corrupt(path, "bad footer magic"));
        }
        if crc32fast::hash(&f[..76]) != le_u32(&f, 76) {
            return Err(TsdbError::corrupt(path, "footer checksum mismatch"));
        }
        let meta = BlockMeta {
            kind: f[0],
            level: f[1],
            seq: le_u64(&f, 8),
            range_start: le_i64(&f, 16),
            range_end: le_i64(&f, 24),
            min_ts: le_i64(&f, 32),
            max_ts: le_i64(&f, 40),
            samples: le_u64(&f, 48),
        };
        let index_offset = le_u64(&f, 56);
        let index_len = le_u64(&f, 64);
        let index_crc = le_u32(&f, 72);
        if !index_len.is_multiple_of(ENTRY_LEN as u64)
            || index_offset < MAGIC.len() as u64
            || index_offset.checked_add(index_len) != Some(bytes - FOOTER_LEN as u64)
        {
            return Err(TsdbError::corrupt(path, "index bounds"));
        }
        let mut raw = vec![0u8; index_len as usize];
        read_exact_at(&file, path, index_offset, &mut raw)?;
        if crc32fast::hash(&raw) != index_crc {
            return Err(TsdbError::corrupt(path, "index checksum mismatch"));
        }
        let mut index = Vec::with_capacity(raw.len() / ENTRY_LEN);
        for e in raw.chunks_exact(ENTRY_LEN) {
            let entry = IndexEntry {
                series: le_u64(e, 0),
                min_ts: le_i64(e, 8),
                max_ts: le_i64(e, 16),
                count: le_u32(e, 24),
                offset: le_u64(e, 28),
                len: le_u32(e, 36),
                crc: le_u32(e, 40),
            };
            if entry.offset < MAGIC.len() as u64
                || entry.offset + u64::from(entry.len) > index_offset
                || index
                    .last()
                    .is_some_and(|p: &IndexEntry| p.series >= entry.series)
            {
                return Err(TsdbError::corrupt(
                    path,
                    "index entry out of bounds or order",
                ));
            }
            index.push(entry);
        }
        Ok(Block {
            path: path.to_path_buf(),
            file,
            meta,
            index,
            bytes,
        })
    }

    /// The index entry of a series, if the block holds it.
    pub(crate) fn find(&self, series: u64) -> Option<&IndexEntry> {
        self.index
            .binary_search_by_key(&series, |e| e.series)
            .ok()
            .map(|i| &self.index[i])
    }

    /// Whether the block may hold samples in `[lo, hi]`.
    pub(crate) fn overlaps(&self, lo: i64, hi: i64) -> bool {
        self.meta.samples > 0 && self.meta.min_ts <= hi && self.meta.max_ts >= lo
    }

    /// Reads `[offset, offset + buf.len())`.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        read_exact_at(&self.file, &self.path, offset, buf)
    }

    /// Checks a chunk's checksum.
    pub(crate) fn verify(&self, entry: &IndexEntry, chunk: &[u8]) -> Result<()> {
        if crc32fast::hash(chunk) != entry.crc {
            return Err(TsdbError::corrupt(
                &self.path,
                format!("chunk of series {} fails its checksum", entry.series),
            ));
        }
        Ok(())
    }

    /// Reads and verifies one chunk.
    pub(crate) fn read_chunk(&self, entry: &IndexEntry, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        buf.resize(entry.len as usize, 0);
        self.read_at(entry.offset, buf)?;
        self.verify(entry, buf)
    }
}

/// Writes a block to `tmp-<seq>.blk`, then renames it into place on [`BlockWriter::finish`].
/// Dropped without `finish`, it removes the temporary file.
pub(crate) struct BlockWriter {
    dir: PathBuf,
    tmp_path: PathBuf,
    w: Option<BufWriter<File>>,
    pos: u64,
    index: Vec<IndexEntry>,
    meta: BlockMeta,
}

impl BlockWriter {
    pub(crate) fn create(
        dir: &Path,
        kind: u8,
        level: u8,
        seq: u64,
        range_start: i64,
        range_end: i64,
    ) -> Result<BlockWriter> {
        let tmp_path = dir.join(format!("tmp-{seq:016x}.blk"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp_path)
            .map_err(|e| TsdbError::io(&tmp_path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(MAGIC)
            .map_err(|e| TsdbError::io(&tmp_path, e))?;
        Ok(BlockWriter {
            dir: dir.to_path_buf(),
            tmp_path,
            w: Some(w),
            pos: MAGIC.len() as u64,
            index: Vec::new(),
            meta: BlockMeta {
                kind,
                level,
                seq,
                range_start,
                range_end,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                samples: 0,
            },
        })
    }

    /// Adds one series' chunk; series must come in ascending id order.
    pub(crate) fn add(
        &mut self,
        series: u64,
        min_ts: i64,
        max_ts: i64,
        count: u32,
        chunk: &[u8],
    ) -> Result<()> {
        if self.index.last().is_some_and(|e| e.series >= series) {
            return Err(TsdbError::Internal("block series out of order".into()));
        }
        let len = u32::try_from(chunk.len())
            .map_err(|_| TsdbError::Internal("chunk larger than 4 GiB".into()))?;
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| TsdbError::Internal("block writer finished".into()))?;
        w.write_all(chunk)
            .map_err(|e| TsdbError::io(&self.tmp_path, e))?;
        self.index.push(IndexEntry {
            series,
            min_ts,
            max_ts,
            count,
            offset: self.pos,
            len,
            crc: crc32fast::hash(chunk),
        });
        self.pos += u64::from(len);
        self.meta.min_ts = self.meta.min_ts.min(min_ts);
        self.meta.max_ts = self.meta.max_ts.max(max_ts);
        self.meta.samples += u64::from(count);
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Writes index and footer, syncs, renames into place, syncs the directory, and opens
    /// the result.
    pub(crate) fn finish(mut self) -> Result<Block> {
        let mut w = self
            .w
            .take()
            .ok_or_else(|| TsdbError::Internal("block writer finished".into()))?;
        let mut index = Vec::with_capacity(self.index.len() * ENTRY_LEN);
        for e in &self.index {
            index.extend_from_slice(&e.series.to_le_bytes());
            index.extend_from_slice(&e.min_ts.to_le_bytes());
            index.extend_from_slice(&e.max_ts.to_le_bytes());
            index.extend_from_slice(&e.count.to_le_bytes());
            index.extend_from_slice(&e.offset.to_le_bytes());
            index.extend_from_slice(&e.len.to_le_bytes());
            index.extend_from_slice(&e.crc.to_le_bytes());
        }
        let m = &self.meta;
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.push(m.kind);
        footer.push(m.level);
        footer.extend_from_slice(&[0u8; 6]);
        footer.extend_from_slice(&m.seq.to_le_bytes());
        footer.extend_from_slice(&m.range_start.to_le_bytes());
        footer.extend_from_slice(&m.range_end.to_le_bytes());
        footer.extend_from_slice(&m.min_ts.to_le_bytes());
        footer.extend_from_slice(&m.max_ts.to_le_bytes());
        footer.extend_from_slice(&m.samples.to_le_bytes());
        footer.extend_from_slice(&self.pos.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
        let crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&crc.to_le_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        let tmp = self.tmp_path.clone();
        w.write_all(&index).map_err(|e| TsdbError::io(&tmp, e))?;
        w.write_all(&footer).map_err(|e| TsdbError::io(&tmp, e))?;
        let file = w
            .into_inner()
            .map_err(|e| TsdbError::io(&tmp, e.into_error()))?;
        file.sync_all().map_err(|e| TsdbError::io(&tmp, e))?;
        drop(file);
        let final_path = self.dir.join(file_name(m.kind, m.seq));
        std::fs::rename(&tmp, &final_path).map_err(|e| TsdbError::io(&final_path, e))?;
        sync_dir(&self.dir)?;
        Block::open(&final_path)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if self.w.is_some() {
            self.w = None;
            if let Err(e) = remove_file(&self.tmp_path) {
                tracing::warn!(error = %e, "could not remove an unfinished block");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_read_and_detect_damage() {
        let dir = std::env::temp_dir().join(format!("palisade-tsdb-block-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut w = BlockWriter::create(&dir, KIND_RAW, LEVEL_FLUSHED, 7, 0, 86_400_000).unwrap();
        w.add(1, 10, 20, 2, b"hello").unwrap();
        w.add(5, 15, 30, 3, b"world!").unwrap();
        assert!(w.add(5, 0, 0, 0, b"x").is_err(), "ids must ascend");
        let b = w.finish().unwrap();
        assert_eq!(b.meta.seq, 7);
        assert_eq!((b.meta.min_ts, b.meta.max_ts, b.meta.samples), (10, 30, 5));
        let e = *b.find(5).unwrap();
        let mut buf = Vec::new();
        b.read_chunk(&e, &mut buf).unwrap();
        assert_eq!(buf, b"world!");
        assert!(b.find(2).is_none());
        let path = b.path.clone();
        drop(b);
        // Flip a byte inside the second chunk: the chunk checksum catches it.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[e.offset as usize] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let b = Block::open(&path).unwrap();
        assert!(b.read_chunk(&e, &mut buf).is_err());
        // Flip a byte in the index: opening fails.
        let n = bytes.len();
        bytes[n - FOOTER_LEN - 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Block::open(&path).is_err());
        // Truncated footer.
        std::fs::write(&path, &bytes[..n - 1]).unwrap();
        assert!(Block::open(&path).is_err());
        // A dropped, unfinished writer leaves no temporary file.
        let w = BlockWriter::create(&dir, KIND_RAW, LEVEL_FLUSHED, 8, 0, 1).unwrap();
        drop(w);
        assert!(!dir.join("tmp-0000000000000008.blk").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
