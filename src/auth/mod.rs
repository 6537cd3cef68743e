//! Who may do what. Every `/v1/...` request carries `Authorization: Bearer
//! pos_<keyid>_<secret>`; the key is checked from a bounded in-memory cache
//! (a miss is one read on the lookup actor's own pool, never through the
//! persistence actors, and concurrent misses for one key share it), then
//! against the role table ([`policy`]), then against its rate limit.
//!
//! Revocations reach every server within two seconds, and fail closed:
//! see [`revocations`].
//!
//! Failed authentications are limited per client address (an IPv6 client
//! by its /64: one host holds all of it). An address that went over its
//! budget is turned away before any look-up until the limiter would let it
//! in again, so guessing keys is slow and cannot load MySQL; a key this
//! server has proven keeps working from that address (also once its cache
//! entry expired, or was pushed out by a flood of unknown ids), and many
//! tills behind one address (a NAT, a proxy) can all make their first
//! request at once, since a valid key never counts against the budget. The
//! limiter remembers at most [`MAX_ADDRESSES`] addresses; past that, the
//! failures of every address share one budget.

mod key;
mod policy;
mod revocations;

use std::collections::HashMap;
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

pub use key::{NewKey, Token};
pub use policy::{permits, Operation, PathIds};
pub use revocations::{REVOCATION_POLL, TRUST_WITHOUT_POLL};

use crate::actors::lookup::{self, FindKey, LookupActor, LookupError};
use crate::client_address::address_group;
use crate::clock::{Ticks, UnixMs};
use crate::domain::{ErrorCode, KeyId, Scope, SecretHash};
use crate::metrics::Metrics;
use revocations::Freshness;

/// Keys (known and unknown ids) kept in memory.
const CACHE_CAPACITY: u64 = 100_000;
/// Keys proven by a request remembered at most (only valid keys enter).
const PROVEN_CAPACITY: u64 = 100_000;
/// How long a re-read of a key whose trust lapsed (or its failure) is
/// shared by the key's requests.
const RECHECK_KEEP: Duration = Duration::from_millis(500);
/// How long a sign-out made here is kept apart from the key cache: past
/// the revocation poll's look-back and a key read's deadline, by when the
/// cache holds the key as MySQL has it since the sign-out.
const SIGNED_OUT_KEEP: Duration = Duration::from_secs(10);
/// Addresses (or IPv6 prefixes) the failure limiter tracks at most.
pub const MAX_ADDRESSES: usize = 100_000;
/// The one budget of all failures once [`MAX_ADDRESSES`] are tracked.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::BROADCAST);

/// Rate limits, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests per second per key, and the burst above it.
    pub per_key: NonZeroU32,
    pub per_key_burst: NonZeroU32,
    /// Failed authentications per second per client address.
    pub failures_per_address: NonZeroU32,
    /// IPv6 addresses count by this prefix.
    pub ipv6_prefix: u8,
    /// A key read from MySQL is read again after this long.
    pub key_cache: Duration,
}

/// A key that passed the check.
#[derive(Debug)]
pub struct CheckedKey {
    pub id: KeyId,
    pub scope: Scope,
    hash: SecretHash,
    /// The secret, once a request proved it against `hash`: later tokens
    /// are compared to it (constant time) instead of hashed again, which
    /// was half of what authentication cost a request. It lives only in
    /// this process's memory, where every request's token passes anyway;
    /// the database keeps only the hash.
    proven: OnceLock<Box<str>>,
    /// When it was read from MySQL: not revoked as of then.
    loaded: Ticks,
    /// Its back-office sessions that began at or before this (the
    /// sessions' own clock) were ended by a sign-out, as of `loaded`; 0:
    /// none.
    sessions_ended: UnixMs,
}

