//! `POST …/branches/{branchID}/refunds` (refunds and voids, answered once
//! committed) and `GET …/sales-transactions/{saleID}` (a sale with what
//! was refunded of it).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::parse::parse_refunds;
use super::sales::SaleBody;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{Currency, Scope, StoredRefund};
use crate::service::refunds;

/// A stored refund as answered, with the tenant's currency.
#[derive(Serialize)]
struct RefundBody<'a> {
    #[serde(flatten)]
    refund: &'a StoredRefund,
    currency: Currency,
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
