//! TenantActor: one per tenant. It checks each sale against the tenant's
//! catalog, settles idempotency keys, hands the rows to the tenant's
//! persistence actor and, once they are committed, adds them to the tenant's
//! live totals before the request is answered (read-your-writes).
//!
//! Requests of one tenant are processed concurrently up to the commit (so a
//! busy till does not wait for another's commit), but two requests carrying
//! the same idempotency key never are: the second waits for the first's
//! outcome. Only this actor writes the tenant's `totals` map; HTTP readers
//! read it directly.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::web::Bytes;
use dashmap::DashMap;
use tokio::sync::{oneshot, Notify};
use tracing::Instrument;

use super::lookup::{self, FindCatalog, LookupActor, LookupError};
use super::persistence::{PersistenceActor, Read, Save, SaveError};
use super::ranking::RankingFeed;
use crate::domain::{
    BranchId, IdempotencyKey, Money, NewSale, ProductId, ProductMap, SaleItem, StoredSale, TenantId,
};
use crate::metrics::Metrics;
use crate::store::{Catalog, ProductTotal};

/// A catalog is re-read from MySQL at most this often per tenant.
const CATALOG_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Committed keys remembered per tenant, so most replays need no lookup.
const RECENT_KEYS: usize = 4096;
/// Attempts to settle keys that collide with rows stored meanwhile.
const KEY_ROUNDS: usize = 3;
pub(crate) const MAILBOX_CAPACITY: usize = 4096;
/// Requests one tenant works on at once (they run concurrently up to their
/// commit); more are refused with 503 rather than piled up.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 1024;

/// A tenant's live totals, shared with HTTP readers.
pub type Totals = Arc<LiveTotals>;

/// Per-product totals that readers use without a mailbox round trip, plus
/// a rendering of them kept until the next change (a busy back office
/// re-reading 1,000 products should not re-sort and re-encode them each time).
pub struct LiveTotals {
    by_product: DashMap<ProductId, ProductTotal>,
    /// Bumped after every change is applied.
    version: AtomicU64,
    /// When the tenant was last asked for anything (reads included), in
    /// milliseconds of [`clock_ms`]: its actor passivates after a while without.
    last_used_ms: AtomicU64,
    /// One cached rendering per encoding, tagged with the version it shows.
    rendered: Mutex<[Option<(u64, Bytes)>; ENCODINGS]>,
}

/// Renderings kept per tenant (plain and gzip JSON).
pub const ENCODINGS: usize = 2;

/// Milliseconds since the process's first call: a cheap monotonic clock
/// that fits an atomic.
fn clock_ms() -> u64 {
    static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}

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

impl LiveTotals {
    pub fn new(totals: Vec<ProductTotal>) -> Self {
        LiveTotals {
            by_product: totals.into_iter().map(|t| (t.product_id, t)).collect(),
            version: AtomicU64::new(0),
            last_used_ms: AtomicU64::new(clock_ms()),
            rendered: Mutex::new([None, None]),
        }
    }

    /// Notes that the tenant is in use now.
    pub fn touch(&self) {
        self.last_used_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// How long the tenant has not been used.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(clock_ms().saturating_sub(self.last_used_ms.load(Ordering::Relaxed)))
    }

    /// A copy of every product's totals.
    pub fn snapshot(&self) -> Vec<ProductTotal> {
        // Copied out so no map guard outlives this call.
        self.by_product.iter().map(|e| e.value().clone()).collect()
    }

    /// `render(snapshot)` in encoding `slot` (below [`ENCODINGS`]), reused
    /// while nothing changed. The version is read before the snapshot, so a
    /// rendering is never tagged newer than its data.
    pub fn rendered(&self, slot: usize, render: impl FnOnce(Vec<ProductTotal>) -> Bytes) -> Bytes {
        let slot = slot.min(ENCODINGS - 1);
        let version = self.version.load(Ordering::Acquire);
        if let Ok(cache) = self.rendered.lock() {
            if let Some((v, body)) = &cache[slot] {
                if *v == version {
                    return body.clone();
                }
            }
        }
        let body = render(self.snapshot());
        if let Ok(mut cache) = self.rendered.lock() {
            cache[slot] = Some((version, body.clone()));
        }
        body
    }

