//! The monitoring core: the estate (devices, groups, properties), collectors and their
//! protocol, datasources, push ingest and time series, alerts and scheduled downtime.

pub mod alerts;
pub mod collectors;
pub mod datasources;
pub mod devices;
pub mod estate;
pub mod fields;
pub mod notify;
pub mod pipeline;
pub mod props;
pub mod sdt;

use std::sync::Arc;

/// The time-series store in use (embedded or remote).
#[derive(Clone)]
pub struct TsdbHandle(pub Arc<dyn palisade_tsdb::TimeSeriesStore>);

impl std::fmt::Debug for TsdbHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TsdbHandle")
    }
}
