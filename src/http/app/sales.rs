//! The sales explorer: a range of days and one grouping (day, branch,
//! product), as a chart and a table, or as CSV for a spreadsheet (the
//! API's report, in the tenant's zone).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{Datelike, Days, NaiveDate};
use maud::html;
use serde::Deserialize;

use super::chart::{columns, ranking, Bar};
use super::layout::{notice, page as frame, Section, Shop};
use super::{html, report, tenant_catalog, today, PageError, PageResult, Rows, Viewer};
use crate::auth::PathIds;
use crate::domain::{day_start, Money, ReportPage, ReportQuery, TenantId};
use crate::http::{ApiError, AppState};
use crate::service::reports::ReportKind;
use rust_decimal::Decimal;

/// What the explorer's form asks (all optional: a week by day, by revenue).
#[derive(Deserialize, Default)]
pub struct Explore {
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    sort: Option<String>,
}

/// The days and grouping asked, checked.
struct Asked {
    from: NaiveDate,
    to: NaiveDate,
    group: &'static str,
}

fn asked(form: &Explore, tz: chrono_tz::Tz) -> Result<Asked, ApiError> {
    let day = |field: &'static str, text: &Option<String>, default: Option<NaiveDate>| {
        let problem =
            || ApiError::validation(field, "must be a date from 1970 to 9999, YYYY-MM-DD");
        match text.as_deref().map(str::trim) {
            None | Some("") => default.ok_or_else(problem),
            Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .filter(|d| (1970..=9999).contains(&d.year()))
                .ok_or_else(problem),
        }
    };
    let to = day("to", &form.to, Some(today(tz)))?;
    let from = day("from", &form.from, to.checked_sub_days(Days::new(6)))?;
    if from > to {
        return Err(ApiError::validation("from", "must not be after to"));
    }
    let group = match form.group.as_deref().unwrap_or("day") {
        "day" => "day",
        "branch" => "branch",
        "product" => "product",
        _ => {
            return Err(ApiError::validation(
                "group",
                "must be day, branch or product",
            ))
        }
    };
    Ok(Asked { from, to, group })
}

async fn run(
    state: &AppState,
    tenant: TenantId,
    asked: &Asked,
    tz: chrono_tz::Tz,
    rows: Rows,
) -> Result<(ReportQuery, ReportPage), ApiError> {
    let after = asked
        .to
        .checked_add_days(Days::new(1))
        .ok_or_else(|| ApiError::validation("to", "is too far in the future"))?;
    let range = (day_start(tz, asked.from), day_start(tz, after));
    report(
        state,
        ReportKind::Report,
        tenant,
        range,
        tz,
        asked.group,
        rows,
    )
    .await
}

