//! How the ranking reaches Redis. Changes are coalesced and written every
//! tick (per set, one ZADD carrying every changed product; the two
//! pipelined). After a mirror error or a reconnection the whole view is
//! rewritten from memory. Every second, under load as well as idle, an
//! audit checks Redis against this instance's own products: if a key is
//! gone (flushed, evicted) the view is rewritten; and a bounded sample of
//! products, taken round-robin, is checked member by member (and, merged
//! over shards, in the hash readers need), so what is missing is written
//! again however the other shards' sizes compare.

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::RankingActor;
use crate::domain::{ProductId, ProductTotal, TenantId};
use crate::mirror::{Audit, Mirror};

/// How often changed totals are written to Redis; faster with shards,
/// where readers read the merged view from Redis.
const TICK: Duration = Duration::from_millis(100);
const MERGED_TICK: Duration = Duration::from_millis(25);
/// How often Redis is audited.
const AUDIT_EVERY: Duration = Duration::from_secs(1);
/// Products checked member by member per audit.
const AUDIT_SAMPLE: usize = 1_000;

/// The mirror's tick for this view.
pub(super) fn tick(mirror: Option<&Mirror>) -> Duration {
    match mirror {
        Some(m) if m.is_merged() => MERGED_TICK,
        _ => TICK,
    }
}

/// What one mirror step does.
enum Step {
    Rewrite(Vec<ProductTotal>),
    Write(Vec<ProductTotal>, Option<Vec<(TenantId, ProductId)>>),
}

impl RankingActor {
    /// One mirror step: a full rewrite if needed, else the changed
    /// products, and the audit when it is due.
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(mirror) = self.mirror.clone() else {
            return;
        };
        self.update_lag();
        if self.mirror_busy {
            return;
        }
        if !mirror.is_connected() {
            self.resync_needed = true;
            return;
        }
        if mirror.take_reconnected() {
            self.resync_needed = true;
        }
        let step = if self.resync_needed {
            self.dirty.clear();
            Step::Rewrite(self.totals.values().cloned().collect())
        } else {
            let changed: Vec<ProductTotal> = self
                .dirty
                .drain()
                .filter_map(|p| self.totals.get(&p).cloned())
                .collect();
            let audit = (self.last_audit.elapsed() >= AUDIT_EVERY).then(|| self.audit_sample());
            if changed.is_empty() && audit.is_none() {
                self.last_in_sync = Instant::now();
                return;
            }
            Step::Write(changed, audit)
        };
        self.mirror_busy = true;
        let own = self.totals.len() as u64;
        ctx.spawn(
            async move {
                match step {
                    Step::Rewrite(all) => mirror.replace_all(&all).await.map(|()| None),
                    Step::Write(changed, sample) => {
                        mirror.write(&changed).await?;
                        match sample {
                            Some(sample) => mirror.audit(own, &sample).await.map(Some),
                            None => Ok(None),
                        }
                    }
                }
            }
            .into_actor(self)
            .map(move |result, act, _| act.mirrored(result, own)),
        );
    }

    /// Takes what a mirror step found.
    fn mirrored(&mut self, result: Result<Option<Audit>, fred::error::Error>, own: u64) {
        self.mirror_busy = false;
        match result {
            Ok(audit) => {
                if self.resync_needed {
                    self.resync_needed = false;
                    tracing::info!(products = own, "Redis mirror rewritten from the ranking");
                }
                match audit {
                    Some(Audit::Lost) => {
                        tracing::warn!("Redis lost part of the mirror; rewriting it");
                        self.resync_needed = true;
                    }
                    Some(Audit::Missing(products)) => {
                        self.last_audit = Instant::now();
                        if !products.is_empty() {
                            tracing::warn!(
                                products = products.len(),
                                "Redis lacks some products; writing them again"
                            );
                            self.dirty.extend(products);
                        }
                    }
                    None => {}
                }
                if self.dirty.is_empty() && !self.resync_needed {
                    self.last_in_sync = Instant::now();
                }
            }
            Err(e) => {
                self.metrics.mirror_errors.inc();
                tracing::warn!(error = %e, "Redis mirror write failed; will rewrite when Redis answers");
                self.resync_needed = true;
            }
        }
    }

    /// The next products to check member by member, round-robin over all.
    fn audit_sample(&mut self) -> Vec<(TenantId, ProductId)> {
        if self.audit_queue.is_empty() {
            self.audit_queue = self.totals.keys().copied().collect();
        }
        let from = self.audit_queue.len().saturating_sub(AUDIT_SAMPLE);
        let sample = self.audit_queue.split_off(from);
        sample
            .into_iter()
            .filter_map(|p| self.totals.get(&p).map(|t| (t.tenant_id, p)))
            .collect()
    }

    pub(super) fn update_lag(&self) {
        let in_sync = !self.resync_needed && self.dirty.is_empty() && !self.mirror_busy;
        let lag = if in_sync {
            0.0
        } else {
            self.last_in_sync.elapsed().as_secs_f64()
        };
        self.metrics.mirror_lag_seconds.set(lag);
    }
}
