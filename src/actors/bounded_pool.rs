//! A MySQL pool that refuses work rather than queueing it: at most
//! `max_in_flight` statements waiting for a connection or running (the
//! next ones are refused at once, `Busy`, answered 503), each within a
//! deadline. The lookup and office actors each own one, on their own
//! thread (mysql_async pools must not be shared across runtimes), so
//! neither can queue behind the other or behind commits.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use mysql_async::{Conn, Pool};

use crate::metrics::Metrics;
use crate::store::{self, StoreError};

/// Why a statement has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("too many statements in flight")]
    Busy,
    #[error("MySQL unavailable")]
    Unavailable,
    /// MySQL refused the statement itself (a constraint, a bad value).
    #[error("MySQL refused the statement")]
    Refused,
}

/// How much a pool takes on.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub connections: usize,
    pub max_in_flight: usize,
    /// Longest a statement may take, connection included.
    pub timeout: Duration,
}

pub struct BoundedPool {
    pool: Pool,
    bounds: Bounds,
    in_flight: Rc<Cell<usize>>,
    /// `in_flight`, as `pos_statements_in_flight{pool=..}` shows it.
    gauge: prometheus::IntGauge,
    metrics: Metrics,
}

impl BoundedPool {
    /// Call on the thread that will run the statements.
    pub fn new(
        database_url: &str,
        name: &'static str,
        bounds: Bounds,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        Ok(BoundedPool {
            pool: Pool::new(store::pool_opts(database_url, bounds.connections)?),
            bounds,
            in_flight: Rc::default(),
            gauge: metrics.statements_in_flight.with_label_values(&[name]),
            metrics,
        })
    }

    /// Runs `statement` unless too many already run; counted as `kind`.
    pub fn run<T: 'static>(
        &self,
        kind: &'static str,
        statement: impl for<'c> FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, store::Result<T>> + 'static,
    ) -> LocalBoxFuture<'static, Result<T, PoolError>> {
        if self.in_flight.get() >= self.bounds.max_in_flight {
            self.metrics.lookup(kind, "busy");
            return Box::pin(async { Err(PoolError::Busy) });
        }
        let slot = InFlight::take(&self.in_flight, &self.gauge);
        let (pool, metrics, timeout) =
            (self.pool.clone(), self.metrics.clone(), self.bounds.timeout);
        Box::pin(async move {
            let _slot = slot;
            let attempt = async {
                let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
                statement(&mut conn).await
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(v)) => {
                    metrics.lookup(kind, "ok");
                    Ok(v)
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, kind, "statement failed");
                    metrics.lookup(kind, "error");
                    Err(match e {
                        StoreError::Rejected(_) => PoolError::Refused,
                        _ => PoolError::Unavailable,
                    })
                }
                Err(_) => {
                    metrics.lookup(kind, "error");
                    Err(PoolError::Unavailable)
                }
            }
        })
    }
}

/// One running statement; frees its slot when dropped, however it ends.
struct InFlight(Rc<Cell<usize>>, prometheus::IntGauge);

impl InFlight {
    fn take(count: &Rc<Cell<usize>>, gauge: &prometheus::IntGauge) -> InFlight {
        count.set(count.get() + 1);
        gauge.inc();
        InFlight(count.clone(), gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
        self.1.dec();
    }
}
