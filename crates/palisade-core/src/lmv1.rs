//! LogicMonitor's LMv1 request signing.
//!
//! `Authorization: LMv1 <accessId>:<signature>:<epochMillis>` where
//! `signature = base64(lowercase_hex(HMAC-SHA256(accessKey, VERB + epochMillis + BODY + PATH)))`.
//! `PATH` is the request path without the `/santaba/rest` (or `/rest`) prefix and without the
//! query string, percent-decoded. `BODY` is the raw request body; when the body is exactly `{}`
//! a signature over the empty body is accepted too, because the official SDK signs `""` but
//! sends `{}` for body-less PUT and PATCH calls.
//!
//! Verification decodes the presented signature back to the 32-byte MAC and compares it in
//! constant time; the timestamp must lie within [`WINDOW_MS`] of `now_ms`, which the caller
//! passes in.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's timestamp may be from the server's clock: 30 minutes either way.
pub const WINDOW_MS: i64 = 30 * 60 * 1000;

/// Path prefixes that are not part of the signed resource path.
pub const PATH_PREFIXES: [&str; 2] = ["/santaba/rest", "/rest"];

/// Why an LMv1 header was refused. Every variant means "authentication failed" (401);
/// none of them carries secret material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lmv1Error {
    /// The header is not of the form `LMv1 id:signature:epoch`.
    #[error("malformed LMv1 authorization header: {0}")]
    Malformed(&'static str),
    /// The timestamp is more than 30 minutes away from the server's clock.
    #[error(
        "LMv1 timestamp is outside the accepted window of 30 minutes; check the client's clock"
    )]
    StaleTimestamp,
    /// The signature does not match the request.
    #[error("LMv1 signature does not match the request")]
    BadSignature,
}

/// A parsed `LMv1` authorization header. The signature is not a secret (it is a MAC of a
/// public request) but it is kept decoded so that comparison never allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lmv1Header<'a> {
    /// The token's access id, used to look the key up.
    pub access_id: &'a str,
    /// The MAC the client computed, decoded from base64(hex(mac)).
    pub mac: [u8; 32],
    /// The client's timestamp in milliseconds since the epoch.
    pub epoch_ms: i64,
}

/// Parses an `Authorization` header value of the LMv1 scheme.
///
/// The scheme name is matched case-insensitively; the access id must be 1 to 128 printable
/// ASCII characters without `:`.
pub fn parse_header(value: &str) -> Result<Lmv1Header<'_>, Lmv1Error> {
    let value = value.trim();
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(Lmv1Error::Malformed("expected `LMv1 id:signature:epoch`"))?;
    if !scheme.eq_ignore_ascii_case("LMv1") {
        return Err(Lmv1Error::Malformed("scheme is not LMv1"));
    }
    let mut parts = rest.trim().split(':');
    let (Some(access_id), Some(signature), Some(epoch), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Lmv1Error::Malformed("expected three `:`-separated fields"));
    };
    if access_id.is_empty()
        || access_id.len() > 128
        || !access_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Lmv1Error::Malformed(
            "access id is empty or not printable ASCII",
        ));
    }
    if epoch.is_empty() || epoch.len() > 16 || !epoch.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Lmv1Error::Malformed("timestamp is not epoch milliseconds"));
    }
    let epoch_ms: i64 = epoch
        .parse()
        .map_err(|_| Lmv1Error::Malformed("timestamp is not epoch milliseconds"))?;
    let mac = decode_signature(signature)?;
    Ok(Lmv1Header {
        access_id,
        mac,
        epoch_ms,
    })
}

fn decode_signature(signature: &str) -> Result<[u8; 32], Lmv1Error> {
    // 64 hex characters encode to 88 base64 characters.
    if signature.len() != 88 {
        return Err(Lmv1Error::Malformed("signature has the wrong length"));
    }
    let mut hex_buf = [0u8; 66];
    let n = B64
        .decode_slice(signature, &mut hex_buf)
        .map_err(|_| Lmv1Error::Malformed("signature is not base64"))?;
    let hex_part = hex_buf
        .get(..n)
        .ok_or(Lmv1Error::Malformed("signature is not base64"))?;
    let mut mac = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut mac)
        .map_err(|_| Lmv1Error::Malformed("signature is not base64 of a hex HMAC"))?;
    Ok(mac)
}

