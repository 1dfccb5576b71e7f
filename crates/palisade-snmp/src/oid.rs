//! Object identifiers.

use std::fmt;
use std::str::FromStr;

use crate::ber::{tag, write_tlv};
use crate::error::{DecodeError, OidError};

/// The most sub-identifiers an OID may have (RFC 2578 section 3.5).
pub const MAX_OID_LEN: usize = 128;

/// An SNMP object identifier such as `1.3.6.1.2.1.1.3.0`.
///
/// Always valid: 2..=128 sub-identifiers of 32 bits, the first arc 0, 1 or 2,
/// and the second below 40 unless the first is 2. Ordering is SNMP's
/// lexicographic order, so a walk's OIDs compare with `<`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(Vec<u32>);

impl Oid {
    /// Builds an OID from sub-identifiers.
    pub fn new(arcs: &[u32]) -> Result<Self, OidError> {
        Self::from_vec(arcs.to_vec())
    }

    fn from_vec(arcs: Vec<u32>) -> Result<Self, OidError> {
        match arcs.as_slice() {
            [] | [_] => Err(OidError::TooShort),
            _ if arcs.len() > MAX_OID_LEN => Err(OidError::TooLong),
            [first, second, ..] if *first > 2 || (*first < 2 && *second >= 40) => {
                Err(OidError::BadArcs)
            }
            _ => Ok(Oid(arcs)),
        }
    }

    /// The sub-identifiers.
    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    /// The number of sub-identifiers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an OID has at least two sub-identifiers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Whether `self` lies strictly below `root` in the tree.
    pub fn is_descendant_of(&self, root: &Oid) -> bool {
        self.0.len() > root.0.len() && self.starts_with(root)
    }

    /// This OID with `arc` appended.
    pub fn child(&self, arc: u32) -> Result<Oid, OidError> {
        let mut v = Vec::with_capacity(self.0.len() + 1);
        v.extend_from_slice(&self.0);
        v.push(arc);
        Self::from_vec(v)
    }

    /// Appends the BER encoding (tag, length, content).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut content = Vec::with_capacity(self.0.len() * 2);
        let (first, rest) = match self.0.as_slice() {
            [a, b, rest @ ..] => (u64::from(*a) * 40 + u64::from(*b), rest),
            // Unreachable for a valid Oid; encode something harmless.
            _ => (0, &[][..]),
        };
        push_base128(&mut content, first);
        for &arc in rest {
            push_base128(&mut content, u64::from(arc));
        }
        write_tlv(out, tag::OBJECT_IDENTIFIER, &content);
    }

    /// Decodes the content octets of an OBJECT IDENTIFIER.
    pub(crate) fn decode(content: &[u8]) -> Result<Oid, DecodeError> {
        if content.is_empty() {
            // net-snmp and others send a zero-length OID for the null OID.
            return Ok(Oid(vec![0, 0]));
        }
        // Each sub-identifier takes at least one octet; 128 arcs of 5 octets.
        if content.len() > MAX_OID_LEN * 5 {
            return Err(DecodeError::OidTooLong);
        }
        let mut arcs = Vec::with_capacity(content.len().min(MAX_OID_LEN) + 1);
        let mut acc: u64 = 0;
        let mut octets = 0usize;
        for &b in content {
            if octets == 0 && b == 0x80 {
                return Err(DecodeError::Invalid("object identifier (non-minimal)"));
            }
            octets += 1;
            if octets > 5 {
                return Err(DecodeError::Invalid(
                    "object identifier (sub-identifier too large)",
                ));
            }
            acc = (acc << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if arcs.is_empty() {
                    let (a, rest) = match acc {
                        0..=39 => (0, acc),
                        40..=79 => (1, acc - 40),
                        _ => (2, acc - 80),
                    };
                    arcs.push(a);
                    arcs.push(u32::try_from(rest).map_err(|_| {
                        DecodeError::Invalid("object identifier (sub-identifier too large)")
                    })?);
                } else {
                    if arcs.len() >= MAX_OID_LEN {
                        return Err(DecodeError::OidTooLong);
                    }
                    arcs.push(u32::try_from(acc).map_err(|_| {
                        DecodeError::Invalid("object identifier (sub-identifier too large)")
                    })?);
                }
                acc = 0;
                octets = 0;
            }
        }
        if octets != 0 {
            return Err(DecodeError::Invalid("object identifier (truncated)"));
        }
        Ok(Oid(arcs))
    }
}

