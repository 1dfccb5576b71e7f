//! SNMP for Palisade's collector agent: a pure BER codec for SNMPv2c and
//! SNMPv3 (USM) messages, the USM security primitives, and a small async UDP
//! client (`get`, `get_next`, `get_bulk`, `bulk_walk`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use palisade_snmp::{AuthProtocol, Client, Oid, PrivProtocol};
//! let mut c = Client::v3(
//!     "192.0.2.1:161".parse()?,
//!     "monitor",
//!     Some((AuthProtocol::Sha256, "auth password")),
//!     Some((PrivProtocol::Aes128, "priv password")),
//! )
//! .await?;
//! let sys_up_time: Oid = "1.3.6.1.2.1.1.3.0".parse()?;
//! for vb in c.get(&[sys_up_time]).await? {
//!     println!("{} = {}", vb.oid, vb.value);
//! }
//! let if_table: Oid = "1.3.6.1.2.1.2.2".parse()?;
//! let rows = c.bulk_walk(&if_table).await?;
//! # let _ = rows;
//! # Ok(())
//! # }
//! ```
//!
//! Decoding never panics and never allocates more than the input it has
//! checked; see `docs/snmp.md` for what is supported and the limits.
#![deny(missing_docs)]

mod ber;
mod client;
mod error;
pub mod message;
mod oid;
mod pdu;
pub mod usm;
mod value;

pub use client::{Client, ClientConfig, DEFAULT_MAX_MESSAGE_SIZE};
pub use error::{AuthFailure, DecodeError, Error, ErrorStatus, OidError, UsmError};
pub use message::{Message, ScopedPdu, V3Message};
pub use oid::{Oid, MAX_OID_LEN};
pub use pdu::{Pdu, PduType, VarBind};
pub use usm::{AuthProtocol, PrivProtocol};
pub use value::Value;

/// Decodes one SNMP message (v2c or v3) from a datagram.
pub fn decode_message(buf: &[u8]) -> Result<Message, DecodeError> {
    Message::decode(buf)
}

#[cfg(test)]
mod tests;
