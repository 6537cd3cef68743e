//! Who may do what. Every `/v1/...` request carries `Authorization: Bearer
//! pos_<keyid>_<secret>`; the key is checked from a bounded in-memory cache
//! (a miss is one read on the lookup actor's own pool, never through the
//! persistence actors, and concurrent misses for one key share it), then
//! against the role table ([`policy`]), then against its rate limit.
//!
//! Revocations reach every server within two seconds: each polls the
//! database once a second for keys revoked since its last poll (with an
//! overlap, so a revocation that commits late, or a cache fill that raced
//! it, is still caught on the next poll) and drops them from its cache.
//!
//! Failed authentications are limited per client address. An address that
//! went over its budget is turned away before any look-up until the
//! limiter would let it in again, so guessing keys is slow and cannot load
//! MySQL; keys already in the cache keep working from that address, and
//! many tills behind one address (a NAT, a proxy) can all make their first
//! request at once, since a valid key never counts against the budget.

mod key;
mod policy;

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix::Addr;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::future::Cache;
use subtle::ConstantTimeEq;

pub use key::{NewKey, Token, MAX_KEY_ID_LEN};
pub use policy::{permits, Operation, PathIds};

use crate::actors::lookup::{self, FindKey, LookupActor, LookupError, RevokedSince};
use crate::domain::{ErrorCode, Scope, SecretHash};

/// Keys (known and unknown ids) kept in memory.
const CACHE_CAPACITY: u64 = 100_000;
/// A cached answer is read again after this long even if nothing revoked it.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// How often the servers ask for new revocations.
pub const REVOCATION_POLL: Duration = Duration::from_secs(1);
/// How far back each poll looks before the previous one (commit delays).
const REVOCATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(3);
/// How often idle rate-limit states are forgotten.
const LIMITER_HOUSEKEEPING: Duration = Duration::from_secs(10);

/// Rate limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per second per key, and the burst above it.
    pub per_key: NonZeroU32,
    pub per_key_burst: NonZeroU32,
    /// Failed authentications per second per client address.
    pub failures_per_address: NonZeroU32,
}

/// A key that passed the check.
#[derive(Debug)]
pub struct CheckedKey {
    pub id: Arc<str>,
    pub scope: Scope,
    hash: SecretHash,
    /// The secret, once a request proved it against `hash`: later tokens
    /// are compared to it (constant time) instead of hashed again, which
    /// was half of what authentication cost a request. It lives only in
    /// this process's memory, where every request's token passes anyway;
    /// the database keeps only the hash.
    proven: OnceLock<Box<str>>,
}

impl CheckedKey {
    fn accepts(&self, secret: &str) -> bool {
        if let Some(proven) = self.proven.get() {
            return proven.as_bytes().ct_eq(secret.as_bytes()).into();
        }
        let ok = self.hash.matches(secret);
        if ok {
            let _ = self.proven.set(secret.into());
        }
        ok
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a valid API key is required")]
    Unauthorized,
    #[error("this key may not do that")]
    Forbidden,
    #[error("too many requests; retry after {0:?}")]
    RateLimited(Duration),
    #[error("keys cannot be checked right now")]
    Unavailable,
}

impl AuthError {
    /// The API's error code for this refusal (one of [`ErrorCode::AUTH`]).
    pub fn code(self) -> ErrorCode {
        match self {
            AuthError::Unauthorized => ErrorCode::Unauthorized,
            AuthError::Forbidden => ErrorCode::Forbidden,
            AuthError::RateLimited(_) => ErrorCode::RateLimited,
            AuthError::Unavailable => ErrorCode::Unavailable,
        }
    }
}

/// The key check shared by every worker.
pub struct Auth {
    /// `None` for ids that are unknown or revoked.
    keys: Cache<String, Option<Arc<CheckedKey>>>,
    per_key: DefaultKeyedRateLimiter<Arc<str>>,
    /// Failures per client address.
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses the failure limiter refused, until it would take them
    /// again: turned away before a look-up. Entries expire; housekeeping
    /// drops them.
    blocked: DashMap<IpAddr, Instant>,
    lookup: Addr<LookupActor>,
}

impl Auth {
    pub fn new(limits: Limits, lookup: Addr<LookupActor>) -> Auth {
        let burst = NonZeroU32::new(limits.failures_per_address.get().saturating_mul(5))
            .unwrap_or(limits.failures_per_address);
        Auth {
            keys: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(CACHE_TTL)
                .build(),
            per_key: RateLimiter::keyed(
                Quota::per_second(limits.per_key).allow_burst(limits.per_key_burst),
            ),
            per_address: RateLimiter::keyed(
                Quota::per_second(limits.failures_per_address).allow_burst(burst),
            ),
            blocked: DashMap::new(),
            lookup,
        }
    }

    /// Checks an `Authorization` header value from `peer` for `op` on the
    /// path's tenant and branch.
    pub async fn check(
        &self,
        header: Option<&str>,
        peer: Option<IpAddr>,
        op: Operation,
        path: PathIds,
    ) -> Result<Arc<CheckedKey>, AuthError> {
        let key = self.authenticate(header, peer).await?;
        if !permits(key.scope, op, path) {
            return Err(AuthError::Forbidden);
        }
        self.per_key
            .check_key(&key.id)
            .map_err(|not_until| AuthError::RateLimited(wait(not_until)))?;
        Ok(key)
    }

