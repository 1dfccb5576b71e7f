//! Hostile and mutated input never panics, never nests the stack away, and never changes the
//! identity that a signed response yields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use common::*;
use palisade_saml::{MemoryReplayCache, SamlError, MAX_DEPTH, MAX_RESPONSE_BYTES};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "&",
    "&amp;",
    "&#x0;",
    "&#97;",
    "\"",
    "'",
    "=",
    ":",
    " ",
    "\r\n",
    "<!---->",
    "<?pi x?>",
    "<![CDATA[x]]>",
    "<!DOCTYPE x>",
    "xmlns=\"\"",
    "xmlns:ns1=\"urn:x\"",
    " ID=\"a\"",
    "</ns1:Assertion>",
    "<ns1:Assertion ID=\"z\">",
    "<ns2:Signature>",
    "</ns2:Signature>",
    "ns1:",
    "ns2:",
    "\u{e9}",
    "\u{feff}",
    "\u{0}",
    "#",
    "Z",
    "9999",
    "-",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = at.min(data.len() - 1);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(64)).min(data.len());
                data.drain(at..end);
            }
            2 => {
                let end = (at + rng.below(256)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            3 | 4 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            _ => {
                let byte = (rng.next() & 0xff) as u8;
                data.insert(at, byte);
            }
        }
    }
    data
}

#[test]
fn random_mutations_never_panic_nor_change_the_identity() {
    let config = config();
    let mut rng = Rng(0x5eed_5a41_0000_0001);
    let mut accepted = 0usize;
    for name in [
        "assertion_signed",
        "response_and_assertion_signed",
        "response_signed",
        "adfs_style",
        "inclusive_namespaces",
    ] {
        let xml = fixture(name);
        let expected = consume(&xml).unwrap();
        for _ in 0..400 {
            let mutated = mutate(&mut rng, xml.as_bytes());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&mutated);
            if let Ok(identity) = config.consume(
                &encoded,
                Some(REQUEST_ID),
                NOW,
                &mut MemoryReplayCache::new(),
            ) {
                // Only mutations outside the signed content (or canonically neutral ones) can
                // pass; the identity is then exactly the signed one.
                accepted += 1;
                assert_eq!(
                    identity,
                    expected,
                    "{name}: {}",
                    String::from_utf8_lossy(&mutated)
                );
            }
            // Raw bytes as the form value, too.
            let _ = config.consume(
                &String::from_utf8_lossy(&mutated),
                Some(REQUEST_ID),
                NOW,
                &mut MemoryReplayCache::new(),
            );
        }
    }
    eprintln!("{accepted} of 2000 mutated responses accepted (all with the signed identity)");
    assert!(accepted < 1000, "most mutations must be refused");
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    for depth in [MAX_DEPTH + 1, 10_000, 19_000] {
        let xml = format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}{}</samlp:Response>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let result = consume(&xml);
        assert!(
            matches!(result, Err(SamlError::TooDeep { .. } | SamlError::Xml(_))),
            "{depth}: {result:?}"
        );
    }
    // Many nodes: the node cap.
    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}</samlp:Response>",
        "<a/>".repeat(30_000)
    );
    assert!(matches!(consume(&xml), Err(SamlError::Xml(_))));
}

#[test]
fn size_cap() {
    let big = "A".repeat(MAX_RESPONSE_BYTES / 3 * 4 + 8);
    let result = config().consume(&big, None, NOW, &mut MemoryReplayCache::new());
    assert_eq!(
        result,
        Err(SamlError::TooLarge {
            limit: MAX_RESPONSE_BYTES
        })
    );
    let huge = " ".repeat(10 * MAX_RESPONSE_BYTES);
    let result = config().consume(&huge, None, NOW, &mut MemoryReplayCache::new());
    assert_eq!(
        result,
        Err(SamlError::TooLarge {
            limit: MAX_RESPONSE_BYTES
        })
    );
}

#[test]
fn dtds_entities_and_processing_instructions_are_refused() {
    let xml = fixture("assertion_signed");
    let body = xml.trim_start_matches("<?xml version=\"1.0\"?>\n");
    let laughs = format!(
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>{body}"
    );
    assert!(matches!(consume(&laughs), Err(SamlError::Xml(_))));
    let external = format!("<!DOCTYPE r SYSTEM \"file:///etc/passwd\">{body}");
    assert!(matches!(consume(&external), Err(SamlError::Xml(_))));
    let undefined = replace_once(
        &xml,
        ">alice@example.test</ns1:NameID>",
        ">&xxe;</ns1:NameID>",
    );
    assert!(matches!(consume(&undefined), Err(SamlError::Xml(_))));
    let pi = replace_once(&xml, "</ns1:NameID>", "<?evil x?></ns1:NameID>");
    assert_eq!(
        consume(&pi),
        Err(SamlError::Malformed("processing instruction"))
    );
}

#[test]
fn garbage_is_refused() {
    for input in ["", "!!!", "AAAA", "PGE+", "/w==", "PD94bWw/Pg=="] {
        let result = config().consume(input, None, NOW, &mut MemoryReplayCache::new());
        assert!(result.is_err(), "{input}");
    }
    assert_eq!(consume("<a/>"), Err(SamlError::NotAResponse));
    let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b'<']);
    assert_eq!(
        config().consume(&not_utf8, None, NOW, &mut MemoryReplayCache::new()),
        Err(SamlError::NotUtf8)
    );
}
