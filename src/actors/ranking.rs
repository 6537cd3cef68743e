//! RankingActor: the global top sellers, merged from every tenant's
//! committed totals and kept in memory, and mirrored to Redis.
//!
//! Every product's totals sit in a map; two small ordered sets keyed by
//! (total descending, product id) hold only the leaders by quantity and by
//! revenue, as many as the longest list a reader may ask for. Totals only
//! grow (quantities and prices are positive), so a product outside the
//! leaders can only join them by passing the last one: most updates cost a
//! map write and one comparison, whatever the number of products. Changes
//! are coalesced and written to Redis every tick (per set, one ZADD carrying
//! every changed product; the two pipelined); after any mirror error or
//! reconnection, or when Redis turns out to hold a different number of
//! products (flushed, restarted empty), the whole view is rewritten from
//! memory.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::domain::{Money, ProductId, ProductMap, TenantId};
use crate::metrics::Metrics;
use crate::mirror::{Mirror, MirrorEntry};
use crate::store::ProductTotal;

/// How often changed totals are written to Redis.
const MIRROR_TICK: Duration = Duration::from_millis(100);
/// How often Redis's member count is compared with the ranking's.
const MIRROR_AUDIT: Duration = Duration::from_secs(1);

/// The longest top-selling list a reader may ask for.
pub const MAX_TOP: usize = 100;

/// The ranking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    Quantity,
    Revenue,
}

/// New absolute totals of some products (after a commit, or at start).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TotalsChanged(pub Vec<ProductTotal>);

/// Where tenant actors leave changed totals for the ranking. The ranking
/// actor is woken only when the feed goes from empty to non-empty, so under
/// load many commits cost one cross-thread wake-up, not one each. The feed
/// keeps the newest total of each product (totals are absolute; a tenant's
/// are pushed in commit order), so however slow the ranking, it never holds
/// more than one entry per product.
#[derive(Clone)]
pub struct RankingFeed {
    pending: Arc<Mutex<ProductMap<ProductTotal>>>,
    ranking: Addr<RankingActor>,
}

impl RankingFeed {
    /// A tenant's totals as the ranking holds them, for the tenant's next
    /// actor. Exact when no actor of the tenant is running and the last one
    /// stopped cleanly: start-up read the summary table, every commit since
    /// was pushed here before its request was answered, and the ranking
    /// takes what is in the feed before it answers.
    pub async fn boot_totals(&self, tenant: TenantId) -> Option<Vec<ProductTotal>> {
        self.ranking.send(TenantTotals(tenant)).await.ok()
    }

    pub fn push(&self, totals: impl IntoIterator<Item = ProductTotal>) {
        let was_empty = match self.pending.lock() {
            Ok(mut p) => {
                let was_empty = p.is_empty();
                p.extend(totals.into_iter().map(|t| (t.product_id, t)));
                was_empty
            }
            Err(_) => return,
        };
        if was_empty {
            // Unbounded on purpose: at most one is queued per drain.
            self.ranking.do_send(FeedReady);
        }
    }
}

/// Every product total of one tenant, as the ranking holds it.
#[derive(Message)]
#[rtype(result = "Vec<ProductTotal>")]
pub struct TenantTotals(pub TenantId);

/// The feed has totals to take.
#[derive(Message)]
#[rtype(result = "()")]
struct FeedReady;

/// The first `limit` products by `by`.
#[derive(Message)]
#[rtype(result = "Vec<ProductTotal>")]
pub struct TopSelling {
    pub limit: usize,
    pub by: RankBy,
}

/// Write what is pending to Redis and stop the mirror (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FinalFlush;

pub struct RankingActor {
    feed: Arc<Mutex<ProductMap<ProductTotal>>>,
    totals: HashMap<ProductId, ProductTotal>,
    /// Products of each tenant, to hand a tenant's first actor its totals.
    by_tenant: HashMap<TenantId, Vec<ProductId>>,
    by_quantity: Leaders<Reverse<u64>>,
    by_revenue: Leaders<Reverse<Money>>,
    mirror: Option<Mirror>,
    dirty: HashSet<ProductId>,
    resync_needed: bool,
    mirror_busy: bool,
    last_in_sync: Instant,
    last_audit: Instant,
    metrics: Metrics,
}

impl RankingActor {
    pub fn new(mirror: Option<Mirror>, metrics: Metrics) -> Self {
        RankingActor {
            feed: Arc::default(),
            totals: HashMap::new(),
            by_tenant: HashMap::new(),
            by_quantity: Leaders::new(MAX_TOP, |t| Reverse(t.quantity)),
            by_revenue: Leaders::new(MAX_TOP, |t| Reverse(t.revenue)),
            mirror,
            dirty: HashSet::new(),
            resync_needed: true,
            mirror_busy: false,
            last_in_sync: Instant::now(),
            last_audit: Instant::now(),
            metrics,
        }
    }

