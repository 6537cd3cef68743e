//! WebhookFeed: delivers each endpoint's events (of its types) in `seq`
//! order, each a signed POST answered 2xx within 10 s, else retried with
//! doubling pauses (with jitter) for 72 hours, then the endpoint is marked
//! failed until a manual retry. A tenant's endpoints run as a task of
//! their own on this actor's thread, each endpoint on its own, so a slow
//! or failing receiver holds up only itself; deliveries in flight are
//! bounded over all endpoints. Only endpoints with something to deliver
//! run: an idle one ends, and its tenant's next commit (told by the tap)
//! starts it again from what MySQL holds. The
//! client follows no redirect and connects only to addresses its resolver
//! allows (no loopback, private or link-local unless the deployment says).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_tls::connect::{Resolve, Resolver};
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use hmac::{Hmac, Mac};
use mysql_async::Pool;
use sha2::Sha256;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::{running_on, Interest, Pending, Render, Wake, STUCK_PAUSE, UNKNOWN_HEAD};
use crate::domain::{
    clip, reachable, Delivery, Event, Shard, TargetRules, TenantId, Timestamp, Webhook,
};
use crate::metrics::Metrics;
use crate::store::{self, StoreError};

/// This sink's name in metric labels.
pub const SINK: &str = "webhooks";
/// A delivery is a 2xx within this long.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries stop this long after an event first failed.
const GIVE_UP_AFTER: Duration = Duration::from_secs(72 * 3600);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Deliveries in flight at once, over all endpoints, and of one tenant.
const MAX_IN_FLIGHT: usize = 64;
const MAX_IN_FLIGHT_PER_TENANT: usize = 8;
/// Events read per run of an endpoint.
const PAGE: usize = 100;
/// An endpoint with nothing to deliver for this long ends (its tenant's
/// next commit starts it again): idle endpoints are neither polled nor
/// held in memory.
const LINGER: Duration = Duration::from_secs(30);
/// Tenants loading their endpoints at once.
const MAX_STARTING: usize = 32;
/// The pause after MySQL failed a read or a write.
const STORE_PAUSE: Duration = Duration::from_secs(5);
/// The pause before reading again when a read did not reach the head told.
const BEHIND_PAUSE: Duration = Duration::from_secs(1);
/// How often finished runs are forgotten and the lag reported.
const TICK: Duration = Duration::from_secs(1);
/// Attempts are kept this many days.
const KEEP_DAYS: u32 = 7;

#[derive(Clone)]
pub struct WebhookSettings {
    pub database_url: String,
    pub shard: Shard,
    pub render: Render,
    pub rules: TargetRules,
}

/// What every tenant's run shares.
struct Shared {
    pool: Pool,
    client: awc::Client,
    render: Render,
    metrics: Metrics,
    interest: Interest,
    in_flight: Semaphore,
    /// Tenants loading their endpoints and making their first pass (a
    /// boot starts every tenant that has endpoints: these many at once).
    starting: Arc<Semaphore>,
    /// Each tenant's share of `in_flight` (its endpoints and retries),
    /// so one tenant's slow receivers cannot take every slot.
    tenant_slots: RefCell<HashMap<TenantId, Rc<Semaphore>>>,
}

/// A tenant whose endpoints are delivering (or were, less than
/// [`LINGER`] ago). Idle endpoints cost nothing: they end, and the tenant's
/// next commit starts them again, read afresh from MySQL.
struct Active {
    /// The newest head told; endpoints waiting for news watch it.
    news: watch::Sender<u64>,
    seen: Rc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

pub struct WebhookFeed {
    settings: WebhookSettings,
    /// Endpoints with a manual retry in flight (one at a time each).
    retrying: HashSet<u64>,
    pending: Pending,
    shared: Rc<Shared>,
    active: HashMap<TenantId, Active>,
}

/// A tenant's endpoints changed (one was made or deleted): read them again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reload {
    pub tenant: TenantId,
}

/// Send one attempt's event again, now; answers the new attempt.
#[derive(Message)]
#[rtype(result = "Result<Delivery, RetryError>")]
pub struct Retry {
    pub tenant: TenantId,
    pub webhook: u64,
    pub delivery: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("no such delivery of this webhook")]
    NotFound,
    #[error("a retry of this webhook is already running")]
    Busy,
    #[error("MySQL unavailable")]
    Unavailable,
}

