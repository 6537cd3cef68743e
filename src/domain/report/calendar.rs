//! The calendar of a time zone: a report's range cut where the zone's
//! offset from UTC changes.

use chrono::{DateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// An IANA time zone by name (`Europe/Berlin`), spaces around ignored:
/// the one reading of a zone for reports, tenants and pages.
pub fn time_zone(text: &str) -> Option<Tz> {
    text.trim().parse::<Tz>().ok()
}

/// What a bad zone name is told.
pub const TIME_ZONE_RULE: &str = "must be an IANA time zone such as Europe/Berlin";

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

/// `tz`'s offset over all of `[from, to]`, if it does not change.
pub fn fixed_offset(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<i32> {
    match stretches(tz, from, to + chrono::Duration::seconds(1)).as_slice() {
        [one] => Some(one.offset),
        _ => None,
    }
}

/// `[from, to)` cut where `tz` changes its offset. Offsets are probed
/// every hour (no zone changes twice within one) and each change is found
/// to the second by bisection.
pub(super) fn stretches(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Stretch> {
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

/// The instant a local day starts in `tz`: its first local quarter hour
/// that exists (a zone may skip midnight, or, as Samoa in 2011, a whole
/// day, which then starts where the next one does).
pub fn day_start(tz: chrono_tz::Tz, day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let first = |day: chrono::NaiveDate| {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        (0..96)
            .filter_map(|q| midnight.checked_add_signed(chrono::Duration::minutes(15 * q)))
            .find_map(|local| tz.from_local_datetime(&local).earliest())
    };
    first(day)
        .or_else(|| day.succ_opt().and_then(first))
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| day.and_time(chrono::NaiveTime::MIN).and_utc())
}
