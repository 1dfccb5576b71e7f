//! Small, strict helpers over `roxmltree`: namespace-checked element tests, text reading and
//! `xs:dateTime` parsing.

use roxmltree::{Node, NodeType};

use crate::SamlError;

/// SAML 2.0 protocol namespace (`samlp:`).
pub(crate) const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace (`saml:`).
pub(crate) const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// XML Signature namespace (`ds:`).
pub(crate) const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive XML Canonicalization namespace (also the algorithm URI), for `InclusiveNamespaces`.
pub(crate) const NS_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The XML namespace (`xml:` prefix), never declared.
pub(crate) const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// True when `node` is an element named `local` in namespace `ns` (namespace URI, not prefix).
pub(crate) fn is(node: Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == local
}

/// The element children of `node`. Every other child must be whitespace text or a comment:
/// this profile accepts no mixed content and no processing instructions between elements.
pub(crate) fn element_children<'a, 'i>(node: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, SamlError> {
    let mut out = Vec::new();
    for child in node.children() {
        match child.node_type() {
            NodeType::Element => out.push(child),
            NodeType::Text => {
                if !child.text().unwrap_or("").chars().all(is_xml_space) {
                    return Err(SamlError::Malformed("text where only elements are allowed"));
                }
            }
            NodeType::Comment => {}
            NodeType::PI | NodeType::Root => {
                return Err(SamlError::Malformed("processing instruction"));
            }
        }
    }
    Ok(out)
}

/// The single child element `ns:local` of `node`, if there is one; an error if there are more.
pub(crate) fn optional_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
    what: &'static str,
) -> Result<Option<Node<'a, 'i>>, SamlError> {
    let mut found = None;
    for child in element_children(node)? {
        if is(child, ns, local) {
            if found.is_some() {
                return Err(SamlError::Malformed(what));
            }
            found = Some(child);
        }
    }
    Ok(found)
}

/// The single child element `ns:local` of `node`; an error if there is none or more than one.
pub(crate) fn required_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
    what: &'static str,
) -> Result<Node<'a, 'i>, SamlError> {
    optional_child(node, ns, local, what)?.ok_or(SamlError::Malformed(what))
}

/// The character content of a simple-content element, read as canonical XML would: all text
/// children concatenated, comments skipped (so `user@evil.com<!---->.example.com` reads as
/// `user@evil.com.example.com`, exactly the string the signature covers). Element children or
/// processing instructions are refused.
pub(crate) fn text_content(node: Node<'_, '_>) -> Result<String, SamlError> {
    let mut out = String::new();
    for child in node.children() {
        match child.node_type() {
            NodeType::Text => out.push_str(child.text().unwrap_or("")),
            NodeType::Comment => {}
            NodeType::Element => {
                return Err(SamlError::Malformed("element inside a text-only element"))
            }
            NodeType::PI | NodeType::Root => {
                return Err(SamlError::Malformed("processing instruction"));
            }
        }
    }
    Ok(out)
}

/// XML white space (`S` production).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Parse an `xs:dateTime` with a time zone (`Z` or `±hh:mm`) into Unix seconds; a fractional
/// second is truncated. Only 4-digit years; no leap-second `60`.
pub(crate) fn parse_datetime(s: &str) -> Result<i64, SamlError> {
    let bad = || SamlError::Time(s.chars().take(64).collect());
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, SamlError> {
        let part = b.get(r).ok_or_else(bad)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |i: usize, c: u8| -> Result<(), SamlError> {
        if b.get(i) == Some(&c) {
            Ok(())
        } else {
            Err(bad())
        }
    };
    let year = num(0..4)?;
    sep(4, b'-')?;
    let month = num(5..7)?;
    sep(7, b'-')?;
    let day = num(8..10)?;
    sep(10, b'T')?;
    let hour = num(11..13)?;
    sep(13, b':')?;
    let minute = num(14..16)?;
    sep(16, b':')?;
    let second = num(17..19)?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let oh = num(i + 1..i + 3)?;
            sep(i + 3, b':')?;
            let om = num(i + 4..i + 6)?;
            if oh > 14 || om > 59 {
                return Err(bad());
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if year == 0 || day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format Unix seconds as `YYYY-MM-DDThh:mm:ssZ` (for AuthnRequest IssueInstant).
pub(crate) fn format_datetime(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Escape text for an XML attribute value or element content we generate.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_datetime("2025-01-15T10:00:00Z"), Ok(1_736_935_200));
        assert_eq!(
            parse_datetime("2025-01-15T10:00:00.999Z"),
            Ok(1_736_935_200)
        );
        assert_eq!(
            parse_datetime("2025-01-15T12:00:00+02:00"),
            Ok(1_736_935_200)
        );
        assert_eq!(
            parse_datetime("2025-01-15T08:30:00-01:30"),
            Ok(1_736_935_200)
        );
        assert_eq!(parse_datetime("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        for bad in [
            "2025-01-15T10:00:00",
            "2025-01-15 10:00:00Z",
            "2023-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T10:00:00.Z",
            "2025-01-15T10:00:00Zjunk",
            "+2025-01-15T10:00:00Z",
            "2025-01-15T10:00:00+2:00",
            "２０２５-01-15T10:00:00Z",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
        assert_eq!(format_datetime(1_736_935_200), "2025-01-15T10:00:00Z");
        assert_eq!(format_datetime(1_709_164_800), "2024-02-29T00:00:00Z");
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
    }
}
