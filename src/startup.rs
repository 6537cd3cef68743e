//! Builds and runs the service: the two HTTP listeners at once (so `/health`
//! answers even while MySQL is down), then, once MySQL answers, migrations,
//! the actors and the ranking. `pos serve` and the tests start this same code.
//!
//! Shutdown order: stop taking requests and finish those in flight, flush
//! the persistence actors and close their pools, write the last ranking
//! changes to Redis, stop the actor threads.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::actors::lookup::LookupActor;
use crate::actors::persistence::{PersistenceActor, PersistenceSettings, Writer};
use crate::actors::ranking::{FinalFlush, RankingActor, TotalsChanged};
use crate::actors::registry::{Lane, TenantRegistry};
use crate::auth::{Auth, Limits};
use crate::config::{redact_url, Config};
use crate::domain::ProductTotal;
use crate::http::{self, AppState, Core};
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::store;

const FIRST_BOOT_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BOOT_BACKOFF: Duration = Duration::from_secs(5);
/// Spare connections per persistence pool beyond the flushing one (reads, pings).
const POOL_SPARE: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("POS_REDIS_URL: {0}")]
    Redis(String),
}

/// A running service.
pub struct RunningApp {
    pub api_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub state: web::Data<AppState>,
    api: ServerHandle,
    metrics_server: ServerHandle,
    boot: actix_web::rt::task::JoinHandle<()>,
    revocations: Option<actix_web::rt::task::JoinHandle<()>>,
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
}

/// Binds the listeners and starts everything; returns at once. Must run
/// inside an actix `System`.
pub fn start(config: Config) -> Result<RunningApp, StartError> {
    let api_listener = bind(config.http_addr)?;
    let metrics_listener = bind(config.metrics_addr)?;
    let api_addr = local_addr(&api_listener, config.http_addr)?;
    let metrics_addr = local_addr(&metrics_listener, config.metrics_addr)?;
    let mirror = match &config.redis_url {
        Some(url) => Some(
            Mirror::connect(url, &config.redis_prefix, config.shard.is_partial())
                .map_err(|e| StartError::Redis(e.to_string()))?,
        ),
        None => None,
    };
    let metrics = Metrics::new();
    // Reads off the write path (keys, catalogs) have their own thread and pool.
    let lookup_arbiter = Arbiter::new();
    let (url, m) = (config.database_url.clone(), metrics.clone());
    let lookup = LookupActor::start_in_arbiter(&lookup_arbiter.handle(), move |_| {
        LookupActor::new(&url, m).expect("the database URL was checked at start")
    });
    let auth = config.auth_enabled.then(|| {
        Arc::new(Auth::new(
            Limits {
                per_key: config.rate_limit_per_key,
                per_key_burst: config.rate_limit_burst,
                failures_per_address: config.auth_failures_per_address,
            },
            lookup.clone(),
        ))
    });
    if auth.is_none() {
        tracing::warn!(
            "POS_AUTH=disabled: every request is let in without a key; use this only for a local trial"
        );
    }
    if !config.trusted_proxies.is_empty() {
        tracing::info!(
            trusted_proxies = %config.trusted_proxies,
            "X-Forwarded-For names the client on requests from these addresses"
        );
    }
    let state = web::Data::new(AppState {
        core: Default::default(),
        metrics,
        mirror,
        auth: auth.clone(),
        body_timeout: config.body_timeout,
        shard: config.shard,
        trusted_proxies: config.trusted_proxies.clone(),
    });
    let workers = config.http_workers;

    let s = state.clone();
    let api = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .wrap(from_fn(http::track_requests))
            .configure(http::api_routes)
    })
    .workers(workers)
    .max_connections(config.max_connections.div_ceil(workers))
    .disable_signals()
    .shutdown_timeout(30)
    .listen(api_listener)
    .map_err(|source| StartError::Listen {
        addr: api_addr,
        source,
    })?
    .run();
    let s = state.clone();
    let metrics_server = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .configure(http::metrics_routes)
    })
    .workers(1)
    .disable_signals()
    .listen(metrics_listener)
    .map_err(|source| StartError::Listen {
        addr: metrics_addr,
        source,
    })?
    .run();
    let (api_handle, metrics_handle) = (api.handle(), metrics_server.handle());
    actix_web::rt::spawn(api);
    actix_web::rt::spawn(metrics_server);

    let arbiters = Arc::new(Mutex::new(vec![lookup_arbiter]));
    let revocations = auth.map(|a| actix_web::rt::spawn(a.watch_revocations()));
    let boot = actix_web::rt::spawn(boot(state.clone(), config, lookup, arbiters.clone()));
    tracing::info!(%api_addr, %metrics_addr, "listening");
    Ok(RunningApp {
        api_addr,
        metrics_addr,
        state,
        api: api_handle,
        metrics_server: metrics_handle,
        boot,
        revocations,
        arbiters,
    })
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Listen { addr, source })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Listen { addr, source })
}

