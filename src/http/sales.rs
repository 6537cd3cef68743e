//! `POST …/sales-transactions`, and the stored sales as answers: the
//! answer to a POST, and a sale found by id with what was refunded of it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::parse::parse_sales;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{
    BranchId, Currency, IdempotencyKey, Money, ProductId, Quantity, SaleId, StoredSale, TenantId,
    Timestamp,
};
use crate::service::sales;

/// A stored sale as answered: its fields and the tenant's currency,
/// written out (no flattening: this is every sale's answer).
#[derive(Serialize)]
pub(super) struct SaleBody<'a> {
    id: SaleId,
    #[serde(rename = "tenantID")]
    tenant_id: TenantId,
    #[serde(rename = "branchID")]
    branch_id: BranchId,
    #[serde(rename = "productID")]
    product_id: ProductId,
    #[serde(rename = "quantitySold")]
    quantity: Quantity,
    #[serde(rename = "pricePerUnit")]
    price: Money,
    timestamp: Timestamp,
    #[serde(rename = "idempotencyKey", skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a IdempotencyKey>,
    currency: Currency,
}

impl<'a> SaleBody<'a> {
    pub(super) fn new(stored: &'a StoredSale, currency: Currency) -> Self {
        let s = &stored.sale;
        SaleBody {
            id: stored.id,
            tenant_id: s.tenant_id,
            branch_id: s.branch_id,
            product_id: s.product_id,
            quantity: s.quantity,
            price: s.price,
            timestamp: s.timestamp,
            idempotency_key: s.idempotency_key.as_ref(),
            currency,
        }
    }
}

/// The answer to an array body.
#[derive(Serialize)]
struct Transactions<'a> {
    transactions: Vec<SaleBody<'a>>,
}

pub async fn post_sales(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let (Some(tenant), Some(branch)) = (ids.tenant, ids.branch) else {
        return Err(ApiError::NotFound(
            "tenant and branch ids must be positive integers".into(),
        ));
    };
    let body = json_body(&req, payload).await?;
    let parsed = parse_sales(&body, tenant, branch, chrono::Utc::now())?;
    let outcome = sales::post_sales(services, tenant, branch, parsed.items)
        .await
        .map_err(|e| ApiError::from_service(e, parsed.is_array))?;
    let mut res = if outcome.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let currency = outcome.currency;
    Ok(if parsed.is_array {
        res.json(Transactions {
            transactions: outcome
                .sales
                .iter()
                .map(|s| SaleBody::new(s, currency))
                .collect(),
        })
    } else {
        res.json(SaleBody::new(&outcome.sales[0], currency))
    })
}
