//! Reads: a tenant's sales per product (straight from the tenant's live
//! totals, no mailbox round trip, no SQL) and the global top sellers.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{
    Currency, Money, ProductId, ProductTotal, RankBy, TenantId, Timestamp, MAX_TOP,
};
use crate::service::sales::{live_totals, top_sellers, Encoding};

const DEFAULT_LIMIT: usize = 10;

#[derive(Serialize)]
struct ProductSales<'a> {
    #[serde(rename = "productID")]
    product_id: ProductId,
    #[serde(rename = "productName")]
    product_name: &'a str,
    #[serde(rename = "quantitySold")]
    quantity_sold: u64,
    #[serde(rename = "totalSales")]
    total_sales: Money,
    #[serde(rename = "quantityRefunded")]
    quantity_refunded: u64,
    refunds: Money,
    #[serde(rename = "netQuantity")]
    net_quantity: u64,
    #[serde(rename = "netSales")]
    net_sales: Money,
}

pub async fn tenant_sales(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let (totals, currency) = live_totals(state.services()?, tenant).await?;
    let mut res = HttpResponse::Ok();
    res.content_type("application/json")
        .insert_header((header::VARY, "Accept-Encoding"));
    // A tenant with many products answers ~100 bytes per product: worth
    // compressing once per change for clients that accept it.
    if accepts_gzip(&req) {
        let body = totals.rendered(Encoding::Gzip, |rows| {
            gzip(&render_sales(tenant, currency, rows))
        });
        return Ok(res
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(body));
    }
    Ok(res.body(totals.rendered(Encoding::Plain, |rows| render_sales(tenant, currency, rows))))
}

/// Whether `Accept-Encoding` lists gzip without `q=0`.
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(value) = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(',').any(|part| {
        let mut fields = part.split(';').map(str::trim);
        let name = fields.next().unwrap_or("");
        let refused = fields.any(|f| {
            f.replace(' ', "").starts_with("q=0") && !f.contains(|c: char| ('1'..='9').contains(&c))
        });
        name.eq_ignore_ascii_case("gzip") && !refused
    })
}

/// Writing into a `Vec` cannot fail, so neither can this.
fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    if encoder.write_all(body).is_err() {
        return Bytes::new();
    }
    encoder.finish().map(Bytes::from).unwrap_or_default()
}

#[derive(Serialize)]
struct TenantSales<'a> {
    #[serde(rename = "tenantID")]
    tenant_id: TenantId,
    currency: Currency,
    sales_per_product: Vec<ProductSales<'a>>,
}

fn render_sales(tenant: TenantId, currency: Currency, mut rows: Vec<ProductTotal>) -> Bytes {
    rows.sort_unstable_by(|a, b| {
        b.revenue
            .cmp(&a.revenue)
            .then(a.product_id.cmp(&b.product_id))
    });
    let body = TenantSales {
        tenant_id: tenant,
        currency,
        sales_per_product: rows
            .iter()
            .map(|t| ProductSales {
                product_id: t.product_id,
                product_name: &t.name,
                quantity_sold: t.quantity,
                total_sales: t.revenue,
                quantity_refunded: t.refunded,
                refunds: t.refunds,
                net_quantity: t.net_quantity(),
                net_sales: t.net_revenue(),
            })
            .collect(),
    };
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .unwrap_or_default()
}

/// A product in the top sellers, as the API and the live table show it.
#[derive(Serialize)]
pub(super) struct Ranked<'a> {
    rank: usize,
    #[serde(rename = "productID")]
    product_id: ProductId,
    #[serde(rename = "tenantID")]
    tenant_id: TenantId,
    #[serde(rename = "productName")]
    product_name: &'a str,
    #[serde(rename = "quantitySold")]
    quantity_sold: u64,
    #[serde(rename = "totalSales")]
    total_sales: Money,
    #[serde(rename = "quantityRefunded")]
    quantity_refunded: u64,
    refunds: Money,
    #[serde(rename = "netQuantity")]
    net_quantity: u64,
    #[serde(rename = "netSales")]
    net_sales: Money,
}

/// The top sellers with their ranks.
pub(super) fn ranked(top: &[ProductTotal]) -> Vec<Ranked<'_>> {
    top.iter()
        .enumerate()
        .map(|(i, t)| Ranked {
            rank: i + 1,
            product_id: t.product_id,
            tenant_id: t.tenant_id,
            product_name: &t.name,
            quantity_sold: t.quantity,
            total_sales: t.revenue,
            quantity_refunded: t.refunded,
            refunds: t.refunds,
            net_quantity: t.net_quantity(),
            net_sales: t.net_revenue(),
        })
        .collect()
}

pub async fn top_selling(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (limit, by) = top_selling_params(req.query_string())?;
    let as_of = Timestamp::from_utc(chrono::Utc::now());
    let top = top_sellers(state.services()?, limit, by).await?;
    Ok(HttpResponse::Ok().json(TopSellingBody {
        top_selling_products: ranked(&top),
        as_of,
    }))
}

#[derive(Serialize)]
struct TopSellingBody<'a> {
    top_selling_products: Vec<Ranked<'a>>,
    #[serde(rename = "asOf")]
    as_of: Timestamp,
}

fn top_selling_params(query: &str) -> Result<(usize, RankBy), ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
    let mut limit = DEFAULT_LIMIT;
    let mut by = RankBy::Quantity;
    for (name, value) in pairs.iter() {
        match name.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| {
                        ApiError::validation("limit", "must be an integer between 1 and 100")
                    })?;
            }
            "by" => {
                by = match value.as_str() {
                    "quantity" => RankBy::Quantity,
                    "revenue" => RankBy::Revenue,
                    _ => return Err(ApiError::validation("by", "must be quantity or revenue")),
                }
            }
            _ => {}
        }
    }
    Ok((limit, by))
}
