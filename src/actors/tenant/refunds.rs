//! Refunds and voids in the tenant's actor: a request's keys are claimed
//! like a sale's, then in rounds: the sales it names and the refunds under
//! its keys are read behind the tenant's queued writes, replays are
//! answered, the rest checked (the sale is the tenant's, no more than is
//! left of it, a void at its branch within its window) and stored. A round
//! that meets a refund committed meanwhile (MySQL refuses to pass a sale's
//! quantity, or holds a key) reads again; once committed, the refunds are
//! taken off the live totals' net figures and the ranking follows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix::fut::{ready, ActorFutureExt, WrapFuture};
use actix::prelude::*;

use super::{TenantActor, TenantError, KEY_ROUNDS};
use crate::actors::persistence::{RefundFacts, SaveError, Saved};
use crate::domain::{
    BranchId, Currency, Field, IdempotencyKey, ItemProblem, NewRefund, ProductMap, ProductTotal,
    Quantity, RefundItem, RefundKind, RefundableSale, SaleId, StoredRefund, Timestamp,
};

/// Take these sales back at one branch.
#[derive(Message)]
#[rtype(result = "Result<RefundOutcome, TenantError>")]
pub struct PostRefunds {
    pub branch_id: BranchId,
    pub items: Arc<[RefundItem]>,
    /// Set once rows were handed to persistence (as for sales).
    pub handed_over: Arc<AtomicBool>,
    pub span: tracing::Span,
}

/// What a committed (or replayed) refunds request answers.
#[derive(Debug)]
pub struct RefundOutcome {
    /// Some refund was stored by this request (201), not all replayed.
    pub created: bool,
    /// One per request item, in request order.
    pub refunds: Vec<StoredRefund>,
    pub currency: Currency,
}

/// One refunds request on its way through the actor.
struct Return {
    branch: BranchId,
    items: Arc<[RefundItem]>,
    handed_over: Arc<AtomicBool>,
    span: tracing::Span,
    outcome: Vec<Option<StoredRefund>>,
    created: bool,
    claimed: bool,
    rounds: usize,
    failed: Option<TenantError>,
}

type ReturnStep = ResponseActFuture<TenantActor, Return>;

impl Return {
    fn fail(mut self, e: TenantError) -> Return {
        self.failed = Some(e);
        self
    }

    fn keys(&self) -> impl Iterator<Item = &IdempotencyKey> {
        self.items.iter().filter_map(|i| i.idempotency_key.as_ref())
    }
}

impl Handler<PostRefunds> for TenantActor {
    type Result = ResponseActFuture<Self, Result<RefundOutcome, TenantError>>;

    fn handle(&mut self, msg: PostRefunds, _: &mut Context<Self>) -> Self::Result {
        if let Err(busy) = self.admit() {
            return Box::pin(ready(Err(busy)));
        }
        let ret = Return {
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
        let ret = match self.return_refusal(ret.branch) {
            Some(e) => ret.fail(e),
            None => ret,
        };
        Box::pin(
            self.claim_return(ret)
                .then(|ret, act, _| act.refund_round(ret))
                .map(|ret, act, ctx| act.answer_return(ret, ctx)),
        )
    }
}

impl TenantActor {
    /// Why no return can be taken at `branch` now, if so.
    fn return_refusal(&self, branch: BranchId) -> Option<TenantError> {
        if self.catalog.suspended {
            return Some(TenantError::Suspended);
        }
        match self.catalog.branches.get(&branch) {
            None => Some(TenantError::BranchNotFound),
            Some(b) if !b.open => Some(TenantError::BranchClosed),
            Some(_) => None,
        }
    }

    /// The request's keys, once no other request holds one of them.
    fn claim_return(&mut self, mut ret: Return) -> ReturnStep {
        if ret.failed.is_some() {
            return Box::pin(ready(ret));
        }
        match self.claims.claim_keys(|| ret.keys()) {
            Ok(()) => {
                ret.claimed = true;
                Box::pin(ready(ret))
            }
            Err(released) => Box::pin(
                async move {
                    let _ = released.await;
                }
                .into_actor(self)
                .then(|(), act, _| act.claim_return(ret)),
            ),
        }
    }

