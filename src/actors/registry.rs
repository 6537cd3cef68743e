//! The tenant registry: finds a tenant's actor, starting it on first use
//! (and again after a crash) on its persistence actor's arbiter. A first
//! start takes the tenant's totals from the ranking (loaded from the summary
//! table at boot) and reads only the catalog.
//!
//! actix's `Supervisor` restarts an actor that stops, not one that panics:
//! a panicking actor just leaves a closed mailbox behind. So the registry
//! checks liveness on every lookup; a dead actor is dropped and a fresh one
//! is started from MySQL (through the tenant's persistence actor, behind
//! any writes still queued there, so the reload sees every commit).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use dashmap::DashMap;
use tokio::sync::oneshot;

use super::persistence::{PersistenceActor, Read};
use super::ranking::RankingFeed;
use super::tenant::{
    self, LiveTotals, PostOutcome, PostSales, TenantActor, TenantDeps, TenantError, Totals,
};
use crate::domain::{BranchId, SaleItem, TenantId};
use crate::metrics::Metrics;
use crate::store::{ProductTotal, TenantSnapshot};

/// A live tenant: its mailbox and its totals (read without a round trip).
#[derive(Clone)]
pub struct TenantHandle {
    pub addr: Addr<TenantActor>,
    pub totals: Totals,
}

pub struct TenantRegistry {
    live: DashMap<TenantId, TenantHandle>,
    /// One start at a time per tenant.
    starting: DashMap<TenantId, Arc<tokio::sync::Mutex<()>>>,
    arbiters: Vec<ArbiterHandle>,
    persistence: Vec<Addr<PersistenceActor>>,
    ranking: RankingFeed,
    metrics: Metrics,
    /// Tenants whose actor ran in this process; the others take their
    /// totals from the ranking, which start-up filled from the summary table.
    started: Mutex<HashSet<TenantId>>,
}

impl TenantRegistry {
    pub fn new(
        arbiters: Vec<ArbiterHandle>,
        persistence: Vec<Addr<PersistenceActor>>,
        ranking: RankingFeed,
        metrics: Metrics,
    ) -> Self {
        assert!(
            !arbiters.is_empty() && !persistence.is_empty(),
            "at least one arbiter and one persistence actor"
        );
        TenantRegistry {
            live: DashMap::new(),
            starting: DashMap::new(),
            arbiters,
            persistence,
            ranking,
            metrics,
            started: Mutex::default(),
        }
    }

    /// The persistence actor that owns `tenant`'s rows.
    pub fn persistence_for(&self, tenant: TenantId) -> &Addr<PersistenceActor> {
        &self.persistence[(tenant % self.persistence.len() as u64) as usize]
    }

    pub fn persistence(&self) -> &[Addr<PersistenceActor>] {
        &self.persistence
    }

    /// The tenant's live handle, starting its actor if needed; `None` for an
    /// unknown tenant (and then no actor is left behind).
    pub async fn get(&self, tenant: TenantId) -> Result<Option<TenantHandle>, TenantError> {
        if let Some(h) = self.running(tenant) {
            return Ok(Some(h));
        }
        let gate = self.starting.entry(tenant).or_default().clone();
        let _turn = gate.lock().await;
        if let Some(h) = self.running(tenant) {
            return Ok(Some(h));
        }
        let persistence = self.persistence_for(tenant);
        let snapshot = match self.boot_totals(tenant).await {
            Some(totals) => tenant::read(persistence, |reply| Read::Catalog { tenant, reply })
                .await?
                .map(|catalog| TenantSnapshot { catalog, totals }),
            None => tenant::read(persistence, |reply| Read::Tenant { tenant, reply }).await?,
        };
        let Some(snapshot) = snapshot else {
            // Unknown: remember nothing of it, or random ids would pile up here.
            if let Ok(mut started) = self.started.lock() {
                started.remove(&tenant);
            }
            self.starting.remove(&tenant);
            return Ok(None);
        };
        // Filled before the handle is shared: readers must never see a
        // started tenant without its totals.
        let totals: Totals = Arc::new(LiveTotals::new(snapshot.totals));
        let catalog = snapshot.catalog;
        let deps = TenantDeps {
            persistence: self.persistence_for(tenant).clone(),
            ranking: self.ranking.clone(),
            metrics: self.metrics.clone(),
        };
        let arbiter = &self.arbiters[(tenant % self.arbiters.len() as u64) as usize];
        let actor_totals = totals.clone();
        let addr = TenantActor::start_in_arbiter(arbiter, move |_| {
            TenantActor::new(tenant, catalog, actor_totals, deps)
        });
        let handle = TenantHandle { addr, totals };
        self.live.insert(tenant, handle.clone());
        // Later lookups find the live handle first; the gate is no longer needed.
        self.starting.remove(&tenant);
        Ok(Some(handle))
    }

    /// Totals for a tenant's first actor in this process, from the ranking;
    /// `None` once the tenant ran before (then MySQL is read again).
    async fn boot_totals(&self, tenant: TenantId) -> Option<Vec<ProductTotal>> {
        let first = self
            .started
            .lock()
            .map(|mut s| s.insert(tenant))
            .unwrap_or(false);
        if !first {
            return None;
        }
        self.ranking.boot_totals(tenant).await
    }

    /// The handle of a running actor; a crashed one is forgotten here.
    fn running(&self, tenant: TenantId) -> Option<TenantHandle> {
        let handle = self.live.get(&tenant).map(|h| h.clone())?;
        if handle.addr.connected() {
            return Some(handle);
        }
        if self
            .live
            .remove_if(&tenant, |_, h| h.addr == handle.addr)
            .is_some()
        {
            tracing::warn!(
                tenant,
                "tenant actor had stopped; starting a fresh one from MySQL"
            );
            self.metrics.tenant_restarts.inc();
        }
        None
    }

    /// Sends a request to the tenant's actor and waits for its outcome. If
    /// the actor turns out dead before it handed any row to persistence,
    /// the request goes to a fresh actor once.
    pub async fn post(
        &self,
        tenant: TenantId,
        branch_id: BranchId,
        items: Vec<SaleItem>,
        is_array: bool,
    ) -> Result<PostOutcome, TenantError> {
        let items: Arc<[SaleItem]> = items.into();
        for _ in 0..2 {
            let handle = self.get(tenant).await?.ok_or(TenantError::TenantNotFound)?;
            let handed_over = Arc::new(AtomicBool::new(false));
            let (reply, rx) = oneshot::channel();
            let msg = PostSales {
                branch_id,
                items: items.clone(),
                is_array,
                handed_over: handed_over.clone(),
                span: tracing::Span::current(),
                reply,
            };
            match handle.addr.try_send(msg) {
                Ok(()) => match rx.await {
                    Ok(outcome) => return outcome,
                    Err(_) if handed_over.load(Ordering::SeqCst) => {
                        return Err(TenantError::Crashed)
                    }
                    Err(_) => continue, // dropped unprocessed with a dying actor
                },
                Err(SendError::Full(_)) => {
                    return Err(super::persistence::SaveError::Overloaded.into())
                }
                Err(SendError::Closed(_)) => continue,
            }
        }
        Err(TenantError::Crashed)
    }

    /// Test hook: makes the tenant's actor panic.
    #[doc(hidden)]
    pub fn crash(&self, tenant: TenantId) {
        if let Some(h) = self.live.get(&tenant) {
            let _ = h.addr.try_send(tenant::Crash);
        }
    }
}
