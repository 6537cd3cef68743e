//! PersistenceActor: group-commits the rows of many requests into MySQL.
//!
//! Each actor owns a fixed share of tenants (`tenant_id % n`) and its own
//! connection pool, created on the actor's own arbiter (mysql_async pools
//! must not be shared across runtimes). Requests queue up; a batch is flushed
//! when it reaches `batch_rows` or has waited `batch_linger`, and while one
//! flush is in flight the next batch gathers (at most one flush in flight, so
//! a tenant's writes commit in order and no two connections ever upsert the
//! same summary rows). Reads that must see every earlier write of a tenant
//! (a tenant's restart, an idempotency lookup) queue behind the writes and
//! run after their commit; other reads go to the lookup actor.

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use mysql_async::{Conn, Pool};
use tokio::sync::oneshot;

use crate::domain::{IdempotencyKey, NewSale, StoredSale, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, BatchMark, CommitFailure, StoreError, TenantSnapshot};

/// Longest wait for a pooled connection before the attempt counts as failed.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests a persistence mailbox holds before senders are refused.
const MAILBOX_CAPACITY: usize = 16_384;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(1_000);

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
    /// Distance between the ids of one INSERT (`auto_increment_increment`).
    pub id_step: u64,
}

/// Store these sales (one request's rows: always one batch, one outcome).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Save {
    pub sales: Vec<NewSale>,
    pub reply: oneshot::Sender<Result<Vec<StoredSale>, SaveError>>,
}

impl Save {
    /// Whether this request stores `key` for `tenant`.
    fn holds_key(&self, (tenant, key): &(TenantId, String)) -> bool {
        self.sales.iter().any(|s| {
            s.tenant_id == *tenant
                && s.idempotency_key
                    .as_ref()
                    .is_some_and(|k| k.as_str() == key)
        })
    }
}

/// A read that runs after every write queued before it.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Read {
    Tenant {
        tenant: TenantId,
        reply: oneshot::Sender<Result<Option<TenantSnapshot>, SaveError>>,
    },
    Keys {
        tenant: TenantId,
        keys: Vec<IdempotencyKey>,
        reply: oneshot::Sender<Result<Vec<StoredSale>, SaveError>>,
    },
}

/// Answers whether MySQL answers a query now (for `/ready`).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Ping;

/// Flush everything queued, then close the pool (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

enum Queued {
    Save(Save),
    Read(Read),
}

