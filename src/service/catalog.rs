//! A tenant's catalog: what its tills download and its sales are checked
//! against, and the back office's changes to it. Reads come from the
//! catalog the tenant's actor publishes (no mailbox round trip); changes go
//! through the actor, which applies them before answering, so the next
//! sale sees them.

use std::sync::Arc;

use super::{ServiceError, Services};
use crate::actors::tenant::{AddBranch, AddProducts, ChangeBranch, ChangeProduct};
use crate::domain::{
    Branch, BranchId, BranchPatch, Made, NewBranch, NewProduct, Product, ProductId, ProductPatch,
    Scope, TenantId,
};

pub use crate::actors::tenant::{CatalogView, Rendered};

/// The tenant's catalog as its actor holds it (all branches and products,
/// closed and inactive ones too).
pub async fn catalog_view(
    s: &Services,
    tenant: TenantId,
) -> Result<Arc<CatalogView>, ServiceError> {
    let handle = s
        .tenants
        .get(tenant)
        .await?
        .ok_or(ServiceError::UnknownTenant)?;
    Ok(handle.catalog.view())
}

/// Makes the products whose `sku` is new, finds the others (all or nothing).
pub async fn add_products(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    products: Vec<NewProduct>,
) -> Result<Vec<Made<(ProductId, Product)>>, ServiceError> {
    Ok(s.tenants
        .change(tenant, caller, AddProducts(products))
        .await?)
}

pub async fn change_product(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    product: ProductId,
    patch: ProductPatch,
) -> Result<Product, ServiceError> {
    Ok(s.tenants
        .change(tenant, caller, ChangeProduct(product, patch))
        .await?)
}

/// Makes a branch, or finds it by `code` with the same name.
pub async fn add_branch(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    new: NewBranch,
) -> Result<Made<(BranchId, Branch)>, ServiceError> {
    Ok(s.tenants.change(tenant, caller, AddBranch(new)).await?)
}

pub async fn change_branch(
    s: &Services,
    caller: Scope,
    tenant: TenantId,
    branch: BranchId,
    patch: BranchPatch,
) -> Result<Branch, ServiceError> {
    Ok(s.tenants
        .change(tenant, caller, ChangeBranch(branch, patch))
        .await?)
}
