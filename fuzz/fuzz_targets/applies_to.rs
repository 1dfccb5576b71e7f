//! Fuzz the `appliesTo` expression language: parsing arbitrary input must never panic, and
//! neither may evaluating a parsed expression against devices with typical, empty, missing
//! and odd property values, nor listing the properties it reads.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use palisade_core::applies_to;

fn device() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("system.hostname", "WEB-01.example.com"),
        ("system.displayname", "web-01"),
        (
            "system.sysinfo",
            "Linux web-01 6.1.0-18-amd64 #1 SMP Debian x86_64",
        ),
        ("system.categories", "Linux, snmpTCPUDP ,frontend,"),
        ("system.devicetype", "0"),
        ("system.cpu.count", "8"),
        ("system.memory", "-16.5"),
        ("snmp.community", "public"),
        ("location", ""),
        ("weird name", "é\u{0}\"\\"),
    ])
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    if let Ok(expr) = applies_to::parse(&input) {
        let props = device();
        let _ = expr.matches(&|name: &str| props.get(name).map(|v| v.to_string()));
        let _ = expr.matches(&|_: &str| None);
        let _ = expr.matches(&|name: &str| Some(name.repeat(3)));
        let _ = expr.properties();
    }
});
