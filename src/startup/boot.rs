//! What happens once the listeners are up: wait for MySQL (retrying with
//! backoff, logging each try), migrate, take the shard's lease (waiting
//! while another instance holds it), then read the totals and start the
//! actors. The lease comes before the totals: no other instance can commit
//! for these tenants once it is taken, so the totals read are complete.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::web;
use tokio::sync::mpsc;

use crate::actors::feed::amqp::{AmqpFeed, AmqpSettings};
use crate::actors::feed::webhooks::{WebhookFeed, WebhookSettings};
use crate::actors::feed::{FeedTap, FeedTaps, Interest, Pending};
use crate::actors::lease::{self, Fatal, LeaseActor, ShardLease};
use crate::actors::lookup::LookupActor;
use crate::actors::office::Office;
use crate::actors::persistence::{PersistenceActor, PersistenceSettings, WriteActivity, Writer};
use crate::actors::ranking::{RankingActor, TotalsChanged};
use crate::actors::registry::{Lane, TenantRegistry};
use crate::actors::reports::Reports;
use crate::actors::rollups::{RollupActor, RollupSettings, Rollups};
use crate::config::{redact_url, Config};
use crate::domain::{ProductTotal, TenantId};
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::service::Services;
use crate::store::{self, LeaseHolder, ServerTraits};

const FIRST_BOOT_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BOOT_BACKOFF: Duration = Duration::from_secs(5);
/// Spare connections per persistence pool beyond the flushing one (reads, pings).
const POOL_SPARE: usize = 3;

/// What booting needs.
pub(super) struct Boot {
    pub state: web::Data<AppState>,
    pub config: Config,
    pub lookup: Addr<LookupActor>,
    pub office: Office,
    /// The control database's office, when it is not the pod's (pods).
    pub control: Option<Office>,
    pub reports: Reports,
    pub arbiters: Arc<Mutex<Vec<Arbiter>>>,
    pub fatal: mpsc::Sender<Fatal>,
    pub me: LeaseHolder,
}

/// What the database gave at start.
struct Prepared {
    server: ServerTraits,
    totals: Vec<ProductTotal>,
    fence: u64,
    /// Tenants of this shard with catalog events left unnumbered.
    unnumbered: Vec<TenantId>,
}

