//! The role table of the spec, as one function: what each route needs, and
//! whether a key's scope grants it for the ids in the path. Nothing here
//! looks anything up, so a refusal tells the client nothing about what
//! exists.

use super::key::Scope;
use crate::domain::parse_path_id;

/// The protected operations, one per API route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/tenants/{tenantID}/branches/{branchID}/sales-transactions`
    PostSales,
    /// `GET /v1/tenants/{tenantID}/sales`
    ReadTenantSales,
    /// `GET /v1/top-selling`
    ReadTopSelling,
}

/// Whether `scope` may perform `op` on the tenant and branch named in the
/// path (the raw segments, decoded as the router decodes them).
pub fn permits(
    scope: Scope,
    op: Operation,
    tenant_segment: Option<&str>,
    branch_segment: Option<&str>,
) -> bool {
    match (scope, op) {
        (Scope::Till { tenant, branch }, Operation::PostSales) => {
            names(tenant_segment, tenant) && branch.is_none_or(|b| names(branch_segment, b))
        }
        (Scope::Backoffice { tenant }, Operation::ReadTenantSales) => names(tenant_segment, tenant),
        (Scope::Operator, Operation::ReadTenantSales | Operation::ReadTopSelling) => true,
        _ => false,
    }
}

/// Whether a path segment is exactly this id (as the handlers parse it).
fn names(segment: Option<&str>, id: u64) -> bool {
    segment.and_then(parse_path_id) == Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    const TILL: Scope = Scope::Till {
        tenant: 1,
        branch: None,
    };
    const BRANCH_TILL: Scope = Scope::Till {
        tenant: 1,
        branch: Some(10),
    };
    const BACKOFFICE: Scope = Scope::Backoffice { tenant: 1 };

    #[test]
    fn the_role_table_of_the_spec() {
        let cases = [
            (TILL, PostSales, Some("1"), Some("10"), true),
            (TILL, PostSales, Some("1"), Some("11"), true),
            (TILL, PostSales, Some("2"), Some("10"), false),
            (TILL, ReadTenantSales, Some("1"), None, false),
            (TILL, ReadTopSelling, None, None, false),
            (BRANCH_TILL, PostSales, Some("1"), Some("10"), true),
            (BRANCH_TILL, PostSales, Some("1"), Some("11"), false),
            (BRANCH_TILL, PostSales, Some("2"), Some("10"), false),
            (BACKOFFICE, ReadTenantSales, Some("1"), None, true),
            (BACKOFFICE, ReadTenantSales, Some("2"), None, false),
            (BACKOFFICE, PostSales, Some("1"), Some("10"), false),
            (BACKOFFICE, ReadTopSelling, None, None, false),
            (Scope::Operator, ReadTenantSales, Some("999999"), None, true),
            (Scope::Operator, ReadTopSelling, None, None, true),
            (Scope::Operator, PostSales, Some("1"), Some("10"), false),
        ];
        for (scope, op, tenant, branch, allowed) in cases {
            assert_eq!(
                permits(scope, op, tenant, branch),
                allowed,
                "{scope:?} {op:?} {tenant:?} {branch:?}"
            );
        }
    }

    #[test]
    fn only_the_exact_id_names_a_tenant() {
        for segment in ["01", "1.0", "+1", " 1", "1 ", "", "18446744073709551617"] {
            let expected = segment == "01"; // the handlers read "01" as tenant 1 too
            assert_eq!(
                permits(BACKOFFICE, ReadTenantSales, Some(segment), None),
                expected,
                "{segment:?}"
            );
        }
        assert!(!permits(TILL, PostSales, None, Some("10")));
        assert!(!permits(BRANCH_TILL, PostSales, Some("1"), None));
    }
}
