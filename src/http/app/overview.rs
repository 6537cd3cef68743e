//! A tenant's overview: today per branch, the last 30 days as a chart, the
//! ten best products this week; days in the tenant's zone, sums exact
//! (the reports' own queries over the history).

use actix_web::web;
use chrono::{Datelike, Days};
use maud::html;
use rust_decimal::Decimal;

use super::chart::{bars, Bar};
use super::layout::{refreshing_page, Section};
use super::Rows::All;
use super::{html, report, tenant_catalog, today, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{day_start, Money};
use crate::http::AppState;
use crate::service::reports::ReportKind::Overview;

/// Days the chart shows, today included.
const CHART_DAYS: u64 = 30;
/// The overview reloads itself this often, so it follows the day's sales.
const REFRESH_SECONDS: u32 = 15;
/// Products in the week's list.
const BEST: usize = 10;

/// `GET /app/tenants/{t}/`.
pub async fn page(state: web::Data<AppState>, viewer: Viewer, ids: PathIds) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let catalog = tenant_catalog(&state, tenant).await?;
    let tz = catalog.time_zone;
    let day = today(tz);
    let tomorrow = day_start(tz, day + Days::new(1));
    let today_start = day_start(tz, day);
    let month_start = day_start(tz, day - Days::new(CHART_DAYS - 1));
    let week_start = day_start(
        tz,
        day - Days::new(u64::from(day.weekday().num_days_from_monday())),
    );
    let (_, by_branch) = report(
        &state,
        Overview,
        tenant,
        (today_start, tomorrow),
        tz,
        "branch",
        All,
    )
    .await?;
    let (days_query, by_day) = report(
        &state,
        Overview,
        tenant,
        (month_start, tomorrow),
        tz,
        "day",
        All,
    )
    .await?;
    let (_, mut week) = report(
        &state,
        Overview,
        tenant,
        (week_start, tomorrow),
        tz,
        "product",
        All,
    )
    .await?;
    week.rows
        .sort_by(|a, b| b.total.cmp(&a.total).then(b.quantity.cmp(&a.quantity)));
    week.rows.truncate(BEST);

    let daily: Vec<Bar> = (0..CHART_DAYS)
        .map(|back| day - Days::new(CHART_DAYS - 1 - back))
        .map(|d| {
            let label = d.format("%Y-%m-%d").to_string();
            let value = by_day
                .rows
                .iter()
                .find(|r| r.key.day(days_query.group_by).as_deref() == Some(label.as_str()))
                .map_or(Decimal::ZERO, |r| r.total.amount());
            Bar { label, value }
        })
        .collect();
    let (revenue, quantity, count) = by_branch
        .rows
        .iter()
        .fold((Decimal::ZERO, 0u64, 0u64), |(r, q, c), row| {
            (r + row.total.amount(), q + row.quantity, c + row.count)
        });
    let refunds: Decimal = by_branch.rows.iter().map(|r| r.refunds.amount()).sum();
    let body = html! {
        p class="muted" { "Days in " (tz.name()) ". Today is " (day.format("%A %-d %B %Y")) ". This page follows the day's sales (it reloads every " (REFRESH_SECONDS) " s)." }
        section aria-labelledby="today" {
            h2 id="today" { "Today" }
            div class="cards" {
                div class="card" { div { "Revenue" } div class="figure" data-figure="revenue" { (Money::new(revenue)) } }
                div class="card" { div { "Refunds" } div class="figure" data-figure="refunds" { (Money::new(refunds)) } }
                div class="card" { div { "Net" } div class="figure" data-figure="net" { (Money::new(revenue - refunds)) } }
                div class="card" { div { "Items sold" } div class="figure" data-figure="quantity" { (quantity) } }
                div class="card" { div { "Sales" } div class="figure" data-figure="sales" { (count) } }
            }
            table id="today-by-branch" {
                caption class="muted" { "Today by branch" }
                thead { tr { th { "Branch" } th class="num" { "Revenue" } th class="num" { "Refunds" } th class="num" { "Net" } th class="num" { "Items" } th class="num" { "Sales" } } }
                tbody {
                    @for row in &by_branch.rows {
                        tr {
                            td { (row.branch_name.as_deref().unwrap_or("")) }
                            td class="num" { (row.total) }
                            td class="num" { (row.refunds) }
                            td class="num" { (row.net()) }
                            td class="num" { (row.quantity) }
                            td class="num" { (row.count) }
                        }
                    }
                    @if by_branch.rows.is_empty() {
                        tr { td colspan="6" class="muted" { "No sales yet today." } }
                    }
                }
            }
        }
        section aria-labelledby="month" {
            h2 id="month" { "Revenue, last 30 days" }
            (bars("last-30-days", "Revenue per day, last 30 days", "", &daily))
        }
        section aria-labelledby="week" {
            h2 id="week" { "Best products this week" }
            table id="best-this-week" {
                thead { tr { th { "Product" } th class="num" { "Revenue" } th class="num" { "Items" } } }
                tbody {
                    @for row in &week.rows {
                        tr {
                            td { (row.product_name.as_deref().unwrap_or("")) }
                            td class="num" { (row.total) }
                            td class="num" { (row.quantity) }
                        }
                    }
                    @if week.rows.is_empty() {
                        tr { td colspan="3" class="muted" { "No sales yet this week." } }
                    }
                }
            }
        }
    };
    Ok(html(refreshing_page(
        "Overview",
        &viewer,
        Some(tenant),
        Section::Overview,
        (REFRESH_SECONDS, &format!("/app/tenants/{tenant}/")),
        body,
    )))
}
