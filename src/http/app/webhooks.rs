//! Webhooks: add an endpoint (its secret shown once), see each endpoint's
//! state and latest deliveries, send a failed one again, delete one. The
//! service's operations do the work, as for the API.

use actix_web::{web, HttpRequest};
use maud::{html, Markup};
use serde::Deserialize;

use super::catalog::refusal;
use super::layout::{notice, page as frame, Section, Shop};
use super::{html, see_other, tenant_catalog, with_status, PageResult, Viewer};
use crate::auth::PathIds;
use crate::domain::{Delivery, EventType, Webhook};
use crate::http::{ApiError, AppState};
use crate::service::webhooks;

/// Attempts shown per endpoint.
const SHOWN: usize = 5;

#[derive(Deserialize, Default)]
pub struct WebhooksQuery {
    done: Option<String>,
}

/// `GET /app/tenants/{t}/webhooks`.
pub async fn page(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    query: web::Query<WebhooksQuery>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let outcome = match query.done.as_deref() {
        Some("deleted") => Some(Ok("Deleted: nothing more is sent to it.".to_string())),
        Some("retried") => Some(Ok("Sent again, and delivered.".to_string())),
        Some("retry-failed") => Some(Err(
            "Sent again; the receiver did not answer 2xx (see its latest deliveries).".to_string(),
        )),
        _ => None,
    };
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let body = webhooks_body(&state, shop, &outcome, None).await?;
    Ok(html(frame(
        "Webhooks",
        &viewer,
        Some(shop),
        Section::Webhooks,
        body,
    )))
}

