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

mod idempotency;
mod live_totals;
mod reservation;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::{ready, ActorFutureExt, WrapFuture};
use actix::prelude::*;

use super::lookup::{self, FindCatalog, LookupActor, LookupError};
use super::persistence::{SaveError, Writer};
use super::ranking::RankingFeed;
use crate::domain::{
    BranchId, Catalog, ItemProblem, NewSale, ProductMap, ProductTotal, SaleItem, StoredSale,
    TenantId,
};
use crate::metrics::Metrics;
use idempotency::{KeyClaims, RecentKeys};
pub use live_totals::{LiveTotals, Totals, ENCODINGS};
use reservation::Reservations;

/// A catalog is re-read from MySQL at most this often per tenant.
const CATALOG_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Attempts to settle keys that collide with rows stored meanwhile.
const KEY_ROUNDS: usize = 3;
const MAILBOX_CAPACITY: usize = 4096;
/// Requests one tenant works on at once (they run concurrently up to their
/// commit); more are refused with 503 rather than piled up. This, not the
/// mailbox, bounds a tenant's work: each message is taken off the mailbox
/// at once.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// When and how an idle actor leaves. After `after` without a request it
/// calls `forget`, which drops it from the registry if it is still the live
/// actor of its tenant, and stops: catalog, totals and remembered keys are
/// freed. The next request starts a fresh actor with the same totals.
#[derive(Clone)]
pub struct Idle {
    pub after: Duration,
    pub forget: Forget,
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
    #[error("unknown products")]
    UnknownProducts(Vec<ItemProblem>),
    #[error("idempotency key {0} was used for a different transaction")]
    Conflict(String),
    /// A product's all-time totals would no longer fit their columns.
    #[error("totals would overflow")]
    TotalsFull(Vec<ItemProblem>),
    /// The tenant already works on [`MAX_REQUESTS_IN_FLIGHT`] requests.
    #[error("too many requests in flight for this tenant")]
    Busy,
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

/// What the actor talks to.
#[derive(Clone)]
pub struct TenantDeps {
    pub writer: Writer,
    pub idle: Idle,
    /// Catalog re-reads go here, not behind the writes.
    pub lookup: Addr<LookupActor>,
    pub ranking: RankingFeed,
    pub metrics: Metrics,
}

pub struct TenantActor {
    id: TenantId,
    catalog: Catalog,
    last_reload: Option<Instant>,
    totals: Totals,
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

    fn into_result(self) -> Result<PostOutcome, TenantError> {
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
        })
    }
}

impl TenantActor {
    /// `totals` already holds the tenant's totals as loaded with `catalog`.
    pub fn new(id: TenantId, catalog: Catalog, totals: Totals, deps: TenantDeps) -> Self {
        TenantActor {
            id,
            catalog,
            last_reload: None,
            totals,
            recent: RecentKeys::default(),
            claims: KeyClaims::default(),
            reserved: Reservations::default(),
            in_flight: 0,
            deps,
        }
    }

