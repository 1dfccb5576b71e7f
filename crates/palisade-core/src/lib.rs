//! Palisade's pure rules: everything that decides, nothing that does I/O.
//!
//! This crate owns the logic the portal and the CLI must agree on and that is
//! worth testing and fuzzing in isolation:
//!
//! - [`lmv1`]: LogicMonitor's LMv1 request signing (header parsing, signing, verification
//!   with the ±30 minute window, constant-time comparison).
//! - [`token`]: the format of Bearer tokens and LMv1 access keys (recognisable prefix and
//!   checksum, so a leaked one is found by secret scanners and a typo fails before a lookup).
//! - [`privilege`]: the privilege vocabulary of roles and what a set of privileges allows.
//! - [`policy`]: the API-token mandate (no token for the support user or for holders of the
//!   built-in `administrator` role) and the "one administrator always remains" invariant.
//! - [`password`]: the password policy.
//! - [`audit_chain`]: the hash chain that makes the audit log tamper-evident.
//! - [`filter`] and [`listing`]: LogicMonitor's `filter` grammar and list query semantics.
//! - [`ratelimit`]: token buckets.
//! - [`client_ip`]: which address a request came from, honouring only trusted proxies.
//! - [`secret`]: a redacting wrapper for secrets.
//! - [`base32`]: RFC 4648 base32, the encoding of TOTP secrets.
//! - [`failover`]: which collector monitors a device when its own is down.
//! - [`totp`]: RFC 6238 TOTP codes, verification with a ±1 step window and replay refusal,
//!   and the `otpauth://` enrolment URI.
//! - [`otp`]: codes sent by email, SMS or voice (single use, 10 minutes, 5 tries, send
//!   budget) and recovery codes.
//! - [`lockout`]: the per-account lockout after repeated failed sign-ins.
//! - [`module_lint`]: what in a custom module script needs root or Administrator.
//! - [`mfa`]: the two-factor mandate: who must enrol, and by when.
//! - [`applies_to`]: LogicMonitor's `appliesTo` expressions, which choose the devices of
//!   dynamic groups and datasources from their properties.
//! - [`ingest`]: the body of LogicMonitor's push-metrics ingest (`POST /v2/metric/ingest`),
//!   parsed and validated against its limits, with per-item errors for a 202 answer.
//! - [`threshold`]: LogicMonitor's static thresholds (`alertExpr`, `"> 60 80 90"`), alert
//!   severities, and which override is in force (device, group, datasource default).
//! - [`alert_state`]: the per-datapoint alert state machine (trigger and clear intervals,
//!   escalation, no-data alerts), persisted as a small serialisable state.
//! - [`sdt`]: scheduled downtime schedules (one-time, daily, weekly, monthly, monthly by week)
//!   in the SDT's time zone, daylight-saving changes included.
//! - [`datasource`]: datasources, what the collector collects and how (SNMP, SSH, HTTP, ping,
//!   Prometheus, scripts): the version-controlled file format (import, export, validation),
//!   the built-in set, counter rates and expression datapoints.
//!
//! Nothing here reads a clock: time is always a parameter (`now_ms`).
//!
//! ```
//! use palisade_core::lmv1;
//! let sig = lmv1::sign("testkey", "GET", 1_700_000_000_000, b"", "/setting/admins/2");
//! assert_eq!(sig, "OWE1ODJkNDk5OWJhZThjNTFlMWE4OTc2NmIyNThjYmFjMmU1YzU5NzIzYTIzZmU5MDU5ZTdiMjEzOGViZDJhNA==");
//! ```
#![deny(missing_docs)]

pub mod alert_state;
pub mod applies_to;
pub mod audit_chain;
pub mod base32;
pub mod client_ip;
pub mod datasource;
pub mod failover;
pub mod filter;
pub mod ingest;
pub mod listing;
pub mod lmv1;
pub mod lockout;
pub mod mfa;
pub mod module_lint;
pub mod otp;
pub mod password;
pub mod policy;
pub mod privilege;
pub mod property;
pub mod ratelimit;
pub mod sdt;
pub mod secret;
pub mod threshold;
pub mod token;
pub mod totp;
