//! Fuzz the PromQL parser: arbitrary input must never panic (nor overflow the stack), and
//! an expression that parses must print back to PromQL that parses to the same text. The
//! API's parameter parsers (times, durations, selectors) get the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_promql::{api, parser};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(expr) = parser::parse(&input) {
        let printed = expr.to_string();
        let again = parser::parse(&printed).map(|e| e.to_string());
        assert_eq!(
            again.as_deref(),
            Ok(printed.as_str()),
            "print/parse round trip"
        );
        let _ = expr.value_type();
    }
    let _ = parser::parse_selector(&input);
    let _ = api::parse_time(&input);
    let _ = api::parse_duration(&input);
});
