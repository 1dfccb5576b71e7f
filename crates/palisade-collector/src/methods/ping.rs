//! The `ping` method: ICMP echo without root.
//!
//! Linux lets an unprivileged process open an ICMP *datagram* socket
//! (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`) when one of its groups is inside
//! `net.ipv4.ping_group_range`; the kernel then fills in the identifier and checksum and
//! only hands the socket the replies to its own requests. When the range does not cover the
//! collector, a raw ICMP socket works with `CAP_NET_RAW` alone. When neither is available
//! the result is `denied` with `lacks: "net.ipv4.ping_group_range or CAP_NET_RAW"`,
//! never an empty result.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use palisade_core::datasource::{Collector, PingValue};
use socket2::{Domain, Protocol, Socket, Type};

use super::{BoxFuture, Method, Task};
use crate::process::{Outcome, RawInstance};

/// What a denied ping lacks.
pub const LACKS: &str = "net.ipv4.ping_group_range or CAP_NET_RAW";

/// The ping method.
#[derive(Debug, Clone, Copy)]
pub struct Ping;

/// Which kind of socket was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// Unprivileged ICMP datagram socket.
    Datagram,
    /// Raw socket (`CAP_NET_RAW`).
    Raw,
}

impl SocketKind {
    /// `datagram` or `raw`, as the privilege report names it.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Datagram => "datagram",
            SocketKind::Raw => "raw",
        }
    }
}

/// Which ICMP (IPv4) socket this process gets, for the privilege report: `datagram` (one of
/// its groups is in `net.ipv4.ping_group_range`), `raw` (`CAP_NET_RAW`), `denied` (neither:
/// every ping result is `denied`) or `unavailable` (another error). Opens and closes one
/// socket.
pub fn icmp_mode() -> &'static str {
    match open_socket(false) {
        Ok((_, kind)) => kind.as_str(),
        Err(Outcome::Denied { .. }) => "denied",
        Err(_) => "unavailable",
    }
}

fn is_denied(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || matches!(e.raw_os_error(), Some(1 | 13))
}

/// Opens an ICMP socket for `v6` or IPv4: datagram first, raw as a fall-back.
pub fn open_socket(v6: bool) -> Result<(Socket, SocketKind), Outcome> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => Ok((s, SocketKind::Datagram)),
        Err(dgram) if is_denied(&dgram) => match Socket::new(domain, Type::RAW, Some(proto)) {
            Ok(s) => Ok((s, SocketKind::Raw)),
            Err(raw) if is_denied(&raw) => Err(Outcome::Denied {
                message: format!(
                    "no ICMP socket: none of the collector's groups is in \
                     net.ipv4.ping_group_range ({dgram}) and raw sockets need CAP_NET_RAW ({raw})"
                ),
                lacks: LACKS.into(),
            }),
            Err(raw) => Err(Outcome::error(format!(
                "cannot open a raw ICMP socket: {raw}"
            ))),
        },
        Err(e) => Err(Outcome::error(format!("cannot open an ICMP socket: {e}"))),
    }
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in data.chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code, checksum (IPv4 only; the kernel computes ICMPv6's),
/// identifier, sequence, then the 8-byte token.
pub fn echo_request(v6: bool, id: u16, seq: u16, token: &[u8; 8]) -> Vec<u8> {
    let mut p = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(token);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Whether `packet` (as received; a raw IPv4 socket includes the IP header) is the echo
/// reply to `seq` with `token`.
pub fn is_reply(packet: &[u8], v6: bool, kind: SocketKind, seq: u16, token: &[u8; 8]) -> bool {
    let icmp = if !v6 && kind == SocketKind::Raw {
        let ihl = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
        packet.get(ihl..).unwrap_or_default()
    } else {
        packet
    };
    let reply_type = if v6 { 129 } else { 0 };
    icmp.len() >= 16
        && icmp[0] == reply_type
        && icmp[1] == 0
        && icmp[6..8] == seq.to_be_bytes()
        && icmp[8..16] == token[..]
}

/// Round-trip times in ms of `count` echo requests (`None` for each lost one).
async fn ping(addr: IpAddr, count: u32, timeout: Duration) -> Result<Vec<Option<f64>>, Outcome> {
    let v6 = addr.is_ipv6();
    let (socket, kind) = open_socket(v6)?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Outcome::error(format!("ICMP socket: {e}")))?;
    let std_socket: std::net::UdpSocket = socket.into();
    let sock = tokio::net::UdpSocket::from_std(std_socket)
        .map_err(|e| Outcome::error(format!("ICMP socket: {e}")))?;
    let target = SocketAddr::new(addr, 0);
    let token: [u8; 8] = rand::random();
    let id: u16 = rand::random();
    let mut rtts = Vec::with_capacity(count as usize);
    let mut buf = vec![0u8; 2048];
    for seq in 1..=count {
        let seq = u16::try_from(seq).unwrap_or(u16::MAX);
        let packet = echo_request(v6, id, seq, &token);
        let start = Instant::now();
        if let Err(e) = sock.send_to(&packet, target).await {
            if is_denied(&e) {
                return Err(Outcome::Denied {
                    message: format!("sending an ICMP echo to {addr}: {e}"),
                    lacks: LACKS.into(),
                });
            }
            rtts.push(None);
            continue;
        }
        let deadline = start + timeout;
        let mut got = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, from))) => {
                    if from.ip() == addr && is_reply(&buf[..n], v6, kind, seq, &token) {
                        got = Some(start.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                }
                Ok(Err(_)) | Err(_) => break,
            }
        }
        rtts.push(got);
    }
    Ok(rtts)
}