    /// Passivates: nothing in flight, no request for the idle time. A
    /// request that reached the mailbox meanwhile is dropped unprocessed
    /// with the actor, and the registry sends it to a fresh one.
    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        let quiet = self.in_flight == 0 && self.totals.idle_for() >= self.deps.idle.after;
        if quiet && (self.deps.idle.forget)(self.id, &ctx.address()) {
            debug_assert!(
                self.claims.is_empty() && self.reserved.is_empty(),
                "no request in flight holds a key or a reservation"
            );
            self.deps.metrics.tenant_passivations.inc();
            ctx.stop();
        }
    }

    /// Step 1: the branch and every product are the tenant's. On a miss the
    /// catalog is read again (at most once a second), so that rows added
    /// straight into MySQL are accepted.
    fn check_catalog(&mut self, post: Post) -> Step {
        let Err(first) = catalog_problem(&self.catalog, post.branch, &post.items) else {
            return Box::pin(ready(post));
        };
        if !self.may_reload_catalog() {
            return Box::pin(ready(post.fail(first)));
        }
        let (lookup, tenant) = (self.deps.lookup.clone(), self.id);
        let read = async move { lookup::ask(&lookup, FindCatalog(tenant)).await };
        Box::pin(read.into_actor(self).map(|found, act, _| match found {
            Err(e) => post.fail(e.into()),
            Ok(None) => post.fail(TenantError::TenantNotFound),
            Ok(Some(catalog)) => {
                act.catalog = catalog;
                match catalog_problem(&act.catalog, post.branch, &post.items) {
                    Ok(()) => post,
                    Err(e) => post.fail(e),
                }
            }
        }))
    }

    fn may_reload_catalog(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_reload
            .is_some_and(|t| now.duration_since(t) < CATALOG_RELOAD_INTERVAL)
        {
            return false;
        }
        self.last_reload = Some(now);
        true
    }

    /// Step 2: the request's idempotency keys, once no other request holds them.
    fn claim_keys(&mut self, mut post: Post) -> Step {
        if post.failed.is_some() {
            return Box::pin(ready(post));
        }
        match self.claims.claim(&post.items) {
            Ok(()) => {
                post.claimed = true;
                Box::pin(ready(post))
            }
            Err(released) => Box::pin(
                async move {
                    let _ = released.await;
                }
                .into_actor(self)
                .then(|(), act, _| act.claim_keys(post)),
            ),
        }
    }

    /// Step 3: replays are answered from the keys committed before; the
    /// other items are stored. When MySQL already holds one of their keys
    /// (stored by an earlier process or request), the keys are read and the
    /// step runs again, at most [`KEY_ROUNDS`] times.
    fn store(&mut self, mut post: Post) -> Step {
        if post.failed.is_some() {
            return Box::pin(ready(post));
        }
        if let Err(e) = self
            .recent
            .settle(post.branch, &post.items, &mut post.outcome)
        {
            return Box::pin(ready(post.fail(e)));
        }
        let fresh = post.unsettled();
        if fresh.is_empty() || post.rounds == KEY_ROUNDS {
            return Box::pin(ready(post));
        }
        post.rounds += 1;
        let sales: Vec<NewSale> = fresh
            .iter()
            .map(|&i| NewSale::new(self.id, post.branch, &post.items[i]))
            .collect();
        let reservation = match self.reserved.take(&self.totals, &sales, &fresh) {
            Ok(r) => r,
            Err(full) => return Box::pin(ready(post.fail(TenantError::TotalsFull(full)))),
        };
        post.handed_over.store(true, Ordering::SeqCst);
        let writer = self.deps.writer.clone();
        let save = async move { writer.save(sales).await };
        Box::pin(save.into_actor(self).then(move |saved, act, _| {
            let next: Step = match saved {
                Ok(stored) => {
                    debug_assert_eq!(stored.len(), fresh.len(), "one stored row per sale sent");
                    act.apply_committed(&stored);
                    for (i, s) in fresh.into_iter().zip(stored) {
                        post.outcome[i] = Some(s);
                    }
                    post.created = true;
                    Box::pin(ready(post))
                }
                Err(SaveError::DuplicateKey) => act.read_stored_keys(post, &fresh),
                Err(e) => Box::pin(ready(post.fail(e.into()))),
            };
            act.reserved.release(reservation);
            next
        }))
    }

    /// The keys of `positions` as MySQL holds them, then [`Self::store`] again.
    fn read_stored_keys(&mut self, post: Post, positions: &[usize]) -> Step {
        let keys = positions
            .iter()
            .filter_map(|&i| post.items[i].idempotency_key.clone())
            .collect();
        let (writer, tenant) = (self.deps.writer.clone(), self.id);
        let read = async move { writer.stored_keys(tenant, keys).await };
        Box::pin(read.into_actor(self).then(|found, act, _| match found {
            Ok(found) => {
                act.recent.extend(found);
                act.store(post)
            }
            Err(e) => Box::pin(ready(post.fail(e.into()))) as Step,
        }))
    }

    /// Adds committed rows to the live totals and tells the ranking.
    fn apply_committed(&mut self, stored: &[StoredSale]) {
        let mut changed: ProductMap<ProductTotal> = ProductMap::default();
        for s in stored {
            let sale = &s.sale;
            let catalog = &self.catalog;
            let total = self
                .totals
                .add(self.id, || catalog.product_name(sale.product_id), sale);
            changed.insert(sale.product_id, total);
            if sale.idempotency_key.is_some() {
                self.recent.insert(s.clone());
            }
        }
        self.totals.changed();
        self.deps.ranking.push(changed.into_values());
    }

    /// Step 4: gives back what the request held and answers it.
    fn answer(&mut self, post: Post, ctx: &mut Context<Self>) -> Result<PostOutcome, TenantError> {
        debug_assert!(self.in_flight > 0, "every answered request was counted in");
        self.in_flight = self.in_flight.saturating_sub(1);
        if post.claimed {
            self.claims.release(&post.items);
        }
        let span = post.span.clone();
        let _in_request = span.enter();
        let result = post.into_result();
        if let Err(e) = &result {
            tracing::debug!(error = %e, "sales request refused");
        }
        // Rows may be stored that these totals lack: stop, so the next
        // request starts a fresh actor that reloads from MySQL.
        if matches!(result, Err(TenantError::Save(SaveError::OutcomeUnknown))) {
            tracing::warn!("commit outcome unknown; reloading the tenant");
            ctx.stop();
        }
        result
    }
}

/// Whether `branch` and every item's product are in `catalog`.
fn catalog_problem(
    catalog: &Catalog,
    branch: BranchId,
    items: &[SaleItem],
) -> Result<(), TenantError> {
    if !catalog.branches.contains(&branch) {
        return Err(TenantError::BranchNotFound);
    }
    let unknown: Vec<ItemProblem> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| !catalog.products.contains_key(&item.product_id))
        .map(|(i, _)| ItemProblem::new(i, "productID", "is not a product of this tenant"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TenantError::UnknownProducts(unknown))
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        self.deps.metrics.tenant_actors.inc();
        let every =
            (self.deps.idle.after / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| act.stop_if_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.deps.metrics.tenant_actors.dec();
    }
}

impl Handler<PostSales> for TenantActor {
    type Result = ResponseActFuture<Self, Result<PostOutcome, TenantError>>;

    fn handle(&mut self, msg: PostSales, _: &mut Context<Self>) -> Self::Result {
        if self.in_flight >= MAX_REQUESTS_IN_FLIGHT {
            return Box::pin(ready(Err(TenantError::Busy)));
        }
        self.in_flight += 1;
        let post = Post {
            outcome: vec![None; msg.items.len()],
            branch: msg.branch_id,
            items: msg.items,
            handed_over: msg.handed_over,
            span: msg.span,
            created: false,
            claimed: false,
            rounds: 0,
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
