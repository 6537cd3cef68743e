//! AmqpFeed: publishes every event of this shard's tenants to RabbitMQ
//! (`POS_AMQP_URL`): a durable topic exchange, routing key
//! `<tenantID>.<type>`, persistent messages whose `message_id` is the
//! event's id, with publisher confirms. A tenant's cursor moves only over
//! events the broker confirmed, in `seq` order; with the broker away the
//! events wait in MySQL and the feed retries with doubling pauses.
//! Own thread, own MySQL connection; woken by its tap.

use std::time::Duration;

use actix::prelude::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use mysql_async::{Conn, Pool};

use super::{running_on, Pending, Progress, Render, Wake};
use crate::domain::{Shard, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, StoreError};

/// This sink's name in `feed_cursors` and in metric labels.
pub const SINK: &str = "amqp";
/// Tenants served in one round, and events read of each kind per round.
const TURN: usize = 100;
const PAGE: usize = 1_000;
/// Longest a connect or a confirmation may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A round runs at least this often (a head told as unknown, a broker back).
const TICK: Duration = Duration::from_secs(5);
/// A round starts at most this often when woken: under load each round then
/// takes many commits' events in a few statements, instead of a round per
/// commit (a feed 100 ms behind is as good to its consumers).
const PACE: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct AmqpSettings {
    pub url: String,
    pub exchange: String,
    pub database_url: String,
    pub shard: Shard,
    pub render: Render,
}

/// Why a round stopped short.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("MySQL: {0}")]
    Store(#[from] StoreError),
    #[error("RabbitMQ: {0}")]
    Broker(String),
}

impl From<lapin::Error> for RoundError {
    fn from(e: lapin::Error) -> Self {
        RoundError::Broker(e.to_string())
    }
}

/// What a round works with; taken by the round and given back.
struct State {
    pool: Pool,
    channel: Option<(Connection, Channel)>,
    progress: Progress,
    scanned: bool,
}

pub struct AmqpFeed {
    settings: AmqpSettings,
    pending: Pending,
    state: Option<State>,
    backoff: Duration,
    metrics: Metrics,
    /// When the last round started, and whether a paced one is due.
    last_round: Option<std::time::Instant>,
    paced: bool,
    /// Woken while a round ran: another follows it.
    woken: bool,
}

impl AmqpFeed {
    /// Builds the actor (call inside its arbiter, so the pool lives there);
    /// it takes what its tap ([`super::FeedTap::new`]) leaves in `pending`.
    pub fn new(
        settings: AmqpSettings,
        pending: Pending,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        let pool = Pool::new(store::pool_opts(&settings.database_url, 1)?);
        Ok(AmqpFeed {
            settings,
            pending,
            state: Some(State {
                pool,
                channel: None,
                progress: Progress::default(),
                scanned: false,
            }),
            backoff: FIRST_BACKOFF,
            metrics,
            last_round: None,
            paced: false,
            woken: false,
        })
    }

    /// A round now, or [`PACE`] after the last one started.
    fn paced_round(&mut self, ctx: &mut Context<Self>) {
        let wait = self
            .last_round
            .map_or(Duration::ZERO, |at| PACE.saturating_sub(at.elapsed()));
        if wait.is_zero() {
            self.round(ctx);
        } else if !self.paced {
            self.paced = true;
            ctx.run_later(wait, |act, ctx| {
                act.paced = false;
                act.round(ctx);
            });
        }
    }

