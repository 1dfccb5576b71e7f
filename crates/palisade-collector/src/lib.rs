//! `palisade-collector`: Palisade's collector agent.
//!
//! It registers with the portal once (a one-time secret exchanged for a key kept in its
//! state directory, mode 0600), then heartbeats with a privilege report, fetches its work
//! (devices and datasources) when it changes, collects each datasource on each device at
//! its interval, and delivers the results through an on-disk buffer so that nothing is
//! lost while the portal is down. It refuses to run as root or with capabilities beyond
//! `cap_net_raw` unless told otherwise (and then says so to the portal).
//!
//! The protocol is in `docs/collector-protocol.md`, the operator's guide in
//! `docs/collector.md`.

#![deny(missing_docs)]

pub mod buffer;
pub mod config;
pub mod error;
pub mod install;
pub mod lint;
pub mod methods;
pub mod migrate;
pub mod parse;
pub mod portal;
pub mod privilege;
#[cfg(any(windows, test))]
pub mod privilege_windows;
pub mod process;
pub mod register;
pub mod report;
pub mod run;
pub mod service;
pub mod windows_script;
pub mod work;

pub use error::{Error, Result};

/// Exit code when the process refuses to run for privilege reasons (sysexits `EX_NOPERM`).
pub const EXIT_PRIVILEGE: u8 = 77;
/// Exit code for configuration problems, including "not registered" (`EX_CONFIG`).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when the portal cannot be reached or refuses (`EX_UNAVAILABLE`).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// The exit code for an error.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Privilege(_) => EXIT_PRIVILEGE,
        Error::Config(_) | Error::NotRegistered(_) | Error::Locked(_) | Error::Tls(_) => {
            EXIT_CONFIG
        }
        Error::Http(_) | Error::Portal { .. } => EXIT_UNAVAILABLE,
        Error::Io { .. } | Error::Buffer(_) => 1,
    }
}
