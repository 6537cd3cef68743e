//! The products list, and adding, renaming and (de)activating a product.

use actix_web::web;
use maud::{html, Markup};

use super::{
    after_form, changed_name, confirm_off, list, next_link, one_page, row_changes, search_form,
    search_text, ListPage, ListQuery, NewRow, RowChange, Switch,
};
use crate::auth::PathIds;
use crate::domain::{Catalog, Code, Money, Name, NewProduct, ProductPatch, TenantId};
use crate::http::app::layout::{notice, page as frame, Section, Shop};
use crate::http::app::{PageResult, Viewer};
use crate::http::{ApiError, AppState};
use crate::service::catalog;

/// `GET /app/tenants/{t}/products`.
pub async fn products(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<ListQuery>,
) -> PageResult {
    list(&state, &viewer, ids, &query, products_page).await
}

fn products_page(
    viewer: &Viewer,
    tenant: TenantId,
    catalog: &Catalog,
    query: &ListQuery,
    outcome: &Option<Result<String, String>>,
) -> Markup {
    let shop = Shop::new(tenant, catalog);
    let q = search_text(query);
    let (rows, more) = one_page(
        catalog.products.iter(),
        query,
        |id| id.get(),
        |p| (&p.name, &p.sku),
    );
    let base = format!("/app/tenants/{tenant}/products");
    let currency = catalog.currency.code();
    let body = html! {
        (notice(outcome))
        form method="post" action=(base) class="panel" {
            label { "SKU" input name="sku" required maxlength="64"; }
            label { "Name" input name="name" required maxlength="200"; }
            label { "List price (" (currency) ", optional)" input name="price" inputmode="decimal" maxlength="12" placeholder="3.20"; }
            button type="submit" { "Add product" }
        }
        form method="post" action={ (base) "/import" } enctype="multipart/form-data" class="panel" {
            label { "Import a CSV file (sku,name per line; all or nothing)"
                input type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { "Import" }
        }
        (search_form(&base, &q))
        table id="products" {
            thead { tr { th { "Product" } th { "SKU" } th class="num" { "List price" } th { "State" } th { "Change" } } }
            tbody {
                @for (id, p) in &rows {
                    tr data-sku=(p.sku.as_str()) {
                        td { (p.name.as_str()) }
                        td { code { (p.sku.as_str()) } }
                        td class="num" { @match p.price { Some(price) => (shop.money(price)), None => span class="muted" { "none" } } }
                        td { @if p.active { span class="state on" { "Active" } } @else { span class="state off" { "Inactive" } } }
                        td {
                            (row_changes(&format!("{base}/{id}"), &p.name, &p.sku, Switch {
                                field: "active", on: p.active, turn_off: "Deactivate", turn_on: "Activate",
                            }))
                            form method="post" action={ (base) "/" (id) } class="inline" {
                                input name="price" value=[p.price.map(|m| m.to_string())] inputmode="decimal" maxlength="12"
                                    aria-label={ "List price of " (p.sku.as_str()) } placeholder="none" size="8";
                                button type="submit" class="quiet" { "Set price" }
                            }
                        }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" class="muted" { "No products." } } }
            }
        }
        (next_link(&base, &q, more, rows.last().map(|(id, _)| id.get())))
    };
    frame("Products", viewer, Some(shop), Section::Products, body)
}

/// `POST /app/tenants/{t}/products`.
pub async fn add_product(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<NewRow>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let made = match (
        new_product(&form.sku, &form.name),
        list_price(form.price.as_deref()),
    ) {
        (Ok(mut product), Ok(price)) => {
            product.price = price;
            ask_products(&state, &viewer, tenant, vec![product], false).await
        }
        (Err(problem), _) => Err(ApiError::validation(problem.0, problem.1)),
        (_, Err(e)) => Err(e),
    };
    after_form(&state, viewer, tenant, made.map(|_| "added"), PRODUCTS).await
}

pub(super) fn new_product(
    sku: &str,
    name: &str,
) -> Result<NewProduct, (&'static str, &'static str)> {
    let sku = Code::parse(sku.trim()).ok_or(("sku", Code::RULE))?;
    let name = Name::parse(name).ok_or(("name", Name::RULE))?;
    Ok(NewProduct {
        sku,
        name,
        price: None,
    })
}

/// Makes `products` through the tenant's actor; `listed`: problems are
/// named by position (`[3].sku`), as for an import.
pub(super) async fn ask_products(
    state: &AppState,
    viewer: &Viewer,
    tenant: TenantId,
    products: Vec<NewProduct>,
    listed: bool,
) -> Result<(), ApiError> {
    catalog::add_products(state.services()?, viewer.scope, tenant, products)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::from_service(e, listed))
}

pub(super) const PRODUCTS: (&str, ListPage) = ("products", products_page);

/// `POST /app/tenants/{t}/products/{p}`.
pub async fn change_product(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<RowChange>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let product = ids.product_or_404()?;
    if form.unconfirmed_off() {
        let action = format!("/app/tenants/{tenant}/products/{product}");
        return confirm_off(&state, &viewer, (tenant, Section::Products), (&action, "active"), |c| {
            html! {
                "Deactivate “" (c.product_name(product)) "”? Tills can no longer sell it; its sales and totals stay, and you can activate it again."
            }
        })
        .await;
    }
    // An empty price field takes the list price away.
    let price = form
        .price
        .as_deref()
        .map(|p| list_price(Some(p)))
        .transpose();
    let result = match (changed_name(&form), price) {
        (Ok(name), Ok(price)) => {
            let patch = ProductPatch {
                name,
                active: form.active,
                price,
            };
            catalog::change_product(state.services()?, viewer.scope, tenant, product, patch)
                .await
                .map(|_| "changed")
                .map_err(ApiError::from)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    after_form(&state, viewer, tenant, result, PRODUCTS).await
}

/// A list price as a form gives it: blank for none.
fn list_price(text: Option<&str>) -> Result<Option<Money>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => Money::parse_price(t)
            .map(Some)
            .map_err(|problem| ApiError::validation("price", problem)),
    }
}
