//! Exclusive XML Canonicalization 1.0 (without comments) of one element subtree, as used by
//! the enveloped-signature + exc-c14n transform chain and for `SignedInfo`.
//!
//! <https://www.w3.org/TR/xml-exc-c14n/>, for the document subsets that XML signatures over
//! SAML use: the whole subtree of one element (the apex), optionally minus one descendant
//! element (the enveloped `ds:Signature`), comments removed. The rules implemented:
//!
//! - Elements are written as `<qname attrs>children</qname>` (no empty-element tags), with
//!   the prefix exactly as in the source.
//! - Namespace declarations: a prefix (or the default namespace) is declared on an element
//!   when it is *visibly utilized* there (the element's own prefix, or an attribute's prefix)
//!   or listed in the `InclusiveNamespaces` `PrefixList` and in scope, and the nearest output
//!   ancestor did not already render the same prefix with the same URI. `xmlns=""` is written
//!   when an unqualified element sits below an output ancestor that rendered a non-empty
//!   default namespace. The `xml` prefix is never declared.
//! - Namespace declarations first (sorted by prefix, default first), then attributes sorted by
//!   (namespace URI, local name), unqualified attributes first. `xml:*` attributes are not
//!   inherited (exclusive c14n).
//! - Attribute values escape `&`, `<`, `"`, TAB, LF and CR; text escapes `&`, `<`, `>` and CR.
//!   The parser already normalised line ends and attribute values and resolved character
//!   references; CDATA is plain text.
//! - Comments are dropped; processing instructions are refused (the caller rejects documents
//!   with any).
//!
//! The walk is iterative (an explicit stack), so hostile nesting cannot overflow the call
//! stack; the caller also caps the depth.

use std::collections::BTreeMap;

use roxmltree::{Node, NodeId, NodeType};

use crate::xml::NS_XML;
use crate::SamlError;

/// The prefix list entry that stands for the default namespace.
const DEFAULT_TOKEN: &str = "#default";

enum Step<'a, 'i> {
    Open(Node<'a, 'i>),
    Close(String),
}

/// Canonicalize the subtree of `apex`, leaving out the element `exclude` (and its subtree).
/// `inclusive_prefixes` is the `InclusiveNamespaces` `PrefixList` (`#default` for the default
/// namespace).
pub(crate) fn canonicalize(
    apex: Node<'_, '_>,
    exclude: Option<NodeId>,
    inclusive_prefixes: &[String],
) -> Result<Vec<u8>, SamlError> {
    let source = apex.document().input_text();
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    // Per open output element: the namespace declarations in effect for its children
    // (prefix, "" for default -> URI).
    let mut rendered: Vec<BTreeMap<String, String>> = Vec::new();
    let mut stack = vec![Step::Open(apex)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Close(qname) => {
                out.extend_from_slice(b"</");
                out.extend_from_slice(qname.as_bytes());
                out.push(b'>');
                rendered.pop();
            }
            Step::Open(node) => match node.node_type() {
                NodeType::Element => {
                    if Some(node.id()) == exclude {
                        continue;
                    }
                    let parent = rendered.last().cloned().unwrap_or_default();
                    let (qname, in_effect) =
                        open_element(node, source, &parent, inclusive_prefixes, &mut out)?;
                    rendered.push(in_effect);
                    stack.push(Step::Close(qname));
                    let children: Vec<Node<'_, '_>> = node.children().collect();
                    for child in children.into_iter().rev() {
                        stack.push(Step::Open(child));
                    }
                }
                NodeType::Text => escape_text(node.text().unwrap_or(""), &mut out),
                NodeType::Comment => {}
                NodeType::PI | NodeType::Root => {
                    return Err(SamlError::Malformed(
                        "processing instruction in signed content",
                    ));
                }
            },
        }
    }
    Ok(out)
}

/// The element's qualified name exactly as written in the source, split into (prefix, qname).
fn element_qname<'i>(node: Node<'_, 'i>, source: &'i str) -> Result<(&'i str, &'i str), SamlError> {
    let range = node.range();
    let rest = source
        .get(range.start..range.end)
        .and_then(|s| s.strip_prefix('<'))
        .ok_or(SamlError::Malformed("element position"))?;
    let end = rest
        .find([' ', '\t', '\r', '\n', '/', '>'])
        .ok_or(SamlError::Malformed("element name"))?;
    let qname = rest
        .get(..end)
        .ok_or(SamlError::Malformed("element name"))?;
    let prefix = match qname.split_once(':') {
        Some((p, local)) if local == node.tag_name().name() => p,
        None if qname == node.tag_name().name() => "",
        _ => return Err(SamlError::Malformed("element name")),
    };
    // The prefix read from the source must be the one that gave the element its namespace.
    let uri = node.lookup_namespace_uri(if prefix.is_empty() {
        None
    } else {
        Some(prefix)
    });
    if uri != node.tag_name().namespace() {
        return Err(SamlError::Malformed("element prefix"));
    }
    Ok((prefix, qname))
}

