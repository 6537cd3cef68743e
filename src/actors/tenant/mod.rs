//! TenantActor: one per tenant. It checks each sale against the tenant's
//! catalog, settles idempotency keys, hands the rows to the tenant's
//! persistence actor and, once they are committed, adds them to the tenant's
//! live totals before the request is answered (read-your-writes).
//!
//! Requests of one tenant are processed concurrently up to the commit (so a
//! busy till does not wait for another's commit), but two requests carrying
//! the same idempotency key never are: the second waits for the first's
//! outcome. Only this actor writes the tenant's totals; HTTP readers read
//! them directly.
//!
//! A request is a chain of steps ([`Post`] carries what it found so far):
//! the catalog check, the key claim, then store rounds, then the answer.
//! Each step runs on the actor with `&mut self`, between the awaits of a
//! catalog read or a commit, so the actor's state never needs a lock.

mod catalog;
mod idempotency;
mod live_totals;
mod refunds;
mod reload;
mod reservation;
mod steps;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::{ready, ActorFutureExt};
use actix::prelude::*;

use super::lookup::{LookupActor, LookupError};
use super::office::Office;
use super::persistence::{SaveError, Seq, Writer};
use super::ranking::RankingFeed;
use crate::domain::{BranchId, Catalog, ItemProblem, SaleItem, StoredSale, TenantId, TenantLimits};
use crate::metrics::Metrics;
pub use catalog::{
    AddBranch, AddProducts, CatalogView, ChangeBranch, ChangeProduct, ChangeTenant, Rendered,
    SharedCatalog,
};
use idempotency::{KeyClaims, RecentKeys};
pub use live_totals::{Encoding, LiveTotals, Totals};
pub use refunds::{PostRefunds, RefundOutcome};
use reservation::Reservations;

/// A catalog is re-read from MySQL at most this often per tenant.
const CATALOG_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Attempts to settle keys that collide with rows stored meanwhile.
const KEY_ROUNDS: usize = 3;
/// Requests one tenant works on at once (they run concurrently up to their
/// commit) are bounded by `TenantLimits::requests_in_flight`; more are
/// refused with 503 rather than piled up. That, not the mailbox, bounds a
/// tenant's work: each message is taken off the mailbox at once.
const MAILBOX_CAPACITY: usize = 4096;

/// How an actor leaves. After `idle_after` without a request it calls
/// `forget`, which drops it from the registry if it is still the live actor
/// of its tenant, and stops: catalog, totals and remembered keys are freed,
/// and the next request starts a fresh actor with the same totals. An
/// actor that stops any other way (a panic) calls `died`: the registry
/// then starts its successor at once, from MySQL.
#[derive(Clone)]
pub struct Lifecycle {
    pub idle_after: Duration,
    pub forget: Forget,
    pub died: Forget,
}

/// Drops a tenant's actor from the registry if it is still the live one.
pub type Forget = Arc<dyn Fn(TenantId, &Addr<TenantActor>) -> bool + Send + Sync>;

/// Why a tenant refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("unknown tenant")]
    TenantNotFound,
    #[error("unknown branch for this tenant")]
    BranchNotFound,
    #[error("unknown product for this tenant")]
    ProductNotFound,
    /// The tenant is suspended: its tills are refused.
    #[error("the tenant is suspended")]
    Suspended,
    /// The branch is closed: it takes no new sales.
    #[error("the branch is closed")]
    BranchClosed,
    #[error("inactive products")]
    InactiveProducts(Vec<ItemProblem>),
    /// A `sku` or `code` names a row with other content.
    #[error("a natural key is taken")]
    NaturalKeyTaken(Vec<ItemProblem>),
    /// A `sku` given twice in one request.
    #[error("a natural key is repeated")]
    RepeatedKeys(Vec<ItemProblem>),
    /// The tenant would hold more of its catalog than its bound: what, how
    /// many it holds, and the bound.
    #[error("the tenant holds {held} {what}, the most it may")]
    CatalogFull {
        what: &'static str,
        held: u64,
        limit: usize,
    },
    #[error("unknown products")]
    UnknownProducts(Vec<ItemProblem>),
    /// Items refused for what they say (a price the product lacks or its
    /// currency cannot hold, a refund of more than is left, …).
    #[error("{message}")]
    Invalid {
        message: &'static str,
        problems: Vec<ItemProblem>,
    },
    /// The tenant has sales: its currency stays.
    #[error("the tenant has sales in its currency")]
    CurrencyInUse,
    /// An idempotency key already stored with other content.
    #[error("idempotency key {} was used for a different transaction", .0.as_str())]
    IdempotencyConflict(crate::domain::IdempotencyKey),
    /// A product's all-time totals would no longer fit their columns.
    #[error("totals would overflow")]
    TotalsFull(Vec<ItemProblem>),
    /// The tenant already works on its most requests at once.
    #[error("too many requests in flight for this tenant")]
    Busy,
    /// New sales whose timestamps are too far ahead of the clock.
    #[error("timestamps ahead of the clock")]
    TimestampsAhead(Vec<ItemProblem>),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("the tenant's actor stopped while handling the request")]
    Crashed,
}

