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

mod rollups {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Fact, Level, Part, RolledUp, Span, TenantId};

    fn query(from: &str, to: &str, tz: &str, group: GroupBy) -> ReportQuery {
        let tenant = TenantId::new(1).expect("positive");
        let tz: Tz = tz.parse().expect("zone");
        let mut q = ReportQuery::over(tenant, (utc(from), utc(to)), tz, group).expect("a range");
        q.rollups = RolledUp {
            quarters: true,
            zoned: true,
            ..RolledUp::default()
        };
        q
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    fn by(time: Option<TimeBucket>, branch: bool, product: bool) -> GroupBy {
        GroupBy {
            time,
            branch,
            product,
        }
    }

    #[test]
    fn whole_days_of_the_rollup_zone_come_from_months_and_days_and_nothing_from_the_history() {
        let kathmandu: Tz = "Asia/Kathmandu".parse().expect("zone");
        // 1 March to 31 December in Kathmandu (UTC+5:45), then to 12 December.
        let q = query(
            "2026-02-28T18:15:00Z",
            "2026-12-31T18:15:00Z",
            "Asia/Kathmandu",
            by(None, false, true),
        );
        assert_eq!(
            q.plan(kathmandu),
            vec![Part::Zoned(
                Level::Month,
                date("2026-03-01"),
                date("2027-01-01")
            )]
        );
        let part = query(
            "2026-02-28T18:15:00Z",
            "2026-12-12T18:15:00Z",
            "Asia/Kathmandu",
            by(None, false, true),
        );
        assert_eq!(
            part.plan(kathmandu),
            vec![
                Part::Zoned(Level::Month, date("2026-03-01"), date("2026-12-01")),
                Part::Zoned(Level::Day, date("2026-12-01"), date("2026-12-13")),
            ]
        );
        let by_day = query(
            "2026-02-28T18:15:00Z",
            "2026-12-31T18:15:00Z",
            "Asia/Kathmandu",
            by(Some(TimeBucket::Day), false, true),
        );
        assert_eq!(
            by_day.plan(kathmandu),
            vec![Part::Zoned(
                Level::Day,
                date("2026-03-01"),
                date("2027-01-01")
            )]
        );
    }

    #[test]
    fn edges_inside_a_quarter_hour_or_a_day_come_from_the_history() {
        let q = query(
            "2026-03-01T10:07:00Z",
            "2026-03-03T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Hour), true, false),
        );
        assert_eq!(
            q.plan(Tz::UTC),
            vec![
                Part::History(Span {
                    from: utc("2026-03-01T10:07:00Z"),
                    to: utc("2026-03-01T10:15:00Z")
                }),
                Part::Quarters(
                    Level::QuarterBranch,
                    Span {
                        from: utc("2026-03-01T10:15:00Z"),
                        to: utc("2026-03-03T00:00:00Z")
                    }
                ),
            ]
        );
        let q = query(
            "2026-03-01T10:07:00Z",
            "2026-03-03T05:00:00Z",
            "UTC",
            by(None, false, true),
        );
        assert_eq!(
            q.plan(Tz::UTC),
            vec![
                Part::History(Span {
                    from: utc("2026-03-01T10:07:00Z"),
                    to: utc("2026-03-02T00:00:00Z")
                }),
                Part::Zoned(Level::Day, date("2026-03-02"), date("2026-03-03")),
                Part::History(Span {
                    from: utc("2026-03-03T00:00:00Z"),
                    to: utc("2026-03-03T05:00:00Z")
                }),
            ]
        );
    }

    #[test]
    fn what_no_rollup_answers_is_read_from_the_history() {
        let whole = |q: &ReportQuery| {
            vec![Part::History(Span {
                from: q.from,
                to: q.to,
            })]
        };
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let by_hour_and_product = query(
            "2026-03-01T00:00:00Z",
            "2026-03-09T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Hour), false, true),
        );
        assert_eq!(
            by_hour_and_product.plan(Tz::UTC),
            whole(&by_hour_and_product)
        );
        // Days of another zone than the rollups'.
        let other_zone = query(
            "2026-03-01T00:00:00Z",
            "2026-03-09T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Day), false, true),
        );
        assert_eq!(other_zone.plan(berlin), whole(&other_zone));
        // Rollups behind the history.
        let mut behind = query(
            "2026-03-01T00:00:00Z",
            "2026-03-09T00:00:00Z",
            "UTC",
            by(None, true, false),
        );
        behind.rollups.zoned = false;
        let quarters = Part::Quarters(
            Level::QuarterBranch,
            Span {
                from: behind.from,
                to: behind.to,
            },
        );
        assert_eq!(behind.plan(Tz::UTC), vec![quarters]);
        behind.rollups.quarters = false;
        assert_eq!(behind.plan(Tz::UTC), whole(&behind));
    }

    #[test]
    fn a_fact_counts_on_its_local_day_and_month_and_its_utc_quarter_hour() {
        let kathmandu: Tz = "Asia/Kathmandu".parse().expect("zone");
        let tenant = TenantId::new(1).expect("positive");
        // 18:14 UTC on 31 March is 23:59 in Kathmandu: still March.
        let at = utc("2026-03-31T18:14:59Z").naive_utc();
        let fact = Fact::sale(tenant, (2, 3), at, 1, rust_decimal::Decimal::ONE);
        let midnight = |d: &str| date(d).and_hms_opt(0, 0, 0).expect("midnight");
        assert_eq!(
            fact.key(Level::Day, kathmandu).start,
            midnight("2026-03-31")
        );
        assert_eq!(
            fact.key(Level::Month, kathmandu).start,
            midnight("2026-03-01")
        );
        let quarter = fact.key(Level::Quarter, kathmandu);
        assert_eq!(
            (quarter.start, quarter.branch, quarter.product),
            (utc("2026-03-31T18:00:00Z").naive_utc(), 0, 0)
        );
        let later = Fact::sale(
            tenant,
            (2, 3),
            utc("2026-03-31T18:15:00Z").naive_utc(),
            1,
            rust_decimal::Decimal::ONE,
        );
        assert_eq!(
            later.key(Level::Month, kathmandu).start,
            midnight("2026-04-01")
        );
    }

    #[test]
    fn reports_by_branch_read_branch_days_in_the_rollup_zone_and_quarter_hours_elsewhere() {
        let q = query(
            "2026-03-01T00:00:00Z",
            "2026-05-09T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Day), true, false),
        );
        assert_eq!(
            q.plan(Tz::UTC),
            vec![Part::Zoned(
                Level::DayBranch,
                date("2026-03-01"),
                date("2026-05-09")
            )]
        );
        let berlin: Tz = "Europe/Berlin".parse().expect("zone");
        let whole = Span {
            from: q.from,
            to: q.to,
        };
        assert_eq!(
            q.plan(berlin),
            vec![Part::Quarters(Level::QuarterBranch, whole)]
        );
        // A week by branch: quarter hours, and no days-and-months roll.
        let week = query(
            "2026-03-01T00:00:00Z",
            "2026-03-08T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Day), true, false),
        );
        assert!(!week.wants_zoned() && q.wants_zoned());
        let whole = Span {
            from: week.from,
            to: week.to,
        };
        assert_eq!(
            week.plan(Tz::UTC),
            vec![Part::Quarters(Level::QuarterBranch, whole)]
        );
    }

    #[test]
    fn a_report_by_time_is_read_in_growing_windows_of_whole_local_days() {
        let q = query(
            "2026-03-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "UTC",
            by(Some(TimeBucket::Day), false, false),
        );
        let windows: Vec<_> = q.windows().iter().map(|w| (w.from, w.to)).collect();
        let day = |d: &str| utc(&format!("{d}T00:00:00Z"));
        assert_eq!(
            windows,
            vec![
                (day("2026-03-01"), day("2026-03-08")),
                (day("2026-03-08"), day("2026-03-22")),
                (day("2026-03-22"), day("2026-04-19")),
                (day("2026-04-19"), day("2026-05-01")),
            ]
        );
        let whole = query(
            "2026-03-01T00:00:00Z",
            "2026-05-01T00:00:00Z",
            "UTC",
            by(None, true, true),
        );
        assert_eq!(whole.windows().len(), 1);
    }
}
