//! The feed from tenant actors into the ranking: changed totals wait in a
//! map (newest total per product) until the ranking takes them.

use std::sync::{Arc, Mutex};

use actix::prelude::*;

use super::{FeedReady, RankingActor, TenantTotals};
use crate::domain::{ProductMap, ProductTotal, TenantId};

/// Where tenant actors leave changed totals for the ranking. The ranking
/// actor is woken only when the feed goes from empty to non-empty, so under
/// load many commits cost one cross-thread wake-up, not one each. The feed
/// keeps the newest total of each product (totals are absolute; a tenant's
/// are pushed in commit order), so however slow the ranking, it never holds
/// more than one entry per product.
#[derive(Clone)]
pub struct RankingFeed {
    pub(super) pending: Pending,
    pub(super) ranking: Addr<RankingActor>,
}

/// What the feed holds until the ranking takes it.
pub(super) type Pending = Arc<Mutex<ProductMap<ProductTotal>>>;

impl RankingFeed {
    /// A tenant's totals as the ranking holds them, for the tenant's next
    /// actor. Exact when no actor of the tenant is running and the last one
    /// stopped cleanly: start-up read the summary table, every commit since
    /// was pushed here before its request was answered, and the ranking
    /// takes what is in the feed before it answers.
    pub async fn boot_totals(&self, tenant: TenantId) -> Option<Vec<ProductTotal>> {
        self.ranking.send(TenantTotals(tenant)).await.ok()
    }

    pub fn push(&self, totals: impl IntoIterator<Item = ProductTotal>) {
        let was_empty = match self.pending.lock() {
            Ok(mut p) => {
                let was_empty = p.is_empty();
                p.extend(totals.into_iter().map(|t| (t.product_id, t)));
                was_empty
            }
            Err(_) => return,
        };
        if was_empty {
            // Unbounded on purpose: at most one is queued per drain.
            self.ranking.do_send(FeedReady);
        }
    }
}
