//! Who is looking at a page: the session gate in front of every page
//! (the cookie's key, allowed for the path's tenant, on the instance that
//! owns it) and the [`Viewer`] it hands the page.

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use super::origin::browser_origin;
use super::{session, sign_in, PageError};
use crate::auth::{check, Operation, PathIds};
use crate::clock::{UnixMs, UnixSecs};
use crate::domain::{KeyId, Scope, TenantId};
use crate::http::{ApiError, AppState};

/// Who is looking at a page: the key behind the session.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// `None` when keys are off (`POS_AUTH=disabled`): the operator.
    pub key_id: Option<KeyId>,
    pub scope: Scope,
    /// When the session's cookie was last renewed.
    pub session_since: UnixSecs,
    /// When the session began (0 without keys).
    pub session_began: UnixMs,
}

impl Viewer {
    /// The tenant a back office belongs to (`None`: the operator).
    pub fn own_tenant(&self) -> Option<TenantId> {
        self.scope.tenant()
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.scope, Scope::Operator)
    }

    /// Where this viewer's pages start.
    pub fn home(&self) -> String {
        match self.own_tenant() {
            Some(t) => format!("/app/tenants/{t}/"),
            None => "/app/operator".into(),
        }
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Ready<Result<Viewer, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Viewer>()
                .cloned()
                .ok_or(PageError(ApiError::Unauthorized)),
        )
    }
}

/// The query parameter of a page's own reload (see `layout::refreshing_page`).
pub const AUTOMATIC: &str = "auto=1";

/// The session gate of a page: the cookie's key, allowed `op` on the
/// path's tenant (decided from the key and the path alone, as in the
/// API), on the instance that owns that tenant. Without a valid session,
/// a page sends the browser to the sign-in page.
pub(super) async fn gate(
    op: Operation,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let e = PageError(ApiError::Internal("no application state".into()));
        return Ok(req.error_response(e).map_into_right_body());
    };
    let path = PathIds::from_request(req.request(), &mut Payload::None)
        .into_inner()
        .unwrap_or_default();
    if path.tenant.is_some_and(|t| !state.shard.owns(t)) {
        let e = PageError(ApiError::Misdirected(state.shard));
        return Ok(req.error_response(e).map_into_right_body());
    }
    let now = UnixSecs::now();
    // A page that reloads itself, or a page's script asking for figures
    // (`….json`), is no sign of a person: it must not keep a session alive
    // past its idle limit.
    let automatic =
        req.query_string().split('&').any(|p| p == AUTOMATIC) || req.path().ends_with(".json");
    let (viewer, renew) = match viewer_of(&state, req.request(), now).await {
        Ok(found) => found,
        Err(ApiError::Unauthorized) => {
            let res = sign_in::to_sign_in(req.request(), is_tls(&state, req.request()));
            return Ok(req.into_response(res).map_into_right_body());
        }
        Err(e) => return Ok(req.error_response(PageError(e)).map_into_right_body()),
    };
    if let Err(why) = check(viewer.scope, op, path) {
        let e = PageError(ApiError::Forbidden(why));
        return Ok(req.error_response(e).map_into_right_body());
    }
    let secure = is_tls(&state, req.request());
    req.extensions_mut().insert(viewer.clone());
    let mut res = next.call(req).await?;
    if let (Some(id), true, false) = (&viewer.key_id, renew, automatic) {
        let value = state.sessions.issue(id, viewer.session_began, now);
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&value, secure)) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(res.map_into_left_body())
}

/// The viewer a request's session cookie proves, and whether the cookie
/// should be renewed. `Unauthorized`: no valid session (or its key is
/// revoked).
pub(super) async fn viewer_of(
    state: &AppState,
    req: &HttpRequest,
    now: UnixSecs,
) -> Result<(Viewer, bool), ApiError> {
    let Some(auth) = &state.auth else {
        let operator = Viewer {
            key_id: None,
            scope: Scope::Operator,
            session_since: now,
            session_began: UnixMs::default(),
        };
        return Ok((operator, false));
    };
    let session = signed_session(state, req, now).ok_or(ApiError::Unauthorized)?;
    // A sign-out here ends the session before the key is read (MySQL may
    // be away).
    if auth.ended_here(&session.key_id, session.began).await {
        return Err(ApiError::Unauthorized);
    }
    let key = auth.session_key(&session.key_id).await?;
    if matches!(key.scope, Scope::Till { .. }) || !auth.session_open(&key, session.began).await {
        return Err(ApiError::Unauthorized);
    }
    let viewer = Viewer {
        key_id: Some(key.id.clone()),
        scope: key.scope,
        session_since: session.since,
        session_began: session.began,
    };
    Ok((viewer, session.wants_renewal(now)))
}

/// The session the request's cookie proves by its signature and age
/// alone (whether its key still stands is not looked at).
pub(super) fn signed_session(
    state: &AppState,
    req: &HttpRequest,
    now: UnixSecs,
) -> Option<crate::auth::Session> {
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok());
    session::cookie_value(cookies, is_tls(state, req))
        .and_then(|value| state.sessions.verify(value, now))
}

/// Whether the browser came over TLS (through a trusted proxy that says
/// so): then the cookie is `Secure`, with the `__Host-` name.
pub(super) fn is_tls(state: &AppState, req: &HttpRequest) -> bool {
    browser_origin(state, req).is_some_and(|(scheme, _)| scheme == "https")
}
