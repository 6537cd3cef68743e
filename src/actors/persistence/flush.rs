//! One flush of a persistence actor, independent of the actor's state:
//! commit a batch of requests as one transaction (retrying a lost
//! connection, settling a lost COMMIT by the batch's mark, and splitting the
//! batch so one refused request never fails another's rows), answer each
//! request, then run the reads that queued behind the batch.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::LocalBoxFuture;
use mysql_async::{Conn, Pool};

use super::heads::EventHeads;
use super::{FlushEnd, Read, RefundFacts, Rows, Save, SaveError, Saved, Seq};
use crate::actors::feed::FeedTaps;
use crate::actors::lease::ShardLease;
use crate::domain::{NewRefund, NewSale, StoredRefund, StoredSale, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, BatchMark, CommitFailure, Lease, Mark, StoreError};

/// Longest wait for a pooled connection before the attempt counts as failed.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
// A quarter second at most: a batch waiting out a lost database is
// retried that soon after it is back (the nemesis, issue 39).
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// Why a batch was not committed: `Settled` when it is known that nothing
/// was stored; `Unsettled` when an attempt's outcome could not be learnt
/// before the deadline (it may still commit; never "nothing was stored").
enum Failure {
    Settled(StoreError),
    Unsettled(StoreError),
}
use Failure::{Settled, Unsettled};

/// Writes wait for this instance to hold its shard's lease.
fn lease_not_held() -> StoreError {
    StoreError::Unavailable(mysql_async::Error::Other(
        "this instance does not hold its shard's lease".into(),
    ))
}

/// A fenced attempt: the writer's mark moved under it.
fn mark_moved() -> StoreError {
    StoreError::Unavailable(mysql_async::Error::Other(
        "the writer's mark moved (another attempt of this writer committed)".into(),
    ))
}

