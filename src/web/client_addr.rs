//! Which address a request came from, for throttling sign-in attempts.
//!
//! `X-Forwarded-For` and `X-Real-IP` are believed only when the TCP peer is one of
//! `TAGCAST_TRUSTED_PROXIES`: anyone else could write any address there and so escape the
//! per-address lockout, or lock a victim's address out. Pure: the web layer passes the headers in.

use std::net::IpAddr;

use ipnet::IpNet;

/// `TAGCAST_TRUSTED_PROXIES`: the proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Why a `TAGCAST_TRUSTED_PROXIES` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyListError {
    /// The first entry that is neither an address nor a network, as written (trimmed).
    #[error("`{entry}` is neither an IP address nor a CIDR network")]
    NotAnAddress { entry: String },
}

impl TrustedProxies {
    /// A comma-separated list of addresses (`10.0.0.5`) and networks (`10.0.0.0/8`, `::1/128`).
    ///
    /// # Errors
    /// [`ProxyListError`]: the first entry that is neither.
    pub fn parse(list: &str) -> Result<Self, ProxyListError> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ProxyListError::NotAnAddress { entry: entry.to_owned() })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer itself unless it is a trusted proxy; behind one, the
    /// right-most `X-Forwarded-For` address that is not a trusted proxy (the left part is
    /// whatever the client chose to send). `forwarded_for` holds every `X-Forwarded-For` header,
    /// read lossily: when there is one but it names no usable address, the client is the proxy
    /// itself, never `X-Real-IP` (the client could have written that too, and made the other
    /// header unreadable on purpose). `X-Real-IP` only when there is no `X-Forwarded-For` at all.
    pub fn client_ip<S: AsRef<str>>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: &[S],
        real_ip: Option<&str>,
    ) -> Option<IpAddr> {
        let peer = peer.map(canonical);
        let Some(proxy) = peer.filter(|p| self.trusts(*p)) else {
            return peer;
        };
        if forwarded_for.is_empty() {
            return real_ip.and_then(|r| parse_hop(r.trim())).filter(|ip| !self.trusts(*ip)).or(Some(proxy));
        }
        let mut hops = forwarded_for.iter().flat_map(|h| h.as_ref().split(',')).map(str::trim).collect::<Vec<_>>();
        hops.reverse();
        for hop in hops {
            // One unreadable hop means the chain cannot be followed further to the left.
            let Some(ip) = parse_hop(hop) else { return Some(proxy) };
            if !self.trusts(ip) {
                return Some(ip);
            }
        }
        Some(proxy)
    }
}

/// An IPv4 client seen through an IPv6 socket (`::ffff:1.2.3.4`) is the same client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`, as proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn parses_addresses_and_networks_and_names_a_bad_entry() {
        let proxies = TrustedProxies::parse(" 127.0.0.1, 10.0.0.0/8 ,::1, fd00::/8").expect("valid");
        assert!(proxies.trusts(ip("10.200.3.4")));
        assert!(proxies.trusts(ip("127.0.0.1")));
        assert!(!proxies.trusts(ip("127.0.0.2")));
        assert!(proxies.trusts(ip("fd12::1")));
        assert!(proxies.trusts(ip("::ffff:10.1.1.1")), "an IPv4-mapped peer is its IPv4 address");
        assert!(TrustedProxies::parse("").expect("empty is valid").is_empty());
        let error = TrustedProxies::parse("10.0.0.1, localhost").expect_err("a name is not an address");
        assert_eq!(error, ProxyListError::NotAnAddress { entry: "localhost".into() });
        assert_eq!(error.to_string(), "`localhost` is neither an IP address nor a CIDR network");
        let error = TrustedProxies::parse("10.0.0.0/33").expect_err("no /33 in IPv4");
        assert_eq!(error, ProxyListError::NotAnAddress { entry: "10.0.0.0/33".into() });
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let proxies = TrustedProxies::parse("10.0.0.1").expect("valid");
        let peer = Some(ip("203.0.113.9"));
        assert_eq!(proxies.client_ip(peer, &["198.51.100.1"], Some("198.51.100.2")), peer);
        assert_eq!(TrustedProxies::default().client_ip(peer, &["198.51.100.1"], None), peer);
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let peer = Some(ip("10.0.0.1"));
        // The client wrote "1.1.1.1" itself; nginx appended the address it saw.
        assert_eq!(proxies.client_ip(peer, &["1.1.1.1, 198.51.100.7"], None), Some(ip("198.51.100.7")));
        // Two proxies of ours in a row.
        assert_eq!(proxies.client_ip(peer, &["1.1.1.1, 198.51.100.7, 10.0.0.2"], None), Some(ip("198.51.100.7")));
        // Several headers are one list, in order.
        assert_eq!(proxies.client_ip(peer, &["1.1.1.1", "198.51.100.8"], None), Some(ip("198.51.100.8")));
        assert_eq!(proxies.client_ip(peer, &["[2001:db8::5]:443"], None), Some(ip("2001:db8::5")));
        assert_eq!(proxies.client_ip(peer, &["198.51.100.9:5555"], None), Some(ip("198.51.100.9")));
    }

    #[test]
    fn behind_a_trusted_proxy_without_a_usable_forwarded_for_falls_back() {
        let proxies = TrustedProxies::parse("10.0.0.1").expect("valid");
        let peer = Some(ip("10.0.0.1"));
        let none: &[&str] = &[];
        assert_eq!(proxies.client_ip(peer, none, Some("198.51.100.3")), Some(ip("198.51.100.3")));
        assert_eq!(proxies.client_ip(peer, none, None), peer);
        assert_eq!(proxies.client_ip(peer, &["garbage"], Some("198.51.100.3")), peer);
        assert_eq!(proxies.client_ip(peer, &["10.0.0.1"], Some("not an ip")), peer);
    }

    #[test]
    fn a_forwarded_for_that_names_no_usable_address_is_the_proxy_never_the_clients_real_ip() {
        let proxies = TrustedProxies::parse("10.0.0.1").expect("valid");
        let peer = Some(ip("10.0.0.1"));
        // The client made the header unreadable (a byte >= 0x80, read lossily) and chose X-Real-IP.
        let lossy = String::from_utf8_lossy(b"\xff198.51.100.4").into_owned();
        assert_eq!(proxies.client_ip(peer, &[lossy], Some("198.51.100.3")), peer);
        assert_eq!(proxies.client_ip(peer, &[""], Some("198.51.100.3")), peer);
        assert_eq!(proxies.client_ip(peer, &["10.0.0.1"], Some("198.51.100.3")), peer);
        // nginx appends what it saw to whatever the client sent: that right-most hop still counts.
        let appended = String::from_utf8_lossy(b"\xff1.1.1.1, 198.51.100.7").into_owned();
        assert_eq!(proxies.client_ip(peer, &[appended], Some("198.51.100.3")), Some(ip("198.51.100.7")));
    }
}
