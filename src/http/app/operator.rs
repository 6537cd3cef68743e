//! The operator's pages: tenants (list, create, suspend, time zone) and
//! the global top sellers, updated live (see [`super::live`]).

use actix_web::web;
use maud::html;
use serde::Deserialize;

use super::catalog::refusal;
use super::layout::{notice, page as frame, Section, LIVE_SCRIPT};
use super::{html, see_other, with_status, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{time_zone, Name, TenantId, TenantPatch, TIME_ZONE_RULE};
use crate::http::{ApiError, AppState};
use crate::service::tenants::{self as tenants, make_tenant};

/// Tenants a page lists.
const PAGE_TENANTS: usize = 100;
/// Products the live table shows.
pub const LIVE_ROWS: usize = 10;

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    after: Option<u64>,
    done: Option<String>,
}

/// `GET /app/operator`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    query: web::Query<TenantsQuery>,
) -> PageResult {
    let outcome = match query.done.as_deref() {
        Some("added") => Some(Ok("Tenant created.".to_string())),
        Some("changed") => Some(Ok("Saved.".to_string())),
        _ => None,
    };
    render(
        &state,
        &viewer,
        query.after.and_then(TenantId::new),
        &outcome,
    )
    .await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    after: Option<TenantId>,
    outcome: &Option<Result<String, String>>,
) -> PageResult {
    let services = state.services()?;
    let tenants = tenants::list_tenants(services, after, PAGE_TENANTS + 1).await?;
    let top = super::live::live_rows(services).await;
    let more = tenants.len() > PAGE_TENANTS;
    let body = html! {
        (notice(outcome))
        section aria-labelledby="top" {
            h2 id="top" { "Top sellers, all tenants (live)" }
            p class="muted" { "As of " span id="live-as-of" { (super::live::as_of_now()) } }
            table id="top-sellers" data-live-url="/app/operator/live" {
                thead { tr { th class="num" { "#" } th { "Shop" } th { "Product" } th class="num" { "Items" } th class="num" { "Revenue" } } }
                tbody {
                    @match &top {
                        Ok(rows) => {
                            @for t in rows {
                                tr { td class="num" { (t.rank) } td { (t.tenant_name) } td { (t.product_name) } td class="num" { (t.quantity_sold) } td class="num" { (t.total_sales) } }
                            }
                        },
                        Err(e) => { tr { td colspan="5" class="muted" { (e) } } },
                    }
                }
            }
            script src=(LIVE_SCRIPT) defer {}
        }
        section aria-labelledby="tenants" {
            h2 id="tenants" { "Tenants" }
            form method="post" action="/app/operator" class="panel" {
                label { "Name" input name="name" required maxlength="200"; }
                button type="submit" { "Create tenant" }
            }
            table id="tenant-list" {
                thead { tr { th class="num" { "ID" } th { "Name" } th { "Currency" } th { "Time zone" } th { "State" } th { "Change" } } }
                tbody {
                    @for t in tenants.iter().take(PAGE_TENANTS) {
                        tr data-tenant=(t.id) {
                            td class="num" { a href={ "/app/tenants/" (t.id) "/" } { (t.id) } }
                            td { (t.name.as_str()) }
                            td { (t.currency.code()) }
                            td { (t.time_zone.name()) }
                            td { @if t.suspended { "suspended" } @else { "active" } }
                            td {
                                form method="post" action={ "/app/tenants/" (t.id) "/settings" } class="inline" {
                                    input name="time_zone" value=(t.time_zone.name()) aria-label={ "Time zone of " (t.name.as_str()) } maxlength="64";
                                    button type="submit" class="quiet" { "Set zone" }
                                }
                                form method="post" action={ "/app/tenants/" (t.id) "/settings" } class="inline" {
                                    input type="hidden" name="suspended" value=(if t.suspended { "false" } else { "true" });
                                    button type="submit" class="quiet" { @if t.suspended { "Resume" } @else { "Suspend" } }
                                }
                            }
                        }
                    }
                }
            }
            @if let (true, Some(last)) = (more, tenants.get(PAGE_TENANTS - 1)) {
                p { a rel="next" href={ "/app/operator?after=" (last.id) } { "Next page" } }
            }
        }
    };
    Ok(html(frame(
        "Operator",
        viewer,
        None,
        Section::Operator,
        body,
    )))
}

#[derive(Deserialize)]
pub struct NewTenant {
    name: String,
}

/// `POST /app/operator`: a new tenant.
pub async fn create_tenant(
    state: web::Data<AppState>,
    viewer: Viewer,
    form: web::Form<NewTenant>,
) -> PageResult {
    let made = match Name::parse(&form.name) {
        Some(name) => match state.services() {
            Ok(services) => make_tenant(services, name, None)
                .await
                .map(|_| ())
                .map_err(ApiError::from),
            Err(e) => Err(e),
        },
        None => Err(ApiError::validation("name", Name::RULE)),
    };
    match made {
        Ok(()) => Ok(see_other("/app/operator?done=added")),
        Err(e) => {
            let (status, message) = refusal(e)?;
            let res = render(&state, &viewer, None, &Some(Err(message))).await?;
            Ok(with_status(res, status))
        }
    }
}

#[derive(Deserialize)]
pub struct TenantSettings {
    suspended: Option<bool>,
    time_zone: Option<String>,
}

/// `POST /app/tenants/{t}/settings`: suspend, resume or set the zone
/// (through the tenant's actor, as `PATCH /v1/tenants/{t}`; on the
/// instance that owns the tenant).
pub async fn change_tenant(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<TenantSettings>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let zone = form
        .time_zone
        .as_deref()
        .map(|z| time_zone(z).ok_or_else(|| ApiError::validation("time_zone", TIME_ZONE_RULE)))
        .transpose();
    let changed = match zone {
        Ok(time_zone) => {
            let patch = TenantPatch {
                name: None,
                suspended: form.suspended,
                time_zone,
                currency: None,
            };
            tenants::change_tenant(state.services()?, viewer.scope, tenant, patch)
                .await
                .map(|_| ())
                .map_err(ApiError::from)
        }
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(see_other("/app/operator?done=changed")),
        Err(e) => {
            let (status, message) = refusal(e)?;
            let res = render(&state, &viewer, None, &Some(Err(message))).await?;
            Ok(with_status(res, status))
        }
    }
}
