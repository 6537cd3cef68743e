//! Request values parsed at the edge into types that cannot be invalid, so the
//! actors and the store never re-check them.

mod money;
mod sale;
mod sales_body;

pub use money::Money;
pub use sale::{IdempotencyKey, NewSale, Quantity, SaleItem, StoredSale, Timestamp};
pub use sales_body::{parse_sales, ParsedSales, SalesParseError, MAX_ERROR_FIELDS, MAX_ITEMS};

/// Ids in paths and bodies: positive integers.
pub type TenantId = u64;
pub type BranchId = u64;
pub type ProductId = u64;

/// A map by product id, hashed with foldhash rather than SipHash (several
/// per sale: about 400 instructions an insert less). Product ids in these
/// maps are the catalog's, never a client's free choice.
pub type ProductMap<V> = std::collections::HashMap<ProductId, V, foldhash::fast::RandomState>;

/// Longest piece of client text repeated in an answer.
pub const MAX_ECHO_CHARS: usize = 64;

/// `text` cut to [`MAX_ECHO_CHARS`] characters (with `…` when cut), so an
/// answer never grows with what a client sent.
pub fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => text.into(),
        Some((end, _)) => format!("{}…", &text[..end]).into(),
    }
}

/// Parses a path segment as a positive id; anything else is "no such thing".
pub fn parse_path_id(segment: &str) -> Option<u64> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok().filter(|&n| n > 0)
}
