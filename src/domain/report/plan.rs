//! Where each part of a report's range is read from: the rollups for what
//! lines up with their stretches, the history for the rest (the edges of
//! a range that starts or ends inside a quarter hour or a day, and reports
//! no rollup level answers: by hour and product, or by day and product in
//! another zone than the rollups').

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;

use super::calendar::day_start;
use super::query::{ReportQuery, TimeBucket};
use super::rollup::Level;

/// `[from, to)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// One part of a report's range and where it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The history rows of the span.
    History(Span),
    /// Quarter-hour rollups ([`Level::Quarter`] or [`Level::QuarterBranch`]).
    Quarters(Level, Span),
    /// Day or month rollups whose local start is in `[from, to)`.
    Zoned(Level, NaiveDate, NaiveDate),
}

const QUARTER: i64 = 900;

/// Which rollups hold every sale committed before the report was asked
/// (the rest are read from the history).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    /// Quarter hours (levels 1, 2).
    pub quarters: bool,
    /// Days and months of the rollup zone (levels 3, 4, 5).
    pub zoned: bool,
    /// The newest sale and refund ids when the report asked: a level is
    /// read only if its marks, in the report's own snapshot, are at least
    /// these (a rebuild may have emptied it since).
    pub sales: u64,
    pub refunds: u64,
}

impl ReportQuery {
    /// The parts of the report (from its cursor on), given the zone the
    /// tenant's day and month rollups are cut in and which rollups are
    /// rolled up far enough to be read ([`ReportQuery::rollups`]).
    pub fn plan(&self, zone: Tz) -> Vec<Part> {
        let stretches = self.stretches();
        let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
            return Vec::new();
        };
        let whole = Span {
            from: first.from,
            to: last.to,
        };
        let rolled = self.rollups;
        let by_product = self.group_by.product || !self.products.is_empty();
        let by_branch = self.group_by.branch || !self.branches.is_empty();
        let zone_days = rolled.zoned
            && match self.group_by.time {
                None => true,
                Some(TimeBucket::Day) => self.tz == zone,
                Some(TimeBucket::Hour) => false,
            };
        let quarter_offsets = stretches.iter().all(|s| i64::from(s.offset) % QUARTER == 0);
        match (by_product, by_branch) {
            (true, _) if zone_days => zoned(zone, whole, Level::Day, self.group_by.time.is_none()),
            (false, true) if zone_days && self.is_long() => {
                zoned(zone, whole, Level::DayBranch, false)
            }
            (false, true) if rolled.quarters && quarter_offsets => {
                quarters(Level::QuarterBranch, whole)
            }
            (false, false) if rolled.quarters && quarter_offsets => quarters(Level::Quarter, whole),
            _ => vec![Part::History(whole)],
        }
    }

    /// Whether the report can read the zoned rollups (so a roll before it
    /// should take them on too): it is by product, or by branch over more
    /// than a month (shorter, the quarter hours per branch are few: the
    /// overview's "today by branch", asked every few seconds while a back
    /// office watches, never makes the days and months roll).
    pub fn wants_zoned(&self) -> bool {
        let by_branch = self.group_by.branch || !self.branches.is_empty();
        self.group_by.product || !self.products.is_empty() || (by_branch && self.is_long())
    }

    /// Longer than a month: branch days beat quarter hours per branch.
    fn is_long(&self) -> bool {
        self.to - self.from > chrono::Duration::days(31)
    }
}

/// Whole quarter hours from rollups, the edges from the history.
fn quarters(level: Level, whole: Span) -> Vec<Part> {
    let (from, to) = (whole.from.timestamp(), whole.to.timestamp());
    let inner_from = from + (QUARTER - from.rem_euclid(QUARTER)) % QUARTER;
    let inner_to = to - to.rem_euclid(QUARTER);
    if inner_from >= inner_to {
        return vec![Part::History(whole)];
    }
    let at = |t| DateTime::from_timestamp(t, 0).unwrap_or(whole.from);
    let inner = Span {
        from: at(inner_from),
        to: at(inner_to),
    };
    edges(whole, inner, vec![Part::Quarters(level, inner)])
}

/// Whole local days of `zone` at `days` (and, with `months`, whole months
/// at [`Level::Month`]) from rollups, the edges from the history.
fn zoned(zone: Tz, whole: Span, days: Level, months: bool) -> Vec<Part> {
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).date_naive();
    let first = local(whole.from);
    let first = match day_start(zone, first) >= whole.from {
        true => first,
        false => first.succ_opt().unwrap_or(first),
    };
    let end = local(whole.to);
    if first >= end {
        return vec![Part::History(whole)];
    }
    let inner = Span {
        from: day_start(zone, first),
        to: day_start(zone, end),
    };
    let mut parts = Vec::new();
    let month_from = match first.day() {
        1 => Some(first),
        _ => first
            .with_day(1)
            .and_then(|d| d.checked_add_months(Months::new(1))),
    };
    let month_to = end.with_day(1);
    match (months, month_from, month_to) {
        (true, Some(m1), Some(m2)) if m1 < m2 => {
            if first < m1 {
                parts.push(Part::Zoned(days, first, m1));
            }
            parts.push(Part::Zoned(Level::Month, m1, m2));
            if m2 < end {
                parts.push(Part::Zoned(days, m2, end));
            }
        }
        _ => parts.push(Part::Zoned(days, first, end)),
    }
    edges(whole, inner, parts)
}

/// `middle` (which covers `inner`) with the history of `whole` around it.
fn edges(whole: Span, inner: Span, middle: Vec<Part>) -> Vec<Part> {
    let mut parts = Vec::new();
    if whole.from < inner.from {
        parts.push(Part::History(Span {
            from: whole.from,
            to: inner.from,
        }));
    }
    parts.extend(middle);
    if inner.to < whole.to {
        parts.push(Part::History(Span {
            from: inner.to,
            to: whole.to,
        }));
    }
    parts
}
