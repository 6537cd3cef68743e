//! Reading a tenant's totals again from MySQL while its actor runs: after
//! an unknown commit outcome, and when a stored key shows a commit the
//! actor did not count (see `steps::read_stored_keys`).
//!
//! The read queues behind every write already queued for the tenant, and
//! its answer says up to which flush it saw (`Seq`). While it runs the
//! actor takes nothing else (`ctx.wait`): no commit answer is applied in
//! between, so each is either in the snapshot (its flush came no later
//! than the read's: it is not added again) or after it (added as usual).

use std::time::Duration;

use actix::fut::{ActorFutureExt, WrapFuture};
use actix::prelude::*;
use tokio::sync::oneshot;

use super::{TenantActor, TenantError};
use crate::actors::persistence::{SaveError, Seq};
use crate::domain::TenantSnapshot;

/// Wait before reading again after a reload failed (MySQL away).
const RELOAD_RETRY: Duration = Duration::from_secs(1);

impl TenantActor {
    /// Reads the tenant's catalog and totals and puts them in place of the
    /// live ones; the receiver says how it went.
    pub(super) fn reload(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<(), TenantError>> {
        let (done, outcome) = oneshot::channel();
        let (writer, tenant) = (self.deps.writer.clone(), self.id);
        let read = async move { writer.tenant(tenant).await };
        ctx.wait(read.into_actor(self).map(|read, act, _| {
            let _ = done.send(act.apply_snapshot(read));
        }));
        outcome
    }

    /// Reloads, and again every [`RELOAD_RETRY`] until a reload succeeds.
    pub(super) fn reload_until_done(&mut self, ctx: &mut Context<Self>) {
        let outcome = self.reload(ctx);
        ctx.spawn(outcome.into_actor(self).map(|outcome, _, ctx| {
            if !matches!(outcome, Ok(Ok(()))) {
                tracing::warn!("reloading the tenant's totals failed; retrying");
                ctx.run_later(RELOAD_RETRY, |act, ctx| act.reload_until_done(ctx));
            }
        }));
    }

    fn apply_snapshot(
        &mut self,
        read: Result<(Option<TenantSnapshot>, Seq), SaveError>,
    ) -> Result<(), TenantError> {
        let (snapshot, seq) = read?;
        let snapshot = snapshot.ok_or(TenantError::TenantNotFound)?;
        debug_assert!(seq >= self.covered_through, "reads are answered in order");
        self.replace_catalog(snapshot.catalog);
        self.totals.replace(&snapshot.totals);
        self.covered_through = seq;
        self.deps.ranking.push(snapshot.totals);
        self.deps.metrics.tenant_reloads.inc();
        Ok(())
    }
}
