//! Webhooks: a tenant's endpoints that receive its events, what a target
//! may be (no loopback, private or link-local address unless allowed:
//! the service must not be a way into its own network), and the record of
//! each delivery attempt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{EventType, TenantId, Timestamp};

/// Endpoints one tenant may have.
pub const MAX_WEBHOOKS_PER_TENANT: usize = 10;
/// Longest URL of an endpoint.
pub const MAX_WEBHOOK_URL: usize = 2048;

/// What a deployment lets webhooks target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetRules {
    pub allow_private: bool,
    pub allow_http: bool,
}

/// A webhook target: `https` (or `http` where allowed), a host, no
/// credentials; its addresses are checked when it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    pub fn parse(text: &str, rules: TargetRules) -> Result<WebhookUrl, &'static str> {
        if text.len() > MAX_WEBHOOK_URL {
            return Err("must be at most 2048 characters");
        }
        let url = url::Url::parse(text).map_err(|_| "must be an absolute URL")?;
        match url.scheme() {
            "https" => {}
            "http" if rules.allow_http => {}
            _ => return Err("must be an https:// URL"),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password");
        }
        let Some(host) = url.host() else {
            return Err("must name a host");
        };
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            if !reachable(ip, rules) {
                return Err(PRIVATE_TARGET);
            }
        }
        Ok(WebhookUrl(url))
    }

    /// A URL read back from the store (it passed the rules when made).
    pub fn stored(text: &str) -> Option<WebhookUrl> {
        url::Url::parse(text).ok().map(WebhookUrl)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host to resolve and the port to connect to.
    pub fn host_and_port(&self) -> Option<(String, u16)> {
        let host = match self.0.host()? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        Some((host, self.0.port_or_known_default()?))
    }
}

/// Why a target's address is refused.
pub const PRIVATE_TARGET: &str = "must not resolve to a loopback, private or link-local address";

/// Whether a webhook may connect to `ip` under `rules`.
pub fn reachable(ip: IpAddr, rules: TargetRules) -> bool {
    rules.allow_private || is_public(ip)
}

/// Not loopback, private, link-local, shared (CGNAT), unspecified,
/// broadcast, multicast or documentation; IPv4 inside IPv6 as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// A new endpoint: where, and which events (at least one type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: WebhookUrl,
    pub types: Vec<EventType>,
}

/// An endpoint as stored (its secret apart: shown once, when made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: u64,
    pub tenant: TenantId,
    pub url: WebhookUrl,
    pub types: Vec<EventType>,
    /// The last event delivered (or skipped, not being of its types).
    pub delivered_seq: u64,
    /// Since when its next event keeps failing.
    pub failing_since: Option<Timestamp>,
    /// Retries stopped (72 h of failures); a manual retry resumes it.
    pub failed: bool,
    pub created_at: Timestamp,
}

impl Webhook {
    pub fn wants(&self, kind: EventType) -> bool {
        self.types.contains(&kind)
    }
}

/// Types as stored (`a,b`), and back.
pub fn types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn types_from_text(text: &str) -> Vec<EventType> {
    text.split(',').filter_map(EventType::parse).collect()
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: u64,
    pub webhook: u64,
    pub event_seq: u64,
    pub attempted_at: Timestamp,
    /// The receiver's HTTP status; `None` when it gave none.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u32,
}

impl Delivery {
    /// A 2xx answer.
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetRules = TargetRules {
        allow_private: false,
        allow_http: false,
    };

    #[test]
    fn targets_are_https_public_and_without_credentials_unless_allowed() {
        assert!(WebhookUrl::parse("https://hooks.example.com/pos?x=1", STRICT).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:192.168.0.1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "/relative",
        ] {
            assert!(WebhookUrl::parse(bad, STRICT).is_err(), "{bad} was taken");
        }
        let open = TargetRules {
            allow_private: true,
            allow_http: true,
        };
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", open).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(MAX_WEBHOOK_URL));
        assert!(WebhookUrl::parse(&long, open).is_err());
    }

    #[test]
    fn public_addresses_are_those_outside_every_local_range() {
        for public in ["8.8.8.8", "2a00:1450:4001::1", "100.128.0.1", "172.32.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for local in [
            "172.16.5.4",
            "192.168.1.1",
            "fc00::1",
            "::",
            "224.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(local.parse().unwrap()), "{local}");
        }
    }
}
