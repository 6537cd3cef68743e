//! Builds and runs the service: the two HTTP listeners at once (so `/health`
//! answers even while MySQL is down), then, once MySQL answers, migrations,
//! the actors and the ranking. `pos serve` and the tests start this same code.
//!
//! Shutdown order: stop taking requests and finish those in flight, flush
//! the persistence actors and close their pools, write the last ranking
//! changes to Redis, stop the actor threads.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

mod boot;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::actors::lease::{Fatal, Release};
use crate::actors::lookup::LookupActor;
use crate::actors::office::{Office, OfficeActor, OFFICE_BOUNDS};
use crate::actors::ranking::FinalFlush;
#[cfg(feature = "testing")]
use crate::actors::registry::TenantRegistry;
use crate::actors::reports::{Reports, ReportsActor};
use crate::auth::{Auth, Limits};
use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::store::LeaseHolder;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("POS_REDIS_URL: {0}")]
    Redis(String),
    #[error("no session signing key: {0}")]
    SessionKeys(String),
}

/// The session signer: `POS_SESSION_SECRET`, or a random secret that
/// lives as long as this process (sessions end at a restart).
fn session_keys(config: &Config) -> Result<crate::auth::SessionKeys, StartError> {
    match &config.session_secret {
        Some(secret) => crate::auth::SessionKeys::new(&secret.0)
            .map_err(|e| StartError::SessionKeys(e.to_string())),
        None => {
            tracing::warn!(
                "POS_SESSION_SECRET is not set: back-office sessions end when this process stops"
            );
            crate::auth::SessionKeys::random().map_err(StartError::SessionKeys)
        }
    }
}

/// A running service.
pub struct RunningApp {
    pub api_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub state: web::Data<AppState>,
    api: ServerHandle,
    metrics_server: ServerHandle,
    boot: actix_web::rt::task::JoinHandle<()>,
    /// Loops that run until the stop: the revocation poll, readiness checks.
    background: Vec<actix_web::rt::task::JoinHandle<()>>,
    arbiters: Arc<Mutex<Vec<Arbiter>>>,
    /// Why the service must stop on its own (its shard taken over, or the
    /// deployment recorded with another shard count).
    fatal: mpsc::Receiver<Fatal>,
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
                .map_err(|e| StartError::Redis(e.to_string()))?
                .with_tenant_members(config.pods()),
        ),
        None => None,
    };
    let metrics = Metrics::new();
    // Reads off the write path (keys, catalogs) have their own thread and
    // pool; keys come from the control database, catalogs from the pod's.
    let lookup_arbiter = Arbiter::new();
    let start_lookup = |url: &str, pool: &'static str| {
        let (url, m) = (url.to_string(), metrics.clone());
        LookupActor::start_in_arbiter(&lookup_arbiter.handle(), move |_| {
            LookupActor::new(&url, pool, m).expect("the database URL was checked at start")
        })
    };
    let lookup = start_lookup(&config.database_url, "lookup");
    let key_lookup = match config.pods() {
        true => start_lookup(config.control_url(), "control_lookup"),
        false => lookup.clone(),
    };
    // So do the back office's statements: the pod's (catalogs, refunds,
    // events) and the control database's (tenants directory, keys, sessions).
    let office_arbiter = Arbiter::new();
    let start_office = |url: &str, name: &'static str| {
        let (url, m) = (url.to_string(), metrics.clone());
        Office::new(
            OfficeActor::start_in_arbiter(&office_arbiter.handle(), move |_| {
                OfficeActor::new(&url, OFFICE_BOUNDS, name, m)
                    .expect("the database URL was checked at start")
            }),
            OFFICE_BOUNDS,
        )
    };
    let office = start_office(&config.database_url, "office");
    let control = match config.pods() {
        true => Some(start_office(config.control_url(), "control")),
        false => None,
    };
    // Reports too, on the same thread with a pool and bounds of their own.
    let (url, m) = (config.database_url.clone(), metrics.clone());
    let per_tenant = config.reports_per_tenant;
    let reports = Reports::new(ReportsActor::start_in_arbiter(
        &office_arbiter.handle(),
        move |_| {
            ReportsActor::new(&url, per_tenant, m).expect("the database URL was checked at start")
        },
    ));
    let auth = config.auth_enabled.then(|| {
        Arc::new(Auth::new(
            Limits {
                per_key: config.rate_limit_per_key,
                per_key_burst: config.rate_limit_burst,
                failures_per_address: config.auth_failures_per_address,
                ipv6_prefix: config.auth_ipv6_prefix,
                key_cache: config.key_cache,
            },
            key_lookup,
            metrics.clone(),
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
        readiness: Default::default(),
        sessions: session_keys(&config)?,
        live: Arc::new(http::app::LiveTopSellers::new(config.app_streams_per_key)),
    });
    let workers = config.http_workers;

    let s = state.clone();
    let connections = http::connections::ConnectionLimit::new(
        config.max_connections_per_address,
        config.trusted_proxies.clone(),
        config.auth_ipv6_prefix,
        state.metrics.clone(),
    );
    let api = HttpServer::new(move || {
        App::new()
            .app_data(s.clone())
            .wrap(from_fn(http::track_requests))
            .configure(http::app::app_routes)
            .configure(http::api_routes)
    })
    .on_connect(move |conn, data| connections.on_connect(conn, data))
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

    let mut threads = vec![lookup_arbiter, office_arbiter];
    let background = vec![
        actix_web::rt::spawn(http::watch_readiness(state.clone())),
        actix_web::rt::spawn(http::app::publish_live_top_sellers(state.clone())),
    ];
    // The revocation watch gets a thread of its own: the trust in every
    // cached key rests on its polls, which nothing else may delay (under a
    // 304 flood, polls on this thread sometimes took over a second).
    if let Some(auth) = auth {
        let watch = Arbiter::new();
        watch.spawn(
            auth.clone()
                .watch_revocations(config.control_url().to_string()),
        );
        threads.push(watch);
        let sweep = Arbiter::new();
        sweep.spawn(auth.sweep_limiters());
        threads.push(sweep);
    }
    let arbiters = Arc::new(Mutex::new(threads));
    let (fatal_tx, fatal) = mpsc::channel(1);
    // The shard's lease names this process by where it serves: a process
    // that serves there later is its successor.
    let me = LeaseHolder {
        address: format!("{}:{}", crate::ids::host_name(), api_addr.port()),
        instance: crate::ids::random_u63(),
    };
    let boot = actix_web::rt::spawn(boot::boot(boot::Boot {
        state: state.clone(),
        config,
        lookup,
        office,
        control,
        reports,
        arbiters: arbiters.clone(),
        fatal: fatal_tx,
        me,
    }));
    tracing::info!(%api_addr, %metrics_addr, "listening");
    Ok(RunningApp {
        api_addr,
        metrics_addr,
        state,
        api: api_handle,
        metrics_server: metrics_handle,
        boot,
        background,
        arbiters,
        fatal,
    })
}

fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Listen { addr, source })
}