    async fn authenticate(
        &self,
        header: Option<&str>,
        peer: Option<IpAddr>,
    ) -> Result<Arc<CheckedKey>, AuthError> {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let Some(token) = header.and_then(Token::from_bearer) else {
            return Err(self.failed(peer));
        };
        let entry = match self.keys.get(token.key_id).await {
            Some(entry) => entry,
            None => {
                // A miss costs a MySQL read: not for an address that is
                // guessing.
                self.still_blocked(peer)?;
                self.load(token.key_id).await?
            }
        };
        match entry {
            Some(key) if key.accepts(token.secret) => Ok(key),
            _ => Err(self.failed(peer)),
        }
    }

    /// The key with this id from MySQL, shared by concurrent misses.
    async fn load(&self, id: &str) -> Result<Option<Arc<CheckedKey>>, AuthError> {
        let lookup = self.lookup.clone();
        let fetch = async move {
            let stored = lookup::ask(&lookup, FindKey(id.to_string())).await?;
            Ok::<_, LookupError>(stored.filter(|k| !k.revoked).map(|k| {
                Arc::new(CheckedKey {
                    id: Arc::from(k.id),
                    scope: k.scope,
                    hash: k.hash,
                    proven: OnceLock::new(),
                })
            }))
        };
        self.keys
            .try_get_with(id.to_string(), fetch)
            .await
            .map_err(|_| AuthError::Unavailable)
    }

    /// Counts a failure against `peer`: `Unauthorized`, or `RateLimited`
    /// once the address has failed too often (then it is blocked until the
    /// limiter would take it again).
    fn failed(&self, peer: IpAddr) -> AuthError {
        match self.per_address.check_key(&peer) {
            Ok(_) => AuthError::Unauthorized,
            Err(not_until) => {
                let wait = wait(not_until);
                self.blocked.insert(peer, Instant::now() + wait);
                AuthError::RateLimited(wait)
            }
        }
    }

    fn still_blocked(&self, peer: IpAddr) -> Result<(), AuthError> {
        let until = self.blocked.get(&peer).map(|u| *u);
        match until.and_then(|u| u.checked_duration_since(Instant::now())) {
            Some(left) if !left.is_zero() => Err(AuthError::RateLimited(left)),
            _ => Ok(()),
        }
    }

    /// Drops revoked keys from the cache.
    pub async fn forget(&self, ids: &[String]) {
        for id in ids {
            self.keys.invalidate(id.as_str()).await;
        }
    }

    /// Forgets rate-limit states that are full again (idle keys and
    /// addresses) and blocks that ended.
    pub fn housekeeping(&self) {
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
        self.blocked.shrink_to_fit();
        self.per_key.retain_recent();
        self.per_address.retain_recent();
        self.per_key.shrink_to_fit();
        self.per_address.shrink_to_fit();
    }

    /// Polls revocations once a second, forever; run it on the System arbiter.
    pub async fn watch_revocations(self: Arc<Self>) {
        let mut since = None;
        let mut last_housekeeping = Instant::now();
        loop {
            match lookup::ask(&self.lookup, RevokedSince(since)).await {
                Ok(r) => {
                    self.forget(&r.ids).await;
                    if let Some(now) = r.now {
                        since = Some(now - REVOCATION_OVERLAP);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "revocation poll failed; retrying"),
            }
            if last_housekeeping.elapsed() >= LIMITER_HOUSEKEEPING {
                last_housekeeping = Instant::now();
                self.housekeeping();
            }
            tokio::time::sleep(REVOCATION_POLL).await;
        }
    }
}

/// The wait a rate limiter asks for, at least a second (`Retry-After` counts whole seconds).
fn wait(not_until: governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until
        .wait_time_from(DefaultClock::default().now())
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_an_auth_code() {
        let refusals = [
            AuthError::Unauthorized,
            AuthError::Forbidden,
            AuthError::RateLimited(Duration::from_secs(1)),
            AuthError::Unavailable,
        ];
        for e in refusals {
            assert!(ErrorCode::AUTH.contains(&e.code()), "{e:?}");
        }
    }

    #[test]
    fn once_proven_a_secret_is_still_the_only_one_accepted() {
        let key = NewKey::generate().expect("random bytes");
        let secret = Token::parse(&key.token).expect("own format").secret;
        let other = NewKey::generate().expect("random bytes");
        let other_secret = Token::parse(&other.token).expect("own format").secret;
        let checked = CheckedKey {
            id: Arc::from(key.id.as_str()),
            scope: Scope::Operator,
            hash: key.hash,
            proven: OnceLock::new(),
        };
        assert!(
            !checked.accepts(other_secret),
            "a wrong secret first proves nothing"
        );
        assert!(checked.proven.get().is_none());
        assert!(checked.accepts(secret));
        for wrong in [
            other_secret,
            &secret[..secret.len() - 1],
            "",
            &format!("{secret}x"),
        ] {
            assert!(!checked.accepts(wrong), "{wrong:?}");
        }
        assert!(checked.accepts(secret));
    }
}
