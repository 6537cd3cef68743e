//! The back office in a browser (`/app/`): server-rendered pages for a
//! tenant's back office and for the operator, over the same actors, store
//! functions and role table as the API. A session cookie (see
//! [`session`]) stands for the key that signed in; every page and action
//! checks it, and the key's role for the path's tenant, on the server.
//!
//! A tenant's pages carry its id where the API does
//! (`/app/tenants/{t}/…`), so with shards HAProxy's `path,field(4,/)`
//! sends them to the owning instance; sign-in and the operator's pages
//! work on any instance.

mod catalog;
mod chart;
mod keys;
mod layout;
mod live;
mod operator;
mod overview;
mod sales;
pub mod session;
mod sign_in;

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

pub use live::{publish as publish_live_top_sellers, LiveTopSellers};
pub use session::SessionKeys;

use super::{ApiError, AppState};
use crate::auth::{permits, Operation, PathIds};
use crate::clock::{UnixMs, UnixSecs};
use crate::domain::{KeyId, Scope, TenantId};
use crate::service::reports::ReportKind;

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

/// An error shown as a page (the API's errors, in HTML).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PageError(pub ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<crate::service::ServiceError> for PageError {
    fn from(e: crate::service::ServiceError) -> Self {
        PageError(e.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    /// The API's answer (status, headers such as `Retry-After` and
    /// `Allow`, its log line) with a page in place of the JSON body.
    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let page = layout::error_page(status, &self.0.to_string()).into_string();
        let mut res = self.0.error_response().set_body(BoxBody::new(page));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res
    }
}

pub type PageResult = Result<HttpResponse, PageError>;

/// What each page resource answers (its `Allow`).
const GET: &str = "GET, HEAD";
const POST: &str = "POST";
const GET_POST: &str = "GET, HEAD, POST";

/// The `/app` routes.
pub fn app_routes(cfg: &mut web::ServiceConfig) {
    use Operation::*;
    cfg.route("/app", web::to(|| async { see_other("/app/") }))
        .service(
            web::scope("/app")
                .wrap(from_fn(protect))
                .route("/", get().to(sign_in::page))
                .route("/session", web::post().to(sign_in::sign_in))
                .route("/session/end", web::post().to(sign_in::sign_out))
                .route("/static/{file}", get().to(layout::asset))
                .service(
                    page("/operator", ManageTenants, GET_POST)
                        .route(get().to(operator::page))
                        .route(web::post().to(operator::create_tenant)),
                )
                // GET only: a HEAD would hold a stream slot without a byte sent.
                .service(
                    page("/operator/live", ReadTopSelling, "GET")
                        .route(web::get().to(live::stream)),
                )
                .service(
                    page("/tenants/{tenantID}/", ReadTenantSales, GET)
                        .route(get().to(overview::page)),
                )
                .service(
                    page("/tenants/{tenantID}/settings", ManageTenants, POST)
                        .route(web::post().to(operator::change_tenant)),
                )
                .service(
                    page("/tenants/{tenantID}/sales", ReadTenantSales, GET)
                        .route(get().to(sales::page)),
                )
                .service(
                    page("/tenants/{tenantID}/sales.csv", ReadTenantSales, GET)
                        .route(get().to(sales::csv)),
                )
                .service(
                    page("/tenants/{tenantID}/products", ChangeCatalog, GET_POST)
                        .route(get().to(catalog::products))
                        .route(web::post().to(catalog::add_product)),
                )
                .service(
                    page("/tenants/{tenantID}/products/import", ChangeCatalog, POST)
                        .route(web::post().to(catalog::import_products)),
                )
                .service(
                    page(
                        "/tenants/{tenantID}/products/{productID}",
                        ChangeCatalog,
                        POST,
                    )
                    .route(web::post().to(catalog::change_product)),
                )
                .service(
                    page("/tenants/{tenantID}/branches", ChangeCatalog, GET_POST)
                        .route(get().to(catalog::branches))
                        .route(web::post().to(catalog::add_branch)),
                )
                .service(
                    page(
                        "/tenants/{tenantID}/branches/{branchID}",
                        ChangeCatalog,
                        POST,
                    )
                    .route(web::post().to(catalog::change_branch)),
                )
                .service(
                    page("/tenants/{tenantID}/keys", ManageKeys, GET_POST)
                        .route(get().to(keys::page))
                        .route(web::post().to(keys::create)),
                )
                .service(
                    page("/tenants/{tenantID}/keys/{keyID}/revoke", ManageKeys, POST)
                        .route(web::post().to(keys::revoke)),
                )
                .default_service(web::to(not_found)),
        );
}

async fn not_found() -> PageResult {
    Err(PageError(ApiError::NotFound("no such page".into())))
}

