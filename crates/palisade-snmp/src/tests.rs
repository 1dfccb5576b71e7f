#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Codec and USM tests against known byte vectors. The SNMP traces were
//! captured with `snmpget -d` / `snmpbulkget -d` (net-snmp 5.9.3) against a
//! Debian snmpd; the key vectors are from RFC 3414 appendix A.3.

use std::net::Ipv4Addr;

use crate::error::{AuthFailure, DecodeError, Error};
use crate::message::{CommunityMessage, Message, MsgFlags, ScopedPdu, ScopedPduData, V3Message};
use crate::usm::{self, AuthProtocol, LocalizedKeys, OpenError, PrivProtocol};
use crate::{Oid, Pdu, PduType, Value, VarBind};

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex string");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

// ---- net-snmp traces (v2c) -------------------------------------------------

const V2_GET: &str = "303702010104067075626c6963a02a02047ac03391020100020100301c300c06082b060102010103000500300c06082b060102010105000500";
const V2_GET_RESP: &str = "303b02010104067075626c6963a22e02047ac033910201000201003020300e06082b0601020101030043027287300e06082b060102010105000402766d";
const V2_BULK: &str =
    "302a02010104067075626c6963a51d020408002108020100020102300f300d06092b06010201020201010500";
const V2_BULK_RESP: &str = "303d02010104067075626c6963a2300204080021080201000201003022300f060a2b060102010202010101020101300f060a2b060102010202010102020102";
const V2_TYPES_RESP: &str = "307b02010104067075626c6963a26e02044898aee902010002010030603013060b2b060102011f010101060146041684ec2f3015060d2b06010201041401017f00000140047f000001301606082b06010201010200060a2b06010401bf0803020a300c06082b060102010163008000300c06082b060102010101018100";
const V2_END_RESP: &str =
    "302602010104067075626c6963a219020470669875020100020100300b300906052b060109098200";

// ---- net-snmp traces (v3) -------------------------------------------------

const ENGINE_ID: &str = "80001f8880df68675624a20a6b00000000";
const V3_DISCOVERY: &str = "303e020103301102046574c9ba020300ffe30401040201030410300e0400020100020100040004000400301404000400a00e020459422b330201000201003000";
const V3_DISCOVERY_REPORT: &str = "3071020103301102046574c9ba020300ffe30401000201030421301f041180001f8880df68675624a20a6b0000000002010102010b0400040004003036041180001f8880df68675624a20a6b000000000400a81f020459422b330201000201003011300f060a2b060106030f01010400410107";
/// User "shaaes", SHA/AES, passwords authpass123/privpass123.
const V3_SHA_AES_REQ: &str = "30818a020103301102046574c9b9020300ffe3040107020103043b3039041180001f8880df68675624a20a6b0000000002010102010b0406736861616573040c787945d366630d8997148d39040897fefd61d8930223043511208ece53ea015bfcc55030bb0035a720e7fe076f2e854f02e2278922dea35f3b30557a6a25ed80791f05e3068e8b6d865f693e5f";
const V3_SHA_AES_RESP: &str = "30818c020103301102046574c9b9020300ffe3040103020103043b3039041180001f8880df68675624a20a6b0000000002010102010b0406736861616573040c54aa7ee512238c418134cc090408d18e0307225b3d8d0437f7b90795c3684420dccf724385e8329f91b1fcdce2a50c42e2087b72c8401524b76fbef32d485cd132f5506b996f0fae905f27693d22ef";
/// User "md5des", MD5/DES, passwords authpass123/privpass123.
const V3_MD5_DES_REQ: &str = "30818d020103301102046279764e020300ffe3040107020103043b3039041180001f8880df68675624a20a6b0000000002010102010b04066d6435646573040c8b5330366bde0c8aaf4516b40408000000018f945bd40438b357d6b1770f6cc7f2b73c5e9267f76c9de9cb7aa25efe8669b8c569db0c4e5ec6f51526962e922a96d85fd12cd9dc01eb568777c078c5ac";
const V3_MD5_DES_RESP: &str = "30818d020103301102046279764e020300ffe3040103020103043b3039041180001f8880df68675624a20a6b0000000002010102010b04066d6435646573040cd64b86bee150038b3921dd42040800000001e16b8fdb04386e14e3399fa968d41e50cfdd381130ae2b8850bdb3a62b69ff5d988a6d173976d01dec1deca90ecd46ab7cda38cbfab2d332a735957751cc";