/// `GET /app/tenants/{t}/sales?from=&to=&group=&sort=`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Query<Explore>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let tz = catalog.time_zone;
    let outcome = match asked(&form, tz) {
        Ok(a) => run(&state, tenant, &a, tz, Rows::FirstPage)
            .await
            .map(|r| (a, r)),
        Err(e) => Err(e),
    };
    let (problem, shown) = match outcome {
        Ok(found) => (None, Some(found)),
        Err(e @ ApiError::Validation { .. }) => (Some(Err(e.to_string())), None),
        Err(e) => return Err(PageError(e)),
    };
    let (from, to, group) = match &shown {
        Some((a, _)) => (a.from.to_string(), a.to.to_string(), a.group),
        None => (
            form.from.clone().unwrap_or_default(),
            form.to.clone().unwrap_or_default(),
            "day",
        ),
    };
    let sort = Sort::asked(form.sort.as_deref());
    let base = format!("/app/tenants/{tenant}/sales");
    let money = |d: Decimal| shop.money(Money::new(d));
    // The chart keeps the report's order (days in time); the table is sorted.
    let table = shown.as_ref().map(|(a, (query, page))| {
        let mut rows = labelled(query, page);
        let bars: Vec<Bar> = rows
            .iter()
            .map(|r| Bar {
                label: r.short.clone(),
                value: r.row.total.amount(),
            })
            .collect();
        sort.apply(&mut rows);
        (a, page, Totals::of(&rows), bars, rows)
    });
    let body = html! {
        nav class="presets" aria-label="Ranges" {
            @for (label, (f, t)) in presets(today(tz)) {
                a href={ (base) "?from=" (f) "&to=" (t) "&group=" (group) }
                  aria-current=[(f.to_string() == from && t.to_string() == to).then_some("true")] { (label) }
            }
        }
        form method="get" class="panel" {
            label { "From" input type="date" name="from" value=(from); }
            label { "To (inclusive)" input type="date" name="to" value=(to); }
            label { "Group by"
                select name="group" {
                    @for (g, name) in GROUPS {
                        option value=(g) selected[g == group] { (name) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        (notice(&problem))
        @if let Some((a, page, totals, bars, rows)) = &table {
            p {
                a href={ (base) ".csv?from=" (a.from) "&to=" (a.to) "&group=" (a.group) } download { "Download CSV" }
                span class="muted" { " · days in " (tz.name()) }
            }
            @let title = format!("Revenue by {} from {} to {}", a.group, a.from, a.to);
            @if a.group == "day" {
                (columns("sales-chart", &title, bars, &money))
            } @else {
                (ranking("sales-chart", &title, bars, &money))
            }
            table id="sales-table" {
                thead { tr {
                    @for (key, name, numeric) in sort.columns(group_name(a.group)) {
                        th class=[numeric.then_some("num")] aria-sort=[sort.aria(key)] {
                            a href={ (base) "?from=" (a.from) "&to=" (a.to) "&group=" (a.group) "&sort=" (key) } { (name) }
                        }
                    }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.long) }
                            td class="num" { (shop.money(r.row.total)) }
                            td class="num" { (shop.money(r.row.refunds)) }
                            td class="num" { (shop.money(r.row.net())) }
                            td class="num" { (r.row.quantity) }
                            td class="num" { (r.row.count) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="6" class="muted" { "No sales in this range." } } }
                }
                @if !rows.is_empty() {
                    tfoot { tr {
                        th scope="row" { "Total" }
                        td class="num" { (money(totals.revenue)) }
                        td class="num" { (money(totals.refunds)) }
                        td class="num" { (money(totals.revenue - totals.refunds)) }
                        td class="num" { (totals.quantity) }
                        td class="num" { (totals.count) }
                    } }
                }
            }
            @if page.next.is_some() {
                p class="muted" { "Only the first " (page.rows.len()) " rows are shown (and totalled); the CSV of a narrower range has the rest." }
            }
        }
    };
    let res = html(frame("Sales", &viewer, Some(shop), Section::Sales, body));
    Ok(match problem {
        Some(_) => super::with_status(res, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY),
        None => res,
    })
}

/// The groupings, as the form offers them.
const GROUPS: [(&str, &str); 3] = [("day", "Day"), ("branch", "Branch"), ("product", "Product")];

fn group_name(group: &str) -> &'static str {
    GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map_or("Day", |(_, name)| name)
}

/// The ranges a shop owner asks for most, ending today (in the shop's zone).
fn presets(today: NaiveDate) -> Vec<(&'static str, (NaiveDate, NaiveDate))> {
    let back = |days: u64| today.checked_sub_days(Days::new(days)).unwrap_or(today);
    let month = today.with_day(1).unwrap_or(today);
    vec![
        ("Today", (today, today)),
        ("Yesterday", (back(1), back(1))),
        ("Last 7 days", (back(6), today)),
        ("Last 30 days", (back(29), today)),
        ("This month", (month, today)),
    ]
}

/// A row with its group's label: short (a chart's) and long (the table's).
struct Labelled<'a> {
    short: String,
    long: String,
    /// The day of a row grouped by day.
    day: Option<NaiveDate>,
    row: &'a crate::domain::ReportRow,
}

/// The table's order: a column, largest first (names: A to Z).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    Revenue,
    Refunds,
    Net,
    Items,
    Sales,
}

impl Sort {
    const ALL: [(Sort, &'static str); 6] = [
        (Sort::Name, "name"),
        (Sort::Revenue, "revenue"),
        (Sort::Refunds, "refunds"),
        (Sort::Net, "net"),
        (Sort::Items, "items"),
        (Sort::Sales, "sales"),
    ];

    /// The order asked for; revenue unless another column is named.
    fn asked(text: Option<&str>) -> Sort {
        Sort::ALL
            .iter()
            .find(|(_, key)| Some(*key) == text)
            .map_or(Sort::Revenue, |(s, _)| *s)
    }

    fn apply(self, rows: &mut [Labelled]) {
        match self {
            // Days read in time order (their keys); other names A to Z.
            Sort::Name => rows.sort_by(|a, b| match (&a.day, &b.day) {
                (Some(x), Some(y)) => x.cmp(y),
                _ => a.long.to_lowercase().cmp(&b.long.to_lowercase()),
            }),
            Sort::Revenue => rows.sort_by_key(|r| std::cmp::Reverse(r.row.total)),
            Sort::Refunds => rows.sort_by_key(|r| std::cmp::Reverse(r.row.refunds)),
            Sort::Net => rows.sort_by_key(|r| std::cmp::Reverse(r.row.net())),
            Sort::Items => rows.sort_by_key(|r| std::cmp::Reverse(r.row.quantity)),
            Sort::Sales => rows.sort_by_key(|r| std::cmp::Reverse(r.row.count)),
        }
    }

    /// The table's columns: (sort key, header, numeric).
    fn columns(self, name: &'static str) -> [(&'static str, &'static str, bool); 6] {
        [
            ("name", name, false),
            ("revenue", "Revenue", true),
            ("refunds", "Refunds", true),
            ("net", "Net", true),
            ("items", "Items", true),
            ("sales", "Sales", true),
        ]
    }

    fn aria(self, key: &str) -> Option<&'static str> {
        let own = Sort::ALL.iter().find(|(s, _)| *s == self).map(|(_, k)| *k);
        match (own == Some(key), self) {
            (true, Sort::Name) => Some("ascending"),
            (true, _) => Some("descending"),
            _ => None,
        }
    }
}

