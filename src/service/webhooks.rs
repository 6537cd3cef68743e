//! A tenant's webhooks: made (the secret shown once), listed, deleted;
//! their delivery attempts, and sending one again. Deliveries themselves
//! are the webhook feed's (`actors::feed::webhooks`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::{ServiceError, Services};
use crate::actors::feed::webhooks::{Reload, Retry, RetryError};
use crate::domain::{
    reachable, Delivery, EventType, NewWebhook, TenantId, Webhook, WebhookUrl,
    MAX_WEBHOOKS_PER_TENANT, PRIVATE_TARGET,
};
use crate::store;

/// Attempts a deliveries list shows.
pub const DELIVERIES_SHOWN: usize = 100;
/// Longest a target's name may take to resolve.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks a target URL and its types: the URL by the deployment's rules,
/// its name resolved now (every address must be allowed).
pub async fn new_webhook(
    s: &Services,
    tenant: TenantId,
    url: &str,
    types: Vec<EventType>,
) -> Result<NewWebhook, ServiceError> {
    let invalid = |field, problem: &str| ServiceError::Invalid {
        field,
        problem: problem.to_string(),
    };
    // A tenant at its limit makes no name lookups.
    if list(s, tenant).await?.len() >= MAX_WEBHOOKS_PER_TENANT {
        return Err(ServiceError::TooManyWebhooks(MAX_WEBHOOKS_PER_TENANT));
    }
    let url = WebhookUrl::parse(url, s.webhook_rules).map_err(|p| invalid("url", p))?;
    if types.is_empty() {
        return Err(invalid("types", "must name at least one event type"));
    }
    let Some((host, port)) = url.host_and_port() else {
        return Err(invalid("url", "must name a host"));
    };
    let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|addrs| addrs.collect::<Vec<_>>())
        .filter(|addrs| !addrs.is_empty())
        .ok_or_else(|| invalid("url", "names a host that does not resolve"))?;
    if resolved.iter().any(|a| !reachable(a.ip(), s.webhook_rules)) {
        return Err(invalid("url", PRIVATE_TARGET));
    }
    Ok(NewWebhook { url, types })
}

/// Makes an endpoint receiving the tenant's events from the next one on;
/// the secret that signs them is answered here only.
pub async fn create(
    s: &Services,
    tenant: TenantId,
    new: NewWebhook,
) -> Result<(Webhook, String), ServiceError> {
    known_tenant(s, tenant).await?;
    let secret = new_secret()?;
    let made = {
        let secret = secret.clone();
        s.office
            .run(move |c| {
                Box::pin(async move {
                    store::create_webhook(c, tenant, &new, &secret, MAX_WEBHOOKS_PER_TENANT).await
                })
            })
            .await?
    };
    let webhook = made.ok_or(ServiceError::TooManyWebhooks(MAX_WEBHOOKS_PER_TENANT))?;
    s.webhooks.do_send(Reload { tenant });
    Ok((webhook, secret))
}

pub async fn list(s: &Services, tenant: TenantId) -> Result<Vec<Webhook>, ServiceError> {
    known_tenant(s, tenant).await?;
    Ok(s.office
        .run(move |c| Box::pin(async move { store::list_webhooks(c, tenant).await }))
        .await?)
}

pub async fn delete(s: &Services, tenant: TenantId, id: u64) -> Result<(), ServiceError> {
    known_tenant(s, tenant).await?;
    let deleted = s
        .office
        .run(move |c| Box::pin(async move { store::delete_webhook(c, tenant, id).await }))
        .await?;
    if !deleted {
        return Err(ServiceError::NoSuchWebhook);
    }
    s.webhooks.do_send(Reload { tenant });
    Ok(())
}

/// The endpoint's latest attempts, newest first.
pub async fn deliveries(
    s: &Services,
    tenant: TenantId,
    id: u64,
) -> Result<Vec<Delivery>, ServiceError> {
    known_tenant(s, tenant).await?;
    s.office
        .run(move |c| {
            Box::pin(async move { store::list_deliveries(c, tenant, id, DELIVERIES_SHOWN).await })
        })
        .await?
        .ok_or(ServiceError::NoSuchWebhook)
}

/// Sends an attempt's event again now; the new attempt.
pub async fn retry(
    s: &Services,
    tenant: TenantId,
    webhook: u64,
    delivery: u64,
) -> Result<Delivery, ServiceError> {
    known_tenant(s, tenant).await?;
    let retry = Retry {
        tenant,
        webhook,
        delivery,
    };
    match s.webhooks.send(retry).await {
        Ok(Ok(attempt)) => Ok(attempt),
        Ok(Err(RetryError::NotFound)) => Err(ServiceError::NoSuchDelivery),
        Ok(Err(RetryError::Busy)) => Err(ServiceError::RetryRunning),
        Ok(Err(RetryError::Unavailable)) => {
            Err(crate::actors::lookup::LookupError::Unavailable.into())
        }
        Err(_) => Err(ServiceError::NotRunning("the webhook feed")),
    }
}

/// A tenant this instance serves (else 404, as for its other resources).
async fn known_tenant(s: &Services, tenant: TenantId) -> Result<(), ServiceError> {
    super::tenant_currency(s, tenant).await.map(|_| ())
}

/// `whsec_` and 32 random bytes, base64url.
fn new_secret() -> Result<String, ServiceError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| ServiceError::NotRunning("the OS's random source"))?;
    Ok(format!("whsec_{}", URL_SAFE_NO_PAD.encode(bytes)))
}