fn keys(auth: AuthProtocol, privacy: Option<PrivProtocol>) -> LocalizedKeys {
    LocalizedKeys::from_passwords(
        auth,
        b"authpass123",
        privacy.map(|p| (p, &b"privpass123"[..])),
        &hex(ENGINE_ID),
    )
    .unwrap()
}

fn v2c(bytes: &str) -> CommunityMessage {
    match Message::decode(&hex(bytes)).unwrap() {
        Message::V2c(m) => m,
        other => panic!("not v2c: {other:?}"),
    }
}

#[test]
fn v2c_get_request_matches_net_snmp() {
    let ours = Message::V2c(CommunityMessage {
        community: b"public".to_vec(),
        pdu: Pdu::request(
            PduType::GetRequest,
            0x7ac0_3391,
            &[oid("1.3.6.1.2.1.1.3.0"), oid("1.3.6.1.2.1.1.5.0")],
        ),
    });
    assert_eq!(ours.encode(), hex(V2_GET));
    assert_eq!(Message::decode(&hex(V2_GET)).unwrap(), ours);
}

#[test]
fn v2c_response_decodes_and_reencodes() {
    let m = v2c(V2_GET_RESP);
    assert_eq!(m.community, b"public");
    assert_eq!(m.pdu.pdu_type, PduType::Response);
    assert_eq!(m.pdu.request_id, 0x7ac0_3391);
    assert_eq!(
        m.pdu.varbinds,
        vec![
            VarBind {
                oid: oid("1.3.6.1.2.1.1.3.0"),
                value: Value::TimeTicks(29319)
            },
            VarBind {
                oid: oid("1.3.6.1.2.1.1.5.0"),
                value: Value::OctetString(b"vm".to_vec())
            },
        ]
    );
    assert_eq!(Message::V2c(m).encode(), hex(V2_GET_RESP));
}

#[test]
fn v2c_get_bulk_matches_net_snmp() {
    let ours = Message::V2c(CommunityMessage {
        community: b"public".to_vec(),
        pdu: Pdu::get_bulk(0x0800_2108, 0, 2, &[oid("1.3.6.1.2.1.2.2.1.1")]),
    });
    assert_eq!(ours.encode(), hex(V2_BULK));
    let resp = v2c(V2_BULK_RESP);
    let values: Vec<_> = resp
        .pdu
        .varbinds
        .iter()
        .map(|v| (v.oid.to_string(), v.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            ("1.3.6.1.2.1.2.2.1.1.1".to_string(), Value::Integer(1)),
            ("1.3.6.1.2.1.2.2.1.1.2".to_string(), Value::Integer(2)),
        ]
    );
    assert_eq!(Message::V2c(resp).encode(), hex(V2_BULK_RESP));
}

#[test]
fn v2c_all_value_types() {
    let m = v2c(V2_TYPES_RESP);
    let values: Vec<Value> = m.pdu.varbinds.iter().map(|v| v.value.clone()).collect();
    assert_eq!(
        values,
        vec![
            Value::Counter64(377_809_967),
            Value::IpAddress(Ipv4Addr::LOCALHOST),
            Value::ObjectIdentifier(oid("1.3.6.1.4.1.8072.3.2.10")),
            Value::NoSuchObject,
            Value::NoSuchInstance,
        ]
    );
    assert_eq!(
        m.pdu.varbinds[1].oid.to_string(),
        "1.3.6.1.2.1.4.20.1.1.127.0.0.1"
    );
    assert_eq!(Message::V2c(m).encode(), hex(V2_TYPES_RESP));

    let end = v2c(V2_END_RESP);
    assert_eq!(end.pdu.varbinds[0].value, Value::EndOfMibView);
    assert_eq!(Message::V2c(end).encode(), hex(V2_END_RESP));
}

