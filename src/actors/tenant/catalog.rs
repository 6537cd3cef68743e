//! Catalog changes through the tenant's actor: a back office's create or
//! change is committed on the office's pool, then applied to the catalog
//! the actor checks sales against, before it is answered. So the next sale
//! on this instance sees it (sellable, or refused), with no reload and no
//! cache delay. Renames reach the live totals and the ranking at once.
//! The change's event, written in its transaction, is numbered into the
//! tenant's feed by its persistence actor before the answer.
//!
//! The catalog is also published to HTTP readers ([`SharedCatalog`]):
//! tills download it without a mailbox round trip, rendered once per
//! change.

use std::sync::{Arc, RwLock};

use actix::fut::{ActorFutureExt, WrapFuture};
use actix::prelude::*;
use actix_web::web::Bytes;
use futures_util::future::LocalBoxFuture;
use mysql_async::Conn;

use super::{TenantActor, TenantError};
use crate::domain::{
    Branch, BranchId, BranchPatch, Catalog, Currency, Field, ItemProblem, Made, Money, NewBranch,
    NewProduct, Product, ProductId, ProductPatch, TenantPatch,
};
use crate::store::{self, TenantRow};

/// Creates products (or finds them by `sku`), all or nothing.
#[derive(Message)]
#[rtype(result = "Result<Vec<Made<(ProductId, Product)>>, TenantError>")]
pub struct AddProducts(pub Vec<NewProduct>);

/// Renames, deactivates or activates a product.
#[derive(Message)]
#[rtype(result = "Result<Product, TenantError>")]
pub struct ChangeProduct(pub ProductId, pub ProductPatch);

/// Creates a branch (or finds it by `code`).
#[derive(Message)]
#[rtype(result = "Result<Made<(BranchId, Branch)>, TenantError>")]
pub struct AddBranch(pub NewBranch);

/// Renames, closes or opens a branch.
#[derive(Message)]
#[rtype(result = "Result<Branch, TenantError>")]
pub struct ChangeBranch(pub BranchId, pub BranchPatch);

/// Renames or suspends the tenant.
#[derive(Message)]
#[rtype(result = "Result<TenantRow, TenantError>")]
pub struct ChangeTenant(pub TenantPatch);

/// A tenant's catalog as readers see it: replaced whole on every change.
#[derive(Default)]
pub struct SharedCatalog(RwLock<Arc<CatalogView>>);

/// One version of a catalog, with its rendering made on first read.
#[derive(Default)]
pub struct CatalogView {
    pub catalog: Arc<Catalog>,
    /// Made once per version by the first reader; the others wait for it
    /// without blocking their thread.
    rendered: tokio::sync::OnceCell<Rendered>,
}

/// A catalog as the API answers it, and the `ETag` of that body.
#[derive(Clone)]
pub struct Rendered {
    pub etag: Arc<str>,
    pub body: Bytes,
}

impl SharedCatalog {
    pub fn new(catalog: Arc<Catalog>) -> SharedCatalog {
        SharedCatalog(RwLock::new(Arc::new(CatalogView {
            catalog,
            rendered: tokio::sync::OnceCell::new(),
        })))
    }

    /// The current version.
    pub fn view(&self) -> Arc<CatalogView> {
        match self.0.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, catalog: Arc<Catalog>) {
        let view = Arc::new(CatalogView {
            catalog,
            rendered: tokio::sync::OnceCell::new(),
        });
        match self.0.write() {
            Ok(mut v) => *v = view,
            Err(poisoned) => *poisoned.into_inner() = view,
        }
    }
}

impl CatalogView {
    /// `render(catalog)`, made once per version (a failed one is tried
    /// again by the next reader).
    pub async fn rendered<F, E>(
        &self,
        render: impl FnOnce(Arc<Catalog>) -> F,
    ) -> Result<Rendered, E>
    where
        F: std::future::Future<Output = Result<Rendered, E>>,
    {
        let catalog = self.catalog.clone();
        self.rendered
            .get_or_try_init(|| render(catalog))
            .await
            .cloned()
    }
}

