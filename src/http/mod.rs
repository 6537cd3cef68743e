//! The HTTP layer: routes, body reading, and the request metrics. Handlers
//! parse, hand over to actors, and shape the answer; they know no SQL.

pub mod app;
mod body;
mod catalog;
pub mod connections;
mod deadline;
mod error;
mod events;
pub use events::render_event;
mod gate;
mod health;
mod keys;
mod pages;
pub mod parse;
mod reads;
mod refunds;
mod reports;
mod sales;
mod tenants;
mod webhooks;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CACHE_CONTROL, X_CONTENT_TYPE_OPTIONS};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{guard, web, HttpResponse};
use tracing::Instrument;

pub use error::{field_names, ApiError};
pub use health::watch_readiness;

use crate::auth::{Auth, Operation};
use crate::client_address::TrustedProxies;
use crate::domain::Shard;
use crate::ids::RequestId;
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::service::Services;

/// Shared by every worker.
pub struct AppState {
    /// Empty until MySQL answered and the actors run; API routes answer 503 until then.
    pub core: OnceLock<Services>,
    pub metrics: Metrics,
    pub mirror: Option<Mirror>,
    /// `None` when authentication is disabled (`POS_AUTH=disabled`).
    pub auth: Option<Arc<Auth>>,
    /// Longest a request body may take after its headers.
    pub body_timeout: std::time::Duration,
    /// The tenants this instance owns.
    pub shard: Shard,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// What `/ready` answers, checked in the background.
    pub readiness: health::ReadyState,
    /// Signs the web back office's session cookies.
    pub sessions: crate::auth::SessionKeys,
    /// The operator's live top sellers.
    pub live: Arc<app::LiveTopSellers>,
}

impl AppState {
    /// The operations, once booted (else 503: starting).
    pub fn services(&self) -> Result<&Services, ApiError> {
        self.core.get().ok_or_else(ApiError::starting)
    }
}

/// Every API route, as the OpenAPI document (`openapi.json`) describes it,
/// with the query parameters it takes (any other is 422 naming it); a test
/// checks that the document lists exactly these and that each is served.
/// Keep it next to [`api_routes`].
pub const ROUTES: &[(&str, &str, &[&str])] = &[
    ("GET", "/health", &[]),
    ("GET", "/ready", &[]),
    ("GET", "/openapi.json", &[]),
    (
        "POST",
        "/v1/tenants/{tenantID}/branches/{branchID}/sales-transactions",
        &[],
    ),
    ("GET", "/v1/tenants/{tenantID}/sales", &[]),
    (
        "GET",
        "/v1/tenants/{tenantID}/reports/sales",
        &[
            "from",
            "to",
            "groupBy",
            "tz",
            "branchID",
            "productID",
            "limit",
            "cursor",
        ],
    ),
    ("GET", "/v1/top-selling", &["limit", "by"]),
    ("POST", "/v1/tenants", &[]),
    ("GET", "/v1/tenants", PAGED),
    ("GET", "/v1/tenants/{tenantID}", &[]),
    ("PATCH", "/v1/tenants/{tenantID}", &[]),
    ("GET", "/v1/tenants/{tenantID}/catalog", &[]),
    ("POST", "/v1/tenants/{tenantID}/branches", &[]),
    (
        "GET",
        "/v1/tenants/{tenantID}/branches",
        &["open", "q", "limit", "cursor"],
    ),
    ("PATCH", "/v1/tenants/{tenantID}/branches/{branchID}", &[]),
    ("POST", "/v1/tenants/{tenantID}/products", &[]),
    (
        "GET",
        "/v1/tenants/{tenantID}/products",
        &["active", "q", "limit", "cursor"],
    ),
    ("GET", "/v1/tenants/{tenantID}/products/{productID}", &[]),
    ("PATCH", "/v1/tenants/{tenantID}/products/{productID}", &[]),
    ("POST", "/v1/tenants/{tenantID}/keys", &[]),
    ("GET", "/v1/tenants/{tenantID}/keys", PAGED),
    ("DELETE", "/v1/tenants/{tenantID}/keys/{keyID}", &[]),
    (
        "POST",
        "/v1/tenants/{tenantID}/branches/{branchID}/refunds",
        &[],
    ),
    (
        "GET",
        "/v1/tenants/{tenantID}/sales-transactions/{saleID}",
        &[],
    ),
    (
        "GET",
        "/v1/tenants/{tenantID}/sales-transactions",
        &["branchID", "from", "to", "limit", "cursor"],
    ),
    (
        "GET",
        "/v1/tenants/{tenantID}/events",
        &["after", "limit", "types"],
    ),
    ("POST", "/v1/tenants/{tenantID}/webhooks", &[]),
    ("GET", "/v1/tenants/{tenantID}/webhooks", &[]),
    ("DELETE", "/v1/tenants/{tenantID}/webhooks/{webhookID}", &[]),
    (
        "GET",
        "/v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries",
        &[],
    ),
    (
        "POST",
        "/v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries/{deliveryID}/retry",
        &[],
    ),
];

