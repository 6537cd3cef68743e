//! RollupActor: rolls this shard's new history rows up (see
//! `store::rollups`) off the sales' path, on a connection and a thread of
//! its own: into the quarter hours every second, into the days and months
//! every [`ZONED_EVERY`] (they cost about a rollup row per sale where sales
//! are spread thin), and whenever a report asks. A report asks first: the
//! answer says which rollups now hold every row committed before it asked
//! (the report reads those, the history for the rest), so reports stay
//! read-your-writes.
//!
//! Rolls never overlap: asks that come while one runs are answered by the
//! next, which starts when it ends. Before rolling up to the newest ids it
//! read, a roll waits for the persistence actors' flushes in flight then
//! ([`WriteActivity`]), so no row at or below them can commit after.

use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::lease::ShardLease;
use super::persistence::WriteActivity;
use crate::domain::{RolledUp, Shard};
use crate::metrics::Metrics;
use crate::store::{self, Lease, RollMarks, Rolled, StoreError};

/// How often the quarter hours follow the history without being asked.
const ROLL_EVERY: Duration = Duration::from_secs(1);
/// How often the days and months do.
const ZONED_EVERY: Duration = Duration::from_secs(300);
/// Ids of each table one roll's transaction takes on, at most: a roll far
/// behind (after a rebuild, or history written by hand) catches up in
/// steps, answering asks in between.
const CHUNK: u64 = 50_000;
/// Longest a roll waits for the flushes in flight when it read the ids.
const SETTLE_WAIT: Duration = Duration::from_secs(5);
/// Longest a report waits for its roll (then it reads the history).
const ASK_WAIT: Duration = Duration::from_secs(2);
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Roll now (the days and months too, with `zoned`); the answer: which
/// rollups hold every row committed before this was asked.
#[derive(Message)]
#[rtype(result = "RolledUp")]
struct RollNow {
    zoned: bool,
}

pub struct RollupActor {
    pool: mysql_async::Pool,
    shard: Shard,
    activity: WriteActivity,
    /// Reads wait for the cluster's certified writes (Galera).
    causal: bool,
    lease: ShardLease,
    metrics: Metrics,
    rolling: bool,
    /// When the days and months were last rolled up.
    zoned_at: Instant,
    /// The days and months are catching up in steps.
    zoned_behind: bool,
    /// Asks the next roll answers (and whether each wants days and months).
    asked: Vec<(bool, oneshot::Sender<RolledUp>)>,
}

/// What a [`RollupActor`] works with.
pub struct RollupSettings {
    pub database_url: String,
    pub shard: Shard,
    pub activity: WriteActivity,
    pub causal: bool,
    pub lease: ShardLease,
}

impl RollupActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    pub fn new(settings: RollupSettings, metrics: Metrics) -> Result<Self, mysql_async::UrlError> {
        Ok(RollupActor {
            pool: mysql_async::Pool::new(store::pool_opts(&settings.database_url, 1)?),
            shard: settings.shard,
            activity: settings.activity,
            causal: settings.causal,
            lease: settings.lease,
            metrics,
            rolling: false,
            zoned_at: Instant::now(),
            zoned_behind: false,
            asked: Vec::new(),
        })
    }

    fn roll(&mut self, ctx: &mut Context<Self>) {
        if self.rolling {
            return;
        }
        self.rolling = true;
        let waiting = std::mem::take(&mut self.asked);
        let zoned = self.zoned_behind
            || waiting.iter().any(|(z, _)| *z)
            || self.zoned_at.elapsed() >= ZONED_EVERY;
        if zoned {
            self.zoned_at = Instant::now();
        }
        let (pool, shard, activity, causal, lease) = (
            self.pool.clone(),
            self.shard,
            self.activity.clone(),
            self.causal,
            self.lease.clone(),
        );
        let work = async move {
            let Some(lease) = lease.current() else {
                return Err(StoreError::unavailable(
                    "this instance does not hold its shard's lease",
                ));
            };
            roll_once(pool, (shard, lease), activity, causal, zoned).await
        };
        ctx.spawn(work.into_actor(self).map(move |outcome, act, ctx| {
            act.rolling = false;
            let (rolled, behind) = match outcome {
                Ok((rolled, newest)) => {
                    act.metrics.rollup_rows.inc_by(rolled.rows);
                    if zoned {
                        act.zoned_behind = !rolled.zoned_caught_up;
                    }
                    let caught = RolledUp {
                        quarters: rolled.quarters_caught_up,
                        zoned: zoned && rolled.zoned_caught_up,
                        sales: newest.sales,
                        refunds: newest.refunds,
                    };
                    (caught, !caught.quarters || act.zoned_behind)
                }
                Err(e) => {
                    act.metrics.rollup_failures.inc();
                    tracing::warn!(error = %e, "rolling the history up failed; reports read the history");
                    (RolledUp::default(), false)
                }
            };
            for (wants_zoned, w) in waiting {
                let _ = w.send(RolledUp {
                    zoned: wants_zoned && rolled.zoned,
                    ..rolled
                });
            }
            // Far behind (a catch-up in steps): the next step at once.
            if behind || !act.asked.is_empty() {
                act.roll(ctx);
            }
        }));
    }
}

async fn roll_once(
    pool: mysql_async::Pool,
    (shard, lease): (Shard, Lease),
    activity: WriteActivity,
    causal: bool,
    zoned: bool,
) -> Result<(Rolled, RollMarks), StoreError> {
    let mut conn = match tokio::time::timeout(ACQUIRE_TIMEOUT, pool.get_conn()).await {
        Ok(conn) => conn?,
        Err(_) => return Err(StoreError::unavailable("connection acquire timed out")),
    };
    let newest = store::newest_ids(&mut conn, causal).await?;
    if !activity.settled(SETTLE_WAIT).await {
        return Err(StoreError::unavailable("a commit in flight did not settle"));
    }
    let rolled = store::roll(&mut conn, shard, Some(lease), (newest, CHUNK), zoned).await?;
    Ok((rolled, newest))
}

impl Actor for RollupActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(ROLL_EVERY, |act, ctx| act.roll(ctx));
        self.roll(ctx);
    }
}

impl Handler<RollNow> for RollupActor {
    type Result = ResponseFuture<RolledUp>;

    fn handle(&mut self, msg: RollNow, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        self.asked.push((msg.zoned, reply));
        self.roll(ctx);
        Box::pin(async move { answer.await.unwrap_or_default() })
    }
}

/// The way to the rollup actor; cheap to clone.
#[derive(Clone)]
pub struct Rollups(Option<Addr<RollupActor>>);

impl Rollups {
    pub fn new(addr: Addr<RollupActor>) -> Rollups {
        Rollups(Some(addr))
    }

    /// No rollup actor: reports read the history (the lanes' unit tests).
    #[cfg(test)]
    pub fn none() -> Rollups {
        Rollups(None)
    }

    /// Rolls up what is committed now (into the days and months too, with
    /// `zoned`); which rollups then hold it (none when the roll failed or
    /// took too long).
    pub async fn caught_up(&self, zoned: bool) -> RolledUp {
        let Some(addr) = &self.0 else {
            return RolledUp::default();
        };
        match tokio::time::timeout(ASK_WAIT, addr.send(RollNow { zoned })).await {
            Ok(Ok(rolled)) => rolled,
            _ => RolledUp::default(),
        }
    }
}
