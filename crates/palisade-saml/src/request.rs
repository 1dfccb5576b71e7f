//! The SP's outgoing messages: the HTTP-Redirect `AuthnRequest` and SP metadata.

use std::io::Write;

use base64::Engine;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::xml::{escape, format_datetime};
use crate::{AuthnRequest, SpConfig};

const BINDING_HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

impl SpConfig {
    /// Build an unsigned `AuthnRequest` for the HTTP-Redirect binding.
    ///
    /// The request ID is `_` followed by the 32 hex digits of `request_id_random` (which must
    /// come from a CSPRNG); keep it with the browser session (server side, or in a signed
    /// cookie) and pass it to [`SpConfig::consume`] as `expected_request_id`. The request asks
    /// for the HTTP-POST binding to [`SpConfig::acs_url`]. `relay_state` (the SAML binding
    /// limits it to 80 bytes; Palisade passes an opaque handle, never a URL to redirect to
    /// unchecked) is appended when non-empty. The XML is raw-DEFLATE compressed, base64 and
    /// percent-encoded as the binding requires.
    pub fn authn_request(
        &self,
        request_id_random: &[u8; 16],
        relay_state: &str,
        now_unix_secs: i64,
    ) -> AuthnRequest {
        let id: String = std::iter::once('_')
            .chain(request_id_random.iter().flat_map(|b| {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                [
                    char::from(HEX[usize::from(b >> 4)]),
                    char::from(HEX[usize::from(b & 0x0f)]),
                ]
            }))
            .collect();
        let xml = format!(
            concat!(
                r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                r#"xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" "#,
                r#"IssueInstant="{instant}" Destination="{destination}" "#,
                r#"AssertionConsumerServiceURL="{acs}" ProtocolBinding="{binding}">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>"#,
                r#"<samlp:NameIDPolicy AllowCreate="true"/>"#,
                r#"</samlp:AuthnRequest>"#
            ),
            id = id,
            instant = format_datetime(now_unix_secs),
            destination = escape(&self.idp_sso_url),
            acs = escape(&self.acs_url),
            binding = BINDING_HTTP_POST,
            issuer = escape(&self.entity_id),
        );
        let deflated = deflate(xml.as_bytes());
        let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
        let mut url = self.idp_sso_url.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("SAMLRequest=");
        url.push_str(&percent_encode(&encoded));
        if !relay_state.is_empty() {
            url.push_str("&RelayState=");
            url.push_str(&percent_encode(relay_state));
        }
        AuthnRequest {
            id,
            redirect_url: url,
        }
    }

    /// This SP's SAML metadata (an `EntityDescriptor` with one HTTP-POST assertion consumer
    /// service), to give to the identity provider. It says that assertions must be signed
    /// and that requests are not.
    pub fn sp_metadata_xml(&self) -> String {
        format!(
            concat!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">"#,
                r#"<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" "#,
                r#"AuthnRequestsSigned="false" WantAssertionsSigned="true">"#,
                r#"<md:AssertionConsumerService Binding="{binding}" Location="{acs}" index="0" isDefault="true"/>"#,
                r#"</md:SPSSODescriptor></md:EntityDescriptor>"#
            ),
            entity = escape(&self.entity_id),
            binding = BINDING_HTTP_POST,
            acs = escape(&self.acs_url),
        )
    }
}

/// Raw DEFLATE (RFC 1951). Writing into a `Vec` cannot fail; should the encoder ever report
/// an error anyway, the data is emitted as uncompressed stored blocks, which is also valid
/// DEFLATE.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    match encoder.write_all(data).and_then(|()| encoder.finish()) {
        Ok(out) => out,
        Err(_) => stored_deflate(data),
    }
}

fn stored_deflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 5 * (data.len() / 65_535 + 1));
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn stored_blocks_inflate() {
        for len in [0usize, 1, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(stored_deflate(&data).as_slice())
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a+b/c=d é~"), "a%2Bb%2Fc%3Dd%20%C3%A9~");
    }
}
