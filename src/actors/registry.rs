//! The tenant registry: finds a tenant's actor, starting it on first use,
//! again after it passivated (idle for `POS_TENANT_IDLE_SECS`), and again
//! after a crash, on its persistence actor's arbiter. A start takes the
//! tenant's totals from the ranking (loaded from the summary table at boot,
//! then fed every commit) and reads only the catalog, through the lookup
//! actor (off the write queue). An unknown tenant id is remembered for a
//! short while in a bounded cache, so repeating it costs no read at all.
//!
//! actix's `Supervisor` restarts an actor that stops, not one that panics:
//! a panicking actor just leaves a closed mailbox behind. So the registry
//! checks liveness on every lookup. An actor that died this way (or
//! stopped on an unknown commit outcome) may have committed rows it never
//! reported: its successor reads its totals from MySQL instead, through the
//! tenant's persistence actor, behind any writes still queued there.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use dashmap::DashMap;

use super::lookup::{self, FindCatalog, LookupActor};
use super::office::Office;
use super::persistence::Writer;
use super::ranking::RankingFeed;
use super::tenant::{
    Lifecycle, LiveTotals, PostOutcome, PostRefunds, PostSales, RefundOutcome, SharedCatalog,
    TenantActor, TenantDeps, TenantError, Totals,
};
use crate::domain::{
    BranchId, RefundItem, SaleItem, Scope, TenantId, TenantLimits, TenantSnapshot,
};
use crate::metrics::Metrics;
use crate::store::{self, TenantRow};

/// Unknown tenant ids remembered at most (the oldest go first).
const UNKNOWN_TENANTS: u64 = 10_000;
/// How long an unknown tenant id is remembered; a tenant created meanwhile
/// (through another instance) is found after this.
const UNKNOWN_TENANT_TTL: Duration = Duration::from_secs(1);

type Gates = DashMap<TenantId, Arc<tokio::sync::Mutex<()>>>;

/// A live tenant: its mailbox, and its totals and catalog (read without a
/// round trip).
#[derive(Clone)]
pub struct TenantHandle {
    pub addr: Addr<TenantActor>,
    pub totals: Totals,
    pub catalog: Arc<SharedCatalog>,
}

impl TenantHandle {
    /// Whether `caller` may change the tenant (its catalog, keys and
    /// settings): not its back office while it is suspended.
    pub fn writable_by(&self, caller: Scope) -> Result<(), TenantError> {
        let suspended = self.catalog.view().catalog.suspended;
        if suspended && !matches!(caller, Scope::Operator) {
            return Err(TenantError::Suspended);
        }
        Ok(())
    }
}

/// One persistence actor with the arbiter (thread) it runs on. A tenant's
/// actor runs on its persistence actor's thread: the hand-over of rows and
/// the commit answer then never cross threads.
#[derive(Clone)]
pub struct Lane {
    pub arbiter: ArbiterHandle,
    pub writer: Writer,
}

pub struct TenantRegistry {
    /// Shared with the actors, which leave it when they passivate.
    live: Arc<DashMap<TenantId, TenantHandle>>,
    /// One start at a time per tenant.
    starting: Gates,
    /// A tenant's lane is `lanes[tenant % lanes.len()]`.
    lanes: Vec<Lane>,
    lookup: Addr<LookupActor>,
    office: Office,
    /// The tenants directory when it is another database (pods): a tenant
    /// made there is copied into this shard's database on first use.
    directory: Option<Office>,
    unknown: moka::future::Cache<TenantId, ()>,
    ranking: RankingFeed,
    metrics: Metrics,
    idle_after: Duration,
    /// What a tenant's catalog may hold.
    limits: TenantLimits,
    /// Tenants whose last actor died without saying what it committed: the
    /// next one reads its totals from MySQL.
    reload: Mutex<HashSet<TenantId>>,
}