    /// A product's committed totals (zero if it never sold).
    pub fn get(&self, product: ProductId) -> (u64, Money) {
        self.by_product
            .get(&product)
            .map_or((0, Money::ZERO), |t| (t.quantity, t.revenue))
    }

    /// Adds one committed sale; returns the product's new totals. (The
    /// tenant actor made sure it fits: see `Reservation`.)
    fn add(
        &self,
        tenant_id: TenantId,
        name: impl FnOnce() -> Arc<str>,
        sale: &NewSale,
    ) -> ProductTotal {
        let mut entry = self
            .by_product
            .entry(sale.product_id)
            .or_insert_with(|| ProductTotal {
                tenant_id,
                product_id: sale.product_id,
                name: name(),
                quantity: 0,
                revenue: Money::ZERO,
            });
        entry.quantity = entry.quantity.saturating_add(u64::from(sale.quantity));
        entry.revenue = entry
            .revenue
            .checked_total(sale.revenue())
            .unwrap_or(entry.revenue);
        entry.clone()
    }

    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }
}

/// Why a tenant refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("unknown tenant")]
    TenantNotFound,
    #[error("unknown branch for this tenant")]
    BranchNotFound,
    #[error("unknown products")]
    UnknownProducts(BTreeMap<String, String>),
    #[error("idempotency key {0} was used for a different transaction")]
    Conflict(String),
    /// A product's all-time totals would no longer fit their columns.
    #[error("totals would overflow")]
    TotalsFull(BTreeMap<String, String>),
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
#[rtype(result = "()")]
pub struct PostSales {
    pub branch_id: BranchId,
    pub items: Arc<[SaleItem]>,
    /// Field names in errors read `[i].productID` for arrays.
    pub is_array: bool,
    /// Set once rows were handed to persistence: if the actor dies before
    /// answering, only then may they have been stored (otherwise the
    /// request can safely go to a fresh actor).
    pub handed_over: Arc<AtomicBool>,
    /// The HTTP request's span (with its request id): spans do not cross
    /// mailboxes by themselves.
    pub span: tracing::Span,
    pub reply: oneshot::Sender<Result<PostOutcome, TenantError>>,
}

/// Test hook: makes the actor panic, to prove a crash is survived.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Crash;

/// What the actor talks to.
#[derive(Clone)]
pub struct TenantDeps {
    pub persistence: Addr<PersistenceActor>,
    pub idle: Idle,
    /// Catalog re-reads go here, not behind the writes.
    pub lookup: Addr<LookupActor>,
    pub ranking: RankingFeed,
    pub metrics: Metrics,
}

pub struct TenantActor {
    state: Rc<RefCell<TenantState>>,
    deps: TenantDeps,
    /// Requests taken from the mailbox and not yet answered.
    in_flight: usize,
}

struct TenantState {
    id: TenantId,
    catalog: Catalog,
    last_reload: Option<Instant>,
    totals: Totals,
    recent: RecentKeys,
    /// Keys of requests in flight; a request with one of them waits.
    pending: HashMap<IdempotencyKey, Rc<Notify>>,
    /// What requests handed to persistence and not yet settled add, per
    /// product: counted with the committed totals, so that no two requests
    /// together push a total past its column.
    reserved: ProductMap<(u64, Money)>,
}

