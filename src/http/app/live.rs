//! The live top sellers on the operator's page: Server-Sent Events. One
//! task per server reads the top sellers once a second while anyone
//! watches and publishes them when they changed; every stream only
//! forwards the latest (so a viewer gets at most one update a second,
//! and a thousand viewers cost one read a second, not a thousand). Streams
//! are bounded per key and in all; each one ends within a second of its
//! key's revocation or its session's sign-out (on any instance: both
//! reach every cache within 2 s), or when its session would idle out, or
//! when the server stops.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

use super::operator::LIVE_ROWS;
use super::{PageResult, Viewer};
use crate::auth::IDLE_LIMIT;
use crate::clock::{UnixMs, UnixSecs};
use crate::domain::{KeyId, RankBy, TenantId};
use crate::http::{ApiError, AppState};
use crate::service::sales::top_sellers;
use crate::service::tenants::find_tenants;
use crate::service::{ServiceError, Services};

/// How often the top sellers are read while someone watches.
const PERIOD: Duration = Duration::from_secs(1);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Streams open at once on this server, whoever holds them.
const MAX_STREAMS: usize = 10_000;

/// The latest top sellers, and who is watching.
pub struct LiveTopSellers {
    latest: watch::Sender<Option<Bytes>>,
    /// Streams per key (`None`: keys are off, one bound for all).
    per_key: DashMap<Option<KeyId>, usize>,
    total: AtomicUsize,
    max_per_key: usize,
    /// Set when the server stops: streams end, so the graceful stop does
    /// not wait for viewers to leave.
    stopping: AtomicBool,
}

impl LiveTopSellers {
    pub fn new(max_per_key: usize) -> LiveTopSellers {
        LiveTopSellers {
            latest: watch::Sender::new(None),
            per_key: DashMap::new(),
            total: AtomicUsize::new(0),
            max_per_key,
            stopping: AtomicBool::new(false),
        }
    }

    /// Ends every stream (the server is stopping).
    pub fn close(&self) {
        self.stopping.store(true, Ordering::Release);
        self.latest.send_replace(None);
    }

