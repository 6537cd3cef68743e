//! A report's rows: the key each row is grouped by (and its cursor), the
//! sums of a group, and their merging across stretches into pages.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat};
use rust_decimal::Decimal;

use super::query::{GroupBy, TimeBucket};
use super::MAX_GROUPS;
use crate::domain::{BranchId, Money, ProductId};

/// The keys of a row. `time` is the local day (days since 1970-01-01) or
/// the UTC second at which the local hour starts, with the zone's offset
/// then (a local hour that happens twice, when clocks go back, is two
/// rows); rows sort by these fields in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub time: Option<i64>,
    /// Seconds east of UTC of an hour row; 0 otherwise.
    pub offset: i32,
    pub branch: Option<BranchId>,
    pub product: Option<ProductId>,
}

impl GroupKey {
    /// The key of a row as SQL grouped it in a stretch: `time` is the local
    /// day or local hour number since 1970-01-01.
    pub fn from_local(
        group: GroupBy,
        local: Option<i64>,
        offset: i32,
        branch: Option<BranchId>,
        product: Option<ProductId>,
    ) -> GroupKey {
        let (time, offset) = match (group.time, local) {
            (Some(TimeBucket::Hour), Some(h)) => (Some(h * 3600 - i64::from(offset)), offset),
            (Some(TimeBucket::Day), Some(d)) => (Some(d), 0),
            _ => (None, 0),
        };
        GroupKey {
            time,
            offset,
            branch,
            product,
        }
    }

    /// `YYYY-MM-DD` of a day row.
    pub fn day(&self, group: GroupBy) -> Option<String> {
        if group.time != Some(TimeBucket::Day) {
            return None;
        }
        let day = NaiveDate::from_ymd_opt(1970, 1, 1)?
            .checked_add_signed(chrono::Duration::days(self.time?))?;
        Some(day.format("%Y-%m-%d").to_string())
    }

    /// The local start of an hour row, RFC 3339 with the zone's offset then.
    pub fn hour(&self, group: GroupBy) -> Option<String> {
        if group.time != Some(TimeBucket::Hour) {
            return None;
        }
        let offset = chrono::FixedOffset::east_opt(self.offset)?;
        let start = DateTime::from_timestamp(self.time?, 0)?.with_timezone(&offset);
        Some(start.to_rfc3339_opts(SecondsFormat::Secs, false))
    }

    /// The cursor that resumes after this row.
    pub fn cursor(&self) -> String {
        let part = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        let time = self.time.map(|t| t.to_string()).unwrap_or_default();
        format!(
            "{time}_{}_{}_{}",
            self.offset,
            part(self.branch.map(BranchId::get)),
            part(self.product.map(ProductId::get))
        )
    }

    /// The row key a [`GroupKey::cursor`] of a report grouped by `group`
    /// names (`None`: not one).
    pub fn from_cursor(text: &str, group: GroupBy) -> Option<GroupKey> {
        let mut parts = text.split('_');
        let (Some(time), Some(offset), Some(branch), Some(product), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let key = GroupKey {
            time: (!time.is_empty())
                .then(|| time.parse::<i64>().ok())
                .map_or(Some(None), |t| t.map(Some))?,
            offset: offset.parse().ok()?,
            branch: (!branch.is_empty())
                .then(|| BranchId::parse(branch))
                .map_or(Some(None), |b| b.map(Some))?,
            product: (!product.is_empty())
                .then(|| ProductId::parse(product))
                .map_or(Some(None), |p| p.map(Some))?,
        };
        let shape = (
            key.time.is_some(),
            key.branch.is_some(),
            key.product.is_some(),
        );
        (shape == (group.time.is_some(), group.branch, group.product)).then_some(key)
    }
}

/// What a group sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sums {
    pub quantity: u64,
    pub total: Decimal,
    pub count: u64,
    /// Refunds and voids taken in the group (at its branch, in its time).
    pub refunded: u64,
    pub refunds: Decimal,
    pub refund_count: u64,
}

impl Sums {
    /// Whether the group holds no sale and no refund.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.refund_count == 0
    }
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, other: Sums) {
        self.quantity = self.quantity.saturating_add(other.quantity);
        self.total += other.total;
        self.count = self.count.saturating_add(other.count);
        self.refunded = self.refunded.saturating_add(other.refunded);
        self.refunds += other.refunds;
        self.refund_count = self.refund_count.saturating_add(other.refund_count);
    }
}

/// The report's groups after its cursor, merged across stretches, in key
/// order.
#[derive(Debug, Default)]
pub struct Groups {
    after: Option<GroupKey>,
    groups: BTreeMap<GroupKey, Sums>,
}

/// The report has more than [`MAX_GROUPS`] groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyGroups;

impl Groups {
    /// The groups after `after` (all without a cursor).
    pub fn after(after: Option<GroupKey>) -> Groups {
        Groups {
            after,
            groups: BTreeMap::new(),
        }
    }

    /// Adds a group's sums; a group at or before the cursor is left out.
    pub fn add(&mut self, key: GroupKey, sums: Sums) -> Result<(), TooManyGroups> {
        if self.after.is_some_and(|after| key <= after) {
            return Ok(());
        }
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&key) {
            return Err(TooManyGroups);
        }
        *self.groups.entry(key).or_default() += sums;
        Ok(())
    }

    /// Groups held so far.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The first `limit` rows, and whether more follow.
    pub fn page(&self, limit: usize) -> (Vec<(GroupKey, Sums)>, bool) {
        let mut rows = self.groups.iter();
        let page: Vec<_> = rows.by_ref().take(limit).map(|(k, s)| (*k, *s)).collect();
        (page, rows.next().is_some())
    }
}

/// One row of an answer, with the current names of its branch and product.
#[derive(Debug, Clone)]
pub struct ReportRow {
    pub key: GroupKey,
    pub branch_name: Option<String>,
    pub product_name: Option<String>,
    pub quantity: u64,
    pub total: Money,
    pub count: u64,
    pub refunded: u64,
    pub refunds: Money,
    pub refund_count: u64,
}

impl ReportRow {
    /// Sales less refunds.
    pub fn net(&self) -> Money {
        Money::new(self.total.amount() - self.refunds.amount())
    }
}

/// A page of a report.
#[derive(Debug, Clone)]
pub struct ReportPage {
    pub rows: Vec<ReportRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<GroupKey>,
    /// What the amounts are in (the tenant's currency).
    pub currency: crate::domain::Currency,
}
