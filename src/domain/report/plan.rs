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

impl ReportQuery {
    /// The parts of the report (from its cursor on), given the zone the
    /// tenant's day and month rollups are cut in; `None`: rollups are not
    /// to be read (they are behind the history), all from the history.
    pub fn plan(&self, rollup_zone: Option<Tz>) -> Vec<Part> {
        let stretches = self.stretches();
        let (Some(first), Some(last)) = (stretches.first(), stretches.last()) else {
            return Vec::new();
        };
        let whole = Span {
            from: first.from,
            to: last.to,
        };
        let Some(zone) = rollup_zone else {
            return vec![Part::History(whole)];
        };
        let by_product = self.group_by.product || !self.products.is_empty();
        if !by_product {
            if stretches.iter().any(|s| i64::from(s.offset) % QUARTER != 0) {
                return vec![Part::History(whole)];
            }
            let level = if self.group_by.branch || !self.branches.is_empty() {
                Level::QuarterBranch
            } else {
                Level::Quarter
            };
            return quarters(level, whole);
        }
        match self.group_by.time {
            None => zoned(zone, whole, true),
            Some(TimeBucket::Day) if self.tz == zone => zoned(zone, whole, false),
            Some(_) => vec![Part::History(whole)],
        }
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

/// Whole local days of `zone` (and, with `months`, whole months) from
/// rollups, the edges from the history.
fn zoned(zone: Tz, whole: Span, months: bool) -> Vec<Part> {
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
                parts.push(Part::Zoned(Level::Day, first, m1));
            }
            parts.push(Part::Zoned(Level::Month, m1, m2));
            if m2 < end {
                parts.push(Part::Zoned(Level::Day, m2, end));
            }
        }
        _ => parts.push(Part::Zoned(Level::Day, first, end)),
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
