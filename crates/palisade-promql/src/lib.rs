//! A PromQL subset for Palisade's Prometheus-compatible query API.
#![deny(missing_docs)]