#[test]
fn every_value_type_round_trips() {
    let values = vec![
        Value::Integer(0),
        Value::Integer(i32::MIN),
        Value::Integer(i32::MAX),
        Value::OctetString(vec![]),
        Value::OctetString(vec![0xff; 300]),
        Value::Null,
        Value::ObjectIdentifier(oid("2.999.1.4294967295")),
        Value::IpAddress(Ipv4Addr::new(10, 1, 2, 3)),
        Value::Counter32(u32::MAX),
        Value::Gauge32(0x8000_0000),
        Value::TimeTicks(12345),
        Value::Opaque(vec![0x9f, 0x78, 0x04, 0x3f, 0x80, 0, 0]),
        Value::Counter64(u64::MAX),
        Value::NoSuchObject,
        Value::NoSuchInstance,
        Value::EndOfMibView,
    ];
    let pdu = Pdu {
        pdu_type: PduType::Response,
        request_id: -5,
        error_status: 0,
        error_index: 0,
        varbinds: values
            .iter()
            .enumerate()
            .map(|(i, v)| VarBind {
                oid: oid("1.3.6.1.4.1.9999").child(i as u32).unwrap(),
                value: v.clone(),
            })
            .collect(),
    };
    let m = Message::V2c(CommunityMessage {
        community: b"c".to_vec(),
        pdu,
    });
    let bytes = m.encode();
    assert_eq!(Message::decode(&bytes).unwrap(), m);
    for t in [
        PduType::GetRequest,
        PduType::GetNextRequest,
        PduType::Response,
        PduType::SetRequest,
        PduType::GetBulkRequest,
        PduType::InformRequest,
        PduType::SnmpV2Trap,
        PduType::Report,
    ] {
        assert_eq!(PduType::from_tag(t.tag()), Some(t));
    }
}

/// A v2c Response whose single varbind has the raw value TLV `value`.
fn v2c_raw_value(value: &[u8]) -> Vec<u8> {
    use crate::ber::{tag, wrap, write_signed, write_tlv};
    let mut out = Vec::new();
    write_signed(&mut out, tag::INTEGER, 1);
    write_tlv(&mut out, tag::OCTET_STRING, b"public");
    let pdu = out.len();
    for v in [1, 0, 0] {
        write_signed(&mut out, tag::INTEGER, v);
    }
    let list = out.len();
    oid("1.3.6.1.4.1").encode(&mut out);
    out.extend_from_slice(value);
    wrap(&mut out, list, tag::SEQUENCE);
    wrap(&mut out, list, tag::SEQUENCE);
    wrap(&mut out, pdu, 0xa2);
    wrap(&mut out, 0, tag::SEQUENCE);
    out
}

fn raw_value(value: &str) -> Result<Value, DecodeError> {
    Message::decode(&v2c_raw_value(&hex(value))).map(|m| match m {
        Message::V2c(m) => m.pdu.varbinds[0].value.clone(),
        Message::V3(_) => panic!("v3"),
    })
}

#[test]
fn value_encodings() {
    // Sanity of the helper.
    assert_eq!(raw_value("02 01 05"), Ok(Value::Integer(5)));
    // Like net-snmp, over-long integers are accepted and truncated to the
    // type's width: Counter32 4294967295 without its leading zero (a common
    // agent bug), a 5-octet INTEGER, Counter64 with a leading zero.
    assert_eq!(
        raw_value("41 04 ff ff ff ff"),
        Ok(Value::Counter32(u32::MAX))
    );
    assert_eq!(
        raw_value("42 05 00 ff ff ff ff"),
        Ok(Value::Gauge32(u32::MAX))
    );
    assert_eq!(raw_value("02 05 01 00 00 00 07"), Ok(Value::Integer(7)));
    assert_eq!(
        raw_value("46 09 00 ff ff ff ff ff ff ff ff"),
        Ok(Value::Counter64(u64::MAX))
    );
    assert_eq!(
        raw_value("44 03 01 02 03"),
        Ok(Value::Opaque(vec![1, 2, 3]))
    );
    assert_eq!(raw_value("06 00"), Ok(Value::ObjectIdentifier(oid("0.0"))));
    // Rejected: empty integers, too long integers, non-empty NULL and
    // exceptions, IpAddress not 4 octets, unknown value tags.
    for bad in [
        "02 00",
        "41 00",
        "02 09 00 00 00 00 00 00 00 00 01",
        "46 0a 00 00 00 00 00 00 00 00 00 01",
        "05 01 00",
        "80 01 00",
        "82 01 00",
        "40 05 01 02 03 04 05",
        "40 03 01 02 03",
        "47 01 01",
        "a0 00",
    ] {
        assert!(raw_value(bad).is_err(), "{bad} decoded");
    }
}

