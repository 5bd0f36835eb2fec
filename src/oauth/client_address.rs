//! Who the client is, by address: the peer's own address, or what a trusted
//! proxy says in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list that each proxy extends on the right with the
//! address it received the request from. Anyone can send the header, so only
//! the entries our own proxies added can be believed: reading from the right,
//! the first address that is not one of our proxies is the client. A peer that
//! is not a trusted proxy is the client itself, whatever it sends.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed (`--trusted-proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
}

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`, `fd00::/8`) or bare addresses (one host).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let networks = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("not a CIDR or an IP address: {entry:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            networks: networks.into(),
        })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `address` is one of the trusted proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// The client's address. `forwarded_for` holds the `X-Forwarded-For` header
    /// lines in the order received; `None` for a line that is not text.
    ///
    /// From a trusted peer: the rightmost entry that is not a trusted proxy
    /// itself, or the leftmost if all are. A header that cannot be read where it
    /// matters (an entry that is not an address, a line that is not text) is
    /// malformed, and the peer's own address is used.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl IntoIterator<Item = Option<&'a str>>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let Some(lines) = forwarded_for.into_iter().collect::<Option<Vec<_>>>() else {
            return peer;
        };
        let mut leftmost = None;
        for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
            let Some(address) = parse_hop(entry) else {
                return peer;
            };
            if !self.contains(address) {
                return address;
            }
            leftmost = Some(address);
        }
        leftmost.unwrap_or(peer)
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port
/// (`203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let address = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<IpAddr>().ok())
        })?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn resolve(proxies: &TrustedProxies, peer: &str, lines: &[&str]) -> IpAddr {
        proxies.client_address(ip(peer), lines.iter().map(|line| Some(*line)))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(
            resolve(&none, "127.0.0.1", &["203.0.113.7"]),
            ip("127.0.0.1")
        );
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            resolve(&proxies, "192.0.2.1", &["203.0.113.7"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_rightmost_address_that_is_not_a_proxy() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        // The client sent a made-up first entry; our proxies appended the rest.
        let lines = ["198.51.100.1, 203.0.113.7, 10.1.2.3"];
        assert_eq!(resolve(&proxies, "127.0.0.1", &lines), ip("203.0.113.7"));
        // Several header lines read as one list, in order.
        let lines = ["198.51.100.1", "203.0.113.7", "10.1.2.3,10.9.9.9"];
        assert_eq!(resolve(&proxies, "10.0.0.5", &lines), ip("203.0.113.7"));
        // Ports and brackets are accepted.
        let lines = ["[2001:db8::7]:4711, 10.0.0.9:80"];
        assert_eq!(resolve(&proxies, "10.0.0.5", &lines), ip("2001:db8::7"));
        // Every entry is a proxy: the furthest one is the best we know.
        assert_eq!(
            resolve(&proxies, "10.0.0.5", &["10.0.0.1, 10.0.0.2"]),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(resolve(&proxies, "10.0.0.5", &[]), ip("10.0.0.5"));
    }

    #[test]
    fn a_malformed_header_falls_back_to_the_peer() {
        let proxies = TrustedProxies::parse(&["127.0.0.0/8"]).unwrap();
        for lines in [
            &["not-an-address"][..],
            &["203.0.113.7, "],
            &["203.0.113.7,,127.0.0.2"],
            &[""],
            &["203.0.113.7 198.51.100.1"],
        ] {
            assert_eq!(
                resolve(&proxies, "127.0.0.1", lines),
                ip("127.0.0.1"),
                "{lines:?}"
            );
        }
        // Garbage left of the client's entry is never reached.
        assert_eq!(
            resolve(&proxies, "127.0.0.1", &["garbage, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // A line that is not text.
        let lines = [Some("203.0.113.7"), None];
        assert_eq!(
            proxies.client_address(ip("127.0.0.1"), lines),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let proxies = TrustedProxies::parse(&["127.0.0.1/32"]).unwrap();
        assert_eq!(
            resolve(&proxies, "::ffff:127.0.0.1", &["::ffff:203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn entries_are_cidrs_or_addresses() {
        let proxies = TrustedProxies::parse(&[" 10.1.2.3/8 ", "::1", "fd00::/8"]).unwrap();
        assert!(proxies.contains(ip("10.200.0.1")));
        assert!(proxies.contains(ip("::1")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("11.0.0.1")));
        let err = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["localhost"]).is_err());
        assert!(TrustedProxies::default().is_empty());
    }
}