    /// Starts the actor and returns its address with the feed into it.
    pub fn start_with_feed(self) -> (Addr<RankingActor>, RankingFeed) {
        let pending = self.feed.clone();
        let ranking = self.start();
        (ranking.clone(), RankingFeed { pending, ranking })
    }

    fn apply(&mut self, t: ProductTotal) {
        let old = self.totals.get(&t.product_id);
        if old.is_none() {
            self.by_tenant
                .entry(t.tenant_id)
                .or_default()
                .push(t.product_id);
        }
        let quantity_kept = self.by_quantity.update(old, &t);
        let revenue_kept = self.by_revenue.update(old, &t);
        if self.mirror.is_some() {
            self.dirty.insert(t.product_id);
        }
        self.totals.insert(t.product_id, t);
        if !quantity_kept {
            self.by_quantity.rebuild(self.totals.values());
        }
        if !revenue_kept {
            self.by_revenue.rebuild(self.totals.values());
        }
    }

    /// Applies what tenant actors left in the feed.
    fn take_feed(&mut self) {
        let taken = match self.feed.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        for t in taken.into_values() {
            self.apply(t);
        }
        self.metrics.ranking_products.set(self.totals.len() as i64);
    }

    fn top(&self, limit: usize, by: RankBy) -> Vec<ProductTotal> {
        let ids: Box<dyn Iterator<Item = ProductId>> = match by {
            RankBy::Quantity => Box::new(self.by_quantity.products()),
            RankBy::Revenue => Box::new(self.by_revenue.products()),
        };
        ids.take(limit)
            .filter_map(|p| self.totals.get(&p).cloned())
            .collect()
    }

    fn entry(t: &ProductTotal) -> MirrorEntry {
        MirrorEntry {
            product_id: t.product_id,
            tenant_id: t.tenant_id,
            name: t.name.clone(),
            quantity: t.quantity,
            revenue: t.revenue,
        }
    }

    /// One mirror step: a full rewrite if needed, else the changed products.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(mirror) = self.mirror.clone() else {
            return;
        };
        self.update_lag();
        if self.mirror_busy {
            return;
        }
        if !mirror.is_connected() {
            self.resync_needed = true;
            return;
        }
        if mirror.take_reconnected() {
            self.resync_needed = true;
        }
        let full = self.resync_needed;
        let entries: Vec<MirrorEntry> = if full {
            self.dirty.clear();
            self.totals.values().map(Self::entry).collect()
        } else {
            self.dirty
                .drain()
                .filter_map(|p| self.totals.get(&p))
                .map(Self::entry)
                .collect()
        };
        let audit = !full && entries.is_empty() && self.last_audit.elapsed() >= MIRROR_AUDIT;
        if entries.is_empty() && !full && !audit {
            self.last_in_sync = Instant::now();
            return;
        }
        self.mirror_busy = true;
        let expected = self.totals.len() as u64;
        ctx.spawn(
            async move {
                if full {
                    mirror.replace_all(&entries).await.map(|()| true)
                } else if audit {
                    mirror.holds(expected).await
                } else {
                    mirror.write(&entries).await.map(|()| true)
                }
            }
            .into_actor(self)
            .map(move |result, act, _| {
                act.mirror_busy = false;
                match result {
                    Ok(true) => {
                        if full {
                            act.resync_needed = false;
                            tracing::info!(products = expected, "Redis mirror rewritten from the ranking");
                        }
                        if audit {
                            act.last_audit = Instant::now();
                        }
                        if act.dirty.is_empty() {
                            act.last_in_sync = Instant::now();
                        }
                    }
                    Ok(false) => {
                        tracing::warn!("Redis mirror differs from the ranking; rewriting it");
                        act.resync_needed = true;
                    }
                    Err(e) => {
                        act.metrics.mirror_errors.inc();
                        tracing::warn!(error = %e, "Redis mirror write failed; will rewrite when Redis answers");
                        act.resync_needed = true;
                    }
                }
            }),
        );
    }

    fn update_lag(&self) {
        let in_sync = !self.resync_needed && self.dirty.is_empty() && !self.mirror_busy;
        let lag = if in_sync {
            0.0
        } else {
            self.last_in_sync.elapsed().as_secs_f64()
        };
        self.metrics.mirror_lag_seconds.set(lag);
    }
}

impl Actor for RankingActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(MIRROR_TICK, |act, ctx| act.tick(ctx));
    }
}

impl Handler<TotalsChanged> for RankingActor {
    type Result = ();

    fn handle(&mut self, msg: TotalsChanged, _: &mut Context<Self>) {
        for t in msg.0 {
            self.apply(t);
        }
        self.metrics.ranking_products.set(self.totals.len() as i64);
    }
}

impl Handler<FeedReady> for RankingActor {
    type Result = ();

    fn handle(&mut self, _: FeedReady, _: &mut Context<Self>) {
        self.take_feed();
    }
}