/// The query parameters of a paged list.
const PAGED: &[&str] = &["limit", "cursor"];

/// The query parameters `ROUTES` gives `method` (HEAD: GET's) on the
/// route `pattern`; `None` for a method the route does not answer.
fn query_parameters(method: &Method, pattern: &str) -> Option<&'static [&'static str]> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .map(|(_, _, params)| *params)
}

/// Refuses a query parameter the route does not take (422 naming it), so
/// a misspelt `group_by` is never read as "no grouping". A method the
/// route does not answer goes on to its 405. (The `/v1` routes' gate does
/// the same check after the key's, without a layer of its own.)
async fn known_parameters(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(e) = unknown_parameter_of(&req) {
        return Ok(req.error_response(e));
    }
    next.call(req).await
}

/// A query parameter `req`'s route does not take, as a 422 (`None` with
/// no query string: the sales POST pays nothing for the check).
fn unknown_parameter_of(req: &ServiceRequest) -> Option<ApiError> {
    if req.query_string().is_empty() {
        return None;
    }
    let pattern = req.match_pattern()?;
    let allowed = query_parameters(req.method(), &pattern)?;
    unknown_parameter(req.query_string(), allowed)
}

/// The first parameter of `query` not in `allowed`, as a 422.
fn unknown_parameter(query: &str, allowed: &[&str]) -> Option<ApiError> {
    let (name, _) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| !allowed.contains(&name.as_ref()))?;
    let takes = if allowed.is_empty() {
        "this route takes no query parameters".to_string()
    } else {
        format!("this route takes {}", allowed.join(", "))
    };
    let name = crate::domain::clip(&name);
    Some(ApiError::Validation {
        message: format!("unknown query parameter {name:?}; {takes}"),
        fields: std::collections::BTreeMap::from([(
            name.to_string(),
            format!("is not a parameter of this route; {takes}"),
        )]),
    })
}