pub struct PersistenceActor {
    pool: Pool,
    settings: PersistenceSettings,
    /// This writer's batches, as marked in `commit_markers`.
    batches: Batches,
    metrics: Metrics,
    queue: VecDeque<Queued>,
    queued_rows: usize,
    in_flight_rows: usize,
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
            metrics,
            queue: VecDeque::new(),
            queued_rows: 0,
            in_flight_rows: 0,
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
        if self.flushing || self.queue.is_empty() {
            return;
        }
        let mut saves = Vec::new();
        let mut reads = Vec::new();
        let mut rows = 0;
        while let Some(next) = self.queue.front() {
            if let Queued::Save(s) = next {
                if rows > 0 && rows + s.sales.len() > self.settings.batch_rows {
                    break;
                }
            }
            match self.queue.pop_front() {
                Some(Queued::Save(s)) => {
                    rows += s.sales.len();
                    saves.push(s);
                }
                Some(Queued::Read(r)) => reads.push(r),
                None => break,
            }
        }
        self.queued_rows -= rows;
        self.in_flight_rows = rows;
        self.flushing = true;
        let job = FlushJob {
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            retry_window: self.settings.retry_window,
            id_step: self.settings.id_step,
            batches: self.batches.clone(),
        };
        ctx.spawn(
            async move {
                job.commit_all(saves).await;
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
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<Save> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, msg: Save, ctx: &mut Context<Self>) {
        let n = msg.sales.len();
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
            matches!(
                tokio::time::timeout(Duration::from_secs(1), check).await,
                Ok(Ok(()))
            )
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

/// Why a batch was not committed: `Settled` when it is known that nothing
/// was stored; `Unsettled` when a COMMIT's answer was lost and MySQL never
/// came back to tell.
enum Failure {
    Settled(StoreError),
    Unsettled(StoreError),
}
use Failure::{Settled, Unsettled};

/// The marks of one writer: a random writer id per actor start (several
/// processes may share the database) and a counter, one per attempt.
#[derive(Clone)]
struct Batches {
    writer: u64,
    last: Rc<Cell<u64>>,
}

impl Batches {
    fn new() -> Batches {
        Batches {
            writer: crate::ids::random_u63(),
            last: Rc::default(),
        }
    }

    fn next(&self) -> BatchMark {
        self.last.set(self.last.get() + 1);
        BatchMark {
            writer: self.writer,
            batch: self.last.get(),
        }
    }
}

/// The work of one flush, independent of the actor's state.
struct FlushJob {
    pool: Pool,
    metrics: Metrics,
    retry_window: Duration,
    id_step: u64,
    batches: Batches,
}

impl FlushJob {
    async fn conn(&self) -> Result<Conn, StoreError> {
        match tokio::time::timeout(ACQUIRE_TIMEOUT, self.pool.get_conn()).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(mysql_async::Error::Other(
                "connection acquire timed out".into(),
            ))),
        }
    }

    async fn commit_all(&self, saves: Vec<Save>) {
        if saves.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.retry_window;
        self.commit_group(saves, deadline).await;
    }

    /// Commits `group` as one transaction. When MySQL refuses it, the
    /// refused request is failed alone and the rest committed again: found
    /// by the key MySQL names for a duplicate idempotency key, else by
    /// splitting the group in halves, so that one bad request never fails
    /// another's rows.
    fn commit_group(&self, group: Vec<Save>, deadline: Instant) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            match self.commit_with_retry(&group, deadline).await {
                Ok(first_id) => self.answer_committed(group, first_id),
                Err(Unsettled(e)) => {
                    tracing::error!(error = %e, requests = group.len(), "COMMIT outcome unknown");
                    self.fail(group, SaveError::OutcomeUnknown);
                }
                Err(Settled(StoreError::Unavailable(e))) => {
                    tracing::error!(error = %e, requests = group.len(), "MySQL unavailable; answering 503");
                    self.fail(group, SaveError::Unavailable);
                }
                Err(Settled(StoreError::DuplicateKey(Some(entry)))) if group.len() > 1 => {
                    let (refused, rest): (Vec<Save>, Vec<Save>) =
                        group.into_iter().partition(|s| s.holds_key(&entry));
                    if refused.is_empty() {
                        // Named a key no request of ours holds: halve instead.
                        self.halve(rest, deadline).await;
                    } else {
                        self.fail(refused, SaveError::DuplicateKey);
                        if !rest.is_empty() {
                            self.commit_group(rest, deadline).await;
                        }
                    }
                }
                Err(Settled(refused)) if group.len() > 1 => {
                    tracing::debug!(error = %refused, requests = group.len(), "batch refused; splitting");
                    self.halve(group, deadline).await;
                }
                Err(Settled(StoreError::DuplicateKey(_))) => {
                    self.fail(group, SaveError::DuplicateKey)
                }
                Err(Settled(StoreError::Rejected(e))) => {
                    tracing::error!(error = %e, "MySQL refused a request's rows");
                    self.fail(group, SaveError::Rejected(e.to_string()));
                }
            }
        })
    }

    async fn halve(&self, mut group: Vec<Save>, deadline: Instant) {
        let right = group.split_off(group.len() / 2);
        self.commit_group(group, deadline).await;
        self.commit_group(right, deadline).await;
    }

    /// Runs the transaction, retrying lost connections with backoff until
    /// `deadline`. A COMMIT whose answer was lost is settled by reading the
    /// batch's mark back, so a batch is never stored twice.
    async fn commit_with_retry(&self, group: &[Save], deadline: Instant) -> Result<u64, Failure> {
        let sales: Vec<&NewSale> = group.iter().flat_map(|s| s.sales.iter()).collect();
        let mut backoff = FIRST_BACKOFF;
        let mut unsettled: Option<BatchMark> = None;
        loop {
            let attempt = async {
                let mut conn = self.conn().await?;
                if let Some(mark) = unsettled {
                    if let Some(first_id) = store::batch_committed(&mut conn, mark).await? {
                        return Ok(Ok(first_id));
                    }
                }
                let mark = self.batches.next();
                let started = Instant::now();
                let r = store::insert_sales(&mut conn, &sales, mark)
                    .await
                    .map_err(|failure| (failure, mark));
                if r.is_ok() {
                    self.metrics
                        .commit_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                Ok::<_, StoreError>(r)
            };
            let error = match attempt.await {
                Ok(Ok(first_id)) => return Ok(first_id),
                Ok(Err((CommitFailure::NotStored(e), _))) => {
                    unsettled = None;
                    e
                }
                Ok(Err((CommitFailure::Unknown(e), mark))) => {
                    unsettled = Some(mark);
                    e
                }
                Err(e) => e,
            };
            if !matches!(error, StoreError::Unavailable(_)) || Instant::now() + backoff > deadline {
                return Err(match unsettled {
                    Some(_) => Unsettled(error),
                    None => Settled(error),
                });
            }
            tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "batch failed; retrying");
            self.metrics.persistence_retries.inc();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn answer_committed(&self, group: Vec<Save>, first_id: u64) {
        let mut next_id = first_id;
        let mut rows = 0;
        for save in group {
            rows += save.sales.len();
            let stored = save
                .sales
                .into_iter()
                .map(|sale| {
                    let id = next_id;
                    next_id += self.id_step;
                    StoredSale { id, sale }
                })
                .collect();
            let _ = save.reply.send(Ok(stored));
        }
        self.metrics.batch_rows.observe(rows as f64);
        self.metrics.committed.inc_by(rows as u64);
    }

    fn fail(&self, group: Vec<Save>, error: SaveError) {
        for save in group {
            if error != SaveError::DuplicateKey {
                self.metrics.persistence_failures.inc();
            }
            let _ = save.reply.send(Err(error.clone()));
        }
    }

    async fn run_reads(&self, reads: Vec<Read>) {
        if reads.is_empty() {
            return;
        }
        let mut conn = match self.conn().await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "MySQL unavailable for reads");
                None
            }
        };
        for read in reads {
            match read {
                Read::Tenant { tenant, reply } => {
                    let r = read_with(&mut conn, |c| Box::pin(store::load_tenant(c, tenant))).await;
                    let _ = reply.send(r);
                }
                Read::Keys {
                    tenant,
                    keys,
                    reply,
                } => {
                    let r = read_with(&mut conn, |c| {
                        Box::pin(store::find_by_keys(c, tenant, &keys))
                    })
                    .await;
                    let _ = reply.send(r);
                }
            }
        }
    }
}

async fn read_with<'c, T>(
    conn: &'c mut Option<Conn>,
    f: impl FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, Result<T, StoreError>>,
) -> Result<T, SaveError> {
    let Some(c) = conn.as_mut() else {
        return Err(SaveError::Unavailable);
    };
    f(c).await.map_err(|e| match e {
        StoreError::Rejected(e) => SaveError::Rejected(e.to_string()),
        _ => SaveError::Unavailable,
    })
}
