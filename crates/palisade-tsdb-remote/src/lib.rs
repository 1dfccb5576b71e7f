//! The scale-out time-series backend (Prometheus remote_write + HTTP query API).
#![deny(missing_docs)]
