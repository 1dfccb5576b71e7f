//! The stylesheet and scripts, embedded in the binary and served by the portal itself (no
//! CDN): `/ui/assets/palisade.css`, `palisade.js` (progressive enhancements of the pages)
//! and `signin.js` (passkeys on the sign-in pages). URLs carry a hash of the content, so
//! they can be cached for long.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

const FILES: &[(&str, &str, &str)] = &[
    (
        "palisade.css",
        "text/css; charset=utf-8",
        include_str!("assets/palisade.css"),
    ),
    (
        "palisade.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/palisade.js"),
    ),
    (
        "signin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/signin.js"),
    ),
];

/// FNV-1a of every file: changes whenever one of them does.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, _, body) in FILES {
            for b in body.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:012x}", h & 0xffff_ffff_ffff)
    })
}

/// The URL of an asset (with its version).
pub fn url(name: &str) -> String {
    format!("/ui/assets/{name}?v={}", version())
}

/// `GET /ui/assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => {
            let mut r = (StatusCode::OK, *body).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => super::error::page(
            None,
            &crate::error::ApiError::NotFound("no such file".into()),
        ),
    }
}
