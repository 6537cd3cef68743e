//! `GET /v1/tenants/{tenantID}/events?after&limit&types`: a tenant's
//! events in `seq` order, for its back office and the operator.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::value::RawValue;

use super::pages::{DEFAULT_LIMIT, MAX_LIMIT};
use super::refunds::RefundBody;
use super::sales::SaleBody;
use super::{ApiError, AppState};
use crate::auth::PathIds;
use crate::domain::{Currency, Event, EventData, EventType, EventsQuery, TenantId, Timestamp};
use crate::service::events;

/// An event as the API (and every sink) shows it.
#[derive(Serialize)]
pub struct EventBody<'a> {
    id: String,
    seq: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "createdAt")]
    created_at: Timestamp,
    data: DataBody<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataBody<'a> {
    Sale(SaleBody<'a>),
    Refund(RefundBody<'a>),
    Catalog(Box<RawValue>),
}

impl<'a> EventBody<'a> {
    pub fn new(tenant: TenantId, event: &'a Event, currency: Currency) -> Self {
        let data = match &event.data {
            EventData::Sale(sale) => DataBody::Sale(SaleBody::new(sale, currency)),
            EventData::Refund(refund) => DataBody::Refund(RefundBody { refund, currency }),
            // Written by `serde_json` when the change committed; `null` if
            // a hand-made row is no JSON.
            EventData::Catalog(json) => {
                DataBody::Catalog(RawValue::from_string(json.clone()).unwrap_or_default())
            }
        };
        EventBody {
            id: format!("evt_{tenant}_{}", event.seq),
            seq: event.seq,
            kind: event.kind.as_str(),
            created_at: event.created_at,
            data,
        }
    }
}

/// An event as the feed's sinks send it: the API's JSON of it.
pub fn render_event(tenant: TenantId, event: &Event, currency: Currency) -> Vec<u8> {
    serde_json::to_vec(&EventBody::new(tenant, event, currency)).unwrap_or_default()
}

#[derive(Serialize)]
struct Events<'a> {
    events: Vec<EventBody<'a>>,
    #[serde(rename = "nextAfter")]
    next_after: u64,
}

pub async fn list_events(
    state: web::Data<AppState>,
    ids: PathIds,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let services = state.services()?;
    let tenant = ids.tenant_or_404()?;
    let query = events_query(req.query_string())?;
    let after = query.after;
    let (events, currency) = events::read_events(services, tenant, query).await?;
    let next_after = events.last().map_or(after, |e| e.seq);
    Ok(HttpResponse::Ok().json(Events {
        events: events
            .iter()
            .map(|e| EventBody::new(tenant, e, currency))
            .collect(),
        next_after,
    }))
}

/// `after` (default 0), `limit` (1 to 1000, default 100), `types` (a
/// comma-separated list of event types; all when absent).
fn events_query(query: &str) -> Result<EventsQuery, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::validation("query", "is not a valid query string"))?;
    let mut events = EventsQuery {
        after: 0,
        limit: DEFAULT_LIMIT,
        types: Vec::new(),
    };
    for (name, value) in pairs.iter() {
        match name.as_str() {
            "after" => {
                events.after = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| i64::try_from(*n).is_ok())
                    .ok_or_else(|| {
                        ApiError::validation("after", "must be an event's seq (0 or more)")
                    })?
            }
            "limit" => {
                events.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::validation("limit", "must be an integer between 1 and 1000")
                    })?
            }
            "types" => {
                for name in value.split(',') {
                    let kind = EventType::parse(name).ok_or_else(|| {
                        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                        ApiError::validation(
                            "types",
                            &format!("must list event types among {}", names.join(", ")),
                        )
                    })?;
                    if !events.types.contains(&kind) {
                        events.types.push(kind);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_reads_its_bounds_and_types_and_refuses_what_it_cannot_read() {
        let q = events_query("after=41&limit=2&types=sale.created,refund.created,sale.created")
            .unwrap();
        assert_eq!(
            q,
            EventsQuery {
                after: 41,
                limit: 2,
                types: vec![EventType::SaleCreated, EventType::RefundCreated],
            }
        );
        assert_eq!(events_query("").unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            "after=-1",
            "limit=0",
            "limit=1001",
            "types=sale.deleted",
            "types=",
        ] {
            assert!(events_query(bad).is_err(), "{bad} was read");
        }
    }
}