impl TenantActor {
    /// `totals` already holds the tenant's totals as loaded with `catalog`.
    pub fn new(id: TenantId, catalog: Catalog, totals: Totals, deps: TenantDeps) -> Self {
        let state = TenantState {
            id,
            catalog,
            last_reload: None,
            totals,
            recent: RecentKeys::default(),
            pending: HashMap::new(),
            reserved: ProductMap::default(),
        };
        TenantActor {
            state: Rc::new(RefCell::new(state)),
            deps,
            in_flight: 0,
        }
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

impl TenantActor {
    /// Passivates: nothing in flight, no key being settled, no request for
    /// the idle time. A request that reached the mailbox meanwhile is
    /// dropped unprocessed with the actor, and the registry sends it to a
    /// fresh one.
    fn stop_if_idle(&mut self, ctx: &mut Context<Self>) {
        let (id, quiet) = {
            let s = self.state.borrow();
            (
                s.id,
                s.pending.is_empty() && s.totals.idle_for() >= self.deps.idle.after,
            )
        };
        if self.in_flight == 0 && quiet && (self.deps.idle.forget)(id, &ctx.address()) {
            self.deps.metrics.tenant_passivations.inc();
            ctx.stop();
        }
    }
}

impl Handler<PostSales> for TenantActor {
    type Result = ();

    fn handle(&mut self, msg: PostSales, ctx: &mut Context<Self>) {
        let state = self.state.clone();
        let deps = self.deps.clone();
        let PostSales {
            branch_id,
            items,
            is_array,
            handed_over,
            span,
            reply,
        } = msg;
        if self.in_flight >= MAX_REQUESTS_IN_FLIGHT {
            let _ = reply.send(Err(SaveError::Overloaded.into()));
            return;
        }
        self.in_flight += 1;
        ctx.spawn(
            async move { post(&state, &deps, branch_id, &items, is_array, &handed_over).await }
                .instrument(span)
                .into_actor(self)
                .map(|outcome, act, ctx| {
                    act.in_flight -= 1;
                    if let Err(e) = &outcome {
                        tracing::debug!(error = %e, "sales request refused");
                    }
                    // Rows may be stored that these totals lack: stop, so the
                    // next request starts a fresh actor that reloads from MySQL.
                    if matches!(outcome, Err(TenantError::Save(SaveError::OutcomeUnknown))) {
                        tracing::warn!("commit outcome unknown; reloading the tenant");
                        ctx.stop();
                    }
                    let _ = reply.send(outcome);
                }),
        );
    }
}

impl Handler<Crash> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("tenant actor crash requested by a test");
    }
}