#[test]
fn strictness() {
    let good = hex(V2_GET_RESP);
    // Trailing garbage after the message.
    let mut t = good.clone();
    t.push(0);
    assert_eq!(
        Message::decode(&t),
        Err(DecodeError::TrailingData("Message"))
    );
    // Truncated anywhere.
    for n in 0..good.len() {
        assert!(Message::decode(&good[..n]).is_err(), "prefix {n} decoded");
    }
    // SNMPv1 is not supported.
    let mut v1 = good.clone();
    v1[4] = 0;
    assert_eq!(
        Message::decode(&v1),
        Err(DecodeError::UnsupportedVersion(0))
    );
    // Privacy without authentication is invalid.
    let mut d = hex(V3_DISCOVERY);
    let flags_at = 20;
    assert_eq!(d[flags_at], 0x04);
    d[flags_at] = 0x06;
    assert!(matches!(Message::decode(&d), Err(DecodeError::Invalid(_))));
    // Unknown security model.
    let mut d = hex(V3_DISCOVERY);
    assert_eq!(d[23], 3);
    d[23] = 2;
    assert_eq!(
        Message::decode(&d),
        Err(DecodeError::UnsupportedSecurityModel(2))
    );
    // msgMaxSize below 484.
    let mut d = hex(V3_DISCOVERY);
    d[15..18].copy_from_slice(&[0x00, 0x01, 0x00]);
    assert!(matches!(
        Message::decode(&d),
        Err(DecodeError::IntegerOutOfRange(_))
    ));
}

// ---- SNMPv3 ----------------------------------------------------------------

#[test]
fn v3_discovery_matches_net_snmp() {
    let ours = Message::V3(V3Message {
        msg_id: 0x6574_c9ba,
        max_size: 65507,
        flags: MsgFlags {
            auth: false,
            privacy: false,
            reportable: true,
        },
        usm: Default::default(),
        data: ScopedPduData::Plaintext(ScopedPdu {
            context_engine_id: vec![],
            context_name: vec![],
            pdu: Pdu::request(PduType::GetRequest, 0x5942_2b33, &[]),
        }),
    });
    assert_eq!(ours.encode(), hex(V3_DISCOVERY));

    let report = Message::decode(&hex(V3_DISCOVERY_REPORT)).unwrap();
    let Message::V3(r) = &report else { panic!() };
    assert_eq!(r.usm.engine_id, hex(ENGINE_ID));
    assert_eq!((r.usm.engine_boots, r.usm.engine_time), (1, 11));
    assert_eq!(r.flags, MsgFlags::default());
    let ScopedPduData::Plaintext(s) = &r.data else {
        panic!()
    };
    assert_eq!(s.pdu.pdu_type, PduType::Report);
    assert_eq!(s.pdu.varbinds[0].oid, oid("1.3.6.1.6.3.15.1.1.4.0"));
    assert_eq!(s.pdu.varbinds[0].value, Value::Counter32(7));
    assert_eq!(report.encode(), hex(V3_DISCOVERY_REPORT));
    assert!(matches!(
        crate::client::report_failure(&s.pdu),
        Error::Auth(AuthFailure::UnknownEngineId)
    ));
}