fn push_base128(out: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 || i == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { *b | 0x80 });
    }
}

impl FromStr for Oid {
    type Err = OidError;

    /// Parses dotted decimal, with or without a leading dot.
    fn from_str(s: &str) -> Result<Self, OidError> {
        let s = s.strip_prefix('.').unwrap_or(s);
        let mut arcs = Vec::new();
        for part in s.split('.') {
            if arcs.len() >= MAX_OID_LEN {
                return Err(OidError::TooLong);
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OidError::BadComponent(part.chars().take(16).collect()));
            }
            let v = part
                .parse::<u32>()
                .map_err(|_| OidError::BadComponent(part.chars().take(16).collect()))?;
            arcs.push(v);
        }
        Oid::from_vec(arcs)
    }
}

impl TryFrom<&[u32]> for Oid {
    type Error = OidError;
    fn try_from(arcs: &[u32]) -> Result<Self, OidError> {
        Oid::new(arcs)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn parse_and_display() {
        let oid: Oid = "1.3.6.1.2.1.1.3.0".parse().unwrap();
        assert_eq!(oid.as_slice(), &[1, 3, 6, 1, 2, 1, 1, 3, 0]);
        assert_eq!(oid.to_string(), "1.3.6.1.2.1.1.3.0");
        assert_eq!(".1.3.6.1".parse::<Oid>().unwrap().to_string(), "1.3.6.1");
        assert_eq!(
            "1.3.4294967295".parse::<Oid>().unwrap().as_slice(),
            &[1, 3, u32::MAX]
        );
        for bad in [
            "",
            ".",
            "1",
            "1..3",
            "1.3.",
            "a.b",
            "1.3.4294967296",
            "3.1",
            "1.40",
            "1.-3",
            "1.+3",
        ] {
            assert!(bad.parse::<Oid>().is_err(), "{bad:?} parsed");
        }
        let long = vec!["1"; 129].join(".");
        assert_eq!(long.parse::<Oid>(), Err(OidError::TooLong));
        assert!(vec!["1"; 128].join(".").parse::<Oid>().is_ok());
    }

    #[test]
    fn ordering_is_lexicographic() {
        let a: Oid = "1.3.6.1.2.1.2".parse().unwrap();
        let b: Oid = "1.3.6.1.2.1.2.1".parse().unwrap();
        let c: Oid = "1.3.6.1.2.1.10".parse().unwrap();
        assert!(a < b && b < c);
        assert!(b.is_descendant_of(&a));
        assert!(!a.is_descendant_of(&a));
        assert!(!c.is_descendant_of(&a));
    }

    #[test]
    fn ber_vectors() {
        let cases: &[(&str, &[u8])] = &[
            ("1.3.6.1.2.1.1.3.0", &[0x2b, 6, 1, 2, 1, 1, 3, 0]),
            (
                "1.3.6.1.4.1.8072.3.2.10",
                &[0x2b, 6, 1, 4, 1, 0xbf, 0x08, 3, 2, 10],
            ),
            ("2.999.3", &[0x88, 0x37, 0x03]),
            ("0.0", &[0x00]),
            (
                "1.3.6.1.4294967295",
                &[0x2b, 6, 1, 0x8f, 0xff, 0xff, 0xff, 0x7f],
            ),
        ];
        for &(s, content) in cases {
            let oid: Oid = s.parse().unwrap();
            let mut out = Vec::new();
            oid.encode(&mut out);
            assert_eq!(&out[2..], content, "{s}");
            assert_eq!(Oid::decode(content).unwrap(), oid, "{s}");
        }
        assert!(Oid::decode(&[0x2b, 0x80, 0x01]).is_err(), "non-minimal");
        assert!(Oid::decode(&[0x2b, 0x86]).is_err(), "truncated");
        assert!(
            Oid::decode(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0x00]).is_err(),
            "> 32 bits"
        );
        assert!(
            Oid::decode(&[0x2b, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01]).is_err(),
            "6 octets"
        );
        assert!(Oid::decode(&[0x01; 129]).is_err(), "too many arcs");
        assert_eq!(Oid::decode(&[0x01; 127]).unwrap().len(), 128);
    }
}
