//! Taking a sale back: a refund (some or all of what is left of a sale, at
//! any branch of the tenant) or a void (all that is left, at the sale's own
//! branch, soon after it was stored). As for sales: the parsed request item
//! ([`RefundItem`]), one placed in its tenant and branch with its amount
//! ([`NewRefund`]), and a committed one ([`StoredRefund`]).

use serde::Serialize;

use super::{
    BranchId, IdempotencyKey, Money, Name, ProductId, Quantity, RefundId, SaleId, StoredSale,
    TenantId, Timestamp,
};

/// What a return takes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundKind {
    /// A quantity of the sale, at any branch, at any time.
    Refund,
    /// All that is left of the sale, at its branch, within the void window.
    Void,
}

impl RefundKind {
    pub fn parse(text: &str) -> Option<RefundKind> {
        match text {
            "refund" => Some(RefundKind::Refund),
            "void" => Some(RefundKind::Void),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundKind::Refund => "refund",
            RefundKind::Void => "void",
        }
    }
}

/// One valid item of a refunds request; the branch and tenant come from
/// the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundItem {
    pub sale_id: SaleId,
    /// Left out: all that is left (a void; a refund needs it).
    pub quantity: Option<Quantity>,
    pub kind: RefundKind,
    pub reason: Option<Name>,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// A sale as a return needs it: what it was, what of it is refunded, and
/// when it was stored (unknown for rows stored before refunds existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundableSale {
    pub sale: StoredSale,
    pub refunded: u32,
    pub stored_at: Option<Timestamp>,
}

impl RefundableSale {
    /// Units of the sale not refunded yet.
    pub fn left(&self) -> u32 {
        self.sale.sale.quantity.get().saturating_sub(self.refunded)
    }
}

/// A refund ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRefund {
    #[serde(rename = "saleID")]
    pub sale_id: SaleId,
    #[serde(rename = "tenantID")]
    pub tenant_id: TenantId,
    #[serde(rename = "branchID")]
    pub branch_id: BranchId,
    #[serde(rename = "productID")]
    pub product_id: ProductId,
    pub quantity: Quantity,
    /// Quantity × the sale's unit price, exact.
    pub amount: Money,
    pub kind: RefundKind,
    #[serde(serialize_with = "reason_text")]
    pub reason: Option<Name>,
    #[serde(rename = "idempotencyKey", skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<IdempotencyKey>,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
}

fn reason_text<S: serde::Serializer>(reason: &Option<Name>, s: S) -> Result<S::Ok, S::Error> {
    match reason {
        Some(r) => s.serialize_some(r.as_str()),
        None => s.serialize_none(),
    }
}

/// A committed refund, as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRefund {
    pub id: RefundId,
    #[serde(flatten)]
    pub refund: NewRefund,
}

impl StoredRefund {
    /// Whether `item`, sent again at `branch` with the same key, is this
    /// refund. A quantity left out (a void) is not compared.
    pub fn same_content(&self, branch: BranchId, item: &RefundItem) -> bool {
        let r = &self.refund;
        r.branch_id == branch
            && r.sale_id == item.sale_id
            && r.kind == item.kind
            && item.quantity.is_none_or(|q| q == r.quantity)
            && r.reason == item.reason
    }
}

/// A page of a tenant's sales, newest first (by sale time, then id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesListing {
    pub branch: Option<BranchId>,
    /// Half-open `[from, to)` on the sales' timestamps.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub limit: usize,
    /// The last sale of the page before: this page starts after it.
    pub after: Option<ListingCursor>,
}

/// Where a page of [`SalesListing`] ended: the last sale's time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingCursor {
    pub at: Timestamp,
    pub id: SaleId,
}

impl ListingCursor {
    /// `<unix microseconds>_<id>`.
    pub fn text(&self) -> String {
        let micros = self.at.naive_utc().and_utc().timestamp_micros();
        format!("{micros}_{}", self.id)
    }

    pub fn parse(text: &str) -> Option<ListingCursor> {
        let (micros, id) = text.split_once('_')?;
        let micros: i64 = micros.parse().ok()?;
        let at = chrono::DateTime::from_timestamp_micros(micros)?;
        Some(ListingCursor {
            at: Timestamp::from_utc(at),
            id: SaleId::parse(id)?,
        })
    }
}
