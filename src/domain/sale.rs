//! A sale as the service handles it: the parsed values of one request item
//! ([`SaleItem`]), a sale placed in its tenant and branch ([`NewSale`]), and
//! a committed one ([`StoredSale`]), with the values they are made of.

use serde::Serialize;

use super::{BranchId, Money, ProductId, SaleId, TenantId, Timestamp};

const MAX_QUANTITY: i64 = 1_000_000;
const MAX_KEY_LEN: usize = 64;

/// Units sold in one transaction, 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(n: i64) -> Option<Quantity> {
        (1..=MAX_QUANTITY)
            .contains(&n)
            .then_some(Quantity(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A client's key for safe retries: 1 to 64 of `A-Z a-z 0-9 . _ : -`, so it
/// can also be written into SQL text without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=MAX_KEY_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| IdempotencyKey(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One valid transaction of a request. The branch and tenant come from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleItem {
    pub product_id: ProductId,
    pub quantity: Quantity,
    /// Left out: the product's list price when the tenant's actor takes
    /// the sale (a replay that leaves it out again matches whatever price
    /// was used).
    pub price: Option<Money>,
    pub timestamp: Timestamp,
    /// False when the timestamp is the receive time; a retry of such an item
    /// then matches its original whatever the time.
    pub timestamp_given: bool,
    /// The timestamp is more than [`MAX_FUTURE_SECONDS`] past the receive
    /// time. Such an item is refused unless it replays a stored sale (the
    /// server's clock may have stepped back since the sale was stored).
    pub timestamp_ahead: bool,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// How far past the receive time a new sale's timestamp may be.
pub const MAX_FUTURE_SECONDS: i64 = 60;

impl SaleItem {
    /// The problem of a new sale whose timestamp is ahead.
    pub const TIMESTAMP_AHEAD: &'static str = "must not be more than 60 s in the future";
}

/// A transaction ready to be stored: a [`SaleItem`] placed in its tenant and branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewSale {
    #[serde(rename = "tenantID")]
    pub tenant_id: TenantId,
    #[serde(rename = "branchID")]
    pub branch_id: BranchId,
    #[serde(rename = "productID")]
    pub product_id: ProductId,
    #[serde(rename = "quantitySold")]
    pub quantity: Quantity,
    #[serde(rename = "pricePerUnit")]
    pub price: Money,
    pub timestamp: Timestamp,
    #[serde(rename = "idempotencyKey", skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewSale {
    /// `price`: the item's, or the list price that stands in for it.
    pub fn new(tenant_id: TenantId, branch_id: BranchId, item: &SaleItem, price: Money) -> Self {
        NewSale {
            tenant_id,
            branch_id,
            product_id: item.product_id,
            quantity: item.quantity,
            price,
            timestamp: item.timestamp,
            idempotency_key: item.idempotency_key.clone(),
        }
    }

    /// Quantity × price, exact.
    pub fn revenue(&self) -> Money {
        self.price.times(self.quantity.get())
    }
}

/// A committed transaction, as answered to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredSale {
    pub id: SaleId,
    #[serde(flatten)]
    pub sale: NewSale,
}

impl StoredSale {
    /// Whether `item`, sent again with the same key, is the same sale. A
    /// timestamp or price the client left out (receive time, list price)
    /// is not compared.
    pub fn same_content(&self, branch_id: BranchId, item: &SaleItem) -> bool {
        let s = &self.sale;
        s.branch_id == branch_id
            && s.product_id == item.product_id
            && s.quantity == item.quantity
            && item.price.is_none_or(|p| p == s.price)
            && (!item.timestamp_given || s.timestamp == item.timestamp)
    }
}
