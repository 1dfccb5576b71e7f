//! Error types. None of them ever carries a community string, a password or
//! a key.

use std::fmt;

use crate::oid::Oid;

/// Why a byte string is not a valid SNMP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a TLV header.
    #[error("truncated input")]
    Truncated,
    /// A length larger than the bytes that follow it.
    #[error("length {claimed} exceeds the {available} bytes available")]
    LengthExceedsInput {
        /// The length the TLV claims.
        claimed: usize,
        /// The bytes actually left.
        available: usize,
    },
    /// The indefinite length form (not allowed in SNMP).
    #[error("indefinite length form")]
    IndefiniteLength,
    /// A length of more than four octets.
    #[error("length field longer than four octets")]
    LengthTooLong,
    /// A multi-byte (high tag number) tag.
    #[error("unsupported tag 0x{0:02x}")]
    UnsupportedTag(u8),
    /// A tag other than the one the schema requires.
    #[error("{what}: expected tag 0x{expected:02x}, found 0x{found:02x}")]
    UnexpectedTag {
        /// The field being decoded.
        what: &'static str,
        /// The tag the schema requires.
        expected: u8,
        /// The tag present.
        found: u8,
    },
    /// A value whose tag is not one of the SNMP value types.
    #[error("unknown value tag 0x{0:02x}")]
    UnknownValueType(u8),
    /// A PDU tag this crate does not handle (e.g. SNMPv1 Trap).
    #[error("unknown PDU tag 0x{0:02x}")]
    UnknownPdu(u8),
    /// Bytes left over inside a TLV or after the message.
    #[error("trailing data after {0}")]
    TrailingData(&'static str),
    /// Content that is not a valid encoding of its type.
    #[error("invalid encoding of {0}")]
    Invalid(&'static str),
    /// An integer too large (or negative where not allowed) for its field.
    #[error("integer out of range for {0}")]
    IntegerOutOfRange(&'static str),
    /// An SNMP version other than v2c (1) or v3 (3).
    #[error("unsupported SNMP version {0}")]
    UnsupportedVersion(i32),
    /// An SNMPv3 security model other than USM (3).
    #[error("unsupported security model {0}")]
    UnsupportedSecurityModel(i32),
    /// More than 128 sub-identifiers in an OID.
    #[error("object identifier has more than 128 sub-identifiers")]
    OidTooLong,
    /// A message larger than the configured maximum.
    #[error("message of {0} bytes exceeds the maximum message size")]
    TooLarge(usize),
}

/// Why a string or slice is not a valid object identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OidError {
    /// Fewer than two sub-identifiers.
    #[error("an object identifier needs at least two sub-identifiers")]
    TooShort,
    /// More than 128 sub-identifiers.
    #[error("an object identifier has at most 128 sub-identifiers")]
    TooLong,
    /// A component that is not a decimal number fitting in 32 bits.
    #[error("invalid sub-identifier {0:?}")]
    BadComponent(String),
    /// A first arc above 2, or a second arc of 40 or more under arcs 0 and 1.
    #[error("invalid first arcs (first must be 0, 1 or 2; second < 40 unless first is 2)")]
    BadArcs,
}

/// Errors in USM key derivation, authentication or privacy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsmError {
    /// A password shorter than 8 bytes (RFC 3414 section 11.2).
    #[error("password must be at least 8 bytes long")]
    PasswordTooShort,
    /// A key of the wrong length for its protocol.
    #[error("key has the wrong length for the protocol")]
    BadKeyLength,
    /// msgPrivacyParameters of the wrong length.
    #[error("privacy parameters must be 8 bytes")]
    BadPrivParams,
    /// Ciphertext that is empty or (for DES) not a multiple of the block size.
    #[error("ciphertext length is invalid for the privacy protocol")]
    BadCiphertext,
    /// The decrypted data is not a scoped PDU (usually a wrong privacy key).
    #[error("decrypted data is not a valid scoped PDU (wrong privacy password?)")]
    DecryptionFailed,
    /// A message that is not an authenticated SNMPv3 message.
    #[error("message is not authenticated")]
    NotAuthenticated,
    /// msgAuthenticationParameters of the wrong length.
    #[error("authentication parameters have the wrong length")]
    BadAuthParams,
}

/// An SNMP agent's error-status (RFC 3416).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorStatus {
    /// noError(0)
    NoError,
    /// tooBig(1)
    TooBig,
    /// noSuchName(2)
    NoSuchName,
    /// badValue(3)
    BadValue,
    /// readOnly(4)
    ReadOnly,
    /// genErr(5)
    GenErr,
    /// noAccess(6)
    NoAccess,
    /// wrongType(7)
    WrongType,
    /// wrongLength(8)
    WrongLength,
    /// wrongEncoding(9)
    WrongEncoding,
    /// wrongValue(10)
    WrongValue,
    /// noCreation(11)
    NoCreation,
    /// inconsistentValue(12)
    InconsistentValue,
    /// resourceUnavailable(13)
    ResourceUnavailable,
    /// commitFailed(14)
    CommitFailed,
    /// undoFailed(15)
    UndoFailed,
    /// authorizationError(16)
    AuthorizationError,
    /// notWritable(17)
    NotWritable,
    /// inconsistentName(18)
    InconsistentName,
    /// Any other value.
    Other(i32),
}

