//! Which address a request came from.
//!
//! The source is the socket peer. `X-Forwarded-For` counts only when the peer is one of the
//! configured trusted proxies; then the right-most address that is not itself a trusted proxy
//! is the client (entries further left can be forged by the client).
//!
//! ```
//! use palisade_core::client_ip::client_ip;
//! let peer = "10.0.0.5".parse().unwrap();
//! let trusted = vec!["10.0.0.0/8".parse().unwrap()];
//! assert_eq!(client_ip(peer, Some("1.2.3.4, 10.0.0.9"), &trusted).to_string(), "1.2.3.4");
//! assert_eq!(client_ip(peer, Some("1.2.3.4"), &[]).to_string(), "10.0.0.5");
//! ```

use ipnet::IpNet;
use std::net::IpAddr;

/// The client address of a request from `peer` carrying `forwarded_for`.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for part in header.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => {
                let ip = canonical(ip);
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            client_ip(local, Some("203.0.113.9"), &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(client_ip(remote, Some("203.0.113.9"), &trusted), remote);
        assert_eq!(client_ip(local, Some("garbage"), &trusted), local);
        assert_eq!(client_ip(local, None, &trusted), local);
        assert_eq!(
            client_ip(local, Some("6.6.6.6, 203.0.113.9, 127.0.0.2"), &trusted).to_string(),
            "203.0.113.9"
        );
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(mapped, None, &[]).to_string(), "127.0.0.1");
    }
}
