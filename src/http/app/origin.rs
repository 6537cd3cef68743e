//! What every `/app` answer carries (security headers) and the check of
//! every unsafe request that it comes from our own pages (before anything
//! is read or changed); the scheme and host the browser reached us at.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest};

use super::PageError;
use crate::http::{ApiError, AppState};

/// The headers of every `/app` answer, and the cross-site check of every
/// unsafe method (before anything is read or changed).
pub(super) async fn protect(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    let foreign = unsafe_method
        && !req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| same_origin(state, req.request()));
    let mut res = if foreign {
        let refusal = PageError(ApiError::Forbidden(crate::auth::Refusal::ForeignForm));
        req.error_response(refusal).map_into_right_body()
    } else {
        next.call(req).await?.map_into_left_body()
    };
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    Ok(res)
}

/// No inline script or style, nothing from elsewhere, no framing.
const SECURITY_HEADERS: [(&str, &str); 3] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
];

/// Whether an unsafe request comes from our own pages: its `Origin` (or,
/// without one, its `Referer`) names the scheme and host the browser
/// reached us at. A request with neither is refused: every browser sends
/// `Origin` with a form's POST.
fn same_origin(state: &AppState, req: &HttpRequest) -> bool {
    let source = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    let (Some(source), Some((scheme, host))) = (source, browser_origin(state, req)) else {
        return false;
    };
    match url::Url::parse(&format!("{scheme}://{host}")) {
        Ok(ours) => ours.origin() == source.origin(),
        Err(_) => false,
    }
}

/// The scheme and host the browser used. Only a proxy listed in
/// `POS_TRUSTED_PROXIES` is believed about them (`Forwarded`,
/// `X-Forwarded-Proto`, `X-Forwarded-Host`): from anyone else those
/// headers are the client's own say-so, and pos itself serves plain HTTP
/// at the `Host` the request names.
pub(super) fn browser_origin(state: &AppState, req: &HttpRequest) -> Option<(String, String)> {
    let peer = req.peer_addr().map(|a| a.ip());
    if peer.is_some_and(|ip| state.trusted_proxies.trusts(ip)) {
        let info = req.connection_info();
        return Some((info.scheme().to_string(), info.host().to_string()));
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    Some(("http".into(), host.to_string()))
}