fn mac_for(key: &[u8], verb: &str, epoch_ms: i64, body: &[u8], path: &str) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty key
    // rather than panic if the library ever changed that.
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
    mac.update(verb.as_bytes());
    mac.update(epoch_ms.to_string().as_bytes());
    mac.update(body);
    mac.update(path.as_bytes());
    mac
}

/// Computes the signature field (base64 of the lowercase hex HMAC) for a request.
pub fn sign(access_key: &str, verb: &str, epoch_ms: i64, body: &[u8], path: &str) -> String {
    let mac = mac_for(access_key.as_bytes(), verb, epoch_ms, body, path).finalize();
    B64.encode(hex::encode(mac.into_bytes()))
}

/// Builds a complete `Authorization` header value, as a client would.
pub fn authorization(
    access_id: &str,
    access_key: &str,
    verb: &str,
    epoch_ms: i64,
    body: &[u8],
    path: &str,
) -> String {
    format!(
        "LMv1 {access_id}:{}:{epoch_ms}",
        sign(access_key, verb, epoch_ms, body, path)
    )
}

/// Verifies a parsed header against the request and the token's access key.
///
/// `path` is the signed resource path (see [`resource_path`]); `now_ms` is the server's clock.
pub fn verify(
    header: &Lmv1Header<'_>,
    access_key: &[u8],
    verb: &str,
    body: &[u8],
    path: &str,
    now_ms: i64,
) -> Result<(), Lmv1Error> {
    let skew = now_ms.saturating_sub(header.epoch_ms).saturating_abs();
    if skew > WINDOW_MS {
        return Err(Lmv1Error::StaleTimestamp);
    }
    let ok = mac_for(access_key, verb, header.epoch_ms, body, path)
        .verify_slice(&header.mac)
        .is_ok();
    if ok {
        return Ok(());
    }
    if body == b"{}"
        && mac_for(access_key, verb, header.epoch_ms, b"", path)
            .verify_slice(&header.mac)
            .is_ok()
    {
        return Ok(());
    }
    Err(Lmv1Error::BadSignature)
}

