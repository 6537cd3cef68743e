//! The HTTP layer: routes, body reading, and the request metrics. Handlers
//! parse, hand over to actors, and shape the answer; they know no SQL.

mod error;
mod gate;
mod health;
mod reads;
mod sales;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::prelude::*;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse};
use tracing::Instrument;

pub use error::{field_names, ApiError};

use crate::actors::lease::{LeaseActor, ShardLease};
use crate::actors::ranking::RankingActor;
use crate::actors::registry::TenantRegistry;
use crate::auth::{Auth, Operation};
use crate::client_address::TrustedProxies;
use crate::domain::Shard;
use crate::ids::RequestId;
use crate::metrics::Metrics;
use crate::mirror::Mirror;

/// What the actors give the HTTP layer once MySQL is up.
pub struct Core {
    pub tenants: Arc<TenantRegistry>,
    pub ranking: Addr<RankingActor>,
    /// Keeps this instance's shard lease.
    pub lease: Addr<LeaseActor>,
    /// Whether this instance may write now.
    pub shard_lease: ShardLease,
}

/// Shared by every worker.
pub struct AppState {
    /// Empty until MySQL answered and the actors run; API routes answer 503 until then.
    pub core: OnceLock<Core>,
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
}

impl AppState {
    pub fn core(&self) -> Result<&Core, ApiError> {
        self.core.get().ok_or_else(ApiError::starting)
    }
}

/// Every API route, as the OpenAPI document (`openapi.json`) describes it;
/// a test checks that the document lists exactly these and that each is
/// served. Keep it next to [`api_routes`].
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/openapi.json"),
    (
        "POST",
        "/v1/tenants/{tenantID}/branches/{branchID}/sales-transactions",
    ),
    ("GET", "/v1/tenants/{tenantID}/sales"),
    ("GET", "/v1/top-selling"),
];

/// The API routes (port 8080). Each `/v1` resource carries its own gate
/// (shard and key; see `gate.rs` for why per resource); a method a route
/// does not have gets 405 in the error format, with `Allow`.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(open("/health", health::health))
        .service(open("/ready", health::ready))
        .service(open("/openapi.json", openapi))
        .service(
            web::resource("/v1/tenants/{tenantID}/branches/{branchID}/sales-transactions")
                .wrap(from_fn(|req, next| {
                    gate::guard(Operation::PostSales, req, next)
                }))
                .wrap(from_fn(gate::count_rejections))
                .route(web::post().to(sales::post_sales))
                .default_service(web::to(|| async { only("POST") })),
        )
        .service(
            web::resource("/v1/tenants/{tenantID}/sales")
                .wrap(from_fn(|req, next| {
                    gate::guard(Operation::ReadTenantSales, req, next)
                }))
                .route(web::get().to(reads::tenant_sales))
                .default_service(web::to(|| async { only("GET") })),
        )
        .service(
            web::resource("/v1/top-selling")
                .wrap(from_fn(|req, next| {
                    gate::guard(Operation::ReadTopSelling, req, next)
                }))
                .route(web::get().to(reads::top_selling))
                .default_service(web::to(|| async { only("GET") })),
        )
        .default_service(web::to(not_found));
}

/// A GET route open without a key.
fn open<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(|| async { only("GET") }))
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

/// The metrics route (port 8081).
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_text))
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
/// request runs in it), counts and times the request by route template
/// (never the raw path, so ids do not become series), and echoes the id as
/// the `x-request-id` header.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::next();
    let method = method_label(req.method());
    let span = tracing::info_span!("request", id = id.as_str(), method, path = req.path());
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let mut res = next.call(req).instrument(span).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status();
    if let Some(m) = metrics {
        let labels = [route.as_str(), method, status.as_str()];
        m.http_requests.with_label_values(&labels).inc();
        m.http_duration
            .with_label_values(&labels)
            .observe(started.elapsed().as_secs_f64());
    }
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
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