#[test]
fn rfc3414_a3_key_localization() {
    let engine = hex("000000000000000000000002");
    let ku = AuthProtocol::Md5.password_to_key(b"maplesyrup").unwrap();
    assert_eq!(ku, hex("9f af 32 83 88 4e 92 83 4e bc 98 47 d8 ed d9 63"));
    assert_eq!(
        AuthProtocol::Md5.localize_key(&ku, &engine),
        hex("52 6f 5e ed 9f cc e2 6f 89 64 c2 93 07 87 d8 2b")
    );
    let ku = AuthProtocol::Sha1.password_to_key(b"maplesyrup").unwrap();
    assert_eq!(
        ku,
        hex("9f b5 cc 03 81 49 7b 37 93 52 89 39 ff 78 8d 5d 79 14 52 11")
    );
    assert_eq!(
        AuthProtocol::Sha1.localize_key(&ku, &engine),
        hex("66 95 fe bc 92 88 e3 62 82 23 5f c7 15 1f 12 84 97 b3 8f 3f")
    );
    assert_eq!(
        AuthProtocol::Md5.password_to_key(b"short"),
        Err(crate::UsmError::PasswordTooShort)
    );
    for p in [
        AuthProtocol::Md5,
        AuthProtocol::Sha1,
        AuthProtocol::Sha224,
        AuthProtocol::Sha256,
        AuthProtocol::Sha384,
        AuthProtocol::Sha512,
    ] {
        let k = p.password_to_key(b"maplesyrup").unwrap();
        assert_eq!(k.len(), p.key_len());
        assert_eq!(p.localize_key(&k, &engine).len(), p.key_len());
    }
}

/// Opens a captured request/response pair with keys derived from the
/// passwords, then rebuilds the request byte for byte from its parts (same
/// msgID, clock and salt): checks localization, HMAC, encryption and
/// encoding against net-snmp at once.
fn check_v3_trace(auth: AuthProtocol, privacy: PrivProtocol, req: &str, resp: &str, salt: u64) {
    let k = keys(auth, Some(privacy));
    let req = hex(req);
    let opened = usm::open(&req, Some(&k)).unwrap();
    assert!(opened.authenticated);
    let ScopedPduData::Plaintext(s) = &opened.message.data else {
        panic!()
    };
    assert_eq!(s.context_engine_id, hex(ENGINE_ID));
    assert_eq!(s.pdu.pdu_type, PduType::GetRequest);
    assert_eq!(
        s.pdu.varbinds,
        vec![VarBind::null(oid("1.3.6.1.2.1.1.5.0"))]
    );
    let resealed = usm::seal(&opened.message, Some(&k), salt).unwrap();
    assert_eq!(resealed, req, "re-sealed request differs from net-snmp's");

    let r = usm::open(&hex(resp), Some(&k)).unwrap();
    assert!(r.authenticated);
    let ScopedPduData::Plaintext(rs) = &r.message.data else {
        panic!()
    };
    assert_eq!(rs.pdu.pdu_type, PduType::Response);
    assert_eq!(rs.pdu.request_id, s.pdu.request_id);
    assert_eq!(rs.pdu.varbinds[0].value, Value::OctetString(b"vm".to_vec()));

    // Any flipped bit in the response breaks the digest.
    let mut bad = hex(resp);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(usm::open(&bad, Some(&k)), Err(OpenError::WrongDigest));
    // The wrong password too.
    let wrong = LocalizedKeys::from_passwords(
        auth,
        b"authpass124",
        Some((privacy, b"privpass123")),
        &hex(ENGINE_ID),
    )
    .unwrap();
    assert_eq!(
        usm::open(&hex(resp), Some(&wrong)),
        Err(OpenError::WrongDigest)
    );
    // And the wrong privacy password fails decryption.
    let wrong = LocalizedKeys::from_passwords(
        auth,
        b"authpass123",
        Some((privacy, b"privpass124")),
        &hex(ENGINE_ID),
    )
    .unwrap();
    assert_eq!(
        usm::open(&hex(resp), Some(&wrong)),
        Err(OpenError::Decryption)
    );
}

#[test]
fn v3_sha_aes_trace() {
    check_v3_trace(
        AuthProtocol::Sha1,
        PrivProtocol::Aes128,
        V3_SHA_AES_REQ,
        V3_SHA_AES_RESP,
        0x97fe_fd61_d893_0223,
    );
}

#[test]
fn v3_md5_des_trace() {
    check_v3_trace(
        AuthProtocol::Md5,
        PrivProtocol::Des,
        V3_MD5_DES_REQ,
        V3_MD5_DES_RESP,
        0x8f94_5bd4,
    );
}

