//! Sales and what they add up to: a till's sales (answered once
//! committed), a tenant's live totals (read straight from its actor's
//! published totals, no mailbox round trip), and the top sellers of all
//! tenants.

use super::{ServiceError, Services};
use crate::actors::ranking::TopSelling;
use crate::domain::{BranchId, Currency, ProductTotal, RankBy, SaleItem, TenantId};

pub use crate::actors::tenant::{Encoding, PostOutcome, Totals};

/// Stores one request's sales of `branch`; answered once committed.
pub async fn post_sales(
    s: &Services,
    tenant: TenantId,
    branch: BranchId,
    items: Vec<SaleItem>,
) -> Result<PostOutcome, ServiceError> {
    Ok(s.tenants.post(tenant, branch, items).await?)
}

/// The tenant's live totals per product (every sale answered 201 before
/// this call is in them), and the currency they are in.
pub async fn live_totals(
    s: &Services,
    tenant: TenantId,
) -> Result<(Totals, Currency), ServiceError> {
    let handle = s
        .tenants
        .get(tenant)
        .await?
        .ok_or(ServiceError::UnknownTenant)?;
    let currency = handle.catalog.view().catalog.currency;
    Ok((handle.totals, currency))
}

/// The global top sellers: this instance's ranking, or with shards the
/// merged view in Redis (other shards hold other tenants).
pub async fn top_sellers(
    s: &Services,
    limit: usize,
    by: RankBy,
) -> Result<Vec<ProductTotal>, ServiceError> {
    match (&s.mirror, s.shard.is_partial()) {
        (Some(mirror), true) => mirror.top(limit, by).await.map_err(|e| {
            tracing::warn!(error = %e, "merged top sellers unavailable");
            ServiceError::MirrorUnavailable
        }),
        _ => s
            .ranking
            .send(TopSelling { limit, by })
            .await
            .map_err(|_| ServiceError::NotRunning("the ranking")),
    }
}
