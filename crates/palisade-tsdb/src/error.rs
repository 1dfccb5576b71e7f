//! Errors of the time-series store.

use std::path::PathBuf;

/// Errors of a [`crate::TimeSeriesStore`].
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// A file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content failed its checksum or does not parse.
    #[error("corrupt data in {path}: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A series key is not acceptable (empty metric, empty label name or value, `__name__`
    /// given as a label).
    #[error("invalid series: {0}")]
    InvalidSeries(String),
    /// A selector is not acceptable (e.g. a regular expression that does not compile).
    #[error("invalid selector: {0}")]
    InvalidSelector(String),
    /// A query's range, step or aggregation is not acceptable.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// Writing or syncing the write-ahead log failed. The store refuses further writes until
    /// it is reopened (after an fsync failure the kernel may have dropped dirty pages, so
    /// retrying the same file is not safe).
    #[error("the write-ahead log failed; writes are refused until the store is reopened: {0}")]
    WalFailed(String),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// Another process (or another handle in this one) has the data directory open.
    #[error("{0} is locked by another open store")]
    Locked(PathBuf),
    /// Compressing or decompressing a chunk failed.
    #[error("codec error: {0}")]
    Codec(String),
    /// A remote backend answered with an error or could not be reached.
    #[error("backend error: {0}")]
    Backend(String),
    /// An internal task failed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl TsdbError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TsdbError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        TsdbError::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = TsdbError> = std::result::Result<T, E>;
