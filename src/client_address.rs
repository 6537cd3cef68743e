//! Who the client is, for the failed-authentication budget per address.
//! Directly connected, it is the peer. Behind our own HAProxy (or another
//! proxy the operator lists in `POS_TRUSTED_PROXIES`), every till would
//! otherwise share the proxy's address, so one key guesser would block the
//! first request of every till behind it. From a trusted peer only, the
//! address is read from `X-Forwarded-For`, right to left: the rightmost
//! entry that is not itself a trusted proxy is the client (entries further
//! left were written by the client and prove nothing). From any other peer
//! the header is ignored.

use std::fmt;
use std::net::IpAddr;

use actix_web::http::header::HeaderValue;

/// `X-Forwarded-For` entries looked at, at most (proxies in a row).
const MAX_HOPS: usize = 16;

/// Addresses or ranges (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`) whose
/// `X-Forwarded-For` is believed. Empty by default: nothing is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Range>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    base: IpAddr,
    prefix: u8,
}

impl Range {
    fn parse(text: &str) -> Option<Range> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let base: IpAddr = addr.trim().parse().ok()?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse().ok().filter(|p| *p <= bits)?,
            None => bits,
        };
        Some(Range { base, prefix })
    }

    fn contains(self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                same_prefix(b.to_bits().into(), a.to_bits().into(), self.prefix, 32)
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                same_prefix(b.to_bits(), a.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `width` bits of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let shift = width - u32::from(prefix);
    shift >= width || (a ^ b) >> shift == 0
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

impl TrustedProxies {
    /// A comma-separated list; the error names the entry that is not an
    /// address or range.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let entries = text.split(',').map(str::trim).filter(|e| !e.is_empty());
        let ranges = entries
            .map(|e| Range::parse(e).ok_or_else(|| format!("not an address or range: {e:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies(ranges))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|r| r.contains(ip))
    }

    /// The client's address, given the peer's and the request's
    /// `X-Forwarded-For` values (in header order).
    pub fn client<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    ) -> Option<IpAddr> {
        let mut client = peer?.to_canonical();
        if !self.trusts(client) {
            return Some(client);
        }
        // Raw bytes, entry by entry: a byte that is not visible ASCII (a
        // client can send one, and a proxy that merges header lines keeps
        // it) spoils only its own entry, never the whole header.
        let entries = forwarded
            .rev()
            .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','))
            .take(MAX_HOPS);
        for entry in entries {
            // An entry a trusted proxy did not write well is where belief
            // stops: the last proxy that wrote is then the client.
            let Some(ip) = std::str::from_utf8(entry).ok().and_then(forwarded_ip) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, or with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:5678`).
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Whose budget an address counts against: an IPv4 address itself, or
/// the first `ipv6_prefix` bits of an IPv6 one (one host holds a /64).
pub fn address_group(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let keep = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - keep).unwrap_or(0);
            IpAddr::V6((v6.to_bits() & mask).into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// Asserts the client `TrustedProxies::client` finds for `peer` sending
    /// `headers` (one `X-Forwarded-For` line each) with `trusted` listed.
    fn assert_client(trusted: &str, peer: &str, headers: &[&str], want: &str) {
        let values: Vec<HeaderValue> = headers
            .iter()
            .map(|h| HeaderValue::from_str(h).expect("test header"))
            .collect();
        let found = TrustedProxies::parse(trusted)
            .expect("test list")
            .client(Some(ip(peer)), values.iter());
        assert_eq!(found, Some(ip(want)), "{trusted:?} {peer} {headers:?}");
    }

    #[test]
    fn lists_parse_and_bad_entries_are_named() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 127.0.0.1 ,fd00::/8,").expect("valid");
        assert_eq!(t.to_string(), "10.0.0.0/8,127.0.0.1/32,fd00::/8");
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "haproxy",
            "10.0.0.1/x",
            "1.2.3.4:80",
        ] {
            let e = TrustedProxies::parse(bad).expect_err(bad);
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn ranges_match_by_prefix() {
        let t = TrustedProxies::parse("10.1.0.0/16,fd00::/8,192.168.1.7,0.0.0.0/0").expect("valid");
        assert!(t.0[0].contains(ip("10.1.255.3")));
        assert!(!t.0[0].contains(ip("10.2.0.1")));
        assert!(t.0[1].contains(ip("fd12::1")));
        assert!(!t.0[1].contains(ip("fe80::1")));
        assert!(t.0[2].contains(ip("192.168.1.7")));
        assert!(!t.0[2].contains(ip("192.168.1.8")));
        assert!(t.0[3].contains(ip("8.8.8.8")));
        assert!(!t.0[3].contains(ip("::1")));
        // A v4 peer seen on a v6 socket is still the v4 address.
        assert!(t.0[0].contains(ip("::ffff:10.1.0.9")));
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        assert_client("", "203.0.113.9", &["10.9.9.9"], "203.0.113.9");
        assert_client("10.0.0.0/8", "203.0.113.9", &["10.9.9.9"], "203.0.113.9");
        assert_client("10.0.0.0/8", "10.0.0.2", &["203.0.113.9"], "203.0.113.9");
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client_whatever_the_client_wrote() {
        let proxy = |headers: &[&str], want| assert_client("10.0.0.0/8", "10.0.0.2", headers, want);
        // The client wrote 1.1.1.1 itself; our proxy appended its real address.
        proxy(&["1.1.1.1, 203.0.113.9"], "203.0.113.9");
        // Two proxies in a row, across two header lines.
        proxy(&["1.1.1.1, 203.0.113.9", "10.0.0.3"], "203.0.113.9");
        // Ports and brackets, as some proxies write them.
        proxy(&["[2001:db8::5]:4711"], "2001:db8::5");
        proxy(&["198.51.100.4:80"], "198.51.100.4");
    }

    #[test]
    fn without_a_usable_header_the_last_proxy_is_the_client() {
        let proxy = |headers: &[&str], want| assert_client("10.0.0.0/8", "10.0.0.2", headers, want);
        proxy(&[], "10.0.0.2");
        proxy(&["unknown"], "10.0.0.2");
        proxy(&["203.0.113.9, garbage"], "10.0.0.2");
        proxy(&["garbage, 10.0.0.3"], "10.0.0.3");
        // A byte no proxy writes spoils its own entry only: the entries
        // our proxies appended after it still name the client.
        let values = [HeaderValue::from_bytes(b"\xff1.1.1.1, 203.0.113.9").expect("bytes")];
        let found = TrustedProxies::parse("10.0.0.0/8")
            .expect("list")
            .client(Some(ip("10.0.0.2")), values.iter());
        assert_eq!(found, Some(ip("203.0.113.9")));
        let values = [HeaderValue::from_bytes(b"203.0.113.9, 10.0.0.3\xff").expect("bytes")];
        let found = TrustedProxies::parse("10.0.0.0/8")
            .expect("list")
            .client(Some(ip("10.0.0.2")), values.iter());
        assert_eq!(
            found,
            Some(ip("10.0.0.2")),
            "an unreadable entry stops the walk there"
        );
        // Only MAX_HOPS entries are read: a client behind 40 proxies is
        // never reached, the last proxy read stands in for it.
        let many = format!("203.0.113.9,{}", vec!["10.0.0.4"; 40].join(","));
        proxy(&[many.as_str()], "10.0.0.4");
    }

    #[test]
    fn an_ipv6_host_counts_as_its_prefix_and_ipv4_as_itself() {
        let ip = |s: &str| -> IpAddr { s.parse().expect("test address") };
        let a = address_group(ip("2001:db8:1:2:aaaa::1"), 64);
        assert_eq!(a, address_group(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64));
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, address_group(ip("2001:db8:1:3::1"), 64));
        assert_eq!(address_group(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(address_group(ip("2001:db8::1"), 1), ip("::"));
        assert_eq!(address_group(ip("203.0.113.9"), 64), ip("203.0.113.9"));
        assert_eq!(
            address_group(ip("::ffff:203.0.113.9"), 64),
            ip("203.0.113.9")
        );
    }
}
