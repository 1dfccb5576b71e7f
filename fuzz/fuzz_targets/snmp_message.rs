//! Fuzz the SNMP message decoder and the USM receive path: arbitrary datagrams
//! must never panic; whatever decodes must re-encode to an equal message; and
//! v3 authentication/decryption with fixed keys must fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_snmp::usm::{self, LocalizedKeys};
use palisade_snmp::{decode_message, AuthProtocol, Message, Oid, PrivProtocol, ScopedPdu};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode_message(data) {
        let again = Message::decode(&m.encode());
        assert_eq!(again.as_ref(), Ok(&m), "re-encoded message decodes differently");
    }
    let _ = ScopedPdu::decode_padded(data);
    for (auth, privacy) in [
        (AuthProtocol::Sha1, PrivProtocol::Aes128),
        (AuthProtocol::Md5, PrivProtocol::Des),
        (AuthProtocol::Sha512, PrivProtocol::Aes256),
    ] {
        let keys = LocalizedKeys::from_localized(
            auth,
            vec![0x11; auth.key_len()],
            Some((privacy, vec![0x22; privacy.key_len()])),
        );
        if let Ok(keys) = keys {
            let _ = usm::open(data, Some(&keys));
        }
    }
    let _ = usm::open(data, None);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(oid) = s.parse::<Oid>() {
            assert_eq!(oid.to_string().parse::<Oid>().ok(), Some(oid));
        }
    }
});
