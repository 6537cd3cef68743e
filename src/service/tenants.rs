//! Tenants: the operator makes, lists, renames and suspends them (a
//! tenant's back office may set its own zone). A change goes through the
//! tenant's actor, so its tills see it from their next request on.

use super::{ServiceError, Services};
use crate::actors::tenant::ChangeTenant;
use crate::auth::Refusal;
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
    let pods = s.control.is_some().then_some(s.shard.count);
    let made = s
        .directory()
        .run(move |c| {
            Box::pin(async move {
                match pods {
                    // Its pod's database learns it on its first use there.
                    Some(pods) => store::create_tenant_on_a_pod(c, &name, currency, pods).await,
                    None => store::create_tenant(c, &name, currency).await,
                }
            })
        })
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
        .directory()
        .run(move |c| Box::pin(async move { store::list_tenants(c, after, limit).await }))
        .await?;
    Ok(rows)
}

/// The tenants with these ids (a page of them: the operator's live top
/// sellers name theirs).
pub async fn find_tenants(
    s: &Services,
    ids: Vec<TenantId>,
) -> Result<Vec<TenantRow>, ServiceError> {
    Ok(s.directory()
        .run(move |c| Box::pin(async move { store::find_tenants(c, &ids).await }))
        .await?)
}

/// The zone a tenant counts its days in, without starting its actor (a
/// report must not): a running actor's catalog, else the tenants table.
pub async fn time_zone(s: &Services, tenant: TenantId) -> Result<chrono_tz::Tz, ServiceError> {
    if let Some(handle) = s.tenants.running(tenant) {
        return Ok(handle.catalog.view().catalog.time_zone);
    }
    Ok(find_tenant(s, tenant).await?.time_zone)
}

/// The tenant (its back office or the operator asks: the gate checked).
/// Read from the tenant's own database, which decides its state; with
/// pods, a tenant found only in the directory is copied there first (its
/// first use on this pod), as a start of its actor would.
pub async fn find_tenant(s: &Services, tenant: TenantId) -> Result<TenantRow, ServiceError> {
    let own = s
        .office
        .run(move |c| Box::pin(async move { store::find_tenant(c, tenant).await }))
        .await?;
    match own {
        Some(row) => Ok(row),
        None => s
            .tenants
            .learn(tenant)
            .await?
            .ok_or(ServiceError::UnknownTenant),
    }
}

/// Renames, suspends or resumes `tenant`, or sets its zone, as `caller`:
/// its back office may set its zone only.
pub async fn change_tenant(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    patch: TenantPatch,
) -> Result<TenantRow, ServiceError> {
    let more_than_zone =
        patch.name.is_some() || patch.suspended.is_some() || patch.currency.is_some();
    if more_than_zone && !matches!(caller, Scope::Operator) {
        return Err(ServiceError::Forbidden(Refusal::TenantFields));
    }
    let row = s
        .tenants
        .change(tenant, caller, ChangeTenant(patch))
        .await?;
    if let Some(control) = &s.control {
        // The pod decided; the directory follows. If this fails, the
        // change stands in the pod and the caller's retry (the same
        // patch) writes the directory again.
        let listed = row.clone();
        control
            .run(move |c| Box::pin(async move { store::record_tenant(c, &listed).await }))
            .await?;
    }
    Ok(row)
}
