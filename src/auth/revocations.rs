//! The revocation watch, which fails closed. Each server asks MySQL four
//! times a second which keys were revoked, or had their back-office
//! sessions ended by a sign-out, since its last poll (with an overlap, so
//! a revocation that commits late, or a cache fill that raced it, is still
//! caught) and drops them from its cache: the next request reads them as
//! they are now. The poll has a connection of its own: it never queues
//! behind key look-ups (which unauthenticated traffic causes) or commits.
//!
//! A cached key is trusted only while the server knows it was not revoked
//! lately: its last successful poll, or the key's own read from MySQL, is
//! at most [`TRUST_WITHOUT_POLL`] old. Past that, the key is read again
//! from MySQL for its requests (`Auth::recheck`); with MySQL unreachable
//! that fails too and they get 503 and `Retry-After` rather than being let
//! in with keys that may be revoked: the promise "refused within 2 s" holds
//! whatever happens to MySQL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use mysql_async::{Conn, Opts};

use super::Auth;
use crate::clock::Ticks;
use crate::store::{self, Revocations};

/// How often the servers ask for new revocations. Often, so that a few
/// polls in a row may stall (on a saturated machine one in a few dozen
/// took over a second, while MySQL answered others at once) before the
/// trust lapses: two tiny queries each time.
pub const REVOCATION_POLL: Duration = Duration::from_millis(250);
/// Longest one poll may take, connection included.
const POLL_TIMEOUT: Duration = Duration::from_millis(750);
/// The wait before asking again after a failed poll.
const RETRY_FAILED_POLL: Duration = Duration::from_millis(50);
/// How far back each poll looks before the previous one (commit delays).
const REVOCATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(3);
/// Longest a cached key is trusted without news of revocations: the 2 s
/// promise plus one poll of slack.
pub const TRUST_WITHOUT_POLL: Duration = Duration::from_secs(3);
/// How often idle rate-limit states are forgotten.
pub const LIMITER_HOUSEKEEPING: Duration = Duration::from_secs(10);

/// When revocations were last known, shared by every request's check.
#[derive(Default)]
pub struct Freshness {
    /// [`Ticks`] of the last successful poll; 0 before the first.
    last_poll_ms: AtomicU64,
    /// The polls fail now (one warning per streak).
    failing: AtomicBool,
}

impl Freshness {
    /// Whether a key read from MySQL at `loaded` may still be trusted.
    pub fn trusts(&self, loaded: Ticks) -> bool {
        let known = self.last_poll().max(loaded);
        Ticks::now().since(known) <= TRUST_WITHOUT_POLL
    }

    /// Seconds since the last successful poll (since start if none).
    pub fn age_seconds(&self) -> f64 {
        Ticks::now().since(self.last_poll()).as_secs_f64()
    }

    fn last_poll(&self) -> Ticks {
        Ticks::from_millis(self.last_poll_ms.load(Ordering::Acquire))
    }

    /// A poll asked at `asked` answered: what it read was current then
    /// (not when the answer arrived).
    fn succeeded(&self, asked: Ticks) {
        self.last_poll_ms
            .fetch_max(asked.as_millis(), Ordering::AcqRel);
        if self.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("the revocation poll works again; cached keys are trusted again");
        }
    }

    fn failed(&self, error: &str) {
        if !self.failing.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error,
                "the revocation poll fails: once the last poll is {} s old, keys are read again from MySQL for their requests (503 if that fails too)",
                TRUST_WITHOUT_POLL.as_secs()
            );
        }
    }
}

impl Auth {
    /// Polls revocations every [`REVOCATION_POLL`], forever, on a
    /// connection of its own; run it on a thread (arbiter) of its own.
    pub async fn watch_revocations(self: Arc<Self>, database_url: String) {
        let opts = match store::pool_opts(&database_url, 1) {
            Ok(opts) => opts,
            Err(e) => {
                tracing::error!(error = %e, "no revocation poll: the database URL is invalid");
                return;
            }
        };
        // The first poll starts from now: keys revoked before are read as
        // revoked when they are looked up.
        let mut since: Option<NaiveDateTime> = None;
        let mut conn: Option<Conn> = None;
        loop {
            let asked = Ticks::now();
            let wait = match poll(&opts, &mut conn, since).await {
                Ok(r) => {
                    self.forget(&r.ids).await;
                    // MySQL answers: sign-outs it missed are stored now.
                    if let Err(error) = self.store_sign_outs_on(&mut conn).await {
                        tracing::warn!(
                            error,
                            "sign-outs made while MySQL was away are not stored yet"
                        );
                        conn = None;
                    }
                    if let Some(now) = r.now {
                        since = Some(now - REVOCATION_OVERLAP);
                    }
                    self.freshness.succeeded(asked);
                    REVOCATION_POLL
                }
                Err(e) => {
                    self.metrics.revocation_poll_failures.inc();
                    self.freshness.failed(&e);
                    RETRY_FAILED_POLL
                }
            };
            self.metrics
                .revocation_poll_age
                .set(self.freshness.age_seconds());
            tokio::time::sleep(wait).await;
        }
    }
}

impl Auth {
    /// The sign-outs MySQL missed, stored on the watch's connection.
    async fn store_sign_outs_on(&self, conn: &mut Option<Conn>) -> Result<(), String> {
        let Some(c) = conn.as_mut() else {
            return Ok(());
        };
        match tokio::time::timeout(POLL_TIMEOUT, self.store_sign_outs(c)).await {
            Ok(stored) => stored,
            Err(_) => Err(format!("no answer within {POLL_TIMEOUT:?}")),
        }
    }
}

/// One poll on `conn`, connected first if need be. A connection that
/// failed or stalled is dropped and the next poll connects afresh: under a
/// flood a stalled connection kept a pooled one busy, and every poll after
/// it waited behind it for seconds.
async fn poll(
    opts: &Opts,
    conn: &mut Option<Conn>,
    since: Option<NaiveDateTime>,
) -> Result<Revocations, String> {
    let attempt = async {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(
                Conn::new(opts.clone())
                    .await
                    .map_err(store::StoreError::from)?,
            ),
        };
        store::revoked_since(c, since).await
    };
    let outcome = tokio::time::timeout(POLL_TIMEOUT, attempt).await;
    let failure = match outcome {
        Ok(Ok(r)) => return Ok(r),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {POLL_TIMEOUT:?}"),
    };
    *conn = None;
    Err(failure)
}

impl Auth {
    /// Forgets idle rate-limit states every [`LIMITER_HOUSEKEEPING`],
    /// forever. Not on the revocation watch's thread: sweeping the limiters
    /// waits for their locks, which every request takes, and under a flood
    /// that wait would delay the polls that keys' trust rests on.
    pub async fn sweep_limiters(self: Arc<Self>) {
        loop {
            tokio::time::sleep(LIMITER_HOUSEKEEPING).await;
            self.housekeeping();
        }
    }
}
