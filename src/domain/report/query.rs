//! A report request ([`ReportQuery`]), made by [`ReportQuery::over`] (its
//! range checked) and narrowed by filters, a cursor and a page size: how a
//! client words one is `http::parse::report`'s.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::calendar::{day_start, stretches, Stretch};
use super::groups::GroupKey;
use super::plan::{RolledUp, Span};
use super::{MAX_PAGE_ROWS, MAX_RANGE_DAYS};
use crate::domain::{BranchId, ProductId, TenantId};

/// The calendar bucket of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBucket {
    Day,
    Hour,
}

/// What rows are grouped by; rows are ordered by these, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupBy {
    pub time: Option<TimeBucket>,
    pub branch: bool,
    pub product: bool,
}

impl GroupBy {
    /// The names a client uses, in the rows' order.
    pub fn names(self) -> Vec<&'static str> {
        let time = self.time.map(|t| match t {
            TimeBucket::Day => "day",
            TimeBucket::Hour => "hour",
        });
        let branch = self.branch.then_some("branch");
        let product = self.product.then_some("product");
        [time, branch, product].into_iter().flatten().collect()
    }
}

/// A report request of one tenant.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub tenant: TenantId,
    /// `[from, to)`, at most [`MAX_RANGE_DAYS`] long.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
    pub group_by: GroupBy,
    /// Only these branches (all when empty).
    pub branches: Vec<BranchId>,
    /// Only these products (all when empty).
    pub products: Vec<ProductId>,
    /// The rows after this key (the `cursor`).
    pub after: Option<GroupKey>,
    pub limit: usize,
    /// The rollups that hold every sale answered before the report was
    /// asked, and so may be read (none: all from the history).
    pub rollups: RolledUp,
}

/// What is wrong with a report's range; the end is the one at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("must be after from")]
    Empty,
    #[error("must be at most {MAX_RANGE_DAYS} days after from")]
    TooLong,
}

/// `[from, to)` is not empty and at most [`MAX_RANGE_DAYS`] long.
fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), RangeError> {
    if to <= from {
        return Err(RangeError::Empty);
    }
    if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(RangeError::TooLong);
    }
    Ok(())
}

impl ReportQuery {
    /// The first page of a report over `[from, to)` in `tz` by `group_by`,
    /// of all branches and products.
    pub fn over(
        tenant: TenantId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        tz: Tz,
        group_by: GroupBy,
    ) -> Result<Self, RangeError> {
        check_range(from, to)?;
        Ok(ReportQuery {
            tenant,
            from,
            to,
            tz,
            group_by,
            branches: Vec::new(),
            products: Vec::new(),
            after: None,
            limit: MAX_PAGE_ROWS,
            rollups: RolledUp::default(),
        })
    }

    /// The stretches of constant UTC offset that make up the range, or,
    /// after a cursor with a time bucket, the part of it from that bucket
    /// on (no row before it is in a later group).
    pub fn stretches(&self) -> Vec<Stretch> {
        let all = stretches(self.tz, self.from, self.to);
        let start = match (self.group_by.time, self.after.and_then(|k| k.time)) {
            // An hour row's time is the UTC second it starts at.
            (Some(TimeBucket::Hour), Some(t)) => DateTime::from_timestamp(t, 0),
            // A local day starts earliest where the zone is furthest east.
            // (The day is a cursor's: a forged one must not overflow.)
            (Some(TimeBucket::Day), Some(day)) => all
                .iter()
                .map(|s| i64::from(s.offset))
                .max()
                .and_then(|east| day.checked_mul(86_400)?.checked_sub(east))
                .and_then(|start| DateTime::from_timestamp(start, 0)),
            _ => None,
        };
        match start {
            Some(start) if start > self.from => stretches(self.tz, start.min(self.to), self.to),
            _ => all,
        }
    }

    /// The report's range (from its cursor on) as reports to read one
    /// after the other. Grouped by time: windows of whole local days, 7 at
    /// first and twice as many each time, so a page stops reading once it
    /// holds its rows (no later window has a group before an earlier
    /// one's); else the whole range at once.
    pub fn windows(&self) -> Vec<ReportQuery> {
        let stretches = self.stretches();
        let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
            return Vec::new();
        };
        let (mut from, end) = (first.from, last.to);
        if self.group_by.time.is_none() {
            return vec![self.window(from, end)];
        }
        let mut windows = Vec::new();
        let mut days = 7;
        while from < end {
            let day = from.with_timezone(&self.tz).date_naive();
            let to = day
                .checked_add_days(chrono::Days::new(days))
                .map(|d| day_start(self.tz, d))
                .filter(|to| *to > from)
                .map_or(end, |to| to.min(end));
            windows.push(self.window(from, to));
            from = to;
            days = days.saturating_mul(2);
        }
        windows
    }

    fn window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> ReportQuery {
        ReportQuery {
            from,
            to,
            ..self.clone()
        }
    }

    /// The stretches of constant UTC offset that make up `span`.
    pub fn stretches_of(&self, span: Span) -> Vec<Stretch> {
        stretches(self.tz, span.from, span.to)
    }

    /// `2026-11-01T00:00:00Z`, as the answer echoes the range.
    pub fn from_text(&self) -> String {
        self.from.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn to_text(&self) -> String {
        self.to.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}