impl Handler<TenantTotals> for RankingActor {
    type Result = MessageResult<TenantTotals>;

    fn handle(&mut self, msg: TenantTotals, _: &mut Context<Self>) -> Self::Result {
        self.take_feed();
        let products = self
            .by_tenant
            .get(&msg.0)
            .map(Vec::as_slice)
            .unwrap_or_default();
        MessageResult(
            products
                .iter()
                .filter_map(|p| self.totals.get(p).cloned())
                .collect(),
        )
    }
}

impl Handler<TopSelling> for RankingActor {
    type Result = MessageResult<TopSelling>;

    fn handle(&mut self, msg: TopSelling, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.top(msg.limit, msg.by))
    }
}

impl Handler<FinalFlush> for RankingActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: FinalFlush, _: &mut Context<Self>) -> Self::Result {
        let mirror = self.mirror.take();
        let entries: Vec<MirrorEntry> = if self.resync_needed {
            self.totals.values().map(Self::entry).collect()
        } else {
            self.dirty
                .drain()
                .filter_map(|p| self.totals.get(&p))
                .map(Self::entry)
                .collect()
        };
        let full = self.resync_needed;
        Box::pin(async move {
            let Some(mirror) = mirror else { return };
            if mirror.is_connected() {
                let r = if full {
                    mirror.replace_all(&entries).await
                } else {
                    mirror.write(&entries).await
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "final Redis mirror write failed");
                }
            }
            mirror.quit().await;
        })
    }
}

/// The best `capacity` products by one order (`key` ascending, then
/// product id). Exact as long as a product's key only improves; a member
/// whose key got worse may now rank below a product that is not kept, so the
/// caller rebuilds from all totals then (never while totals only grow).
struct Leaders<K> {
    capacity: usize,
    key: fn(&ProductTotal) -> K,
    set: BTreeSet<(K, ProductId)>,
}

impl<K: Ord> Leaders<K> {
    fn new(capacity: usize, key: fn(&ProductTotal) -> K) -> Self {
        Leaders {
            capacity,
            key,
            set: BTreeSet::new(),
        }
    }

    /// Records a product's new totals; false if the set must be rebuilt.
    fn update(&mut self, old: Option<&ProductTotal>, new: &ProductTotal) -> bool {
        let entry = ((self.key)(new), new.product_id);
        if let Some(old) = old {
            let old_entry = ((self.key)(old), old.product_id);
            if self.set.remove(&old_entry) {
                let worse = entry > old_entry;
                self.set.insert(entry);
                return !worse;
            }
        }
        self.offer(entry);
        true
    }

    /// Keeps `entry` if it ranks among the best `capacity`.
    fn offer(&mut self, entry: (K, ProductId)) {
        if self.set.len() < self.capacity {
            self.set.insert(entry);
        } else if self.set.last().is_some_and(|last| entry < *last) {
            self.set.insert(entry);
            self.set.pop_last();
        }
    }

    fn rebuild<'a>(&mut self, all: impl Iterator<Item = &'a ProductTotal>) {
        self.set.clear();
        for t in all {
            self.offer(((self.key)(t), t.product_id));
        }
    }

    fn products(&self) -> impl Iterator<Item = ProductId> + '_ {
        self.set.iter().map(|(_, p)| *p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(product: ProductId, quantity: u64) -> ProductTotal {
        ProductTotal {
            tenant_id: 1,
            product_id: product,
            name: Arc::from("p"),
            quantity,
            revenue: Money::ZERO,
        }
    }

    /// The best `n` products by quantity, by brute force.
    fn best(totals: &HashMap<ProductId, ProductTotal>, n: usize) -> Vec<ProductId> {
        let mut all: Vec<_> = totals
            .values()
            .map(|t| (Reverse(t.quantity), t.product_id))
            .collect();
        all.sort();
        all.into_iter().take(n).map(|(_, p)| p).collect()
    }

    #[test]
    fn leaders_stay_exact_under_growing_and_shrinking_totals() {
        let mut leaders = Leaders::new(5, |t| Reverse(t.quantity));
        let mut totals: HashMap<ProductId, ProductTotal> = HashMap::new();
        let mut seed: u64 = 7;
        for step in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let product: ProductId = (seed >> 33) % 40 + 1;
            let change = (seed >> 40) % 1000;
            // Mostly a growing total, as sales make it; now and then a smaller one.
            let quantity = match totals.get(&product) {
                Some(t) if step % 50 == 0 => t.quantity.saturating_sub(change),
                Some(t) => t.quantity + change,
                None => change,
            };
            let new = total(product, quantity);
            let kept = leaders.update(totals.get(&product), &new);
            totals.insert(product, new);
            if !kept {
                leaders.rebuild(totals.values());
            }
            assert_eq!(
                leaders.products().collect::<Vec<_>>(),
                best(&totals, 5),
                "step {step}"
            );
        }
    }
}
