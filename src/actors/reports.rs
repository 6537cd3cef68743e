//! ReportsActor: sales reports, on a MySQL pool and a thread of their own
//! (a slow report never holds up a commit or a back office's change),
//! shared fairly between tenants.
//!
//! Reports run in two lanes, each with connections of its own: the API's
//! reports and the pages' explorer and downloads in one, the back office's
//! overview (three small reads a page) in the other, so no amount of heavy
//! reports keeps a shop owner from their overview. In each lane a tenant
//! has at most `POS_REPORTS_PER_TENANT` reports running or waiting (more
//! are refused at once, 429), and a connection that frees goes to the next
//! tenant in turn, not to whoever asked first: one tenant's burst waits
//! behind the others' single reports. A waiting report whose caller went
//! away, or whose deadline passed, is dropped unrun, and MariaDB stops a
//! statement that outlives what was left of its report's deadline by
//! itself (`max_statement_time`, rounded up to 5 s), so an abandoned report
//! holds a connection about as long as its caller waited.

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::rollups::Rollups;
use crate::domain::{ReportQuery, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, ReportOutcome, StoreError};

/// Longest a report may take, its wait for a turn included; MariaDB stops
/// the statement itself at this age.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(30);
/// Connections of the reports' lane and of the overview's.
const REPORT_CONNECTIONS: usize = 2;
const OVERVIEW_CONNECTIONS: usize = 1;
/// Reports waiting for a turn, over all tenants, per lane.
const MAX_WAITING: usize = 64;
const MAILBOX_CAPACITY: usize = 256;

/// Which lane a report runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The API's reports, the explorer and the CSV downloads.
    Report,
    /// The back office's overview page.
    Overview,
}

/// Why a report has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The tenant has its most reports running or waiting in this lane.
    #[error("the tenant has {0} reports running or waiting, the most it may")]
    TenantBusy(usize),
    /// Too many reports of all tenants wait for a turn.
    #[error("too many reports are waiting")]
    Busy,
    /// MySQL is away, or the report outlived its deadline.
    #[error("MySQL unavailable or the report too slow")]
    Unavailable,
    /// MySQL refused the statement itself.
    #[error("MySQL refused the report")]
    Refused,
}

/// Runs one report and answers its outcome.
#[derive(Message)]
#[rtype(result = "Result<ReportOutcome, ReportError>")]
pub struct RunReport {
    pub kind: ReportKind,
    pub query: ReportQuery,
    /// Asked to roll up first, once the report has its turn.
    pub rollups: Rollups,
}

/// A report admitted to a lane: what to run and whom to answer.
struct Job {
    query: ReportQuery,
    rollups: Rollups,
    deadline: Instant,
    /// The caller's answer comes later, when the report has run: the one
    /// place a oneshot stands for actix's reply.
    reply: oneshot::Sender<Result<ReportOutcome, ReportError>>,
}

pub struct ReportsActor {
    pool: mysql_async::Pool,
    report: Lane,
    overview: Lane,
    metrics: Metrics,
}

impl ReportsActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    pub fn new(
        database_url: &str,
        per_tenant: usize,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        let connections = REPORT_CONNECTIONS + OVERVIEW_CONNECTIONS;
        Ok(ReportsActor {
            pool: mysql_async::Pool::new(store::pool_opts(database_url, connections)?),
            report: Lane::new(REPORT_CONNECTIONS, per_tenant, MAX_WAITING),
            overview: Lane::new(OVERVIEW_CONNECTIONS, per_tenant, MAX_WAITING),
            metrics,
        })
    }

    fn lane(&mut self, kind: ReportKind) -> &mut Lane {
        match kind {
            ReportKind::Report => &mut self.report,
            ReportKind::Overview => &mut self.overview,
        }
    }

    /// Runs `job` on a connection its lane counted for it; when it ends,
    /// the connection goes to the next tenant in turn.
    fn start(&mut self, kind: ReportKind, job: Job, ctx: &mut Context<Self>) {
        let (pool, tenant) = (self.pool.clone(), job.query.tenant);
        let Job {
            mut query,
            rollups,
            deadline,
            reply,
        } = job;
        let run = async move {
            // In its turn, so the lanes' bounds hold for the wait too.
            query.rollups = rollups.caught_up(query.wants_zoned()).await;
            run(pool, &query, deadline).await
        };
        ctx.spawn(run.into_actor(self).map(move |outcome, act, ctx| {
            let result = if outcome.is_ok() { "ok" } else { "error" };
            act.metrics.lookup("report", result);
            let _ = reply.send(outcome);
            act.lane(kind).finished(tenant);
            act.next(kind, ctx);
        }));
    }

    fn count_waiting(&self) {
        let waiting = self.report.waiting + self.overview.waiting;
        self.metrics.reports_waiting.set(waiting as i64);
    }

    /// Starts the next waiting report of `kind` whose caller still waits,
    /// if a connection is free.
    fn next(&mut self, kind: ReportKind, ctx: &mut Context<Self>) {
        while let Some(job) = self.lane(kind).next() {
            if job.reply.is_closed() || job.deadline <= Instant::now() {
                // Its caller gave up (or would have): it never runs.
                let _ = job.reply.send(Err(ReportError::Unavailable));
                self.lane(kind).finished(job.query.tenant);
                continue;
            }
            self.start(kind, job, ctx);
            break;
        }
        self.count_waiting();
    }
}