/// The API routes (port 8080). Each `/v1` resource carries its own gate
/// (shard and key, by method; see `gate.rs` for why per resource); a method
/// a route does not have gets 405 in the error format, with `Allow`.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    use Operation::*;
    cfg.service(open("/health", health::health))
        .service(open("/ready", health::ready))
        .service(open("/openapi.json", openapi))
        .service(
            guarded(
                "/v1/tenants/{tenantID}/branches/{branchID}/sales-transactions",
                &[(Method::POST, PostSales)],
            )
            .wrap(from_fn(gate::count_rejections))
            .route(web::post().to(sales::post_sales))
            .default_service(web::to(|| async { only("POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/sales",
                &[(Method::GET, ReadTenantSales)],
            )
            .route(get().to(reads::tenant_sales))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/reports/sales",
                &[(Method::GET, ReadTenantSales)],
            )
            .route(get().to(reports::sales_report))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded("/v1/top-selling", &[(Method::GET, ReadTopSelling)])
                .route(get().to(reads::top_selling))
                .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants",
                &[(Method::POST, ManageTenants), (Method::GET, ManageTenants)],
            )
            .route(web::post().to(tenants::create_tenant))
            .route(get().to(tenants::list_tenants))
            .default_service(web::to(|| async { only("GET, HEAD, POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}",
                &[(Method::GET, ReadTenant), (Method::PATCH, ChangeTenant)],
            )
            .route(get().to(tenants::read_tenant))
            .route(web::patch().to(tenants::change_tenant))
            .default_service(web::to(|| async { only("GET, HEAD, PATCH") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/catalog",
                &[(Method::GET, ReadCatalog)],
            )
            .route(get().to(catalog::read_catalog))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/branches",
                &[(Method::POST, ChangeCatalog), (Method::GET, ListCatalog)],
            )
            .route(web::post().to(catalog::create_branch))
            .route(get().to(catalog::list_branches))
            .default_service(web::to(|| async { only("GET, HEAD, POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/branches/{branchID}",
                &[(Method::PATCH, ChangeCatalog)],
            )
            .route(web::patch().to(catalog::change_branch))
            .default_service(web::to(|| async { only("PATCH") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/products",
                &[(Method::POST, ChangeCatalog), (Method::GET, ListCatalog)],
            )
            .route(web::post().to(catalog::create_products))
            .route(get().to(catalog::list_products))
            .default_service(web::to(|| async { only("GET, HEAD, POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/products/{productID}",
                &[(Method::PATCH, ChangeCatalog), (Method::GET, ListCatalog)],
            )
            .route(web::patch().to(catalog::change_product))
            .route(get().to(catalog::read_product))
            .default_service(web::to(|| async { only("GET, HEAD, PATCH") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/keys",
                &[(Method::POST, ManageKeys), (Method::GET, ManageKeys)],
            )
            .route(web::post().to(keys::create_key))
            .route(get().to(keys::list_keys))
            .default_service(web::to(|| async { only("GET, HEAD, POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/keys/{keyID}",
                &[(Method::DELETE, ManageKeys)],
            )
            .route(web::delete().to(keys::revoke_key))
            .default_service(web::to(|| async { only("DELETE") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/branches/{branchID}/refunds",
                &[(Method::POST, PostRefunds)],
            )
            .route(web::post().to(refunds::post_refunds))
            .default_service(web::to(|| async { only("POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/sales-transactions/{saleID}",
                &[(Method::GET, ReadSaleTransactions)],
            )
            .route(get().to(refunds::get_sale))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/sales-transactions",
                &[(Method::GET, ReadSaleTransactions)],
            )
            .route(get().to(refunds::list_sales))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/events",
                &[(Method::GET, ReadEvents)],
            )
            .route(get().to(events::list_events))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/webhooks",
                &[
                    (Method::POST, ManageWebhooks),
                    (Method::GET, ManageWebhooks),
                ],
            )
            .route(web::post().to(webhooks::create_webhook))
            .route(get().to(webhooks::list_webhooks))
            .default_service(web::to(|| async { only("GET, HEAD, POST") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/webhooks/{webhookID}",
                &[(Method::DELETE, ManageWebhooks)],
            )
            .route(web::delete().to(webhooks::delete_webhook))
            .default_service(web::to(|| async { only("DELETE") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries",
                &[(Method::GET, ManageWebhooks)],
            )
            .route(get().to(webhooks::list_deliveries))
            .default_service(web::to(|| async { only("GET, HEAD") })),
        )
        .service(
            guarded(
                "/v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries/{deliveryID}/retry",
                &[(Method::POST, ManageWebhooks)],
            )
            .route(web::post().to(webhooks::retry_delivery))
            .default_service(web::to(|| async { only("POST") })),
        )
        .default_service(web::to(not_found));
}

/// A `/v1` resource behind its gate: `ops` names the operation of each
/// method it answers.
fn guarded(
    path: &str,
    ops: gate::Ops,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<actix_web::body::EitherBody<actix_web::body::BoxBody>>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path).wrap(from_fn(move |req, next| gate::guard(ops, req, next)))
}

/// A GET route open without a key.
fn open<F, Args>(
    path: &str,
    handler: F,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
>
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .wrap(from_fn(known_parameters))
        .route(get().to(handler))
        .default_service(web::to(|| async { only("GET, HEAD") }))
}

/// GET, and HEAD answered like it: actix-http sends a HEAD's headers
/// (with the length GET's body would have) and drops the body.
fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn only(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}

/// The API description, kept by hand (see [`ROUTES`]) and checked by tests.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

/// The metrics routes (port 8081): the metrics, and readiness in detail.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_text))
        .route("/ready", web::get().to(health::ready_details))
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such route".into()))
}

async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

/// Gives each request an id and a span (the tenant actor's work for the
/// request runs in it), puts its body under the body deadline
/// (`deadline`), counts and times the request by route template (never the
/// raw path, so ids do not become series), and echoes the id as the
/// `x-request-id` header.
pub async fn track_requests(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::next();
    let method = method_label(req.method());
    // The path is the client's: cut, like every echoed field.
    let path = crate::domain::clip(req.path());
    let span = tracing::info_span!("request", id = id.as_str(), method, path = &*path);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let armed = state
        .as_ref()
        .and_then(|s| deadline::arm(&mut req, s.body_timeout));
    let answered = next.call(req).instrument(span).await;
    let mut res = match armed {
        Some(armed) => armed.settle(answered)?,
        None => answered?.map_into_left_body(),
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status();
    if let Some(state) = state {
        let labels = [route.as_str(), method, status.as_str()];
        let m = &state.metrics;
        m.http_requests.with_label_values(&labels).inc();
        m.http_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
    // Answers carry tenant data: no cache keeps them (a route that wants
    // revalidation, like the catalog, says so itself), and a browser
    // takes them for what their Content-Type says.
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}

/// The method as a metric label: the standard ones, else "other" (a
/// client chooses the method, and labels must stay few).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
