//! Failed authentications, limited per client address (an IPv6 client
//! by its /64: one host holds all of it). An address that went over its
//! budget is turned away before any look-up until the limiter would let it
//! in again, so guessing keys is slow and cannot load MySQL; a key this
//! server has proven keeps working from that address (also once its cache
//! entry expired, or was pushed out by a flood of unknown ids), and many
//! tills behind one address (a NAT, a proxy) can all make their first
//! request at once, since a valid key never counts against the budget. The
//! limiter remembers at most [`MAX_ADDRESSES`] addresses; past that, the
//! failures of every address share one budget.

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Instant;

use dashmap::DashMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{wait, AuthError};
use crate::client_address::address_group;
use crate::metrics::Metrics;

/// Addresses (or IPv6 prefixes) the failure limiter tracks at most.
pub const MAX_ADDRESSES: usize = 100_000;
/// The one budget of all failures once [`MAX_ADDRESSES`] are tracked.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::BROADCAST);

/// The failure budgets of client addresses.
pub(super) struct Failures {
    ipv6_prefix: u8,
    /// Failures per client address.
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses the limiter refused, until it would take them again:
    /// turned away before a look-up. Entries expire; housekeeping drops
    /// them.
    blocked: DashMap<IpAddr, Instant>,
    metrics: Metrics,
}

impl Failures {
    /// `per_second` failures per address, in bursts of five times that.
    pub(super) fn new(per_second: NonZeroU32, ipv6_prefix: u8, metrics: Metrics) -> Failures {
        let burst = NonZeroU32::new(per_second.get().saturating_mul(5)).unwrap_or(per_second);
        Failures {
            ipv6_prefix,
            per_address: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            blocked: DashMap::new(),
            metrics,
        }
    }

    /// Whose budget a failure from `ip` counts against: the address (IPv6:
    /// its prefix), or the shared one once the limiter is full.
    fn budget_of(&self, ip: IpAddr) -> IpAddr {
        if self.per_address.len() >= MAX_ADDRESSES {
            return OVERFLOW;
        }
        address_group(ip, self.ipv6_prefix)
    }

    /// Counts a failure against `peer`: `Unauthorized`, or `RateLimited`
    /// once the address has failed too often (then it is blocked until the
    /// limiter would take it again).
    pub(super) fn failed(&self, peer: IpAddr) -> AuthError {
        let peer = self.budget_of(peer);
        if peer == OVERFLOW {
            self.metrics.auth_address_overflow.inc();
        }
        match self.per_address.check_key(&peer) {
            Ok(_) => AuthError::Unauthorized,
            Err(not_until) => {
                let wait = wait(not_until);
                self.blocked.insert(peer, Instant::now() + wait);
                AuthError::RateLimited(wait)
            }
        }
    }

    pub(super) fn still_blocked(&self, peer: IpAddr) -> Result<(), AuthError> {
        let until = self.blocked.get(&self.budget_of(peer)).map(|u| *u);
        match until.and_then(|u| u.checked_duration_since(Instant::now())) {
            Some(left) if !left.is_zero() => Err(AuthError::RateLimited(left)),
            _ => Ok(()),
        }
    }

    /// Forgets addresses whose budget is full again and blocks that ended.
    pub(super) fn housekeeping(&self) {
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
        self.blocked.shrink_to_fit();
        self.per_address.retain_recent();
        self.per_address.shrink_to_fit();
        self.metrics
            .auth_addresses
            .set(self.per_address.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_limiter_remembers_at_most_max_addresses() {
        let metrics = Metrics::new();
        let failures = Failures::new(NonZeroU32::MIN, 64, metrics.clone());
        let sprayed = MAX_ADDRESSES as u32 + 1_000;
        for i in 0..sprayed {
            failures.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        }
        let tracked = failures.per_address.len();
        assert!(tracked <= MAX_ADDRESSES + 1, "{tracked}");
        assert!(metrics.auth_address_overflow.get() >= 1_000);
        // Past the bound, a new address is over the shared budget at once.
        let late = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert!(matches!(failures.failed(late), AuthError::RateLimited(_)));
    }
}
