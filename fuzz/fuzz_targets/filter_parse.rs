//! Fuzz the `filter` grammar: parsing arbitrary input must never panic, and
//! neither may matching a parsed filter against a JSON object that has
//! strings, numbers, booleans, nulls, nested objects and arrays.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn sample() -> Value {
    json!({
        "id": 5,
        "username": "Alice",
        "email": "alice@example.com",
        "status": "active",
        "note": "",
        "apionly": false,
        "lastLoginOn": 1_700_000_000u64,
        "score": 9.5,
        "nothing": null,
        "tags": ["blue", "Green", [], [["deep"]]],
        "roles": [{"id": 1, "name": "readonly"}, {"id": 2, "name": "Manager"}],
        "customProperties": [{"name": "site", "value": "Paris"}],
        "address": {"city": "Lyon", "geo": {"lat": 45.76, "tags": []}}
    })
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(filter) = palisade_core::filter::parse(&input) {
        let _ = filter.matches(&sample());
        let _ = filter.matches(&Value::Null);
        let _ = filter.fields();
    }
});
