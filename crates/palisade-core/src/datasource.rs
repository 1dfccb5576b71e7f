//! Datasources: what the collector collects from a device, and how.
//!
//! (module documentation is completed below)

pub mod expr;
