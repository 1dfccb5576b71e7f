#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Against a real Debian net-snmp `snmpd` started by the test itself (see
//! `common/mod.rs`). Fails (never skips) when snmpd is not installed.

mod common;

use std::time::Duration;

use common::{parse_net_snmp, render, Agent, AUTH_PASSWORD, COMMUNITY, PRIV_PASSWORD};
use palisade_snmp::{
    AuthFailure, AuthProtocol, Client, ClientConfig, Error, ErrorStatus, Oid, Pdu, PduType,
    PrivProtocol, Value, VarBind,
};

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
const SYS_UP_TIME: &str = "1.3.6.1.2.1.1.3.0";
const IF_TABLE: &str = "1.3.6.1.2.1.2.2";
const HR_STORAGE_TABLE: &str = "1.3.6.1.2.1.25.2.3";

fn quick(mut c: Client) -> Client {
    let mut cfg = ClientConfig::default();
    cfg.timeout = Duration::from_millis(300);
    cfg.retries = 1;
    c.set_config(cfg);
    c
}

async fn v3(
    agent: &Agent,
    user: &str,
    auth: Option<(AuthProtocol, &str)>,
    privacy: Option<(PrivProtocol, &str)>,
) -> Client {
    Client::v3(agent.addr, user, auth, privacy).await.unwrap()
}

#[tokio::test]
async fn v2c_get_sys_descr_and_uptime() {
    let agent = Agent::start().await;
    let mut c = Client::v2c(agent.addr, COMMUNITY).await.unwrap();
    let vbs = c.get(&[oid(SYS_DESCR), oid(SYS_UP_TIME)]).await.unwrap();
    assert_eq!(vbs[0].oid, oid(SYS_DESCR));
    assert_eq!(vbs[1].oid, oid(SYS_UP_TIME));
    let Value::OctetString(descr) = &vbs[0].value else {
        panic!("sysDescr is {:?}", vbs[0].value)
    };
    assert!(!descr.is_empty());
    assert!(
        matches!(vbs[1].value, Value::TimeTicks(_)),
        "{:?}",
        vbs[1].value
    );

    // Same sysDescr as net-snmp's snmpget on the same agent.
    let out = agent.net_snmp(
        "snmpget",
        &["-v2c", "-c", COMMUNITY, &agent.host(), SYS_DESCR],
    );
    let theirs = parse_net_snmp(&out);
    assert_eq!(theirs, vec![(SYS_DESCR.to_string(), render(&vbs[0].value))]);

    // Exceptions: missing object, missing instance, end of the MIB view.
    let vbs = c
        .get(&[oid("1.3.6.1.2.1.1.99.0"), oid("1.3.6.1.2.1.1.1.1")])
        .await
        .unwrap();
    assert_eq!(vbs[0].value, Value::NoSuchObject);
    assert_eq!(vbs[1].value, Value::NoSuchInstance);
    let vbs = c.get_next(&[oid("1.3.6.1.9.9")]).await.unwrap();
    assert_eq!(vbs[0].value, Value::EndOfMibView);
    let vbs = c.get_next(&[oid("1.3.6.1.2.1.1.1")]).await.unwrap();
    assert_eq!(vbs[0].oid, oid(SYS_DESCR));

    // A walk of a scalar's subtree and past the end of the MIB.
    let rows = c.bulk_walk(&oid("1.3.6.1.2.1.1.3")).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(c.bulk_walk(&oid("1.3.6.1.9.9")).await.unwrap().is_empty());
}

/// Walks `root` with our client and with `snmpbulkwalk -Cr25`, and compares
/// OIDs, types and (except for counters, timeticks and `volatile` columns)
/// values.
async fn compare_walk(agent: &Agent, client: &mut Client, root: &str, volatile: &[&str]) -> usize {
    let ours = client.bulk_walk(&oid(root)).await.unwrap();
    let out = agent.net_snmp(
        "snmpbulkwalk",
        &["-v2c", "-c", COMMUNITY, "-Cr25", &agent.host(), root],
    );
    let theirs = parse_net_snmp(&out);
    assert!(
        !theirs.is_empty(),
        "snmpbulkwalk returned nothing for {root}"
    );
    let ours_oids: Vec<String> = ours.iter().map(|(o, _)| o.to_string()).collect();
    let their_oids: Vec<String> = theirs.iter().map(|(o, _)| o.clone()).collect();
    assert_eq!(ours_oids, their_oids, "different rows under {root}");
    for ((o, v), (_, t)) in ours.iter().zip(&theirs) {
        let mine = render(v);
        let changing = matches!(
            v,
            Value::Counter32(_) | Value::Counter64(_) | Value::TimeTicks(_)
        ) || volatile.iter().any(|p| o.to_string().starts_with(p));
        if changing {
            let kind = |s: &str| s.split(':').next().unwrap_or("").to_string();
            if !matches!(v, Value::TimeTicks(_)) {
                assert_eq!(kind(&mine), kind(t), "type of {o}");
            }
        } else {
            assert_eq!(&mine, t, "value of {o}");
        }
    }
    ours.len()
}

