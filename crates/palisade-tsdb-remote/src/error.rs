//! Errors of the remote backend and how they map into [`TsdbError`].

use palisade_tsdb::TsdbError;

/// What can go wrong when talking to a remote engine.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The configuration is not usable (a URL, header or auth value that does not parse).
    #[error("invalid remote store configuration: {0}")]
    Config(String),
    /// The request could not be sent or no answer arrived (connection refused, timeout,
    /// TLS failure), after the configured retries.
    #[error("{what}: request to {url} failed after {attempts} attempt(s): {source}")]
    Transport {
        /// Which operation (`remote write`, `query`, ...).
        what: &'static str,
        /// The URL (without credentials: they travel in headers).
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The engine answered with a non-2xx status.
    #[error("{what}: {url} answered {status} after {attempts} attempt(s): {body}")]
    Status {
        /// Which operation.
        what: &'static str,
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// How many attempts were made (client errors are not retried).
        attempts: u32,
        /// The start of the response body (the engine's error message).
        body: String,
    },
    /// The engine answered 2xx but the body is not a Prometheus API answer we understand.
    #[error("{what}: unexpected answer from {url}: {detail}")]
    Decode {
        /// Which operation.
        what: &'static str,
        /// The URL.
        url: String,
        /// What is wrong.
        detail: String,
    },
}

impl From<RemoteError> for TsdbError {
    fn from(e: RemoteError) -> Self {
        match &e {
            // The engine refused the query itself (bad PromQL, a regex it does not accept,
            // too many points): the caller's query is at fault, as with the embedded store.
            RemoteError::Status {
                status: 400 | 422,
                what,
                ..
            } if READS.contains(what) => TsdbError::InvalidQuery(e.to_string()),
            _ => TsdbError::Backend(e.to_string()),
        }
    }
}

/// Operation names (in messages; reads are told from writes when mapping).
pub(crate) const WRITE: &str = "remote write";
pub(crate) const QUERY: &str = "query";
pub(crate) const QUERY_RANGE: &str = "query_range";
pub(crate) const SERIES: &str = "series";
pub(crate) const LABELS: &str = "labels";
pub(crate) const LABEL_VALUES: &str = "label values";
pub(crate) const FLUSH: &str = "flush";
const READS: [&str; 5] = [QUERY, QUERY_RANGE, SERIES, LABELS, LABEL_VALUES];
