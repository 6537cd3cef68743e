//! A report request as a client words it (`from`, `to`, `tz`, `groupBy`,
//! filters, `cursor`, `limit`), read into a [`ReportQuery`] that is valid
//! by construction.

use chrono::{DateTime, SecondsFormat, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::calendar::{stretches, time_zone, Stretch};
use super::groups::GroupKey;
use super::{MAX_FILTER_IDS, MAX_PAGE_ROWS, MAX_RANGE_DAYS};
use crate::domain::{clip, BranchId, ProductId, TenantId};

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

    /// `day,branch`: the names a client uses, comma-separated.
    pub fn parse(text: &str) -> Result<GroupBy, ReportProblem> {
        let mut group = GroupBy::default();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let time = match name {
                "day" => Some(TimeBucket::Day),
                "hour" => Some(TimeBucket::Hour),
                "branch" => {
                    group.branch = true;
                    None
                }
                "product" => {
                    group.product = true;
                    None
                }
                _ => {
                    return Err(ReportProblem::new(
                        "groupBy",
                        format!(
                            "must be a comma list of day, hour, branch and product, got {:?}",
                            clip(name)
                        ),
                    ))
                }
            };
            match (group.time, time) {
                (Some(a), Some(b)) if a != b => {
                    return Err(ReportProblem::new(
                        "groupBy",
                        "may hold day or hour, not both".into(),
                    ))
                }
                (_, Some(t)) => group.time = Some(t),
                _ => {}
            }
        }
        Ok(group)
    }
}

/// A parameter the client got wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportProblem {
    pub parameter: &'static str,
    pub problem: String,
}

impl ReportProblem {
    pub(super) fn new(parameter: &'static str, problem: String) -> Self {
        ReportProblem { parameter, problem }
    }
}

/// A report request of one tenant, valid by construction.
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
}

/// `[from, to)` is not empty and at most [`MAX_RANGE_DAYS`] long.
fn check_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ReportProblem> {
    if to <= from {
        return Err(ReportProblem::new("to", "must be after from".into()));
    }
    if to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(ReportProblem::new(
            "to",
            format!("must be at most {MAX_RANGE_DAYS} days after from"),
        ));
    }
    Ok(())
}

impl ReportQuery {
    /// Reads a query string's pairs; unknown parameters are ignored.
    pub fn parse(tenant: TenantId, pairs: &[(String, String)]) -> Result<Self, ReportProblem> {
        let mut from = None;
        let mut to = None;
        let mut query = ReportQuery {
            tenant,
            from: DateTime::UNIX_EPOCH,
            to: DateTime::UNIX_EPOCH,
            tz: Tz::UTC,
            group_by: GroupBy::default(),
            branches: Vec::new(),
            products: Vec::new(),
            after: None,
            limit: MAX_PAGE_ROWS,
        };
        let mut cursor = None;
        for (name, value) in pairs {
            match name.as_str() {
                "from" => from = Some(instant("from", value)?),
                "to" => to = Some(instant("to", value)?),
                "groupBy" => query.group_by = GroupBy::parse(value)?,
                "tz" => query.tz = zone(value)?,
                "branchID" => push_id(&mut query.branches, "branchID", value, BranchId::parse)?,
                "productID" => push_id(&mut query.products, "productID", value, ProductId::parse)?,
                "cursor" => cursor = Some(value.as_str()),
                "limit" => query.limit = limit(value)?,
                _ => {}
            }
        }
        let missing = |p| ReportProblem::new(p, "is required (an RFC 3339 instant)".into());
        query.from = from.ok_or_else(|| missing("from"))?;
        query.to = to.ok_or_else(|| missing("to"))?;
        check_range(query.from, query.to)?;
        query.after = cursor
            .map(|c| GroupKey::parse(c, query.group_by))
            .transpose()?;
        Ok(query)
    }

    /// The first page of a report over `[from, to)` in `tz` by `group_by`,
    /// of all branches and products.
    pub fn over(
        tenant: TenantId,
        (from, to): (DateTime<Utc>, DateTime<Utc>),
        tz: Tz,
        group_by: GroupBy,
    ) -> Result<Self, ReportProblem> {
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

    /// `2026-11-01T00:00:00Z`, as the answer echoes the range.
    pub fn from_text(&self) -> String {
        self.from.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    pub fn to_text(&self) -> String {
        self.to.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

fn instant(parameter: &'static str, text: &str) -> Result<DateTime<Utc>, ReportProblem> {
    let bad = || {
        ReportProblem::new(
            parameter,
            format!(
                "must be an RFC 3339 instant between 1971 and 9999, like 2026-11-01T00:00:00Z, got {:?}",
                clip(text)
            ),
        )
    };
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    // Sales are stored to the microsecond: a finer bound would be cut,
    // and the range would not be the one asked for.
    if t.nanosecond() % 1_000 != 0 {
        return Err(ReportProblem::new(
            parameter,
            format!(
                "must have at most 6 fractional digits (microseconds), got {:?}",
                clip(text)
            ),
        ));
    }
    // A leap second (`23:59:60`) is the last instant of its minute here:
    // MySQL's DATETIME has no 60th second.
    let t = match t.nanosecond() {
        n if n >= 1_000_000_000 => t.with_nanosecond(999_999_999).ok_or_else(bad)?,
        _ => t,
    };
    // What a DATETIME column holds, with room for local days on both
    // sides (the store counts them from 1970-01-01).
    let first = Utc.with_ymd_and_hms(1971, 1, 1, 0, 0, 0).single();
    let last = Utc.with_ymd_and_hms(9999, 12, 30, 0, 0, 0).single();
    match (first, last) {
        (Some(first), Some(last)) if (first..=last).contains(&t) => Ok(t),
        _ => Err(bad()),
    }
}

fn zone(text: &str) -> Result<Tz, ReportProblem> {
    time_zone(text).ok_or_else(|| {
        ReportProblem::new(
            "tz",
            format!(
                "must be an IANA time zone like Europe/Berlin, got {:?}",
                clip(text)
            ),
        )
    })
}

fn push_id<T>(
    ids: &mut Vec<T>,
    parameter: &'static str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<(), ReportProblem> {
    if ids.len() == MAX_FILTER_IDS {
        return Err(ReportProblem::new(
            parameter,
            format!("may be given at most {MAX_FILTER_IDS} times"),
        ));
    }
    let id = parse(text.trim()).ok_or_else(|| {
        ReportProblem::new(
            parameter,
            format!("must be a positive integer id, got {:?}", clip(text)),
        )
    })?;
    ids.push(id);
    Ok(())
}

fn limit(text: &str) -> Result<usize, ReportProblem> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PAGE_ROWS).contains(n))
        .ok_or_else(|| {
            ReportProblem::new(
                "limit",
                format!("must be an integer between 1 and {MAX_PAGE_ROWS}"),
            )
        })
}
