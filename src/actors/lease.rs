//! LeaseActor: keeps this instance's lease on its shard (`POS_SHARD`), so
//! that no two instances ever write for one tenant. The lease is taken at
//! start, before any total is read (`acquire_at_start`); this actor renews
//! it every third of its life on a connection of its own. Every batch
//! checks the lease's fencing number in its own transaction (see
//! `store::sales`), so a holder that lost the lease cannot commit.
//!
//! When renewals fail (MySQL unreachable from here) for two thirds of the
//! lease's life, writes pause (batches are refused without being sent)
//! until a renewal succeeds. If another instance took the lease meanwhile,
//! this one stops: its totals may miss what the other wrote, and a fresh
//! start reads them again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::Pool;
use tokio::sync::mpsc;

use crate::domain::Shard;
use crate::metrics::Metrics;
use crate::store::{self, Acquired, Lease, LeaseHolder, StoreError};

/// Longest wait between two tries for a lease another instance holds.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// After a failed renewal the next is tried this soon, not a third of the
/// lease's life later: writes paused by a database away resume as soon as
/// it is back (issue 39's nemesis measured up to 4 s more).
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(200);
/// How often it looks whether the lease went unrenewed too long.
const OVERDUE_CHECK: Duration = Duration::from_millis(100);

/// A reason to stop the process, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    pub message: String,
    pub code: i32,
}

/// The lease as the persistence actors see it: its fencing number while
/// this instance may write, none while it may not.
#[derive(Debug, Clone)]
pub struct ShardLease {
    shard: Shard,
    fence: Arc<AtomicU64>,
}

impl ShardLease {
    pub fn new(shard: Shard) -> ShardLease {
        ShardLease {
            shard,
            fence: Arc::default(),
        }
    }

    /// The lease a batch must carry, if writes may go on.
    pub fn current(&self) -> Option<Lease> {
        let fence = self.fence.load(Ordering::SeqCst);
        (fence != 0).then_some(Lease {
            shard_index: self.shard.index,
            fence,
        })
    }

    /// Writes stop until a renewal says the lease is still this instance's.
    pub fn pause(&self) {
        self.fence.store(0, Ordering::SeqCst);
    }

    fn hold(&self, fence: u64) {
        debug_assert!(fence != 0, "fencing numbers start at 1");
        self.fence.store(fence, Ordering::SeqCst);
    }
}

