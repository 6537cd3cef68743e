//! PersistenceActor: group-commits the rows of many requests into MySQL.
//!
//! Each actor owns a fixed share of tenants (`tenant_id % n`) and its own
//! connection pool, created on the actor's own arbiter (mysql_async pools
//! must not be shared across runtimes). Requests queue up; a batch is flushed
//! when it reaches `batch_rows` or has waited `batch_linger` (by default at
//! once), and while one flush is in flight the next batch gathers (at most
//! one flush in flight, so a tenant's writes commit in order and no two
//! connections ever upsert the same summary rows). So under load a batch is
//! what came during the previous commit: the busier, the bigger, with no
//! timer. A linger only added idle time between commits to clients that
//! wait for their answer (`docs/benchmarks.md`, issue 37).
//!
//! Reads that must see every earlier write of a tenant (a tenant's
//! restart, an idempotency lookup) queue behind the writes and run after
//! their commit; other reads go to the lookup actor.
//!
//! Writes and reads are answered later, by the flush that handles them, not
//! by the message handler: their messages carry a oneshot for that answer,
//! and [`Writer`] is the only code that sends them and waits.

mod activity;
mod flush;
mod heads;
mod writer;

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;
use mysql_async::Pool;
use tokio::sync::oneshot;

use super::feed::FeedTaps;
use super::lease::ShardLease;
use crate::domain::{
    IdempotencyKey, NewRefund, NewSale, RefundableSale, SaleId, StoredRefund, StoredSale, TenantId,
    TenantSnapshot,
};
use crate::metrics::Metrics;
use crate::store::{self, StoreError};
pub use activity::{FlushEnd, FlushInFlight, LaneActivity, WriteActivity};
use flush::{Batches, FlushJob};
use heads::EventHeads;
pub use writer::Writer;

/// Requests a persistence mailbox holds before senders are refused.
const MAILBOX_CAPACITY: usize = 16_384;
/// How often an idle writer tries again to number catalog events it owes.
const OWED_RETRY: Duration = Duration::from_secs(2);
/// Longest a readiness check may take.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Why rows were not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    #[error("too many rows are waiting for storage")]
    Overloaded,
    #[error("storage is unavailable")]
    Unavailable,
    #[error("an idempotency key is already stored")]
    DuplicateKey,
    #[error("storage refused the rows: {0}")]
    Rejected(String),
    /// MySQL went away during COMMIT and did not come back in time to tell
    /// whether the rows were stored.
    #[error("the outcome of the commit is unknown")]
    OutcomeUnknown,
    /// A refund of the request would pass what is left of its sale
    /// (another refund of that sale committed first): nothing stored.
    #[error("a refund would pass what is left of its sale")]
    OverRefunded,
}

/// The answer a flush sends back later.
type Reply<T> = oneshot::Sender<Result<T, SaveError>>;

/// A flush's place in one persistence actor's order: flushes run one after
/// the other, each committing its batch and then running the reads queued
/// with it. So a read answered with `Seq` S saw every commit answered with
/// a `Seq` up to S, and none after. `Seq::default()` is before the first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seq(u64);

impl Seq {
    /// The flush after this one.
    fn next(self) -> Seq {
        Seq(self.0 + 1)
    }

    /// Whether a read answered with this `Seq` saw the commit of flush
    /// `commit` (then what it read already counts that commit's rows).
    pub fn saw(self, commit: Seq) -> bool {
        commit <= self
    }
}

/// Committed rows, in the order they were sent (sales or refunds, as
/// sent), and the flush that committed them.
#[derive(Debug)]
pub struct Saved {
    pub sales: Vec<StoredSale>,
    pub refunds: Vec<StoredRefund>,
    pub seq: Seq,
}

/// One request's rows: its sales, or its refunds. A batch holds one kind
/// (one INSERT gives its ids, one mark settles it).
#[derive(Debug)]
enum Rows {
    Sales(Vec<NewSale>),
    Refunds(Vec<NewRefund>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Sales(s) => s.len(),
            Rows::Refunds(r) => r.len(),
        }
    }

    /// The tenant of each row.
    fn tenants(&self) -> Vec<TenantId> {
        match self {
            Rows::Sales(s) => s.iter().map(|s| s.tenant_id).collect(),
            Rows::Refunds(r) => r.iter().map(|r| r.tenant_id).collect(),
        }
    }

    fn same_kind(&self, other: &Rows) -> bool {
        matches!(
            (self, other),
            (Rows::Sales(_), Rows::Sales(_)) | (Rows::Refunds(_), Rows::Refunds(_))
        )
    }
}