impl TenantRegistry {
    /// `lanes` must not be empty (start-up makes at least one).
    pub fn new(
        lanes: Vec<Lane>,
        lookup: Addr<LookupActor>,
        office: Office,
        ranking: RankingFeed,
        metrics: Metrics,
        idle_after: Duration,
        limits: TenantLimits,
    ) -> Self {
        assert!(!lanes.is_empty(), "at least one persistence lane");
        TenantRegistry {
            live: Arc::default(),
            starting: DashMap::new(),
            lanes,
            lookup,
            office,
            directory: None,
            unknown: moka::future::Cache::builder()
                .max_capacity(UNKNOWN_TENANTS)
                .time_to_live(UNKNOWN_TENANT_TTL)
                .build(),
            ranking,
            metrics,
            idle_after,
            limits,
            reload: Mutex::default(),
        }
    }

    /// Learns tenants from `directory` (pods; see the field).
    pub fn with_directory(mut self, directory: Option<Office>) -> Self {
        self.directory = directory;
        self
    }

    /// The writer of `tenant`'s lane.
    pub fn writer(&self, tenant: TenantId) -> &Writer {
        &self.lane(tenant).writer
    }

    fn lane(&self, tenant: TenantId) -> &Lane {
        &self.lanes[(tenant.get() % self.lanes.len() as u64) as usize]
    }

    /// Every persistence actor (for readiness checks and shutdown).
    pub fn writers(&self) -> impl Iterator<Item = &Writer> {
        self.lanes.iter().map(|l| &l.writer)
    }

    /// The tenant's live handle, starting its actor if needed; `None` for an
    /// unknown tenant (and then no actor is left behind).
    pub async fn get(
        self: &Arc<Self>,
        tenant: TenantId,
    ) -> Result<Option<TenantHandle>, TenantError> {
        if let Some(h) = self.running(tenant) {
            return Ok(Some(h));
        }
        if self.unknown.contains_key(&tenant) {
            return Ok(None);
        }
        let gate = StartGate::enter(&self.starting, tenant);
        let _turn = gate.gate.lock().await;
        if let Some(h) = self.running(tenant) {
            return Ok(Some(h));
        }
        let mut loaded = self.load(tenant).await?;
        if loaded.is_none() && self.learn(tenant).await?.is_some() {
            loaded = self.load(tenant).await?;
        }
        let Some(snapshot) = loaded else {
            self.unknown.insert(tenant, ()).await;
            return Ok(None);
        };
        // Filled before the handle is shared: readers must never see a
        // started tenant without its totals.
        let totals: Totals = Arc::new(LiveTotals::new(snapshot.totals));
        let catalog = Arc::new(snapshot.catalog);
        let shared_catalog = Arc::new(SharedCatalog::new(catalog.clone()));
        let live = self.live.clone();
        let registry = Arc::downgrade(self);
        let lane = self.lane(tenant);
        let deps = TenantDeps {
            writer: lane.writer.clone(),
            lifecycle: Lifecycle {
                idle_after: self.idle_after,
                forget: Arc::new(move |tenant, addr| {
                    live.remove_if(&tenant, |_, h| h.addr == *addr).is_some()
                }),
                died: Arc::new(move |tenant, addr| {
                    let Some(registry) = registry.upgrade() else {
                        return false;
                    };
                    let replaced = registry.forget_dead(tenant, addr);
                    if replaced {
                        // At once, not on the tenant's next request: the
                        // successor reads what its predecessor committed,
                        // and the ranking and Redis follow.
                        actix::spawn(async move {
                            if let Err(e) = registry.get(tenant).await {
                                tracing::warn!(%tenant, error = %e, "restarting a tenant failed; its next request will");
                            }
                        });
                    }
                    replaced
                }),
            },
            lookup: self.lookup.clone(),
            office: self.office.clone(),
            limits: self.limits,
            catalog: shared_catalog.clone(),
            ranking: self.ranking.clone(),
            metrics: self.metrics.clone(),
        };
        let actor_totals = totals.clone();
        let addr = TenantActor::start_in_arbiter(&lane.arbiter, move |_| {
            TenantActor::new(tenant, catalog, actor_totals, deps)
        });
        let handle = TenantHandle {
            addr,
            totals,
            catalog: shared_catalog,
        };
        self.live.insert(tenant, handle.clone());
        Ok(Some(handle))
    }