impl WebhookFeed {
    /// Builds the actor (call inside its arbiter: the pool and the client
    /// live there); it takes what its tap leaves in `pending`, and keeps
    /// in `interest` the tenants that have endpoints.
    pub fn new(
        settings: WebhookSettings,
        pending: Pending,
        interest: Interest,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        let pool = Pool::new(store::pool_opts(&settings.database_url, 4)?);
        let shared = Rc::new(Shared {
            pool,
            client: client(settings.rules),
            render: settings.render,
            metrics,
            interest,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            starting: Arc::new(Semaphore::new(MAX_STARTING)),
            tenant_slots: Default::default(),
        });
        Ok(WebhookFeed {
            settings,
            retrying: Default::default(),
            pending,
            shared,
            active: HashMap::new(),
        })
    }

    /// Learns which of the shard's tenants have endpoints and starts each
    /// (events may have committed while no instance delivered them).
    fn start_all(&mut self, ctx: &mut Context<Self>) {
        let pool = self.shared.pool.clone();
        let read = async move {
            let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
            store::webhook_tenants(&mut conn).await
        };
        ctx.spawn(read.into_actor(self).map(|found, act, ctx| {
            let tenants = match found {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "webhooks not read; trying again");
                    ctx.run_later(Duration::from_secs(5), |act, ctx| act.start_all(ctx));
                    return;
                }
            };
            let shard = act.settings.shard;
            for tenant in tenants.into_iter().filter(|t| shard.owns(*t)) {
                // News first, then the read: nothing committed between is
                // missed.
                act.shared.interest.mark(tenant, true);
                act.start(tenant, UNKNOWN_HEAD);
            }
        }));
    }

    /// `tenant` has events up to `head`: its running endpoints hear of it,
    /// or its endpoints start.
    fn start(&mut self, tenant: TenantId, head: u64) {
        if let Some(a) = self.active.get(&tenant) {
            if !a.task.is_finished() {
                a.news.send_modify(|h| *h = newer(*h, head));
                return;
            }
        }
        let (news, watching) = watch::channel(head);
        let seen = Rc::new(Seen::default());
        let run = run_tenant(self.shared.clone(), tenant, watching, seen.clone());
        let task = actix::spawn(run);
        self.active.insert(tenant, Active { news, seen, task });
    }

    /// Stops the tenant's endpoints and starts them again from what MySQL
    /// holds now: the latest restart's read comes after every change before
    /// it, so no older read can overwrite a newer state.
    fn restart(&mut self, tenant: TenantId) {
        // Its run unmarks it if it has no endpoint to deliver to.
        self.shared.interest.mark(tenant, true);
        if let Some(a) = self.active.remove(&tenant) {
            a.task.abort();
        }
        self.start(tenant, UNKNOWN_HEAD);
    }

    /// Forgets tenants whose endpoints all ended; reports the lag.
    fn tick(&mut self) {
        self.active.retain(|_, a| !a.task.is_finished());
        self.shared
            .tenant_slots
            .borrow_mut()
            .retain(|_, slots| Rc::strong_count(slots) > 1);
        self.report_lag();
    }

    /// Events committed and not delivered, over running endpoints; and how
    /// many run.
    fn report_lag(&self) {
        let running: usize = self
            .active
            .values()
            .map(|a| a.seen.cursors.borrow().len())
            .sum();
        self.shared
            .metrics
            .webhook_endpoints_running
            .set(running as i64);
        let lag: u64 = self
            .active
            .values()
            .map(|a| {
                let head = newer(a.seen.head.get(), *a.news.borrow());
                a.seen
                    .cursors
                    .borrow()
                    .values()
                    .map(|c| head.saturating_sub(*c))
                    .sum::<u64>()
            })
            .sum();
        self.shared
            .metrics
            .feed_lag
            .with_label_values(&[SINK])
            .set(lag as i64);
    }
}