#[tokio::test]
async fn v2c_bulk_walk_if_table_matches_snmpbulkwalk() {
    let agent = Agent::start().await;
    let mut c = Client::v2c(agent.addr, COMMUNITY).await.unwrap();
    let n = compare_walk(&agent, &mut c, IF_TABLE, &[]).await;
    assert!(n >= 22, "ifTable has only {n} cells");
}

#[tokio::test]
async fn v2c_bulk_walk_hr_storage_table_matches_snmpbulkwalk() {
    let agent = Agent::start().await;
    let mut c = Client::v2c(agent.addr, COMMUNITY).await.unwrap();
    // hrStorageSize (.5: cached and available memory) and hrStorageUsed
    // (.6) move with memory use.
    let n = compare_walk(
        &agent,
        &mut c,
        HR_STORAGE_TABLE,
        &["1.3.6.1.2.1.25.2.3.1.5.", "1.3.6.1.2.1.25.2.3.1.6."],
    )
    .await;
    assert!(n >= 7, "hrStorageTable has only {n} cells");
}

#[tokio::test]
async fn v2c_small_max_repetitions_and_agent_error_status() {
    let agent = Agent::start().await;
    let mut c = Client::v2c(agent.addr, COMMUNITY).await.unwrap();
    let all = c.bulk_walk(&oid(IF_TABLE)).await.unwrap();
    let mut cfg = c.config().clone();
    cfg.max_repetitions = 1;
    c.set_config(cfg);
    let one_by_one = c.bulk_walk(&oid(IF_TABLE)).await.unwrap();
    let oids = |v: &[(Oid, Value)]| v.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>();
    assert_eq!(oids(&all), oids(&one_by_one));

    let bulk = c
        .get_bulk(1, 3, &[oid("1.3.6.1.2.1.1.1"), oid("1.3.6.1.2.1.2.2.1.1")])
        .await
        .unwrap();
    assert_eq!(bulk.len(), 4);
    assert_eq!(bulk[0].oid, oid(SYS_DESCR));

    // A SetRequest through a read-only community: error-status with index.
    let set = Pdu {
        varbinds: vec![VarBind {
            oid: oid("1.3.6.1.2.1.1.4.0"),
            value: Value::OctetString(b"x".to_vec()),
        }],
        ..Pdu::request(PduType::SetRequest, 0, &[])
    };
    match c.request(set).await {
        Err(Error::Agent {
            status,
            index,
            oid: Some(o),
        }) => {
            assert_eq!(status, ErrorStatus::NoAccess);
            assert_eq!(index, 1);
            assert_eq!(o, oid("1.3.6.1.2.1.1.4.0"));
        }
        other => panic!("expected an agent error, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_community_times_out() {
    let agent = Agent::start().await;
    let mut c = quick(Client::v2c(agent.addr, "not-the-community").await.unwrap());
    let start = std::time::Instant::now();
    match c.get(&[oid(SYS_UP_TIME)]).await {
        Err(e @ Error::Timeout { attempts: 2, .. }) => {
            assert!(!e.to_string().contains("not-the-community"));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(550));
}

#[tokio::test]
async fn v3_auth_priv_get() {
    let agent = Agent::start().await;
    let mut c = v3(
        &agent,
        "shaaes",
        Some((AuthProtocol::Sha1, AUTH_PASSWORD)),
        Some((PrivProtocol::Aes128, PRIV_PASSWORD)),
    )
    .await;
    let vbs = c.get(&[oid(SYS_DESCR), oid(SYS_UP_TIME)]).await.unwrap();
    assert!(matches!(vbs[1].value, Value::TimeTicks(_)));
    assert!(c.engine_id().is_some_and(|e| !e.is_empty()));
    let mut v2 = Client::v2c(agent.addr, COMMUNITY).await.unwrap();
    let descr = v2.get(&[oid(SYS_DESCR)]).await.unwrap();
    assert_eq!(vbs[0].value, descr[0].value);

    // A v3 walk gives the same rows as a v2c walk.
    let a = c.bulk_walk(&oid(HR_STORAGE_TABLE)).await.unwrap();
    let b = v2.bulk_walk(&oid(HR_STORAGE_TABLE)).await.unwrap();
    let oids = |v: &[(Oid, Value)]| v.iter().map(|(o, _)| o.clone()).collect::<Vec<_>>();
    assert_eq!(oids(&a), oids(&b));
    assert!(!format!("{c:?}").contains(PRIV_PASSWORD));
}

#[tokio::test]
async fn v3_every_protocol_combination() {
    let agent = Agent::start().await;
    type Case = (&'static str, Option<AuthProtocol>, Option<PrivProtocol>);
    let cases: &[Case] = &[
        ("md5des", Some(AuthProtocol::Md5), Some(PrivProtocol::Des)),
        (
            "sha224aes",
            Some(AuthProtocol::Sha224),
            Some(PrivProtocol::Aes128),
        ),
        (
            "sha256aes192",
            Some(AuthProtocol::Sha256),
            Some(PrivProtocol::Aes192),
        ),
        (
            "sha512aes256",
            Some(AuthProtocol::Sha512),
            Some(PrivProtocol::Aes256),
        ),
        // Key extension (Blumenthal) for AES keys longer than the hash.
        (
            "md5aes256",
            Some(AuthProtocol::Md5),
            Some(PrivProtocol::Aes256),
        ),
        (
            "sha1aes192",
            Some(AuthProtocol::Sha1),
            Some(PrivProtocol::Aes192),
        ),
        ("sha384auth", Some(AuthProtocol::Sha384), None),
        ("noauthuser", None, None),
    ];
    for &(user, auth, privacy) in cases {
        let mut c = v3(
            &agent,
            user,
            auth.map(|a| (a, AUTH_PASSWORD)),
            privacy.map(|p| (p, PRIV_PASSWORD)),
        )
        .await;
        let vbs = c
            .get(&[oid(SYS_UP_TIME)])
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert!(matches!(vbs[0].value, Value::TimeTicks(_)), "{user}");
        let rows = c
            .bulk_walk(&oid("1.3.6.1.2.1.2.2.1.2"))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert!(!rows.is_empty(), "{user}");
    }
}

#[tokio::test]
async fn wrong_v3_passwords_and_users_are_auth_errors() {
    let agent = Agent::start().await;
    let mut c = quick(
        v3(
            &agent,
            "shaaes",
            Some((AuthProtocol::Sha1, "wrong-auth-password")),
            Some((PrivProtocol::Aes128, PRIV_PASSWORD)),
        )
        .await,
    );
    match c.get(&[oid(SYS_UP_TIME)]).await {
        Err(e @ Error::Auth(AuthFailure::WrongDigest)) => {
            assert!(!e.to_string().contains("wrong-auth-password"));
        }
        other => panic!("expected a wrong-digest error, got {other:?}"),
    }

    // Right password, wrong protocol.
    let mut c = quick(
        v3(
            &agent,
            "shaaes",
            Some((AuthProtocol::Md5, AUTH_PASSWORD)),
            Some((PrivProtocol::Aes128, PRIV_PASSWORD)),
        )
        .await,
    );
    assert!(matches!(
        c.get(&[oid(SYS_UP_TIME)]).await,
        Err(Error::Auth(AuthFailure::WrongDigest))
    ));

    let mut c = quick(
        v3(
            &agent,
            "nosuchuser",
            Some((AuthProtocol::Sha1, AUTH_PASSWORD)),
            Some((PrivProtocol::Aes128, PRIV_PASSWORD)),
        )
        .await,
    );
    assert!(matches!(
        c.get(&[oid(SYS_UP_TIME)]).await,
        Err(Error::Auth(AuthFailure::UnknownUserName))
    ));

    // Wrong privacy password: the agent cannot decode the PDU.
    let mut c = quick(
        v3(
            &agent,
            "shaaes",
            Some((AuthProtocol::Sha1, AUTH_PASSWORD)),
            Some((PrivProtocol::Aes128, "wrong-priv-password")),
        )
        .await,
    );
    match c.get(&[oid(SYS_UP_TIME)]).await {
        Err(Error::Auth(AuthFailure::DecryptionError)) | Err(Error::Timeout { .. }) => {}
        other => panic!("expected a decryption error, got {other:?}"),
    }

    // A security level below the user's: authorizationError or level report.
    let mut c = quick(
        v3(
            &agent,
            "shaaes",
            Some((AuthProtocol::Sha1, AUTH_PASSWORD)),
            None,
        )
        .await,
    );
    match c.get(&[oid(SYS_UP_TIME)]).await {
        Err(Error::Agent {
            status: ErrorStatus::AuthorizationError,
            ..
        })
        | Err(Error::Auth(AuthFailure::UnsupportedSecurityLevel)) => {}
        other => panic!("expected an authorization error, got {other:?}"),
    }
}