    /// Copies `tenant` from the directory into this shard's database if
    /// the directory has it (a tenant made on another instance, on its
    /// first use here); its row as copied, if it did.
    pub async fn learn(&self, tenant: TenantId) -> Result<Option<TenantRow>, TenantError> {
        let Some(directory) = &self.directory else {
            return Ok(None);
        };
        let found = directory
            .run(move |c| Box::pin(async move { store::find_tenant(c, tenant).await }))
            .await?;
        let Some(row) = found else {
            return Ok(None);
        };
        let copied = row.clone();
        self.office
            .run(move |c| Box::pin(async move { store::adopt_tenant(c, &copied).await }))
            .await?;
        tracing::info!(%tenant, "tenant learnt from the directory");
        Ok(Some(row))
    }

    /// What a tenant's actor starts from; `None` for an unknown tenant.
    /// Normally the catalog (off the write queue) and the ranking's totals,
    /// which every commit reaches before its request is answered. After an
    /// unclean death, both from MySQL behind the writes still queued for
    /// the tenant, so the new actor sees every commit of its predecessor;
    /// the ranking then takes those totals too.
    async fn load(&self, tenant: TenantId) -> Result<Option<TenantSnapshot>, TenantError> {
        let unclean = self
            .reload
            .lock()
            .map(|r| r.contains(&tenant))
            .unwrap_or(true);
        if !unclean {
            let Some(catalog) = lookup::ask(&self.lookup, FindCatalog(tenant)).await? else {
                return Ok(None);
            };
            if let Some(totals) = self.ranking.boot_totals(tenant).await {
                return Ok(Some(TenantSnapshot { catalog, totals }));
            }
        }
        let (snapshot, _) = self.lane(tenant).writer.tenant(tenant).await?;
        if let Some(s) = &snapshot {
            self.ranking.push(s.totals.iter().cloned());
        }
        if let Ok(mut r) = self.reload.lock() {
            r.remove(&tenant);
        }
        Ok(snapshot)
    }

    /// The handle of a running actor; a dead one is forgotten here (if its
    /// `stopped` did not already).
    /// The tenant's actor if it runs now (never starts one).
    pub fn running(&self, tenant: TenantId) -> Option<TenantHandle> {
        let handle = self.live.get(&tenant).map(|h| h.clone())?;
        if handle.addr.connected() {
            handle.totals.touch();
            return Some(handle);
        }
        self.forget_dead(tenant, &handle.addr);
        None
    }

    /// Drops a dead actor (if it is still the tenant's live one) and marks
    /// its tenant for a start from MySQL: it may have committed rows it
    /// never reported.
    fn forget_dead(&self, tenant: TenantId, addr: &Addr<TenantActor>) -> bool {
        if self
            .live
            .remove_if(&tenant, |_, h| h.addr == *addr)
            .is_none()
        {
            return false;
        }
        if let Ok(mut r) = self.reload.lock() {
            r.insert(tenant);
        }
        tracing::warn!(
            %tenant,
            "tenant actor had stopped; starting a fresh one from MySQL"
        );
        self.metrics.tenant_restarts.inc();
        true
    }

    /// Forgets that `tenant` was unknown (it was just created here).
    pub async fn now_known(&self, tenant: TenantId) {
        self.unknown.invalidate(&tenant).await;
    }

    /// Sends `caller`'s catalog change `msg` to the tenant's actor
    /// (started if need be) and waits for its answer. A suspended tenant
    /// takes changes from the operator only (its back office may still
    /// read and sign in). An actor that dies meanwhile answers `Crashed`:
    /// the change may be committed, and a retry finds it by its natural key.
    pub async fn change<M, T>(
        self: &Arc<Self>,
        tenant: TenantId,
        caller: Scope,
        msg: M,
    ) -> Result<T, TenantError>
    where
        M: Message<Result = Result<T, TenantError>> + Send + 'static,
        T: Send + 'static,
        TenantActor: Handler<M>,
    {
        let handle = self.get(tenant).await?.ok_or(TenantError::TenantNotFound)?;
        handle.writable_by(caller)?;
        handle
            .addr
            .send(msg)
            .await
            .map_err(|_| TenantError::Crashed)?
    }

    /// Sends a request to the tenant's actor and waits for its outcome. If
    /// the actor turns out dead before it handed any row to persistence,
    /// the request goes to a fresh actor once.
    pub async fn post(
        self: &Arc<Self>,
        tenant: TenantId,
        branch_id: BranchId,
        items: Vec<SaleItem>,
    ) -> Result<PostOutcome, TenantError> {
        let items: Arc<[SaleItem]> = items.into();
        self.send_writes(tenant, |handed_over| PostSales {
            branch_id,
            items: items.clone(),
            handed_over,
            span: tracing::Span::current(),
        })
        .await
    }