impl CheckedKey {
    /// When a new session of this key may begin: now,
    /// or just after the last one a sign-out ended if that is later (a
    /// shard whose clock runs ahead stored it), so a new session is never
    /// ended before it starts.
    pub fn next_session_start(&self, now: UnixMs) -> UnixMs {
        now.max(self.sessions_ended.next())
    }

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
    keys: Cache<KeyId, Option<Arc<CheckedKey>>>,
    /// Keys a request proved (right secret), by id: they are read again
    /// even from an address over its failure budget.
    proven: Cache<KeyId, Arc<CheckedKey>>,
    /// Re-reads of keys whose trust lapsed, by id, kept [`RECHECK_KEEP`]:
    /// concurrent requests share one read, and a failed read is not tried
    /// again by every request (with MySQL away, one attempt per key and
    /// interval, not one per request).
    rechecks: Cache<KeyId, Result<Option<Arc<CheckedKey>>, ()>>,
    /// Sign-outs made here, by key id: the latest session start they ended,
    /// kept [`SIGNED_OUT_KEEP`]. A key read already under way when one is
    /// stored may fill the cache with the key as it was before; this keeps
    /// the end in force here until the revocation poll has seen it.
    signed_out: Cache<KeyId, UnixMs>,
    /// Sign-outs made here that MySQL could not store yet, by key id: in
    /// force here until stored (however long MySQL is away), then kept in
    /// `signed_out` while the poll spreads them. The revocation watch
    /// stores them once MySQL answers again.
    /// (A map, not a cache: it is empty but for MySQL outages, and the
    /// watch looks at it four times a second.)
    unstored_sign_outs: std::sync::Mutex<HashMap<KeyId, UnixMs>>,
    ipv6_prefix: u8,
    per_key: DefaultKeyedRateLimiter<KeyId>,
    /// Failures per client address.
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses the failure limiter refused, until it would take them
    /// again: turned away before a look-up. Entries expire; housekeeping
    /// drops them.
    blocked: DashMap<IpAddr, Instant>,
    lookup: Addr<LookupActor>,
    freshness: Freshness,
    metrics: Metrics,
}

