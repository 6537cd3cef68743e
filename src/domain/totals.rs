//! The all-time totals of each product, which the tenant actors, the
//! ranking, the mirror and the readers share, and what a tenant actor
//! starts from.

use std::sync::Arc;

use super::{Catalog, Money, ProductId, TenantId};

/// All-time totals of one product of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductTotal {
    pub tenant_id: TenantId,
    pub product_id: ProductId,
    pub name: Arc<str>,
    /// Sold, gross.
    pub quantity: u64,
    pub revenue: Money,
    /// Taken back by refunds and voids (never more than sold).
    pub refunded: u64,
    pub refunds: Money,
}

impl ProductTotal {
    /// Units sold and not taken back.
    pub fn net_quantity(&self) -> u64 {
        self.quantity.saturating_sub(self.refunded)
    }

    /// Revenue less refunds.
    pub fn net_revenue(&self) -> Money {
        Money::new(self.revenue.amount() - self.refunds.amount())
    }
}

/// What a tenant actor starts from.
#[derive(Debug, Default, Clone)]
pub struct TenantSnapshot {
    pub catalog: Catalog,
    pub totals: Vec<ProductTotal>,
}

/// The order of a top-sellers list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankBy {
    Quantity,
    Revenue,
}

/// The longest top-selling list a reader may ask for.
pub const MAX_TOP: usize = 100;

impl RankBy {
    /// Sorts `totals` best first in this order, net of refunds (ties by
    /// product id, then tenant: with pods, product ids repeat).
    pub fn sort(self, totals: &mut [ProductTotal]) {
        match self {
            RankBy::Quantity => totals.sort_by(|a, b| {
                b.net_quantity()
                    .cmp(&a.net_quantity())
                    .then(a.product_id.cmp(&b.product_id))
                    .then(a.tenant_id.cmp(&b.tenant_id))
            }),
            RankBy::Revenue => totals.sort_by(|a, b| {
                b.net_revenue()
                    .cmp(&a.net_revenue())
                    .then(a.product_id.cmp(&b.product_id))
                    .then(a.tenant_id.cmp(&b.tenant_id))
            }),
        }
    }
}
