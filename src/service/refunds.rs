//! Taking sales back (refunds and voids, through the tenant's actor, so
//! they are serialised with its sales and its totals follow), and finding a
//! sale with what was refunded of it.

use super::{ServiceError, Services};
use crate::auth::Refusal;
use crate::domain::{
    BranchId, Currency, RefundItem, RefundableSale, SaleId, SalesListing, Scope, StoredRefund,
    TenantId,
};
use crate::store;

pub use crate::actors::tenant::RefundOutcome;

/// Stores one request's refunds at `branch`; answered once committed.
pub async fn post_refunds(
    s: &Services,
    tenant: TenantId,
    branch: BranchId,
    items: Vec<RefundItem>,
) -> Result<RefundOutcome, ServiceError> {
    Ok(s.tenants.refund(tenant, branch, items).await?)
}

/// A page of the tenant's sales, newest first, and whether more follow. A
/// till bound to a branch lists that branch's sales (asking for another
/// branch is refused).
pub async fn list_sales(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    mut listing: SalesListing,
) -> Result<(Vec<RefundableSale>, bool, Currency), ServiceError> {
    if let Scope::Till {
        branch: Some(own), ..
    } = caller
    {
        if listing.branch.is_some_and(|b| b != own) {
            return Err(ServiceError::Forbidden(Refusal::BoundToBranch(own)));
        }
        listing.branch = Some(own);
    }
    let currency = super::tenant_currency(s, tenant).await?;
    let (sales, more) = s
        .office
        .run(move |c| Box::pin(async move { store::list_sales(c, tenant, &listing).await }))
        .await?;
    Ok((sales, more, currency))
}

/// A sale as its tenant's back office and tills find it: with its refunds.
#[derive(Debug)]
pub struct SaleView {
    pub sale: RefundableSale,
    pub refunds: Vec<StoredRefund>,
    pub currency: Currency,
}

/// The tenant's sale `id` with its refunds. A till bound to a branch finds
/// only that branch's sales (another's is "no such sale", as for a sale
/// that does not exist).
pub async fn find_sale(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    id: SaleId,
) -> Result<SaleView, ServiceError> {
    let currency = super::tenant_currency(s, tenant).await?;
    let found = s
        .office
        .run(move |c| Box::pin(async move { store::sale_with_refunds(c, tenant, id).await }))
        .await?;
    let visible = |(sale, _): &(RefundableSale, _)| match caller {
        Scope::Till {
            branch: Some(b), ..
        } => sale.sale.sale.branch_id == b,
        _ => true,
    };
    let (sale, refunds) = found.filter(visible).ok_or(ServiceError::NoSuchSale)?;
    Ok(SaleView {
        sale,
        refunds,
        currency,
    })
}