    /// Runs a round unless one runs; then another at once while tenants
    /// are behind, or after a pause if it failed.
    fn round(&mut self, ctx: &mut Context<Self>) {
        let Some(state) = self.state.take() else {
            self.woken = true;
            return;
        };
        self.last_round = Some(std::time::Instant::now());
        let (settings, pending, metrics) = (
            self.settings.clone(),
            self.pending.clone(),
            self.metrics.clone(),
        );
        ctx.spawn(
            async move {
                let mut state = state;
                let outcome = run_round(&mut state, &settings, &pending, &metrics).await;
                (state, outcome)
            }
            .into_actor(self)
            .map(|(mut state, outcome), act, ctx| {
                act.metrics
                    .feed_lag
                    .with_label_values(&[SINK])
                    .set(state.progress.lag() as i64);
                match outcome {
                    Ok(more) => {
                        act.backoff = FIRST_BACKOFF;
                        act.state = Some(state);
                        if more || std::mem::take(&mut act.woken) {
                            act.paced_round(ctx);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = act.backoff.as_millis() as u64, "the RabbitMQ feed stopped short");
                        act.metrics.feed_failures.with_label_values(&[SINK]).inc();
                        if matches!(e, RoundError::Broker(_)) {
                            state.channel = None;
                        }
                        act.state = Some(state);
                        ctx.run_later(act.backoff, |act, ctx| act.round(ctx));
                        act.backoff = (act.backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }),
        );
    }
}

impl Actor for AmqpFeed {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        self.round(ctx);
        ctx.run_interval(TICK, |act, ctx| act.round(ctx));
    }
}

impl Handler<Wake> for AmqpFeed {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.paced_round(ctx);
    }
}

/// One round: take what the tap told, read the next tenants' events after
/// their cursors, publish them, wait for every confirmation, move the
/// cursors over what was confirmed. `Ok(true)`: tenants are still behind.
async fn run_round(
    state: &mut State,
    settings: &AmqpSettings,
    pending: &Pending,
    metrics: &Metrics,
) -> Result<bool, RoundError> {
    let mut conn = state.pool.get_conn().await.map_err(StoreError::from)?;
    let progress = &mut state.progress;
    if !state.scanned {
        scan(&mut conn, settings.shard, progress).await?;
        state.scanned = true;
    }
    progress.learn_heads(settings.shard, pending.take());
    let turn = progress.next_turn(TURN);
    if turn.is_empty() {
        return Ok(false);
    }
    let served = serve(state, settings, metrics, &mut conn, &turn).await;
    if served.is_err() {
        // Their events wait: they take their turn again.
        for t in &turn {
            state.progress.queue_again(*t);
        }
    }
    served
}

/// Publishes the events of `turn`'s tenants after their cursors and moves
/// the cursors over what the broker confirmed.
async fn serve(
    state: &mut State,
    settings: &AmqpSettings,
    metrics: &Metrics,
    conn: &mut Conn,
    turn: &[TenantId],
) -> Result<bool, RoundError> {
    let progress = &mut state.progress;
    let unknown = progress.unknown_cursors(turn);
    if !unknown.is_empty() {
        let cursors = store::feed_cursors(conn, SINK, &unknown).await?;
        progress.cursors.extend(cursors);
    }
    let cursors: Vec<(TenantId, u64)> = turn
        .iter()
        .map(|t| (*t, progress.cursors.get(t).copied().unwrap_or(0)))
        .collect();
    let page = store::feed_page(conn, &cursors, PAGE).await?;
    let published = publish(state, settings, &cursors, &page).await;
    let progress = &mut state.progress;
    let (confirmed, failure) = match published {
        Ok(confirmed) => (confirmed, None),
        Err((confirmed, e)) => (confirmed, Some(e)),
    };
    store::save_feed_cursors(conn, SINK, &confirmed).await?;
    let delivered: u64 = confirmed
        .iter()
        .map(|(t, seq)| seq - cursors.iter().find(|(c, _)| c == t).map_or(0, |(_, c)| *c))
        .sum();
    metrics
        .feed_delivered
        .with_label_values(&[SINK])
        .inc_by(delivered);
    for (t, seq) in &confirmed {
        progress.delivered(*t, *seq);
    }
    for (t, cursor) in &cursors {
        if page.stuck_at(*t, progress.cursors.get(t).copied().unwrap_or(*cursor)) {
            metrics.feed_failures.with_label_values(&[SINK]).inc();
            progress.stuck(*t);
            continue;
        }
        if page.complete && !page.events.iter().any(|(of, _)| of == t) {
            // Nothing after its cursor (no kind's read was cut short by
            // other tenants' events): its head is the cursor.
            progress.delivered(*t, *cursor);
            progress.caught_up(*t);
        }
        if page.complete {
            progress.queue_if_behind(*t);
        } else {
            progress.queue_again(*t);
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(!progress.behind.is_empty()),
    }
}

/// Learns the head of every tenant of the shard (once, at start): events
/// committed while no instance published them are found here.
async fn scan(conn: &mut Conn, shard: Shard, progress: &mut Progress) -> Result<(), StoreError> {
    let tenants: Vec<TenantId> = store::tenant_ids(conn)
        .await?
        .into_iter()
        .filter(|t| shard.owns(*t))
        .collect();
    for chunk in tenants.chunks(500) {
        let heads = store::event_heads(conn, chunk, false).await?;
        progress.learn_heads(shard, heads);
    }
    Ok(())
}

/// Publishes each tenant's events that run on from its cursor and waits
/// for their confirmations: the cursors they reach, with the error that
/// stopped them, if any.
async fn publish(
    state: &mut State,
    settings: &AmqpSettings,
    cursors: &[(TenantId, u64)],
    page: &store::FeedPage,
) -> Result<Vec<(TenantId, u64)>, (Vec<(TenantId, u64)>, RoundError)> {
    if page.events.is_empty() {
        return Ok(Vec::new());
    }
    let channel = match channel(state, settings).await {
        Ok(c) => c,
        Err(e) => return Err((Vec::new(), e)),
    };
    let mut pending = Vec::new();
    let mut failure = None;
    'tenants: for events in page.events.chunk_by(|a, b| a.0 == b.0) {
        let tenant = events[0].0;
        let cursor = cursors
            .iter()
            .find(|(t, _)| *t == tenant)
            .map_or(0, |(_, c)| *c);
        let currency = page.currencies.get(&tenant).copied().unwrap_or_default();
        let run = running_on(cursor, events.iter().map(|(_, e)| e.seq));
        for (_, event) in &events[..run] {
            let body = (settings.render)(tenant, event, currency);
            let key = format!("{tenant}.{}", event.kind.as_str());
            let properties = BasicProperties::default()
                .with_message_id(format!("evt_{tenant}_{}", event.seq).into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            let sent = channel
                .basic_publish(
                    settings.exchange.as_str().into(),
                    key.into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await;
            match sent {
                Ok(confirm) => pending.push((tenant, event.seq, confirm)),
                Err(e) => {
                    failure = Some(RoundError::from(e));
                    break 'tenants;
                }
            }
        }
    }
    let mut confirmed: Vec<(TenantId, u64)> = Vec::new();
    let mut stopped: Vec<TenantId> = Vec::new();
    for (tenant, seq, confirm) in pending {
        if stopped.contains(&tenant) {
            continue;
        }
        let ack = match tokio::time::timeout(BROKER_TIMEOUT, confirm).await {
            Ok(Ok(c)) if c.is_ack() => Ok(()),
            Ok(Ok(_)) => Err(RoundError::Broker("the broker refused a message".into())),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(RoundError::Broker("no confirmation in time".into())),
        };
        match ack {
            Ok(()) => match confirmed.iter_mut().find(|(t, _)| *t == tenant) {
                Some(c) => c.1 = seq,
                None => confirmed.push((tenant, seq)),
            },
            Err(e) => {
                stopped.push(tenant);
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err((confirmed, e)),
        None => Ok(confirmed),
    }
}

/// The channel to publish on: connected, in confirm mode, the exchange
/// declared (durable topic).
async fn channel(state: &mut State, settings: &AmqpSettings) -> Result<Channel, RoundError> {
    if let Some((conn, channel)) = &state.channel {
        if conn.status().connected() && channel.status().connected() {
            return Ok(channel.clone());
        }
    }
    state.channel = None;
    let open = async {
        let conn = Connection::connect(&settings.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                settings.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        Ok::<_, lapin::Error>((conn, channel))
    };
    let (conn, channel) = tokio::time::timeout(BROKER_TIMEOUT, open)
        .await
        .map_err(|_| RoundError::Broker("no connection in time".into()))??;
    state.channel = Some((conn, channel.clone()));
    Ok(channel)
}