/// A group's rows as one batch: its requests' sales, or their refunds.
enum Batch<'a> {
    Sales(Vec<&'a NewSale>),
    Refunds(Vec<&'a NewRefund>),
}

impl<'a> Batch<'a> {
    /// The rows of `group`, which holds requests of one kind.
    fn of(group: &'a [Save]) -> Batch<'a> {
        match group.first().map(|s| &s.rows) {
            Some(Rows::Refunds(_)) => Batch::Refunds(
                group
                    .iter()
                    .flat_map(|s| match &s.rows {
                        Rows::Refunds(r) => r.as_slice(),
                        Rows::Sales(_) => &[],
                    })
                    .collect(),
            ),
            _ => Batch::Sales(
                group
                    .iter()
                    .flat_map(|s| match &s.rows {
                        Rows::Sales(r) => r.as_slice(),
                        Rows::Refunds(_) => &[],
                    })
                    .collect(),
            ),
        }
    }
}

/// The marks of one writer: a random writer id per actor start (several
/// processes may share the database), a counter, one per attempt, and the
/// mark the next attempt expects to find.
#[derive(Clone)]
pub(super) struct Batches {
    writer: u64,
    last: Rc<Cell<u64>>,
    expected: Rc<Cell<u64>>,
}

impl Batches {
    pub(super) fn new() -> Batches {
        Batches {
            writer: crate::ids::random_u63(),
            last: Rc::default(),
            expected: Rc::default(),
        }
    }

    fn next(&self, lease: Lease) -> BatchMark {
        self.last.set(self.last.get() + 1);
        BatchMark {
            writer: self.writer,
            batch: self.last.get(),
            expected: self.expected.get(),
            lease,
        }
    }

    /// The writer's mark now reads `batch` (committed, or read back).
    fn moved_to(&self, batch: u64) {
        debug_assert!(batch >= self.expected.get(), "a mark only moves forward");
        self.expected.set(batch);
    }
}

/// The work of one flush, independent of the actor's state.
pub(super) struct FlushJob {
    pub(super) pool: Pool,
    pub(super) metrics: Metrics,
    pub(super) retry_window: Duration,
    pub(super) batches: Batches,
    /// Settling reads wait for the cluster's certified writes (Galera).
    pub(super) causal_reads: bool,
    pub(super) lease: ShardLease,
    /// This flush's place in the actor's order (see [`Seq`]).
    pub(super) seq: Seq,
    /// What its batches number their events from.
    pub(super) heads: EventHeads,
    /// The feed's sinks, told of the events committed.
    pub(super) taps: FeedTaps,
    /// How its transactions ended, for the rollups.
    pub(super) end: Cell<FlushEnd>,
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

    pub(super) async fn commit_all(&self, saves: Vec<Save>) {
        if saves.is_empty() {
            return;
        }
        let deadline = Instant::now() + self.retry_window;
        let tenants = (!self.taps.is_empty()).then(|| {
            let mut tenants: Vec<TenantId> = saves.iter().flat_map(|s| s.rows.tenants()).collect();
            tenants.sort_unstable();
            tenants.dedup();
            tenants
        });
        self.commit_group(saves, deadline).await;
        if let Some(tenants) = tenants {
            self.tell_feed(&tenants);
        }
    }

    /// Tells the feed's sinks how far these tenants' events now reach.
    fn tell_feed(&self, tenants: &[TenantId]) {
        let heads: Vec<(TenantId, u64)> = tenants
            .iter()
            .map(|t| (*t, self.heads.head_or_unknown(*t)))
            .collect();
        self.taps.tell(&heads);
    }

    /// Commits `group` as one transaction. When MySQL refuses it, the
    /// refused request is failed alone and the rest committed again: found
    /// by the key MySQL names for a duplicate idempotency key, else by
    /// splitting the group in halves, so that one bad request never fails
    /// another's rows.
    fn commit_group(&self, group: Vec<Save>, deadline: Instant) -> LocalBoxFuture<'_, ()> {
        Box::pin(async move {
            match self.commit_with_retry(&group, deadline).await {
                Ok(mark) => {
                    self.ended(|e| e.committed = true);
                    self.answer_committed(group, mark)
                }
                Err(Unsettled(e)) => {
                    self.ended(|e| e.unsettled = true);
                    tracing::error!(error = %e, requests = group.len(), "COMMIT outcome unknown");
                    self.fail(group, SaveError::OutcomeUnknown);
                }
                Err(Settled(StoreError::Unavailable(e))) => {
                    tracing::error!(error = %e, requests = group.len(), "MySQL unavailable; answering 503");
                    self.fail(group, SaveError::Unavailable);
                }
                Err(Settled(StoreError::DuplicateKey(Some(entry)))) if group.len() > 1 => {
                    self.metrics.batch_splits.inc();
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
                    self.metrics.batch_splits.inc();
                    self.halve(group, deadline).await;
                }
                Err(Settled(StoreError::DuplicateKey(_))) => {
                    self.fail(group, SaveError::DuplicateKey)
                }
                Err(Settled(StoreError::OverRefunded)) => self.fail(group, SaveError::OverRefunded),
                Err(Settled(StoreError::Rejected(e))) => {
                    tracing::error!(error = %e, "MySQL refused a request's rows");
                    self.fail(group, SaveError::Rejected(e.to_string()));
                }
            }
        })
    }

    fn ended(&self, how: impl FnOnce(&mut FlushEnd)) {
        let mut end = self.end.get();
        how(&mut end);
        self.end.set(end);
    }

    async fn halve(&self, mut group: Vec<Save>, deadline: Instant) {
        let right = group.split_off(group.len() / 2);
        self.commit_group(group, deadline).await;
        self.commit_group(right, deadline).await;
    }

    /// Runs the transaction, retrying lost connections with backoff until
    /// `deadline`. Each attempt moves the writer's mark from the value the
    /// writer last saw, or fails: so of its attempts at most one commits,
    /// whatever the server still runs of an earlier one whose connection
    /// died. An attempt whose outcome is unknown (its answer was lost) is
    /// kept until settled: after any later failure the mark is read back,
    /// and if it names one of them, that one is the stored batch. While one
    /// is unsettled, a failure is never "nothing was stored".
    async fn commit_with_retry(&self, group: &[Save], deadline: Instant) -> Result<Mark, Failure> {
        let batch = Batch::of(group);
        // The tenant of each row, in the batch's order.
        let tenants: Vec<TenantId> = group.iter().flat_map(|s| s.rows.tenants()).collect();
        let mut backoff = FIRST_BACKOFF;
        let mut unsettled: Vec<u64> = Vec::new();
        loop {
            let attempt = self.attempt(&batch, &tenants).await;
            if attempt.is_ok() {
                self.heads.committed(tenants.iter().copied());
            } else {
                // An earlier attempt may still commit, or a head was stale:
                // learn the heads again before numbering anything more.
                self.heads.forget(tenants.iter().copied());
            }
            let (mut error, fenced) = match attempt {
                Ok(mark) => {
                    self.batches.moved_to(mark.batch);
                    return Ok(mark);
                }
                Err((CommitFailure::Fenced, _)) => (mark_moved(), true),
                Err((CommitFailure::NotStored(e), _)) => (e, false),
                Err((CommitFailure::LeaseLost, _)) => {
                    // Another instance owns the shard now: write nothing more.
                    self.lease.pause();
                    (lease_not_held(), false)
                }
                Err((CommitFailure::Unknown(e), batch)) => {
                    unsettled.extend(batch);
                    (e, false)
                }
            };
            // A duplicate key, a deadlock or a fence may be an earlier
            // attempt's doing: learn whether one committed, deadline or not.
            if fenced || !unsettled.is_empty() {
                match self.settle(&unsettled).await {
                    Ok(Some(stored)) => return Ok(stored),
                    Ok(None) => {}
                    Err(e) => error = e,
                }
            }
            let now = Instant::now();
            if fenced && now < deadline {
                continue;
            }
            let retry = !unsettled.is_empty() || matches!(error, StoreError::Unavailable(_));
            if !retry || now + backoff > deadline {
                return Err(if unsettled.is_empty() {
                    Settled(error)
                } else {
                    Unsettled(error)
                });
            }
            tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "batch failed; retrying");
            self.metrics.persistence_retries.inc();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One attempt at the transaction; a failure names the attempt's batch
    /// if it was sent.
    async fn attempt(
        &self,
        batch: &Batch<'_>,
        tenants: &[TenantId],
    ) -> Result<Mark, (CommitFailure, Option<u64>)> {
        let Some(lease) = self.lease.current() else {
            return Err((CommitFailure::NotStored(lease_not_held()), None));
        };
        let mut conn = self
            .conn()
            .await
            .map_err(|e| (CommitFailure::NotStored(e), None))?;
        let seqs = self
            .number(&mut conn, tenants)
            .await
            .map_err(|e| (CommitFailure::NotStored(e), None))?;
        let mark = self.batches.next(lease);
        let started = Instant::now();
        let stored = match batch {
            Batch::Sales(sales) => store::insert_sales(&mut conn, sales, &seqs, mark).await,
            Batch::Refunds(refunds) => store::insert_refunds(&mut conn, refunds, &seqs, mark).await,
        }
        .map_err(|failure| (failure, Some(mark.batch)))?;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(stored)
    }

    /// The event numbers of rows of `tenants`, learning unknown heads first.
    async fn number(&self, conn: &mut Conn, tenants: &[TenantId]) -> Result<Vec<u64>, StoreError> {
        let unknown = self.heads.unknown(tenants.iter().copied());
        if !unknown.is_empty() {
            let heads = store::event_heads(conn, &unknown, self.causal_reads).await?;
            self.heads.learn(heads);
        }
        self.heads
            .number(tenants.iter().copied())
            .ok_or_else(|| StoreError::invariant("an event head just learnt is gone"))
    }

    /// Numbers `tenant`'s catalog events committed before this flush, as a
    /// batch of this writer (moving its mark, under the lease); owed again
    /// if it fails.
    async fn number_catalog_events(
        &self,
        conn: &mut Conn,
        tenant: TenantId,
    ) -> Result<(), StoreError> {
        let Some(lease) = self.lease.current() else {
            self.heads.owe(tenant);
            return Err(lease_not_held());
        };
        let mark = self.batches.next(lease);
        match store::number_catalog_events(conn, tenant, mark, self.causal_reads).await {
            Ok(head) => {
                self.batches.moved_to(mark.batch);
                self.heads.learn([(tenant, head)].into());
                self.taps.tell(&[(tenant, head)]);
                Ok(())
            }
            Err(failure) => {
                // Whatever moved the mark (or may have): the next batch
                // learns it by its fence, and every head of this writer is
                // learnt again.
                self.heads.forget_all();
                self.heads.owe(tenant);
                Err(match failure {
                    CommitFailure::NotStored(e) | CommitFailure::Unknown(e) => e,
                    CommitFailure::Fenced => mark_moved(),
                    CommitFailure::LeaseLost => lease_not_held(),
                })
            }
        }
    }

    /// Numbers the catalog events owed (an earlier numbering failed), before
    /// anything else of the flush's reads.
    pub(super) async fn number_owed(&self) {
        let owed = self.heads.take_owed();
        if owed.is_empty() {
            return;
        }
        let Ok(mut conn) = self.conn().await else {
            for t in owed {
                self.heads.owe(t);
            }
            return;
        };
        for tenant in owed {
            if let Err(e) = self.number_catalog_events(&mut conn, tenant).await {
                tracing::warn!(error = %e, tenant = %tenant, "catalog events still unnumbered; trying again after the next flush");
            }
        }
    }

    /// Reads the writer's mark: the stored one of the `unsettled` batches,
    /// if any. The next attempt expects the mark as read.
    async fn settle(&self, unsettled: &[u64]) -> Result<Option<Mark>, StoreError> {
        let mut conn = self.conn().await?;
        let read = store::read_mark(&mut conn, self.batches.writer, self.causal_reads).await?;
        let now = read.map_or(0, |(batch, _)| batch);
        self.batches.moved_to(now.max(self.batches.expected.get()));
        let stored = match read {
            Some((batch, mark)) if unsettled.contains(&batch) => Some(mark.ok_or_else(|| {
                StoreError::invariant("a stored batch of rows names no first id")
            })?),
            _ => None,
        };
        let outcome = if stored.is_some() {
            "stored"
        } else {
            "not_stored"
        };
        self.metrics.settles.with_label_values(&[outcome]).inc();
        Ok(stored)
    }

    fn answer_committed(&self, group: Vec<Save>, mark: Mark) {
        let mut ids = mark.ids();
        let mut rows = 0;
        for save in group {
            rows += save.rows.len();
            let (mut sales, mut refunds) = (Vec::new(), Vec::new());
            match save.rows {
                Rows::Sales(new) => {
                    sales = new
                        .into_iter()
                        .zip(ids.by_ref())
                        .map(|(sale, id)| StoredSale { id, sale })
                        .collect();
                }
                Rows::Refunds(new) => {
                    // Refund ids follow the mark's first id as sale ids do.
                    refunds = new
                        .into_iter()
                        .zip(ids.by_ref())
                        .filter_map(|(refund, id)| {
                            let id = crate::domain::RefundId::new(id.get())?;
                            Some(StoredRefund { id, refund })
                        })
                        .collect();
                }
            }
            let _ = save.reply.send(Ok(Saved {
                sales,
                refunds,
                seq: self.seq,
            }));
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

    pub(super) async fn run_reads(&self, reads: Vec<Read>) {
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
                    let _ = reply.send(r.map(|snapshot| (snapshot, self.seq)));
                }
                Read::CatalogEvents { tenant, reply } => {
                    let r = match conn.as_mut() {
                        Some(c) => self
                            .number_catalog_events(c, tenant)
                            .await
                            .map_err(read_error),
                        None => Err(SaveError::Unavailable),
                    };
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
                Read::Refunds {
                    tenant,
                    sales,
                    keys,
                    reply,
                } => {
                    let r = read_with(&mut conn, |c| {
                        Box::pin(async move {
                            Ok(RefundFacts {
                                sales: store::find_refundable(c, tenant, &sales).await?,
                                stored: store::find_refunds_by_keys(c, tenant, &keys).await?,
                            })
                        })
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
    f(c).await.map_err(read_error)
}

/// What a failed read tells its asker: MySQL refused it (no use trying
/// again), or it could not be asked (try again later).
fn read_error(e: StoreError) -> SaveError {
    match e {
        StoreError::Rejected(e) => SaveError::Rejected(e.to_string()),
        _ => SaveError::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_read_is_final_and_a_lost_one_worth_retrying() {
        let refused = StoreError::Rejected(mysql_async::Error::Other("no such column".into()));
        assert!(matches!(read_error(refused), SaveError::Rejected(_)));
        let lost = StoreError::Unavailable(mysql_async::Error::Other("gone".into()));
        assert_eq!(read_error(lost), SaveError::Unavailable);
    }
}