pub(super) async fn boot(b: Boot) {
    let mut backoff = FIRST_BOOT_BACKOFF;
    let prepared = loop {
        match prepare_database(&b.config, &b.me).await {
            Ok(Ok(ready)) => break ready,
            Ok(Err(fatal)) => {
                let _ = b.fatal.send(fatal).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MySQL not ready");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BOOT_BACKOFF);
            }
        }
    };
    let Prepared {
        server,
        totals,
        fence,
        unnumbered,
    } = prepared;
    for doubt in &server.durability_doubts {
        tracing::warn!("{doubt}");
    }
    let config = &b.config;
    let metrics = b.state.metrics.clone();
    let shard_lease = ShardLease::new(config.shard);
    let lease = match store::pool_opts(config.control_url(), 1) {
        Ok(opts) => {
            let (pool, me, held, ttl, fatal, m) = (
                mysql_async::Pool::new(opts),
                b.me.clone(),
                shard_lease.clone(),
                config.shard_lease,
                b.fatal.clone(),
                metrics.clone(),
            );
            LeaseActor::new(pool, me, held, fence, ttl, fatal, m).start()
        }
        Err(e) => {
            tracing::error!(error = %e, "POS_CONTROL_DATABASE_URL cannot be used");
            return;
        }
    };
    let persistence_count = if server.statement_ids_in_order {
        config.persistence_actors
    } else {
        // Ids of one multi-row INSERT are consecutive only while no other
        // connection inserts; one writer keeps the ids we answer exact.
        tracing::warn!("innodb_autoinc_lock_mode=2: using one persistence actor");
        1
    };
    let mut owned = Vec::new();
    let (taps, webhooks) = start_feed(config, &metrics, &mut owned);
    let mut lanes = Vec::new();
    let activity = WriteActivity::new(persistence_count);
    for index in 0..persistence_count {
        let settings = PersistenceSettings {
            database_url: config.database_url.clone(),
            pool_max: 1 + POOL_SPARE,
            batch_rows: config.batch_rows,
            batch_linger: config.batch_linger,
            max_rows_waiting: (config.max_rows_waiting / persistence_count).max(config.batch_rows),
            retry_window: config.storage_retry,
            causal_reads: server.galera,
            lease: shard_lease.clone(),
            activity: activity.lane(index),
            taps: taps.clone(),
        };
        let arbiter = Arbiter::new();
        let m = metrics.clone();
        let addr = PersistenceActor::start_in_arbiter(&arbiter.handle(), move |_| {
            PersistenceActor::new(settings, m).expect("the database URL was checked at start")
        });
        lanes.push(Lane {
            arbiter: arbiter.handle(),
            writer: Writer::new(addr),
        });
        owned.push(arbiter);
    }
    // Rollups on a thread of their own: a long catch-up never holds up a
    // report's or a commit's thread.
    let rollup_arbiter = Arbiter::new();
    let settings = RollupSettings {
        database_url: config.database_url.clone(),
        shard: config.shard,
        activity,
        causal: server.galera,
        lease: shard_lease.clone(),
    };
    let m = metrics.clone();
    let rollups = Rollups::new(RollupActor::start_in_arbiter(
        &rollup_arbiter.handle(),
        move |_| RollupActor::new(settings, m).expect("the database URL was checked at start"),
    ));
    owned.push(rollup_arbiter);
    if let Ok(mut a) = b.arbiters.lock() {
        a.extend(owned);
    }
    let (ranking, feed) =
        RankingActor::new(b.state.mirror.clone(), metrics.clone()).start_with_feed();
    let products = totals.len();
    // Before the core is published, so it precedes every tenant's first start.
    ranking.do_send(TotalsChanged(totals));
    let tenants = Arc::new(
        TenantRegistry::new(
            lanes,
            b.lookup,
            b.office.clone(),
            feed,
            metrics,
            config.tenant_idle,
            config.tenant_limits,
        )
        .with_directory(b.control.clone()),
    );
    let core = Services {
        office: b.office,
        control: b.control,
        reports: b.reports,
        rollups,
        tenants,
        ranking,
        lease,
        shard_lease,
        shard: config.shard,
        auth: b.state.auth.clone(),
        mirror: b.state.mirror.clone(),
        limits: config.tenant_limits,
        default_currency: config.default_currency,
        webhooks,
        webhook_rules: config.webhook_rules(),
    };
    number_left_events(&core.tenants, unnumbered);
    if b.state.core.set(core).is_err() {
        tracing::error!("service core was already set");
    }
    b.state.readiness.changed();
    tracing::info!(products, persistence_actors = persistence_count, "ready");
}

/// Starts the feed's sinks, each on a thread of its own (a broker or a
/// receiver away or slow never holds up a commit's thread), and returns
/// their taps and the webhook feed.
fn start_feed(
    config: &Config,
    metrics: &Metrics,
    owned: &mut Vec<Arbiter>,
) -> (FeedTaps, Addr<WebhookFeed>) {
    let mut taps = Vec::new();
    let render = crate::http::render_event;
    if let Some(url) = &config.amqp_url {
        let settings = AmqpSettings {
            url: url.clone(),
            exchange: config.amqp_exchange.clone(),
            database_url: config.database_url.clone(),
            shard: config.shard,
            render,
        };
        let (arbiter, pending, m) = (Arbiter::new(), Pending::default(), metrics.clone());
        let taken = pending.clone();
        let addr = AmqpFeed::start_in_arbiter(&arbiter.handle(), move |_| {
            AmqpFeed::new(settings, taken, m).expect("the database URL was checked at start")
        });
        taps.push(FeedTap::new(pending, addr.recipient(), None));
        owned.push(arbiter);
    }
    let settings = WebhookSettings {
        database_url: config.database_url.clone(),
        shard: config.shard,
        render,
        rules: config.webhook_rules(),
    };
    let (arbiter, pending, m) = (Arbiter::new(), Pending::default(), metrics.clone());
    let (taken, interest) = (pending.clone(), Interest::default());
    let kept = interest.clone();
    let webhooks = WebhookFeed::start_in_arbiter(&arbiter.handle(), move |_| {
        WebhookFeed::new(settings, taken, kept, m).expect("the database URL was checked at start")
    });
    taps.push(FeedTap::new(
        pending,
        webhooks.clone().recipient(),
        Some(interest),
    ));
    owned.push(arbiter);
    (FeedTaps::new(taps), webhooks)
}

