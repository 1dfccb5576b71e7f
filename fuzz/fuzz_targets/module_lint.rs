//! Fuzz the module review (`palisade_core::module_lint`): the portal runs it on the script
//! source any datasource author uploads, so arbitrary text must never panic, and every
//! finding must point at a line of the input and name a known rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_core::module_lint::{format_finding, lint, RULES};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    for f in lint(&text) {
        assert!(
            f.line >= 1 && f.line <= lines.max(1),
            "line {} of {lines}",
            f.line
        );
        assert!(RULES.iter().any(|(id, _)| *id == f.rule), "rule {}", f.rule);
        let _ = format_finding("fuzz", &f);
    }
});
