//! A tenant's catalog: tills download it (`GET .../catalog`, with an
//! `ETag`), back offices create and change branches and products. Changes
//! go through the tenant's actor, which applies them to the catalog its
//! sales are checked against before answering.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::body::json_body;
use super::pages::{Page, PageRequest};
use super::parse::{parse_branch_patch, parse_new_branch, parse_new_products, parse_product_patch};
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{
    Branch, BranchId, Catalog, Currency, Made, Money, Product, ProductId, RowFilter, Scope,
    TenantId,
};
use crate::service::catalog::{self, Rendered};

use crate::domain::{BranchView, ProductView};

/// `GET /v1/tenants/{tenantID}/catalog`: open branches and active
/// products, rendered once per change, `304` for a matching `If-None-Match`.
pub async fn read_catalog(
    state: web::Data<AppState>,
    ids: PathIds,
    scope: Scope,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let view = catalog::catalog_view(state.services()?, tenant).await?;
    if view.catalog.suspended && matches!(scope, Scope::Till { .. }) {
        return Err(ApiError::TenantSuspended);
    }
    // A big catalog takes a while to write and hash: not on an HTTP
    // worker, where every other request waits behind it.
    let rendered = view
        .rendered(|catalog| async move {
            web::block(move || render_catalog(tenant, &catalog))
                .await
                .map_err(|_| ApiError::Unavailable("the server is stopping".into()))
        })
        .await?;
    let cache = (header::CACHE_CONTROL, "private, no-cache");
    if none_match(&req, &rendered.etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, &*rendered.etag))
            .insert_header(cache)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, &*rendered.etag))
        .insert_header(cache)
        .body(rendered.body))
}

/// Whether `If-None-Match` lists `etag` (or is `*`).
fn none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

#[derive(Serialize)]
struct CatalogBody<'a> {
    #[serde(rename = "tenantID")]
    tenant_id: TenantId,
    /// What the list prices are in.
    currency: Currency,
    branches: Vec<ListedBranch<'a>>,
    products: Vec<ListedProduct<'a>>,
}

#[derive(Serialize)]
struct ListedBranch<'a> {
    id: BranchId,
    code: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct ListedProduct<'a> {
    id: ProductId,
    sku: &'a str,
    name: &'a str,
    price: Option<Money>,
}

fn render_catalog(tenant: TenantId, catalog: &Catalog) -> Rendered {
    let mut branches: Vec<ListedBranch> = catalog
        .branches
        .iter()
        .filter(|(_, b)| b.open)
        .map(|(id, b)| ListedBranch {
            id: *id,
            code: b.code.as_str(),
            name: b.name.as_str(),
        })
        .collect();
    branches.sort_unstable_by_key(|b| b.id);
    let mut products: Vec<ListedProduct> = catalog
        .products
        .iter()
        .filter(|(_, p)| p.active)
        .map(|(id, p)| ListedProduct {
            id: *id,
            sku: p.sku.as_str(),
            name: p.name.as_str(),
            price: p.price,
        })
        .collect();
    products.sort_unstable_by_key(|p| p.id);
    let body = serde_json::to_vec(&CatalogBody {
        tenant_id: tenant,
        currency: catalog.currency,
        branches,
        products,
    })
    .unwrap_or_default();
    // The body's own digest: the same catalog has the same tag on every
    // instance and after every restart.
    let digest = Sha256::digest(&body);
    let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
    Rendered {
        etag: etag.into(),
        body: body.into(),
    }
}

#[derive(Serialize)]
struct ProductsBody<'a> {
    products: Vec<ProductView<'a>>,
}

/// `POST /v1/tenants/{tenantID}/products`: one product or an array, all
/// or nothing; 201 if any was made, 200 if every one existed already.
pub async fn create_products(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let (products, is_array) = parse_new_products(&body)?;
    let made = catalog::add_products(services, caller, tenant, products)
        .await
        .map_err(|e| ApiError::from_service(e, is_array))?;
    let mut res = HttpResponse::build(made_status(made.iter().any(|m| m.created)));
    let shown: Vec<ProductView> = made
        .iter()
        .map(|m| ProductView::new(m.row.0, &m.row.1))
        .collect();
    Ok(if is_array {
        res.json(ProductsBody { products: shown })
    } else {
        res.json(&shown[0])
    })
}