fn local_addr(l: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr()
        .map_err(|source| StartError::Listen { addr, source })
}

impl RunningApp {
    /// Whether MySQL was reached and the actors run.
    pub fn is_booted(&self) -> bool {
        self.state.core.get().is_some()
    }

    /// Whether `/ready` answers 200 now.
    pub fn is_ready(&self) -> bool {
        self.state.readiness.get().ready
    }

    /// The tenant registry, once booted (tests use its crash hook).
    #[cfg(feature = "testing")]
    pub fn tenants(&self) -> Option<Arc<TenantRegistry>> {
        self.state.core.get().map(|c| c.tenants.clone())
    }

    /// Graceful stop (see the module doc for the order).
    pub async fn stop(self) {
        // Live streams would hold the graceful stop for its whole timeout.
        self.state.live.close();
        self.api.stop(true).await;
        self.boot.abort();
        for task in &self.background {
            task.abort();
        }
        match self.state.core.get() {
            Some(core) => {
                for writer in core.tenants.writers() {
                    writer.drain().await;
                }
                // After the last commit: the next holder need not wait.
                let _ = core.lease.send(Release).await;
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

    /// Runs until SIGINT or SIGTERM, then stops gracefully; or until the
    /// service must stop on its own, then stops and says why.
    pub async fn run_until_signal(mut self) -> Option<Fatal> {
        let fatal = tokio::select! {
            () = wait_for_signal() => None,
            fatal = self.fatal.recv() => fatal,
        };
        match &fatal {
            None => tracing::info!("shutting down"),
            Some(f) => tracing::error!(reason = %f.message, "stopping"),
        }
        self.stop().await;
        tracing::info!("stopped");
        fatal
    }

    /// Why the service stopped serving on its own, if it did (tests).
    pub fn fatal(&mut self) -> Option<Fatal> {
        self.fatal.try_recv().ok()
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
