#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Client behaviour against a scripted fake v2c agent on 127.0.0.1: stray
//! datagrams, retransmission, timeouts, error-status, walk termination.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use palisade_snmp::message::CommunityMessage;
use palisade_snmp::{
    Client, ClientConfig, DecodeError, Error, ErrorStatus, Message, Oid, Pdu, PduType, Value,
    VarBind,
};
use tokio::net::UdpSocket;

fn oid(s: &str) -> Oid {
    s.parse().unwrap()
}

/// What the fake agent sends back for the n-th request it receives.
type Script = dyn Fn(usize, &CommunityMessage) -> Vec<Vec<u8>> + Send + Sync;

/// Starts a fake agent; returns its address and a counter of requests seen.
async fn fake_agent(script: Box<Script>) -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(Message::V2c(req)) = Message::decode(&buf[..n]) else {
                continue;
            };
            let i = counter.fetch_add(1, Ordering::SeqCst);
            for reply in script(i, &req) {
                let _ = sock.send_to(&reply, peer).await;
            }
        }
    });
    (addr, seen)
}

fn response(req: &CommunityMessage, varbinds: Vec<VarBind>) -> Vec<u8> {
    Message::V2c(CommunityMessage {
        community: req.community.clone(),
        pdu: Pdu {
            pdu_type: PduType::Response,
            request_id: req.pdu.request_id,
            error_status: 0,
            error_index: 0,
            varbinds,
        },
    })
    .encode()
}

fn echo_ticks(req: &CommunityMessage) -> Vec<VarBind> {
    req.pdu
        .varbinds
        .iter()
        .map(|vb| VarBind {
            oid: vb.oid.clone(),
            value: Value::TimeTicks(42),
        })
        .collect()
}

async fn client(addr: SocketAddr, timeout_ms: u64, retries: u32) -> Client {
    let mut c = Client::v2c(addr, "public").await.unwrap();
    let mut cfg = ClientConfig::default();
    cfg.timeout = Duration::from_millis(timeout_ms);
    cfg.retries = retries;
    c.set_config(cfg);
    c
}

#[tokio::test]
async fn stray_datagrams_are_ignored() {
    let (addr, _) = fake_agent(Box::new(|_, req| {
        let mut wrong_id = req.clone();
        wrong_id.pdu.request_id = wrong_id.pdu.request_id.wrapping_add(1);
        let mut wrong_community = req.clone();
        wrong_community.community = b"other".to_vec();
        vec![
            b"garbage".to_vec(),
            response(&wrong_id, vec![]),
            response(&wrong_community, echo_ticks(req)),
            // A request (not a response) with the right id.
            Message::V2c(req.clone()).encode(),
            response(req, echo_ticks(req)),
        ]
    }))
    .await;
    let mut c = client(addr, 1000, 0).await;
    let vbs = c.get(&[oid("1.3.6.1.2.1.1.3.0")]).await.unwrap();
    assert_eq!(vbs[0].value, Value::TimeTicks(42));
}

