//! A report request as a client words it in a query string (`from`, `to`,
//! `tz`, `groupBy`, `branchID`, `productID`, `cursor`, `limit`), read into
//! the domain's [`ReportQuery`].

use chrono::{DateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::domain::{
    clip, day_start, time_zone, BranchId, GroupBy, GroupKey, ListingCursor, ProductId, RangeError,
    ReportQuery, SalesListing, TenantId, TimeBucket, Timestamp, MAX_FILTER_IDS, MAX_PAGE_ROWS,
};

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

impl From<RangeError> for ReportProblem {
    fn from(e: RangeError) -> Self {
        ReportProblem::new("to", e.to_string())
    }
}

/// Reads a query string's pairs (the route refuses unknown ones before);
/// days and hours are the tenant's zone's (`zone`) unless `tz` names one.
pub fn report_query(
    tenant: TenantId,
    tenant_zone: Tz,
    pairs: &[(String, String)],
) -> Result<ReportQuery, ReportProblem> {
    let (mut from, mut to, mut cursor) = (None, None, None);
    let (mut tz, mut grouping) = (tenant_zone, GroupBy::default());
    let (mut branches, mut products, mut rows) = (Vec::new(), Vec::new(), MAX_PAGE_ROWS);
    for (name, value) in pairs {
        match name.as_str() {
            "from" => from = Some(value.as_str()),
            "to" => to = Some(value.as_str()),
            "groupBy" => grouping = group_by(value)?,
            "tz" => tz = zone(value)?,
            "branchID" => push_id(&mut branches, "branchID", value, BranchId::parse)?,
            "productID" => push_id(&mut products, "productID", value, ProductId::parse)?,
            "cursor" => cursor = Some(value.as_str()),
            "limit" => rows = limit(value)?,
            _ => {}
        }
    }
    let missing = |p| ReportProblem::new(p, "is required (an RFC 3339 instant or a date)".into());
    let range = (
        bound("from", from.ok_or_else(|| missing("from"))?, tz, 0)?,
        bound("to", to.ok_or_else(|| missing("to"))?, tz, 1)?,
    );
    let mut query = ReportQuery::over(tenant, range, tz, grouping)?;
    query.after = cursor.map(|c| cursor_key(c, grouping)).transpose()?;
    query.branches = branches;
    query.products = products;
    query.limit = rows;
    Ok(query)
}

/// Most sales one page of `GET …/sales-transactions` lists.
pub const MAX_LISTED_SALES: usize = 1000;

/// `GET …/sales-transactions?branchID&from&to&limit&cursor`: a page of a
/// tenant's sales, newest first (`limit` 1 to 1,000, default 100).
pub fn sales_listing(pairs: &[(String, String)]) -> Result<SalesListing, ReportProblem> {
    let mut listing = SalesListing {
        branch: None,
        from: None,
        to: None,
        limit: 100,
        after: None,
    };
    for (name, value) in pairs {
        match name.as_str() {
            "branchID" => {
                // Ids are BIGINT: past i64's range is no id (as the API describes them).
                let id = BranchId::parse(value.trim()).filter(|b| i64::try_from(b.get()).is_ok());
                let bad = || ReportProblem::new("branchID", "must be a branch id".into());
                listing.branch = Some(id.ok_or_else(bad)?);
            }
            "from" => listing.from = Some(Timestamp::from_utc(instant("from", value)?)),
            "to" => listing.to = Some(Timestamp::from_utc(instant("to", value)?)),
            "limit" => {
                let n = value.trim().parse::<usize>().ok();
                listing.limit = n
                    .filter(|n| (1..=MAX_LISTED_SALES).contains(n))
                    .ok_or_else(|| {
                        ReportProblem::new("limit", "must be an integer between 1 and 1000".into())
                    })?;
            }
            "cursor" => {
                let bad = || {
                    ReportProblem::new("cursor", "must be the nextCursor of an earlier page".into())
                };
                listing.after = Some(ListingCursor::parse(value).ok_or_else(bad)?);
            }
            _ => {}
        }
    }
    Ok(listing)
}

/// `day,branch`: the names a client uses, comma-separated.
pub fn group_by(text: &str) -> Result<GroupBy, ReportProblem> {
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

fn cursor_key(text: &str, group: GroupBy) -> Result<GroupKey, ReportProblem> {
    GroupKey::from_cursor(text, group).ok_or_else(|| {
        ReportProblem::new(
            "cursor",
            "must be the nextCursor of an earlier page of the same report".into(),
        )
    })
}

/// A range's end: an instant, or a plain date in `tz`, read as the start
/// of that day plus `days` (`to` holds its whole day: the next one's start).
fn bound(
    parameter: &'static str,
    text: &str,
    tz: Tz,
    days: u64,
) -> Result<DateTime<Utc>, ReportProblem> {
    let trimmed = text.trim();
    let date = (trimmed.len() == 10)
        .then(|| chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").ok())
        .flatten();
    let Some(day) = date else {
        return instant_or(parameter, text, DATE_TOO);
    };
    day.checked_add_days(chrono::Days::new(days))
        .and_then(|d| storable(day_start(tz, d)))
        .ok_or_else(|| bad_instant(parameter, text, DATE_TOO))
}

/// What a report's bounds take besides instants.
const DATE_TOO: &str = " or a date (YYYY-MM-DD, in the report's zone)";

fn instant(parameter: &'static str, text: &str) -> Result<DateTime<Utc>, ReportProblem> {
    instant_or(parameter, text, "")
}

/// An RFC 3339 instant; `also` says what else the parameter takes.
fn instant_or(
    parameter: &'static str,
    text: &str,
    also: &str,
) -> Result<DateTime<Utc>, ReportProblem> {
    let bad = || bad_instant(parameter, text, also);
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
    storable(t).ok_or_else(bad)
}

fn bad_instant(parameter: &'static str, text: &str, also: &str) -> ReportProblem {
    ReportProblem::new(
        parameter,
        format!(
            "must be an RFC 3339 instant{also} between 1971 and 9999, like 2026-11-01T00:00:00Z, got {:?}",
            clip(text)
        ),
    )
}

/// `t`, if a DATETIME column holds it with room for local days on both
/// sides (the store counts them from 1970-01-01).
fn storable(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let first = Utc.with_ymd_and_hms(1971, 1, 1, 0, 0, 0).single()?;
    let last = Utc.with_ymd_and_hms(9999, 12, 30, 0, 0, 0).single()?;
    (first..=last).contains(&t).then_some(t)
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

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn tenant() -> TenantId {
        TenantId::new(1).expect("positive")
    }

    #[test]
    fn plain_dates_are_whole_days_of_the_reports_zone_and_to_is_included() {
        let kathmandu: Tz = "Asia/Kathmandu".parse().expect("a zone");
        let day = [("from", "2026-12-05"), ("to", "2026-12-05")];
        let q = report_query(tenant(), kathmandu, &pairs(&day)).expect("a query");
        assert_eq!(q.from_text(), "2026-12-04T18:15:00Z");
        assert_eq!(q.to_text(), "2026-12-05T18:15:00Z");
        assert_eq!(q.tz, kathmandu, "the tenant's zone when none is named");
        // A zone named in the query wins, whatever its place.
        let named = [("from", "2026-12-05"), ("to", "2026-12-06"), ("tz", "UTC")];
        let q = report_query(tenant(), kathmandu, &pairs(&named)).expect("a query");
        assert_eq!(
            (q.from_text(), q.to_text()),
            ("2026-12-05T00:00:00Z".into(), "2026-12-07T00:00:00Z".into())
        );
        // An instant and a date mix.
        let mixed = [("from", "2026-12-05T06:00:00Z"), ("to", "2026-12-05")];
        let q = report_query(tenant(), Tz::UTC, &pairs(&mixed)).expect("a query");
        assert_eq!(q.to_text(), "2026-12-06T00:00:00Z");
        for (from, to, bad) in [
            ("2026-02-30", "2026-03-01", "from"),
            ("2026-12-05", "9999-12-31", "to"),
            ("1970-01-01", "1970-01-02", "from"),
            ("2026-1-5", "2026-01-06", "from"),
            ("+2026-01-05", "2026-01-06", "from"),
        ] {
            let e = report_query(tenant(), Tz::UTC, &pairs(&[("from", from), ("to", to)]))
                .expect_err("refused");
            assert_eq!(e.parameter, bad, "{from} {to}: {e:?}");
        }
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
            let e = report_query(tenant(), Tz::UTC, &pairs(list)).expect_err("refused");
            assert_eq!(e.parameter, *parameter, "{list:?}: {e:?}");
        }
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
            report_query(tenant(), Tz::UTC, &pairs(&format!("{day}_0__"), "day")).expect("a query");
        let first = q.stretches()[0].from;
        assert_eq!(first, jan_20 - chrono::Duration::hours(1));
        // An hour row's time is the UTC second it starts.
        let hour = jan_20.timestamp();
        let q = report_query(tenant(), Tz::UTC, &pairs(&format!("{hour}_3600__"), "hour"))
            .expect("a query");
        assert_eq!(q.stretches()[0].from, jan_20);
        // Without a time bucket, every stretch is read (the store filters by group).
        let q = report_query(tenant(), Tz::UTC, &pairs("_0_3_", "branch")).expect("a query");
        assert_eq!(q.stretches()[0].from, q.from);
        // A forged cursor far out of any calendar reads the range, no panic.
        for forged in [i64::MAX, i64::MIN] {
            let q = report_query(tenant(), Tz::UTC, &pairs(&format!("{forged}_0__"), "day"))
                .expect("a query");
            assert_eq!(q.stretches()[0].from, q.from);
        }
    }
}