/// A statement of `store` and what its outcome means for the tenant.
type Change<T> = Box<
    dyn for<'c> FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, store::Result<Result<T, TenantError>>>
        + Send,
>;

impl TenantActor {
    /// Commits `change` on the office's pool, then `apply`s its outcome to
    /// the actor's catalog and publishes it, then answers.
    fn change_catalog<T: Send + 'static>(
        &mut self,
        change: Change<T>,
        apply: fn(&mut TenantActor, &T),
    ) -> ResponseActFuture<Self, Result<T, TenantError>> {
        let (office, writer, tenant) =
            (self.deps.office.clone(), self.deps.writer.clone(), self.id);
        let run = async move {
            let outcome = office.run(change).await;
            if matches!(outcome, Ok(Ok(_))) {
                // The change's event joins the feed once numbered; if that
                // fails, the tenant's next numbering (or the next boot) does it.
                if let Err(e) = writer.number_catalog_events(tenant).await {
                    tracing::warn!(error = %e, tenant = %tenant, "a catalog event is left unnumbered for now");
                }
            }
            outcome
        };
        Box::pin(run.into_actor(self).map(move |outcome, act, _| {
            let value = outcome??;
            apply(act, &value);
            act.deps.catalog.publish(act.catalog.clone());
            Ok(value)
        }))
    }

    /// Puts a catalog read from MySQL in place, and publishes it.
    pub(super) fn replace_catalog(&mut self, catalog: Catalog) {
        self.catalog = Arc::new(catalog);
        self.deps.catalog.publish(self.catalog.clone());
    }

    fn catalog_mut(&mut self) -> &mut Catalog {
        Arc::make_mut(&mut self.catalog)
    }
}

/// List prices (by item) the tenant's currency can hold, or the refusal
/// naming each `price` it cannot.
fn prices_fit(
    currency: Currency,
    prices: impl IntoIterator<Item = Option<Money>>,
) -> Result<(), TenantError> {
    let problems: Vec<ItemProblem> = prices
        .into_iter()
        .enumerate()
        .filter(|(_, p)| p.is_some_and(|p| !currency.holds(p)))
        .map(|(i, _)| ItemProblem::new(i, Field::Named("price"), currency.too_fine()))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(TenantError::Invalid {
            message: "prices are finer than the tenant's currency",
            problems,
        })
    }
}

/// A create the store refused, as the tenant's answer.
fn refused(refusal: store::CatalogRefusal, what: &'static str, limit: usize) -> TenantError {
    match refusal {
        store::CatalogRefusal::Taken(problems) => TenantError::NaturalKeyTaken(problems),
        store::CatalogRefusal::Repeated(problems) => TenantError::RepeatedKeys(problems),
        store::CatalogRefusal::Full { held } => TenantError::CatalogFull { what, held, limit },
    }
}

impl Handler<AddProducts> for TenantActor {
    type Result = ResponseActFuture<Self, Result<Vec<Made<(ProductId, Product)>>, TenantError>>;

    fn handle(&mut self, msg: AddProducts, _: &mut Context<Self>) -> Self::Result {
        let prices = msg.0.iter().map(|p| p.price);
        if let Err(e) = prices_fit(self.catalog.currency, prices) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let (tenant, limit) = (self.id, self.deps.limits.products);
        let change: Change<_> = Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                let made = store::create_products(c, tenant, &msg.0, limit).await?;
                Ok(made.map_err(|r| refused(r, "products", limit)))
            })
        });
        self.change_catalog(change, |act, made: &Vec<Made<(ProductId, Product)>>| {
            let catalog = act.catalog_mut();
            for m in made {
                catalog.products.insert(m.row.0, m.row.1.clone());
            }
        })
    }
}