/// The page's content: an endpoint just made (its secret, once), the
/// form, and each endpoint with its latest attempts.
async fn webhooks_body(
    state: &AppState,
    shop: Shop<'_>,
    outcome: &Option<Result<String, String>>,
    made: Option<(&Webhook, &str)>,
) -> Result<Markup, ApiError> {
    let tenant = shop.id;
    let services = state.services()?;
    let endpoints = webhooks::list(services, tenant).await?;
    let mut attempts = Vec::with_capacity(endpoints.len());
    for w in &endpoints {
        let mut shown = webhooks::deliveries(services, tenant, w.id).await?;
        shown.truncate(SHOWN);
        attempts.push(shown);
    }
    let base = format!("/app/tenants/{tenant}/webhooks");
    Ok(html! {
        (notice(outcome))
        @if let Some((webhook, secret)) = made {
            section aria-labelledby="new-webhook" class="card" {
                h2 id="new-webhook" { "New webhook to " (webhook.url.as_str()) }
                p { "Its signing secret, shown only this once: give it to the receiver, which checks the "
                    code { "Pos-Signature" } " header of every delivery with it." }
                p class="token" id="new-secret" { (secret) }
            }
        }
        form method="post" action=(base) class="panel" {
            label { "Receiver URL" input name="url" type="url" required maxlength="2048" placeholder="https://erp.example.com/pos-hook"; }
            fieldset {
                legend { "Events" }
                @for t in EventType::ALL {
                    label class="check" {
                        input type="checkbox" name="types" value=(t.as_str()) checked[matches!(t, EventType::SaleCreated | EventType::RefundCreated)];
                        " " (t.as_str())
                    }
                }
            }
            button type="submit" { "Add webhook" }
        }
        @if endpoints.is_empty() {
            p class="muted" { "No webhooks yet: the shop's systems can also pull its events (the API's " code { "/events" } ")." }
        }
        @for (w, shown) in endpoints.iter().zip(&attempts) {
            section class="card webhook" data-webhook=(w.id) aria-label={ "Webhook to " (w.url.as_str()) } {
                h2 { (w.url.as_str()) }
                p {
                    (state_label(w)) " · "
                    (w.types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "))
                    " · delivered through event " (w.delivered_seq)
                    @if let Some(since) = w.failing_since { " · failing since " (shop.time(since)) }
                }
                table class="deliveries" {
                    caption { "Latest deliveries" }
                    thead { tr { th { "When" } th { "Event" } th { "Answer" } th { "Took" } th { span class="visually-hidden" { "Again" } } } }
                    tbody {
                        @for d in shown { (attempt_row(&base, w, d, &shop)) }
                        @if shown.is_empty() { tr { td colspan="5" class="muted" { "Nothing sent yet." } } }
                    }
                }
                form method="post" action={ (base) "/" (w.id) "/delete" } class="inline" {
                    button type="submit" class="quiet" { "Delete webhook" }
                }
            }
        }
    })
}

fn state_label(w: &Webhook) -> Markup {
    match (w.failed, w.failing_since) {
        (true, _) => html! { span class="state off" { "Stopped after 72 hours of failures" } },
        (false, Some(_)) => html! { span class="state off" { "Failing, retrying" } },
        (false, None) => html! { span class="state on" { "Active" } },
    }
}

fn attempt_row(base: &str, w: &Webhook, d: &Delivery, shop: &Shop<'_>) -> Markup {
    html! {
        tr {
            td { (shop.time(d.attempted_at)) }
            td { code { "evt_" (w.tenant) "_" (d.event_seq) } }
            td {
                @if d.delivered() { span class="state on" { "Delivered" } " " }
                @else { span class="state off" { "Failed" } " " }
                @if let Some(status) = d.status { (status) " " }
                @if let Some(e) = &d.error { span class="muted" { (e) } }
            }
            td { (d.duration_ms) " ms" }
            td {
                @if !d.delivered() {
                    form method="post" action={ (base) "/" (w.id) "/deliveries/" (d.id) "/retry" } class="inline" {
                        button type="submit" class="quiet" { "Send again" }
                    }
                }
            }
        }
    }
}

/// `POST /app/tenants/{t}/webhooks` (`url`, `types` repeated): answered on
/// the page itself (the secret is never put in a URL).
pub async fn create(
    state: web::Data<AppState>,
    viewer: Viewer,
    ids: PathIds,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let url = form
        .iter()
        .find(|(k, _)| k == "url")
        .map_or("", |(_, v)| v.as_str());
    let types: Vec<EventType> = form
        .iter()
        .filter(|(k, _)| k == "types")
        .filter_map(|(_, v)| EventType::parse(v))
        .collect();
    let made = match state.services() {
        Ok(services) => match webhooks::new_webhook(services, tenant, url, types).await {
            Ok(new) => webhooks::create(services, tenant, new)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e),
    };
    let catalog = tenant_catalog(&state, tenant).await?;
    let shop = Shop::new(tenant, &catalog);
    let (body, status) = match made {
        Ok((webhook, secret)) => {
            let made = Some((&webhook, secret.as_str()));
            (webhooks_body(&state, shop, &None, made).await?, None)
        }
        Err(e) => {
            let (status, message) = refusal(e)?;
            let outcome = Some(Err(message));
            (
                webhooks_body(&state, shop, &outcome, None).await?,
                Some(status),
            )
        }
    };
    let res = html(frame(
        "Webhooks",
        &viewer,
        Some(shop),
        Section::Webhooks,
        body,
    ));
    Ok(match status {
        Some(status) => with_status(res, status),
        None => res,
    })
}

/// An id of the path, else 404.
fn path_id(req: &HttpRequest, name: &str) -> Result<u64, ApiError> {
    req.match_info()
        .get(name)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::NotFound("no such webhook".into()))
}

/// `POST /app/tenants/{t}/webhooks/{webhookID}/delete`.
pub async fn delete(state: web::Data<AppState>, ids: PathIds, req: HttpRequest) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    webhooks::delete(state.services()?, tenant, path_id(&req, "webhookID")?).await?;
    Ok(see_other(&format!(
        "/app/tenants/{tenant}/webhooks?done=deleted"
    )))
}

/// `POST /app/tenants/{t}/webhooks/{webhookID}/deliveries/{deliveryID}/retry`.
pub async fn retry(state: web::Data<AppState>, ids: PathIds, req: HttpRequest) -> PageResult {
    let tenant = ids.tenant_or_404()?;
    let (webhook, delivery) = (path_id(&req, "webhookID")?, path_id(&req, "deliveryID")?);
    let attempt = webhooks::retry(state.services()?, tenant, webhook, delivery).await?;
    let done = if attempt.delivered() {
        "retried"
    } else {
        "retry-failed"
    };
    Ok(see_other(&format!(
        "/app/tenants/{tenant}/webhooks?done={done}"
    )))
}