impl ErrorStatus {
    const NAMES: [(ErrorStatus, &'static str); 19] = [
        (ErrorStatus::NoError, "noError"),
        (ErrorStatus::TooBig, "tooBig"),
        (ErrorStatus::NoSuchName, "noSuchName"),
        (ErrorStatus::BadValue, "badValue"),
        (ErrorStatus::ReadOnly, "readOnly"),
        (ErrorStatus::GenErr, "genErr"),
        (ErrorStatus::NoAccess, "noAccess"),
        (ErrorStatus::WrongType, "wrongType"),
        (ErrorStatus::WrongLength, "wrongLength"),
        (ErrorStatus::WrongEncoding, "wrongEncoding"),
        (ErrorStatus::WrongValue, "wrongValue"),
        (ErrorStatus::NoCreation, "noCreation"),
        (ErrorStatus::InconsistentValue, "inconsistentValue"),
        (ErrorStatus::ResourceUnavailable, "resourceUnavailable"),
        (ErrorStatus::CommitFailed, "commitFailed"),
        (ErrorStatus::UndoFailed, "undoFailed"),
        (ErrorStatus::AuthorizationError, "authorizationError"),
        (ErrorStatus::NotWritable, "notWritable"),
        (ErrorStatus::InconsistentName, "inconsistentName"),
    ];

    /// Maps the wire value.
    pub fn from_i32(v: i32) -> Self {
        usize::try_from(v)
            .ok()
            .and_then(|i| Self::NAMES.get(i))
            .map_or(ErrorStatus::Other(v), |&(s, _)| s)
    }

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        if let ErrorStatus::Other(v) = self {
            return v;
        }
        Self::NAMES
            .iter()
            .position(|&(s, _)| s == self)
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or(-1)
    }
}

impl fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMES.iter().find(|&&(s, _)| s == *self) {
            Some((_, name)) => write!(f, "{name}({})", self.as_i32()),
            None => write!(f, "error-status {}", self.as_i32()),
        }
    }
}

/// An SNMPv3 security failure, mostly from a Report PDU's usmStats counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// usmStatsWrongDigests: wrong authentication password or protocol.
    #[error("authentication failed: the agent rejected the message digest (wrong authentication password or protocol)")]
    WrongDigest,
    /// usmStatsUnknownUserNames: the agent has no such user.
    #[error("authentication failed: the agent does not know this user name")]
    UnknownUserName,
    /// usmStatsUnsupportedSecLevels: the user is not configured for this level.
    #[error("the agent does not support this security level for the user")]
    UnsupportedSecurityLevel,
    /// usmStatsDecryptionErrors: wrong privacy password or protocol.
    #[error("the agent could not decrypt the request (wrong privacy password or protocol)")]
    DecryptionError,
    /// usmStatsNotInTimeWindows that persisted after resynchronisation.
    #[error("the message was outside the agent's time window")]
    NotInTimeWindow,
    /// usmStatsUnknownEngineIDs that persisted after rediscovery.
    #[error("the agent does not recognise the engine ID")]
    UnknownEngineId,
    /// Responses arrived but none carried a valid digest for our key.
    #[error("responses failed authentication (wrong authentication password, or spoofed)")]
    BadResponseDigest,
    /// Responses arrived but none could be decrypted with our key.
    #[error("responses could not be decrypted (wrong privacy password or protocol)")]
    BadResponseDecryption,
}

/// Errors of the [`Client`](crate::Client).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No matching response within the timeout, after all retries.
    #[error("no response from {addr} after {attempts} attempt(s)")]
    Timeout {
        /// The agent's address.
        addr: std::net::SocketAddr,
        /// How many times the request was sent.
        attempts: u32,
    },
    /// A socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The agent answered only with datagrams that are not valid SNMP.
    #[error("could not decode the response: {0}")]
    Decode(#[from] DecodeError),
    /// The agent returned an error-status.
    #[error("agent returned {status} at varbind index {index}{}", oid.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    Agent {
        /// The error-status.
        status: ErrorStatus,
        /// The 1-based error-index (0 when not tied to a varbind).
        index: i32,
        /// The OID of the varbind the error index points at, if any.
        oid: Option<Oid>,
    },
    /// An SNMPv3 authentication, privacy or timeliness failure.
    #[error("{0}")]
    Auth(AuthFailure),
    /// The agent sent a Report with an OID this crate does not map.
    #[error("agent sent a Report ({0})")]
    Report(Oid),
    /// Invalid client parameters (e.g. privacy without authentication).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// Key derivation or cryptographic failure on our side.
    #[error("USM: {0}")]
    Usm(#[from] UsmError),
    /// The request would exceed the maximum message size.
    #[error("request of {size} bytes exceeds the maximum message size {max}")]
    RequestTooLarge {
        /// The encoded request size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The response does not fit the request (e.g. wrong varbind count).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A walk got an OID that is not greater than the previous one.
    #[error("walk: OID {oid} does not increase (previous {previous})")]
    NonIncreasing {
        /// The previous OID.
        previous: Oid,
        /// The offending OID.
        oid: Oid,
    },
}