    /// Sends a refunds request to the tenant's actor, as [`Self::post`].
    pub async fn refund(
        self: &Arc<Self>,
        tenant: TenantId,
        branch_id: BranchId,
        items: Vec<RefundItem>,
    ) -> Result<RefundOutcome, TenantError> {
        let items: Arc<[RefundItem]> = items.into();
        self.send_writes(tenant, |handed_over| PostRefunds {
            branch_id,
            items: items.clone(),
            handed_over,
            span: tracing::Span::current(),
        })
        .await
    }

    /// Sends `make(handed_over)` to the tenant's actor and waits for its
    /// outcome; sent again to a fresh actor once if the first died before
    /// setting `handed_over`.
    async fn send_writes<M, T>(
        self: &Arc<Self>,
        tenant: TenantId,
        make: impl Fn(Arc<AtomicBool>) -> M,
    ) -> Result<T, TenantError>
    where
        M: Message<Result = Result<T, TenantError>> + Send + 'static,
        T: Send + 'static,
        TenantActor: Handler<M>,
    {
        for _ in 0..2 {
            let handle = self.get(tenant).await?.ok_or(TenantError::TenantNotFound)?;
            let handed_over = Arc::new(AtomicBool::new(false));
            let msg = make(handed_over.clone());
            // A full mailbox makes this wait rather than refuse: the actor
            // takes each message at once and refuses work past its own
            // bound (`TenantError::Busy`).
            match handle.addr.send(msg).await {
                Ok(outcome) => return outcome,
                Err(_) if handed_over.load(Ordering::SeqCst) => return Err(TenantError::Crashed),
                // Dropped unprocessed with a dying actor: safe to send again.
                Err(_) => continue,
            }
        }
        Err(TenantError::Crashed)
    }

    /// Test hook: the tenant's actor panics once its next commit is
    /// answered, before counting it.
    #[cfg(feature = "testing")]
    pub async fn crash_after_next_commit(&self, tenant: TenantId) {
        let addr = self.live.get(&tenant).map(|h| h.addr.clone());
        if let Some(addr) = addr {
            let _ = addr.send(super::tenant::CrashAfterNextCommit).await;
        }
    }

    /// Test hook: how many of the tenant's requests wait for a key another
    /// of its requests holds (0 without a running actor).
    #[cfg(feature = "testing")]
    pub async fn claim_waiters(&self, tenant: TenantId) -> usize {
        let addr = self.live.get(&tenant).map(|h| h.addr.clone());
        match addr {
            Some(addr) => addr.send(super::tenant::ClaimWaiters).await.unwrap_or(0),
            None => 0,
        }
    }

    /// Test hook: makes the tenant's actor panic; returns once it is dead.
    #[cfg(feature = "testing")]
    pub async fn crash(&self, tenant: TenantId) {
        let addr = self.live.get(&tenant).map(|h| h.addr.clone());
        if let Some(addr) = addr {
            // The panic drops the answer: the send fails when the actor is gone.
            let _ = addr.send(super::tenant::Crash).await;
        }
    }
}

/// A turn at starting one tenant. The gate leaves the map with its last
/// user, also when that user's request is dropped half-way (a client that
/// hangs up), so the map holds only tenants being started right now.
struct StartGate<'a> {
    gates: &'a Gates,
    tenant: TenantId,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> StartGate<'a> {
    fn enter(gates: &'a Gates, tenant: TenantId) -> StartGate<'a> {
        let gate = gates.entry(tenant).or_default().clone();
        StartGate {
            gates,
            tenant,
            gate,
        }
    }
}

impl Drop for StartGate<'_> {
    fn drop(&mut self) {
        // The map's copy and ours: nobody else waits. `remove_if` holds the
        // shard lock, so no one can take a copy in between.
        self.gates.remove_if(&self.tenant, |_, g| {
            Arc::ptr_eq(g, &self.gate) && Arc::strong_count(g) == 2
        });
    }
}