/// What a committed (or replayed) request answers.
#[derive(Debug)]
pub struct PostOutcome {
    /// At least one item was stored by this request (201) rather than all replayed (200).
    pub created: bool,
    /// One per request item, in request order.
    pub sales: Vec<StoredSale>,
    /// The tenant's currency (the prices' and totals').
    pub currency: crate::domain::Currency,
}

/// Store these sales of one branch.
#[derive(Message)]
#[rtype(result = "Result<PostOutcome, TenantError>")]
pub struct PostSales {
    pub branch_id: BranchId,
    pub items: Arc<[SaleItem]>,
    /// Set once rows were handed to persistence: if the actor dies before
    /// answering, only then may they have been stored (otherwise the
    /// request can safely go to a fresh actor).
    pub handed_over: Arc<AtomicBool>,
    /// The HTTP request's span (with its request id): spans do not cross
    /// mailboxes by themselves.
    pub span: tracing::Span,
}

/// Test hook: makes the actor panic, to prove a crash is survived.
#[cfg(feature = "testing")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// Test hook: makes the actor panic once its next commit is answered,
/// before it counts it (rows stored, totals and ranking without them).
#[cfg(feature = "testing")]
#[derive(Message)]
#[rtype(result = "()")]
pub struct CrashAfterNextCommit;

/// Test hook: how many requests wait for a key another request holds.
#[cfg(feature = "testing")]
#[derive(Message)]
#[rtype(result = "usize")]
pub struct ClaimWaiters;

/// What the actor talks to.
#[derive(Clone)]
pub struct TenantDeps {
    pub writer: Writer,
    pub lifecycle: Lifecycle,
    /// Catalog re-reads go here, not behind the writes.
    pub lookup: Addr<LookupActor>,
    /// Catalog changes are committed here.
    pub office: Office,
    /// What the tenant's catalog may hold.
    pub limits: TenantLimits,
    /// The catalog as HTTP readers see it.
    pub catalog: Arc<SharedCatalog>,
    pub ranking: RankingFeed,
    pub metrics: Metrics,
}

pub struct TenantActor {
    id: TenantId,
    catalog: Arc<Catalog>,
    last_catalog_read: Option<Instant>,
    totals: Totals,
    /// The totals hold every commit answered with a `Seq` up to this (a
    /// reload saw them); later answers add theirs.
    covered_through: Seq,
    /// Stopped for being idle (not by a panic).
    passivated: bool,
    #[cfg(feature = "testing")]
    crash_after_commit: bool,
    recent: RecentKeys,
    claims: KeyClaims,
    reserved: Reservations,
    /// Requests taken from the mailbox and not yet answered.
    in_flight: usize,
    deps: TenantDeps,
}

/// One request on its way through the actor's steps.
struct Post {
    branch: BranchId,
    items: Arc<[SaleItem]>,
    handed_over: Arc<AtomicBool>,
    span: tracing::Span,
    /// The stored sale of each item, once known.
    outcome: Vec<Option<StoredSale>>,
    /// Some item was stored by this request.
    created: bool,
    /// The request holds its items' keys.
    claimed: bool,
    /// Store rounds run.
    rounds: usize,
    /// The request's keys were read from MySQL once already.
    keys_read: bool,
    /// Set by the step that refused the request; later steps pass it on.
    failed: Option<TenantError>,
}