/// What a refund request needs to know, read after every write queued
/// before it: the sales it names (with what each has refunded) and the
/// refunds already stored under its keys.
#[derive(Debug, Default)]
pub struct RefundFacts {
    pub sales: Vec<RefundableSale>,
    pub stored: Vec<StoredRefund>,
}

/// Settings of one persistence actor.
#[derive(Debug, Clone)]
pub struct PersistenceSettings {
    pub database_url: String,
    pub pool_max: usize,
    pub batch_rows: usize,
    pub batch_linger: Duration,
    /// This actor's share of the rows-waiting bound.
    pub max_rows_waiting: usize,
    pub retry_window: Duration,
    /// Settling reads wait for the cluster's certified writes (Galera).
    pub causal_reads: bool,
    /// Batches commit only under this instance's shard lease.
    pub lease: ShardLease,
    /// Where this actor tells the rollups of its flushes.
    pub activity: LaneActivity,
    /// Where it tells the feed's sinks of the events it committed.
    pub taps: FeedTaps,
}

/// Store these rows (one request's: always one batch, one outcome).
#[derive(Message)]
#[rtype(result = "()")]
struct Save {
    rows: Rows,
    reply: Reply<Saved>,
}

impl Save {
    /// Whether this request stores `key` for `tenant`.
    fn holds_key(&self, (tenant, key): &(TenantId, String)) -> bool {
        let is = |t: TenantId, k: &Option<IdempotencyKey>| {
            t == *tenant && k.as_ref().is_some_and(|k| k.as_str() == key)
        };
        match &self.rows {
            Rows::Sales(sales) => sales.iter().any(|s| is(s.tenant_id, &s.idempotency_key)),
            Rows::Refunds(refunds) => refunds.iter().any(|r| is(r.tenant_id, &r.idempotency_key)),
        }
    }
}

/// A read that runs after every write queued before it.
#[derive(Message)]
#[rtype(result = "()")]
enum Read {
    Tenant {
        tenant: TenantId,
        reply: Reply<(Option<TenantSnapshot>, Seq)>,
    },
    Keys {
        tenant: TenantId,
        keys: Vec<IdempotencyKey>,
        reply: Reply<Vec<StoredSale>>,
    },
    Refunds {
        tenant: TenantId,
        sales: Vec<SaleId>,
        keys: Vec<IdempotencyKey>,
        reply: Reply<RefundFacts>,
    },
    /// Numbers the tenant's catalog events committed before it (a write,
    /// queued like a read: numbered after every event queued before it).
    CatalogEvents { tenant: TenantId, reply: Reply<()> },
}

/// Whether MySQL answers a query now (for `/ready`).
#[derive(Message)]
#[rtype(result = "bool")]
struct Ping;

/// Flush everything queued, then close the pool (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
struct Drain;

enum Queued {
    Save(Save),
    Read(Read),
}

pub struct PersistenceActor {
    pool: Pool,
    settings: PersistenceSettings,
    /// This writer's batches, as marked in `commit_markers`.
    batches: Batches,
    /// What its batches number their events from.
    heads: EventHeads,
    metrics: Metrics,
    queue: VecDeque<Queued>,
    /// Rows in `queue`.
    queued_rows: usize,
    /// Rows of the flush in flight.
    in_flight_rows: usize,
    /// Flushes taken so far (the last one's [`Seq`]).
    flushes: Seq,
    flushing: bool,
    linger_armed: bool,
    drain_waiters: Vec<oneshot::Sender<()>>,
}

