use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::calendar::stretches;
use super::*;
use crate::domain::BranchId;

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
    assert_eq!(GroupKey::from_cursor(&key.cursor(), group), Some(key));
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