/// Of a head held and one told, the one to keep.
fn newer(held: u64, told: u64) -> u64 {
    match (held, told) {
        (_, UNKNOWN_HEAD) => held,
        (UNKNOWN_HEAD, _) => told,
        _ => held.max(told),
    }
}

impl Actor for WebhookFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(256);
        self.start_all(ctx);
        ctx.run_interval(TICK, |act, _| act.tick());
        ctx.run_interval(Duration::from_secs(3600), |act, ctx| {
            let pool = act.shared.pool.clone();
            let prune = async move {
                let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
                store::prune_deliveries(&mut conn, KEEP_DAYS).await
            };
            ctx.spawn(prune.into_actor(act).map(|outcome, _, _| {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "old webhook deliveries not pruned");
                }
            }));
        });
    }
}

impl Handler<Wake> for WebhookFeed {
    type Result = ();

    fn handle(&mut self, _: Wake, _: &mut Context<Self>) {
        // (The lag is reported each tick.)
        for (tenant, head) in self.pending.take() {
            self.start(tenant, head);
        }
    }
}

impl Handler<Reload> for WebhookFeed {
    type Result = ();

    fn handle(&mut self, msg: Reload, _: &mut Context<Self>) {
        self.restart(msg.tenant);
    }
}

impl Handler<Retry> for WebhookFeed {
    type Result = ResponseActFuture<Self, Result<Delivery, RetryError>>;

    fn handle(&mut self, msg: Retry, _: &mut Context<Self>) -> Self::Result {
        let (shared, webhook, tenant) = (self.shared.clone(), msg.webhook, msg.tenant);
        if !self.retrying.insert(webhook) {
            return Box::pin(actix::fut::ready(Err(RetryError::Busy)));
        }
        let retry = async move { retry_one(&shared, msg).await };
        Box::pin(retry.into_actor(self).map(move |outcome, act, _| {
            act.retrying.remove(&webhook);
            let (attempt, resumed) = outcome?;
            if resumed {
                // It failed and answers again: its endpoints start anew
                // from the state the retry stored, and deliver at once.
                act.restart(tenant);
            }
            Ok(attempt)
        }))
    }
}

/// Sends the event of one attempt again and records the new attempt; and
/// whether the endpoint resumed: the event it was stuck on is delivered
/// now (its cursor moves past it), or it had given up and its receiver
/// answers again. A retry of another event leaves a failing endpoint's
/// state (and its 72 hours) as they were.
async fn retry_one(shared: &Shared, msg: Retry) -> Result<(Delivery, bool), RetryError> {
    let unavailable = |e: StoreError| {
        tracing::warn!(error = %e, "a webhook retry could not reach MySQL");
        RetryError::Unavailable
    };
    let mut conn = shared
        .pool
        .get_conn()
        .await
        .map_err(|e| unavailable(e.into()))?;
    let earlier = store::find_delivery(&mut conn, msg.tenant, msg.webhook, msg.delivery)
        .await
        .map_err(unavailable)?
        .ok_or(RetryError::NotFound)?;
    let (webhook, secret) = store::find_webhook(&mut conn, msg.tenant, msg.webhook)
        .await
        .map_err(unavailable)?
        .ok_or(RetryError::NotFound)?;
    let page = store::feed_page(
        &mut conn,
        &[(msg.tenant, earlier.event_seq.saturating_sub(1))],
        1,
    )
    .await
    .map_err(unavailable)?;
    let event = page
        .events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.seq == earlier.event_seq)
        .ok_or(RetryError::NotFound)?;
    drop(conn);
    let currency = page
        .currencies
        .get(&msg.tenant)
        .copied()
        .unwrap_or_default();
    let body = (shared.render)(msg.tenant, event, currency);
    let mut attempt = deliver(shared, &webhook, &secret, event.seq, body).await;
    let mut conn = shared
        .pool
        .get_conn()
        .await
        .map_err(|e| unavailable(e.into()))?;
    store::record_deliveries(&mut conn, std::slice::from_ref(&attempt))
        .await
        .map_err(unavailable)?;
    attempt.id = conn.last_insert_id().unwrap_or(0);
    let stuck = earlier.event_seq == webhook.delivered_seq + 1;
    let resumed = attempt.delivered() && (stuck || webhook.failed);
    if resumed {
        let cursor = if stuck {
            earlier.event_seq
        } else {
            webhook.delivered_seq
        };
        store::save_webhook_state(&mut conn, webhook.id, cursor, None, false)
            .await
            .map_err(unavailable)?;
    }
    Ok((attempt, resumed))
}

