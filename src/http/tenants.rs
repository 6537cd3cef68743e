//! Tenants, for the platform operator: create (a chain's first step),
//! list, rename and suspend. A suspension goes through the tenant's actor,
//! so its tills are refused from the next request on.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::pages::{Page, PageRequest};
use super::parse::{parse_new_tenant, parse_tenant_patch};
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{Currency, Scope, TenantId, Timestamp};
use crate::service::tenants::{self, TenantRow};

/// A tenant as the API shows it.
#[derive(Serialize)]
struct TenantBody<'a> {
    id: TenantId,
    name: &'a str,
    created: Timestamp,
    suspended: bool,
    #[serde(rename = "timeZone")]
    time_zone: &'static str,
    currency: Currency,
}

impl<'a> From<&'a TenantRow> for TenantBody<'a> {
    fn from(t: &'a TenantRow) -> Self {
        TenantBody {
            id: t.id,
            name: t.name.as_str(),
            created: t.created,
            suspended: t.suspended,
            time_zone: t.time_zone.name(),
            currency: t.currency,
        }
    }
}

/// `POST /v1/tenants` `{"name"}`.
pub async fn create_tenant(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let (name, currency) = parse_new_tenant(&body)?;
    let made = tenants::make_tenant(services, name, currency).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/tenants/{}", made.id)))
        .json(TenantBody::from(&made)))
}

#[derive(Serialize)]
struct Tenants<'a> {
    tenants: Vec<TenantBody<'a>>,
}

/// `GET /v1/tenants?limit=&cursor=`, by id.
pub async fn list_tenants(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let page = PageRequest::from_query(req.query_string())?;
    let after = page.cursor_as(TenantId::parse)?;
    let rows = tenants::list_tenants(services, after, page.limit).await?;
    let next_cursor = page.next_cursor(rows.len(), rows.last().map(|t| t.id.to_string()));
    Ok(HttpResponse::Ok().json(Page {
        items: Tenants {
            tenants: rows.iter().map(TenantBody::from).collect(),
        },
        next_cursor,
    }))
}

/// `GET /v1/tenants/{tenantID}`.
pub async fn read_tenant(
    state: web::Data<AppState>,
    ids: PathIds,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let row = tenants::find_tenant(state.services()?, tenant).await?;
    Ok(HttpResponse::Ok().json(TenantBody::from(&row)))
}

/// `PATCH /v1/tenants/{tenantID}` `{"name"?, "suspended"?, "timeZone"?,
/// "currency"?}` (a back office: `timeZone` only).
pub async fn change_tenant(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let patch = parse_tenant_patch(&body)?;
    let row = tenants::change_tenant(services, caller, tenant, patch).await?;
    Ok(HttpResponse::Ok().json(TenantBody::from(&row)))
}
