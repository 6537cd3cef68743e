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
    /// `POST /v1/tenants`, `GET /v1/tenants`
    ManageTenants,
    /// `GET /v1/tenants/{tenantID}`
    ReadTenant,
    /// `PATCH /v1/tenants/{tenantID}` (a back office may set its own zone
    /// only: the handler's rule)
    ChangeTenant,
    /// `GET /v1/tenants/{tenantID}/products`, `/products/{productID}` and
    /// `/branches`: the whole catalog, inactive and closed rows too
    ListCatalog,
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
    /// `GET /v1/tenants/{tenantID}/events`
    ReadEvents,
    /// `/v1/tenants/{tenantID}/webhooks` and below: make, list, delete,
    /// deliveries, retry
    ManageWebhooks,
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

/// Why a key may not do what it asked, in the caller's terms: what its
/// role may do, the tenant or branch it is bound to. It names only what
/// the caller already knows (its own key's tenant and branch), never
/// whether another tenant or object exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this key belongs to tenant {0} and reaches nothing of another tenant")]
    OtherTenant(TenantId),
    #[error("this till key is bound to branch {0}")]
    BoundToBranch(BranchId),
    #[error("till keys may post sales and refunds, and read the catalog and sales transactions, of their tenant")]
    TillRole,
    #[error("sales come from till keys: a back-office or operator key may not post them")]
    NotATill,
    #[error("only the operator may {0}")]
    OperatorOnly(&'static str),
    #[error("a back-office key may change only its tenant's time zone; only the operator may rename, suspend or change the currency of a tenant")]
    TenantFields,
    #[error("a back-office key may make and revoke till keys only")]
    KeyRole,
    #[error("a till key cannot sign in to the back office; use a back-office key")]
    TillSignIn,
    #[error("a form must be sent from this site's own pages (its Origin header was missing or another site's)")]
    ForeignForm,
}

/// Whether `scope` may perform `op` on the tenant and branch of `path`.
pub fn permits(scope: Scope, op: Operation, path: PathIds) -> bool {
    check(scope, op, path).is_ok()
}

/// [`permits`], with why not.
pub fn check(scope: Scope, op: Operation, path: PathIds) -> Result<(), Refusal> {
    use Operation::*;
    let own = |tenant: TenantId| {
        if path.tenant == Some(tenant) {
            Ok(())
        } else {
            Err(Refusal::OtherTenant(tenant))
        }
    };
    match (scope, op) {
        (Scope::Till { tenant, branch }, PostSales | PostRefunds) => {
            own(tenant)?;
            match branch {
                Some(b) if path.branch != Some(b) => Err(Refusal::BoundToBranch(b)),
                _ => Ok(()),
            }
        }
        (Scope::Till { tenant, .. }, ReadCatalog | ReadSaleTransactions) => own(tenant),
        (Scope::Till { .. }, _) if op.operator_only().is_some() => Err(operator_only(op)),
        (Scope::Till { .. }, _) => Err(Refusal::TillRole),
        (Scope::Backoffice { .. } | Scope::Operator, PostSales) => Err(Refusal::NotATill),
        (
            Scope::Backoffice { tenant },
            ReadTenantSales | ReadTenant | ChangeTenant | ReadCatalog | ListCatalog | ChangeCatalog
            | ManageKeys | PostRefunds | ReadSaleTransactions | ReadEvents | ManageWebhooks,
        ) => own(tenant),
        (Scope::Backoffice { .. }, _) => Err(operator_only(op)),
        (Scope::Operator, _) => Ok(()),
    }
}

fn operator_only(op: Operation) -> Refusal {
    Refusal::OperatorOnly(op.operator_only().unwrap_or("do that"))
}

impl Operation {
    /// What the operator alone may do, as a refusal words it.
    fn operator_only(self) -> Option<&'static str> {
        match self {
            Operation::ManageTenants => Some("make and list tenants"),
            Operation::ReadTopSelling => Some("read the top sellers of all tenants"),
            _ => None,
        }
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
            (till, ReadTenant, Some("1"), None, false),
            (backoffice, ReadTenant, Some("1"), None, true),
            (backoffice, ReadTenant, Some("2"), None, false),
            (backoffice, ChangeTenant, Some("1"), None, true),
            (backoffice, ChangeTenant, Some("2"), None, false),
            (till, ChangeTenant, Some("1"), None, false),
            (till, ListCatalog, Some("1"), None, false),
            (backoffice, ListCatalog, Some("1"), None, true),
            (Scope::Operator, ListCatalog, Some("7"), None, true),
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
    fn a_refusal_says_why_in_the_callers_terms() {
        let till = Scope::Till {
            tenant: t(1),
            branch: Some(b(62)),
        };
        let backoffice = Scope::Backoffice { tenant: t(1) };
        let cases = [
            (till, PostSales, Some("1"), Some("61"), "bound to branch 62"),
            (
                till,
                ReadTenantSales,
                Some("1"),
                None,
                "till keys may post sales",
            ),
            (
                till,
                PostSales,
                Some("2"),
                Some("62"),
                "belongs to tenant 1",
            ),
            (
                backoffice,
                PostSales,
                Some("1"),
                Some("62"),
                "sales come from till keys",
            ),
            (
                Scope::Operator,
                PostSales,
                Some("1"),
                Some("62"),
                "sales come from till keys",
            ),
            (
                backoffice,
                ReadTopSelling,
                None,
                None,
                "only the operator may read the top sellers",
            ),
            (
                backoffice,
                ManageTenants,
                None,
                None,
                "only the operator may make",
            ),
            (
                backoffice,
                ReadTenant,
                Some("2"),
                None,
                "belongs to tenant 1",
            ),
        ];
        for (scope, op, tenant, branch, says) in cases {
            let refusal = check(scope, op, path(tenant, branch)).expect_err("refused");
            assert!(
                refusal.to_string().contains(says),
                "{scope:?} {op:?}: {refusal}"
            );
            // Nothing of the path's tenant is echoed: only the key's own.
            assert!(!refusal.to_string().contains(" 2"), "{refusal}");
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