#[test]
fn seal_open_round_trip_all_protocols() {
    let auths = [
        AuthProtocol::Md5,
        AuthProtocol::Sha1,
        AuthProtocol::Sha224,
        AuthProtocol::Sha256,
        AuthProtocol::Sha384,
        AuthProtocol::Sha512,
    ];
    let privs = [
        None,
        Some(PrivProtocol::Des),
        Some(PrivProtocol::Aes128),
        Some(PrivProtocol::Aes192),
        Some(PrivProtocol::Aes256),
    ];
    // Derive each password once (1 MiB hash) and localize per combination.
    for a in auths {
        let am = a.password_to_key(b"authpass123").unwrap();
        let pm = a.password_to_key(b"privpass123").unwrap();
        for p in privs {
            let k = LocalizedKeys::from_master_keys(
                a,
                &am,
                p.map(|p| (p, pm.as_slice())),
                &hex(ENGINE_ID),
            );
            let msg = V3Message {
                msg_id: 42,
                max_size: 1500,
                flags: MsgFlags {
                    auth: true,
                    privacy: p.is_some(),
                    reportable: true,
                },
                usm: crate::message::UsmSecurityParameters {
                    engine_id: hex(ENGINE_ID),
                    engine_boots: 3,
                    engine_time: 1000,
                    user_name: b"someone".to_vec(),
                    ..Default::default()
                },
                data: ScopedPduData::Plaintext(ScopedPdu {
                    context_engine_id: hex(ENGINE_ID),
                    context_name: vec![],
                    pdu: Pdu::get_bulk(7, 0, 10, &[oid("1.3.6.1.2.1.2.2")]),
                }),
            };
            let wire = usm::seal(&msg, Some(&k), 99).unwrap();
            let opened = usm::open(&wire, Some(&k)).unwrap();
            assert!(opened.authenticated, "{a:?}/{p:?}");
            assert_eq!(opened.message.data, msg.data, "{a:?}/{p:?}");
            let Message::V3(raw) = Message::decode(&wire).unwrap() else {
                panic!()
            };
            assert_eq!(raw.usm.auth_params.len(), a.mac_len());
            assert_eq!(matches!(raw.data, ScopedPduData::Encrypted(_)), p.is_some());
        }
    }
}

#[test]
fn blumenthal_key_extension() {
    // A 16-byte MD5 key is extended for AES-256 with K || H(K) (truncated).
    let am = AuthProtocol::Md5.password_to_key(b"privpass123").unwrap();
    let kul = AuthProtocol::Md5.localize_key(&am, &hex(ENGINE_ID));
    let ext = usm::localize_priv_key(
        AuthProtocol::Md5,
        PrivProtocol::Aes256,
        &am,
        &hex(ENGINE_ID),
    );
    assert_eq!(ext.len(), 32);
    assert_eq!(&ext[..16], &kul[..]);
    use md5::Digest;
    assert_eq!(&ext[16..], &md5::Md5::digest(&kul)[..]);
}

#[test]
fn timeliness_window() {
    use usm::in_time_window;
    assert!(in_time_window(5, 1000, 5, 1000));
    assert!(in_time_window(5, 851, 5, 1000));
    assert!(!in_time_window(5, 849, 5, 1000));
    assert!(in_time_window(6, 0, 5, 1000));
    assert!(!in_time_window(4, 5000, 5, 1000));
    assert!(!in_time_window(i32::MAX as u32, 0, 5, 1000));
}

#[test]
fn secrets_stay_out_of_debug() {
    let m = CommunityMessage {
        community: b"s3cret-community".to_vec(),
        pdu: Pdu::request(PduType::GetRequest, 1, &[]),
    };
    assert!(!format!("{m:?}").contains("s3cret"));
    let k = keys(AuthProtocol::Sha1, Some(PrivProtocol::Aes128));
    let dbg = format!("{k:?}");
    let auth_key = AuthProtocol::Sha1.localize_key(
        &AuthProtocol::Sha1.password_to_key(b"authpass123").unwrap(),
        &hex(ENGINE_ID),
    );
    let hexkey: String = auth_key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !dbg.contains(&hexkey) && !dbg.contains(&format!("{:?}", auth_key)),
        "{dbg}"
    );
}

