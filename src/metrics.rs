//! Every metric of the service, defined once, registered at start in a
//! per-app registry (so tests can run several apps in one process). No
//! metric carries a tenant or product label: tenants reach 10^5.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::domain::ErrorCode;

#[cfg(target_os = "linux")]
mod process;

/// What reading a writer's mark back found (`pos_commit_settles_total`).
pub const SETTLE_OUTCOMES: &[&str] = &["stored", "not_stored"];

/// Kinds and results of the lookup actor's reads (`pos_lookups_total`).
pub const LOOKUP_KINDS: &[&str] = &["key", "catalog", "office", "control", "report"];
pub const LOOKUP_RESULTS: &[&str] = &["ok", "error", "busy"];
/// The bounded pools off the write path (`pos_statements_in_flight`).
pub const BOUNDED_POOLS: &[&str] = &["lookup", "office", "control_lookup", "control"];

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// HTTP requests by route template, method and status.
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Transactions committed to MySQL (replays are not counted again).
    pub committed: IntCounter,
    /// Sales requests refused, by error code.
    pub rejected: IntCounterVec,
    /// Rows per committed batch.
    pub batch_rows: Histogram,
    /// Time of one batch transaction, BEGIN to COMMIT.
    pub commit_seconds: Histogram,
    /// Rows accepted and not yet committed.
    pub rows_waiting: IntGauge,
    /// Batch attempts repeated after a connection loss.
    pub persistence_retries: IntCounter,
    /// Rollup rows written (added or changed) for reports.
    pub rollup_rows: IntCounter,
    /// Rolls that failed (MySQL away, a flush not settled in time).
    pub rollup_failures: IntCounter,
    /// Events committed and not yet delivered, by sink (`amqp`, `webhooks`).
    pub feed_lag: IntGaugeVec,
    /// Events delivered (confirmed by the sink), by sink.
    pub feed_delivered: IntCounterVec,
    /// Deliveries that failed (sink away, refused, timed out), by sink.
    pub feed_failures: IntCounterVec,
    /// Webhook endpoints running now (delivering, retrying, or idle for
    /// less than a while); the others rest until their tenant's next commit.
    pub webhook_endpoints_running: IntGauge,
    /// Requests answered 503/500 because their rows could not be stored.
    pub persistence_failures: IntCounter,
    /// Marks read back to settle an attempt whose outcome was unknown or a
    /// fenced one, by what they showed.
    pub settles: IntCounterVec,
    pub tenant_actors: IntGauge,
    pub tenant_restarts: IntCounter,
    /// Tenant actors stopped after POS_TENANT_IDLE_SECS without a request.
    pub tenant_passivations: IntCounter,
    /// Tenants whose totals were read again from MySQL while their actor ran.
    pub tenant_reloads: IntCounter,
    /// 1 while this instance holds its shard's lease (and may write).
    pub shard_lease_held: IntGauge,
    /// Lease renewals by outcome: renewed, failed (an error), unanswered
    /// (given up after a third of the lease's life), lost (another
    /// instance holds it).
    pub shard_lease_renewals: IntCounterVec,
    /// Products in the global ranking.
    pub ranking_products: IntGauge,
    pub mirror_errors: IntCounter,
    /// Seconds since the Redis mirror last equalled the ranking (0 when equal).
    pub mirror_lag_seconds: prometheus::Gauge,
    /// MySQL connections taken from the persistence pools (read at scrape).
    pub mysql_connections_in_use: IntGauge,
    /// MySQL connections open in the persistence pools (read at scrape).
    pub mysql_connections_open: IntGauge,
    /// Statements off the write path (the lookup and office actors), by kind and result.
    pub lookups: IntCounterVec,
    /// Statements waiting for a connection or running, by bounded pool.
    pub statements_in_flight: prometheus::IntGaugeVec,
    /// Seconds since the last successful revocation poll.
    pub revocation_poll_age: prometheus::Gauge,
    /// Revocation polls that failed.
    pub revocation_poll_failures: IntCounter,
    /// Addresses the failed-authentication limiter tracks.
    pub auth_addresses: IntGauge,
    /// Live top-seller streams of the web back office open now.
    pub app_live_streams: IntGauge,
    /// Failures counted against the shared budget (the limiter was full).
    pub auth_address_overflow: IntCounter,
    /// Requests the key check refused, by reason.
    pub auth_refusals: IntCounterVec,
    /// Batches split after MySQL refused one of their requests.
    pub batch_splits: IntCounter,
    /// Reports waiting for a turn on a reports connection.
    pub reports_waiting: IntGauge,
    /// API connections shut at once: their address had
    /// `POS_MAX_CONNECTIONS_PER_ADDRESS` open already.
    pub connections_refused: IntCounter,
    pools: Arc<Mutex<Vec<Arc<mysql_async::Metrics>>>>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "pos_http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new("pos_http_request_duration_seconds", "HTTP request latency")
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "pos_transactions_rejected_total",
                "Sales requests refused, by error code",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for code in ErrorCode::ALL {
            rejected.with_label_values(&[code.as_str()]);
        }
        let lookups = IntCounterVec::new(
            Opts::new(
                "pos_lookups_total",
                "Statements off the write path (API key and catalog reads, the back office's statements), by result",
            ),
            &["kind", "result"],
        )
        .expect("valid metric");
        for kind in LOOKUP_KINDS {
            for result in LOOKUP_RESULTS {
                lookups.with_label_values(&[kind, result]);
            }
        }
        let statements_in_flight = prometheus::IntGaugeVec::new(
            Opts::new(
                "pos_statements_in_flight",
                "Statements off the write path waiting for a connection or running, by pool (lookup: keys and catalogs; office: the back office's; with pods, control_lookup and control: the same on the control database); past each pool's bound they are refused (503)",
            ),
            &["pool"],
        )
        .expect("valid metric");
        for pool in BOUNDED_POOLS {
            statements_in_flight.with_label_values(&[pool]);
        }
        let auth_refusals = IntCounterVec::new(
            Opts::new(
                "pos_auth_refusals_total",
                "Requests refused by the API key check, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for code in ErrorCode::AUTH {
            auth_refusals.with_label_values(&[code.as_str()]);
        }
        let m = Metrics {
            http_requests,
            http_duration,
            committed: IntCounter::new(
                "pos_transactions_committed_total",
                "Transactions committed to MySQL",
            )
            .expect("valid"),
            rejected,
            batch_rows: Histogram::with_opts(
                HistogramOpts::new("pos_batch_rows", "Rows per committed batch").buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
                ]),
            )
            .expect("valid"),
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "pos_batch_commit_duration_seconds",
                    "Batch transaction time, BEGIN to COMMIT",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
            )
            .expect("valid"),
            rows_waiting: IntGauge::new("pos_rows_waiting", "Rows accepted and not yet committed")
                .expect("valid"),
            persistence_retries: IntCounter::new(
                "pos_persistence_retries_total",
                "Batch attempts repeated after a MySQL failure",
            )
            .expect("valid"),
            rollup_rows: IntCounter::new(
                "pos_rollup_rows_total",
                "Rollup rows written (added or changed) for reports",
            )
            .expect("valid"),
            rollup_failures: IntCounter::new(
                "pos_rollup_failures_total",
                "Rolls of the history into rollups that failed",
            )
            .expect("valid"),
            webhook_endpoints_running: IntGauge::new(
                "pos_feed_webhook_endpoints_running",
                "Webhook endpoints running now (the others rest until their tenant's next commit)",
            )
            .expect("valid"),
            feed_lag: IntGaugeVec::new(
                Opts::new(
                    "pos_feed_lag_events",
                    "Events committed and not yet delivered, by sink",
                ),
                &["sink"],
            )
            .expect("valid"),
            feed_delivered: IntCounterVec::new(
                Opts::new(
                    "pos_feed_delivered_total",
                    "Events the sink confirmed, by sink",
                ),
                &["sink"],
            )
            .expect("valid"),
            feed_failures: IntCounterVec::new(
                Opts::new(
                    "pos_feed_delivery_failures_total",
                    "Deliveries that failed (sink away, refused, timed out), by sink",
                ),
                &["sink"],
            )
            .expect("valid"),
            settles: {
                let settles = IntCounterVec::new(
                    Opts::new(
                        "pos_commit_settles_total",
                        "Writer marks read back after a lost COMMIT answer or a fenced attempt, by outcome",
                    ),
                    &["outcome"],
                )
                .expect("valid metric");
                for outcome in SETTLE_OUTCOMES {
                    settles.with_label_values(&[outcome]);
                }
                settles
            },
            persistence_failures: IntCounter::new(
                "pos_persistence_failures_total",
                "Sales requests whose rows could not be stored",
            )
            .expect("valid"),
            tenant_actors: IntGauge::new("pos_tenant_actors", "Live tenant actors").expect("valid"),
            tenant_restarts: IntCounter::new(
                "pos_tenant_actor_restarts_total",
                "Tenant actors restarted after a crash",
            )
            .expect("valid"),
            tenant_passivations: IntCounter::new(
                "pos_tenant_actor_passivations_total",
                "Tenant actors stopped after being idle",
            )
            .expect("valid"),
            shard_lease_renewals: IntCounterVec::new(
                Opts::new(
                    "pos_shard_lease_renewals_total",
                    "Shard lease renewals by outcome (renewed; failed; unanswered: given up after a third of the lease's life; lost: another instance holds it)",
                ),
                &["outcome"],
            )
            .expect("valid"),
            shard_lease_held: IntGauge::new(
                "pos_shard_lease_held",
                "1 while this instance holds its shard's lease and may write",
            )
            .expect("valid"),
            tenant_reloads: IntCounter::new(
                "pos_tenant_reloads_total",
                "Tenants whose totals were read again from MySQL (after an unknown commit outcome or an unremembered stored key)",
            )
            .expect("valid"),
            ranking_products: IntGauge::new(
                "pos_ranking_products",
                "Products in the global ranking",
            )
            .expect("valid"),
            mirror_errors: IntCounter::new(
                "pos_redis_mirror_errors_total",
                "Failed Redis mirror writes",
            )
            .expect("valid"),
            mirror_lag_seconds: prometheus::Gauge::new(
                "pos_redis_mirror_lag_seconds",
                "Seconds since the Redis mirror last equalled the ranking",
            )
            .expect("valid"),
            mysql_connections_in_use: IntGauge::new(
                "pos_mysql_connections_in_use",
                "MySQL connections taken from the persistence pools",
            )
            .expect("valid"),
            mysql_connections_open: IntGauge::new(
                "pos_mysql_connections_open",
                "MySQL connections open in the persistence pools",
            )
            .expect("valid"),
            lookups,
            statements_in_flight,
            revocation_poll_age: prometheus::Gauge::new(
                "pos_revocation_poll_age_seconds",
                "Seconds since the last successful revocation poll (keys are refused past 3)",
            )
            .expect("valid"),
            revocation_poll_failures: IntCounter::new(
                "pos_revocation_poll_failures_total",
                "Revocation polls that failed",
            )
            .expect("valid"),
            auth_addresses: IntGauge::new(
                "pos_auth_limited_addresses",
                "Client addresses (IPv6: prefixes) the failed-authentication limiter tracks",
            )
            .expect("valid"),
            app_live_streams: IntGauge::new(
                "pos_app_live_streams",
                "Live top-seller streams (Server-Sent Events) of the web back office open now",
            )
            .expect("valid"),
            auth_address_overflow: IntCounter::new(
                "pos_auth_address_overflow_total",
                "Authentications counted against the shared budget because the limiter was full",
            )
            .expect("valid"),
            auth_refusals,
            batch_splits: IntCounter::new(
                "pos_batch_splits_total",
                "Batches split after MySQL refused one of their requests (by the idempotency key it named, else in halves), so that the others still commit",
            )
            .expect("valid"),
            reports_waiting: IntGauge::new(
                "pos_reports_waiting",
                "Sales reports waiting for their tenant's turn on a reports connection",
            )
            .expect("valid"),
            connections_refused: IntCounter::new(
                "pos_http_connections_refused_total",
                "API connections shut as they were accepted: their client address had POS_MAX_CONNECTIONS_PER_ADDRESS open already",
            )
            .expect("valid"),
            pools: Arc::default(),
            registry,
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        // Every sink's series exists from the start (dashboards, alerts).
        for sink in ["amqp", "webhooks"] {
            self.feed_lag.with_label_values(&[sink]);
            self.feed_delivered.with_label_values(&[sink]);
            self.feed_failures.with_label_values(&[sink]);
        }
        let r = &self.registry;
        let all: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.http_requests.clone()),
            Box::new(self.http_duration.clone()),
            Box::new(self.committed.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.batch_rows.clone()),
            Box::new(self.commit_seconds.clone()),
            Box::new(self.rows_waiting.clone()),
            Box::new(self.persistence_retries.clone()),
            Box::new(self.rollup_rows.clone()),
            Box::new(self.rollup_failures.clone()),
            Box::new(self.feed_lag.clone()),
            Box::new(self.feed_delivered.clone()),
            Box::new(self.feed_failures.clone()),
            Box::new(self.webhook_endpoints_running.clone()),
            Box::new(self.persistence_failures.clone()),
            Box::new(self.settles.clone()),
            Box::new(self.tenant_actors.clone()),
            Box::new(self.tenant_restarts.clone()),
            Box::new(self.tenant_passivations.clone()),
            Box::new(self.tenant_reloads.clone()),
            Box::new(self.shard_lease_held.clone()),
            Box::new(self.shard_lease_renewals.clone()),
            Box::new(self.ranking_products.clone()),
            Box::new(self.mirror_errors.clone()),
            Box::new(self.mirror_lag_seconds.clone()),
            Box::new(self.mysql_connections_in_use.clone()),
            Box::new(self.mysql_connections_open.clone()),
            Box::new(self.lookups.clone()),
            Box::new(self.statements_in_flight.clone()),
            Box::new(self.revocation_poll_age.clone()),
            Box::new(self.revocation_poll_failures.clone()),
            Box::new(self.auth_addresses.clone()),
            Box::new(self.app_live_streams.clone()),
            Box::new(self.auth_address_overflow.clone()),
            Box::new(self.auth_refusals.clone()),
            Box::new(self.batch_splits.clone()),
            Box::new(self.reports_waiting.clone()),
            Box::new(self.connections_refused.clone()),
        ];
        for c in all {
            r.register(c).expect("each metric is registered once");
        }
        #[cfg(target_os = "linux")]
        {
            // One process collector per registry; a second app in the same
            // test process gets its own registry, so this never collides.
            let _ = r.register(Box::new(process::ProcessMetrics::new()));
        }
    }

    /// Counts one refused sales request.
    pub fn reject(&self, code: ErrorCode) {
        self.rejected.with_label_values(&[code.as_str()]).inc();
    }

    /// Counts one read of the lookup actor.
    pub fn lookup(&self, kind: &str, result: &str) {
        self.lookups.with_label_values(&[kind, result]).inc();
    }

    /// Counts one request refused by the key check.
    pub fn auth_refused(&self, code: ErrorCode) {
        self.auth_refusals.with_label_values(&[code.as_str()]).inc();
    }

    /// Reports this pool's connections in the MySQL gauges.
    pub fn watch_pool(&self, pool: &mysql_async::Pool) {
        if let Ok(mut pools) = self.pools.lock() {
            pools.push(pool.metrics());
        }
    }

    fn refresh_pool_gauges(&self) {
        let Ok(pools) = self.pools.lock() else { return };
        let sum = |f: fn(&mysql_async::Metrics) -> usize| {
            pools.iter().map(|m| f(m)).sum::<usize>() as i64
        };
        self.mysql_connections_in_use
            .set(sum(|m| m.connections_in_use.load(Ordering::Relaxed)));
        self.mysql_connections_open
            .set(sum(|m| m.connection_count.load(Ordering::Relaxed)));
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        self.refresh_pool_gauges();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
