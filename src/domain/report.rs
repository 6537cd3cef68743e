//! Sales reports: what a back office asks ("what did each branch sell
//! yesterday, in Berlin time"), parsed at the edge, and the calendar of a
//! time zone. The store sums history rows per bucket in SQL, one query per
//! stretch of constant UTC offset (a zone's daylight-saving changes split a
//! range into a few stretches), and [`Groups`] merges them: the local day of
//! a change spans two stretches and is still one row.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Offset, SecondsFormat, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::{clip, BranchId, Money, ProductId, TenantId};

/// Longest range of one report.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Most rows in one page (and the default).
pub const MAX_PAGE_ROWS: usize = 10_000;
/// Most ids in the `branchID` or `productID` filter.
pub const MAX_FILTER_IDS: usize = 100;
/// Most groups one report may hold before it is paged: past it, the
/// client is asked to narrow the range, the grouping or the filters.
pub const MAX_GROUPS: usize = 1_000_000;

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
    fn new(parameter: &'static str, problem: String) -> Self {
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

/// An IANA time zone by name (`Europe/Berlin`), spaces around ignored:
/// the one reading of a zone for reports, tenants and pages.
pub fn time_zone(text: &str) -> Option<Tz> {
    text.trim().parse::<Tz>().ok()
}

/// What a bad zone name is told.
pub const TIME_ZONE_RULE: &str = "must be an IANA time zone such as Europe/Berlin";

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

/// A part of the range in which the zone's offset from UTC does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stretch {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Local time minus UTC, in seconds.
    pub offset: i32,
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// `[from, to)` cut where `tz` changes its offset. Offsets are probed
/// every hour (no zone changes twice within one) and each change is found
/// to the second by bisection.
fn stretches(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Stretch> {
    let hour = chrono::Duration::hours(1);
    let mut out = Vec::new();
    let (mut start, mut offset) = (from, offset_at(tz, from));
    let mut probe = from;
    while probe < to {
        let next = (probe + hour).min(to);
        if offset_at(tz, next) == offset {
            probe = next;
            continue;
        }
        // The first second with the new offset, in (probe, next].
        let (mut lo, mut hi) = (probe.timestamp(), next.timestamp());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let at = DateTime::from_timestamp(mid, 0).unwrap_or(next);
            if offset_at(tz, at) == offset {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let change = DateTime::from_timestamp(hi, 0).unwrap_or(next).min(to);
        if change > start {
            out.push(Stretch {
                from: start,
                to: change,
                offset,
            });
        }
        start = change;
        offset = offset_at(tz, change);
        probe = change;
    }
    if start < to {
        out.push(Stretch {
            from: start,
            to,
            offset,
        });
    }
    out
}

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

    fn parse(text: &str, group: GroupBy) -> Result<GroupKey, ReportProblem> {
        let bad = || {
            ReportProblem::new(
                "cursor",
                "must be the nextCursor of an earlier page of the same report".into(),
            )
        };
        let mut parts = text.split('_');
        let (Some(time), Some(offset), Some(branch), Some(product), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let key = GroupKey {
            time: (!time.is_empty())
                .then(|| time.parse::<i64>())
                .transpose()
                .map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
            branch: (!branch.is_empty())
                .then(|| BranchId::parse(branch).ok_or(()))
                .transpose()
                .map_err(|()| bad())?,
            product: (!product.is_empty())
                .then(|| ProductId::parse(product).ok_or(()))
                .transpose()
                .map_err(|()| bad())?,
        };
        let shape = (
            key.time.is_some(),
            key.branch.is_some(),
            key.product.is_some(),
        );
        if shape != (group.time.is_some(), group.branch, group.product) {
            return Err(bad());
        }
        Ok(key)
    }
}

/// What a group sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sums {
    pub quantity: u64,
    pub total: Decimal,
    pub count: u64,
}

impl std::ops::AddAssign for Sums {
    fn add_assign(&mut self, other: Sums) {
        self.quantity = self.quantity.saturating_add(other.quantity);
        self.total += other.total;
        self.count = self.count.saturating_add(other.count);
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
}

/// A page of a report.
#[derive(Debug, Clone)]
pub struct ReportPage {
    pub rows: Vec<ReportRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<GroupKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn tenant() -> TenantId {
        TenantId::new(1).expect("positive")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_range_over_a_daylight_saving_change_is_cut_where_the_offset_changes() {
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let got = stretches(tz, utc("2026-10-24T00:00:00Z"), utc("2026-10-26T00:00:00Z"));
        assert_eq!(
            got,
            vec![
                Stretch {
                    from: utc("2026-10-24T00:00:00Z"),
                    to: utc("2026-10-25T01:00:00Z"),
                    offset: 7200
                },
                Stretch {
                    from: utc("2026-10-25T01:00:00Z"),
                    to: utc("2026-10-26T00:00:00Z"),
                    offset: 3600
                },
            ]
        );
        // Lord Howe moves by half an hour, at 15:00 UTC in April.
        let tz: Tz = "Australia/Lord_Howe".parse().expect("zone");
        let got = stretches(tz, utc("2026-04-04T00:00:00Z"), utc("2026-04-06T00:00:00Z"));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].offset - got[1].offset, 1800);
    }

    #[test]
    fn hours_of_the_repeated_local_hour_are_two_rows_with_their_offsets() {
        let group = GroupBy {
            time: Some(TimeBucket::Hour),
            ..GroupBy::default()
        };
        // Local 02:00 on 2026-10-25 happens at +02:00 and again at +01:00.
        let local_hour = utc("2026-10-25T02:00:00Z").timestamp() / 3600;
        let first = GroupKey::from_local(group, Some(local_hour), 7200, None, None);
        let second = GroupKey::from_local(group, Some(local_hour), 3600, None, None);
        assert!(first < second);
        assert_eq!(
            first.hour(group).as_deref(),
            Some("2026-10-25T02:00:00+02:00")
        );
        assert_eq!(
            second.hour(group).as_deref(),
            Some("2026-10-25T02:00:00+01:00")
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("to", "2026-01-02T00:00:00Z")], "from"),
            (
                &[
                    ("from", "2016-12-31T23:59:60Z"),
                    ("to", "2016-12-31T23:59:60Z"),
                ],
                "to",
            ),
            (
                &[("from", "yesterday"), ("to", "2026-01-02T00:00:00Z")],
                "from",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00.1234567Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                ],
                "from",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00.123456Z"),
                    ("to", "2026-01-02T00:00:00.000000001Z"),
                ],
                "to",
            ),
            (
                &[
                    ("from", "2026-01-02T00:00:00Z"),
                    ("to", "2026-01-01T00:00:00Z"),
                ],
                "to",
            ),
            (
                &[
                    ("from", "2025-01-01T00:00:00Z"),
                    ("to", "2026-02-06T00:00:00Z"),
                ],
                "to",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                    ("tz", "Mars/Olympus"),
                ],
                "tz",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                    ("groupBy", "day,week"),
                ],
                "groupBy",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                    ("groupBy", "day,hour"),
                ],
                "groupBy",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                    ("branchID", "0"),
                ],
                "branchID",
            ),
            (
                &[
                    ("from", "2026-01-01T00:00:00Z"),
                    ("to", "2026-01-02T00:00:00Z"),
                    ("groupBy", "day"),
                    ("cursor", "5_0_3_"),
                ],
                "cursor",
            ),
        ];
        for (list, parameter) in cases {
            let e = ReportQuery::parse(tenant(), &pairs(list)).expect_err("refused");
            assert_eq!(e.parameter, *parameter, "{list:?}: {e:?}");
        }
    }

    #[test]
    fn a_cursor_resumes_after_its_row() {
        let group = GroupBy {
            time: Some(TimeBucket::Day),
            branch: true,
            product: false,
        };
        let key = GroupKey {
            time: Some(20_000),
            offset: 0,
            branch: BranchId::new(7),
            product: None,
        };
        assert_eq!(key.cursor(), "20000_0_7_");
        assert_eq!(GroupKey::parse(&key.cursor(), group), Ok(key));
        let page_after = |after: GroupKey, limit: usize| {
            let mut groups = Groups::after(Some(after));
            for day in 0..5 {
                let k = GroupKey {
                    time: Some(20_000 + day),
                    ..key
                };
                groups.add(k, Sums::default()).expect("room");
            }
            groups.page(limit)
        };
        let (page, more) = page_after(key, 2);
        assert_eq!(page.len(), 2);
        assert!(more);
        assert_eq!(page[0].0.time, Some(20_001));
        let (page, more) = page_after(page[1].0, 10);
        assert_eq!((page.len(), more), (2, false));
    }

    #[test]
    fn after_a_cursor_the_range_starts_at_its_time_bucket() {
        let pairs = |cursor: &str, group: &str| {
            vec![
                ("from".to_string(), "2026-01-01T00:00:00Z".to_string()),
                ("to".to_string(), "2026-01-31T00:00:00Z".to_string()),
                ("tz".to_string(), "Europe/Berlin".to_string()),
                ("groupBy".to_string(), group.to_string()),
                ("cursor".to_string(), cursor.to_string()),
            ]
        };
        let jan_20 = Utc
            .with_ymd_and_hms(2026, 1, 20, 0, 0, 0)
            .single()
            .expect("a date");
        // Local day 2026-01-20 starts at 23:00 UTC the day before (UTC+1).
        let day = jan_20.timestamp() / 86_400;
        let q =
            ReportQuery::parse(tenant(), &pairs(&format!("{day}_0__"), "day")).expect("a query");
        let first = q.stretches()[0].from;
        assert_eq!(first, jan_20 - chrono::Duration::hours(1));
        // An hour row's time is the UTC second it starts.
        let hour = jan_20.timestamp();
        let q = ReportQuery::parse(tenant(), &pairs(&format!("{hour}_3600__"), "hour"))
            .expect("a query");
        assert_eq!(q.stretches()[0].from, jan_20);
        // Without a time bucket, every stretch is read (the store filters by group).
        let q = ReportQuery::parse(tenant(), &pairs("_0_3_", "branch")).expect("a query");
        assert_eq!(q.stretches()[0].from, q.from);
        // A forged cursor far out of any calendar reads the range, no panic.
        for forged in [i64::MAX, i64::MIN] {
            let q = ReportQuery::parse(tenant(), &pairs(&format!("{forged}_0__"), "day"))
                .expect("a query");
            assert_eq!(q.stretches()[0].from, q.from);
        }
    }
}