/// A tenant's run: reads its endpoints (and its head) and delivers each.
/// An endpoint idle for [`LINGER`] rests, and goes on at the tenant's next
/// news; the run ends once every endpoint rests or gave up, and the
/// tenant's next commit starts it anew.
async fn run_tenant(
    shared: Rc<Shared>,
    tenant: TenantId,
    mut news: watch::Receiver<u64>,
    seen: Rc<Seen>,
) {
    let Ok(starting) = shared.starting.clone().acquire_owned().await else {
        return;
    };
    let endpoints = loop {
        match load_tenant(&shared, tenant).await {
            Ok((endpoints, head)) => {
                seen.head.set(head);
                break endpoints;
            }
            Err(e) => {
                tracing::warn!(error = %e, %tenant, "webhooks not read; trying again");
                tokio::time::sleep(STORE_PAUSE).await;
            }
        }
    };
    // Endpoints that gave up wait for a manual retry (which restarts
    // the tenant): no news needed until then.
    let endpoints: Vec<_> = endpoints.into_iter().filter(|(w, _)| !w.failed).collect();
    shared.interest.mark(tenant, !endpoints.is_empty());
    // The slot is given back once every endpoint read its first page.
    let starting = Rc::new(starting);
    let mut running = FuturesUnordered::new();
    for (webhook, secret) in endpoints {
        let endpoint = Endpoint::new(webhook, secret);
        running.push(endpoint.run(&shared, news.clone(), &seen, Some(starting.clone())));
    }
    drop(starting);
    news.borrow_and_update();
    let mut resting: Vec<Endpoint> = Vec::new();
    loop {
        tokio::select! {
            // News first: a run that ends has heard everything told.
            biased;
            told = news.changed(), if !resting.is_empty() => {
                if told.is_err() {
                    break;
                }
                for endpoint in resting.drain(..) {
                    running.push(endpoint.run(&shared, news.clone(), &seen, None));
                }
            }
            ended = running.next() => match ended {
                // It rests having read after the latest news.
                Some(Some(endpoint)) => {
                    news.borrow_and_update();
                    resting.push(endpoint);
                }
                Some(None) => {}
                None => break,
            },
        }
    }
}

/// The tenant's live endpoints, with their secrets, and its head.
async fn load_tenant(
    shared: &Shared,
    tenant: TenantId,
) -> Result<(Vec<(Webhook, String)>, u64), StoreError> {
    let mut conn = shared.pool.get_conn().await?;
    let endpoints = store::live_webhooks(&mut conn, tenant).await?;
    let heads = store::event_heads(&mut conn, &[tenant], false).await?;
    Ok((endpoints, heads.get(&tenant).copied().unwrap_or(0)))
}

/// What a tenant's run shows the actor, for the lag.
#[derive(Default)]
struct Seen {
    /// The head read when the run started.
    head: Cell<u64>,
    /// Each running endpoint's cursor.
    cursors: RefCell<HashMap<u64, u64>>,
}

/// One endpoint's delivery state, owned by its run.
struct Endpoint {
    webhook: Webhook,
    secret: String,
    /// Attempts of the event now failing (for the pause before the next).
    failures: u32,
}

/// What an endpoint's run found.
enum Next {
    /// Nothing left after its cursor.
    Idle,
    /// Delivered what it read; read on.
    More,
    /// Its next event failed: try again after this long.
    Retry(Duration),
    /// It failed for 72 hours: stop until a manual retry.
    GiveUp,
    /// Its next event's row cannot be read: read it again later.
    Stuck,
}

impl Endpoint {
    fn new(webhook: Webhook, secret: String) -> Endpoint {
        Endpoint {
            webhook,
            secret,
            failures: 0,
        }
    }