async fn post(
    state: &Rc<RefCell<TenantState>>,
    deps: &TenantDeps,
    branch_id: BranchId,
    items: &[SaleItem],
    is_array: bool,
    handed_over: &AtomicBool,
) -> Result<PostOutcome, TenantError> {
    ensure_in_catalog(state, deps, branch_id, items, is_array).await?;
    let _claim = KeyClaim::acquire(state, items).await;
    let tenant = state.borrow().id;
    let mut outcome: Vec<Option<StoredSale>> = vec![None; items.len()];
    let mut created = false;
    for _ in 0..KEY_ROUNDS {
        state
            .borrow()
            .settle_known_keys(branch_id, items, &mut outcome)?;
        let fresh: Vec<usize> = (0..items.len()).filter(|&i| outcome[i].is_none()).collect();
        if fresh.is_empty() {
            break;
        }
        let sales: Vec<NewSale> = fresh
            .iter()
            .map(|&i| NewSale::new(tenant, branch_id, &items[i]))
            .collect();
        let _reservation = Reservation::take(state, &sales, &fresh, is_array)?;
        handed_over.store(true, Ordering::SeqCst);
        match save(deps, sales).await {
            Ok(stored) => {
                state.borrow_mut().apply_committed(&stored, deps);
                for (i, s) in fresh.into_iter().zip(stored) {
                    outcome[i] = Some(s);
                }
                created = true;
                break;
            }
            Err(SaveError::DuplicateKey) => {
                // Keys stored before (by an earlier process or an earlier
                // request): fetch them, then settle again.
                let keys = fresh
                    .iter()
                    .filter_map(|&i| items[i].idempotency_key.clone())
                    .collect();
                let found = read(&deps.persistence, |reply| Read::Keys {
                    tenant,
                    keys,
                    reply,
                })
                .await?;
                state.borrow_mut().recent.extend(found);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let sales: Option<Vec<StoredSale>> = outcome.into_iter().collect();
    let sales = sales.ok_or(SaveError::Rejected(
        "idempotency keys could not be settled".into(),
    ))?;
    Ok(PostOutcome { created, sales })
}

/// Checks branch and products; on a miss re-reads the catalog (at most once
/// a second) so that rows added straight into MySQL are accepted.
async fn ensure_in_catalog(
    state: &Rc<RefCell<TenantState>>,
    deps: &TenantDeps,
    branch_id: BranchId,
    items: &[SaleItem],
    is_array: bool,
) -> Result<(), TenantError> {
    let first = check_catalog(&state.borrow().catalog, branch_id, items, is_array);
    if first.is_ok() || !state.borrow_mut().may_reload() {
        return first;
    }
    let tenant = state.borrow().id;
    match lookup::ask(&deps.lookup, FindCatalog(tenant)).await? {
        Some(catalog) => state.borrow_mut().catalog = catalog,
        None => return Err(TenantError::TenantNotFound),
    }
    check_catalog(&state.borrow().catalog, branch_id, items, is_array)
}

fn check_catalog(
    catalog: &Catalog,
    branch_id: BranchId,
    items: &[SaleItem],
    is_array: bool,
) -> Result<(), TenantError> {
    if !catalog.branches.contains(&branch_id) {
        return Err(TenantError::BranchNotFound);
    }
    let unknown: BTreeMap<String, String> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| !catalog.products.contains_key(&item.product_id))
        .map(|(i, _)| {
            let name = if is_array {
                format!("[{i}].productID")
            } else {
                "productID".to_string()
            };
            (name, "is not a product of this tenant".to_string())
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TenantError::UnknownProducts(unknown))
    }
}

/// Hands the rows to persistence and waits for the outcome. The answer is
/// a oneshot because it comes later, from the flush, not from the handler.
async fn save(deps: &TenantDeps, sales: Vec<NewSale>) -> Result<Vec<StoredSale>, SaveError> {
    let (reply, rx) = oneshot::channel();
    deps.persistence
        .try_send(Save { sales, reply })
        .map_err(|e| match e {
            SendError::Full(_) => SaveError::Overloaded,
            SendError::Closed(_) => SaveError::Unavailable,
        })?;
    // Once queued, the rows may be committed even if the answer never
    // comes (the persistence actor stopped): the outcome is unknown.
    rx.await.map_err(|_| SaveError::OutcomeUnknown)?
}

/// Queues a read behind the tenant's writes and waits for it.
pub(crate) async fn read<T>(
    persistence: &Addr<PersistenceActor>,
    make: impl FnOnce(oneshot::Sender<Result<T, SaveError>>) -> Read,
) -> Result<T, SaveError> {
    let (reply, rx) = oneshot::channel();
    persistence.try_send(make(reply)).map_err(|e| match e {
        SendError::Full(_) => SaveError::Overloaded,
        SendError::Closed(_) => SaveError::Unavailable,
    })?;
    rx.await.map_err(|_| SaveError::Unavailable)?
}

impl TenantState {
    fn may_reload(&mut self) -> bool {
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

    /// Fills `outcome` for items whose key is already committed; a key
    /// committed with other content is a conflict (nothing is stored).
    fn settle_known_keys(
        &self,
        branch_id: BranchId,
        items: &[SaleItem],
        outcome: &mut [Option<StoredSale>],
    ) -> Result<(), TenantError> {
        for (i, item) in items.iter().enumerate() {
            let Some(key) = &item.idempotency_key else {
                continue;
            };
            let Some(stored) = self.recent.get(key) else {
                continue;
            };
            if !stored.same_content(branch_id, item) {
                return Err(TenantError::Conflict(key.as_str().to_string()));
            }
            outcome[i] = Some(stored.clone());
        }
        Ok(())
    }

    /// Adds committed rows to the live totals and tells the ranking.
    fn apply_committed(&mut self, stored: &[StoredSale], deps: &TenantDeps) {
        let mut changed: ProductMap<ProductTotal> = ProductMap::default();
        for s in stored {
            let sale = &s.sale;
            let catalog = &self.catalog;
            let total = self
                .totals
                .add(self.id, || product_name(catalog, sale.product_id), sale);
            changed.insert(sale.product_id, total);
            if sale.idempotency_key.is_some() {
                self.recent.insert(s.clone());
            }
        }
        self.totals.changed();
        deps.ranking.push(changed.into_values());
    }
}

fn product_name(catalog: &Catalog, product: ProductId) -> Arc<str> {
    catalog
        .products
        .get(&product)
        .cloned()
        .unwrap_or_else(|| Arc::from(""))
}

/// What one request adds to its products' totals while it is being stored.
/// Taking it fails if a total would overflow; dropping it (once the outcome
/// is known and, on success, applied to the totals) gives it back.
struct Reservation {
    state: Rc<RefCell<TenantState>>,
    added: ProductMap<(u64, Money)>,
}

impl Reservation {
    fn take(
        state: &Rc<RefCell<TenantState>>,
        sales: &[NewSale],
        positions: &[usize],
        is_array: bool,
    ) -> Result<Reservation, TenantError> {
        let mut s = state.borrow_mut();
        let mut added: ProductMap<(u64, Money)> = ProductMap::default();
        let mut full = BTreeMap::new();
        for (sale, &i) in sales.iter().zip(positions) {
            let field = |name: &str| {
                if is_array {
                    format!("[{i}].{name}")
                } else {
                    name.to_string()
                }
            };
            let (committed_q, committed_r) = s.totals.get(sale.product_id);
            let (held_q, held_r) = s
                .reserved
                .get(&sale.product_id)
                .copied()
                .unwrap_or_default();
            let mine = added.entry(sale.product_id).or_default();
            let quantity = [committed_q, held_q, mine.0, u64::from(sale.quantity)]
                .into_iter()
                .try_fold(0u64, u64::checked_add);
            let revenue = [committed_r, held_r, mine.1, sale.revenue()]
                .into_iter()
                .try_fold(Money::ZERO, Money::checked_total);
            match (quantity, revenue) {
                (None, _) => {
                    full.insert(
                        field("quantitySold"),
                        format!(
                            "would take product {}'s total quantity past {}",
                            sale.product_id,
                            u64::MAX
                        ),
                    );
                }
                (_, None) => {
                    full.insert(
                        field("pricePerUnit"),
                        format!(
                            "would take product {}'s total sales past {}",
                            sale.product_id,
                            Money::new(Money::max_total())
                        ),
                    );
                }
                (Some(_), Some(_)) => {
                    mine.0 += u64::from(sale.quantity);
                    mine.1 += sale.revenue();
                }
            }
        }
        if !full.is_empty() {
            return Err(TenantError::TotalsFull(full));
        }
        for (product, (q, r)) in &added {
            let held = s.reserved.entry(*product).or_default();
            held.0 += q;
            held.1 += *r;
        }
        drop(s);
        Ok(Reservation {
            state: state.clone(),
            added,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Ok(mut s) = self.state.try_borrow_mut() else {
            return;
        };
        for (product, (q, r)) in &self.added {
            if let Some(held) = s.reserved.get_mut(product) {
                held.0 -= q;
                held.1 = Money::new(held.1.amount() - r.amount());
                if held.0 == 0 {
                    s.reserved.remove(product);
                }
            }
        }
    }
}

/// Keys this request is settling; dropping it wakes requests that wait for them.
struct KeyClaim {
    state: Rc<RefCell<TenantState>>,
    keys: Vec<IdempotencyKey>,
    done: Rc<Notify>,
}

impl KeyClaim {
    async fn acquire(state: &Rc<RefCell<TenantState>>, items: &[SaleItem]) -> KeyClaim {
        let keys: Vec<IdempotencyKey> = items
            .iter()
            .filter_map(|i| i.idempotency_key.clone())
            .collect();
        loop {
            let busy: Vec<Rc<Notify>> = {
                let s = state.borrow();
                keys.iter()
                    .filter_map(|k| s.pending.get(k).cloned())
                    .collect()
            };
            if busy.is_empty() {
                break;
            }
            // Created before awaiting, so no wake-up between here and there is missed.
            let waits: Vec<_> = busy.iter().map(|n| n.notified()).collect();
            for w in waits {
                w.await;
            }
        }
        let done = Rc::new(Notify::new());
        let mut s = state.borrow_mut();
        for k in &keys {
            s.pending.insert(k.clone(), done.clone());
        }
        KeyClaim {
            state: state.clone(),
            keys,
            done,
        }
    }
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            for k in &self.keys {
                s.pending.remove(k);
            }
        }
        self.done.notify_waiters();
    }
}

/// A bounded memory of committed keys, oldest forgotten first.
#[derive(Default)]
struct RecentKeys {
    by_key: HashMap<IdempotencyKey, StoredSale>,
    order: VecDeque<IdempotencyKey>,
}

impl RecentKeys {
    fn get(&self, key: &IdempotencyKey) -> Option<&StoredSale> {
        self.by_key.get(key)
    }

    fn insert(&mut self, sale: StoredSale) {
        let Some(key) = sale.sale.idempotency_key.clone() else {
            return;
        };
        if self.by_key.insert(key.clone(), sale).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }

    fn extend(&mut self, sales: Vec<StoredSale>) {
        for s in sales {
            self.insert(s);
        }
    }
}
