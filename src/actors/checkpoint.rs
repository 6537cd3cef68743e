//! CheckpointActor: every `POS_CHECKPOINT_MS`, adds the sales committed
//! since the last checkpoint to the summary table, on a connection of its
//! own (see `store::checkpoint`). Sales transactions never touch the
//! summary; this keeps the history a start must read above it short. The
//! last checkpoint runs at shutdown, after the persistence actors drained.

use std::time::{Duration, Instant};

use actix::prelude::*;
use mysql_async::Pool;

use crate::metrics::Metrics;
use crate::store::{self, Checkpointed, StoreError};

pub struct CheckpointActor {
    pool: Pool,
    every: Duration,
    /// Galera: read the last id once the cluster's certified writes are applied.
    causal: bool,
    /// A checkpoint is running (ticks meanwhile are skipped).
    running: bool,
    metrics: Metrics,
}

/// Checkpoint now, even if one runs (the pool's one connection takes them
/// in turn); what it reached.
#[derive(Message)]
#[rtype(result = "Result<Checkpointed, StoreError>")]
pub struct CheckpointNow;

impl CheckpointActor {
    /// `pool` must be created in the arbiter the actor starts in.
    pub fn new(pool: Pool, every: Duration, causal: bool, metrics: Metrics) -> Self {
        CheckpointActor {
            pool,
            every,
            causal,
            running: false,
            metrics,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let run = run(self.pool.clone(), self.causal, self.metrics.clone());
        ctx.spawn(run.into_actor(self).map(|_, act, _| act.running = false));
    }
}

/// One checkpoint, counted and logged.
async fn run(pool: Pool, causal: bool, metrics: Metrics) -> Result<Checkpointed, StoreError> {
    let started = Instant::now();
    let done = async {
        let mut conn = pool.get_conn().await?;
        store::checkpoint(&mut conn, causal).await
    }
    .await;
    match &done {
        Ok(c) => {
            metrics.checkpoints.with_label_values(&["ok"]).inc();
            metrics.checkpoint_through.set(c.through as i64);
            tracing::debug!(
                from = c.from,
                through = c.through,
                ms = started.elapsed().as_millis() as u64,
                "checkpoint"
            );
        }
        Err(e) => {
            metrics.checkpoints.with_label_values(&["failed"]).inc();
            tracing::warn!(error = %e, "checkpoint failed; the next one tries again");
        }
    }
    done
}

impl Actor for CheckpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |act, ctx| act.tick(ctx));
    }
}

impl Handler<CheckpointNow> for CheckpointActor {
    type Result = ResponseFuture<Result<Checkpointed, StoreError>>;

    fn handle(&mut self, _: CheckpointNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(run(self.pool.clone(), self.causal, self.metrics.clone()))
    }
}
