//! OfficeActor: the back office's statements (tenants, branches, products,
//! till keys) on a bounded pool of their own, on their own thread: a busy
//! back office never takes a connection from the commits, and a flood of
//! unknown key ids (the lookup actor's pool) never delays a back office.
//! Catalog changes reach it through their tenant's actor, which applies
//! them to the live catalog once they are committed. Reports have an
//! actor of their own (`reports`): a slow report never holds up a back
//! office's change, nor any commit.

use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;
use mysql_async::Conn;

use super::bounded_pool::{BoundedPool, Bounds, PoolError};
use crate::metrics::Metrics;
use crate::store;

pub const OFFICE_BOUNDS: Bounds = Bounds {
    connections: 2,
    max_in_flight: 64,
    // A create of 1,000 products is one transaction of a few statements.
    timeout: Duration::from_secs(10),
};

const MAILBOX_CAPACITY: usize = 256;

type Statement<T> =
    Box<dyn for<'c> FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, store::Result<T>> + Send>;

/// Runs one statement (a function of `store`) and answers its result.
pub struct Run<T> {
    statement: Statement<T>,
}

impl<T: Send + 'static> Message for Run<T> {
    type Result = Result<T, PoolError>;
}

pub struct OfficeActor {
    pool: BoundedPool,
    /// The `kind` label of its statements in `pos_lookups_total`.
    kind: &'static str,
}

impl OfficeActor {
    /// Builds the actor; call inside its arbiter so the pool lives there.
    pub fn new(
        database_url: &str,
        bounds: Bounds,
        kind: &'static str,
        metrics: Metrics,
    ) -> Result<Self, mysql_async::UrlError> {
        Ok(OfficeActor {
            // Its pool is named as its statements are counted.
            pool: BoundedPool::new(database_url, kind, bounds, metrics)?,
            kind,
        })
    }
}

impl Actor for OfficeActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
    }
}

impl<T: Send + 'static> Handler<Run<T>> for OfficeActor {
    type Result = ResponseFuture<Result<T, PoolError>>;

    fn handle(&mut self, msg: Run<T>, _: &mut Context<Self>) -> Self::Result {
        self.pool.run(self.kind, msg.statement)
    }
}

/// The way to the office actor; cheap to clone.
#[derive(Clone)]
pub struct Office {
    addr: Addr<OfficeActor>,
    /// The actor's statement deadline, which a wait for its mailbox shares.
    timeout: Duration,
}

impl Office {
    pub fn new(addr: Addr<OfficeActor>, bounds: Bounds) -> Office {
        Office {
            addr,
            timeout: bounds.timeout,
        }
    }

    /// Runs `statement` on the office's pool; a wait for the mailbox
    /// counts against the statement's deadline.
    pub async fn run<T, F>(&self, statement: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> LocalBoxFuture<'c, store::Result<T>> + Send + 'static,
    {
        let msg = Run {
            statement: Box::new(statement),
        };
        match tokio::time::timeout(self.timeout, self.addr.send(msg)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => Err(PoolError::Unavailable),
        }
    }
}
