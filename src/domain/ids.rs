//! Ids of tenants, branches, products and stored sales: positive integers,
//! each its own type, so that a branch id can never be passed where a
//! tenant id is meant.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(NonZeroU64);

        impl $name {
            /// `None` for 0 (ids start at 1).
            pub const fn new(n: u64) -> Option<Self> {
                match NonZeroU64::new(n) {
                    Some(n) => Some($name(n)),
                    None => None,
                }
            }

            pub const fn get(self) -> u64 {
                self.0.get()
            }

            /// Parses a path segment: decimal digits only, greater than 0
            /// (`01` is 1, as the router's parameters read it); anything
            /// else is "no such thing".
            pub fn parse(segment: &str) -> Option<Self> {
                if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                segment.parse().ok().and_then(Self::new)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = String;

            /// For command-line arguments.
            fn from_str(s: &str) -> Result<Self, String> {
                Self::parse(s.trim()).ok_or_else(|| format!("expected a positive integer, got {s:?}"))
            }
        }
    };
}

id_type!(
    /// A tenant (a retail chain).
    TenantId
);
id_type!(
    /// A branch (a shop) of a tenant.
    BranchId
);
id_type!(
    /// A product of a tenant's catalog.
    ProductId
);
id_type!(
    /// A stored sale (its row in the history, `sales_transactions.id`).
    SaleId
);
id_type!(
    /// A stored refund or void (`refunds.id`).
    RefundId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_positive_decimal_digits_name_an_id() {
        assert_eq!(TenantId::parse("1").map(TenantId::get), Some(1));
        assert_eq!(TenantId::parse("01").map(TenantId::get), Some(1));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.0",
            "18446744073709551616",
        ] {
            assert_eq!(TenantId::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            serde_json::to_string(&ProductId::new(7)).expect("serializes"),
            "7"
        );
    }
}
