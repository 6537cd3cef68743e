//! Events: what a tenant's feed tells, numbered 1, 2, 3… in commit order
//! (SPEC §3, Events). A sale's and a refund's event is its own stored row;
//! a catalog change's is the object as the API answered it then.

use serde::Serialize;

use super::{Branch, BranchId, Money, Product, ProductId, StoredRefund, StoredSale, Timestamp};

/// Most events one pull answers.
pub const MAX_EVENTS_PAGE: usize = 1_000;

/// What an event tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    SaleCreated,
    RefundCreated,
    ProductCreated,
    ProductUpdated,
    BranchCreated,
    BranchUpdated,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::SaleCreated,
        EventType::RefundCreated,
        EventType::ProductCreated,
        EventType::ProductUpdated,
        EventType::BranchCreated,
        EventType::BranchUpdated,
    ];

    /// Its name on the wire (and in `catalog_events.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SaleCreated => "sale.created",
            EventType::RefundCreated => "refund.created",
            EventType::ProductCreated => "product.created",
            EventType::ProductUpdated => "product.updated",
            EventType::BranchCreated => "branch.created",
            EventType::BranchUpdated => "branch.updated",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether events of this type are catalog changes (stored apart).
    pub fn is_catalog(self) -> bool {
        !matches!(self, EventType::SaleCreated | EventType::RefundCreated)
    }
}

/// What an event carries: the stored row, or the catalog object as the
/// API answered it (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    Sale(StoredSale),
    Refund(StoredRefund),
    Catalog(String),
}

/// One event of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub seq: u64,
    pub kind: EventType,
    pub created_at: Timestamp,
    pub data: EventData,
}

/// A pull of a tenant's events: those after `after`, of `types` (all when
/// empty), at most `limit`, in `seq` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQuery {
    pub after: u64,
    pub limit: usize,
    pub types: Vec<EventType>,
}

/// A product as the API shows it (its answers and its events).
#[derive(Debug, Serialize)]
pub struct ProductView<'a> {
    id: ProductId,
    sku: &'a str,
    name: &'a str,
    active: bool,
    /// The list price, `null` when the product has none.
    price: Option<Money>,
}

impl<'a> ProductView<'a> {
    pub fn new(id: ProductId, p: &'a Product) -> Self {
        ProductView {
            id,
            sku: p.sku.as_str(),
            name: p.name.as_str(),
            active: p.active,
            price: p.price,
        }
    }
}

/// A branch as the API shows it (its answers and its events).
#[derive(Debug, Serialize)]
pub struct BranchView<'a> {
    id: BranchId,
    code: &'a str,
    name: &'a str,
    open: bool,
}

impl<'a> BranchView<'a> {
    pub fn new(id: BranchId, b: &'a Branch) -> Self {
        BranchView {
            id,
            code: b.code.as_str(),
            name: b.name.as_str(),
            open: b.open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_from_its_name_and_only_catalog_types_are_catalog() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("sale.deleted"), None);
        let catalog: Vec<_> = EventType::ALL
            .into_iter()
            .filter(|t| t.is_catalog())
            .collect();
        assert_eq!(catalog.len(), 4);
        assert!(!EventType::SaleCreated.is_catalog() && !EventType::RefundCreated.is_catalog());
    }
}
