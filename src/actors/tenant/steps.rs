//! The steps of a sales request in its tenant's actor. Each runs with
//! `&mut TenantActor` between the awaits of a catalog read, a commit or a
//! read of stored keys; [`Post`] carries what the request found so far.

use std::sync::atomic::Ordering;
use std::time::Instant;

use actix::fut::{ready, ActorFutureExt, WrapFuture};
use actix::prelude::*;

use super::{
    Post, PostOutcome, Step, TenantActor, TenantError, CATALOG_RELOAD_INTERVAL, KEY_ROUNDS,
};
use crate::actors::lookup::{self, FindCatalog};
use crate::actors::persistence::{SaveError, Saved};
use crate::domain::{
    BranchId, Catalog, Field, ItemProblem, NewSale, ProductMap, ProductTotal, SaleItem, TenantId,
};

impl TenantActor {
    /// Step 1: the branch and every product are the tenant's. On a miss the
    /// catalog is read again (at most once a second), so that rows added
    /// straight into MySQL are accepted.
    pub(super) fn check_catalog(&mut self, post: Post) -> Step {
        if self.catalog.suspended {
            return Box::pin(ready(post.fail(TenantError::Suspended)));
        }
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
                act.replace_catalog(catalog);
                match catalog_problem(&act.catalog, post.branch, &post.items) {
                    Ok(()) => post,
                    Err(e) => post.fail(e),
                }
            }
        }))
    }

    fn may_reload_catalog(&mut self) -> bool {
        reload_due(&mut self.last_catalog_read, Instant::now())
    }

    /// Step 2: the request's idempotency keys, once no other request holds them.
    pub(super) fn claim_keys(&mut self, mut post: Post) -> Step {
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
    /// other items are stored. An item that would be refused (its branch
    /// closed or its product inactive since, its timestamp ahead of the
    /// clock, or a total past its column) is first
    /// looked up by its key: a replay is answered as one whatever the
    /// limits and the clock say now. When MySQL already holds a key (stored
    /// by an earlier process or request), the keys are read and the step
    /// runs again, at most [`KEY_ROUNDS`] times.
    pub(super) fn store(&mut self, mut post: Post) -> Step {
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
        if let Some(refusal) = closed_or_inactive(&self.catalog, &post, &fresh) {
            return self.unless_stored(post, &fresh, refusal);
        }
        let ahead: Vec<ItemProblem> = fresh
            .iter()
            .filter(|&&i| post.items[i].timestamp_ahead)
            .map(|&i| ItemProblem::new(i, Field::Timestamp, SaleItem::TIMESTAMP_AHEAD))
            .collect();
        if !ahead.is_empty() {
            return self.unless_stored(post, &fresh, TenantError::TimestampsAhead(ahead));
        }
        let sales = match priced_sales(self.id, &self.catalog, &post, &fresh) {
            Ok(sales) => sales,
            Err(refusal) => return self.unless_stored(post, &fresh, refusal),
        };
        let reservation = match self.reserved.take(&self.totals, &sales, &fresh) {
            Ok(r) => r,
            Err(full) => return self.unless_stored(post, &fresh, TenantError::TotalsFull(full)),
        };
        post.rounds += 1;
        post.handed_over.store(true, Ordering::SeqCst);
        let writer = self.deps.writer.clone();
        let save = async move { writer.save(sales).await };
        Box::pin(save.into_actor(self).then(move |saved, act, _| {
            let next: Step = match saved {
                Ok(saved) => {
                    debug_assert_eq!(
                        saved.sales.len(),
                        fresh.len(),
                        "one stored row per sale sent"
                    );
                    #[cfg(feature = "testing")]
                    if act.crash_after_commit {
                        panic!("tenant actor crash after a commit, requested by a test");
                    }
                    act.apply_committed(&saved);
                    for (i, s) in fresh.into_iter().zip(saved.sales) {
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

    /// `refusal`, unless the keys of the items at `fresh` turn out stored
    /// (read once per request): then the step runs again with them.
    fn unless_stored(&mut self, post: Post, fresh: &[usize], refusal: TenantError) -> Step {
        let keyed = fresh
            .iter()
            .any(|&i| post.items[i].idempotency_key.is_some());
        if post.keys_read || !keyed {
            return Box::pin(ready(post.fail(refusal)));
        }
        self.read_stored_keys(post, fresh)
    }

    /// The keys of `positions` as MySQL holds them, then [`Self::store`]
    /// again. A key stored that this actor did not remember may belong to a
    /// commit its totals lack (a predecessor's last one, committed after
    /// this actor read its totals): the totals are read again from MySQL,
    /// behind every write queued, before the request goes on.
    fn read_stored_keys(&mut self, mut post: Post, positions: &[usize]) -> Step {
        post.keys_read = true;
        let keys = positions
            .iter()
            .filter_map(|&i| post.items[i].idempotency_key.clone())
            .collect();
        let (writer, tenant) = (self.deps.writer.clone(), self.id);
        let read = async move { writer.stored_keys(tenant, keys).await };
        Box::pin(read.into_actor(self).then(|found, act, ctx| -> Step {
            match found {
                Ok(found) if found.is_empty() => act.store(post),
                Ok(found) => {
                    act.recent.extend(found);
                    let reloaded = act.reload(ctx);
                    Box::pin(
                        reloaded
                            .into_actor(act)
                            .then(|reloaded, act, _| match reloaded {
                                Ok(Ok(())) => act.store(post),
                                Ok(Err(e)) => Box::pin(ready(post.fail(e))),
                                Err(_) => Box::pin(ready(post.fail(TenantError::Crashed))),
                            }),
                    )
                }
                Err(e) => Box::pin(ready(post.fail(e.into()))),
            }
        }))
    }

    /// Adds committed rows to the live totals (unless a reload that saw
    /// them came first) and tells the ranking.
    pub(super) fn apply_committed(&mut self, saved: &Saved) {
        let counted = !self.covered_through.saw(saved.seq);
        let mut changed: ProductMap<ProductTotal> = ProductMap::default();
        for s in &saved.sales {
            let sale = &s.sale;
            if counted {
                let catalog = &self.catalog;
                let total =
                    self.totals
                        .add(self.id, || catalog.product_name(sale.product_id), sale);
                changed.insert(sale.product_id, total);
            }
            if sale.idempotency_key.is_some() {
                self.recent.insert(s.clone());
            }
        }
        if counted {
            self.totals.changed();
            self.deps.ranking.push(changed.into_values());
        }
    }

    /// Step 4: gives back what the request held and answers it.
    pub(super) fn answer(
        &mut self,
        post: Post,
        ctx: &mut Context<Self>,
    ) -> Result<PostOutcome, TenantError> {
        debug_assert!(self.in_flight > 0, "every answered request was counted in");
        self.in_flight = self.in_flight.saturating_sub(1);
        if post.claimed {
            self.claims.release(&post.items);
        }
        let span = post.span.clone();
        let _in_request = span.enter();
        let result = post.into_result(self.catalog.currency);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "sales request refused");
        }
        // Rows may be stored that these totals lack: read them again now
        // (not on the tenant's next request), so the ranking follows too.
        if matches!(result, Err(TenantError::Save(SaveError::OutcomeUnknown))) {
            tracing::warn!("commit outcome unknown; reloading the tenant's totals");
            self.reload_until_done(ctx);
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
    if !catalog.branches.contains_key(&branch) {
        return Err(TenantError::BranchNotFound);
    }
    let unknown: Vec<ItemProblem> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| !catalog.products.contains_key(&item.product_id))
        .map(|(i, _)| ItemProblem::new(i, Field::Product, "is not a product of this tenant"))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(TenantError::UnknownProducts(unknown))
    }
}

/// The refusal of new sales at a closed branch or of inactive products
/// (the items at `fresh`), if any.
fn closed_or_inactive(catalog: &Catalog, post: &Post, fresh: &[usize]) -> Option<TenantError> {
    if catalog.branches.get(&post.branch).is_some_and(|b| !b.open) {
        return Some(TenantError::BranchClosed);
    }
    let inactive: Vec<ItemProblem> = fresh
        .iter()
        .filter(|&&i| {
            let product = catalog.products.get(&post.items[i].product_id);
            product.is_some_and(|p| !p.active)
        })
        .map(|&i| ItemProblem::new(i, Field::Product, "is inactive"))
        .collect();
    (!inactive.is_empty()).then_some(TenantError::InactiveProducts(inactive))
}

/// The items at `fresh` as sales to store, each at its own price or, when
/// it names none, at its product's list price now; refused when neither
/// is there, or when a price is finer than the tenant's currency.
fn priced_sales(
    tenant: TenantId,
    catalog: &Catalog,
    post: &Post,
    fresh: &[usize],
) -> Result<Vec<NewSale>, TenantError> {
    let mut sales = Vec::with_capacity(fresh.len());
    let mut problems = Vec::new();
    for &i in fresh {
        let item = &post.items[i];
        let list = || catalog.products.get(&item.product_id)?.price;
        match item.price.or_else(list) {
            Some(price) if catalog.currency.holds(price) => {
                sales.push(NewSale::new(tenant, post.branch, item, price));
            }
            Some(_) => problems.push(ItemProblem::new(
                i,
                Field::UnitPrice,
                catalog.currency.too_fine(),
            )),
            None => problems.push(ItemProblem::new(
                i,
                Field::UnitPrice,
                "is required: the product has no list price",
            )),
        }
    }
    if problems.is_empty() {
        Ok(sales)
    } else {
        Err(TenantError::Invalid {
            message: "prices are missing or finer than the tenant's currency",
            problems,
        })
    }
}

/// Whether a catalog read last made at `last` may be made again at `now`
/// (at most one per [`CATALOG_RELOAD_INTERVAL`]: a till naming unknown
/// products must not turn each sale into a MySQL read); if so, `now` is
/// the last one.
fn reload_due(last: &mut Option<Instant>, now: Instant) -> bool {
    if last.is_some_and(|t| now.duration_since(t) < CATALOG_RELOAD_INTERVAL) {
        return false;
    }
    *last = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_read_again_at_most_once_an_interval() {
        let start = Instant::now();
        let mut last = None;
        assert!(reload_due(&mut last, start), "the first read");
        let half = start + CATALOG_RELOAD_INTERVAL / 2;
        assert!(!reload_due(&mut last, half), "within the interval");
        let next = start + CATALOG_RELOAD_INTERVAL;
        assert!(reload_due(&mut last, next), "once the interval is over");
        assert_eq!(last, Some(next));
        assert!(!reload_due(&mut last, next), "and then not again at once");
    }
}