#[tokio::test]
async fn client_debug_redacts() {
    let addr = "127.0.0.1:9".parse().unwrap();
    let c = crate::Client::v2c(addr, "s3cret-community").await.unwrap();
    assert!(!format!("{c:?}").contains("s3cret"));
    let c = crate::Client::v3(
        addr,
        "bob",
        Some((AuthProtocol::Sha256, "s3cret-auth")),
        Some((PrivProtocol::Aes128, "s3cret-priv")),
    )
    .await
    .unwrap();
    let dbg = format!("{c:?}");
    assert!(dbg.contains("bob") && !dbg.contains("s3cret"), "{dbg}");
    assert!(matches!(
        crate::Client::v3(
            addr,
            "bob",
            None,
            Some((PrivProtocol::Aes128, "s3cret-priv"))
        )
        .await,
        Err(Error::Config(_))
    ));
    let e = crate::Client::v3(addr, "bob", Some((AuthProtocol::Md5, "short")), None)
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("short"));
}

// ---- robustness ----------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut m = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(7) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            2 => m.truncate(rng.below(m.len() + 1)),
            3 => {
                let i = rng.below(m.len() + 1);
                m.insert(i, rng.next() as u8);
            }
            4 if !m.is_empty() => {
                let i = rng.below(m.len());
                m.remove(i);
            }
            // Length-ish bytes: make them huge, long-form, or indefinite.
            5 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = [0x80, 0x81, 0x84, 0xff, 0x7f, 0x00][rng.below(6)];
            }
            _ => {
                let i = rng.below(m.len() + 1);
                let n = rng.below(8);
                let chunk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                m.splice(i..i, chunk);
            }
        }
    }
    m
}

#[test]
fn decoder_survives_20k_mutations() {
    let seeds: Vec<Vec<u8>> = [
        V2_GET,
        V2_GET_RESP,
        V2_BULK,
        V2_BULK_RESP,
        V2_TYPES_RESP,
        V2_END_RESP,
        V3_DISCOVERY,
        V3_DISCOVERY_REPORT,
        V3_SHA_AES_REQ,
        V3_SHA_AES_RESP,
        V3_MD5_DES_REQ,
        V3_MD5_DES_RESP,
    ]
    .iter()
    .map(|s| hex(s))
    .collect();
    let sha_aes = keys(AuthProtocol::Sha1, Some(PrivProtocol::Aes128));
    let md5_des = keys(AuthProtocol::Md5, Some(PrivProtocol::Des));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for i in 0..20_000 {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        if let Ok(m) = Message::decode(&input) {
            decoded += 1;
            // Whatever decodes must re-encode to something that decodes equal.
            let again = Message::decode(&m.encode()).unwrap();
            assert_eq!(again, m);
        }
        let _ = usm::open(&input, Some(&sha_aes));
        let _ = usm::open(&input, Some(&md5_des));
        let _ = usm::open(&input, None);
        // Decryption of arbitrary ciphertext with arbitrary parameters.
        let _ = usm::decrypt(
            PrivProtocol::Des,
            &[1; 16],
            1,
            2,
            &input[..input.len().min(8)],
            &input,
        );
        let _ = usm::decrypt(
            PrivProtocol::Aes256,
            &[1; 32],
            1,
            2,
            &input[..input.len().min(8)],
            &input,
        );
        let _ = ScopedPdu::decode_padded(&input);
    }
    // The mutations are mild enough that some still decode.
    assert!(decoded > 500, "only {decoded} mutated inputs decoded");
}

#[test]
fn huge_claimed_lengths_do_not_allocate() {
    // SEQUENCE claiming 2^32-1 bytes, varbind list claiming more than present.
    for input in [
        hex("30 84 ff ff ff ff 02 01 01"),
        hex("30 0c 02 01 01 04 00 a2 84 7f ff ff ff 02"),
        hex("30 10 02 01 01 04 00 a2 0a 02 01 01 02 01 00 02 01 00 30 83 ff ff ff"),
    ] {
        assert!(Message::decode(&input).is_err());
    }
}
