//! Rollups: the sums of a tenant's history per stretch of time, kept so a
//! report over closed stretches reads them instead of every history row.
//! Five levels (see migration V20): quarter hours in UTC, for the tenant
//! and per branch, which line up with every zone's hours and days (all
//! zones in use are whole quarter hours from UTC: Kathmandu's day starts
//! at 18:15 UTC); per branch and product, local days and months of the
//! tenant's zone, for reports by product over long ranges; and per branch,
//! its local days, for reports by branch over long ranges.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::groups::Sums;
use crate::domain::TenantId;

/// What a rollup row sums over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// A UTC quarter hour, the whole tenant.
    Quarter,
    /// A UTC quarter hour, per branch.
    QuarterBranch,
    /// A local day of the rollup zone, per branch and product.
    Day,
    /// A local month of the rollup zone, per branch and product.
    Month,
    /// A local day of the rollup zone, per branch.
    DayBranch,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Quarter,
        Level::QuarterBranch,
        Level::Day,
        Level::Month,
        Level::DayBranch,
    ];
    /// The levels cut in the rollup zone (made again when it changes).
    pub const ZONED: [Level; 3] = [Level::Day, Level::Month, Level::DayBranch];

    /// The `level` column.
    pub fn code(self) -> u8 {
        match self {
            Level::Quarter => 1,
            Level::QuarterBranch => 2,
            Level::Day => 3,
            Level::Month => 4,
            Level::DayBranch => 5,
        }
    }
}

/// One rollup row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    pub tenant: TenantId,
    pub level: Level,
    /// UTC start of a quarter hour, or the local midnight of a day or month.
    pub start: NaiveDateTime,
    /// 0 where the level does not keep it.
    pub branch: u64,
    pub product: u64,
}

/// A history row as rollups see it: a sale or a refund, at its branch and
/// UTC time, with its sums (a sale's in the sold fields, a refund's in the
/// refunded ones).
#[derive(Debug, Clone)]
pub struct Fact {
    pub tenant: TenantId,
    pub branch: u64,
    pub product: u64,
    pub at: NaiveDateTime,
    pub sums: Sums,
}

impl Fact {
    /// A sale: `quantity` units for `amount`.
    pub fn sale(
        tenant: TenantId,
        (branch, product): (u64, u64),
        at: NaiveDateTime,
        quantity: u64,
        amount: Decimal,
    ) -> Fact {
        let sums = Sums {
            quantity,
            total: amount,
            count: 1,
            ..Sums::default()
        };
        Fact {
            tenant,
            branch,
            product,
            at,
            sums,
        }
    }

    /// A refund or void: `quantity` units back for `amount`.
    pub fn refund(
        tenant: TenantId,
        (branch, product): (u64, u64),
        at: NaiveDateTime,
        quantity: u64,
        amount: Decimal,
    ) -> Fact {
        let sums = Sums {
            refunded: quantity,
            refunds: amount,
            refund_count: 1,
            ..Sums::default()
        };
        Fact {
            tenant,
            branch,
            product,
            at,
            sums,
        }
    }

    /// Adds the row to `rows` at each of `levels`.
    pub fn add_to(&self, rows: &mut BTreeMap<RollupKey, Sums>, levels: &[Level], zone: Tz) {
        for &level in levels {
            *rows.entry(self.key(level, zone)).or_default() += self.sums;
        }
    }

    /// The row's key at `level`, with `zone` cutting days and months.
    pub fn key(&self, level: Level, zone: Tz) -> RollupKey {
        let (start, branch, product) = match level {
            Level::Quarter => (quarter_start(self.at), 0, 0),
            Level::QuarterBranch => (quarter_start(self.at), self.branch, 0),
            Level::Day => (
                midnight(local_date(self.at, zone)),
                self.branch,
                self.product,
            ),
            Level::Month => (
                midnight(local_date(self.at, zone).with_day(1).unwrap_or_default()),
                self.branch,
                self.product,
            ),
            Level::DayBranch => (midnight(local_date(self.at, zone)), self.branch, 0),
        };
        RollupKey {
            tenant: self.tenant,
            level,
            start,
            branch,
            product,
        }
    }
}

/// The UTC quarter hour `at` falls in.
fn quarter_start(at: NaiveDateTime) -> NaiveDateTime {
    let minute = at.minute() - at.minute() % 15;
    at.date().and_hms_opt(at.hour(), minute, 0).unwrap_or(at)
}

fn local_date(at: NaiveDateTime, zone: Tz) -> NaiveDate {
    at.and_utc().with_timezone(&zone).date_naive()
}

fn midnight(day: NaiveDate) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN)
}