/// Waits for MySQL (retrying with backoff, logging each try), migrates,
/// loads the ranking from the summary table, starts the actors.
async fn boot(
    state: web::Data<AppState>,
    config: Config,
    lookup: Addr<LookupActor>,
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
) {
    let mut backoff = FIRST_BOOT_BACKOFF;
    let (server, totals) = loop {
        match prepare_database(&config).await {
            Ok(ready) => break ready,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "MySQL not ready");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BOOT_BACKOFF);
            }
        }
    };
    for doubt in &server.durability_doubts {
        tracing::warn!("{doubt}");
    }
    let persistence_count = if server.statement_ids_in_order {
        config.persistence_actors
    } else {
        // Ids of one multi-row INSERT are consecutive only while no other
        // connection inserts; one writer keeps the ids we answer exact.
        tracing::warn!("innodb_autoinc_lock_mode=2: using one persistence actor");
        1
    };
    let metrics = state.metrics.clone();
    let mut owned = Vec::new();
    let mut lanes = Vec::new();
    for _ in 0..persistence_count {
        let settings = PersistenceSettings {
            database_url: config.database_url.clone(),
            pool_max: 1 + POOL_SPARE,
            batch_rows: config.batch_rows,
            batch_linger: config.batch_linger,
            max_rows_waiting: (config.max_rows_waiting / persistence_count).max(config.batch_rows),
            retry_window: config.storage_retry,
            causal_reads: server.galera,
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
    if let Ok(mut a) = arbiters.lock() {
        a.extend(owned);
    }
    let (ranking, feed) =
        RankingActor::new(state.mirror.clone(), metrics.clone()).start_with_feed();
    let products = totals.len();
    // Before the core is published, so it precedes every tenant's first start.
    ranking.do_send(TotalsChanged(totals));
    let tenants = Arc::new(TenantRegistry::new(
        lanes,
        lookup,
        feed,
        metrics,
        config.tenant_idle,
    ));
    if state.core.set(Core { tenants, ranking }).is_err() {
        tracing::error!("service core was already set");
    }
    tracing::info!(products, persistence_actors = persistence_count, "ready");
}

/// Migrates (if anything is pending) and reads what start-up needs, on a
/// short-lived pool.
async fn prepare_database(
    config: &Config,
) -> Result<(store::ServerTraits, Vec<ProductTotal>), Box<dyn std::error::Error>> {
    let applied = store::migrate_if_pending(&config.database_url, config.migration_url())
        .await
        .map_err(|e| format!("{e} (migrating as {})", redact_url(config.migration_url())))?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let pool = mysql_async::Pool::new(store::pool_opts(&config.database_url, 1)?);
    let result = async {
        let mut conn = pool.get_conn().await?;
        let server = store::server_traits(&mut conn).await?;
        let totals = store::load_all_totals(&mut conn, config.shard).await?;
        Ok::<_, store::StoreError>((server, totals))
    }
    .await;
    let _ = pool.disconnect().await;
    Ok(result?)
}

impl RunningApp {
    /// Whether MySQL was reached and the actors run.
    pub fn is_booted(&self) -> bool {
        self.state.core.get().is_some()
    }

    /// The tenant registry, once booted (tests use its crash hook).
    #[cfg(feature = "testing")]
    pub fn tenants(&self) -> Option<Arc<TenantRegistry>> {
        self.state.core.get().map(|c| c.tenants.clone())
    }

    /// Graceful stop (see the module doc for the order).
    pub async fn stop(self) {
        self.api.stop(true).await;
        self.boot.abort();
        if let Some(r) = &self.revocations {
            r.abort();
        }
        match self.state.core.get() {
            Some(core) => {
                for writer in core.tenants.writers() {
                    writer.drain().await;
                }
                let _ = core.ranking.send(FinalFlush).await;
            }
            None => {
                if let Some(m) = &self.state.mirror {
                    m.quit().await;
                }
            }
        }
        self.metrics_server.stop(true).await;
        if let Ok(mut arbiters) = self.arbiters.lock() {
            for a in arbiters.drain(..) {
                a.stop();
            }
        }
    }

    /// Runs until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
        tracing::info!("stopped");
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