/// Numbers the catalog events an earlier run committed and did not number
/// (it stopped in between), each by its tenant's writer.
fn number_left_events(tenants: &TenantRegistry, unnumbered: Vec<TenantId>) {
    for tenant in unnumbered {
        let writer = tenants.writer(tenant).clone();
        actix::spawn(async move {
            if let Err(e) = writer.number_catalog_events(tenant).await {
                tracing::warn!(error = %e, tenant = %tenant, "catalog events left unnumbered");
            }
        });
    }
}

/// Migrates (if anything is pending), takes the shard's lease and reads
/// what start-up needs, on a short-lived pool. `Ok(Err(_))`: this instance
/// must not serve.
async fn prepare_database(
    config: &Config,
    me: &LeaseHolder,
) -> Result<Result<Prepared, Fatal>, Box<dyn std::error::Error>> {
    migrate(&config.database_url, config.migration_url()).await?;
    if config.pods() {
        migrate(config.control_url(), config.control_migration_url()).await?;
    }
    let pool = mysql_async::Pool::new(store::pool_opts(&config.database_url, 1)?);
    let own_control = match config.pods() {
        true => Some(mysql_async::Pool::new(store::pool_opts(
            config.control_url(),
            1,
        )?)),
        false => None,
    };
    let control = own_control.as_ref().unwrap_or(&pool);
    let result = async {
        let fence =
            match lease::acquire_at_start(control, config.shard, me, config.shard_lease).await? {
                Ok(fence) => fence,
                Err(fatal) => return Ok(Err(fatal)),
            };
        let mut conn = pool.get_conn().await?;
        if config.pods() && !store::fence_pod(&mut conn, config.shard, me, fence).await? {
            return Ok(Err(Fatal {
                message: format!(
                    "shard {}'s database carries a later fencing number than {fence} from the control database: \
                     another holder fenced it since, or the control database was restored from an older state \
                     (then raise shard_leases.fence there above the pod's before starting again)",
                    config.shard
                ),
                code: 1,
            }));
        }
        let server = store::server_traits(&mut conn).await?;
        store::fill_currencies(&mut conn, config.default_currency).await?;
        let totals = store::load_all_totals(&mut conn, config.shard).await?;
        let mut unnumbered = store::tenants_with_unnumbered_events(&mut conn).await?;
        unnumbered.retain(|t| config.shard.owns(*t));
        Ok::<_, store::StoreError>(Ok(Prepared {
            server,
            totals,
            fence,
            unnumbered,
        }))
    }
    .await;
    let _ = pool.disconnect().await;
    if let Some(control) = own_control {
        let _ = control.disconnect().await;
    }
    Ok(result?)
}

/// Applies what is pending on one database.
async fn migrate(url: &str, migration_url: &str) -> Result<(), String> {
    let applied = store::migrate_if_pending(url, migration_url)
        .await
        .map_err(|e| format!("{e} (migrating as {})", redact_url(migration_url)))?;
    if !applied.is_empty() {
        tracing::info!(?applied, database = %redact_url(url), "migrations applied");
    }
    Ok(())
}