type Step = ResponseActFuture<TenantActor, Post>;

impl Post {
    fn fail(mut self, e: TenantError) -> Post {
        self.failed = Some(e);
        self
    }

    /// Positions of the items not settled yet.
    fn unsettled(&self) -> Vec<usize> {
        (0..self.items.len())
            .filter(|&i| self.outcome[i].is_none())
            .collect()
    }

    fn into_result(self, currency: crate::domain::Currency) -> Result<PostOutcome, TenantError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let sales: Option<Vec<StoredSale>> = self.outcome.into_iter().collect();
        let sales = sales.ok_or(SaveError::Rejected(
            "idempotency keys could not be settled".into(),
        ))?;
        Ok(PostOutcome {
            created: self.created,
            sales,
            currency,
        })
    }
}

impl TenantActor {
    /// `totals` already holds the tenant's totals as loaded with `catalog`.
    pub fn new(id: TenantId, catalog: Arc<Catalog>, totals: Totals, deps: TenantDeps) -> Self {
        TenantActor {
            id,
            catalog,
            last_catalog_read: None,
            totals,
            covered_through: Seq::default(),
            passivated: false,
            #[cfg(feature = "testing")]
            crash_after_commit: false,
            recent: RecentKeys::default(),
            claims: KeyClaims::default(),
            reserved: Reservations::default(),
            in_flight: 0,
            deps,
        }
    }

    /// Counts a request in, unless the tenant works on its most already.
    fn admit(&mut self) -> Result<(), TenantError> {
        if self.in_flight >= self.deps.limits.requests_in_flight {
            return Err(TenantError::Busy);
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Passivates: nothing in flight, no request for the idle time. A
    /// request that reached the mailbox meanwhile is dropped unprocessed
    /// with the actor, and the registry sends it to a fresh one.
    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        let quiet = self.in_flight == 0 && self.totals.idle_for() >= self.deps.lifecycle.idle_after;
        if quiet && (self.deps.lifecycle.forget)(self.id, &ctx.address()) {
            debug_assert!(
                self.claims.is_empty() && self.reserved.is_empty(),
                "no request in flight holds a key or a reservation"
            );
            self.deps.metrics.tenant_passivations.inc();
            self.passivated = true;
            ctx.stop();
        }
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        self.deps.metrics.tenant_actors.inc();
        let every = (self.deps.lifecycle.idle_after / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| act.stop_if_idle(ctx));
    }

    /// Also runs after a panic (actix's context is dropped): then the
    /// registry replaces the actor at once.
    fn stopped(&mut self, ctx: &mut Context<Self>) {
        self.deps.metrics.tenant_actors.dec();
        if !self.passivated {
            (self.deps.lifecycle.died)(self.id, &ctx.address());
        }
    }
}

impl Handler<PostSales> for TenantActor {
    type Result = ResponseActFuture<Self, Result<PostOutcome, TenantError>>;

    fn handle(&mut self, msg: PostSales, _: &mut Context<Self>) -> Self::Result {
        if let Err(busy) = self.admit() {
            return Box::pin(ready(Err(busy)));
        }
        let post = Post {
            outcome: vec![None; msg.items.len()],
            branch: msg.branch_id,
            items: msg.items,
            handed_over: msg.handed_over,
            span: msg.span,
            created: false,
            claimed: false,
            rounds: 0,
            keys_read: false,
            failed: None,
        };
        Box::pin(
            self.check_catalog(post)
                .then(|post, act, _| act.claim_keys(post))
                .then(|post, act, _| act.store(post))
                .map(|post, act, ctx| act.answer(post, ctx)),
        )
    }
}

#[cfg(feature = "testing")]
impl Handler<Crash> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("tenant actor crash requested by a test");
    }
}

#[cfg(feature = "testing")]
impl Handler<ClaimWaiters> for TenantActor {
    type Result = usize;

    fn handle(&mut self, _: ClaimWaiters, _: &mut Context<Self>) -> usize {
        self.claims.waiting()
    }
}

#[cfg(feature = "testing")]
impl Handler<CrashAfterNextCommit> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: CrashAfterNextCommit, _: &mut Context<Self>) {
        self.crash_after_commit = true;
    }
}