impl Handler<ChangeProduct> for TenantActor {
    type Result = ResponseActFuture<Self, Result<Product, TenantError>>;

    fn handle(
        &mut self,
        ChangeProduct(id, patch): ChangeProduct,
        _: &mut Context<Self>,
    ) -> Self::Result {
        if let Err(e) = prices_fit(self.catalog.currency, [patch.price.flatten()]) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let tenant = self.id;
        let change: Change<_> = Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                let changed = store::update_product(c, tenant, id, &patch).await?;
                Ok(changed.map(|p| (id, p)).ok_or(TenantError::ProductNotFound))
            })
        });
        let answer = self.change_catalog(change, |act, (id, product): &(ProductId, Product)| {
            act.catalog_mut().products.insert(*id, product.clone());
            if let Some(total) = act.totals.rename(*id, product.name.shared()) {
                act.deps.ranking.push([total]);
            }
        });
        Box::pin(answer.map(|r, _, _| r.map(|(_, p)| p)))
    }
}

impl Handler<AddBranch> for TenantActor {
    type Result = ResponseActFuture<Self, Result<Made<(BranchId, Branch)>, TenantError>>;

    fn handle(&mut self, AddBranch(new): AddBranch, _: &mut Context<Self>) -> Self::Result {
        let (tenant, limit) = (self.id, self.deps.limits.branches);
        let change: Change<_> = Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                let made = store::create_branch(c, tenant, &new, limit).await?;
                Ok(made.map_err(|r| refused(r, "branches", limit)))
            })
        });
        self.change_catalog(change, |act, made: &Made<(BranchId, Branch)>| {
            act.catalog_mut()
                .branches
                .insert(made.row.0, made.row.1.clone());
        })
    }
}

impl Handler<ChangeBranch> for TenantActor {
    type Result = ResponseActFuture<Self, Result<Branch, TenantError>>;

    fn handle(
        &mut self,
        ChangeBranch(id, patch): ChangeBranch,
        _: &mut Context<Self>,
    ) -> Self::Result {
        let tenant = self.id;
        let change: Change<_> = Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                let changed = store::update_branch(c, tenant, id, &patch).await?;
                Ok(changed.map(|b| (id, b)).ok_or(TenantError::BranchNotFound))
            })
        });
        let answer = self.change_catalog(change, |act, (id, branch): &(BranchId, Branch)| {
            act.catalog_mut().branches.insert(*id, branch.clone());
        });
        Box::pin(answer.map(|r, _, _| r.map(|(_, b)| b)))
    }
}

impl Handler<ChangeTenant> for TenantActor {
    type Result = ResponseActFuture<Self, Result<TenantRow, TenantError>>;

    fn handle(&mut self, ChangeTenant(patch): ChangeTenant, _: &mut Context<Self>) -> Self::Result {
        // Sales in flight were checked against the current currency (the
        // store refuses the change once one is stored).
        let new_currency = patch.currency.is_some_and(|c| c != self.catalog.currency);
        if new_currency && self.in_flight > 0 {
            return Box::pin(actix::fut::ready(Err(TenantError::CurrencyInUse)));
        }
        let tenant = self.id;
        let change: Change<_> = Box::new(move |c: &mut Conn| {
            Box::pin(async move {
                let changed = store::update_tenant(c, tenant, &patch).await?;
                Ok(changed.map_err(|refusal| match refusal {
                    store::TenantRefusal::NoSuchTenant => TenantError::TenantNotFound,
                    store::TenantRefusal::HasSales => TenantError::CurrencyInUse,
                }))
            })
        });
        self.change_catalog(change, |act, row: &TenantRow| {
            let catalog = act.catalog_mut();
            catalog.name = row.name.shared();
            catalog.suspended = row.suspended;
            catalog.time_zone = row.time_zone;
            let new_currency = catalog.currency != row.currency;
            catalog.currency = row.currency;
            if new_currency {
                // The totals' renderings name the currency.
                act.totals.changed();
            }
        })
    }
}