/// Loss and round-trip statistics.
pub fn summarize(rtts: &[Option<f64>]) -> Vec<(PingValue, f64)> {
    let got: Vec<f64> = rtts.iter().flatten().copied().collect();
    let sent = rtts.len().max(1) as f64;
    let mut out = vec![(
        PingValue::LossPercent,
        100.0 * (rtts.len() - got.len()) as f64 / sent,
    )];
    if !got.is_empty() {
        out.push((
            PingValue::RttAvgMs,
            got.iter().sum::<f64>() / got.len() as f64,
        ));
        out.push((
            PingValue::RttMinMs,
            got.iter().copied().fold(f64::INFINITY, f64::min),
        ));
        out.push((
            PingValue::RttMaxMs,
            got.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ));
    }
    out
}

async fn resolve(host: &str) -> Option<IpAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        return Some(ip);
    }
    let mut addrs = tokio::net::lookup_host((bare, 0)).await.ok()?;
    addrs.next().map(|a| a.ip())
}

impl Method for Ping {
    fn collect<'a>(&'a self, task: &'a Task) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Collector::Ping(c) = &task.datasource.collector else {
                return Outcome::error("not a ping datasource");
            };
            let host = task.device.address();
            let Some(addr) = resolve(host).await else {
                return Outcome::error(format!("cannot resolve `{host}`"));
            };
            let timeout = Duration::from_millis(u64::from(c.timeout_ms));
            let rtts = match ping(addr, c.count.max(1), timeout).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            let stats = summarize(&rtts);
            let values = c
                .values
                .iter()
                .filter_map(|(dp, what)| {
                    stats
                        .iter()
                        .find(|(k, _)| k == what)
                        .map(|(_, v)| (dp.clone(), *v))
                })
                .collect();
            Outcome::Instances(vec![RawInstance {
                values,
                ..RawInstance::default()
            }])
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_packets() {
        // RFC 1071 example words.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        let p = echo_request(false, 0x1234, 7, b"abcdefgh");
        assert_eq!(p[0], 8);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        let mut reply = p.clone();
        reply[0] = 0;
        assert!(is_reply(
            &reply,
            false,
            SocketKind::Datagram,
            7,
            b"abcdefgh"
        ));
        assert!(!is_reply(
            &reply,
            false,
            SocketKind::Datagram,
            8,
            b"abcdefgh"
        ));
        assert!(!is_reply(
            &reply,
            false,
            SocketKind::Datagram,
            7,
            b"abcdefgX"
        ));
        let mut raw = vec![0x45u8; 20];
        raw.extend_from_slice(&reply);
        assert!(is_reply(&raw, false, SocketKind::Raw, 7, b"abcdefgh"));
        let v6 = echo_request(true, 1, 2, b"12345678");
        assert_eq!(v6[0], 128);
    }

    #[test]
    fn stats() {
        let s = summarize(&[Some(1.0), None, Some(3.0), None]);
        assert_eq!(s[0], (PingValue::LossPercent, 50.0));
        assert!(s.contains(&(PingValue::RttAvgMs, 2.0)));
        assert!(s.contains(&(PingValue::RttMinMs, 1.0)));
        assert!(s.contains(&(PingValue::RttMaxMs, 3.0)));
        let none = summarize(&[None, None]);
        assert_eq!(none, vec![(PingValue::LossPercent, 100.0)]);
    }

    #[tokio::test]
    async fn loopback_answers_or_is_denied() {
        // Depends on the machine: answered (ping_group_range or CAP_NET_RAW) or denied,
        // naming what is missing; never an error or silence.
        match ping("127.0.0.1".parse().unwrap(), 2, Duration::from_millis(1000)).await {
            Ok(rtts) => assert_eq!(rtts.iter().flatten().count(), 2, "{rtts:?}"),
            Err(Outcome::Denied { lacks, .. }) => assert_eq!(lacks, LACKS),
            Err(other) => panic!("{other:?}"),
        }
    }
}
