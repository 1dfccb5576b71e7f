//! Minimal BER (X.690) primitives for the subset that SNMP uses.
//!
//! The decoder is a cursor over a borrowed byte slice: it never copies or
//! allocates before a TLV's claimed length has been checked against the
//! bytes that are actually present, and it only supports single-byte tags and
//! definite lengths of at most four length octets. Nesting depth is bounded by
//! construction: the message decoders in this crate follow the fixed SNMP
//! schema (at most six levels) and never recurse on input.

use crate::error::DecodeError;

/// Universal and SNMP application/context tags used by this crate.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const IP_ADDRESS: u8 = 0x40;
    pub const COUNTER32: u8 = 0x41;
    pub const GAUGE32: u8 = 0x42;
    pub const TIMETICKS: u8 = 0x43;
    pub const OPAQUE: u8 = 0x44;
    pub const COUNTER64: u8 = 0x46;
    pub const NO_SUCH_OBJECT: u8 = 0x80;
    pub const NO_SUCH_INSTANCE: u8 = 0x81;
    pub const END_OF_MIB_VIEW: u8 = 0x82;
}

/// One decoded TLV: its tag, its content and the absolute offset of the
/// content within the outermost buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub offset: usize,
}

/// A forward-only cursor over BER data.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole buffer (absolute offsets start at 0).
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
        }
    }

    /// A reader over the content of `tlv`, keeping absolute offsets.
    pub fn nested(tlv: Tlv<'a>) -> Self {
        Reader {
            buf: tlv.content,
            pos: 0,
            base: tlv.offset,
        }
    }

    /// Whether all input has been consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads the next TLV header and returns the TLV; the content is a
    /// sub-slice of the input, so nothing is allocated.
    pub fn read_tlv(&mut self) -> Result<Tlv<'a>, DecodeError> {
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(DecodeError::UnsupportedTag(tag));
        }
        let first = self.byte()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err(DecodeError::IndefiniteLength);
            }
            if n > 4 {
                return Err(DecodeError::LengthTooLong);
            }
            let mut len: usize = 0;
            for _ in 0..n {
                len = (len << 8) | usize::from(self.byte()?);
            }
            len
        };
        let remaining = self.buf.len().saturating_sub(self.pos);
        if len > remaining {
            return Err(DecodeError::LengthExceedsInput {
                claimed: len,
                available: remaining,
            });
        }
        let start = self.pos;
        let content = self
            .buf
            .get(start..start + len)
            .ok_or(DecodeError::Truncated)?;
        self.pos += len;
        Ok(Tlv {
            tag,
            content,
            offset: self.base + start,
        })
    }

    /// Reads a TLV and checks its tag.
    pub fn expect(&mut self, want: u8, what: &'static str) -> Result<Tlv<'a>, DecodeError> {
        let tlv = self.read_tlv()?;
        if tlv.tag != want {
            return Err(DecodeError::UnexpectedTag {
                what,
                expected: want,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }

    /// Reads a constructed SEQUENCE (or other constructed tag) and returns a
    /// reader over its content.
    pub fn sequence(&mut self, want: u8, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        Ok(Reader::nested(self.expect(want, what)?))
    }

    /// Reads an INTEGER that must fit in `i32`.
    pub fn read_i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let tlv = self.expect(tag::INTEGER, what)?;
        let v = signed(tlv.content, 8, what)?;
        i32::try_from(v).map_err(|_| DecodeError::IntegerOutOfRange(what))
    }

    /// Reads an INTEGER that must be in `0..=i32::MAX`.
    pub fn read_non_negative(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.read_i32(what)?;
        u32::try_from(v).map_err(|_| DecodeError::IntegerOutOfRange(what))
    }

    /// Reads an OCTET STRING and returns its bytes (borrowed).
    pub fn read_octets(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        Ok(self.expect(tag::OCTET_STRING, what)?.content)
    }

    /// Fails unless all input was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingData(what))
        }
    }
}

/// Decodes a two's-complement big-endian integer of 1..=`max_len` octets.
pub(crate) fn signed(
    content: &[u8],
    max_len: usize,
    what: &'static str,
) -> Result<i128, DecodeError> {
    let Some(&first) = content.first() else {
        return Err(DecodeError::Invalid(what));
    };
    if content.len() > max_len || content.len() > 16 {
        return Err(DecodeError::IntegerOutOfRange(what));
    }
    let mut v: i128 = if first & 0x80 != 0 { -1 } else { 0 };
    for &b in content {
        v = (v << 8) | i128::from(b);
    }
    Ok(v)
}

