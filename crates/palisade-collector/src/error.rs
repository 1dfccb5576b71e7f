//! The collector's errors.

use std::path::Path;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Bad configuration or command line.
    #[error("configuration: {0}")]
    Config(String),
    /// The collector has no identity yet.
    #[error("not registered: {0}")]
    NotRegistered(String),
    /// The process may not run (root or capabilities beyond `cap_net_raw`).
    #[error("{0}")]
    Privilege(String),
    /// The portal could not be reached.
    #[error("cannot reach the portal: {0}")]
    Http(#[from] reqwest::Error),
    /// The portal answered with an error.
    #[error("the portal answered {status}: {message}")]
    Portal {
        /// HTTP status.
        status: u16,
        /// The portal's message (`errorMessage`) or the body.
        message: String,
    },
    /// TLS set-up failed (CA file, pin).
    #[error("TLS: {0}")]
    Tls(String),
    /// Another process holds the state directory.
    #[error("the state directory {0} is in use by another palisade-collector process")]
    Locked(String),
    /// The on-disk buffer is damaged in a way that needs attention.
    #[error("buffer: {0}")]
    Buffer(String),
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            what: format!("{what} {}", path.display()),
            source,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
