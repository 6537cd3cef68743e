use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::calendar::stretches;
use super::*;
use crate::domain::{BranchId, TenantId};

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
    let q = ReportQuery::parse(tenant(), &pairs(&format!("{day}_0__"), "day")).expect("a query");
    let first = q.stretches()[0].from;
    assert_eq!(first, jan_20 - chrono::Duration::hours(1));
    // An hour row's time is the UTC second it starts.
    let hour = jan_20.timestamp();
    let q =
        ReportQuery::parse(tenant(), &pairs(&format!("{hour}_3600__"), "hour")).expect("a query");
    assert_eq!(q.stretches()[0].from, jan_20);
    // Without a time bucket, every stretch is read (the store filters by group).
    let q = ReportQuery::parse(tenant(), &pairs("_0_3_", "branch")).expect("a query");
    assert_eq!(q.stretches()[0].from, q.from);
    // A forged cursor far out of any calendar reads the range, no panic.
    for forged in [i64::MAX, i64::MIN] {
        let q =
            ReportQuery::parse(tenant(), &pairs(&format!("{forged}_0__"), "day")).expect("a query");
        assert_eq!(q.stretches()[0].from, q.from);
    }
}