/// The way to the reports actor; cheap to clone.
#[derive(Clone)]
pub struct Reports(Addr<ReportsActor>);

impl Reports {
    pub fn new(addr: Addr<ReportsActor>) -> Reports {
        Reports(addr)
    }

    /// `query`'s report, in `kind`'s lane; a wait for the mailbox counts
    /// against the reports' deadline.
    pub async fn run(
        &self,
        kind: ReportKind,
        query: ReportQuery,
        rollups: Rollups,
    ) -> Result<ReportOutcome, ReportError> {
        let asked = self.0.send(RunReport {
            kind,
            query,
            rollups,
        });
        match tokio::time::timeout(REPORT_DEADLINE, asked).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => Err(ReportError::Unavailable),
        }
    }
}

impl Actor for ReportsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<RunReport> for ReportsActor {
    type Result = ResponseFuture<Result<ReportOutcome, ReportError>>;

    fn handle(&mut self, msg: RunReport, ctx: &mut Context<Self>) -> Self::Result {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            query: msg.query,
            rollups: msg.rollups,
            deadline: Instant::now() + REPORT_DEADLINE,
            reply,
        };
        match self.lane(msg.kind).admit(job) {
            Err(refusal) => {
                self.metrics.lookup("report", "busy");
                return Box::pin(ready(Err(refusal)));
            }
            Ok(Some(job)) => self.start(msg.kind, job, ctx),
            Ok(None) => self.count_waiting(),
        }
        Box::pin(async move { answer.await.unwrap_or(Err(ReportError::Unavailable)) })
    }
}

/// `query` on a connection of `pool`, done by `deadline`.
async fn run(
    pool: mysql_async::Pool,
    query: &ReportQuery,
    deadline: Instant,
) -> Result<ReportOutcome, ReportError> {
    let limit = statement_limit(deadline.saturating_duration_since(Instant::now()));
    let attempt = async {
        let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
        store::sales_report(&mut conn, query, limit).await
    };
    match tokio::time::timeout_at(deadline, attempt).await {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(StoreError::Rejected(e))) => {
            tracing::warn!(error = %e, "a report was refused");
            Err(ReportError::Refused)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a report failed");
            Err(ReportError::Unavailable)
        }
        Err(_) => Err(ReportError::Unavailable),
    }
}

/// How long the server may run a report's statements: what is left of its
/// deadline, rounded up to [`LIMIT_STEP`] (a few statement texts, each
/// prepared once), so a report the caller gave up on stops on the server
/// about when the caller's answer went, not a whole deadline later.
fn statement_limit(left: Duration) -> Duration {
    let steps = left.as_millis().div_ceil(LIMIT_STEP.as_millis()).max(1);
    LIMIT_STEP * u32::try_from(steps).unwrap_or(u32::MAX)
}

/// The granularity of [`statement_limit`].
const LIMIT_STEP: Duration = Duration::from_secs(5);

/// The reports of one lane: how many run, and who waits, by tenant, with
/// the order in which waiting tenants get their turn.
struct Lane {
    connections: usize,
    per_tenant: usize,
    max_waiting: usize,
    running: usize,
    waiting: usize,
    /// Reports running or waiting, by tenant (no entry at 0).
    held: HashMap<TenantId, usize>,
    queues: HashMap<TenantId, VecDeque<Job>>,
    /// Tenants with a waiting report, the next turn first.
    turns: VecDeque<TenantId>,
}

impl Lane {
    fn new(connections: usize, per_tenant: usize, max_waiting: usize) -> Lane {
        Lane {
            connections,
            per_tenant,
            max_waiting,
            running: 0,
            waiting: 0,
            held: HashMap::new(),
            queues: HashMap::new(),
            turns: VecDeque::new(),
        }
    }