/// The sums of the rows shown.
#[derive(Default)]
struct Totals {
    revenue: Decimal,
    refunds: Decimal,
    quantity: u64,
    count: u64,
}

impl Totals {
    fn of(rows: &[Labelled]) -> Totals {
        rows.iter().fold(Totals::default(), |t, r| Totals {
            revenue: t.revenue + r.row.total.amount(),
            refunds: t.refunds + r.row.refunds.amount(),
            quantity: t.quantity + r.row.quantity,
            count: t.count + r.row.count,
        })
    }
}

/// Each row with the label of its group (a day as people write it).
fn labelled<'a>(query: &ReportQuery, page: &'a ReportPage) -> Vec<Labelled<'a>> {
    page.rows
        .iter()
        .map(|row| {
            let day = row.key.day(query.group_by);
            let date = day
                .as_deref()
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
            let name = row
                .branch_name
                .clone()
                .or_else(|| row.product_name.clone())
                .unwrap_or_default();
            let (short, long) = match date {
                Some(d) => (
                    d.format("%-d %b").to_string(),
                    d.format("%a %-d %b %Y").to_string(),
                ),
                None => (name.clone(), name),
            };
            Labelled {
                short,
                long,
                day: date,
                row,
            }
        })
        .collect()
}

/// `GET /app/tenants/{t}/sales.csv?from=&to=&group=`: every row, as the
/// API's CSV report pages through them.
pub async fn csv(
    state: web::Data<AppState>,
    ids: PathIds,
    form: web::Query<Explore>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let tz = tenant_catalog(&state, tenant).await?.time_zone;
    let a = asked(&form, tz)?;
    let (query, page) = run(&state, tenant, &a, tz, Rows::All).await?;
    let name = format!("sales-{tenant}-{}-{}-by-{}.csv", a.from, a.to, a.group);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(crate::http::reports::csv(&query, &page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a date")
    }

    #[test]
    fn presets_are_the_ranges_a_shop_owner_asks_for() {
        let got: Vec<(&str, String, String)> = presets(day("2026-12-06"))
            .into_iter()
            .map(|(label, (f, t))| (label, f.to_string(), t.to_string()))
            .collect();
        let want = [
            ("Today", "2026-12-06", "2026-12-06"),
            ("Yesterday", "2026-12-05", "2026-12-05"),
            ("Last 7 days", "2026-11-30", "2026-12-06"),
            ("Last 30 days", "2026-11-07", "2026-12-06"),
            ("This month", "2026-12-01", "2026-12-06"),
        ];
        let want: Vec<(&str, String, String)> = want
            .iter()
            .map(|(l, f, t)| (*l, f.to_string(), t.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn sorting_by_name_reads_days_in_time_and_names_a_to_z() {
        use crate::domain::{GroupKey, Money, ReportRow};
        let row = |total: i64| ReportRow {
            key: GroupKey {
                time: None,
                offset: 0,
                branch: None,
                product: None,
            },
            branch_name: None,
            product_name: None,
            quantity: 1,
            total: Money::new(Decimal::new(total, 2)),
            count: 1,
            refunded: 0,
            refunds: Money::default(),
            refund_count: 0,
        };
        let rows = [row(300), row(100), row(200)];
        let label = |long: &str, day: Option<&str>, r| Labelled {
            short: long.to_string(),
            long: long.to_string(),
            day: day.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").expect("a date")),
            row: r,
        };
        let mut names = vec![
            label("latte", None, &rows[0]),
            label("Espresso", None, &rows[1]),
            label("cake", None, &rows[2]),
        ];
        Sort::Name.apply(&mut names);
        let order: Vec<&str> = names.iter().map(|l| l.long.as_str()).collect();
        assert_eq!(order, ["cake", "Espresso", "latte"]);
        Sort::Revenue.apply(&mut names);
        let order: Vec<&str> = names.iter().map(|l| l.long.as_str()).collect();
        assert_eq!(order, ["latte", "cake", "Espresso"]);
        let mut days = vec![
            label("Mon 7 Dec 2026", Some("2026-12-07"), &rows[0]),
            label("Sat 5 Dec 2026", Some("2026-12-05"), &rows[1]),
        ];
        Sort::Name.apply(&mut days);
        assert_eq!(days[0].long, "Sat 5 Dec 2026", "in time, not A to Z");
    }
}
