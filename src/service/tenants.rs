//! Tenants: the operator makes, lists, renames and suspends them (a
//! tenant's back office may set its own zone). A change goes through the
//! tenant's actor, so its tills see it from their next request on.

use super::{ServiceError, Services};
use crate::actors::tenant::ChangeTenant;
use crate::domain::{Currency, Name, Scope, TenantId, TenantPatch};
use crate::store;

pub use crate::store::TenantRow;

/// Makes a tenant (in the deployment's default currency unless one is
/// given); this instance takes its sales at once if it owns it.
pub async fn make_tenant(
    s: &Services,
    name: Name,
    currency: Option<Currency>,
) -> Result<TenantRow, ServiceError> {
    let currency = currency.unwrap_or(s.default_currency);
    let made = s
        .office
        .run(move |c| Box::pin(async move { store::create_tenant(c, &name, currency).await }))
        .await?;
    if s.shard.owns(made.id) {
        // It may have been asked for (and found unknown) a moment ago.
        s.tenants.now_known(made.id).await;
    }
    Ok(made)
}

/// At most `limit` tenants with ids above `after`, by id.
pub async fn list_tenants(
    s: &Services,
    after: Option<TenantId>,
    limit: usize,
) -> Result<Vec<TenantRow>, ServiceError> {
    let rows = s
        .office
        .run(move |c| Box::pin(async move { store::list_tenants(c, after, limit).await }))
        .await?;
    Ok(rows)
}

/// Renames, suspends or resumes `tenant`, or sets its zone, as `caller`.
pub async fn change_tenant(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    patch: TenantPatch,
) -> Result<TenantRow, ServiceError> {
    Ok(s.tenants
        .change(tenant, caller, ChangeTenant(patch))
        .await?)
}
