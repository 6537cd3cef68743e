//! A tenant's webhooks through the API: make (the secret answered once),
//! list, delete; an endpoint's delivery attempts, and sending one again.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::json_body;
use super::parse::parse_new_webhook;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{Delivery, Timestamp, Webhook};
use crate::service::webhooks;

/// An endpoint as the API shows it (never its secret, but when made).
#[derive(Serialize)]
struct WebhookBody<'a> {
    id: u64,
    url: &'a str,
    types: Vec<&'static str>,
    /// `active`, `failing` (retrying), or `failed` (retries stopped).
    state: &'static str,
    #[serde(rename = "failingSince", skip_serializing_if = "Option::is_none")]
    failing_since: Option<Timestamp>,
    /// The last event delivered (or passed over, not being of its types).
    #[serde(rename = "deliveredSeq")]
    delivered_seq: u64,
    #[serde(rename = "createdAt")]
    created_at: Timestamp,
}

impl<'a> From<&'a Webhook> for WebhookBody<'a> {
    fn from(w: &'a Webhook) -> Self {
        let state = match (w.failed, w.failing_since) {
            (true, _) => "failed",
            (false, Some(_)) => "failing",
            (false, None) => "active",
        };
        WebhookBody {
            id: w.id,
            url: w.url.as_str(),
            types: w.types.iter().map(|t| t.as_str()).collect(),
            state,
            failing_since: w.failing_since,
            delivered_seq: w.delivered_seq,
            created_at: w.created_at,
        }
    }
}

#[derive(Serialize)]
struct MadeWebhook<'a> {
    #[serde(flatten)]
    webhook: WebhookBody<'a>,
    /// Signs every delivery; shown here only.
    secret: &'a str,
}

#[derive(Serialize)]
struct DeliveryBody {
    id: u64,
    #[serde(rename = "webhookID")]
    webhook_id: u64,
    #[serde(rename = "eventID")]
    event_id: String,
    #[serde(rename = "eventSeq")]
    event_seq: u64,
    #[serde(rename = "attemptedAt")]
    attempted_at: Timestamp,
    delivered: bool,
    /// The receiver's HTTP status; `null` when it gave none.
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(rename = "durationMs")]
    duration_ms: u32,
}

impl DeliveryBody {
    fn new(tenant: crate::domain::TenantId, d: &Delivery) -> Self {
        DeliveryBody {
            id: d.id,
            webhook_id: d.webhook,
            event_id: format!("evt_{tenant}_{}", d.event_seq),
            event_seq: d.event_seq,
            attempted_at: d.attempted_at,
            delivered: d.delivered(),
            status: d.status,
            error: d.error.clone(),
            duration_ms: d.duration_ms,
        }
    }
}

/// An id of the path (`webhookID`, `deliveryID`), else 404.
fn path_id(req: &HttpRequest, name: &str, what: &str) -> Result<u64, ApiError> {
    req.match_info()
        .get(name)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no such {what}")))
}

/// `POST /v1/tenants/{tenantID}/webhooks` `{"url", "types"}`.
pub async fn create_webhook(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let services = state.services()?;
    let body = json_body(&req, payload).await?;
    let (url, types) = parse_new_webhook(&body)?;
    let new = webhooks::new_webhook(services, tenant, &url, types).await?;
    let (made, secret) = webhooks::create(services, tenant, new).await?;
    Ok(HttpResponse::Created().json(MadeWebhook {
        webhook: WebhookBody::from(&made),
        secret: &secret,
    }))
}

#[derive(Serialize)]
struct Webhooks<'a> {
    webhooks: Vec<WebhookBody<'a>>,
}

/// `GET /v1/tenants/{tenantID}/webhooks`, oldest first.
pub async fn list_webhooks(
    state: web::Data<AppState>,
    ids: PathIds,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let rows = webhooks::list(state.services()?, tenant).await?;
    Ok(HttpResponse::Ok().json(Webhooks {
        webhooks: rows.iter().map(WebhookBody::from).collect(),
    }))
}

/// `DELETE /v1/tenants/{tenantID}/webhooks/{webhookID}`: 204.
pub async fn delete_webhook(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let id = path_id(&req, "webhookID", "webhook for this tenant")?;
    webhooks::delete(state.services()?, tenant, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct Deliveries {
    deliveries: Vec<DeliveryBody>,
}

/// `GET /v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries`: the
/// latest 100 attempts, newest first.
pub async fn list_deliveries(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let id = path_id(&req, "webhookID", "webhook for this tenant")?;
    let rows = webhooks::deliveries(state.services()?, tenant, id).await?;
    Ok(HttpResponse::Ok().json(Deliveries {
        deliveries: rows.iter().map(|d| DeliveryBody::new(tenant, d)).collect(),
    }))
}

/// `POST /v1/tenants/{tenantID}/webhooks/{webhookID}/deliveries/{deliveryID}/retry`:
/// sends that attempt's event again now; answers the new attempt.
pub async fn retry_delivery(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = ids.tenant_or_404()?;
    let webhook = path_id(&req, "webhookID", "webhook for this tenant")?;
    let delivery = path_id(&req, "deliveryID", "delivery of this webhook")?;
    let attempt = webhooks::retry(state.services()?, tenant, webhook, delivery).await?;
    Ok(HttpResponse::Created().json(DeliveryBody::new(tenant, &attempt)))
}
