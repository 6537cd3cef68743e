//! RankingActor: the global top sellers, merged from every tenant's
//! committed totals and kept in memory, and mirrored to Redis.
//!
//! Every product's totals sit in a map; two small ordered sets keyed by
//! (total descending, product id) hold only the leaders by quantity and by
//! revenue, as many as the longest list a reader may ask for. Totals only
//! grow (quantities and prices are positive), so a product outside the
//! leaders can only join them by passing the last one: most updates cost a
//! map write and one comparison, whatever the number of products. How the
//! view reaches Redis is in `mirroring.rs`.

mod feed;
mod leaders;
mod mirroring;

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use crate::domain::{Money, ProductId, ProductTotal, RankBy, TenantId, MAX_TOP};
use crate::metrics::Metrics;
use crate::mirror::Mirror;
pub use feed::RankingFeed;
use leaders::Leaders;

/// New absolute totals of some products (after a commit, or at start).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TotalsChanged(pub Vec<ProductTotal>);

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
    feed: feed::Pending,
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
    /// Products still to audit in this round (see `mirroring`).
    audit_queue: Vec<ProductId>,
    metrics: Metrics,
}

impl RankingActor {
    pub fn new(mirror: Option<Mirror>, metrics: Metrics) -> Self {
        RankingActor {
            feed: Arc::default(),
            totals: HashMap::new(),
            by_tenant: HashMap::new(),
            by_quantity: Leaders::new(MAX_TOP, |t| Reverse(t.net_quantity())),
            by_revenue: Leaders::new(MAX_TOP, |t| Reverse(t.net_revenue())),
            mirror,
            dirty: HashSet::new(),
            resync_needed: true,
            mirror_busy: false,
            last_in_sync: Instant::now(),
            last_audit: Instant::now(),
            audit_queue: Vec::new(),
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
}

impl Actor for RankingActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = mirroring::tick(self.mirror.as_ref());
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
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
        let entries: Vec<ProductTotal> = if self.resync_needed {
            self.totals.values().cloned().collect()
        } else {
            self.dirty
                .drain()
                .filter_map(|p| self.totals.get(&p).cloned())
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