/// Takes the shard's lease, waiting while another live instance holds it
/// (logging who, each try); `Err` when the deployment was recorded with
/// another shard count. MySQL errors are returned for the caller's retry.
pub async fn acquire_at_start(
    pool: &Pool,
    shard: Shard,
    me: &LeaseHolder,
    ttl: Duration,
) -> Result<Result<u64, Fatal>, StoreError> {
    loop {
        let mut conn = pool.get_conn().await?;
        match store::acquire_lease(&mut conn, shard, me, ttl.as_secs()).await? {
            Acquired::Held { fence } => {
                tracing::info!(%shard, fence, "holding the shard's lease");
                return Ok(Ok(fence));
            }
            Acquired::Mismatch { recorded } => {
                return Ok(Err(Fatal {
                    message: format!(
                        "POS_SHARD: {shard} says {} shards, but this deployment has {recorded}; \
                         to change it, stop every instance and run `pos shards resize {}`",
                        shard.count, shard.count
                    ),
                    code: 2,
                }))
            }
            Acquired::Busy { holder, for_ms } => {
                tracing::warn!(
                    %shard, %holder, for_ms,
                    "another instance holds this shard's lease; waiting (not serving meanwhile)"
                );
                let wait = Duration::from_millis(for_ms + 50).min(MAX_WAIT);
                drop(conn);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Keeps the lease taken at start.
pub struct LeaseActor {
    pool: Pool,
    me: LeaseHolder,
    lease: ShardLease,
    /// The fencing number this instance got at start.
    fence: u64,
    ttl: Duration,
    last_renewed: Instant,
    renewing: bool,
    fatal: mpsc::Sender<Fatal>,
    metrics: Metrics,
}

/// Ends the lease now (a clean stop).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release;

impl LeaseActor {
    pub fn new(
        pool: Pool,
        me: LeaseHolder,
        lease: ShardLease,
        fence: u64,
        ttl: Duration,
        fatal: mpsc::Sender<Fatal>,
        metrics: Metrics,
    ) -> Self {
        lease.hold(fence);
        metrics.shard_lease_held.set(1);
        LeaseActor {
            pool,
            me,
            lease,
            fence,
            ttl,
            last_renewed: Instant::now(),
            renewing: false,
            fatal,
            metrics,
        }
    }

    fn renew(&mut self, ctx: &mut Context<Self>) {
        if self.renewing {
            return;
        }
        self.renewing = true;
        let (pool, me, shard, fence, ttl) = (
            self.pool.clone(),
            self.me.clone(),
            self.lease.shard,
            self.fence,
            self.ttl.as_secs(),
        );
        let asked = Instant::now();
        // An attempt unanswered for a third of the lease's life has failed
        // (its connection may be dead without a word): the next one may
        // still renew in time.
        let patience = self.ttl / 3;
        ctx.spawn(
            async move {
                let attempt = async {
                    let mut conn = pool.get_conn().await?;
                    store::renew_lease(&mut conn, shard, &me, fence, ttl).await
                };
                match tokio::time::timeout(patience, attempt).await {
                    Ok(renewed) => renewed.map_err(|e| ("failed", e.to_string())),
                    Err(_) => Err((
                        "unanswered",
                        format!("no answer within {} ms", patience.as_millis()),
                    )),
                }
            }
            .into_actor(self)
            .map(move |renewed, act, ctx| {
                act.renewing = false;
                match renewed {
                    Ok(true) => {
                        act.counted("renewed");
                        act.last_renewed = asked;
                        if act.lease.current().is_none() {
                            tracing::info!(shard = %act.lease.shard, "shard lease renewed; writes resume");
                        }
                        act.lease.hold(act.fence);
                        act.metrics.shard_lease_held.set(1);
                    }
                    Ok(false) => {
                        act.counted("lost");
                        act.lost(ctx);
                    }
                    Err((outcome, e)) => {
                        act.counted(outcome);
                        act.unrenewed(&e);
                        ctx.run_later(RETRY_AFTER_FAILURE, |act, ctx| act.renew(ctx));
                    }
                }
            }),
        );
    }

    fn counted(&self, outcome: &str) {
        self.metrics
            .shard_lease_renewals
            .with_label_values(&[outcome])
            .inc();
    }

    /// Past two thirds of the lease's life without a renewal, writes pause
    /// (looked at on a timer too, so an attempt that hangs cannot hold the
    /// pause up); `why`: the last attempt's failure.
    fn unrenewed(&mut self, why: &str) {
        if renewal_overdue(self.last_renewed.elapsed(), self.ttl) && self.lease.current().is_some()
        {
            tracing::warn!(error = %why, shard = %self.lease.shard, "shard lease not renewed; writes pause");
            self.lease.pause();
            self.metrics.shard_lease_held.set(0);
        }
    }

    /// Another instance holds the lease now: stop.
    fn lost(&mut self, ctx: &mut Context<Self>) {
        self.lease.pause();
        self.metrics.shard_lease_held.set(0);
        let _ = self.fatal.try_send(Fatal {
            message: format!(
                "another instance took shard {}'s lease; this one stops (its totals may miss what the other wrote)",
                self.lease.shard
            ),
            code: 1,
        });
        ctx.stop();
    }
}

impl Actor for LeaseActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = (self.ttl / 3).max(Duration::from_millis(200));
        ctx.run_interval(every, |act, ctx| act.renew(ctx));
        ctx.run_interval(OVERDUE_CHECK, |act, _| {
            act.unrenewed("no renewal answered in time")
        });
    }
}

impl Handler<Release> for LeaseActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Release, ctx: &mut Context<Self>) -> Self::Result {
        self.lease.pause();
        self.metrics.shard_lease_held.set(0);
        ctx.stop();
        let (pool, me, shard, fence) = (
            self.pool.clone(),
            self.me.clone(),
            self.lease.shard,
            self.fence,
        );
        Box::pin(async move {
            if let Ok(mut conn) = pool.get_conn().await {
                let _ = store::release_lease(&mut conn, shard, &me, fence).await;
            }
            let _ = pool.disconnect().await;
        })
    }
}

/// Whether a lease last renewed `since` ago, living `ttl`, is within a
/// third of its life of expiring: then this instance must stop writing
/// (another may take the shard once it expires).
fn renewal_overdue(since: Duration, ttl: Duration) -> bool {
    since + ttl / 3 >= ttl
}

#[cfg(test)]
mod tests {
    use super::renewal_overdue;

    #[test]
    fn writes_pause_once_two_thirds_of_the_lease_went_unrenewed() {
        let ttl = std::time::Duration::from_secs(9);
        let ms = std::time::Duration::from_millis;
        assert!(!renewal_overdue(ms(5_999), ttl));
        assert!(renewal_overdue(ms(6_000), ttl));
        assert!(renewal_overdue(ms(20_000), ttl));
    }

    use super::*;

    #[test]
    fn writes_carry_the_held_fence_and_stop_while_paused() {
        let lease = ShardLease::new(Shard { index: 1, count: 2 });
        assert!(lease.current().is_none(), "nothing is held at first");
        lease.hold(7);
        let held = lease.current().expect("held");
        assert_eq!((held.shard_index, held.fence), (1, 7));
        lease.pause();
        assert!(lease.current().is_none(), "paused: no batch may write");
        lease.hold(8);
        assert_eq!(lease.current().map(|l| l.fence), Some(8));
    }
}
