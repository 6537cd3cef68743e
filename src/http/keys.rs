//! A tenant's API keys through the API: a back office makes, lists and
//! revokes its till keys (the operator also back-office keys). The token
//! is answered once, when the key is made; lists never hold a secret. A
//! revocation is dropped from this server's cache at once and reaches the
//! others through their revocation poll (within 2 s).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::pages::{Page, PageRequest};
use super::parse::parse_new_key;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{BranchId, KeyId, Scope, TenantId, Timestamp};
use crate::service::keys::{self, KeyListing};
use crate::service::ServiceError;

/// A key as the API shows it (never its secret).
#[derive(Serialize)]
struct KeyBody<'a> {
    id: &'a str,
    role: &'static str,
    #[serde(rename = "tenantID", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<TenantId>,
    #[serde(rename = "branchID", skip_serializing_if = "Option::is_none")]
    branch_id: Option<BranchId>,
    label: &'a str,
    created: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked: Option<Timestamp>,
}

impl<'a> From<&'a KeyListing> for KeyBody<'a> {
    fn from(k: &'a KeyListing) -> Self {
        KeyBody {
            id: k.id.as_str(),
            role: k.scope.role().as_str(),
            tenant_id: k.scope.tenant(),
            branch_id: k.scope.branch(),
            label: &k.label,
            created: Timestamp::from_naive_utc(k.created),
            revoked: k.revoked.map(Timestamp::from_naive_utc),
        }
    }
}

/// A key just made: the only answer that carries its token.
#[derive(Serialize)]
struct MadeKey<'a> {
    #[serde(flatten)]
    key: KeyBody<'a>,
    token: &'a str,
}

/// `POST /v1/tenants/{tenantID}/keys` `{"role", "branchID"?, "label"}`.
pub async fn create_key(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let asked = parse_new_key(&body)?;
    let (made, token) = keys::make_key(
        services,
        caller,
        tenant,
        asked.role,
        asked.branch,
        asked.label.as_str(),
    )
    .await?;
    Ok(HttpResponse::Created().json(MadeKey {
        key: KeyBody::from(&made),
        token: &token,
    }))
}

#[derive(Serialize)]
struct Keys<'a> {
    keys: Vec<KeyBody<'a>>,
}

/// `GET /v1/tenants/{tenantID}/keys?limit=&cursor=`, by id.
pub async fn list_keys(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let page = PageRequest::from_query(req.query_string())?;
    let after = page.cursor_as(KeyId::parse)?;
    let rows = keys::list_keys(services, tenant, None, after, page.limit).await?;
    let next_cursor = page.next_cursor(rows.len(), rows.last().map(|k| k.id.to_string()));
    Ok(HttpResponse::Ok().json(Page {
        items: Keys {
            keys: rows.iter().map(KeyBody::from).collect(),
        },
        next_cursor,
    }))
}

/// `DELETE /v1/tenants/{tenantID}/keys/{keyID}`: revokes (again: the first
/// revocation time stays) and answers the key.
pub async fn revoke_key(
    state: web::Data<AppState>,
    ids: PathIds,
    caller: Scope,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let key = keys::revoke_key(services, caller, tenant, path_key_id(&req)?).await?;
    Ok(HttpResponse::Ok().json(KeyBody::from(&key)))
}

/// The path's `{keyID}`; one that is no key id names no key: 404.
pub(super) fn path_key_id(req: &HttpRequest) -> Result<KeyId, ApiError> {
    req.match_info()
        .get("keyID")
        .and_then(KeyId::parse)
        .ok_or_else(|| ApiError::from(ServiceError::NoSuchKey))
}