/// Write the start tag of `node`; return its qname (for the end tag) and the namespace
/// declarations in effect for its children.
fn open_element(
    node: Node<'_, '_>,
    source: &str,
    parent: &BTreeMap<String, String>,
    inclusive_prefixes: &[String],
    out: &mut Vec<u8>,
) -> Result<(String, BTreeMap<String, String>), SamlError> {
    let (prefix, qname) = element_qname(node, source)?;

    // Prefixes that need a declaration check: "" stands for the default namespace.
    let mut needed: Vec<&str> = vec![prefix];
    let mut attrs: Vec<(&str, &str, &str, &str)> = Vec::new(); // (ns uri, local, qname, value)
    for attr in node.attributes() {
        let aq = source
            .get(attr.range_qname())
            .ok_or(SamlError::Malformed("attribute position"))?;
        match attr.namespace() {
            None => {
                if aq != attr.name() {
                    return Err(SamlError::Malformed("attribute name"));
                }
                attrs.push(("", attr.name(), aq, attr.value()));
            }
            Some(ns) => {
                let (ap, local) = aq
                    .split_once(':')
                    .ok_or(SamlError::Malformed("attribute name"))?;
                if local != attr.name() {
                    return Err(SamlError::Malformed("attribute name"));
                }
                if ns != NS_XML {
                    if node.lookup_namespace_uri(Some(ap)) != Some(ns) {
                        return Err(SamlError::Malformed("attribute prefix"));
                    }
                    needed.push(ap);
                }
                attrs.push((ns, attr.name(), aq, attr.value()));
            }
        }
    }
    for p in inclusive_prefixes {
        if p == DEFAULT_TOKEN {
            needed.push("");
        } else if node.lookup_namespace_uri(Some(p.as_str())).is_some() {
            needed.push(p.as_str());
        }
    }
    needed.sort_unstable();
    needed.dedup();

    let mut in_effect = parent.clone();
    let mut decls: Vec<(&str, &str)> = Vec::new();
    for p in needed {
        if p == "xml" {
            continue;
        }
        let uri = if p.is_empty() {
            node.lookup_namespace_uri(None).unwrap_or("")
        } else {
            node.lookup_namespace_uri(Some(p))
                .ok_or(SamlError::Malformed("undeclared prefix"))?
        };
        let previous = parent.get(p).map(String::as_str);
        let render = if p.is_empty() {
            previous.unwrap_or("") != uri
        } else {
            previous != Some(uri)
        };
        if render {
            decls.push((p, uri));
            in_effect.insert(p.to_string(), uri.to_string());
        }
    }
    attrs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());
    for (p, uri) in decls {
        if p.is_empty() {
            out.extend_from_slice(b" xmlns=\"");
        } else {
            out.extend_from_slice(b" xmlns:");
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"=\"");
        }
        escape_attr(uri, out);
        out.push(b'"');
    }
    for (_, _, aq, value) in attrs {
        out.push(b' ');
        out.extend_from_slice(aq.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attr(value, out);
        out.push(b'"');
    }
    out.push(b'>');
    Ok((qname.to_string(), in_effect))
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

fn escape_attr(value: &str, out: &mut Vec<u8>) {
    for c in value.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '"' => out.extend_from_slice(b"&quot;"),
            '\t' => out.extend_from_slice(b"&#x9;"),
            '\n' => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, apex_local: &str, prefixes: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let apex = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == apex_local)
            .unwrap();
        let prefixes: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        String::from_utf8(canonicalize(apex, None, &prefixes).unwrap()).unwrap()
    }

    #[test]
    fn renders_only_visibly_utilized_namespaces() {
        let xml = r#"<r:R xmlns:r="urn:r" xmlns:a="urn:a" xmlns:u="urn:unused" xmlns="urn:d"><a:A b="2" a:z="1" a="0"><a:B/><C xmlns:x="urn:x" x:y="&#9;&quot;&lt;&gt;"/></a:A></r:R>"#;
        assert_eq!(
            c14n(xml, "A", &[]),
            r#"<a:A xmlns:a="urn:a" a="0" b="2" a:z="1"><a:B></a:B><C xmlns="urn:d" xmlns:x="urn:x" x:y="&#x9;&quot;&lt;>"></C></a:A>"#
        );
        assert_eq!(
            c14n(xml, "A", &["u", "#default"]),
            r#"<a:A xmlns="urn:d" xmlns:a="urn:a" xmlns:u="urn:unused" a="0" b="2" a:z="1"><a:B></a:B><C xmlns:x="urn:x" x:y="&#x9;&quot;&lt;>"></C></a:A>"#
        );
    }

    #[test]
    fn default_namespace_undeclaration_and_text() {
        let xml = "<a xmlns=\"urn:d\"><b xmlns=\"\">x &amp; y &lt; &gt; \u{e9}<!-- gone -->z<![CDATA[<&>]]></b><c/></a>";
        assert_eq!(
            c14n(xml, "a", &[]),
            "<a xmlns=\"urn:d\"><b xmlns=\"\">x &amp; y &lt; &gt; \u{e9}z&lt;&amp;&gt;</b><c></c></a>"
        );
        // An unqualified apex never declares xmlns="".
        assert_eq!(
            c14n(xml, "b", &[]),
            "<b>x &amp; y &lt; &gt; \u{e9}z&lt;&amp;&gt;</b>"
        );
    }

    #[test]
    fn redeclared_prefix_is_rendered_again() {
        let xml = r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"><p:c xmlns:p="urn:1"/></p:b><p:d xmlns:p="urn:1"/></p:a>"#;
        assert_eq!(
            c14n(xml, "a", &[]),
            r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2"><p:c xmlns:p="urn:1"></p:c></p:b><p:d></p:d></p:a>"#
        );
    }

    #[test]
    fn xml_attributes_are_kept_and_never_declared() {
        let xml = "<a xml:lang=\"en\" z=\"1\"><b/></a>";
        assert_eq!(
            c14n(xml, "a", &[]),
            "<a z=\"1\" xml:lang=\"en\"><b></b></a>"
        );
    }
}