/// The signed resource path of a request path: the `/santaba/rest` or `/rest` prefix
/// removed, the query string removed, percent-decoded (invalid UTF-8 is replaced, as the
/// Python SDK's `unquote` does).
pub fn resource_path(request_path: &str) -> String {
    let path = request_path.split('?').next().unwrap_or_default();
    let mut rest = path;
    for prefix in PATH_PREFIXES {
        if let Some(stripped) = path.strip_prefix(prefix) {
            if stripped.is_empty() || stripped.starts_with('/') {
                rest = stripped;
                break;
            }
        }
    }
    percent_encoding::percent_decode_str(rest)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../../tests/vectors/lmv1.json");

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vectors {
        access_id: String,
        access_key: String,
        epoch_millis: i64,
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Case {
        verb: String,
        body: String,
        resource_path: String,
        signature: String,
        authorization: String,
    }

    fn vectors() -> Vectors {
        serde_json::from_str(VECTORS).expect("vector file is valid JSON")
    }

    #[test]
    fn reference_vectors_sign_and_verify() {
        let v = vectors();
        assert!(v.cases.len() >= 6);
        for case in &v.cases {
            let sig = sign(
                &v.access_key,
                &case.verb,
                v.epoch_millis,
                case.body.as_bytes(),
                &case.resource_path,
            );
            assert_eq!(sig, case.signature, "{} {}", case.verb, case.resource_path);
            let header = authorization(
                &v.access_id,
                &v.access_key,
                &case.verb,
                v.epoch_millis,
                case.body.as_bytes(),
                &case.resource_path,
            );
            assert_eq!(header, case.authorization);
            let parsed = parse_header(&case.authorization).unwrap();
            assert_eq!(parsed.access_id, v.access_id);
            assert_eq!(parsed.epoch_ms, v.epoch_millis);
            assert_eq!(
                verify(
                    &parsed,
                    v.access_key.as_bytes(),
                    &case.verb,
                    case.body.as_bytes(),
                    &case.resource_path,
                    v.epoch_millis + 1000
                ),
                Ok(())
            );
            // Any change to the request breaks the signature.
            assert_eq!(
                verify(
                    &parsed,
                    b"otherkey",
                    &case.verb,
                    case.body.as_bytes(),
                    &case.resource_path,
                    v.epoch_millis
                ),
                Err(Lmv1Error::BadSignature)
            );
            assert_eq!(
                verify(
                    &parsed,
                    v.access_key.as_bytes(),
                    &case.verb,
                    b"{\"x\": 1}",
                    &case.resource_path,
                    v.epoch_millis
                ),
                Err(Lmv1Error::BadSignature)
            );
        }
    }

    #[test]
    fn window_is_thirty_minutes_each_way() {
        let key = "k";
        let t = 1_700_000_000_000;
        let h = authorization("A", key, "GET", t, b"", "/x");
        let p = parse_header(&h).unwrap();
        assert_eq!(verify(&p, b"k", "GET", b"", "/x", t + WINDOW_MS), Ok(()));
        assert_eq!(verify(&p, b"k", "GET", b"", "/x", t - WINDOW_MS), Ok(()));
        assert_eq!(
            verify(&p, b"k", "GET", b"", "/x", t + WINDOW_MS + 1),
            Err(Lmv1Error::StaleTimestamp)
        );
        assert_eq!(
            verify(&p, b"k", "GET", b"", "/x", t - WINDOW_MS - 1),
            Err(Lmv1Error::StaleTimestamp)
        );
    }

    #[test]
    fn empty_body_signature_accepted_when_body_is_braces() {
        let t = 1_700_000_000_000;
        let h = authorization("A", "k", "PUT", t, b"", "/setting/x");
        let p = parse_header(&h).unwrap();
        assert_eq!(verify(&p, b"k", "PUT", b"{}", "/setting/x", t), Ok(()));
        assert_eq!(
            verify(&p, b"k", "PUT", b"{ }", "/setting/x", t),
            Err(Lmv1Error::BadSignature)
        );
    }

    #[test]
    fn resource_path_strips_prefix_and_query_and_decodes() {
        assert_eq!(
            resource_path("/santaba/rest/device/devices/1/properties/my%20prop%2Fx?x=1"),
            "/device/devices/1/properties/my prop/x"
        );
        assert_eq!(
            resource_path("/rest/v2/metric/ingest?create=true"),
            "/v2/metric/ingest"
        );
        assert_eq!(resource_path("/santaba/restless"), "/santaba/restless");
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good_sig = "OWE1ODJkNDk5OWJhZThjNTFlMWE4OTc2NmIyNThjYmFjMmU1YzU5NzIzYTIzZmU5MDU5ZTdiMjEzOGViZDJhNA==";
        for bad in [
            "",
            "LMv1",
            "Bearer abc",
            "LMv1 :sig:1",
            &format!("LMv1 A:{good_sig}"),
            &format!("LMv1 A:{good_sig}:"),
            &format!("LMv1 A:{good_sig}:12x"),
            &format!("LMv1 A:{good_sig}:1:2"),
            "LMv1 A:short:1700000000000",
            &format!("LMv1 A:{}:1700000000000", "!".repeat(88)),
            &format!("LMv1 A:{}:1700000000000", B64.encode([b'z'; 64])),
        ] {
            assert!(parse_header(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_header(&format!("lmv1 A:{good_sig}:1700000000000")).is_ok());
    }

    #[test]
    fn header_parser_survives_random_input() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"LMv1 :=+/aZ09-_.\x00\xff";
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 120) as usize;
            let mut s = Vec::with_capacity(len);
            let mut y = x;
            for _ in 0..len {
                y ^= y << 13;
                y ^= y >> 7;
                y ^= y << 17;
                s.push(alphabet[(y % alphabet.len() as u64) as usize]);
            }
            let s = String::from_utf8_lossy(&s);
            let _ = parse_header(&s);
        }
    }
}
