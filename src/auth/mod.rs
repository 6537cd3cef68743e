//! Who may do what. Every `/v1/...` request carries `Authorization: Bearer
//! pos_<keyid>_<secret>`; the key is checked from a bounded in-memory cache
//! (a miss is one read on the lookup actor's own pool, never through the
//! persistence actors, and concurrent misses for one key share it), then
//! against the role table ([`policy`]), then against its rate limit.
//!
//! Revocations reach every server within two seconds, and fail closed:
//! see [`revocations`]. Failed authentications are limited per client
//! address ([`failures`]); back-office sessions and their sign-outs are
//! [`sessions`].

mod failures;
mod key;
mod policy;
mod revocations;
mod sessions;

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::Addr;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::future::Cache;
use subtle::ConstantTimeEq;

pub use key::{NewKey, Token};
pub use policy::{check, permits, Operation, PathIds, Refusal};
pub use revocations::{REVOCATION_POLL, TRUST_WITHOUT_POLL};
use sessions::SignOuts;
pub use sessions::{Session, SessionKeys, IDLE_LIMIT};

use crate::actors::lookup::{self, FindKey, LookupActor, LookupError};
use crate::clock::{Ticks, UnixMs};
use crate::domain::{ErrorCode, KeyId, Scope, SecretHash};
use crate::metrics::Metrics;
use failures::Failures;
use revocations::Freshness;

/// Keys (known and unknown ids) kept in memory.
const CACHE_CAPACITY: u64 = 100_000;
/// Keys proven by a request remembered at most (only valid keys enter).
const PROVEN_CAPACITY: u64 = 100_000;
/// How long a re-read of a key whose trust lapsed (or its failure) is
/// shared by the key's requests.
const RECHECK_KEEP: Duration = Duration::from_millis(500);
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
    #[error("{0}")]
    Forbidden(Refusal),
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
            AuthError::Forbidden(_) => ErrorCode::Forbidden,
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
    sign_outs: SignOuts,
    per_key: DefaultKeyedRateLimiter<KeyId>,
    failures: Failures,
    lookup: Addr<LookupActor>,
    freshness: Freshness,
    metrics: Metrics,
}

impl Auth {
    pub fn new(limits: Limits, lookup: Addr<LookupActor>, metrics: Metrics) -> Auth {
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
            sign_outs: SignOuts::default(),
            per_key: RateLimiter::keyed(
                Quota::per_second(limits.per_key).allow_burst(limits.per_key_burst),
            ),
            failures: Failures::new(
                limits.failures_per_address,
                limits.ipv6_prefix,
                metrics.clone(),
            ),
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
        check(key.scope, op, path).map_err(AuthError::Forbidden)?;
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
            return Err(self.failures.failed(peer));
        };
        let entry = match self.keys.get(token.key_id).await {
            Some(entry) => entry,
            None => {
                // A miss costs a MySQL read: not for an address that is
                // guessing, unless it brings a key this server has proven.
                if !self.proven_here(&token).await {
                    self.failures.still_blocked(peer)?;
                }
                // A token's id is a key id already (`Token::parse`).
                let id = KeyId::parse(token.key_id).ok_or_else(|| self.failures.failed(peer))?;
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
            _ => Err(self.failures.failed(peer)),
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
            Scope::Till { .. } => Err(AuthError::Forbidden(Refusal::TillSignIn)),
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
        self.per_key.retain_recent();
        self.per_key.shrink_to_fit();
        self.failures.housekeeping();
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
pub(super) mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_an_auth_code() {
        let refusals = [
            AuthError::Unauthorized,
            AuthError::Forbidden(Refusal::TillRole),
            AuthError::RateLimited(Duration::from_secs(1)),
            AuthError::Unavailable,
        ];
        for e in refusals {
            assert!(ErrorCode::AUTH.contains(&e.code()), "{e:?}");
        }
    }

    /// `key` as an operator key just read, never proven.
    pub(super) fn operator_key(key: &NewKey) -> CheckedKey {
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