impl PersistenceActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    pub fn new(
        settings: PersistenceSettings,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        let pool = Pool::new(store::pool_opts(&settings.database_url, settings.pool_max)?);
        metrics.watch_pool(&pool);
        Ok(PersistenceActor {
            pool,
            settings,
            batches: Batches::new(),
            heads: EventHeads::default(),
            metrics,
            queue: VecDeque::new(),
            queued_rows: 0,
            in_flight_rows: 0,
            flushes: Seq::default(),
            flushing: false,
            linger_armed: false,
            drain_waiters: Vec::new(),
        })
    }

    /// Flushes now if a batch is full, else makes sure the linger timer runs.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || self.queue.is_empty() {
            return;
        }
        if self.queued_rows >= self.settings.batch_rows || self.settings.batch_linger.is_zero() {
            self.flush(ctx);
        } else if !self.linger_armed {
            self.linger_armed = true;
            ctx.run_later(self.settings.batch_linger, |act, ctx| {
                act.linger_armed = false;
                act.flush(ctx);
            });
        }
    }

    /// Takes one batch off the queue (whole requests, up to `batch_rows`) and
    /// commits it in the background; when done, the next batch goes at once.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.flushing || (self.queue.is_empty() && !self.heads.owes()) {
            return;
        }
        let (saves, reads, rows) = self.take_batch();
        debug_assert!(
            self.queued_rows >= rows,
            "queued rows count every queued save"
        );
        self.queued_rows -= rows;
        self.in_flight_rows = rows;
        self.flushing = true;
        self.flushes = self.flushes.next();
        let job = FlushJob {
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            retry_window: self.settings.retry_window,
            batches: self.batches.clone(),
            causal_reads: self.settings.causal_reads,
            lease: self.settings.lease.clone(),
            seq: self.flushes,
            heads: self.heads.clone(),
            taps: self.settings.taps.clone(),
            end: Default::default(),
        };
        let activity = self.settings.activity.clone();
        ctx.spawn(
            async move {
                let flush = activity.begin();
                job.commit_all(saves).await;
                flush.end(job.end.get());
                job.number_owed().await;
                job.run_reads(reads).await;
            }
            .into_actor(self)
            .map(move |(), act, ctx| {
                act.metrics.rows_waiting.sub(rows as i64);
                act.in_flight_rows = 0;
                act.flushing = false;
                if act.queue.is_empty() {
                    for w in act.drain_waiters.drain(..) {
                        let _ = w.send(());
                    }
                } else {
                    // Rows that gathered during the flush have waited long enough.
                    act.flush(ctx);
                }
            }),
        );
    }

    /// The next batch: whole requests of one kind up to `batch_rows` (at
    /// least one), with the reads queued among them; and its row count.
    fn take_batch(&mut self) -> (Vec<Save>, Vec<Read>, usize) {
        let mut saves = Vec::new();
        let mut reads = Vec::new();
        let mut rows = 0;
        while let Some(next) = self.queue.front() {
            if let Queued::Save(s) = next {
                let other_kind = saves
                    .first()
                    .is_some_and(|f: &Save| !f.rows.same_kind(&s.rows));
                if other_kind || (rows > 0 && rows + s.rows.len() > self.settings.batch_rows) {
                    break;
                }
            }
            match self.queue.pop_front() {
                Some(Queued::Save(s)) => {
                    rows += s.rows.len();
                    saves.push(s);
                }
                Some(Queued::Read(r)) => reads.push(r),
                None => break,
            }
        }
        (saves, reads, rows)
    }
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        // Catalog events whose numbering failed are numbered by the next
        // flush; an idle writer flushes for them alone.
        ctx.run_interval(OWED_RETRY, |act, ctx| act.flush(ctx));
    }
}

impl Handler<Save> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, msg: Save, ctx: &mut Context<Self>) {
        let n = msg.rows.len();
        if self.queued_rows + self.in_flight_rows + n > self.settings.max_rows_waiting {
            let _ = msg.reply.send(Err(SaveError::Overloaded));
            return;
        }
        self.queued_rows += n;
        self.metrics.rows_waiting.add(n as i64);
        self.queue.push_back(Queued::Save(msg));
        self.schedule(ctx);
    }
}

impl Handler<Read> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, msg: Read, ctx: &mut Context<Self>) {
        self.queue.push_back(Queued::Read(msg));
        // A read with no writes ahead of it need not linger.
        if self.queued_rows == 0 {
            self.flush(ctx);
        } else {
            self.schedule(ctx);
        }
    }
}

impl Handler<Ping> for PersistenceActor {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let check = async {
                let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
                store::ping(&mut conn).await
            };
            matches!(tokio::time::timeout(PING_TIMEOUT, check).await, Ok(Ok(())))
        })
    }
}

impl Handler<Drain> for PersistenceActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if self.queue.is_empty() && !self.flushing {
            let _ = tx.send(());
        } else {
            self.drain_waiters.push(tx);
            self.flush(ctx);
        }
        let pool = self.pool.clone();
        Box::pin(async move {
            let _ = rx.await;
            let _ = pool.disconnect().await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_saw_the_commits_up_to_its_own_flush_and_none_after() {
        let read = Seq::default().next().next();
        assert!(read.saw(Seq::default().next()));
        assert!(
            read.saw(read),
            "its own flush committed before the read ran"
        );
        assert!(!read.saw(read.next()));
    }
}
