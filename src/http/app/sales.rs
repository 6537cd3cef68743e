//! The sales explorer: a range of days and one grouping (day, branch,
//! product), as a chart and a table, or as CSV for a spreadsheet (the
//! API's report, in the tenant's zone).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{Datelike, Days, NaiveDate};
use maud::html;
use serde::Deserialize;

use super::chart::{bars, Bar};
use super::layout::{notice, page as frame, Section};
use super::{html, report, tenant_catalog, today, PageError, PageResult, Rows, Viewer};
use crate::auth::PathIds;
use crate::domain::{day_start, ReportPage, ReportQuery, TenantId};
use crate::http::{ApiError, AppState};
use crate::service::reports::ReportKind;

/// What the explorer's form asks (all optional: a week by day).
#[derive(Deserialize, Default)]
pub struct Explore {
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
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

/// `GET /app/tenants/{t}/sales?from=&to=&group=`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Query<Explore>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let tz = tenant_catalog(&state, tenant).await?.time_zone;
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
    let body = html! {
        form method="get" class="panel" {
            label { "From" input type="date" name="from" value=(from); }
            label { "To (inclusive)" input type="date" name="to" value=(to); }
            label { "Group by"
                select name="group" {
                    @for g in ["day", "branch", "product"] {
                        option value=(g) selected[g == group] { (g) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        (notice(&problem))
        @if let Some((a, (query, page))) = &shown {
            @let rows = labelled(query, page);
            p {
                a href={ "/app/tenants/" (tenant) "/sales.csv?from=" (a.from) "&to=" (a.to) "&group=" (a.group) }
                    download { "Download CSV" }
                span class="muted" { " · days in " (tz.name()) }
            }
            (bars("sales-chart", &format!("Revenue by {} from {} to {}", a.group, a.from, a.to), "",
                &rows.iter().map(|(label, row)| Bar { label: label.clone(), value: row.total.amount() }).collect::<Vec<_>>()))
            table id="sales-table" {
                thead { tr { th { (a.group) } th class="num" { "Revenue" } th class="num" { "Items" } th class="num" { "Sales" } } }
                tbody {
                    @for (label, row) in &rows {
                        tr { td { (label) } td class="num" { (row.total) } td class="num" { (row.quantity) } td class="num" { (row.count) } }
                    }
                    @if rows.is_empty() { tr { td colspan="4" class="muted" { "No sales in this range." } } }
                }
            }
            @if page.next.is_some() {
                p class="muted" { "Only the first " (page.rows.len()) " rows are shown; the CSV of a narrower range has the rest." }
            }
        }
    };
    let res = html(frame("Sales", &viewer, Some(tenant), Section::Sales, body));
    Ok(match problem {
        Some(_) => super::with_status(res, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY),
        None => res,
    })
}

/// Each row with the label of its group.
fn labelled<'a>(
    query: &ReportQuery,
    page: &'a ReportPage,
) -> Vec<(String, &'a crate::domain::ReportRow)> {
    page.rows
        .iter()
        .map(|row| {
            let label = row
                .key
                .day(query.group_by)
                .or_else(|| row.branch_name.clone())
                .or_else(|| row.product_name.clone())
                .unwrap_or_default();
            (label, row)
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
