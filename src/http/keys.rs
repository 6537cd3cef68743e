//! A tenant's API keys through the API: a back office makes, lists and
//! revokes its till keys (the operator also back-office keys). The token
//! is answered once, when the key is made; lists never hold a secret. A
//! revocation is dropped from this server's cache at once and reaches the
//! others through their revocation poll (within 2 s).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::pages::{Page, PageRequest};
use super::{ApiError, AppState};
use crate::auth::{NewKey, PathIds, MAX_KEY_ID_LEN};
use crate::domain::{parse_new_key, BranchId, Role, Scope, TenantId, Timestamp};
use crate::store::{self, KeyListing, NewTenantKey, TenantKeyRevocation};

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
            id: &k.id,
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

/// The roles `caller` may make and revoke for a tenant.
fn manageable(caller: Scope) -> &'static [Role] {
    match caller {
        Scope::Operator => &[Role::Till, Role::Backoffice],
        _ => &[Role::Till],
    }
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
    state.core()?;
    let body = json_body(&req, payload).await?;
    let asked = parse_new_key(&body)?;
    let (made, token) = make_key(
        &state,
        tenant,
        caller,
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

/// Makes a key of `role` for `tenant` as `caller` may, and answers it with
/// its token (the only time the token exists outside the caller's hands).
pub(super) async fn make_key(
    state: &AppState,
    tenant: TenantId,
    caller: Scope,
    role: Role,
    branch: Option<BranchId>,
    label: &str,
) -> Result<(KeyListing, String), ApiError> {
    let core = state.core()?;
    if !manageable(caller).contains(&role) {
        return Err(ApiError::Forbidden);
    }
    if let Some(handle) = core.tenants.get(tenant).await? {
        handle.writable_by(caller)?;
    }
    let scope = Scope::new(role, Some(tenant), branch)
        .map_err(|e| ApiError::validation("role", &e.to_string()))?;
    let key = NewKey::generate()
        .map_err(|e| ApiError::Internal(format!("no randomness for a key: {e}")))?;
    let new = NewTenantKey {
        id: key.id.clone(),
        hash: key.hash,
        scope,
        label: label.to_string(),
        max_keys: state.tenant_limits.keys,
    };
    let made = core
        .office
        .run(move |c| Box::pin(async move { store::insert_tenant_key(c, &new).await }))
        .await?
        .map_err(|refusal| match refusal {
            store::KeyRefusal::NoSuchTenant => ApiError::unknown_tenant(),
            store::KeyRefusal::NotABranch => {
                ApiError::validation("branchID", "is not a branch of this tenant")
            }
            store::KeyRefusal::TooMany => ApiError::Conflict {
                message: format!(
                    "the tenant holds {} keys that are not revoked, the most it may \
                     (POS_MAX_KEYS_PER_TENANT); revoke one first",
                    state.tenant_limits.keys
                ),
                fields: Default::default(),
            },
        })?;
    Ok((made, key.token))
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
    let core = state.core()?;
    let page = PageRequest::from_query(req.query_string())?;
    let after = page.cursor_as(|c| valid_key_id(c).then(|| c.to_string()))?;
    let limit = page.limit;
    let rows = core
        .office
        .run(move |c| {
            Box::pin(
                async move { store::list_tenant_keys(c, tenant, after.as_deref(), limit).await },
            )
        })
        .await?
        .ok_or_else(ApiError::unknown_tenant)?;
    let next_cursor = page.next_cursor(rows.len(), rows.last().map(|k| k.id.clone()));
    Ok(HttpResponse::Ok().json(Page {
        items: Keys {
            keys: rows.iter().map(KeyBody::from).collect(),
        },
        next_cursor,
    }))
}

pub(super) fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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
    state.core()?;
    let key = revoke(&state, tenant, caller, path_key_id(&req)?).await?;
    Ok(HttpResponse::Ok().json(KeyBody::from(&key)))
}

/// Revokes a key of `tenant` that `caller` may revoke; this server's
/// cache forgets it at once.
pub(super) async fn revoke(
    state: &AppState,
    tenant: TenantId,
    caller: Scope,
    id: String,
) -> Result<KeyListing, ApiError> {
    let core = state.core()?;
    let allowed = manageable(caller);
    let key_id = id.clone();
    let revoked = core
        .office
        .run(move |c| {
            Box::pin(async move { store::revoke_tenant_key(c, tenant, &key_id, allowed).await })
        })
        .await?;
    match revoked {
        TenantKeyRevocation::Revoked(key) => {
            if let Some(auth) = &state.auth {
                auth.forget(&[id]).await;
            }
            Ok(key)
        }
        TenantKeyRevocation::NotAllowed => Err(ApiError::Forbidden),
        TenantKeyRevocation::NoSuchKey => Err(no_such_key()),
    }
}

/// The path's `{keyID}`; one that is no key id names no key: 404.
pub(super) fn path_key_id(req: &HttpRequest) -> Result<String, ApiError> {
    req.match_info()
        .get("keyID")
        .filter(|id| valid_key_id(id))
        .map(str::to_string)
        .ok_or_else(no_such_key)
}

fn no_such_key() -> ApiError {
    ApiError::NotFound("no such key for this tenant".into())
}
