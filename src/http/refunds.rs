//! `POST …/branches/{branchID}/refunds` (refunds and voids, answered once
//! committed) and `GET …/sales-transactions/{saleID}` (a sale with what
//! was refunded of it).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::parse::{parse_refunds, sales_listing};
use super::sales::SaleBody;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{Currency, ListingCursor, Scope, StoredRefund};
use crate::service::refunds;

/// A stored refund as answered, with the tenant's currency.
#[derive(Serialize)]
pub(super) struct RefundBody<'a> {
    #[serde(flatten)]
    pub(super) refund: &'a StoredRefund,
    pub(super) currency: Currency,
}

#[derive(Serialize)]
struct Refunds<'a> {
    refunds: Vec<RefundBody<'a>>,
}

pub async fn post_refunds(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let tenant = ids.tenant_or_404()?;
    let branch = ids.branch_or_404()?;
    let body = json_body(&req, payload).await?;
    let (items, is_array) = parse_refunds(&body)?;
    let outcome = refunds::post_refunds(services, tenant, branch, items)
        .await
        .map_err(|e| ApiError::from_service(e, is_array))?;
    let mut res = if outcome.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let currency = outcome.currency;
    let body = |refund| RefundBody { refund, currency };
    Ok(if is_array {
        res.json(Refunds {
            refunds: outcome.refunds.iter().map(body).collect(),
        })
    } else {
        res.json(body(&outcome.refunds[0]))
    })
}

/// A sale with what is refunded of it and its refunds.
#[derive(Serialize)]
struct SaleWithRefunds<'a> {
    #[serde(flatten)]
    sale: SaleBody<'a>,
    #[serde(rename = "quantityRefunded")]
    quantity_refunded: u32,
    refunds: Vec<RefundBody<'a>>,
}

/// A listed sale: the sale and what is refunded of it.
#[derive(Serialize)]
struct ListedSale<'a> {
    #[serde(flatten)]
    sale: SaleBody<'a>,
    #[serde(rename = "quantityRefunded")]
    quantity_refunded: u32,
}

#[derive(Serialize)]
struct ListedSales<'a> {
    sales: Vec<ListedSale<'a>>,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET …/sales-transactions?branchID&from&to&limit&cursor`, newest first.
pub async fn list_sales(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let tenant = ids.tenant_or_404()?;
    let pairs = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
    let listing = sales_listing(&pairs)?;
    let (sales, more, currency) = refunds::list_sales(services, caller, tenant, listing).await?;
    let next_cursor = more
        .then(|| sales.last())
        .flatten()
        .map(|s| ListingCursor {
            at: s.sale.sale.timestamp,
            id: s.sale.id,
        })
        .map(|c| c.text());
    Ok(HttpResponse::Ok().json(ListedSales {
        sales: sales
            .iter()
            .map(|s| ListedSale {
                sale: SaleBody::new(&s.sale, currency),
                quantity_refunded: s.refunded,
            })
            .collect(),
        next_cursor,
    }))
}

pub async fn get_sale(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let tenant = ids.tenant_or_404()?;
    let sale = ids
        .sale
        .ok_or_else(|| ApiError::NotFound("no such sale for this tenant".into()))?;
    let found = refunds::find_sale(services, caller, tenant, sale).await?;
    let currency = found.currency;
    Ok(HttpResponse::Ok().json(SaleWithRefunds {
        sale: SaleBody::new(&found.sale.sale, currency),
        quantity_refunded: found.sale.refunded,
        refunds: found
            .refunds
            .iter()
            .map(|refund| RefundBody { refund, currency })
            .collect(),
    }))
}
