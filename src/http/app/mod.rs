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
mod gate;
mod keys;
mod layout;
mod live;
mod operator;
mod origin;
mod overview;
mod returns;
mod sales;
pub mod session;
mod sign_in;
mod webhooks;

use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{guard, web, HttpResponse, ResponseError};

pub use gate::{Viewer, AUTOMATIC};
pub use live::{publish as publish_live_top_sellers, LiveTopSellers};

use gate::{gate, is_tls, signed_session, viewer_of};
use origin::protect;

use super::{ApiError, AppState};
use crate::auth::Operation;
use crate::domain::TenantId;
use crate::service::reports::ReportKind;

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
                    page("/tenants/{tenantID}/today.json", ReadTenantSales, GET)
                        .route(get().to(overview::today_json)),
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
                    page("/tenants/{tenantID}/returns", PostRefunds, GET_POST)
                        .route(get().to(returns::page))
                        .route(web::post().to(returns::take_back)),
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
                .service(
                    page("/tenants/{tenantID}/webhooks", ManageWebhooks, GET_POST)
                        .route(get().to(webhooks::page))
                        .route(web::post().to(webhooks::create)),
                )
                .service(
                    page(
                        "/tenants/{tenantID}/webhooks/{webhookID}/delete",
                        ManageWebhooks,
                        POST,
                    )
                    .route(web::post().to(webhooks::delete)),
                )
                .service(
                    page(
                        "/tenants/{tenantID}/webhooks/{webhookID}/deliveries/{deliveryID}/retry",
                        ManageWebhooks,
                        POST,
                    )
                    .route(web::post().to(webhooks::retry)),
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

/// Today's date in `tz`.
fn today(tz: chrono_tz::Tz) -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&tz).date_naive()
}
