//! `POST /v1/tenants/{tenantID}/branches/{branchID}/sales-transactions`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;

use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{clip, parse_sales, StoredSale};

/// The answer to an array body.
#[derive(Serialize)]
struct Transactions<'a> {
    transactions: &'a [StoredSale],
}

/// Largest accepted body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Buffer reserved before any byte arrived; it grows with what is received,
/// never with what a client announces.
const FIRST_BUFFER_BYTES: usize = 16 << 10;

pub async fn post_sales(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let core = state.core()?;
    let (Some(tenant), Some(branch)) = (ids.tenant, ids.branch) else {
        return Err(ApiError::NotFound(
            "tenant and branch ids must be positive integers".into(),
        ));
    };
    require_json(&req)?;
    let body = tokio::time::timeout(state.body_timeout, read_body(&req, payload))
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "the body did not arrive within {} ms of the headers",
                state.body_timeout.as_millis()
            ))
        })??;
    let parsed = parse_sales(&body, tenant, branch, chrono::Utc::now())?;
    let outcome = core
        .tenants
        .post(tenant, branch, parsed.items)
        .await
        .map_err(|e| ApiError::from_tenant(e, parsed.is_array))?;
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

fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match mime.as_deref() {
        Some("application/json") => Ok(()),
        Some(m) if m.starts_with("application/") && m.ends_with("+json") => Ok(()),
        Some(m) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, got {:?}",
            clip(m)
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json".into(),
        )),
    }
}

/// Reads at most [`MAX_BODY_BYTES`], refusing more without reading it all.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::BytesMut, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("the body may be at most {MAX_BODY_BYTES} bytes"));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(FIRST_BUFFER_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