    /// Delivers until idle for [`LINGER`] (then hands itself back to rest)
    /// or given up (`None`); `starting` is held until its first page is read.
    async fn run(
        mut self,
        shared: &Shared,
        mut news: watch::Receiver<u64>,
        seen: &Seen,
        mut starting: Option<Rc<OwnedSemaphorePermit>>,
    ) -> Option<Endpoint> {
        let id = self.webhook.id;
        let rests = loop {
            news.borrow_and_update();
            let next = self.run_once(shared, &mut starting).await;
            seen.cursors
                .borrow_mut()
                .insert(id, self.webhook.delivered_seq);
            match next {
                Ok(Next::More) => {}
                Ok(Next::Idle) if self.behind(&news, seen) => {
                    // Told of events its read did not see (a node behind
                    // the one that committed?): read again shortly.
                    tokio::time::sleep(BEHIND_PAUSE).await;
                }
                Ok(Next::Idle) => {
                    if !matches!(
                        tokio::time::timeout(LINGER, news.changed()).await,
                        Ok(Ok(()))
                    ) {
                        break true;
                    }
                }
                Ok(Next::Retry(after)) => tokio::time::sleep(after).await,
                Ok(Next::GiveUp) => break false,
                Ok(Next::Stuck) => {
                    shared
                        .metrics
                        .feed_failures
                        .with_label_values(&[SINK])
                        .inc();
                    tokio::time::sleep(STUCK_PAUSE).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, webhook = id, "webhook deliveries paused: MySQL");
                    tokio::time::sleep(STORE_PAUSE).await;
                }
            }
        };
        seen.cursors.borrow_mut().remove(&id);
        rests.then_some(self)
    }

    /// Whether its tenant has events past its cursor, as told or read.
    fn behind(&self, news: &watch::Receiver<u64>, seen: &Seen) -> bool {
        let head = newer(seen.head.get(), *news.borrow());
        head != UNKNOWN_HEAD && head > self.webhook.delivered_seq
    }

    /// Reads the events after the cursor and delivers them in order (those
    /// not of its types are passed over) until one fails; stores the
    /// attempts and the cursor.
    async fn run_once(
        &mut self,
        shared: &Shared,
        starting: &mut Option<Rc<OwnedSemaphorePermit>>,
    ) -> Result<Next, StoreError> {
        let w = &self.webhook;
        let after = w.delivered_seq;
        let page = {
            let mut conn = shared.pool.get_conn().await?;
            store::feed_page(&mut conn, &[(w.tenant, after)], PAGE).await?
        };
        starting.take();
        let events: Vec<&Event> = page.events.iter().map(|(_, e)| e).collect();
        let run = running_on(after, events.iter().map(|e| e.seq));
        if run == 0 {
            return Ok(if page.stuck_at(w.tenant, after) {
                Next::Stuck
            } else {
                Next::Idle
            });
        }
        let currency = page.currencies.get(&w.tenant).copied().unwrap_or_default();
        let mut attempts = Vec::new();
        let mut cursor = after;
        let mut failed = false;
        for event in &events[..run] {
            if !w.wants(event.kind) {
                cursor = event.seq;
                continue;
            }
            let body = (shared.render)(w.tenant, event, currency);
            let attempt = deliver(shared, w, &self.secret, event.seq, body).await;
            let delivered = attempt.delivered();
            attempts.push(attempt);
            if !delivered {
                failed = true;
                break;
            }
            cursor = event.seq;
        }
        let now = chrono::Utc::now();
        let failing_since = if failed {
            Some(w.failing_since.unwrap_or(Timestamp::from_utc(now)))
        } else {
            None
        };
        let give_up = failing_since.is_some_and(|since| {
            (now.naive_utc() - since.naive_utc())
                .to_std()
                .unwrap_or_default()
                > GIVE_UP_AFTER
        });
        let mut conn = shared.pool.get_conn().await?;
        store::record_deliveries(&mut conn, &attempts).await?;
        store::save_webhook_state(&mut conn, w.id, cursor, failing_since, give_up).await?;
        let delivered = attempts.iter().filter(|a| a.delivered()).count();
        let labels = [SINK];
        let metrics = &shared.metrics;
        metrics
            .feed_delivered
            .with_label_values(&labels)
            .inc_by(delivered as u64);
        self.webhook.delivered_seq = cursor;
        self.webhook.failing_since = failing_since;
        if !failed {
            self.failures = 0;
            return Ok(Next::More);
        }
        metrics.feed_failures.with_label_values(&labels).inc();
        self.failures += 1;
        Ok(if give_up {
            tracing::warn!(
                webhook = self.webhook.id,
                "webhook failing for 72 hours: retries stopped"
            );
            Next::GiveUp
        } else {
            Next::Retry(backoff(self.failures, crate::ids::random_u63()))
        })
    }
}

