//! Returns: find a sale (by its number, or among the latest) and take it
//! back, in part (a refund, at any branch) or whole (a void, at its own
//! branch soon after). The API's operations do the work, so the rules
//! (never more than was sold, a void's branch and window) are the same;
//! each form carries its own idempotency key, so a form sent twice
//! (a double click, a reload) takes the sale back once.

use actix_web::web;
use maud::{html, Markup};
use serde::Deserialize;

use super::catalog::refusal;
use super::layout::{notice, page as frame, Section, Shop};
use super::{html, see_other, tenant_catalog, with_status, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{
    BranchId, Catalog, IdempotencyKey, ListingCursor, Name, Quantity, RefundItem, RefundKind,
    RefundableSale, SaleId, SalesListing,
};
use crate::http::{ApiError, AppState};
use crate::service::refunds::{self, SaleView};
use crate::service::ServiceError;

/// Sales the page lists.
const LISTED: usize = 50;

#[derive(Deserialize, Default)]
pub struct ReturnsQuery {
    sale: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// `GET /app/tenants/{t}/returns`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<ReturnsQuery>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let outcome = query
        .done
        .as_deref()
        .map(|d| Ok(format!("Taken back: {d}.")));
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let body = returns_body(&state, &viewer, shop, &query, &outcome).await?;
    Ok(html(frame(
        "Returns",
        &viewer,
        Some(shop),
        Section::Returns,
        body,
    )))
}

async fn returns_body(
    state: &AppState,
    viewer: &Viewer,
    shop: Shop<'_>,
    query: &ReturnsQuery,
    outcome: &Option<Result<String, String>>,
) -> Result<Markup, ApiError> {
    let services = state.services()?;
    let tenant = shop.id;
    let wanted = query
        .sale
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let found = match wanted.map(|s| SaleId::parse(s.trim_start_matches('#'))) {
        None => None,
        Some(None) => Some(Err("A sale number is digits, like 10234.".to_string())),
        Some(Some(id)) => match refunds::find_sale(services, viewer.scope, tenant, id).await {
            Ok(view) => Some(Ok(view)),
            Err(ServiceError::NoSuchSale) => Some(Err(format!("This shop has no sale {id}."))),
            Err(e) => return Err(e.into()),
        },
    };
    let listing = SalesListing {
        branch: None,
        from: None,
        to: None,
        limit: LISTED,
        after: query.after.as_deref().and_then(ListingCursor::parse),
    };
    let (latest, more, _) = refunds::list_sales(services, viewer.scope, tenant, listing).await?;
    let base = format!("/app/tenants/{tenant}/returns");
    Ok(html! {
        (notice(outcome))
        form method="get" action=(base) class="panel" role="search" {
            label { "Sale number" input name="sale" inputmode="numeric" value=[wanted] placeholder="10234"; }
            button type="submit" { "Find sale" }
        }
        @match &found {
            Some(Ok(view)) => (sale_card(&base, shop, view)),
            Some(Err(problem)) => p class="notice problem" role="alert" { (problem) },
            None => {},
        }
        h2 { "Latest sales" }
        table id="latest-sales" {
            thead { tr {
                th { "Sale" } th { "When" } th { "Branch" } th { "Product" }
                th class="num" { "Quantity" } th class="num" { "Price" } th class="num" { "Returned" } th {}
            } }
            tbody {
                @for s in &latest { (sale_row(&base, shop, s)) }
                @if latest.is_empty() { tr { td colspan="8" class="muted" { "No sales yet." } } }
            }
        }
        @if let (true, Some(last)) = (more, latest.last()) {
            @let cursor = ListingCursor { at: last.sale.sale.timestamp, id: last.sale.id };
            p { a rel="next" href={ (base) "?after=" (cursor.text()) } { "Older sales" } }
        }
    })
}

fn sale_row(base: &str, shop: Shop, s: &RefundableSale) -> Markup {
    let sale = &s.sale.sale;
    let catalog = shop.catalog;
    html! {
        tr data-sale=(s.sale.id) {
            td { (s.sale.id) }
            td { (shop.time(sale.timestamp)) }
            td { (branch_name(catalog, sale.branch_id)) }
            td { (catalog.product_name(sale.product_id)) }
            td class="num" { (sale.quantity.get()) }
            td class="num" { (shop.money(sale.price)) }
            td class="num" { (s.refunded) }
            td { @if s.left() > 0 { a href={ (base) "?sale=" (s.sale.id) } { "Take back" } } }
        }
    }
}

fn branch_name(catalog: &Catalog, branch: BranchId) -> String {
    catalog.branches.get(&branch).map_or_else(
        || format!("branch {branch}"),
        |b| b.name.as_str().to_string(),
    )
}

/// A found sale: what it was, what came back, and the form to take back more.
fn sale_card(base: &str, shop: Shop, view: &SaleView) -> Markup {
    let s = &view.sale;
    let sale = &s.sale.sale;
    let catalog = shop.catalog;
    let key = format!("app-{:x}", crate::ids::random_u63());
    html! {
        section class="card" aria-labelledby="found-sale" id="found-sale-card" {
            h2 id="found-sale" { "Sale " (s.sale.id) }
            p {
                (sale.quantity.get()) " × " (catalog.product_name(sale.product_id)) " at " (shop.money(sale.price))
                " · " (branch_name(catalog, sale.branch_id)) " · " (shop.time(sale.timestamp))
            }
            p { (s.refunded) " of " (sale.quantity.get()) " taken back, " (s.left()) " left." }
            @if !view.refunds.is_empty() {
                ul class="refunds" {
                    @for r in &view.refunds {
                        li { (r.refund.kind.as_str()) " of " (r.refund.quantity.get()) ": " (shop.money(r.refund.amount))
                             " at " (branch_name(catalog, r.refund.branch_id)) ", " (shop.time(r.refund.created_at))
                             @if let Some(reason) = &r.refund.reason { " (" (reason.as_str()) ")" } }
                    }
                }
            }
            @if s.left() > 0 {
                form method="post" action=(base) class="panel" {
                    input type="hidden" name="sale" value=(s.sale.id);
                    input type="hidden" name="key" value=(key);
                    label { "Quantity" input name="quantity" type="number" min="1" max=(s.left()) value="1"; }
                    label { "Taken back at"
                        select name="branch" {
                            @for (id, b) in sorted_branches(catalog) {
                                option value=(id) selected[id == sale.branch_id] { (b) }
                            }
                        }
                    }
                    label { "Reason" input name="reason" maxlength="200" placeholder="damaged"; }
                    fieldset {
                        legend { "What" }
                        label { input type="radio" name="kind" value="refund" checked; "Refund this quantity" }
                        label { input type="radio" name="kind" value="void"; "Void: all that is left (at its own branch, soon after the sale)" }
                    }
                    button type="submit" { "Take back" }
                }
            }
        }
    }
}

fn sorted_branches(catalog: &Catalog) -> Vec<(BranchId, String)> {
    let mut branches: Vec<(BranchId, String)> = catalog
        .branches
        .iter()
        .filter(|(_, b)| b.open)
        .map(|(id, b)| (*id, b.name.as_str().to_string()))
        .collect();
    branches.sort();
    branches
}

#[derive(Deserialize)]
pub struct ReturnForm {
    sale: String,
    key: String,
    quantity: Option<String>,
    branch: String,
    reason: Option<String>,
    kind: Option<String>,
}

/// `POST /app/tenants/{t}/returns`.
pub async fn take_back(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<ReturnForm>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let sale = form.sale.clone();
    let result = match (read_form(&form), state.services()) {
        (Ok((branch, item)), Ok(services)) => {
            refunds::post_refunds(services, tenant, branch, vec![item])
                .await
                .map_err(ApiError::from)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match result {
        Ok(outcome) => {
            let r = outcome.refunds.first().map(|r| {
                format!(
                    "{} of sale {}, {}",
                    r.refund.quantity.get(),
                    r.refund.sale_id,
                    outcome.currency.format(r.refund.amount)
                )
            });
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("sale", &sale)
                .append_pair("done", &r.unwrap_or_default())
                .finish();
            Ok(see_other(&format!("/app/tenants/{tenant}/returns?{query}")))
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let query = ReturnsQuery {
                sale: Some(sale),
                ..ReturnsQuery::default()
            };
            let catalog = tenant_catalog(&state, tenant).await?;
            let shop = Shop::new(tenant, &catalog);
            let body = returns_body(&state, &viewer, shop, &query, &Some(Err(message))).await?;
            let res = html(frame(
                "Returns",
                &viewer,
                Some(shop),
                Section::Returns,
                body,
            ));
            Ok(with_status(res, status))
        }
    }
}

/// The form as the API's refund item, and where it is taken.
fn read_form(form: &ReturnForm) -> Result<(BranchId, RefundItem), ApiError> {
    let invalid = |field, problem: &str| ApiError::validation(field, problem);
    let sale_id =
        SaleId::parse(form.sale.trim()).ok_or_else(|| invalid("sale", "is not a sale number"))?;
    let branch =
        BranchId::parse(form.branch.trim()).ok_or_else(|| invalid("branch", "is not a branch"))?;
    let kind = RefundKind::parse(form.kind.as_deref().unwrap_or("refund"))
        .ok_or_else(|| invalid("kind", "must be refund or void"))?;
    let quantity = match (kind, form.quantity.as_deref().map(str::trim)) {
        (RefundKind::Void, _) | (_, None | Some("")) => None,
        (RefundKind::Refund, Some(q)) => Some(
            q.parse::<i64>()
                .ok()
                .and_then(Quantity::new)
                .ok_or_else(|| invalid("quantity", "must be a whole number from 1"))?,
        ),
    };
    let reason = match form.reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(Name::parse(r).ok_or_else(|| invalid("reason", Name::RULE))?),
    };
    let idempotency_key = IdempotencyKey::parse(&form.key);
    Ok((
        branch,
        RefundItem {
            sale_id,
            quantity,
            kind,
            reason,
            idempotency_key,
        },
    ))
}
