//! The role table of the spec, as one function: what each route needs, and
//! whether a key's scope grants it for the ids in the path. Nothing here
//! looks anything up, so a refusal tells the client nothing about what
//! exists.

use crate::domain::{BranchId, ProductId, SaleId, Scope, TenantId};

/// The protected operations of the API routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/tenants/{tenantID}/branches/{branchID}/sales-transactions`
    PostSales,
    /// `GET /v1/tenants/{tenantID}/sales` and `/reports/sales`
    ReadTenantSales,
    /// `GET /v1/top-selling`
    ReadTopSelling,
    /// `POST /v1/tenants`, `GET /v1/tenants`, `PATCH /v1/tenants/{tenantID}`
    ManageTenants,
    /// `GET /v1/tenants/{tenantID}/catalog`
    ReadCatalog,
    /// `POST` and `PATCH` of `/v1/tenants/{tenantID}/branches` and `/products`
    ChangeCatalog,
    /// `POST`, `GET` and `DELETE` of `/v1/tenants/{tenantID}/keys` (which
    /// roles a back office may make or revoke is the handler's rule)
    ManageKeys,
    /// `POST /v1/tenants/{tenantID}/branches/{branchID}/refunds`
    PostRefunds,
    /// `GET /v1/tenants/{tenantID}/sales-transactions/{saleID}` (a till
    /// bound to a branch sees that branch's sales only: the service's rule)
    ReadSaleTransactions,
}

/// The ids a request's path names, parsed once (`None`: the path has no
/// such segment, or it is no id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathIds {
    pub tenant: Option<TenantId>,
    pub branch: Option<BranchId>,
    pub product: Option<ProductId>,
    pub sale: Option<SaleId>,
}

/// Whether `scope` may perform `op` on the tenant and branch of `path`.
pub fn permits(scope: Scope, op: Operation, path: PathIds) -> bool {
    match (scope, op) {
        (Scope::Till { tenant, branch }, Operation::PostSales) => {
            path.tenant == Some(tenant) && branch.is_none_or(|b| path.branch == Some(b))
        }
        (Scope::Till { tenant, branch }, Operation::PostRefunds) => {
            path.tenant == Some(tenant) && branch.is_none_or(|b| path.branch == Some(b))
        }
        (Scope::Till { tenant, .. }, Operation::ReadCatalog | Operation::ReadSaleTransactions) => {
            path.tenant == Some(tenant)
        }
        (
            Scope::Backoffice { tenant },
            Operation::ReadTenantSales
            | Operation::ReadCatalog
            | Operation::ChangeCatalog
            | Operation::ManageKeys
            | Operation::PostRefunds
            | Operation::ReadSaleTransactions,
        ) => path.tenant == Some(tenant),
        (Scope::Operator, Operation::PostSales) => false,
        (Scope::Operator, _) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    fn t(n: u64) -> TenantId {
        TenantId::new(n).expect("positive")
    }

    fn b(n: u64) -> BranchId {
        BranchId::new(n).expect("positive")
    }

    fn path(tenant: Option<&str>, branch: Option<&str>) -> PathIds {
        PathIds {
            tenant: tenant.and_then(TenantId::parse),
            branch: branch.and_then(BranchId::parse),
            product: None,
            sale: None,
        }
    }

    #[test]
    fn the_role_table_of_the_spec() {
        let till = Scope::Till {
            tenant: t(1),
            branch: None,
        };
        let branch_till = Scope::Till {
            tenant: t(1),
            branch: Some(b(10)),
        };
        let backoffice = Scope::Backoffice { tenant: t(1) };
        let cases = [
            (till, PostSales, Some("1"), Some("10"), true),
            (till, PostSales, Some("1"), Some("11"), true),
            (till, PostSales, Some("2"), Some("10"), false),
            (till, ReadTenantSales, Some("1"), None, false),
            (till, ReadTopSelling, None, None, false),
            (branch_till, PostSales, Some("1"), Some("10"), true),
            (branch_till, PostSales, Some("1"), Some("11"), false),
            (branch_till, PostSales, Some("2"), Some("10"), false),
            (backoffice, ReadTenantSales, Some("1"), None, true),
            (backoffice, ReadTenantSales, Some("2"), None, false),
            (backoffice, PostSales, Some("1"), Some("10"), false),
            (backoffice, ReadTopSelling, None, None, false),
            (Scope::Operator, ReadTenantSales, Some("999999"), None, true),
            (Scope::Operator, ReadTopSelling, None, None, true),
            (Scope::Operator, PostSales, Some("1"), Some("10"), false),
            (till, PostSales, None, Some("10"), false),
            (branch_till, PostSales, Some("1"), None, false),
            (till, ReadCatalog, Some("1"), None, true),
            (branch_till, ReadCatalog, Some("1"), None, true),
            (till, ReadCatalog, Some("2"), None, false),
            (till, ChangeCatalog, Some("1"), None, false),
            (till, ManageKeys, Some("1"), None, false),
            (till, ManageTenants, None, None, false),
            (backoffice, ReadCatalog, Some("1"), None, true),
            (backoffice, ChangeCatalog, Some("1"), None, true),
            (backoffice, ManageKeys, Some("1"), None, true),
            (backoffice, ChangeCatalog, Some("2"), None, false),
            (backoffice, ManageKeys, Some("2"), None, false),
            (backoffice, ManageTenants, None, None, false),
            (backoffice, ManageTenants, Some("1"), None, false),
            (Scope::Operator, ManageTenants, None, None, true),
            (Scope::Operator, ChangeCatalog, Some("7"), None, true),
            (Scope::Operator, ManageKeys, Some("7"), None, true),
            (Scope::Operator, ReadCatalog, Some("7"), None, true),
            (till, PostRefunds, Some("1"), Some("11"), true),
            (branch_till, PostRefunds, Some("1"), Some("10"), true),
            (branch_till, PostRefunds, Some("1"), Some("11"), false),
            (till, PostRefunds, Some("2"), Some("10"), false),
            (backoffice, PostRefunds, Some("1"), Some("11"), true),
            (backoffice, PostRefunds, Some("2"), Some("11"), false),
            (Scope::Operator, PostRefunds, Some("7"), Some("1"), true),
            (branch_till, ReadSaleTransactions, Some("1"), None, true),
            (till, ReadSaleTransactions, Some("2"), None, false),
            (backoffice, ReadSaleTransactions, Some("1"), None, true),
            (backoffice, ReadSaleTransactions, Some("2"), None, false),
            (Scope::Operator, ReadSaleTransactions, Some("7"), None, true),
        ];
        for (scope, op, tenant, branch, allowed) in cases {
            assert_eq!(
                permits(scope, op, path(tenant, branch)),
                allowed,
                "{scope:?} {op:?} {tenant:?} {branch:?}"
            );
        }
    }

    #[test]
    fn only_the_exact_id_names_a_tenant() {
        let backoffice = Scope::Backoffice { tenant: t(1) };
        for segment in ["01", "1.0", "+1", " 1", "1 ", "", "18446744073709551617"] {
            let expected = segment == "01"; // the handlers read "01" as tenant 1 too
            assert_eq!(
                permits(backoffice, ReadTenantSales, path(Some(segment), None)),
                expected,
                "{segment:?}"
            );
        }
    }
}
