//! A tenant's API keys: a back office makes, lists and revokes its till
//! keys, the operator its back-office keys too. The token exists outside
//! the caller's hands only in the answer that makes it; a revocation is in
//! force on this instance at once and on the others within 2 s.

use super::{ServiceError, Services};
use crate::auth::{NewKey, Refusal};
use crate::domain::{BranchId, KeyId, Role, Scope, TenantId};
use crate::store::{self, KeyRefusal, NewTenantKey, TenantKeyRevocation};

pub use crate::store::KeyListing;

/// The roles `caller` may make and revoke for a tenant.
fn manageable(caller: Scope) -> &'static [Role] {
    match caller {
        Scope::Operator => &[Role::Till, Role::Backoffice],
        _ => &[Role::Till],
    }
}

/// Makes a key of `role` for `tenant` as `caller` may; the key as listed,
/// and its token.
pub async fn make_key(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    role: Role,
    branch: Option<BranchId>,
    label: &str,
) -> Result<(KeyListing, String), ServiceError> {
    if !manageable(caller).contains(&role) {
        return Err(ServiceError::Forbidden(Refusal::KeyRole));
    }
    let handle = s
        .tenants
        .get(tenant)
        .await?
        .ok_or(ServiceError::UnknownTenant)?;
    handle.writable_by(caller)?;
    let scope = Scope::new(role, Some(tenant), branch).map_err(|e| ServiceError::Invalid {
        field: "role",
        problem: e.to_string(),
    })?;
    // The branch is the pod's, the key the control database's (with pods,
    // two databases): checked against the tenant's live catalog, then (a
    // branch added straight into MySQL, as sales accept) the pod's rows.
    // A branch is never deleted.
    if let Some(b) = branch {
        if !handle.catalog.view().catalog.branches.contains_key(&b)
            && !branch_stored(s, scope).await?
        {
            return Err(ServiceError::NotABranch);
        }
    }
    let key = NewKey::generate().map_err(|_| ServiceError::NotRunning("the random source"))?;
    let new = NewTenantKey {
        id: key.id.clone(),
        hash: key.hash,
        scope,
        label: label.to_string(),
        max_keys: s.limits.keys,
    };
    let made = s
        .directory()
        .run(move |c| Box::pin(async move { store::insert_tenant_key(c, &new).await }))
        .await?
        .map_err(|refusal| match refusal {
            KeyRefusal::TooMany => ServiceError::TooManyKeys(s.limits.keys),
            KeyRefusal::NoSuchTenant => ServiceError::UnknownTenant,
        })?;
    Ok((made, key.token))
}

/// Whether the branch of `scope` is stored in the tenant's own database.
async fn branch_stored(s: &Services, scope: Scope) -> Result<bool, ServiceError> {
    Ok(s.office
        .run(move |c| Box::pin(async move { store::scope_exists(c, scope).await }))
        .await?)
}

/// At most `limit` of `tenant`'s keys with ids above `after`, by id (never
/// a secret).
pub async fn list_keys(
    s: &Services,
    tenant: TenantId,
    role: Option<Role>,
    after: Option<KeyId>,
    limit: usize,
) -> Result<Vec<KeyListing>, ServiceError> {
    s.directory()
        .run(move |c| {
            Box::pin(async move {
                store::list_tenant_keys(c, tenant, role, after.as_ref(), limit).await
            })
        })
        .await?
        .ok_or(ServiceError::UnknownTenant)
}

/// Revokes a key of `tenant` that `caller` may revoke (again: the first
/// revocation time stays); this instance's cache forgets it at once.
pub async fn revoke_key(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    id: KeyId,
) -> Result<KeyListing, ServiceError> {
    let allowed = manageable(caller);
    let key_id = id.clone();
    let revoked = s
        .directory()
        .run(move |c| {
            Box::pin(async move { store::revoke_tenant_key(c, tenant, &key_id, allowed).await })
        })
        .await?;
    match revoked {
        TenantKeyRevocation::Revoked(key) => {
            if let Some(auth) = &s.auth {
                auth.forget(&[id]).await;
            }
            Ok(key)
        }
        TenantKeyRevocation::NotAllowed => Err(ServiceError::Forbidden(Refusal::KeyRole)),
        TenantKeyRevocation::NoSuchKey => Err(ServiceError::NoSuchKey),
    }
}
