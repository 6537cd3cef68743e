//! A tenant's events, pulled in `seq` order (the back office and the
//! operator; the role table keeps tills out).

use super::{ServiceError, Services};
use crate::domain::{Currency, Event, EventsQuery, TenantId};
use crate::store;

/// The tenant's events after `query.after`, and its currency (a sale's and
/// a refund's data name it). Read on the office's pool: read-your-writes,
/// as every event answered is committed.
pub async fn read_events(
    s: &Services,
    tenant: TenantId,
    query: EventsQuery,
) -> Result<(Vec<Event>, Currency), ServiceError> {
    let currency = super::tenant_currency(s, tenant).await?;
    let events = s
        .office
        .run(move |c| Box::pin(async move { store::read_events(c, tenant, &query).await }))
        .await?;
    Ok((events, currency))
}