fn made_status(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// `PATCH /v1/tenants/{tenantID}/products/{productID}`.
pub async fn change_product(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let product = ids.product_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let patch = parse_product_patch(&body)?;
    let changed = catalog::change_product(services, caller, tenant, product, patch).await?;
    Ok(HttpResponse::Ok().json(ProductView::new(product, &changed)))
}

/// `POST /v1/tenants/{tenantID}/branches`.
pub async fn create_branch(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let new = parse_new_branch(&body)?;
    let Made { row, created } = catalog::add_branch(services, caller, tenant, new).await?;
    Ok(HttpResponse::build(made_status(created)).json(BranchView::new(row.0, &row.1)))
}

/// `PATCH /v1/tenants/{tenantID}/branches/{branchID}`.
pub async fn change_branch(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let branch = ids.branch_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let patch = parse_branch_patch(&body)?;
    let changed = catalog::change_branch(services, caller, tenant, branch, patch).await?;
    Ok(HttpResponse::Ok().json(BranchView::new(branch, &changed)))
}

/// `GET /v1/tenants/{tenantID}/products?active&q&limit&cursor`: the whole
/// catalog's products, inactive ones too, by id.
pub async fn list_products(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let filter = row_filter(req.query_string(), "active")?;
    let view = catalog::catalog_view(state.services()?, tenant).await?;
    let found = filter.page(view.catalog.products.iter(), |id, p: &Product| {
        (id.get(), &p.name, &p.sku, p.active)
    });
    Ok(page_of(found, |rows| ProductsBody {
        products: rows.map(|(id, p)| ProductView::new(*id, p)).collect(),
    }))
}

/// A page of catalog rows as `body` lists them, with `nextCursor` (the
/// last id) only when more follow.
fn page_of<'a, K: Copy + std::fmt::Display + 'a, T: 'a, B: Serialize>(
    (rows, more): (Vec<(&'a K, &'a T)>, bool),
    body: impl FnOnce(&mut dyn Iterator<Item = (&'a K, &'a T)>) -> B,
) -> HttpResponse {
    let next_cursor = more
        .then(|| rows.last().map(|(id, _)| id.to_string()))
        .flatten();
    HttpResponse::Ok().json(Page {
        items: body(&mut rows.into_iter()),
        next_cursor,
    })
}

/// `GET /v1/tenants/{tenantID}/products/{productID}`, inactive too.
pub async fn read_product(
    state: web::Data<AppState>,
    ids: PathIds,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let product = ids.product_or_404()?;
    let view = catalog::catalog_view(state.services()?, tenant).await?;
    let found = view.catalog.products.get(&product);
    let found = found.ok_or_else(ApiError::unknown_product)?;
    Ok(HttpResponse::Ok().json(ProductView::new(product, found)))
}

#[derive(Serialize)]
struct BranchesBody<'a> {
    branches: Vec<BranchView<'a>>,
}

/// `GET /v1/tenants/{tenantID}/branches?open&q&limit&cursor`: every
/// branch, closed ones too, by id.
pub async fn list_branches(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let filter = row_filter(req.query_string(), "open")?;
    let view = catalog::catalog_view(state.services()?, tenant).await?;
    let found = filter.page(view.catalog.branches.iter(), |id, b: &Branch| {
        (id.get(), &b.name, &b.code, b.open)
    });
    Ok(page_of(found, |rows| BranchesBody {
        branches: rows.map(|(id, b)| BranchView::new(*id, b)).collect(),
    }))
}

/// Longest search text a list takes (a name's most).
const MAX_SEARCH_CHARS: usize = 200;

/// A list's `q`, its state parameter (`active` or `open`: `true` or
/// `false`), and its page.
fn row_filter(query: &str, state: &'static str) -> Result<RowFilter, ApiError> {
    let page = PageRequest::from_query(query)?;
    let after = page.cursor_as(|c| c.parse::<u64>().ok())?.unwrap_or(0);
    let mut filter = RowFilter {
        q: String::new(),
        state: None,
        after,
        limit: page.limit,
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "q" if value.chars().count() <= MAX_SEARCH_CHARS => filter.q = value.into_owned(),
            "q" => return Err(ApiError::validation("q", "must be at most 200 characters")),
            n if n == state => {
                let on = value.parse::<bool>();
                filter.state =
                    Some(on.map_err(|_| ApiError::validation(state, "must be true or false"))?);
            }
            _ => {}
        }
    }
    Ok(filter)
}