/// GET, and HEAD answered like it.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A page behind the session gate: `op` is what its key must be allowed
/// for the path's tenant (the API's role table).
fn page(
    path: &str,
    op: Operation,
    allow: &'static str,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<EitherBody<BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path)
        .wrap(from_fn(move |req, next| gate(op, req, next)))
        .default_service(web::to(move || async move {
            Err::<HttpResponse, _>(PageError(ApiError::MethodNotAllowed { allow }))
        }))
}

/// The headers of every `/app` answer, and the cross-site check of every
/// unsafe method (before anything is read or changed).
async fn protect(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    let foreign = unsafe_method
        && !req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|state| same_origin(state, req.request()));
    let mut res = if foreign {
        let refusal = PageError(ApiError::Forbidden);
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

/// The query parameter of a page's own reload (see `layout::refreshing_page`).
pub const AUTOMATIC: &str = "auto=1";

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
fn browser_origin(state: &AppState, req: &HttpRequest) -> Option<(String, String)> {
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

/// The session gate of a page: the cookie's key, allowed `op` on the
/// path's tenant (decided from the key and the path alone, as in the
/// API), on the instance that owns that tenant. Without a valid session,
/// a page sends the browser to the sign-in page.
async fn gate(
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
    // A page that reloads itself is no sign of a person: it must not keep
    // a session alive past its idle limit.
    let automatic = req.query_string().split('&').any(|p| p == AUTOMATIC);
    let (viewer, renew) = match viewer_of(&state, req.request(), now).await {
        Ok(found) => found,
        Err(ApiError::Unauthorized) => {
            let res = sign_in::to_sign_in(req.request(), is_tls(&state, req.request()));
            return Ok(req.into_response(res).map_into_right_body());
        }
        Err(e) => return Ok(req.error_response(PageError(e)).map_into_right_body()),
    };
    if !permits(viewer.scope, op, path) {
        let e = PageError(ApiError::Forbidden);
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
async fn viewer_of(
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
fn signed_session(state: &AppState, req: &HttpRequest, now: UnixSecs) -> Option<session::Session> {
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok());
    session::cookie_value(cookies, is_tls(state, req))
        .and_then(|value| state.sessions.verify(value, now))
}

/// Whether the browser came over TLS (through a trusted proxy that says
/// so): then the cookie is `Secure`, with the `__Host-` name.
fn is_tls(state: &AppState, req: &HttpRequest) -> bool {
    browser_origin(state, req).is_some_and(|(scheme, _)| scheme == "https")
}

/// A page's HTML answer.
fn html(markup: maud::Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// `res` with another status (a page that shows why a form was refused).
fn with_status(mut res: HttpResponse, status: StatusCode) -> HttpResponse {
    *res.status_mut() = status;
    res
}

/// Back to a page after a form did its work (POST, then GET).
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The tenant's catalog, as the API's catalog route reads it.
async fn tenant_catalog(
    state: &AppState,
    tenant: TenantId,
) -> Result<Arc<crate::domain::Catalog>, ApiError> {
    Ok(
        crate::service::catalog::catalog_view(state.services()?, tenant)
            .await?
            .catalog
            .clone(),
    )
}

/// How many rows of a report a page asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// The API's first page (a table a person reads).
    FirstPage,
    /// Every group, up to the store's bound (sums and rankings over all of
    /// them, a CSV download).
    All,
}

/// A sales report over `[from, to)` in `tz`, grouped by `group_by` (the
/// API's names, comma-separated), in `kind`'s lane of the reports' pool:
/// the same query and checks as `GET /v1/tenants/{t}/reports/sales`.
async fn report(
    state: &AppState,
    kind: ReportKind,
    tenant: TenantId,
    range: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    tz: chrono_tz::Tz,
    group_by: &str,
    rows: Rows,
) -> Result<(crate::domain::ReportQuery, crate::domain::ReportPage), ApiError> {
    let group_by = crate::http::parse::group_by(group_by)?;
    let mut query = crate::domain::ReportQuery::over(tenant, range, tz, group_by)
        .map_err(crate::http::parse::ReportProblem::from)?;
    if rows == Rows::All {
        // One query for all of them: paging would aggregate again per page.
        query.limit = crate::domain::MAX_GROUPS;
    }
    let page = crate::service::reports::run_report(state.services()?, kind, query.clone()).await?;
    Ok((query, page))
}

/// The instant a local day starts in `tz`: its first local quarter hour
/// that exists (a zone may skip midnight, or, as Samoa in 2011, a whole
/// day, which then starts where the next one does).
fn day_start(tz: chrono_tz::Tz, day: chrono::NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let first = |day: chrono::NaiveDate| {
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        (0..96)
            .filter_map(|q| midnight.checked_add_signed(chrono::Duration::minutes(15 * q)))
            .find_map(|local| tz.from_local_datetime(&local).earliest())
    };
    first(day)
        .or_else(|| day.succ_opt().and_then(first))
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| day.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Today's date in `tz`.
fn today(tz: chrono_tz::Tz) -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&tz).date_naive()
}
