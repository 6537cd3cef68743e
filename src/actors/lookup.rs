//! LookupActor: reads that need not wait behind the persistence actors'
//! writes: an API key on a cache miss, the revocation poll, a tenant's
//! catalog. They run on a small pool of their own, on their own thread
//! (mysql_async pools must not be shared across runtimes), so a stream of
//! unknown ids never queues behind commits or slows them. The work such a
//! stream can cause is bounded: at most [`MAX_IN_FLIGHT`] reads at a time,
//! the next ones refused at once (`Busy`, answered 503), and every read
//! within [`LOOKUP_TIMEOUT`].

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use actix::prelude::*;
use chrono::NaiveDateTime;
use futures_util::future::LocalBoxFuture;
use mysql_async::{Conn, Pool};

use crate::domain::{Catalog, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, Revocations, StoreError, StoredKey};

/// Reads waiting for a connection or running; more are refused rather than
/// queued. The pool runs [`POOL_MAX`] at a time (a key look-up takes well
/// under a millisecond), so a burst of this many first requests (tills
/// starting after a restart) is served within a fraction of a second.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Connections of the lookup pool.
const POOL_MAX: usize = 4;
/// Longest a read may take, connection included.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);
const MAILBOX_CAPACITY: usize = 1024;

/// Why a lookup has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("too many lookups in flight")]
    Busy,
    #[error("MySQL unavailable for lookups")]
    Unavailable,
}

/// The key with this public id (`None`: no such key).
#[derive(Message)]
#[rtype(result = "Result<Option<StoredKey>, LookupError>")]
pub struct FindKey(pub String);

/// Keys revoked since a time of the database's clock (`None`: every revoked key).
#[derive(Message)]
#[rtype(result = "Result<Revocations, LookupError>")]
pub struct RevokedSince(pub Option<NaiveDateTime>);

/// A tenant's branches and products (`None`: no such tenant).
#[derive(Message)]
#[rtype(result = "Result<Option<Catalog>, LookupError>")]
pub struct FindCatalog(pub TenantId);

pub struct LookupActor {
    pool: Pool,
    in_flight: Rc<Cell<usize>>,
    metrics: Metrics,
}

impl LookupActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    pub fn new(database_url: &str, metrics: Metrics) -> Result<Self, mysql_async::UrlError> {
        Ok(LookupActor {
            pool: Pool::new(store::pool_opts(database_url, POOL_MAX)?),
            in_flight: Rc::default(),
            metrics,
        })
    }

    /// Runs `read` on a pooled connection unless too many already run.
    fn read<T: 'static>(
        &self,
        kind: &'static str,
        read: impl for<'c> FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, store::Result<T>> + 'static,
    ) -> ResponseFuture<Result<T, LookupError>> {
        if self.in_flight.get() >= MAX_IN_FLIGHT {
            self.metrics.lookup(kind, "busy");
            return Box::pin(async { Err(LookupError::Busy) });
        }
        let slot = InFlight::take(&self.in_flight);
        let (pool, metrics) = (self.pool.clone(), self.metrics.clone());
        Box::pin(async move {
            let _slot = slot;
            let attempt = async {
                let mut conn = pool.get_conn().await.map_err(StoreError::from)?;
                read(&mut conn).await
            };
            match tokio::time::timeout(LOOKUP_TIMEOUT, attempt).await {
                Ok(Ok(v)) => {
                    metrics.lookup(kind, "ok");
                    Ok(v)
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, kind, "lookup failed");
                    metrics.lookup(kind, "error");
                    Err(LookupError::Unavailable)
                }
                Err(_) => {
                    metrics.lookup(kind, "error");
                    Err(LookupError::Unavailable)
                }
            }
        })
    }
}

/// One running read; frees its slot when dropped, however the read ends.
struct InFlight(Rc<Cell<usize>>);

impl InFlight {
    fn take(count: &Rc<Cell<usize>>) -> InFlight {
        count.set(count.get() + 1);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl Actor for LookupActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl Handler<FindKey> for LookupActor {
    type Result = ResponseFuture<Result<Option<StoredKey>, LookupError>>;

    fn handle(&mut self, msg: FindKey, _: &mut Context<Self>) -> Self::Result {
        self.read("key", move |c| {
            Box::pin(async move { store::find_key(c, &msg.0).await })
        })
    }
}

impl Handler<RevokedSince> for LookupActor {
    type Result = ResponseFuture<Result<Revocations, LookupError>>;

    fn handle(&mut self, msg: RevokedSince, _: &mut Context<Self>) -> Self::Result {
        self.read("revocations", move |c| {
            Box::pin(store::revoked_since(c, msg.0))
        })
    }
}

impl Handler<FindCatalog> for LookupActor {
    type Result = ResponseFuture<Result<Option<Catalog>, LookupError>>;

    fn handle(&mut self, msg: FindCatalog, _: &mut Context<Self>) -> Self::Result {
        self.read("catalog", move |c| Box::pin(store::load_catalog(c, msg.0)))
    }
}

/// Sends `msg` and waits for the answer, at most [`LOOKUP_TIMEOUT`] in all
/// (a full mailbox counts against the same deadline).
pub async fn ask<M, T>(lookup: &Addr<LookupActor>, msg: M) -> Result<T, LookupError>
where
    M: Message<Result = Result<T, LookupError>> + Send + 'static,
    T: Send + 'static,
    LookupActor: Handler<M>,
{
    match tokio::time::timeout(LOOKUP_TIMEOUT, lookup.send(msg)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) | Err(_) => Err(LookupError::Unavailable),
    }
}
