//! The shared vocabulary: request values parsed at the edge into types that
//! cannot be invalid (so the actors and the store never re-check them), ids,
//! and what the service knows of a tenant. Every other layer imports from
//! here; nothing here imports from them.

mod access;
mod catalog;
mod currency;
mod error_code;
mod event;
mod ids;
mod money;
mod problems;
mod refund;
mod report;
mod sale;
mod shard;
mod timestamp;
mod totals;
mod webhook;

pub use access::{KeyId, NotAKeyId, Role, Scope, ScopeError, SecretHash, MAX_KEY_ID_LEN};
pub use catalog::{
    repeated_skus, Branch, BranchPatch, Catalog, Code, Made, Name, NewBranch, NewProduct, Product,
    ProductPatch, RowFilter, TenantLimits, TenantPatch,
};
pub use currency::{Currency, CurrencyError};
pub use error_code::ErrorCode;
pub use event::{
    BranchView, Event, EventData, EventType, EventsQuery, ProductView, MAX_EVENTS_PAGE,
};
pub use ids::{BranchId, ProductId, RefundId, SaleId, TenantId};
pub use money::Money;
pub use problems::{Field, ItemProblem};
pub use refund::{
    ListingCursor, NewRefund, RefundItem, RefundKind, RefundableSale, SalesListing, StoredRefund,
};
pub use report::{
    day_start, fixed_offset, time_zone, Fact, GroupBy, GroupKey, Groups, Level, Part, RangeError,
    ReportPage, ReportQuery, ReportRow, RolledUp, RollupKey, Span, Stretch, Sums, TimeBucket,
    TooManyGroups, MAX_FILTER_IDS, MAX_GROUPS, MAX_PAGE_ROWS, TIME_ZONE_RULE,
};
pub use sale::{IdempotencyKey, NewSale, Quantity, SaleItem, StoredSale, MAX_FUTURE_SECONDS};
pub use shard::Shard;
pub use timestamp::Timestamp;
pub use totals::{ProductTotal, RankBy, TenantSnapshot, MAX_TOP};
pub use webhook::{
    is_public, reachable, types_from_text, types_text, Delivery, NewWebhook, TargetRules, Webhook,
    WebhookUrl, MAX_WEBHOOKS_PER_TENANT, MAX_WEBHOOK_URL, PRIVATE_TARGET,
};

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
