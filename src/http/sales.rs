//! `POST /v1/tenants/{tenantID}/branches/{branchID}/sales-transactions`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::parse::parse_sales;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::StoredSale;
use crate::service::sales;

/// The answer to an array body.
#[derive(Serialize)]
struct Transactions<'a> {
    transactions: &'a [StoredSale],
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
    Ok(if parsed.is_array {
        res.json(Transactions {
            transactions: &outcome.sales,
        })
    } else {
        res.json(&outcome.sales[0])
    })
}
