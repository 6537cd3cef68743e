//! Sales reports: what a back office asks ("what did each branch sell
//! yesterday, in Berlin time", [`query`]; read from a query string by
//! `http::parse::report`), the calendar of a time zone ([`calendar`]), and the merging of the store's
//! sums into rows and pages ([`groups`]). The store sums history rows per
//! bucket in SQL, one query per stretch of constant UTC offset (a zone's
//! daylight-saving changes split a range into a few stretches), and
//! [`Groups`] merges them: the local day of a change spans two stretches
//! and is still one row.

mod calendar;
mod groups;
mod plan;
mod query;
mod rollup;
#[cfg(test)]
mod tests;

pub use calendar::{day_start, fixed_offset, time_zone, Stretch, TIME_ZONE_RULE};
pub use groups::{GroupKey, Groups, ReportPage, ReportRow, Sums, TooManyGroups};
pub use plan::{Part, RolledUp, Span};
pub use query::{GroupBy, RangeError, ReportQuery, TimeBucket};
pub use rollup::{Fact, Level, RollupKey};

/// Longest range of one report.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most rows in one page (and the default).
pub const MAX_PAGE_ROWS: usize = 10_000;
/// Most ids in the `branchID` or `productID` filter.
pub const MAX_FILTER_IDS: usize = 100;
/// Most groups one report may hold before it is paged: past it, the
/// client is asked to narrow the range, the grouping or the filters.
pub const MAX_GROUPS: usize = 1_000_000;