    /// One round: read the facts behind the tenant's writes, then decide
    /// and store.
    fn refund_round(&mut self, ret: Return) -> ReturnStep {
        if ret.failed.is_some() {
            return Box::pin(ready(ret));
        }
        if ret.rounds == KEY_ROUNDS {
            let e = SaveError::Rejected("refunds kept meeting others of their sales".into());
            return Box::pin(ready(ret.fail(e.into())));
        }
        let mut sales: Vec<SaleId> = ret.items.iter().map(|i| i.sale_id).collect();
        sales.sort_unstable();
        sales.dedup();
        let keys: Vec<IdempotencyKey> = ret.keys().cloned().collect();
        let (writer, tenant) = (self.deps.writer.clone(), self.id);
        let read = async move { writer.refund_facts(tenant, sales, keys).await };
        Box::pin(read.into_actor(self).then(|facts, act, _| match facts {
            Ok(facts) => act.store_refunds(ret, facts),
            Err(e) => Box::pin(ready(ret.fail(e.into()))),
        }))
    }

    /// Answers replays, checks the rest against `facts` and stores them.
    fn store_refunds(&mut self, mut ret: Return, facts: RefundFacts) -> ReturnStep {
        for (item, slot) in ret.items.iter().zip(ret.outcome.iter_mut()) {
            let Some(key) = &item.idempotency_key else {
                continue;
            };
            let stored = facts
                .stored
                .iter()
                .find(|s| s.refund.idempotency_key.as_ref() == Some(key));
            match stored {
                Some(s) if s.same_content(ret.branch, item) => *slot = Some(s.clone()),
                Some(_) => {
                    let e = TenantError::IdempotencyConflict(key.clone());
                    return Box::pin(ready(ret.fail(e)));
                }
                None => {}
            }
        }
        let fresh: Vec<usize> = (0..ret.items.len())
            .filter(|&i| ret.outcome[i].is_none())
            .collect();
        if fresh.is_empty() {
            return Box::pin(ready(ret));
        }
        let checks = ReturnChecks {
            tenant: self.id,
            branch: ret.branch,
            sales: facts.sales.iter().map(|s| (s.sale.id, s)).collect(),
            now: Timestamp::from_utc(chrono::Utc::now()),
            void_window: self.deps.limits.void_window,
        };
        let refunds = match checks.refunds(&ret.items, &fresh) {
            Ok(r) => r,
            Err(problems) => {
                let e = TenantError::Invalid {
                    message: "refunds are refused",
                    problems,
                };
                return Box::pin(ready(ret.fail(e)));
            }
        };
        ret.rounds += 1;
        ret.handed_over.store(true, Ordering::SeqCst);
        let writer = self.deps.writer.clone();
        let save = async move { writer.save_refunds(refunds).await };
        Box::pin(
            save.into_actor(self)
                .then(move |saved, act, _| -> ReturnStep {
                    match saved {
                        Ok(saved) => {
                            act.apply_refunds(&saved);
                            for (i, r) in fresh.into_iter().zip(saved.refunds) {
                                ret.outcome[i] = Some(r);
                            }
                            ret.created = true;
                            Box::pin(ready(ret))
                        }
                        // Another refund of a sale, or of a key, committed first:
                        // read again and decide again.
                        Err(SaveError::OverRefunded | SaveError::DuplicateKey) => {
                            act.refund_round(ret)
                        }
                        Err(e) => Box::pin(ready(ret.fail(e.into()))),
                    }
                }),
        )
    }

    /// Takes committed refunds off the live totals (unless a reload that
    /// saw them came first) and tells the ranking.
    fn apply_refunds(&mut self, saved: &Saved) {
        if self.covered_through.saw(saved.seq) {
            return;
        }
        let mut changed: ProductMap<ProductTotal> = ProductMap::default();
        for r in &saved.refunds {
            if let Some(total) = self.totals.refund(&r.refund) {
                changed.insert(r.refund.product_id, total);
            }
        }
        self.totals.changed();
        self.deps.ranking.push(changed.into_values());
    }

