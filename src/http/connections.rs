//! The API's connections. Per client address they are bounded
//! (`POS_MAX_CONNECTIONS_PER_ADDRESS`): one host cannot take every
//! connection the server keeps (`POS_MAX_CONNECTIONS`) and so stop every
//! other till. A connection over the bound is shut the moment it is
//! accepted, before a byte of it is read. IPv6 clients count by their
//! prefix (`POS_AUTH_IPV6_PREFIX`), as for the failed-authentication
//! budget: one host holds a whole /64. The proxies in
//! `POS_TRUSTED_PROXIES` are not bounded: every till behind them shares
//! their address.

use std::any::Any;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::dev::Extensions;

use crate::client_address::{address_group, TrustedProxies};
use crate::metrics::Metrics;

/// The open connections of each client address.
pub struct ConnectionLimit {
    per_address: usize,
    trusted: TrustedProxies,
    ipv6_prefix: u8,
    /// Addresses with an open connection (an entry goes with its last one),
    /// so never more entries than connections the server holds.
    open: Mutex<HashMap<IpAddr, usize>>,
    metrics: Metrics,
}

impl ConnectionLimit {
    pub fn new(
        per_address: usize,
        trusted: TrustedProxies,
        ipv6_prefix: u8,
        metrics: Metrics,
    ) -> Arc<ConnectionLimit> {
        Arc::new(ConnectionLimit {
            per_address,
            trusted,
            ipv6_prefix,
            open: Mutex::default(),
            metrics,
        })
    }

    /// actix-web's `on_connect`: counts the new connection against its
    /// address (the count goes when the connection's data is dropped, with
    /// the connection), or shuts it at once.
    pub fn on_connect(self: &Arc<Self>, connection: &dyn Any, data: &mut Extensions) {
        let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let Ok(peer) = stream.peer_addr() else {
            return;
        };
        if self.trusted.trusts(peer.ip()) {
            return;
        }
        match self.admit(peer.ip()) {
            Some(open) => {
                data.insert(open);
            }
            None => {
                self.metrics.connections_refused.inc();
                // Nothing is read or answered: the dispatcher sees the end
                // of the stream and drops the connection.
                let _ = socket2::SockRef::from(stream).shutdown(Shutdown::Both);
            }
        }
    }

    /// A place for one more connection of `ip`, if it has one left.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<OpenConnection> {
        let group = address_group(ip, self.ipv6_prefix);
        let mut open = self.open();
        let count = open.entry(group).or_insert(0);
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            limit: self.clone(),
            group,
        })
    }

    fn open(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The map stays consistent whatever panicked while holding it.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One counted connection; gives its place back when the connection ends.
struct OpenConnection {
    limit: Arc<ConnectionLimit>,
    group: IpAddr,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self.limit.open();
        if let Some(count) = open.get_mut(&self.group) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_address: usize) -> Arc<ConnectionLimit> {
        ConnectionLimit::new(per_address, TrustedProxies::default(), 64, Metrics::new())
    }

    #[test]
    fn an_address_gets_its_places_back_as_its_connections_end() {
        let limit = limit(2);
        let ip: IpAddr = "192.0.2.1".parse().expect("an address");
        let first = limit.admit(ip).expect("room");
        let second = limit.admit(ip).expect("room");
        assert!(limit.admit(ip).is_none());
        assert!(limit
            .admit("192.0.2.2".parse().expect("an address"))
            .is_some());
        drop(first);
        let third = limit.admit(ip).expect("a place was given back");
        drop((second, third));
        assert!(limit.open().is_empty(), "no entry outlives its connections");
    }

    #[test]
    fn an_ipv6_host_counts_as_its_prefix() {
        let limit = limit(1);
        let _held = limit.admit("2001:db8::1".parse().expect("an address"));
        assert!(limit
            .admit("2001:db8::ffff:1".parse().expect("an address"))
            .is_none());
        assert!(limit
            .admit("2001:db8:0:1::1".parse().expect("an address"))
            .is_some());
    }
}
