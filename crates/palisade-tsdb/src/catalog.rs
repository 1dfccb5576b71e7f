//! The series catalog, `series.cat`: an append-only file of checksummed series definition
//! records (the WAL's record format), so that series outlive the WAL segments that first
//! defined them. A torn tail is truncated on open.

use crate::codec::RecordIter;
use crate::error::{Result, TsdbError};
use crate::fsutil::sync_dir;
use crate::types::SeriesKey;
use crate::wal::{decode_series_body, put_series_record, REC_SERIES};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"PTSCAT01";

pub(crate) struct Catalog {
    path: PathBuf,
    file: File,
}

impl Catalog {
    /// Opens (or creates) the catalog; returns it and the series it holds.
    pub(crate) fn open(path: &Path) -> Result<(Catalog, Vec<(u64, SeriesKey)>)> {
        let mut series = Vec::new();
        match std::fs::read(path) {
            Ok(data) if data.len() >= MAGIC.len() => {
                if &data[..MAGIC.len()] != MAGIC {
                    return Err(TsdbError::corrupt(path, "not a series catalog (bad magic)"));
                }
                let mut it = RecordIter::new(&data[MAGIC.len()..]);
                for (kind, body) in it.by_ref() {
                    if kind == REC_SERIES {
                        series.push(decode_series_body(body).map_err(|e| {
                            TsdbError::corrupt(path, format!("series record: {e}"))
                        })?);
                    }
                }
                let valid = MAGIC.len() + it.valid_len();
                if valid < data.len() {
                    tracing::warn!(
                        path = %path.display(),
                        bytes = data.len() - valid,
                        "truncating a torn series-catalog tail"
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| TsdbError::io(path, e))?;
                    f.set_len(valid as u64)
                        .map_err(|e| TsdbError::io(path, e))?;
                    f.sync_all().map_err(|e| TsdbError::io(path, e))?;
                }
            }
            Ok(_) => create(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(TsdbError::io(path, e)),
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| TsdbError::io(path, e))?;
        Ok((
            Catalog {
                path: path.to_path_buf(),
                file,
            },
            series,
        ))
    }

    /// Appends series definitions and syncs them.
    pub(crate) fn append<'a>(
        &mut self,
        series: impl IntoIterator<Item = (u64, &'a SeriesKey)>,
    ) -> Result<usize> {
        let mut buf = Vec::new();
        let mut n = 0;
        for (id, key) in series {
            put_series_record(&mut buf, id, key);
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| TsdbError::io(&self.path, e))?;
        Ok(n)
    }
}

fn create(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(|e| TsdbError::io(path, e))?;
    f.write_all(MAGIC).map_err(|e| TsdbError::io(path, e))?;
    f.sync_all().map_err(|e| TsdbError::io(path, e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}
