//! The products list, and adding, renaming and (de)activating a product.

use actix_web::web;
use maud::{html, Markup};

use super::{
    after_form, changed_name, list, next_link, one_page, row_changes, search_form, search_text,
    ListPage, ListQuery, NewRow, RowChange, Switch,
};
use crate::auth::PathIds;
use crate::domain::{Catalog, Code, Name, NewProduct, ProductPatch, TenantId};
use crate::http::app::layout::{notice, page as frame, Section};
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
    let q = search_text(query);
    let (rows, more) = one_page(
        catalog.products.iter(),
        query,
        |id| id.get(),
        |p| (&p.name, &p.sku),
    );
    let base = format!("/app/tenants/{tenant}/products");
    let body = html! {
        (notice(outcome))
        form method="post" action=(base) class="panel" {
            label { "SKU" input name="sku" required maxlength="64"; }
            label { "Name" input name="name" required maxlength="200"; }
            button type="submit" { "Add product" }
        }
        form method="post" action={ (base) "/import" } enctype="multipart/form-data" class="panel" {
            label { "Import a CSV file (sku,name per line; all or nothing)"
                input type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { "Import" }
        }
        (search_form(&base, &q))
        table id="products" {
            thead { tr { th { "ID" } th { "SKU" } th { "Name" } th { "State" } th { "Change" } } }
            tbody {
                @for (id, p) in &rows {
                    tr data-sku=(p.sku.as_str()) {
                        td class="num" { (id) }
                        td { (p.sku.as_str()) }
                        td { (p.name.as_str()) }
                        td { @if p.active { "active" } @else { "inactive" } }
                        td { (row_changes(&format!("{base}/{id}"), &p.name, &p.sku, Switch {
                            field: "active", on: p.active, turn_off: "Deactivate", turn_on: "Activate",
                        })) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" class="muted" { "No products." } } }
            }
        }
        (next_link(&base, &q, more, rows.last().map(|(id, _)| id.get())))
    };
    frame("Products", viewer, Some(tenant), Section::Products, body)
}

/// `POST /app/tenants/{t}/products`.
pub async fn add_product(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<NewRow>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let made = match new_product(&form.sku, &form.name) {
        Ok(product) => ask_products(&state, &viewer, tenant, vec![product], false).await,
        Err(problem) => Err(ApiError::validation(problem.0, problem.1)),
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
    let result = match changed_name(&form) {
        Ok(name) => {
            let patch = ProductPatch {
                name,
                active: form.active,
                price: None,
            };
            catalog::change_product(state.services()?, viewer.scope, tenant, product, patch)
                .await
                .map(|_| "changed")
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    after_form(&state, viewer, tenant, result, PRODUCTS).await
}
