//! LookupActor: reads that need not wait behind the persistence actors'
//! writes: an API key on a cache miss, a tenant's catalog. They run on a bounded pool of their own, on their own thread,
//! so a stream of unknown ids never queues behind commits or slows them.
//! The work such a stream can cause is bounded: at most [`MAX_IN_FLIGHT`]
//! reads at a time, the next ones refused at once (`Busy`, answered 503),
//! and every read within [`LOOKUP_TIMEOUT`].

use std::time::Duration;

use actix::prelude::*;

pub use super::bounded_pool::PoolError;
use super::bounded_pool::{BoundedPool, Bounds};
use crate::domain::{Catalog, TenantId};
use crate::metrics::Metrics;
use crate::store::{self, StoredKey};

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
pub type LookupError = PoolError;

/// The key with this public id (`None`: no such key).
#[derive(Message)]
#[rtype(result = "Result<Option<StoredKey>, LookupError>")]
pub struct FindKey(pub crate::domain::KeyId);

/// A tenant's branches and products (`None`: no such tenant).
#[derive(Message)]
#[rtype(result = "Result<Option<Catalog>, LookupError>")]
pub struct FindCatalog(pub TenantId);

pub struct LookupActor {
    pool: BoundedPool,
}

impl LookupActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    /// `pool` names it in `pos_statements_in_flight` (`lookup`, or
    /// `control_lookup` for the keys of a control database of its own).
    pub fn new(
        database_url: &str,
        pool: &'static str,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        let bounds = Bounds {
            connections: POOL_MAX,
            max_in_flight: MAX_IN_FLIGHT,
            timeout: LOOKUP_TIMEOUT,
        };
        Ok(LookupActor {
            pool: BoundedPool::new(database_url, pool, bounds, metrics)?,
        })
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
        self.pool.run("key", move |c| {
            Box::pin(async move { store::find_key(c, &msg.0).await })
        })
    }
}

impl Handler<FindCatalog> for LookupActor {
    type Result = ResponseFuture<Result<Option<Catalog>, LookupError>>;

    fn handle(&mut self, msg: FindCatalog, _: &mut Context<Self>) -> Self::Result {
        self.pool
            .run("catalog", move |c| Box::pin(store::load_catalog(c, msg.0)))
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