impl Auth {
    pub fn new(limits: Limits, lookup: Addr<LookupActor>, metrics: Metrics) -> Auth {
        let burst = NonZeroU32::new(limits.failures_per_address.get().saturating_mul(5))
            .unwrap_or(limits.failures_per_address);
        Auth {
            keys: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(limits.key_cache)
                .build(),
            proven: Cache::builder().max_capacity(PROVEN_CAPACITY).build(),
            rechecks: Cache::builder()
                .max_capacity(PROVEN_CAPACITY)
                .time_to_live(RECHECK_KEEP)
                .build(),
            signed_out: Cache::builder()
                .max_capacity(PROVEN_CAPACITY)
                .time_to_live(SIGNED_OUT_KEEP)
                .build(),
            unstored_sign_outs: Default::default(),
            ipv6_prefix: limits.ipv6_prefix,
            per_key: RateLimiter::keyed(
                Quota::per_second(limits.per_key).allow_burst(limits.per_key_burst),
            ),
            per_address: RateLimiter::keyed(
                Quota::per_second(limits.failures_per_address).allow_burst(burst),
            ),
            blocked: DashMap::new(),
            lookup,
            freshness: Freshness::default(),
            metrics,
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
                // guessing, unless it brings a key this server has proven.
                if !self.proven_here(&token).await {
                    self.still_blocked(peer)?;
                }
                // A token's id is a key id already (`Token::parse`).
                let id = KeyId::parse(token.key_id).ok_or_else(|| self.failed(peer))?;
                self.load(&id).await?
            }
        };
        // Fail closed: a key is let in only while no revocation of it can
        // have gone unseen for longer than the promise allows. Past that
        // (the polls stalled or fail), it is read again from MySQL, once
        // for all its concurrent requests; with MySQL away that fails: 503.
        let entry = match entry {
            Some(key) if key.accepts(token.secret) && !self.freshness.trusts(key.loaded) => {
                self.recheck(&key).await?
            }
            other => other,
        };
        match entry {
            Some(key) if key.accepts(token.secret) => {
                if !self.freshness.trusts(key.loaded) {
                    return Err(AuthError::Unavailable);
                }
                if !self.proven.contains_key(token.key_id) {
                    self.proven.insert(key.id.clone(), key.clone()).await;
                }
                Ok(key)
            }
            _ => Err(self.failed(peer)),
        }
    }

    /// Signs in to the back office: the token's key, if it is valid and
    /// its role may sign in (back office or operator). Failures count
    /// against the address like any other.
    pub async fn sign_in(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<Arc<CheckedKey>, AuthError> {
        let header = format!("Bearer {}", token.trim());
        let key = self.authenticate(Some(&header), peer).await?;
        match key.scope {
            Scope::Backoffice { .. } | Scope::Operator => Ok(key),
            Scope::Till { .. } => Err(AuthError::Forbidden),
        }
    }

    /// The key of a back-office session (its cookie was signed by this
    /// service after a sign-in proved the secret, so only the id is
    /// needed), under the same revocation rule and rate limit as a token.
    pub async fn session_key(&self, id: &KeyId) -> Result<Arc<CheckedKey>, AuthError> {
        let key = self.key_by_id(id).await?;
        self.per_key
            .check_key(&key.id)
            .map_err(|not_until| AuthError::RateLimited(wait(not_until)))?;
        Ok(key)
    }

    /// The key with this id if it is valid now (unknown or revoked:
    /// `Unauthorized`), without counting a request against it.
    pub async fn key_by_id(&self, id: &KeyId) -> Result<Arc<CheckedKey>, AuthError> {
        let entry = match self.keys.get(id).await {
            Some(entry) => entry,
            None => self.load(id).await?,
        };
        let entry = match entry {
            Some(key) if !self.freshness.trusts(key.loaded) => self.recheck(&key).await?,
            other => other,
        };
        let key = entry.ok_or(AuthError::Unauthorized)?;
        if !self.freshness.trusts(key.loaded) {
            return Err(AuthError::Unavailable);
        }
        Ok(key)
    }

    /// Whether `key`'s back-office session that began at `began` is
    /// still open: no sign-out ended it, here (stored or not yet) or (as of
    /// the key's read) anywhere.
    pub async fn session_open(&self, key: &CheckedKey, began: UnixMs) -> bool {
        began > key.sessions_ended && !self.ended_here(&key.id, began).await
    }

    /// Whether a sign-out made here (stored or not yet) ended `id`'s
    /// session that began at `began`: known without reading the key,
    /// so it holds while MySQL is away.
    pub async fn ended_here(&self, id: &KeyId, began: UnixMs) -> bool {
        let here = self.signed_out.get(id).await.unwrap_or_default();
        let unstored = self.unstored().get(id).copied().unwrap_or_default();
        began <= here.max(unstored)
    }

    /// A sign-out of `id`'s sessions begun until `began`, in force here
    /// at once. `stored`: MySQL has it, and every instance learns it from
    /// the poll; else it is kept here until the revocation watch stores it.
    pub async fn signed_out(&self, id: &KeyId, began: UnixMs, stored: bool) {
        if stored {
            let here = self.signed_out.get(id).await.unwrap_or_default();
            self.signed_out.insert(id.clone(), here.max(began)).await;
        } else {
            let mut unstored = self.unstored();
            let room = unstored.len() < PROVEN_CAPACITY as usize;
            match unstored.get_mut(id) {
                Some(here) => *here = (*here).max(began),
                None if room => {
                    unstored.insert(id.clone(), began);
                }
                None => tracing::warn!("too many sign-outs wait for MySQL; this one is not kept"),
            }
        }
        self.forget(std::slice::from_ref(id)).await;
    }

    fn unstored(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, UnixMs>> {
        self.unstored_sign_outs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the sign-outs MySQL could not take when they were made;
    /// each one stored moves to the sign-outs the poll spreads.
    pub(crate) async fn store_sign_outs(&self, conn: &mut mysql_async::Conn) -> Result<(), String> {
        let waiting: Vec<(KeyId, UnixMs)> = self
            .unstored()
            .iter()
            .map(|(id, began)| (id.clone(), *began))
            .collect();
        for (id, began) in waiting {
            crate::store::end_sessions(conn, &id, began)
                .await
                .map_err(|e| e.to_string())?;
            self.signed_out(&id, began, true).await;
            // A later sign-out of the key made meanwhile stays unstored.
            let mut unstored = self.unstored();
            if unstored.get(&id).is_some_and(|later| *later <= began) {
                unstored.remove(&id);
            }
        }
        Ok(())
    }

    /// `stale` read again from MySQL. A fresher entry another request put
    /// meanwhile is kept as it is, so one lapse costs one read per key.
    async fn recheck(&self, stale: &Arc<CheckedKey>) -> Result<Option<Arc<CheckedKey>>, AuthError> {
        let id = &stale.id;
        if let Some(Some(current)) = self.keys.get(id).await {
            if !Arc::ptr_eq(&current, stale) {
                return Ok(Some(current));
            }
        }
        // The stale entry stays until a read succeeds: a failed read must
        // not turn every later request into a MySQL read.
        let read = fetch(self.lookup.clone(), id.clone());
        let fresh = self
            .rechecks
            .get_with(id.clone(), async move { read.await.map_err(|_| ()) })
            .await
            .map_err(|()| AuthError::Unavailable)?;
        self.keys.insert(id.clone(), fresh.clone()).await;
        Ok(fresh)
    }

    /// The key with this id from MySQL, shared by concurrent misses.
    async fn load(&self, id: &KeyId) -> Result<Option<Arc<CheckedKey>>, AuthError> {
        self.keys
            .try_get_with(id.clone(), fetch(self.lookup.clone(), id.clone()))
            .await
            .map_err(|_| AuthError::Unavailable)
    }

    /// Whether `token` is a key a request proved here (its secret
    /// compared in constant time with the proven one).
    async fn proven_here(&self, token: &Token<'_>) -> bool {
        self.proven
            .get(token.key_id)
            .await
            .is_some_and(|k| k.accepts(token.secret))
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
    fn failed(&self, peer: IpAddr) -> AuthError {
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

    fn still_blocked(&self, peer: IpAddr) -> Result<(), AuthError> {
        let until = self.blocked.get(&self.budget_of(peer)).map(|u| *u);
        match until.and_then(|u| u.checked_duration_since(Instant::now())) {
            Some(left) if !left.is_zero() => Err(AuthError::RateLimited(left)),
            _ => Ok(()),
        }
    }

    /// Drops keys from the caches (revoked, or their sessions ended): the
    /// next request reads them from MySQL.
    pub async fn forget(&self, ids: &[KeyId]) {
        for id in ids {
            self.keys.invalidate(id).await;
            self.proven.invalidate(id).await;
            self.rechecks.invalidate(id).await;
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
        self.metrics
            .auth_addresses
            .set(self.per_address.len() as i64);
    }
}

/// The key with this id as MySQL holds it (`None`: unknown or revoked).
/// Its trust counts from before the read was asked for: a revocation that
/// commits while the answer is on its way is never taken as unseen.
async fn fetch(
    lookup: Addr<LookupActor>,
    id: KeyId,
) -> Result<Option<Arc<CheckedKey>>, LookupError> {
    let asked = Ticks::now();
    let stored = lookup::ask(&lookup, FindKey(id)).await?;
    Ok(stored.filter(|k| !k.revoked).map(|k| {
        Arc::new(CheckedKey {
            id: k.id,
            scope: k.scope,
            hash: k.hash,
            proven: OnceLock::new(),
            loaded: asked,
            sessions_ended: k.sessions_ended,
        })
    }))
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
    fn the_failure_limiter_remembers_at_most_max_addresses() {
        use actix::Actor;
        actix::System::new().block_on(async {
            let metrics = Metrics::new();
            let lookup = LookupActor::new("mysql://root@127.0.0.1:1/none", metrics.clone())
                .expect("a URL")
                .start();
            let one = NonZeroU32::MIN;
            let limits = Limits {
                per_key: one,
                per_key_burst: one,
                failures_per_address: one,
                ipv6_prefix: 64,
                key_cache: Duration::from_secs(600),
            };
            let auth = Auth::new(limits, lookup, metrics.clone());
            let sprayed = MAX_ADDRESSES as u32 + 1_000;
            for i in 0..sprayed {
                auth.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
            }
            assert!(
                auth.per_address.len() <= MAX_ADDRESSES + 1,
                "{}",
                auth.per_address.len()
            );
            assert!(metrics.auth_address_overflow.get() >= 1_000);
            // Past the bound, a new address is over the shared budget at once.
            let late = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
            assert!(matches!(auth.failed(late), AuthError::RateLimited(_)));
        });
    }

    /// `key` as an operator key just read, never proven.
    fn operator_key(key: &NewKey) -> CheckedKey {
        CheckedKey {
            id: key.id.clone(),
            scope: Scope::Operator,
            hash: key.hash,
            proven: OnceLock::new(),
            loaded: Ticks::default(),
            sessions_ended: UnixMs::default(),
        }
    }

    #[test]
    fn a_new_session_begins_after_the_last_one_a_sign_out_ended() {
        let key = NewKey::generate().expect("random bytes");
        let mut checked = operator_key(&key);
        let start = |now| checked.next_session_start(UnixMs(now)).0;
        assert_eq!(start(1_000), 1_000);
        // Ended by a shard whose clock runs 5 s ahead of this one.
        checked.sessions_ended = UnixMs(6_000);
        let start = |now| checked.next_session_start(UnixMs(now)).0;
        assert_eq!(start(1_000), 6_001);
        assert_eq!(start(9_000), 9_000);
    }

    #[test]
    fn once_proven_a_secret_is_still_the_only_one_accepted() {
        let key = NewKey::generate().expect("random bytes");
        let secret = Token::parse(&key.token).expect("own format").secret;
        let other = NewKey::generate().expect("random bytes");
        let other_secret = Token::parse(&other.token).expect("own format").secret;
        let checked = operator_key(&key);
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
