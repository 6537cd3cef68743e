//! Request values parsed at the edge into types that cannot be invalid, so the
//! actors and the store never re-check them.

mod money;
mod sale;

pub use money::Money;
pub use sale::{
    parse_sales, IdempotencyKey, NewSale, ParsedSales, Quantity, SaleItem, SalesParseError,
    StoredSale, Timestamp, MAX_ITEMS,
};

/// Ids in paths and bodies: positive integers.
pub type TenantId = u64;
pub type BranchId = u64;
pub type ProductId = u64;

/// Parses a path segment as a positive id; anything else is "no such thing".
pub fn parse_path_id(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok().filter(|&n| n > 0)
}
