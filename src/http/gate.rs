//! The gate in front of every `/v1` route: first whether this instance owns
//! the path's tenant (`POS_SHARD`; else 421, nothing looked up or stored),
//! then the key check. It wraps each resource, not the whole app: it then
//! runs after routing, on the very path parameters the handler will see
//! (`%31` decoded to `1` as the router decodes it), so no spelling of a path
//! can reach a route without its own rule. It runs before the handler reads
//! the body or looks anything up.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, X_FORWARDED_FOR};
use actix_web::middleware::Next;
use actix_web::web;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Operation};
use crate::domain::parse_path_id;

/// Lets the request through only with a key that may perform `op` here.
pub async fn guard(
    op: Operation,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .error_response(ApiError::Internal("no application state".into()))
            .map_into_right_body());
    };
    let tenant = req.match_info().get("tenantID").and_then(parse_path_id);
    if tenant.is_some_and(|t| !state.shard.owns(t)) {
        let e = ApiError::Misdirected(state.shard);
        if op == Operation::PostSales {
            state.metrics.reject(e.code());
        }
        return Ok(req.error_response(e).map_into_right_body());
    }
    if let Some(auth) = &state.auth {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let peer = req.peer_addr().map(|a| a.ip());
        let client = if state.trusted_proxies.is_empty() {
            peer
        } else {
            let forwarded = req.headers().get_all(X_FORWARDED_FOR);
            state.trusted_proxies.client(peer, forwarded)
        };
        let path = req.match_info();
        let checked = auth
            .check(
                header,
                client,
                op,
                path.get("tenantID"),
                path.get("branchID"),
            )
            .await;
        if let Err(e) = checked {
            state.metrics.auth_refused(reason(e));
            let e = ApiError::from(e);
            if op == Operation::PostSales {
                state.metrics.reject(e.code());
            }
            return Ok(req.error_response(e).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

fn reason(e: AuthError) -> &'static str {
    match e {
        AuthError::Unauthorized => "unauthorized",
        AuthError::Forbidden => "forbidden",
        AuthError::RateLimited(_) => "rate_limited",
        AuthError::Unavailable => "unavailable",
    }
}
