//! The datasources Palisade ships, kept as files in the export format under
//! `datasources/` and embedded at build time.

use super::model::DataSource;

/// The built-in datasource files, by name.
const FILES: &[&str] = &[
    include_str!("../../datasources/HostCPU.json"),
    include_str!("../../datasources/HostMemory.json"),
    include_str!("../../datasources/HostDisk.json"),
    include_str!("../../datasources/HostNetwork.json"),
    include_str!("../../datasources/SNMP_System.json"),
    include_str!("../../datasources/SNMP_Interfaces.json"),
    include_str!("../../datasources/SNMP_HR_Storage.json"),
    include_str!("../../datasources/SNMP_HR_Processor.json"),
    include_str!("../../datasources/Ping.json"),
    include_str!("../../datasources/HTTP.json"),
];

/// The datasources Palisade ships: `HostCPU`, `HostMemory`, `HostDisk` and `HostNetwork`
/// (Linux hosts over SSH, or the collector's own host read directly), `SNMP_System`,
/// `SNMP_Interfaces`, `SNMP_HR_Storage`, `SNMP_HR_Processor`, `Ping` and `HTTP`.
///
/// Each is a file in the export format, validated by [`super::import`] (the tests make sure
/// that all of them are valid and in canonical form).
pub fn builtins() -> Vec<DataSource> {
    FILES
        .iter()
        .filter_map(|text| super::import(text).ok())
        .collect()
}

/// The number of built-in datasources.
#[cfg(test)]
pub(super) const COUNT: usize = FILES.len();

/// The built-in files as shipped.
#[cfg(test)]
pub(super) fn files() -> &'static [&'static str] {
    FILES
}