    fn answer_return(
        &mut self,
        ret: Return,
        ctx: &mut Context<Self>,
    ) -> Result<RefundOutcome, TenantError> {
        debug_assert!(self.in_flight > 0, "every answered request was counted in");
        self.in_flight = self.in_flight.saturating_sub(1);
        if ret.claimed {
            self.claims.release_keys(ret.keys());
        }
        let _in_request = ret.span.enter();
        if let Some(e) = ret.failed {
            tracing::debug!(error = %e, "refunds request refused");
            if matches!(e, TenantError::Save(SaveError::OutcomeUnknown)) {
                tracing::warn!("commit outcome unknown; reloading the tenant's totals");
                self.reload_until_done(ctx);
            }
            return Err(e);
        }
        let refunds: Option<Vec<StoredRefund>> = ret.outcome.into_iter().collect();
        Ok(RefundOutcome {
            created: ret.created,
            refunds: refunds.ok_or(SaveError::Rejected("refunds were not settled".into()))?,
            currency: self.catalog.currency,
        })
    }
}

/// What a round checks new refunds against.
struct ReturnChecks<'f> {
    tenant: crate::domain::TenantId,
    branch: BranchId,
    sales: HashMap<SaleId, &'f RefundableSale>,
    now: Timestamp,
    void_window: std::time::Duration,
}

impl ReturnChecks<'_> {
    /// The items at `fresh` as refunds to store, or every problem by item.
    /// Items of one request that name one sale share what is left of it.
    fn refunds(
        &self,
        items: &[RefundItem],
        fresh: &[usize],
    ) -> Result<Vec<NewRefund>, Vec<ItemProblem>> {
        let mut taken: HashMap<SaleId, u32> = HashMap::new();
        let mut refunds = Vec::with_capacity(fresh.len());
        let mut problems = Vec::new();
        for &i in fresh {
            let item = &items[i];
            let Some(sale) = self.sales.get(&item.sale_id) else {
                problems.push(ItemProblem::new(
                    i,
                    Field::Named("saleID"),
                    "is not a sale of this tenant",
                ));
                continue;
            };
            let left = sale.left()
                - taken
                    .get(&item.sale_id)
                    .copied()
                    .unwrap_or(0)
                    .min(sale.left());
            match self.quantity(item, sale, left) {
                Ok(quantity) => {
                    *taken.entry(item.sale_id).or_default() += quantity.get();
                    refunds.push(NewRefund {
                        sale_id: item.sale_id,
                        tenant_id: self.tenant,
                        branch_id: self.branch,
                        product_id: sale.sale.sale.product_id,
                        quantity,
                        amount: sale.sale.sale.price.times(quantity.get()),
                        kind: item.kind,
                        reason: item.reason.clone(),
                        idempotency_key: item.idempotency_key.clone(),
                        created_at: self.now,
                    });
                }
                Err((field, problem)) => problems.push(ItemProblem::new(i, field, problem)),
            }
        }
        if problems.is_empty() {
            Ok(refunds)
        } else {
            Err(problems)
        }
    }

    /// What `item` takes back of `sale`, of which `left` is left.
    fn quantity(
        &self,
        item: &RefundItem,
        sale: &RefundableSale,
        left: u32,
    ) -> Result<Quantity, (Field, String)> {
        let nothing_left = || {
            (
                Field::Named("quantity"),
                "nothing is left of the sale to take back".to_string(),
            )
        };
        match item.kind {
            RefundKind::Void => {
                if sale.sale.sale.branch_id != self.branch {
                    return Err((
                        Field::Named("kind"),
                        format!(
                            "a void is taken at the sale's own branch ({}); refund it here instead",
                            sale.sale.sale.branch_id
                        ),
                    ));
                }
                if !self.within_void_window(sale) {
                    return Err((
                        Field::Named("kind"),
                        format!(
                            "a void is taken within {} s of the sale being stored; refund it instead",
                            self.void_window.as_secs()
                        ),
                    ));
                }
                let all = Quantity::new(left.into()).ok_or_else(nothing_left)?;
                match item.quantity {
                    Some(q) if q != all => Err((
                        Field::Named("quantity"),
                        format!("a void takes back all that is left of the sale ({left}): leave quantity out"),
                    )),
                    _ => Ok(all),
                }
            }
            RefundKind::Refund => {
                let q = item.quantity.ok_or_else(|| {
                    (
                        Field::Named("quantity"),
                        "is required for a refund".to_string(),
                    )
                })?;
                if left == 0 {
                    return Err(nothing_left());
                }
                if q.get() > left {
                    return Err((
                        Field::Named("quantity"),
                        format!("must be at most {left}: what is left of the sale"),
                    ));
                }
                Ok(q)
            }
        }
    }

    fn within_void_window(&self, sale: &RefundableSale) -> bool {
        let Some(stored) = sale.stored_at else {
            return false;
        };
        let age = self.now.naive_utc() - stored.naive_utc();
        age.to_std().map_or(true, |age| age <= self.void_window)
    }
}
