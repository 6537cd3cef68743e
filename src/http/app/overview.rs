//! A tenant's overview: today per branch, the last 30 days as a chart, the
//! ten best products this week; days in the tenant's zone, money in its
//! currency, sums exact (the reports' own queries over the history).
//! Today's figures follow the sales: the page's script asks for them again
//! (`today.json`) every few seconds; without scripts the page reloads itself.

use actix_web::{web, HttpResponse};
use chrono::{Datelike, Days, NaiveDate};
use maud::{html, Markup};
use rust_decimal::Decimal;
use serde_json::json;

use super::chart::{columns, Bar};
use super::layout::{refreshing_page, Section, Shop, LIVE_SCRIPT};
use super::Rows::All;
use super::{html, report, tenant_catalog, today, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{day_start, Money, ReportPage, TenantId};
use crate::http::{ApiError, AppState};
use crate::service::reports::ReportKind::Overview;

/// Days the chart shows, today included.
const CHART_DAYS: u64 = 30;
/// Without scripts, the overview reloads itself this often.
const REFRESH_SECONDS: u32 = 15;
/// With them, today's figures are asked for again this often.
const POLL_SECONDS: u32 = 5;
/// Products in the week's list.
const BEST: usize = 10;

/// Today's sums, and today by branch.
struct Today {
    revenue: Decimal,
    refunds: Decimal,
    quantity: u64,
    count: u64,
    by_branch: ReportPage,
}

async fn today_of(
    state: &AppState,
    tenant: TenantId,
    tz: chrono_tz::Tz,
    day: NaiveDate,
) -> Result<Today, ApiError> {
    let range = (day_start(tz, day), day_start(tz, day + Days::new(1)));
    let (_, by_branch) = report(state, Overview, tenant, range, tz, "branch", All).await?;
    let rows = &by_branch.rows;
    Ok(Today {
        revenue: rows.iter().map(|r| r.total.amount()).sum(),
        refunds: rows.iter().map(|r| r.refunds.amount()).sum(),
        quantity: rows.iter().map(|r| r.quantity).sum(),
        count: rows.iter().map(|r| r.count).sum(),
        by_branch,
    })
}

impl Today {
    /// The cards' figures by name, as shown.
    fn figures(&self, shop: Shop) -> [(&'static str, &'static str, String); 5] {
        let m = |d: Decimal| shop.money(Money::new(d));
        [
            ("revenue", "Revenue", m(self.revenue)),
            ("refunds", "Refunds", m(self.refunds)),
            ("net", "Net", m(self.revenue - self.refunds)),
            ("quantity", "Items sold", self.quantity.to_string()),
            ("sales", "Sales", self.count.to_string()),
        ]
    }

    /// Today by branch, best first, as the table's cells.
    fn branch_rows(&self, shop: Shop) -> Vec<[String; 6]> {
        let mut rows: Vec<_> = self.by_branch.rows.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.total));
        rows.into_iter()
            .map(|r| {
                [
                    r.branch_name.as_deref().unwrap_or("").to_string(),
                    shop.money(r.total),
                    shop.money(r.refunds),
                    shop.money(r.net()),
                    r.quantity.to_string(),
                    r.count.to_string(),
                ]
            })
            .collect()
    }
}

/// `GET /app/tenants/{t}/`.
pub async fn page(state: web::Data<AppState>, viewer: Viewer, ids: PathIds) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let tz = catalog.time_zone;
    let day = today(tz);
    let tomorrow = day_start(tz, day + Days::new(1));
    let month_start = day_start(tz, day - Days::new(CHART_DAYS - 1));
    let week_start = day_start(
        tz,
        day - Days::new(u64::from(day.weekday().num_days_from_monday())),
    );
    let now = today_of(&state, tenant, tz, day).await?;
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
            let key = d.format("%Y-%m-%d").to_string();
            let value = by_day
                .rows
                .iter()
                .find(|r| r.key.day(days_query.group_by).as_deref() == Some(key.as_str()))
                .map_or(Decimal::ZERO, |r| r.total.amount());
            Bar {
                label: d.format("%-d %b").to_string(),
                value,
            }
        })
        .collect();
    let money = |d: Decimal| shop.money(Money::new(d));
    let body = html! {
        p class="muted" { "Today is " (day.format("%A %-d %B %Y")) " in " (tz.name()) "." }
        section aria-labelledby="today" data-poll-url={ "/app/tenants/" (tenant) "/today.json?" (super::AUTOMATIC) } data-poll-seconds=(POLL_SECONDS) {
            h2 id="today" { "Today" }
            div class="cards" {
                @for (name, label, figure) in now.figures(shop) {
                    div class="card" { div { (label) } div class="figure" data-figure=(name) { (figure) } }
                }
            }
            table id="today-by-branch" {
                caption class="muted" { "Today by branch, best first" }
                thead { tr { th { "Branch" } th class="num" { "Revenue" } th class="num" { "Refunds" } th class="num" { "Net" } th class="num" { "Items" } th class="num" { "Sales" } } }
                tbody { (branch_rows(&now.branch_rows(shop))) }
            }
            p class="muted" { "Updated " span id="today-as-of" { "when the page was made" } "." }
        }
        section aria-labelledby="month" {
            h2 id="month" { "Revenue, last 30 days" }
            (columns("last-30-days", "Revenue per day, last 30 days", &daily, &money))
        }
        section aria-labelledby="week" {
            h2 id="week" { "Best products this week" }
            table id="best-this-week" {
                thead { tr { th { "Product" } th class="num" { "Revenue" } th class="num" { "Items" } } }
                tbody {
                    @for row in &week.rows {
                        tr {
                            td { (row.product_name.as_deref().unwrap_or("")) }
                            td class="num" { (shop.money(row.total)) }
                            td class="num" { (row.quantity) }
                        }
                    }
                    @if week.rows.is_empty() {
                        tr { td colspan="3" class="muted" { "No sales yet this week." } }
                    }
                }
            }
        }
        script src=(LIVE_SCRIPT) defer {}
    };
    Ok(html(refreshing_page(
        "Overview",
        &viewer,
        Some(shop),
        Section::Overview,
        (REFRESH_SECONDS, &format!("/app/tenants/{tenant}/")),
        body,
    )))
}

fn branch_rows(rows: &[[String; 6]]) -> Markup {
    html! {
        @for row in rows {
            tr {
                @for (i, cell) in row.iter().enumerate() {
                    td class=[(i > 0).then_some("num")] { (cell) }
                }
            }
        }
        @if rows.is_empty() {
            tr { td colspan="6" class="muted" { "No sales yet today." } }
        }
    }
}

/// `GET /app/tenants/{t}/today.json`: today's figures as the overview
/// shows them, for its script.
pub async fn today_json(
    state: web::Data<AppState>,
    ids: PathIds,
) -> Result<HttpResponse, super::PageError> {
    let tenant = ids.tenant_or_404()?;
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let tz = catalog.time_zone;
    let now = today_of(&state, tenant, tz, today(tz)).await?;
    let figures: serde_json::Map<String, serde_json::Value> = now
        .figures(shop)
        .into_iter()
        .map(|(name, _, figure)| (name.to_string(), json!(figure)))
        .collect();
    let as_of = chrono::Utc::now()
        .with_timezone(&tz)
        .format("%H:%M:%S")
        .to_string();
    Ok(HttpResponse::Ok().json(json!({
        "figures": figures,
        "branches": now.branch_rows(shop),
        "asOf": as_of,
    })))
}