/// Appends a BER length.
pub(crate) fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = (len as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    let significant = &bytes[skip..];
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

/// The number of octets that a tag plus a length of `len` takes.
pub(crate) fn header_len(len: usize) -> usize {
    if len < 0x80 {
        2
    } else {
        let bits = usize::BITS - len.leading_zeros();
        2 + bits.div_ceil(8) as usize
    }
}

/// Appends a complete TLV.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_len(out, content.len());
    out.extend_from_slice(content);
}

/// Wraps everything written to `out` since `start` in a TLV with `tag`.
pub(crate) fn wrap(out: &mut Vec<u8>, start: usize, tag: u8) {
    let len = out.len() - start;
    let mut header = Vec::with_capacity(6);
    header.push(tag);
    write_len(&mut header, len);
    out.splice(start..start, header);
}

/// Appends a minimal two's-complement INTEGER-like TLV.
pub(crate) fn write_signed(out: &mut Vec<u8>, tag: u8, v: i64) {
    let bytes = v.to_be_bytes();
    let mut i = 0;
    while i < 7 {
        let (b, next) = (bytes[i], bytes[i + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            i += 1;
        } else {
            break;
        }
    }
    write_tlv(out, tag, &bytes[i..]);
}

/// Appends a minimal unsigned integer TLV (a leading zero octet is added when
/// the top bit would otherwise be set).
pub(crate) fn write_unsigned(out: &mut Vec<u8>, tag: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let significant = &bytes[skip..];
    out.push(tag);
    if significant[0] & 0x80 != 0 {
        write_len(out, significant.len() + 1);
        out.push(0);
    } else {
        write_len(out, significant.len());
    }
    out.extend_from_slice(significant);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xff_ffff,
        ] {
            let mut out = vec![0x04];
            write_len(&mut out, len);
            assert_eq!(out.len(), header_len(len), "len {len}");
        }
        let mut out = Vec::new();
        write_len(&mut out, 0x81);
        assert_eq!(out, [0x81, 0x81]);
        out.clear();
        write_len(&mut out, 0x1234);
        assert_eq!(out, [0x82, 0x12, 0x34]);
    }

    #[test]
    fn integers_are_minimal() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (-1, &[0xff]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (256, &[0x01, 0x00]),
            (i64::from(i32::MAX), &[0x7f, 0xff, 0xff, 0xff]),
            (i64::from(i32::MIN), &[0x80, 0x00, 0x00, 0x00]),
        ];
        for &(v, want) in cases {
            let mut out = Vec::new();
            write_signed(&mut out, tag::INTEGER, v);
            assert_eq!(&out[2..], want, "value {v}");
            assert_eq!(signed(&out[2..], 8, "t").unwrap(), i128::from(v));
        }
        let mut out = Vec::new();
        write_unsigned(&mut out, tag::COUNTER32, 0xffff_ffff);
        assert_eq!(out, [0x41, 0x05, 0x00, 0xff, 0xff, 0xff, 0xff]);
        out.clear();
        write_unsigned(&mut out, tag::COUNTER64, 0);
        assert_eq!(out, [0x46, 0x01, 0x00]);
    }

    #[test]
    fn reader_rejects_bad_lengths() {
        assert!(matches!(
            Reader::new(&[0x04, 0x05, 1, 2]).read_tlv(),
            Err(DecodeError::LengthExceedsInput { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x30, 0x80, 0, 0]).read_tlv(),
            Err(DecodeError::IndefiniteLength)
        ));
        assert!(matches!(
            Reader::new(&[0x04, 0x85, 1, 1, 1, 1, 1]).read_tlv(),
            Err(DecodeError::LengthTooLong)
        ));
        // A claimed length of 4 GiB is refused before anything is allocated.
        assert!(matches!(
            Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).read_tlv(),
            Err(DecodeError::LengthExceedsInput { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x1f, 0x01, 0x00]).read_tlv(),
            Err(DecodeError::UnsupportedTag(0x1f))
        ));
        assert!(matches!(
            Reader::new(&[0x04]).read_tlv(),
            Err(DecodeError::Truncated)
        ));
    }
}
