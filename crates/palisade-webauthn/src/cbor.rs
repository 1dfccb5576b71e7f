//! Decoding CBOR from untrusted bytes with `ciborium`.
//!
//! `ciborium` limits nesting (256 levels) and grows arrays, maps and byte strings only as
//! their content actually arrives, so a hostile length header cannot make it allocate more
//! than the (size-capped) input.

use ciborium::Value;

/// Decodes one CBOR item at the start of `bytes`; returns it and the number of bytes it took.
pub(crate) fn decode_prefix(bytes: &[u8]) -> Option<(Value, usize)> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader(&mut rest).ok()?;
    Some((value, bytes.len().checked_sub(rest.len())?))
}

/// Decodes `bytes` as exactly one CBOR item, with nothing after it.
pub(crate) fn decode_exact(bytes: &[u8]) -> Option<Value> {
    let (value, used) = decode_prefix(bytes)?;
    (used == bytes.len()).then_some(value)
}

/// More entries than any COSE key or attestation structure has; bounds the duplicate check.
const MAX_MAP_ENTRIES: usize = 32;

/// The entries of a small CBOR map, provided no key occurs twice.
pub(crate) fn unique_map(value: &Value) -> Option<&[(Value, Value)]> {
    let entries = value.as_map()?;
    if entries.len() > MAX_MAP_ENTRIES {
        return None;
    }
    for (i, (key, _)) in entries.iter().enumerate() {
        if entries.iter().skip(i + 1).any(|(other, _)| other == key) {
            return None;
        }
    }
    Some(entries)
}

/// The value under the text key `key`.
pub(crate) fn text_key<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// The value under the integer key `key` (COSE labels).
pub(crate) fn int_key(entries: &[(Value, Value)], key: i64) -> Option<&Value> {
    entries
        .iter()
        .find(|(k, _)| as_i64(k) == Some(key))
        .map(|(_, v)| v)
}

/// A CBOR integer that fits in an `i64`.
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    let integer = value.as_integer()?;
    i64::try_from(i128::from(integer)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_reports_consumed_length() {
        // 0xa1 0x01 0x02 = {1: 2}, then two trailing bytes.
        let bytes = [0xa1, 0x01, 0x02, 0xff, 0x00];
        let (value, used) = decode_prefix(&bytes).unwrap();
        assert_eq!(used, 3);
        assert_eq!(as_i64(&value.as_map().unwrap()[0].1), Some(2));
        assert!(decode_exact(&bytes).is_none());
        assert!(decode_exact(&bytes[..3]).is_some());
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        // Byte string, array and map claiming 2^64-1 elements, with nothing behind them.
        for bytes in [
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(decode_prefix(bytes).is_none());
        }
        // Deep nesting: 10 000 nested one-element arrays.
        let deep = vec![0x81u8; 10_000];
        assert!(decode_prefix(&deep).is_none());
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let dup = Value::Map(vec![
            (Value::from(1), Value::from(2)),
            (Value::from(1), Value::from(3)),
        ]);
        assert!(unique_map(&dup).is_none());
        let ok = Value::Map(vec![
            (Value::from(1), Value::from(2)),
            (Value::from(-1), Value::from(3)),
        ]);
        assert_eq!(unique_map(&ok).map(<[_]>::len), Some(2));
    }
}