    /// A place for one more stream of `key`, if the bounds allow it.
    fn admit(self: &Arc<Self>, key: Option<KeyId>) -> Option<StreamSlot> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let mut held = self.per_key.entry(key.clone()).or_insert(0);
        if *held >= self.max_per_key {
            drop(held);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        *held += 1;
        Some(StreamSlot {
            live: self.clone(),
            key,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// One open stream's place; freed when the stream ends.
struct StreamSlot {
    live: Arc<LiveTopSellers>,
    key: Option<KeyId>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.live.total.fetch_sub(1, Ordering::AcqRel);
        let emptied = match self.live.per_key.get_mut(&self.key) {
            Some(mut held) => {
                *held = held.saturating_sub(1);
                *held == 0
            }
            None => false,
        };
        if emptied {
            self.live.per_key.remove_if(&self.key, |_, held| *held == 0);
        }
    }
}

#[derive(Serialize)]
struct Update {
    rows: Vec<LiveRow>,
    /// When it was read, as the page shows it (`15:29:57 UTC`).
    #[serde(rename = "asOf")]
    as_of: String,
}

/// Now, as the operator's page says "as of" (the operator has no zone).
pub(super) fn as_of_now() -> String {
    chrono::Utc::now().format("%H:%M:%S UTC").to_string()
}

/// A row of the live table, as the page shows it: tenants by name, money
/// in each tenant's currency.
#[derive(Serialize, PartialEq, Eq)]
pub(super) struct LiveRow {
    pub rank: usize,
    #[serde(rename = "tenantName")]
    pub tenant_name: String,
    #[serde(rename = "productName")]
    pub product_name: String,
    #[serde(rename = "quantitySold")]
    pub quantity_sold: u64,
    #[serde(rename = "totalSales")]
    pub total_sales: String,
}

/// The top sellers of all tenants, with their tenants' names.
pub(super) async fn live_rows(services: &Services) -> Result<Vec<LiveRow>, ServiceError> {
    let top = top_sellers(services, LIVE_ROWS, RankBy::Quantity).await?;
    let mut ids: Vec<TenantId> = top.iter().map(|t| t.tenant_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // Without names (MySQL away a moment) the table still moves: by id.
    let tenants = find_tenants(services, ids).await.unwrap_or_default();
    Ok(top
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let tenant = tenants.iter().find(|r| r.id == t.tenant_id);
            LiveRow {
                rank: i + 1,
                tenant_name: tenant.map_or_else(
                    || format!("tenant {}", t.tenant_id),
                    |r| r.name.as_str().to_string(),
                ),
                product_name: t.name.to_string(),
                quantity_sold: t.quantity,
                total_sales: tenant
                    .map_or_else(|| t.revenue.to_string(), |r| r.currency.format(t.revenue)),
            }
        })
        .collect())
}

/// Reads the top sellers every [`PERIOD`] while a stream is open, and
/// publishes them when they changed. Runs for the server's life.
pub async fn publish(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<Vec<u8>> = None;
    loop {
        tick.tick().await;
        let open = state.live.open();
        state.metrics.app_live_streams.set(open as i64);
        if open == 0 {
            // A new viewer must not be sent a stale table first.
            if last.take().is_some() {
                state.live.latest.send_replace(None);
            }
            continue;
        }
        let Ok(services) = state.services() else {
            continue;
        };
        let Ok(rows) = live_rows(services).await else {
            continue;
        };
        let Ok(rows_json) = serde_json::to_vec(&rows) else {
            continue;
        };
        if last.as_ref() == Some(&rows_json) {
            continue;
        }
        let update = Update {
            rows,
            as_of: as_of_now(),
        };
        if let Ok(json) = serde_json::to_string(&update) {
            state
                .live
                .latest
                .send_replace(Some(Bytes::from(format!("data: {json}\n\n"))));
            last = Some(rows_json);
        }
    }
}

/// What a stream holds between its events.
struct Watching {
    state: web::Data<AppState>,
    updates: watch::Receiver<Option<Bytes>>,
    key: Option<KeyId>,
    /// When the session would idle out: the stream is no use of the
    /// pages, so it ends then.
    idles_out_at: UnixSecs,
    /// When the session began: a sign-out ends it.
    session_began: UnixMs,
    _slot: StreamSlot,
    ended: bool,
}

/// `GET /app/operator/live`: `text/event-stream` of the top sellers, each
/// event the whole table as JSON.
pub async fn stream(state: web::Data<AppState>, viewer: Viewer) -> PageResult {
    if state.live.stopping.load(Ordering::Acquire) {
        return Err(ApiError::Unavailable("the server is stopping".into()).into());
    }
    let slot = state
        .live
        .admit(viewer.key_id.clone())
        .ok_or(ApiError::RateLimited {
            retry_after_secs: 5,
        })?;
    let mut updates = state.live.latest.subscribe();
    updates.mark_changed();
    let watching = Watching {
        state: state.clone(),
        updates,
        key: viewer.key_id.clone(),
        idles_out_at: viewer.session_since.plus(IDLE_LIMIT),
        session_began: viewer.session_began,
        _slot: slot,
        ended: false,
    };
    let events = futures_util::stream::unfold(watching, |mut w| async move {
        if w.ended {
            return None;
        }
        let event = next_event(&mut w).await;
        if event.is_none() {
            w.ended = true;
        }
        Some((Ok::<_, actix_web::Error>(event.unwrap_or_default()), w))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}

/// The stream's next bytes: an update, a keep-alive comment, or `None`
/// when the stream must end (its key was revoked, its session was signed
/// out or idled out, or the server stops).
async fn next_event(w: &mut Watching) -> Option<Bytes> {
    let mut quiet = Duration::ZERO;
    let mut event = None;
    loop {
        // Checked again right before anything is sent, not only before the
        // wait: a revocation or sign-out during it sends nothing more.
        if !still_watching(w).await {
            return None;
        }
        if event.is_some() {
            return event;
        }
        match tokio::time::timeout(PERIOD, w.updates.changed()).await {
            Ok(Ok(())) => event = w.updates.borrow_and_update().clone(),
            Ok(Err(_)) => return None,
            Err(_) => {
                quiet += PERIOD;
                if quiet >= KEEP_ALIVE {
                    event = Some(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }
}

/// Whether the stream may go on: the server runs, and its session is
/// open (not idled out or signed out, its key not revoked).
async fn still_watching(w: &Watching) -> bool {
    if w.state.live.stopping.load(Ordering::Acquire) || UnixSecs::now() > w.idles_out_at {
        return false;
    }
    let Some(key) = &w.key else {
        return true;
    };
    let Some(auth) = w.state.auth.as_ref() else {
        return false;
    };
    match auth.key_by_id(key).await {
        Ok(k) => auth.session_open(&k, w.session_began).await,
        Err(_) => false,
    }
}
