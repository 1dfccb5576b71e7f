//! Fuzz `palisade_saml::SpConfig::consume`: arbitrary bytes, either base64-encoded (so the
//! XML parser, the scan, the canonicalizer and the signature checks see them) or passed raw
//! as the form value, must never panic. The configuration is fixed, with the test IdP
//! certificate, at the fixtures' time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_saml::{pem_certificates, MemoryReplayCache, SpConfig};

const IDP_CERT: &str = include_str!("../../crates/palisade-saml/tests/fixtures/idp-cert.pem");
const NOW: i64 = 1_736_935_210;

fuzz_target!(|data: &[u8]| {
    let Ok(certificates) = pem_certificates(IDP_CERT) else {
        return;
    };
    let config = SpConfig::new(
        "https://palisade.example.test/saml/metadata",
        "https://palisade.example.test/saml/acs",
        "https://idp.example.test/saml",
        "https://idp.example.test/sso",
        certificates,
    );
    let (mode, body) = data.split_first().map_or((0, data), |(m, rest)| (*m, rest));
    let input = if mode & 1 == 0 {
        base64(body)
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let expected = (mode & 2 == 0).then_some("_00112233445566778899aabbccddeeff");
    let _ = config.consume(&input, expected, NOW, &mut MemoryReplayCache::new());
});

/// Standard base64 with padding (kept here so the fuzz crate needs no extra dependency).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
