//! The gate in front of every `/v1` route: it parses the path's ids (once;
//! handlers take them from here), then checks whether this instance owns
//! the path's tenant (`POS_SHARD`; else 421, nothing looked up or stored),
//! then the key. It wraps each resource, not the whole app: it then runs
//! after routing, on the very path parameters the handler will see (`%31`
//! decoded to `1` as the router decodes it), so no spelling of a path can
//! reach a route without its own rule. It runs before the handler reads the
//! body or looks anything up.

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, X_FORWARDED_FOR};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::{ApiError, AppState};
use crate::auth::{Operation, PathIds};
use crate::domain::{BranchId, ErrorCode, ProductId, SaleId, Scope, TenantId};

/// The operation of each method a resource answers.
pub type Ops = &'static [(Method, Operation)];

/// Lets the request through only with a key that may perform its method's
/// operation here. A method the resource does not answer passes on to its
/// 405 without a check.
pub async fn guard(
    ops: Ops,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    // HEAD asks what GET would answer: the same rule.
    let method = match req.method() {
        &Method::HEAD => &Method::GET,
        m => m,
    };
    let Some(&(_, op)) = ops.iter().find(|(m, _)| m == method) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .error_response(ApiError::Internal("no application state".into()))
            .map_into_right_body());
    };
    let ids = path_ids(req.request());
    req.extensions_mut().insert(ids);
    if ids.tenant.is_some_and(|t| !state.shard.owns(t)) {
        let e = ApiError::Misdirected(state.shard);
        return Ok(req.error_response(e).map_into_right_body());
    }
    if let Some(auth) = &state.auth {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client = client_address(&state, req.request());
        match auth.check(header, client, op, ids).await {
            // Handlers whose rule depends on the role (which keys a back
            // office may make) read it here.
            Ok(key) => {
                req.extensions_mut().insert(key.scope);
            }
            Err(e) => {
                state.metrics.auth_refused(e.code());
                return Ok(req.error_response(ApiError::from(e)).map_into_right_body());
            }
        }
    }
    if let Some(e) = super::unknown_parameter_of(&req) {
        return Ok(req.error_response(e).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The client's address: the peer's, or behind a trusted proxy the one
/// its `X-Forwarded-For` names.
pub(super) fn client_address(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if state.trusted_proxies.is_empty() {
        return peer;
    }
    let forwarded = req.headers().get_all(X_FORWARDED_FOR);
    state.trusted_proxies.client(peer, forwarded)
}

/// The ids of the path's `{tenantID}`, `{branchID}` and `{productID}`.
fn path_ids(req: &HttpRequest) -> PathIds {
    let path = req.match_info();
    PathIds {
        tenant: path.get("tenantID").and_then(TenantId::parse),
        branch: path.get("branchID").and_then(BranchId::parse),
        product: path.get("productID").and_then(ProductId::parse),
        sale: path.get("saleID").and_then(SaleId::parse),
    }
}

/// The scope of the request's key; the operator's when keys are off
/// (`POS_AUTH=disabled`).
impl FromRequest for Scope {
    type Error = ApiError;
    type Future = Ready<Result<Scope, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(req
            .extensions()
            .get::<Scope>()
            .copied()
            .unwrap_or(Scope::Operator)))
    }
}

impl PathIds {
    /// The path's tenant; a path whose tenant segment is no id names no
    /// tenant: 404.
    pub fn tenant_or_404(self) -> Result<TenantId, ApiError> {
        self.tenant.ok_or_else(ApiError::unknown_tenant)
    }

    /// The path's product (404 when its segment is no id).
    pub fn product_or_404(self) -> Result<ProductId, ApiError> {
        self.product.ok_or_else(ApiError::unknown_product)
    }

    /// The path's branch (404 when its segment is no id).
    pub fn branch_or_404(self) -> Result<BranchId, ApiError> {
        self.branch.ok_or_else(ApiError::unknown_branch)
    }
}

/// Handlers take the path's ids as the gate parsed them.
impl FromRequest for PathIds {
    type Error = ApiError;
    type Future = Ready<Result<PathIds, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = req.extensions().get::<PathIds>().copied();
        ready(Ok(parsed.unwrap_or_else(|| path_ids(req))))
    }
}

/// Counts the refusals of sales requests, whoever answered them (the gate
/// or the handler), by the code of their error body.
pub async fn count_rejections(
    req: ServiceRequest,
    next: Next<impl actix_web::body::MessageBody>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    let code = res.response().extensions().get::<ErrorCode>().copied();
    if let (Some(state), Some(code)) = (state, code) {
        state.metrics.reject(code);
    }
    Ok(res)
}
