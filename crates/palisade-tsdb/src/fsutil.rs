//! Small file-system helpers: directory fsync, positioned reads, durable small files.

use crate::error::{Result, TsdbError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| TsdbError::io(dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_exact_at(file: &File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
            .map_err(|e| TsdbError::io(path, e))
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0usize;
        while done < buf.len() {
            let n = file
                .seek_read(&mut buf[done..], offset + done as u64)
                .map_err(|e| TsdbError::io(path, e))?;
            if n == 0 {
                return Err(TsdbError::io(
                    path,
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                ));
            }
            done += n;
        }
        Ok(())
    }
}

/// Writes a small file atomically and durably: temporary file, fsync, rename, directory
/// fsync.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| TsdbError::Internal(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .map_err(|e| TsdbError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| TsdbError::io(&tmp, e))?;
    f.sync_all().map_err(|e| TsdbError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| TsdbError::io(path, e))?;
    sync_dir(dir)
}

/// Removes a file; a file that is already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TsdbError::io(path, e)),
    }
}

/// Creates a directory (and its parents) if missing.
pub(crate) fn ensure_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| TsdbError::io(path, e))
}

/// Total size of the regular files directly inside `dir`.
pub(crate) fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(TsdbError::io(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| TsdbError::io(dir, e))?;
        let meta = entry
            .metadata()
            .map_err(|e| TsdbError::io(entry.path(), e))?;
        if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}
