//! SNMP values (the `ObjectSyntax` of RFC 3416 plus the exception values).

use std::fmt;
use std::net::Ipv4Addr;

use crate::ber::{self, tag, write_signed, write_tlv, write_unsigned, Tlv};
use crate::error::DecodeError;
use crate::oid::Oid;

/// The value of a variable binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// INTEGER (Integer32).
    Integer(i32),
    /// OCTET STRING.
    OctetString(Vec<u8>),
    /// NULL (the value of every varbind in a request).
    Null,
    /// OBJECT IDENTIFIER.
    ObjectIdentifier(Oid),
    /// IpAddress.
    IpAddress(Ipv4Addr),
    /// Counter32.
    Counter32(u32),
    /// Gauge32 (also Unsigned32).
    Gauge32(u32),
    /// TimeTicks, hundredths of a second.
    TimeTicks(u32),
    /// Opaque (raw content, not interpreted).
    Opaque(Vec<u8>),
    /// Counter64.
    Counter64(u64),
    /// noSuchObject exception.
    NoSuchObject,
    /// noSuchInstance exception.
    NoSuchInstance,
    /// endOfMibView exception.
    EndOfMibView,
}

impl Value {
    /// Whether this is one of the three exception values.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// The BER tag of this value.
    pub fn tag(&self) -> u8 {
        match self {
            Value::Integer(_) => tag::INTEGER,
            Value::OctetString(_) => tag::OCTET_STRING,
            Value::Null => tag::NULL,
            Value::ObjectIdentifier(_) => tag::OBJECT_IDENTIFIER,
            Value::IpAddress(_) => tag::IP_ADDRESS,
            Value::Counter32(_) => tag::COUNTER32,
            Value::Gauge32(_) => tag::GAUGE32,
            Value::TimeTicks(_) => tag::TIMETICKS,
            Value::Opaque(_) => tag::OPAQUE,
            Value::Counter64(_) => tag::COUNTER64,
            Value::NoSuchObject => tag::NO_SUCH_OBJECT,
            Value::NoSuchInstance => tag::NO_SUCH_INSTANCE,
            Value::EndOfMibView => tag::END_OF_MIB_VIEW,
        }
    }

    /// The numeric value of INTEGER, Counter32, Gauge32, TimeTicks and
    /// Counter64, widened to `i128`.
    pub fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Integer(v) => Some(i128::from(v)),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(i128::from(v)),
            Value::Counter64(v) => Some(i128::from(v)),
            _ => None,
        }
    }

    /// The bytes of an OCTET STRING or Opaque.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::OctetString(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(v) => write_signed(out, tag::INTEGER, i64::from(*v)),
            Value::OctetString(b) => write_tlv(out, tag::OCTET_STRING, b),
            Value::Null => write_tlv(out, tag::NULL, &[]),
            Value::ObjectIdentifier(oid) => oid.encode(out),
            Value::IpAddress(ip) => write_tlv(out, tag::IP_ADDRESS, &ip.octets()),
            Value::Counter32(v) => write_unsigned(out, tag::COUNTER32, u64::from(*v)),
            Value::Gauge32(v) => write_unsigned(out, tag::GAUGE32, u64::from(*v)),
            Value::TimeTicks(v) => write_unsigned(out, tag::TIMETICKS, u64::from(*v)),
            Value::Opaque(b) => write_tlv(out, tag::OPAQUE, b),
            Value::Counter64(v) => write_unsigned(out, tag::COUNTER64, *v),
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView => {
                write_tlv(out, self.tag(), &[]);
            }
        }
    }

    /// Decodes a value TLV.
    ///
    /// Like net-snmp, integers longer than their type are accepted and
    /// truncated to the type's width (some agents send a 32-bit value as a
    /// 5- to 8-octet INTEGER); anything longer than 8 octets (9 for
    /// Counter64, to allow a leading zero) is an error.
    pub(crate) fn decode(tlv: Tlv<'_>) -> Result<Value, DecodeError> {
        let c = tlv.content;
        let empty = |v: Value| {
            if c.is_empty() {
                Ok(v)
            } else {
                Err(DecodeError::Invalid("exception value (must be empty)"))
            }
        };
        Ok(match tlv.tag {
            tag::INTEGER => Value::Integer(ber::signed(c, 8, "INTEGER")? as i32),
            tag::OCTET_STRING => Value::OctetString(c.to_vec()),
            tag::NULL => empty(Value::Null)?,
            tag::OBJECT_IDENTIFIER => Value::ObjectIdentifier(Oid::decode(c)?),
            tag::IP_ADDRESS => {
                let octets: [u8; 4] = c
                    .try_into()
                    .map_err(|_| DecodeError::Invalid("IpAddress (must be 4 octets)"))?;
                Value::IpAddress(Ipv4Addr::from(octets))
            }
            tag::COUNTER32 => Value::Counter32(ber::signed(c, 8, "Counter32")? as u32),
            tag::GAUGE32 => Value::Gauge32(ber::signed(c, 8, "Gauge32")? as u32),
            tag::TIMETICKS => Value::TimeTicks(ber::signed(c, 8, "TimeTicks")? as u32),
            tag::OPAQUE => Value::Opaque(c.to_vec()),
            tag::COUNTER64 => Value::Counter64(ber::signed(c, 9, "Counter64")? as u64),
            tag::NO_SUCH_OBJECT => empty(Value::NoSuchObject)?,
            tag::NO_SUCH_INSTANCE => empty(Value::NoSuchInstance)?,
            tag::END_OF_MIB_VIEW => empty(Value::EndOfMibView)?,
            other => return Err(DecodeError::UnknownValueType(other)),
        })
    }
}

impl fmt::Display for Value {
    /// A net-snmp-like rendering (`INTEGER: 5`, `STRING: "x"`, ...).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(v) => write!(f, "INTEGER: {v}"),
            Value::OctetString(b) => match std::str::from_utf8(b) {
                Ok(s)
                    if !s
                        .chars()
                        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') =>
                {
                    write!(f, "STRING: {s:?}")
                }
                _ => {
                    f.write_str("Hex-STRING:")?;
                    for byte in b {
                        write!(f, " {byte:02X}")?;
                    }
                    Ok(())
                }
            },
            Value::Null => f.write_str("NULL"),
            Value::ObjectIdentifier(o) => write!(f, "OID: {o}"),
            Value::IpAddress(ip) => write!(f, "IpAddress: {ip}"),
            Value::Counter32(v) => write!(f, "Counter32: {v}"),
            Value::Gauge32(v) => write!(f, "Gauge32: {v}"),
            Value::TimeTicks(v) => write!(f, "Timeticks: ({v})"),
            Value::Opaque(b) => {
                f.write_str("Opaque:")?;
                for byte in b {
                    write!(f, " {byte:02X}")?;
                }
                Ok(())
            }
            Value::Counter64(v) => write!(f, "Counter64: {v}"),
            Value::NoSuchObject => f.write_str("noSuchObject"),
            Value::NoSuchInstance => f.write_str("noSuchInstance"),
            Value::EndOfMibView => f.write_str("endOfMibView"),
        }
    }
}