    /// Takes `job` on: to run now (`Some`), or to wait for its turn.
    fn admit(&mut self, job: Job) -> Result<Option<Job>, ReportError> {
        let tenant = job.query.tenant;
        let held = self.held.get(&tenant).copied().unwrap_or(0);
        if held >= self.per_tenant {
            return Err(ReportError::TenantBusy(self.per_tenant));
        }
        if self.running < self.connections {
            self.running += 1;
            self.held.insert(tenant, held + 1);
            return Ok(Some(job));
        }
        if self.waiting >= self.max_waiting {
            return Err(ReportError::Busy);
        }
        self.held.insert(tenant, held + 1);
        self.waiting += 1;
        let queue = self.queues.entry(tenant).or_default();
        if queue.is_empty() {
            self.turns.push_back(tenant);
        }
        queue.push_back(job);
        Ok(None)
    }

    /// The next tenant's first waiting report, on a connection counted for
    /// it (give it back with [`Lane::finished`] whether it runs or not).
    fn next(&mut self) -> Option<Job> {
        if self.running >= self.connections {
            return None;
        }
        let tenant = self.turns.pop_front()?;
        let queue = self.queues.get_mut(&tenant)?;
        let job = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(&tenant);
        } else {
            self.turns.push_back(tenant);
        }
        self.waiting -= 1;
        self.running += 1;
        Some(job)
    }

    /// A report of `tenant` that held a connection ended.
    fn finished(&mut self, tenant: TenantId) {
        self.running = self.running.saturating_sub(1);
        match self.held.get_mut(&tenant) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                self.held.remove(&tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(tenant: u64) -> Job {
        let tenant = TenantId::new(tenant).expect("positive");
        let day = chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(20_454);
        let range = (day, day + chrono::Duration::days(1));
        let group = crate::domain::GroupBy::default();
        Job {
            query: ReportQuery::over(tenant, range, chrono_tz::Tz::UTC, group).expect("a day"),
            rollups: Rollups::none(),
            deadline: Instant::now() + REPORT_DEADLINE,
            reply: oneshot::channel().0,
        }
    }

    fn tenant_of(job: &Job) -> u64 {
        job.query.tenant.get()
    }

    #[test]
    fn a_tenant_holds_at_most_its_bound_running_or_waiting() {
        let mut lane = Lane::new(1, 2, 10);
        assert!(lane.admit(job(1)).expect("runs").is_some());
        assert!(lane.admit(job(1)).expect("waits").is_none());
        assert_eq!(lane.admit(job(1)).err(), Some(ReportError::TenantBusy(2)));
        assert!(lane.admit(job(2)).expect("waits").is_none());
    }

    #[test]
    fn a_freed_connection_goes_to_the_next_tenant_in_turn() {
        let mut lane = Lane::new(1, 3, 10);
        let running = lane.admit(job(1)).expect("admitted").expect("runs");
        for t in [1, 1, 2, 3] {
            assert!(lane.admit(job(t)).expect("waits").is_none());
        }
        assert!(lane.next().is_none(), "no connection is free");
        let mut order = Vec::new();
        let mut ended = tenant_of(&running);
        for _ in 0..4 {
            lane.finished(TenantId::new(ended).expect("positive"));
            let next = lane.next().expect("one waits");
            ended = tenant_of(&next);
            order.push(ended);
        }
        assert_eq!(order, [1, 2, 3, 1]);
        lane.finished(TenantId::new(ended).expect("positive"));
        assert!(lane.next().is_none());
        assert!(lane.held.is_empty() && lane.queues.is_empty() && lane.turns.is_empty());
        assert_eq!((lane.running, lane.waiting), (0, 0));
    }

    #[test]
    fn a_statement_may_run_what_is_left_of_its_reports_deadline_rounded_up() {
        let s = Duration::from_secs;
        assert_eq!(statement_limit(s(30)), s(30));
        assert_eq!(statement_limit(s(21)), s(25));
        assert_eq!(statement_limit(Duration::from_millis(10)), s(5));
        assert_eq!(statement_limit(Duration::ZERO), s(5));
    }

    #[test]
    fn past_its_waiting_bound_a_lane_refuses() {
        let mut lane = Lane::new(1, 5, 2);
        assert!(lane.admit(job(1)).expect("admitted").is_some());
        assert!(lane.admit(job(2)).expect("waits").is_none());
        assert!(lane.admit(job(3)).expect("waits").is_none());
        assert_eq!(lane.admit(job(4)).err(), Some(ReportError::Busy));
    }
}