/// The pause before attempt `failures + 1`: doubling from a second up to
/// an hour, each between 80% and 120% of that (so endpoints that failed
/// together do not all come back at once).
fn backoff(failures: u32, random: u64) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(20))
        .min(MAX_BACKOFF);
    let spread = 800 + random % 401; // per mille
    base * spread as u32 / 1000
}

/// POSTs one event to `webhook`, signed: `Pos-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`. Waits for a slot among the
/// deliveries in flight.
async fn deliver(
    shared: &Shared,
    webhook: &Webhook,
    secret: &str,
    seq: u64,
    body: Vec<u8>,
) -> Delivery {
    let tenant_slots = {
        let mut slots = shared.tenant_slots.borrow_mut();
        let slots = slots
            .entry(webhook.tenant)
            .or_insert_with(|| Rc::new(Semaphore::new(MAX_IN_FLIGHT_PER_TENANT)));
        slots.clone()
    };
    let _tenant_slot = tenant_slots.acquire().await;
    let _slot = shared.in_flight.acquire().await;
    let attempted_at = Timestamp::from_utc(chrono::Utc::now());
    let started = Instant::now();
    let unix = chrono::Utc::now().timestamp();
    let signature = signature(secret, unix, &body);
    let sent = shared
        .client
        .post(webhook.url.as_str())
        .insert_header(("Pos-Event-Id", format!("evt_{}_{seq}", webhook.tenant)))
        .insert_header(("Pos-Signature", format!("t={unix},v1={signature}")))
        .insert_header(("Content-Type", "application/json"))
        .timeout(DELIVERY_TIMEOUT)
        .send_body(body)
        .await;
    let (status, error) = match sent {
        Ok(res) if res.status().is_success() => (Some(res.status().as_u16()), None),
        Ok(res) => (
            Some(res.status().as_u16()),
            Some(format!("answered {}", res.status())),
        ),
        Err(e) => (None, Some(clip(&e.to_string()).into_owned())),
    };
    Delivery {
        id: 0,
        webhook: webhook.id,
        event_seq: seq,
        attempted_at,
        status,
        error: error.map(|e| e.chars().take(200).collect()),
        duration_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
    }
}

/// Hex HMAC-SHA256 of `<unix>.<body>` with `secret`.
pub fn signature(secret: &str, unix: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The deliveries' client: no redirects, a connect and a total timeout,
/// and a resolver that refuses names resolving to addresses `rules` keep
/// out (so a name that turned private since it was registered is refused
/// at the connection, not only at registration).
fn client(rules: TargetRules) -> awc::Client {
    let connector = awc::Connector::new()
        .connector(actix_tls::connect::Connector::new(Resolver::custom(Guarded(rules))).service())
        .timeout(CONNECT_TIMEOUT);
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .timeout(DELIVERY_TIMEOUT)
        .finish()
}

/// A resolver that refuses a name if any of its addresses is not allowed.
struct Guarded(TargetRules);

impl Resolve for Guarded {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            if addrs.iter().any(|a| !reachable(a.ip(), self.0)) {
                return Err(crate::domain::PRIVATE_TARGET.into());
            }
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hex_hmac_of_the_time_a_dot_and_the_body() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn pauses_double_from_a_second_to_an_hour_within_a_fifth_either_way() {
        assert_eq!(backoff(1, 200), Duration::from_secs(1));
        assert_eq!(backoff(2, 0), Duration::from_millis(1600));
        assert_eq!(backoff(3, 400), Duration::from_millis(4800));
        assert_eq!(backoff(40, 200), MAX_BACKOFF);
    }
}