#[tokio::test]
async fn retransmits_and_accepts_late_answer() {
    // Ignores the first transmission, answers the second.
    let (addr, seen) = fake_agent(Box::new(|i, req| {
        if i == 0 {
            vec![]
        } else {
            vec![response(req, echo_ticks(req))]
        }
    }))
    .await;
    let mut c = client(addr, 200, 2).await;
    c.get(&[oid("1.3.6.1.2.1.1.3.0")]).await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn timeout_after_all_retries() {
    let (addr, seen) = fake_agent(Box::new(|_, _| vec![])).await;
    let mut c = client(addr, 100, 2).await;
    let start = std::time::Instant::now();
    let err = c.get(&[oid("1.3.6.1.2.1.1.3.0")]).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { attempts: 3, .. }), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn only_garbage_is_a_decode_error() {
    let (addr, _) = fake_agent(Box::new(|_, _| {
        vec![vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff]]
    }))
    .await;
    let mut c = client(addr, 100, 0).await;
    let err = c.get(&[oid("1.3.6.1.2.1.1.3.0")]).await.unwrap_err();
    assert!(
        matches!(err, Error::Decode(DecodeError::LengthExceedsInput { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn error_status_names_the_varbind() {
    let (addr, _) = fake_agent(Box::new(|_, req| {
        let mut bytes = Message::decode(&response(req, req.pdu.varbinds.clone())).unwrap();
        if let Message::V2c(m) = &mut bytes {
            m.pdu.error_status = 5;
            m.pdu.error_index = 2;
        }
        vec![bytes.encode()]
    }))
    .await;
    let mut c = client(addr, 500, 0).await;
    let err = c
        .get(&[oid("1.3.6.1.2.1.1.3.0"), oid("1.3.6.1.2.1.1.5.0")])
        .await
        .unwrap_err();
    match err {
        Error::Agent {
            status,
            index,
            oid: o,
        } => {
            assert_eq!(status, ErrorStatus::GenErr);
            assert_eq!(index, 2);
            assert_eq!(o, Some(oid("1.3.6.1.2.1.1.5.0")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        Error::Agent {
            status: ErrorStatus::GenErr,
            index: 2,
            oid: Some(oid("1.3.6.1.2.1.1.5.0"))
        }
        .to_string(),
        "agent returned genErr(5) at varbind index 2 (1.3.6.1.2.1.1.5.0)"
    );
}

#[tokio::test]
async fn walk_detects_non_increasing_oids() {
    let (addr, _) = fake_agent(Box::new(|_, req| {
        vec![response(
            req,
            vec![
                VarBind {
                    oid: oid("1.3.6.1.2.1.2.2.1.1.2"),
                    value: Value::Integer(2),
                },
                VarBind {
                    oid: oid("1.3.6.1.2.1.2.2.1.1.1"),
                    value: Value::Integer(1),
                },
            ],
        )]
    }))
    .await;
    let mut c = client(addr, 500, 0).await;
    let err = c.bulk_walk(&oid("1.3.6.1.2.1.2.2")).await.unwrap_err();
    assert!(matches!(err, Error::NonIncreasing { .. }), "{err:?}");

    // An agent that repeats the cursor forever is caught too.
    let (addr, _) = fake_agent(Box::new(|_, req| {
        vec![response(
            req,
            vec![VarBind {
                oid: oid("1.3.6.1.2.1.2.2.1.1.1"),
                value: Value::Integer(1),
            }],
        )]
    }))
    .await;
    let mut c = client(addr, 500, 0).await;
    let err = c.bulk_walk(&oid("1.3.6.1.2.1.2.2")).await.unwrap_err();
    assert!(matches!(err, Error::NonIncreasing { .. }), "{err:?}");
}

/// A table of 10 cells under 1.3.6.1.4.1.99.1, then one OID outside it;
/// honours max-repetitions and answers tooBig above 4.
fn table_agent(end_with_end_of_mib: bool) -> Box<Script> {
    Box::new(move |_, req| {
        let start = req.pdu.varbinds[0].oid.clone();
        let reps = req.pdu.error_index as usize;
        if reps > 4 {
            let mut m = req.clone();
            m.pdu.pdu_type = PduType::Response;
            m.pdu.error_status = 1;
            m.pdu.error_index = 0;
            return vec![Message::V2c(m).encode()];
        }
        let mut all: Vec<VarBind> = (1..=10)
            .map(|i| VarBind {
                oid: oid(&format!("1.3.6.1.4.1.99.1.{i}")),
                value: Value::Gauge32(i),
            })
            .collect();
        all.push(if end_with_end_of_mib {
            VarBind {
                oid: oid("1.3.6.1.4.1.99.1.10"),
                value: Value::EndOfMibView,
            }
        } else {
            VarBind {
                oid: oid("1.3.6.1.4.1.99.2.1"),
                value: Value::Integer(0),
            }
        });
        let rest: Vec<VarBind> = all
            .into_iter()
            .filter(|vb| vb.oid > start)
            .take(reps)
            .collect();
        vec![response(req, rest)]
    })
}

#[tokio::test]
async fn walk_stops_at_subtree_end_and_end_of_mib_view_and_handles_too_big() {
    for eom in [false, true] {
        let (addr, seen) = fake_agent(table_agent(eom)).await;
        let mut c = client(addr, 500, 0).await;
        let mut cfg = c.config().clone();
        cfg.max_repetitions = 16; // tooBig at 16 and 8, works at 4
        c.set_config(cfg);
        let rows = c.bulk_walk(&oid("1.3.6.1.4.1.99.1")).await.unwrap();
        assert_eq!(rows.len(), 10, "end-of-mib {eom}");
        assert_eq!(rows[9], (oid("1.3.6.1.4.1.99.1.10"), Value::Gauge32(10)));
        // 2 tooBig + 3 pages of 4.
        assert_eq!(seen.load(Ordering::SeqCst), 5, "end-of-mib {eom}");
    }
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let (addr, seen) = fake_agent(Box::new(|_, _| vec![])).await;
    let mut c = client(addr, 100, 0).await;
    let mut cfg = c.config().clone();
    cfg.max_message_size = 484;
    c.set_config(cfg);
    let oids: Vec<Oid> = (0..60)
        .map(|i| oid(&format!("1.3.6.1.2.1.2.2.1.10.{i}")))
        .collect();
    let err = c.get(&oids).await.unwrap_err();
    assert!(
        matches!(err, Error::RequestTooLarge { max: 484, .. }),
        "{err:?}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}
