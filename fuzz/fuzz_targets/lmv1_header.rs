//! Fuzz the LMv1 `Authorization` header parser and verifier: arbitrary header text must
//! never panic, and a header that parses must verify (to an error, almost always) without
//! panicking whatever the body and path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::lmv1;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let (header, rest) = data.split_at(split);
    let header = String::from_utf8_lossy(header);
    if let Ok(parsed) = lmv1::parse_header(&header) {
        let path = lmv1::resource_path(&String::from_utf8_lossy(rest));
        let _ = lmv1::verify(&parsed, b"palk_fuzz", "POST", rest, &path, parsed.epoch_ms);
        let _ = lmv1::verify(&parsed, b"palk_fuzz", "GET", b"{}", "/x", 0);
    }
});
